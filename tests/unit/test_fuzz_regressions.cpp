// The fuzz targets' invariants (tests/fuzz/<target>_check.hpp), run in the ordinary unit tests
// over every saved input: the findings in tests/fuzz/regressions/<target>/ and the seed corpus in
// tests/fuzz/corpus/<target>/. A new finding is kept by copying its input into regressions/.
#include <sturdy/sturdy.hpp>

#include "support/catch.hpp"

#include "fuzz/api_error_check.hpp"
#include "fuzz/base64_check.hpp"
#include "fuzz/client_reply_check.hpp"
#include "fuzz/json_reader_check.hpp"
#include "fuzz/rate_limit_check.hpp"
#include "fuzz/retry_after_check.hpp"
#include "fuzz/sse_check.hpp"

#include <algorithm>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using check_fn = void (*)(const std::uint8_t*, std::size_t);

std::vector<fs::path> saved_inputs(const std::string& target) {
    std::vector<fs::path> files;
    for (const char* kind : {"regressions", "corpus"}) {
        const fs::path dir = fs::path(STURDY_TEST_SOURCE_DIR) / "fuzz" / kind / target;
        if (!fs::is_directory(dir)) continue;
        for (const auto& entry : fs::directory_iterator(dir))
            if (entry.is_regular_file() && entry.path().filename().string().front() != '.')
                files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    return files;
}

/// Runs `check` over every saved input of `target`; returns how many there were.
std::size_t run_saved_inputs(const std::string& target, check_fn check) {
    const auto files = saved_inputs(target);
    for (const auto& file : files) {
        std::ifstream in(file, std::ios::binary);
        const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        std::string failure;
        try {
            check(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
        } catch (const std::exception& e) {
            failure = e.what();
        }
        INFO(fs::relative(file, STURDY_TEST_SOURCE_DIR).string());
        CHECK(failure == "");
    }
    return files.size();
}

}  // namespace

TEST_CASE("fuzz regressions: sse events do not depend on read boundaries", "[fuzz][sse]") {
    CHECK(run_saved_inputs("sse", sturdy_fuzz::check_sse) > 0);
}

TEST_CASE("fuzz regressions: typed JSON readers normalise idempotently", "[fuzz][json]") {
    CHECK(run_saved_inputs("json_reader", sturdy_fuzz::check_json_reader) > 0);
}

TEST_CASE("fuzz regressions: error replies keep the key out and the body short", "[fuzz][error]") {
    CHECK(run_saved_inputs("api_error", sturdy_fuzz::check_api_error) > 0);
}

TEST_CASE("fuzz regressions: Retry-After is bounded and HTTP dates round-trip", "[fuzz][retry_after]") {
    CHECK(run_saved_inputs("retry_after", sturdy_fuzz::check_retry_after) > 0);
}

TEST_CASE("fuzz regressions: base64 embeddings decode exactly or not at all", "[fuzz][base64]") {
    CHECK(run_saved_inputs("base64", sturdy_fuzz::check_base64) > 0);
}

TEST_CASE("fuzz regressions: x-ratelimit headers give bounded holds", "[fuzz][rate_limiter]") {
    CHECK(run_saved_inputs("rate_limit", sturdy_fuzz::check_rate_limit) > 0);
}

TEST_CASE("fuzz regressions: a whole reply through the client", "[fuzz][client]") {
    CHECK(run_saved_inputs("client_reply", sturdy_fuzz::check_client_reply) > 0);
}

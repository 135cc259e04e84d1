// The `sturdy` command-line tool, run as a subprocess against the in-process demo server: its
// stdout, stderr and exit status are a contract for scripts (see examples/cli/main.cpp).
#include "cli_support.hpp"
#include "demo_server.hpp"
#include "support/catch.hpp"
#include "support/script_server.hpp"

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using json = nlohmann::ordered_json;
using sturdy_cli_test::check_failure;
using sturdy_cli_test::check_usage_error;
using sturdy_cli_test::lines_in;
using sturdy_cli_test::one_json_line;
using sturdy_cli_test::process_result;
using sturdy_cli_test::refused_port;
using sturdy_cli_test::sturdy;
using sturdy_cli_test::sturdy_at;
using sturdy_cli_test::usage_of;
using sturdy_demo::fault;

const std::string reply_to_hi = "Hello from the sturdy demo server! You said: hi there";

/// `sturdy` pointed at `demo`; `args` start with the command.
process_result sturdy_at(const sturdy_demo::server& demo, std::vector<std::string> args,
                         const std::map<std::string, std::string>& env = {}) {
    return sturdy_cli_test::sturdy_at(demo.base_url(), std::move(args), env);
}

struct demo_fixture {
    sturdy_demo::server demo;
    explicit demo_fixture(sturdy_demo::options opts = {}) : demo(std::move(opts)) { demo.start(); }
};

}  // namespace

// ---- success output ----

TEST_CASE("chat prints the reply and a newline, with the default model", "[cli]") {
    demo_fixture f;
    auto r = sturdy_at(f.demo, {"chat", "hi there"});
    CHECK(r.status == 0);
    CHECK(r.out == reply_to_hi + "\n");
    CHECK(r.err.empty());
    CHECK(f.demo.requests_for("gpt-4o-mini") == 1);
}

TEST_CASE("chat --json prints one object with the documented fields", "[cli]") {
    demo_fixture f;
    auto r = sturdy_at(f.demo, {"chat", "--json", "--model", "demo-mini", "hi there"});
    REQUIRE(r.status == 0);
    CHECK(r.err.empty());
    const json j = one_json_line(r);
    CHECK(j.at("content") == reply_to_hi);
    CHECK(j.at("model") == "demo-mini");
    CHECK(j.at("finish_reason") == "stop");
    const json& usage = j.at("usage");
    REQUIRE(usage.is_object());
    CHECK(usage.at("prompt_tokens") == 2);  // the demo server counts words
    CHECK(usage.at("completion_tokens") == 10);
    CHECK(usage.at("total_tokens") == 12);
    REQUIRE(j.at("latency_ms").is_number());
    CHECK(j.at("latency_ms").get<double>() >= 0);
    CHECK(j.at("attempts") == 1);
    CHECK_FALSE(j.contains("ttft_ms"));  // streams only
}

TEST_CASE("chat sends --system and --max-tokens", "[cli]") {
    demo_fixture f;
    auto r = sturdy_at(f.demo, {"chat", "--system", "be very brief", "--max-tokens=3", "--temperature", "0.2",
                                "--seed", "-7", "--json", "hi there"});
    REQUIRE(r.status == 0);
    const json j = one_json_line(r);
    CHECK(j.at("content") == "Hello from the");
    CHECK(j.at("finish_reason") == "length");
    CHECK(j.at("usage").at("prompt_tokens") == 5);  // "be very brief" + "hi there"
}

TEST_CASE("chat --stream prints the same text as chat", "[cli]") {
    demo_fixture f;
    auto plain = sturdy_at(f.demo, {"chat", "hi there"});
    auto streamed = sturdy_at(f.demo, {"chat", "hi there", "--stream"});
    CHECK(streamed.status == 0);
    CHECK(streamed.err.empty());
    CHECK(streamed.out == plain.out);
    CHECK(streamed.out == reply_to_hi + "\n");
}

TEST_CASE("chat --stream --json prints only the object, with ttft_ms and usage", "[cli]") {
    demo_fixture f;
    auto r = sturdy_at(f.demo, {"chat", "--stream", "--json", "hi there"});
    REQUIRE(r.status == 0);
    CHECK(r.err.empty());
    const json j = one_json_line(r);  // no streamed text before it
    CHECK(j.at("content") == reply_to_hi);
    CHECK(j.at("finish_reason") == "stop");
    CHECK(j.at("attempts") == 1);
    REQUIRE(j.at("usage").is_object());  // the stream asked for usage
    CHECK(j.at("usage").at("completion_tokens") == 10);
    REQUIRE(j.at("ttft_ms").is_number());
    CHECK(j.at("ttft_ms").get<double>() >= 0);
    CHECK(j.at("ttft_ms").get<double>() <= j.at("latency_ms").get<double>());
}

TEST_CASE("options go anywhere after the program name; -- ends them", "[cli]") {
    demo_fixture f;
    auto before = sturdy_at(f.demo, {"--json", "--model=demo-large", "chat", "hi there"});
    auto after = sturdy_at(f.demo, {"chat", "hi there", "--model", "demo-large", "--json"});
    for (const auto& r : {before, after}) {
        REQUIRE(r.status == 0);
        CHECK(one_json_line(r).at("model") == "demo-large");
    }
    auto dashed = sturdy_at(f.demo, {"chat", "--", "--stream"});
    CHECK(dashed.status == 0);
    CHECK(dashed.out == "Hello from the sturdy demo server! You said: --stream\n");
}

TEST_CASE("OPENAI_MODEL and OPENAI_API_KEY are the defaults; options override them", "[cli]") {
    sturdy_demo::options opts;
    opts.api_key = "sk-demo-right-key-0123456789";
    demo_fixture f(opts);
    const std::map<std::string, std::string> env{{"OPENAI_MODEL", "demo-large"}, {"OPENAI_API_KEY", opts.api_key}};

    auto chat = sturdy_at(f.demo, {"chat", "--json", "hi"}, env);
    REQUIRE(chat.status == 0);
    CHECK(one_json_line(chat).at("model") == "demo-large");
    auto embed = sturdy_at(f.demo, {"embed", "--json", "hi"}, env);
    REQUIRE(embed.status == 0);
    CHECK(one_json_line(embed).at("model") == "demo-large");

    auto chosen = sturdy_at(f.demo, {"chat", "--json", "--model", "demo-mini", "hi"}, env);
    REQUIRE(chosen.status == 0);
    CHECK(one_json_line(chosen).at("model") == "demo-mini");
}

TEST_CASE("models prints one id per line; --json the list", "[cli]") {
    demo_fixture f;
    auto r = sturdy_at(f.demo, {"models"});
    CHECK(r.status == 0);
    CHECK(r.err.empty());
    CHECK(r.out == "demo-mini\ndemo-large\ndemo-embed\n");

    auto j = sturdy_at(f.demo, {"models", "--json"});
    REQUIRE(j.status == 0);
    const json list = one_json_line(j);
    REQUIRE(list.at("data").is_array());
    std::vector<std::string> ids;
    for (const auto& m : list.at("data")) {
        ids.push_back(m.at("id"));
        CHECK(m.at("owned_by") == "sturdy-demo");
        CHECK(m.at("created").is_number_integer());
    }
    CHECK(ids == std::vector<std::string>{"demo-mini", "demo-large", "demo-embed"});
}

TEST_CASE("embed --json has one vector per TEXT, of --dimensions floats", "[cli]") {
    demo_fixture f;
    auto r = sturdy_at(f.demo, {"embed", "--json", "--dimensions", "8", "first text", "second"});
    REQUIRE(r.status == 0);
    CHECK(r.err.empty());
    const json j = one_json_line(r);
    CHECK(j.at("model") == "text-embedding-3-small");
    const json& data = j.at("data");
    REQUIRE(data.size() == 2);
    for (std::size_t i = 0; i < data.size(); ++i) {
        CHECK(data[i].at("index") == i);
        const json& v = data[i].at("embedding");
        REQUIRE(v.is_array());
        REQUIRE(v.size() == 8);
        double norm = 0;
        for (const auto& x : v) {
            REQUIRE(x.is_number());
            norm += x.get<double>() * x.get<double>();
        }
        CHECK(std::sqrt(norm) == Approx(1.0).epsilon(1e-5));  // the demo's vectors are unit vectors
    }
    CHECK(data[0].at("embedding") != data[1].at("embedding"));
    CHECK(j.at("usage").at("prompt_tokens") == 3);
}

TEST_CASE("embed prints INDEX DIMENSIONS and the first values, one line per TEXT", "[cli]") {
    demo_fixture f;
    auto r = sturdy_at(f.demo, {"embed", "a", "b", "c"});
    REQUIRE(r.status == 0);
    CHECK(r.err.empty());
    std::istringstream lines(r.out);
    std::string line;
    int index = 0;
    while (std::getline(lines, line)) {
        INFO(line);
        std::istringstream words(line);
        std::vector<std::string> w{std::istream_iterator<std::string>(words), {}};
        REQUIRE(w.size() == 7);  // INDEX DIMENSIONS four values "..."
        CHECK(w[0] == std::to_string(index));
        CHECK(w[1] == "16");
        for (int i = 2; i < 6; ++i) CHECK(std::abs(std::stod(w[static_cast<std::size_t>(i)])) <= 1.0);
        CHECK(w[6] == "...");
        ++index;
    }
    CHECK(index == 3);
}

// ---- retries ----

TEST_CASE("a 429 with retry-after-ms is retried: attempts == 2", "[cli]") {
    demo_fixture f;
    f.demo.inject(fault::status(429).retry_after_ms(100ms));
    auto r = sturdy_at(f.demo, {"chat", "--json", "hi there"});
    REQUIRE(r.status == 0);
    CHECK(r.err.empty());  // a retry is not an error
    const json j = one_json_line(r);
    CHECK(j.at("attempts") == 2);
    CHECK(j.at("content") == reply_to_hi);
    CHECK(j.at("latency_ms").get<double>() >= 100);  // the server's wait was honoured
    CHECK(r.seconds < 2);
}

TEST_CASE("--max-retries N makes N retries, then reports the last error", "[cli]") {
    demo_fixture f;
    f.demo.inject(fault::status(503).times(2));
    auto r = sturdy_at(f.demo, {"models", "--max-retries", "1"});
    check_failure(r, "error: internal_server [503]: ");
    CHECK(r.out.empty());
    CHECK(f.demo.requests() == 2);
}

TEST_CASE("--max-retries 0 and a 503: one attempt, one error line", "[cli]") {
    demo_fixture f;
    f.demo.inject(fault::status(503));
    auto r = sturdy_at(f.demo, {"chat", "hi", "--max-retries", "0"});
    check_failure(r, "error: internal_server [503]: ");
    CHECK(r.out.empty());
    CHECK(f.demo.requests() == 1);
}

// ---- errors ----

TEST_CASE("a wrong key is an authentication error, and the key is not printed", "[cli]") {
    sturdy_demo::options opts;
    opts.api_key = "sk-demo-right-key-0123456789";
    demo_fixture f(opts);
    const std::string wrong = "sk-demo-WRONG-key-9876543210";
    auto r = sturdy_at(f.demo, {"chat", "--api-key", wrong, "hi"}, {{"OPENAI_API_KEY", opts.api_key}});
    check_failure(r, "error: authentication [401]: ");
    CHECK(r.err.find(wrong) == std::string::npos);
    CHECK(r.err.find("9876543210") == std::string::npos);
    CHECK(r.out.empty());
    CHECK(f.demo.requests() == 1);  // a 401 is not retried
}

TEST_CASE("a refused connection is a connection error, without a status", "[cli]") {
    auto r = sturdy({"models", "--max-retries=0", "--base-url", "http://127.0.0.1:" + std::to_string(refused_port()) + "/v1"});
    check_failure(r, "error: connection: ");
    CHECK(r.out.empty());
}

TEST_CASE("the error kind names the failure: context_length_exceeded", "[cli]") {
    demo_fixture f;
    f.demo.inject(fault::context_length_exceeded());
    auto r = sturdy_at(f.demo, {"chat", "hi"});
    check_failure(r, "error: context_length_exceeded [400]: ");
}

TEST_CASE("an error message with line breaks is printed on one line", "[cli]") {
    demo_fixture f;
    f.demo.inject(fault::status(500).message("first line\nsecond line\r\nthird"));
    auto r = sturdy_at(f.demo, {"chat", "hi", "--max-retries", "0"});
    check_failure(r, "error: internal_server [500]: ");
    CHECK(r.err.find("first line second line  third") != std::string::npos);
}

TEST_CASE("a server's terminal escapes are written out, not obeyed, on the error line", "[cli][secrets]") {
    demo_fixture f;
    f.demo.inject(fault::status(500).body("upstream failed\x1b]0;owned\x07\x1b[2J", "text/plain"));
    auto r = sturdy_at(f.demo, {"chat", "hi", "--max-retries", "0"});
    check_failure(r, "error: internal_server [500]: ");
    CHECK(r.err.find('\x1b') == std::string::npos);
    CHECK(r.err.find('\x07') == std::string::npos);
    CHECK(r.err.find("upstream failed\\x{1B}]0;owned\\x{07}\\x{1B}[2J") != std::string::npos);
}

TEST_CASE("a relay that echoes the key in a plain JSON reply to a stream: the key is never printed", "[cli][secrets]") {
    for (const std::string key : {"sk-relay-0123456789abcdefghij", "sk-1"}) {
        INFO("key: " << key);
        demo_fixture f;
        f.demo.inject(
            fault::status(200).body(R"({"code": 401, "msg": "invalid api key: )" + key + R"("})", "application/json"));
        auto r = sturdy_at(f.demo, {"chat", "--stream", "--max-retries", "0", "--api-key", key, "hi"});
        check_failure(r, "error: ");
        CHECK(r.err.find(key) == std::string::npos);
        CHECK(r.err.find("[redacted]") != std::string::npos);
        CHECK(r.out.find(key) == std::string::npos);
    }
}

TEST_CASE("a 200 whose choices is not a list is invalid_response, not an empty answer", "[cli]") {
    demo_fixture f;
    f.demo.inject(
        fault::status(200).body(R"({"id": "x", "object": "chat.completion", "choices": "oops"})", "application/json"));
    auto r = sturdy_at(f.demo, {"chat", "hi", "--max-retries", "0"});
    check_failure(r, "error: invalid_response [200]: ");
    CHECK(r.out.empty());
}

TEST_CASE("a stalled stream times out at --timeout; the text before the stall stays", "[cli]") {
    demo_fixture f;
    f.demo.inject(fault::stall_after(3));  // the role chunk, "Hello", " from", then silence
    auto r = sturdy_at(f.demo, {"chat", "--stream", "--timeout", "0.5", "hi there"});
    check_failure(r, "error: timeout: ");
    CHECK(r.out == "Hello from\n");
    CHECK(r.seconds >= 0.45);
    CHECK(r.seconds < 2);
    CHECK(f.demo.requests() == 1);  // content was printed: never replayed
}

TEST_CASE("a stream cut after content is stream_truncated; the partial text stays", "[cli]") {
    demo_fixture f;
    f.demo.inject(fault::cut_after(4));
    auto r = sturdy_at(f.demo, {"chat", "--stream", "hi there"});
    check_failure(r, "error: stream_truncated: ");
    CHECK(r.out == "Hello from the\n");
}

TEST_CASE("--timeout bounds retry waits too", "[cli]") {
    demo_fixture f;
    // A Retry-After longer than the time left: failing at once beats sleeping into the deadline.
    f.demo.inject(fault::status(503).retry_after(5s));
    auto r = sturdy_at(f.demo, {"chat", "hi", "--timeout=1"});
    check_failure(r, "error: internal_server [503]: ");
    CHECK(r.seconds < 1);
    CHECK(f.demo.requests() == 1);
}

// ---- resilience options ----

TEST_CASE("--fallback moves on to the next model when one is down; --json says which answered", "[cli]") {
    demo_fixture f;
    f.demo.set_model_down("demo-large", true, 503);
    f.demo.set_model_down("demo-mini", true, 500);
    auto r = sturdy_at(f.demo, {"chat", "--json", "--model", "demo-large", "--fallback", "demo-mini,demo-embed",
                                "--max-retries", "1", "--retry-jitter", "full", "hi there"});
    REQUIRE(r.status == 0);
    const json j = one_json_line(r);
    CHECK(j.at("model") == "demo-embed");
    CHECK(j.at("fallbacks") == 2);
    CHECK(j.at("attempts") == 5);  // two per failing model (1 retry each), then one that answers
    CHECK(j.at("content") == reply_to_hi);
    CHECK(f.demo.requests_for("demo-large") == 2);
    CHECK(f.demo.requests_for("demo-mini") == 2);
}

TEST_CASE("--fallback does not move on for a client error", "[cli]") {
    demo_fixture f;
    f.demo.inject(fault::status(400).for_model("demo-large"));
    auto r = sturdy_at(f.demo, {"chat", "--model", "demo-large", "--fallback", "demo-mini", "hi"});
    check_failure(r, "error: bad_request [400]: ");
    CHECK(f.demo.requests_for("demo-mini") == 0);
}

TEST_CASE("without --fallback, --json reports zero fallbacks", "[cli]") {
    demo_fixture f;
    CHECK(one_json_line(sturdy_at(f.demo, {"chat", "--json", "hi"})).at("fallbacks") == 0);
}

TEST_CASE("--idle-timeout: a gap between chunks longer than it fails the stream", "[cli]") {
    demo_fixture f;
    f.demo.inject(fault::stall_after(3));
    auto r = sturdy_at(f.demo, {"chat", "--stream", "--idle-timeout", "0.3", "--max-retries", "0", "hi there"});
    check_failure(r, "error: timeout: ");
    CHECK(r.err == "error: timeout: no chunk within 300 ms\n");
    CHECK(r.out == "Hello from\n");
    CHECK(r.seconds < 2);
}

TEST_CASE("--first-token-timeout: no content in time is a timeout, retried before anything printed", "[cli]") {
    demo_fixture f;
    f.demo.inject(fault::stall_after(1));  // the role chunk, then silence
    auto r = sturdy_at(f.demo, {"chat", "--stream", "--json", "--first-token-timeout", "0.3", "hi there"});
    REQUIRE(r.status == 0);
    const json j = one_json_line(r);
    CHECK(j.at("attempts") == 2);
    CHECK(j.at("content") == reply_to_hi);

    f.demo.inject(fault::stall_after(1));
    auto failed = sturdy_at(f.demo, {"chat", "--stream", "--first-token-timeout", "0.3", "--max-retries", "0", "hi"});
    check_failure(failed, "error: timeout: ");
    CHECK(failed.err == "error: timeout: no first token within 300 ms\n");
    CHECK(failed.out.empty());  // nothing was printed, so there is no line to finish
}

// ---- usage ----

TEST_CASE("usage errors exit 2 with one line, and call nothing", "[cli]") {
    demo_fixture f;
    const auto args = GENERATE(values<std::vector<std::string>>({
        {},
        {"chta", "hi"},
        {"chat"},
        {"chat", "one", "two"},
        {"models", "extra"},
        {"embed"},
        {"chat", "--bogus", "hi"},
        {"chat", "-x", "hi"},
        {"chat", "--json=yes", "hi"},
        {"chat", "hi", "--model"},
        {"chat", "--model=", "hi"},
        {"chat", "--max-tokens", "abc", "hi"},
        {"chat", "--max-tokens", "0", "hi"},
        {"chat", "--max-tokens", "99999999999", "hi"},
        {"chat", "--temperature", "warm", "hi"},
        {"chat", "--temperature", "nan", "hi"},
        {"chat", "--seed", "1.5", "hi"},
        {"embed", "--dimensions", "-3", "x"},
        {"models", "--max-retries", "-1"},
        {"models", "--timeout", "0"},
        {"models", "--timeout", "soon"},
        {"chat", "--retry-jitter", "wobbly", "hi"},
        {"chat", "--fallback", "a,,b", "hi"},
        {"chat", "--fallback=", "hi"},
        {"chat", "--idle-timeout", "-1", "hi"},
        {"chat", "--first-token-timeout", "never", "hi"},
        {"chat", "--price-in", "cheap", "--price-out", "1", "hi"},
        {"chat", "--price-in", "-1", "--price-out", "1", "hi"},
        {"chat", "--price-in", "1", "hi"},  // chat needs --price-out too
        {"chat", "--price-out", "1", "hi"},
        {"embed", "--price-cached-in", "1", "x"},
        {"bench", "--price-in", "1", "hi"},
        {"chat", "--prices", "/nonexistent/prices.json", "hi"},
        {"chat", "--prices=", "hi"},
        {"bench"},
        {"bench", "one", "two"},
        {"bench", "--requests", "0", "hi"},
        {"bench", "--requests", "1000001", "hi"},
        {"bench", "--concurrency", "0", "hi"},
        {"bench", "--concurrency", "257", "hi"},
        {"bench", "--target", "nameonly", "hi"},
        {"bench", "--target", "=http://x/v1", "hi"},
        {"bench", "--target", "a=", "hi"},
        {"bench", "--target", "a=http://x/v1,", "hi"},
        {"bench", "--target", "a=http://x/v1", "--target", "a=http://y/v1", "hi"},
    }));
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    INFO("sturdy " << joined);
    check_usage_error(sturdy_at(f.demo, args));
    CHECK(f.demo.requests() == 0);
}

TEST_CASE("usage errors do not repeat option values", "[cli]") {
    auto r = sturdy({"chat", "--api-key=sk-secret-0123456789", "--max-tokens", "sk-secret-0123456789", "hi"});
    CHECK(r.status == 2);
    CHECK(r.err.find("sk-secret") == std::string::npos);
}

// ---- prices ----

namespace {

/// A file holding `text`, removed at the end of the test.
class temp_file {
public:
    explicit temp_file(const std::string& text) {
        char name[] = "/tmp/sturdy_cli_test_XXXXXX";
        const int fd = ::mkstemp(name);
        REQUIRE(fd >= 0);
        path_ = name;
        REQUIRE(::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
        ::close(fd);
    }
    ~temp_file() { std::remove(path_.c_str()); }
    temp_file(const temp_file&) = delete;
    temp_file& operator=(const temp_file&) = delete;
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

/// A server that answers every chat completion with `body`.
struct scripted_fixture {
    sturdy_test::script_server server;
    explicit scripted_fixture(const std::string& body) { server.set_default(sturdy_test::reply::json(200, body)); }
};

}  // namespace

TEST_CASE("chat --json: the --price-* options price the reply; usage shows cached and reasoning tokens",
          "[cli][prices]") {
    // 100 prompt tokens of which 40 cached, 50 completion tokens of which 20 reasoning.
    const std::string details =
        R"("prompt_tokens_details": {"cached_tokens": 40}, "completion_tokens_details": {"reasoning_tokens": 20})";
    scripted_fixture f(sturdy_cli_test::chat_completion("some-unlisted-model", usage_of(100, 50, details)));
    auto r = sturdy_at(f.server.base_url(),
                       {"chat", "--json", "--price-in", "2", "--price-cached-in", "0.5", "--price-out", "8", "hi"});
    REQUIRE(r.status == 0);
    const json j = one_json_line(r);
    const json& usage = j.at("usage");
    CHECK(usage.at("cached_tokens") == 40);
    CHECK(usage.at("reasoning_tokens") == 20);
    // (60 uncached * 2 + 40 cached * 0.5 + 50 completion * 8) / 1e6: the flags price any model.
    REQUIRE(j.at("cost_usd").is_number());
    CHECK(j.at("cost_usd").get<double>() == Approx(540e-6).epsilon(1e-12));

    // Without --price-cached-in, cached tokens cost the input price: (100 * 2 + 50 * 8) / 1e6.
    auto uncached = sturdy_at(f.server.base_url(), {"chat", "--json", "--price-in=2", "--price-out=8", "hi"});
    REQUIRE(uncached.status == 0);
    CHECK(one_json_line(uncached).at("cost_usd").get<double>() == Approx(600e-6).epsilon(1e-12));
}

TEST_CASE("chat --json: without price options the built-in table prices the model that answered", "[cli][prices]") {
    scripted_fixture f(sturdy_cli_test::chat_completion("gpt-4o-mini-2024-07-18", usage_of(1000, 500)));
    auto r = sturdy_at(f.server.base_url(), {"chat", "--json", "hi"});
    REQUIRE(r.status == 0);
    const json j = one_json_line(r);
    // gpt-4o-mini: 0.15 in, 0.60 out per million: (1000 * 0.15 + 500 * 0.6) / 1e6.
    CHECK(j.at("cost_usd").get<double>() == Approx(450e-6).epsilon(1e-12));
    CHECK_FALSE(j.at("usage").contains("cached_tokens"));  // none reported
    CHECK_FALSE(j.at("usage").contains("reasoning_tokens"));
}

TEST_CASE("chat --json: cost_usd is null for a model no table prices", "[cli][prices]") {
    demo_fixture f;
    auto r = sturdy_at(f.demo, {"chat", "--json", "--model", "demo-mini", "hi there"});
    REQUIRE(r.status == 0);
    const json j = one_json_line(r);
    REQUIRE(j.contains("cost_usd"));
    CHECK(j.at("cost_usd").is_null());
}

TEST_CASE("--prices FILE prices by its table; the price options win over it", "[cli][prices]") {
    demo_fixture f;
    temp_file prices(R"({"prices_read": "2026-01-01", "models": {"demo-mini": {"input": 1, "output": 2}}})");
    auto r = sturdy_at(f.demo, {"chat", "--json", "--model", "demo-mini", "--prices", prices.path(), "hi there"});
    REQUIRE(r.status == 0);
    // 2 prompt and 10 completion tokens (the demo server counts words): (2 * 1 + 10 * 2) / 1e6.
    CHECK(one_json_line(r).at("cost_usd").get<double>() == Approx(22e-6).epsilon(1e-12));

    // The file replaces the built-in table, which prices gpt-4o-mini.
    auto unlisted = sturdy_at(f.demo, {"chat", "--json", "--model", "gpt-4o-mini", "--prices", prices.path(), "hi"});
    REQUIRE(unlisted.status == 0);
    CHECK(one_json_line(unlisted).at("cost_usd").is_null());

    auto flags = sturdy_at(f.demo, {"chat", "--json", "--model", "demo-mini", "--prices", prices.path(), "--price-in",
                                    "3", "--price-out", "0", "hi there"});
    REQUIRE(flags.status == 0);
    CHECK(one_json_line(flags).at("cost_usd").get<double>() == Approx(6e-6).epsilon(1e-12));  // 2 * 3 / 1e6
}

TEST_CASE("--prices FILE that is not a price table is a usage error, and names no value", "[cli][prices]") {
    demo_fixture f;
    for (const std::string text : {"not json", R"({"models": {"demo-mini": {"input": -1, "output": 2}}})",
                                   R"({"models": {"demo-mini": {"input": 1, "outptu": 2}}})", ""}) {
        INFO("file: " << text);
        temp_file prices(text);
        auto r = sturdy_at(f.demo, {"chat", "--prices", prices.path(), "hi"});
        check_usage_error(r);
        CHECK(r.err.find("--prices") != std::string::npos);
        CHECK(r.err.find(prices.path()) == std::string::npos);
    }
    CHECK(f.demo.requests() == 0);
}

TEST_CASE("embed --json: cost_usd by --price-in, else by the built-in table", "[cli][prices]") {
    demo_fixture f;
    // 3 prompt tokens ("first text", "second"); embeddings have no completion, so no --price-out.
    auto priced = sturdy_at(f.demo, {"embed", "--json", "--price-in", "0.5", "first text", "second"});
    REQUIRE(priced.status == 0);
    CHECK(one_json_line(priced).at("cost_usd").get<double>() == Approx(1.5e-6).epsilon(1e-6));

    // text-embedding-3-small, the default model: 0.02 per million.
    auto builtin = sturdy_at(f.demo, {"embed", "--json", "first text", "second"});
    REQUIRE(builtin.status == 0);
    CHECK(one_json_line(builtin).at("cost_usd").get<double>() == Approx(6e-8).epsilon(1e-6));

    auto unpriced = sturdy_at(f.demo, {"embed", "--json", "--model", "demo-embed", "first text"});
    REQUIRE(unpriced.status == 0);
    CHECK(one_json_line(unpriced).at("cost_usd").is_null());
}

TEST_CASE("--help prints usage on stdout and exits 0", "[cli]") {
    const auto args = GENERATE(values<std::vector<std::string>>({
        {"--help"},
        {"-h"},
        {"chat", "--help"},
        {"embed", "--max-tokens", "abc", "-h"},  // help wins over mistakes
    }));
    auto r = sturdy(args);
    CHECK(r.status == 0);
    CHECK(r.err.empty());
    CHECK(r.out.rfind("Usage:\n  sturdy chat   [options] PROMPT\n", 0) == 0);
    CHECK(r.out.find("--max-retries") != std::string::npos);
    CHECK(r.out.find("OPENAI_MODEL") != std::string::npos);
}

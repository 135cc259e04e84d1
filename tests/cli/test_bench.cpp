// `sturdy bench`, run as a subprocess against servers whose latencies and errors are known, and
// its statistics (examples/cli/bench_stats.hpp) on their own.
#include "bench_stats.hpp"
#include "cli_support.hpp"
#include "demo_server.hpp"
#include "support/catch.hpp"
#include "support/script_server.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using json = nlohmann::ordered_json;
using sturdy_cli::nearest_rank;
using sturdy_cli::percentile;
using sturdy_cli::summarise;
using sturdy_cli_test::chat_chunk;
using sturdy_cli_test::chat_completion;
using sturdy_cli_test::one_json_line;
using sturdy_cli_test::sturdy;
using sturdy_cli_test::sturdy_at;
using sturdy_cli_test::usage_chunk;
using sturdy_cli_test::usage_of;
using sturdy_test::reply;

using strings = std::vector<std::string>;

strings keys_of(const json& object) {
    strings keys;
    for (const auto& item : object.items()) keys.push_back(item.key());
    return keys;
}

/// One element of `bench --json`'s "targets" has exactly the documented keys, in order.
void check_target_shape(const json& target, bool streamed) {
    INFO(target.dump());
    CHECK(keys_of(target) == strings{"name", "base_url", "model", "requests", "errors", "error_rate", "latency_ms",
                                     "ttft_ms", "tokens_per_s", "prompt_tokens", "completion_tokens", "cost_usd"});
    CHECK(target.at("name").is_string());
    CHECK(target.at("base_url").is_string());
    CHECK(target.at("model").is_string());
    CHECK(target.at("requests").is_number_unsigned());
    REQUIRE(target.at("errors").is_object());
    for (const auto& item : target.at("errors").items()) CHECK(item.value().is_number_unsigned());
    CHECK(target.at("error_rate").is_number());
    const strings summary{"p50", "p95", "p99", "mean"};
    CHECK(keys_of(target.at("latency_ms")) == summary);
    if (streamed)
        CHECK(keys_of(target.at("ttft_ms")) == summary);
    else
        CHECK(target.at("ttft_ms").is_null());
    CHECK((target.at("tokens_per_s").is_number() || target.at("tokens_per_s").is_null()));
    CHECK(target.at("prompt_tokens").is_number_integer());
    CHECK(target.at("completion_tokens").is_number_integer());
    CHECK((target.at("cost_usd").is_number() || target.at("cost_usd").is_null()));
}

/// A duration the server imposed, as the client measured it: never less, and not much more (the
/// tolerance is below the gap between two neighbouring ranks, so the rank is the one expected).
void check_ms(const json& measured, double expected_ms, double tolerance_ms) {
    INFO("expected " << expected_ms << " ms, measured " << measured);
    REQUIRE(measured.is_number());
    CHECK(measured.get<double>() >= expected_ms);
    CHECK(measured.get<double>() < expected_ms + tolerance_ms);
}

const std::string error_body = R"({"error": {"message": "scripted failure", "type": "server_error"}})";

}  // namespace

// ---- statistics ----

TEST_CASE("bench statistics: the nearest rank is ceil(p/100 * n)", "[cli][bench]") {
    CHECK(nearest_rank(95, 50) == 48);  // the issue's example
    CHECK(nearest_rank(50, 50) == 25);
    CHECK(nearest_rank(99, 50) == 50);
    CHECK(nearest_rank(95, 20) == 19);  // 19.0 exactly: no rounding up to 20
    CHECK(nearest_rank(99, 1000) == 990);
    CHECK(nearest_rank(99, 1001) == 991);  // 990.99 rounds up
    CHECK(nearest_rank(50, 1) == 1);
    CHECK(nearest_rank(0, 10) == 1);
    CHECK(nearest_rank(100, 10) == 10);
    // The definition, checked everywhere small: the smallest rank r with r/n >= p/100.
    for (std::size_t n = 1; n <= 120; ++n) {
        for (std::size_t p = 1; p <= 100; ++p) {
            INFO("n " << n << ", p " << p);
            const std::size_t r = nearest_rank(p, n);
            CHECK(100 * r >= p * n);
            CHECK(100 * (r - 1) < p * n);
        }
    }
}

TEST_CASE("bench statistics: percentiles of a sorted reference, and the summary of unsorted values", "[cli][bench]") {
    std::vector<double> sorted;
    for (int i = 1; i <= 50; ++i) sorted.push_back(10.0 * i);
    CHECK(percentile(sorted, 50) == 250.0);
    CHECK(percentile(sorted, 95) == 480.0);  // rank 48
    CHECK(percentile(sorted, 99) == 500.0);
    CHECK(percentile(sorted, 100) == 500.0);
    CHECK(percentile(sorted, 0) == 10.0);
    CHECK_FALSE(percentile({}, 50));

    std::vector<double> shuffled = sorted;
    std::reverse(shuffled.begin(), shuffled.end());
    std::rotate(shuffled.begin(), shuffled.begin() + 17, shuffled.end());
    const auto summary = summarise(shuffled);
    REQUIRE(summary);
    CHECK(summary->p50 == 250.0);
    CHECK(summary->p95 == 480.0);
    CHECK(summary->p99 == 500.0);
    CHECK(summary->mean == Approx(255.0));
    CHECK_FALSE(summarise({}));

    const auto one = summarise({7.5});
    REQUIRE(one);
    CHECK(one->p50 == 7.5);
    CHECK(one->p99 == 7.5);
    CHECK(one->mean == 7.5);
}

// ---- measurements ----

TEST_CASE("bench --json: latency percentiles and mean over known latencies", "[cli][bench]") {
    // The n-th request to arrive (from 0) is answered after 50 * (n + 1) ms: 50, 100... 1000 ms.
    sturdy_test::script_server server;
    std::atomic<int> arrived{0};
    server.set_handler([&](const sturdy_test::recorded_request&) {
        const int n = arrived++;
        return reply::json(200, chat_completion("gpt-4o-mini-2024-07-18", usage_of(10, 5)))
            .delay_headers(std::chrono::milliseconds(50 * (n + 1)));
    });
    auto r = sturdy_at(server.base_url(),
                       {"bench", "--json", "--requests", "20", "--concurrency", "10", "--max-retries", "0", "hi"});
    REQUIRE(r.status == 0);
    CHECK(r.err.empty());  // no progress bar: stderr is not a terminal
    const json j = one_json_line(r);
    CHECK(keys_of(j) == strings{"targets"});
    REQUIRE(j.at("targets").size() == 1);
    const json& target = j.at("targets")[0];
    check_target_shape(target, false);
    CHECK(target.at("name") == "default");
    CHECK(target.at("base_url") == server.base_url());
    CHECK(target.at("model") == "gpt-4o-mini");
    CHECK(target.at("requests") == 20);
    CHECK(target.at("errors") == json::object());
    CHECK(target.at("error_rate") == 0.0);
    // Nearest rank over 20: p50 is the 10th (500 ms), p95 the 19th (950 ms), p99 the 20th.
    const json& latency = target.at("latency_ms");
    check_ms(latency.at("p50"), 500, 40);
    check_ms(latency.at("p95"), 950, 40);
    check_ms(latency.at("p99"), 1000, 40);
    check_ms(latency.at("mean"), 525, 40);
    CHECK(target.at("prompt_tokens") == 200);
    CHECK(target.at("completion_tokens") == 100);
    // 100 completion tokens over 10.5 s of calls: 9.52 tokens/s, less the overhead.
    REQUIRE(target.at("tokens_per_s").is_number());
    CHECK(target.at("tokens_per_s").get<double>() <= 100 / 10.5);
    CHECK(target.at("tokens_per_s").get<double>() > 100 / (10.5 + 20 * 0.04));
    // The built-in table prices the snapshot as gpt-4o-mini: 20 * (10 * 0.15 + 5 * 0.6) / 1e6.
    REQUIRE(target.at("cost_usd").is_number());
    CHECK(target.at("cost_usd").get<double>() == Approx(20 * 4.5e-6).epsilon(1e-9));
    CHECK(server.request_count() == 20);
}

TEST_CASE("bench --json --stream: TTFT percentiles and tokens/s over known timings", "[cli][bench]") {
    // The n-th stream to arrive (from 0) sends its first token after 40 * (n + 1) ms, and the
    // rest, 10 completion tokens in all, 100 ms later.
    sturdy_test::script_server server;
    std::atomic<int> arrived{0};
    server.set_handler([&](const sturdy_test::recorded_request&) {
        const int n = arrived++;
        return reply::sse()
            .delay(std::chrono::milliseconds(40 * (n + 1)))
            .data(chat_chunk(R"({"role": "assistant", "content": "Hello"})"))
            .delay(100ms)
            .data(chat_chunk(R"({"content": " world"})", R"("stop")"))
            .data(usage_chunk(usage_of(3, 10)))
            .data("[DONE]");
    });
    auto r = sturdy_at(server.base_url(), {"bench", "--json", "--stream", "--requests", "10", "--concurrency", "10",
                                           "--max-retries", "0", "--price-in", "1", "--price-out", "2", "hi"});
    REQUIRE(r.status == 0);
    CHECK(r.err.empty());
    const json j = one_json_line(r);
    REQUIRE(j.at("targets").size() == 1);
    const json& target = j.at("targets")[0];
    check_target_shape(target, true);
    CHECK(target.at("errors") == json::object());
    // Nearest rank over 10: p50 is the 5th (200 ms), p95 and p99 the 10th (400 ms).
    const json& ttft = target.at("ttft_ms");
    check_ms(ttft.at("p50"), 200, 30);
    check_ms(ttft.at("p95"), 400, 30);
    check_ms(ttft.at("p99"), 400, 30);
    check_ms(ttft.at("mean"), 220, 30);
    const json& latency = target.at("latency_ms");
    check_ms(latency.at("p50"), 300, 30);
    check_ms(latency.at("p99"), 500, 30);
    check_ms(latency.at("mean"), 320, 30);
    // 10 tokens in the 100 ms after the first: 100 tokens/s (a chunk's delivery may vary a little).
    REQUIRE(target.at("tokens_per_s").is_number());
    CHECK(target.at("tokens_per_s").get<double>() == Approx(100).margin(25));
    CHECK(target.at("prompt_tokens") == 30);
    CHECK(target.at("completion_tokens") == 100);
    CHECK(target.at("cost_usd").get<double>() == Approx(10 * (3 * 1 + 10 * 2) / 1e6).epsilon(1e-9));
    for (const auto& request : server.requests()) {
        const auto body = nlohmann::json::parse(request.body);
        CHECK(body.at("stream") == true);
        CHECK(body.at("stream_options").at("include_usage") == true);  // tokens/s and cost need it
    }
}

TEST_CASE("bench --json: errors by kind, error rate and cost, for each target in order", "[cli][bench]") {
    sturdy_test::script_server server;
    for (int i = 0; i < 3; ++i) server.enqueue(reply::json(500, error_body));
    for (int i = 0; i < 2; ++i) server.enqueue(reply::json(429, error_body));
    server.enqueue(reply::json(401, error_body));
    server.enqueue(reply::json(200, "{not json"));
    server.set_default(reply::json(200, chat_completion("model-a", usage_of(100, 50))));
    const std::string refused = "http://127.0.0.1:" + std::to_string(sturdy_cli_test::refused_port()) + "/v1";

    auto r = sturdy({"bench", "--json", "--requests", "12", "--concurrency", "3", "--max-retries", "0", "--target",
                     "scripted=" + server.base_url() + ",model-a", "--target", "down=" + refused, "--price-in", "2",
                     "--price-out", "8", "hi"});
    REQUIRE(r.status == 0);  // the calls were made: their errors are results
    CHECK(r.err.empty());
    const json j = one_json_line(r);
    REQUIRE(j.at("targets").size() == 2);

    const json& scripted = j.at("targets")[0];
    check_target_shape(scripted, false);
    CHECK(scripted.at("name") == "scripted");
    CHECK(scripted.at("base_url") == server.base_url());
    CHECK(scripted.at("model") == "model-a");
    CHECK(scripted.at("requests") == 12);
    CHECK(scripted.at("errors") ==
          json{{"authentication", 1}, {"internal_server", 3}, {"invalid_response", 1}, {"rate_limit", 2}});
    CHECK(scripted.at("error_rate").get<double>() == Approx(7.0 / 12));
    CHECK(scripted.at("latency_ms").at("p50").is_number());  // over the 5 that succeeded
    CHECK(scripted.at("prompt_tokens") == 500);
    CHECK(scripted.at("completion_tokens") == 250);
    // Each success: (100 * 2 + 50 * 8) / 1e6.
    CHECK(scripted.at("cost_usd").get<double>() == Approx(5 * 600e-6).epsilon(1e-9));
    CHECK(server.request_count() == 12);  // no retries
    CHECK(nlohmann::json::parse(server.requests().front().body).at("model") == "model-a");

    const json& down = j.at("targets")[1];
    check_target_shape(down, false);
    CHECK(down.at("name") == "down");
    CHECK(down.at("base_url") == refused);
    CHECK(down.at("model") == "gpt-4o-mini");
    CHECK(down.at("errors") == json{{"connection", 12}});
    CHECK(down.at("error_rate") == 1.0);
    CHECK(down.at("latency_ms") == json{{"p50", nullptr}, {"p95", nullptr}, {"p99", nullptr}, {"mean", nullptr}});
    CHECK(down.at("tokens_per_s").is_null());
    CHECK(down.at("prompt_tokens") == 0);
    CHECK(down.at("completion_tokens") == 0);
    CHECK(down.at("cost_usd").is_null());
}

TEST_CASE("bench: --concurrency calls in flight, --requests calls in all", "[cli][bench]") {
    sturdy_demo::server demo;
    demo.start();
    demo.set_model_latency("demo-mini", 100ms);
    auto r = sturdy_at(demo.base_url(),
                       {"bench", "--json", "--model", "demo-mini", "--requests", "12", "--concurrency", "3", "hi"});
    REQUIRE(r.status == 0);
    CHECK(demo.requests_for("demo-mini") == 12);
    CHECK(demo.max_in_flight() == 3);
    CHECK(r.seconds >= 0.4);  // 4 rounds of 3 calls of 100 ms
    CHECK(one_json_line(r).at("targets")[0].at("requests") == 12);
}

TEST_CASE("bench prints a table per target, a blank line between them", "[cli][bench]") {
    sturdy_demo::server demo;
    demo.start();
    demo.inject(sturdy_demo::fault::status(503).for_model("demo-large"));
    auto r = sturdy({"bench", "--requests", "4", "--max-retries", "0", "--stream", "--target",
                     "mini=" + demo.base_url() + ",demo-mini", "--target", "large=" + demo.base_url() + ",demo-large",
                     "hi there"});
    REQUIRE(r.status == 0);
    CHECK(r.err.empty());
    std::istringstream text(r.out);
    strings lines;
    for (std::string line; std::getline(text, line);) lines.push_back(line);
    INFO(r.out);
    REQUIRE(lines.size() == 23);  // 11 rows, a blank line, 11 rows
    CHECK(lines[0] == "target        mini");
    CHECK(lines[1] == "base_url      " + demo.base_url());
    CHECK(lines[2] == "model         demo-mini");
    CHECK(lines[3] == "requests      4");
    CHECK(lines[4] == "errors        0");
    CHECK(lines[5] == "error_rate    0.0%");
    CHECK(lines[6].rfind("latency_ms    p50 ", 0) == 0);
    CHECK(lines[6].find("  p95 ") != std::string::npos);
    CHECK(lines[6].find("  p99 ") != std::string::npos);
    CHECK(lines[6].find("  mean ") != std::string::npos);
    CHECK(lines[7].rfind("ttft_ms       p50 ", 0) == 0);
    CHECK(lines[8].rfind("tokens_per_s  ", 0) == 0);
    CHECK(lines[9] == "tokens        8 prompt, 40 completion");  // the demo server counts words
    CHECK(lines[10] == "cost_usd      unknown");                 // no table prices demo-mini
    CHECK(lines[11].empty());
    CHECK(lines[12] == "target        large");
    CHECK(lines[15] == "requests      4");
    CHECK(lines[16] == "errors        1: internal_server 1");
    CHECK(lines[17] == "error_rate    25.0%");
}

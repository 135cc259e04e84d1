// Metrics from a real client over real sockets: what the client now reports for them (a stream's
// content chunks and pace, the call's usage, model and failure, attempts that start and end, even
// when an exception leaves one), and examples/metrics' /metrics endpoint scraped over HTTP.
#include <sturdy/metrics.hpp>
#include <sturdy/sturdy.hpp>

#include "support/catch.hpp"
#include "support/endpoints.hpp"
#include "support/script_server.hpp"

#include "../../examples/metrics/metrics_endpoint.hpp"

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>

using namespace std::chrono_literals;
using sturdy_test::reply;

namespace {

std::string chunk(const nlohmann::json& delta, const char* finish = nullptr) {
    return nlohmann::json{
        {"id", "c1"},
        {"object", "chat.completion.chunk"},
        {"model", "m"},
        {"choices",
         {{{"index", 0}, {"delta", delta}, {"finish_reason", finish ? nlohmann::json(finish) : nlohmann::json()}}}}}
        .dump();
}
const std::string usage_chunk =
    R"({"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":4,"completion_tokens":30,"total_tokens":34}})";
const char* const ok_reply = R"({"id":"x","object":"chat.completion","model":"m",
    "choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],
    "usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}})";

// A role chunk, three words 100 ms apart, a finish chunk, usage, [DONE].
reply paced_stream() {
    return reply::sse()
        .data(chunk({{"role", "assistant"}, {"content", ""}}))
        .data(chunk({{"content", "one"}}))
        .delay(100ms)
        .data(chunk({{"content", " two"}}))
        .delay(100ms)
        .data(chunk({{"content", " three"}}))
        .data(chunk(nlohmann::json::object(), "stop"))
        .data(usage_chunk)
        .data("[DONE]");
}

sturdy::client_options options_with(const sturdy_test::script_server& srv, std::shared_ptr<sturdy::event_sink> sink) {
    auto o = sturdy_test::options_for(srv.base_url(), "sk-metrics-secret-key");
    o.events = std::move(sink);
    return o;
}

sturdy::retry_policy quick_retry() {
    sturdy::retry_options r;
    r.max_retries = 2;
    r.backoff = sturdy::backoff::constant(1ms);
    return sturdy::retry_policy(r);
}

sturdy::chat_request streamed_hello() {
    sturdy::chat_request req{"m", {sturdy::chat_message::user("Hi")}};
    req.stream_options = sturdy::chat_stream_options{true, {}};
    return req;
}

}  // namespace

TEST_CASE("metrics: a stream's attempt reports its content chunks and their pace", "[socket][metrics]") {
    sturdy_test::script_server srv;
    srv.enqueue(paced_stream());
    auto stats = std::make_shared<sturdy::metrics>();
    sturdy::client client(options_with(srv, stats));
    auto out = client.stream(streamed_hello(), [](const sturdy::chat_chunk&) {});

    REQUIRE(out.call.attempt_log.size() == 1);
    const auto& a = out.call.attempt_log[0];
    CHECK(a.content_chunks == 4);  // three words and the finish reason; not the role, not usage
    REQUIRE(a.generation_time.has_value());
    CHECK(*a.generation_time >= 190ms);
    CHECK(*a.generation_time < 2s);
    CHECK_FALSE(out.call.failed);
    CHECK(out.call.model == "m");
    REQUIRE(out.call.usage.has_value());
    CHECK(out.call.usage->completion_tokens == 30);

    const auto s = stats->snapshot().series.at(0);
    CHECK(s.inter_token_latency.count == 1);
    CHECK(*s.inter_token_latency.p50 ==
          Approx(std::chrono::duration<double>(*a.generation_time).count() / 3).epsilon(0.011));
    REQUIRE(s.tokens_per_second.count == 1);
    CHECK(*s.tokens_per_second.p50 ==
          Approx(30 / std::chrono::duration<double>(*a.generation_time).count()).epsilon(0.011));
    CHECK(s.completion_tokens == 30);
    CHECK(s.time_to_first_token.count == 1);
}

TEST_CASE("metrics: an unstreamed reply is one attempt with no chunks; its rate is over the attempt",
          "[socket][metrics]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::json(200, ok_reply));
    auto stats = std::make_shared<sturdy::metrics>();
    sturdy::client client(options_with(srv, stats));
    auto out = client.chat({"m", {sturdy::chat_message::user("Hi")}});
    CHECK(out.call.attempt_log.at(0).content_chunks == 0);
    CHECK_FALSE(out.call.attempt_log.at(0).generation_time.has_value());
    REQUIRE(out.call.usage.has_value());
    CHECK(out.call.usage->prompt_tokens == 5);
    const auto s = stats->snapshot().series.at(0);
    CHECK(s.inter_token_latency.count == 0);
    CHECK(s.tokens_per_second.count == 1);
    CHECK(s.prompt_tokens == 5);
}

TEST_CASE("metrics: a failed call says so, and is counted on its route with the route's model", "[socket][metrics]") {
    sturdy_test::script_server primary, backup;
    primary.enqueue(reply::status(503).body(R"({"error":{"message":"down"}})"));
    backup.enqueue(reply::status(400).body(R"({"error":{"message":"bad"}})"));
    auto stats = std::make_shared<sturdy::metrics>();
    sturdy::fallback_policy chain(
        {sturdy::fallback_target("primary", "m"),
         sturdy::fallback_target("backup", "other-model",
                                 sturdy_test::endpoint_for(backup.base_url(), "sk-backup-key"))});
    sturdy::basic_client<sturdy::curl_transport, sturdy::fallback_policy> client(options_with(primary, stats), chain);
    auto r = client.try_chat({"m", {sturdy::chat_message::user("Hi")}});
    REQUIRE_FALSE(r);
    const auto* report = r.error().call();
    REQUIRE(report != nullptr);
    CHECK(report->failed);
    CHECK(report->route == "backup");
    CHECK(report->model == "other-model");

    const auto snap = stats->snapshot();
    const auto* first = snap.find("primary", "m");
    const auto* second = snap.find("backup", "other-model");
    REQUIRE(first != nullptr);
    REQUIRE(second != nullptr);
    CHECK(first->attempts == 1);
    CHECK(first->requests == 0);
    CHECK(first->attempt_errors.at("internal_server") == 1);
    CHECK(second->requests == 1);
    CHECK(second->request_failures.at("bad_request") == 1);
    CHECK(second->http_responses.at("400") == 1);
    // No key anywhere in what is exported.
    CHECK(stats->to_prometheus().find("sk-") == std::string::npos);
    CHECK(stats->to_json().dump().find("sk-") == std::string::npos);
}

TEST_CASE("metrics: an exception from the stream's callback still ends the attempt", "[socket][metrics]") {
    sturdy_test::script_server srv;
    srv.enqueue(paced_stream());
    auto stats = std::make_shared<sturdy::metrics>();
    sturdy::client client(options_with(srv, stats));
    CHECK_THROWS_AS(
        client.stream(streamed_hello(), [](const sturdy::chat_chunk&) -> bool { throw std::runtime_error("boom"); }),
        std::runtime_error);
    const auto s = stats->snapshot().series.at(0);
    CHECK(s.attempts == 1);
    CHECK(s.attempts_in_flight == 0);
    CHECK(s.attempt_errors.at("cancelled") == 1);
}

TEST_CASE("metrics: /metrics, served as examples/metrics does, is scraped over a socket", "[socket][metrics]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::json(200, ok_reply));
    srv.enqueue(reply::status(429).header("retry-after-ms", "1").body(R"({"error":{"message":"slow"}})"));
    srv.enqueue(reply::json(200, ok_reply));
    srv.enqueue(paced_stream());
    srv.enqueue(reply::status(401).body(R"({"error":{"message":"no"}})"));
    auto stats = std::make_shared<sturdy::metrics>();
    auto options = options_with(srv, stats);
    auto prices = std::make_shared<sturdy::price_table>();
    prices->set("m", {1.0, std::nullopt, std::nullopt, 2.0});
    options.prices = prices;
    sturdy::client client(options, quick_retry());
    const sturdy::chat_request hello{"m", {sturdy::chat_message::user("Hi")}};
    client.chat(hello);
    client.chat(hello);  // a 429, then the retry answers
    client.stream(streamed_hello(), [](const sturdy::chat_chunk&) {});
    CHECK_FALSE(client.try_chat(hello));  // 401: not retried

    metrics_endpoint endpoint(stats);
    httplib::Client scraper("127.0.0.1", endpoint.port());
    const auto got = scraper.Get("/metrics");
    REQUIRE(got);
    CHECK(got->status == 200);
    CHECK(got->get_header_value("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
    const std::string& page = got->body;
    const std::string m = R"({route="",model="m")";
    CHECK(prometheus_sample(page, "sturdy_requests_total" + m + "}") == 4);
    CHECK(prometheus_sample(page, "sturdy_attempts_total" + m + "}") == 5);
    CHECK(prometheus_sample(page, "sturdy_request_failures_total" + m + ",kind=\"authentication\"}") == 1);
    CHECK(prometheus_sample(page, "sturdy_attempt_errors_total" + m + ",kind=\"rate_limit\"}") == 1);
    CHECK(prometheus_sample(page, "sturdy_http_responses_total" + m + ",status=\"200\"}") == 3);
    CHECK(prometheus_sample(page, "sturdy_http_responses_total" + m + ",status=\"429\"}") == 1);
    CHECK(prometheus_sample(page, "sturdy_http_responses_total" + m + ",status=\"401\"}") == 1);
    CHECK(prometheus_sample(page, "sturdy_prompt_tokens_total" + m + "}") == 5 + 5 + 4);
    CHECK(prometheus_sample(page, "sturdy_completion_tokens_total" + m + "}") == 2 + 2 + 30);
    // (14 prompt tokens at $1 + 34 completion tokens at $2) per million.
    CHECK(prometheus_sample(page, "sturdy_cost_usd_total" + m + "}") == Approx(82e-6));
    CHECK(prometheus_sample(page, "sturdy_time_to_first_token_seconds_count" + m + "}") == 1);
    CHECK(prometheus_sample(page, "sturdy_inter_token_latency_seconds_count" + m + "}") == 1);
    CHECK(prometheus_sample(page, "sturdy_inter_token_latency_seconds" + m + ",quantile=\"0.5\"}") >= 0.06);
    CHECK(prometheus_sample(page, "sturdy_attempt_latency_seconds_count" + m + "}") == 5);
    CHECK(prometheus_sample(page, "sturdy_request_latency_seconds_count" + m + "}") == 4);
    CHECK(prometheus_sample(page, "sturdy_attempts_in_flight" + m + "}") == 0);
    CHECK(page.find("sk-metrics-secret-key") == std::string::npos);
    CHECK(scraper.Get("/other")->status == 404);
}

TEST_CASE("metrics: a breaker that opens shows in the circuit gauge", "[socket][metrics]") {
    sturdy_test::script_server srv;
    for (int i = 0; i < 2; ++i) srv.enqueue(reply::status(500).body(R"({"error":{"message":"down"}})"));
    auto stats = std::make_shared<sturdy::metrics>();
    sturdy::circuit_breaker_options o;
    o.name = "primary-breaker";
    o.failure_threshold = 2;
    sturdy::basic_client<sturdy::curl_transport, sturdy::circuit_breaker> client(options_with(srv, stats),
                                                                                 sturdy::circuit_breaker(o));
    const sturdy::chat_request hello{"m", {sturdy::chat_message::user("Hi")}};
    for (int i = 0; i < 3; ++i) CHECK_FALSE(client.try_chat(hello));
    const auto snap = stats->snapshot();
    REQUIRE(snap.circuits.count("primary-breaker") == 1);
    CHECK(snap.circuits.at("primary-breaker") == sturdy::circuit_state::open);
    CHECK(snap.series.at(0).request_failures.at("circuit_open") == 1);
    CHECK(snap.series.at(0).attempts == 2);  // the refused call made none
    CHECK(stats->to_prometheus().find("sturdy_circuit_state{policy=\"primary-breaker\"} 2\n") != std::string::npos);
}

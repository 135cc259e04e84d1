// What a call reports of itself, and what the client guarantees whichever policy runs it: every
// attempt and error in the report, nothing received lost, no stream replayed.
#include <sturdy/sturdy.hpp>
#include <sturdy/testing/fake_clock.hpp>

#include "support/catch.hpp"
#include "support/script_server.hpp"

#include <chrono>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using sturdy::error_kind;
using sturdy_test::reply;

namespace {

std::string delta_chunk(const nlohmann::json& delta) {
    return nlohmann::json{{"id", "c1"},
                          {"object", "chat.completion.chunk"},
                          {"model", "m"},
                          {"choices", {{{"index", 0}, {"delta", delta}, {"finish_reason", nullptr}}}}}
        .dump();
}

sturdy::client_options options_for(const sturdy_test::script_server& srv) {
    sturdy::client_options o;
    o.base_url = srv.base_url();
    o.api_key = "sk-report-test-key";
    o.timeout = 5s;
    return o;
}

const sturdy::chat_request hello{"m", {sturdy::chat_message::user("Hi")}};

/// A retry written by a user, unaware of streams: it calls the attempt again on any failure.
struct naive_retry {
    int attempts = 3;
    template <class Attempt>
    auto execute(sturdy::call_context& ctx, Attempt&& attempt) const -> decltype(attempt(ctx)) {
        auto out = attempt(ctx);
        for (int i = 1; i < attempts && !out; ++i) out = attempt(ctx);
        return out;
    }
};

const sturdy::property_key<std::string> tenant{"tenant"};

/// A user's policy that refuses a call without a tenant (a request_options property).
struct requires_tenant {
    template <class T, class Next, class Done>
    void start(sturdy::call_context& ctx, Next next, Done done) const {
        if (!ctx.properties.find(tenant))
            return done(sturdy::result<T>(sturdy::error(error_kind::invalid_argument, "no tenant")));
        next(ctx, std::move(done));
    }
};

}  // namespace

TEST_CASE("report: request_options::properties reach the client's policy", "[socket][report]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::json(200, R"({"object":"list","data":[]})"));
    sturdy::basic_client<sturdy::curl_transport, requires_tenant> client(options_for(srv));
    sturdy::request_options call;
    auto refused = client.try_models(call);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().message() == "no tenant");
    call.properties.set(tenant, std::string("acme"));
    CHECK(client.try_models(call).has_value());
    CHECK(srv.requests().size() == 1);
}

TEST_CASE("report: a user's own retry cannot replay a stream that delivered content", "[socket][report]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::sse().data(delta_chunk({{"role", "assistant"}})).data(delta_chunk({{"content", "Hel"}})).drop());
    srv.enqueue(reply::sse().data(delta_chunk({{"content", "Hello again"}})).data("[DONE]"));
    sturdy::basic_client<sturdy::curl_transport, naive_retry> client(options_for(srv));
    std::string seen;
    auto out = client.try_stream(hello, [&](const sturdy::chat_chunk& c) { seen += c.content(); });
    REQUIRE_FALSE(out.has_value());
    CHECK(seen == "Hel");  // never a second reply
    CHECK(srv.requests().size() == 1);
    const auto& report = *out.error().call();
    CHECK(report.attempts == 1);
    REQUIRE(report.errors.size() == 3);
    CHECK(report.errors[0].kind() == error_kind::stream_truncated);
    CHECK(report.errors[1].code() == sturdy::error_codes::stream_committed);
    CHECK(report.errors[2].code() == sturdy::error_codes::stream_committed);
    CHECK(out.error().kind() == error_kind::invalid_argument);
}

TEST_CASE("report: a failed call's report ends with its own error, and lists every attempt", "[socket][report]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::status(503).header("retry-after-ms", "1").body(R"({"error":{"message":"busy"}})"));
    srv.enqueue(reply::status(400).body(R"({"error":{"message":"bad"}})"));
    sturdy::client client(options_for(srv));
    auto out = client.try_chat(hello);
    REQUIRE_FALSE(out.has_value());
    const auto& report = *out.error().call();
    REQUIRE(report.errors.size() == 2);
    CHECK(report.errors.back().kind() == out.error().kind());
    CHECK(report.errors.back().message() == "bad");
    REQUIRE(report.attempt_log.size() == 2);
    CHECK(report.attempt_log[0].number == 1);
    CHECK(report.attempt_log[0].status == 503);
    CHECK(report.attempt_log[0].model == "m");
    REQUIRE(report.attempt_log[0].failure.has_value());
    CHECK(report.attempt_log[0].failure->status() == 503);
    CHECK(report.attempt_log[1].status == 400);
    CHECK(report.attempt_log[1].latency > std::chrono::microseconds(0));
}

TEST_CASE("report: a policy's own refusal is in the report, as the call's error", "[socket][report]") {
    sturdy_test::script_server srv;
    sturdy::circuit_breaker breaker;
    breaker.isolate();
    sturdy::basic_client<sturdy::curl_transport, sturdy::circuit_breaker> client(options_for(srv), breaker);
    auto out = client.try_chat(hello);
    REQUIRE_FALSE(out.has_value());
    REQUIRE(out.error().call()->errors.size() == 1);
    CHECK(out.error().call()->errors[0].kind() == error_kind::circuit_open);
    CHECK(out.error().call()->attempt_log.empty());
    CHECK(srv.requests().empty());
}

TEST_CASE("report: a stream cut mid-reasoning keeps the reasoning and tool-call fragments", "[socket][report]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::sse()
                    .data(delta_chunk({{"role", "assistant"}, {"reasoning_content", "Let me think"}}))
                    .data(delta_chunk({{"reasoning_content", " about it..."}}))
                    .data(delta_chunk({{"tool_calls",
                                        {{{"index", 0},
                                          {"id", "call_1"},
                                          {"type", "function"},
                                          {"function", {{"name", "weather"}, {"arguments", "{\"ci"}}}}}}}))
                    .drop());
    sturdy::client client(options_for(srv), sturdy::retry_policy(0));
    std::string reasoning;
    auto out = client.try_stream(hello, [&](const sturdy::chat_chunk& c) {
        if (auto it = c.choices.at(0).delta.extra.find("reasoning_content"); it != c.choices.at(0).delta.extra.end())
            reasoning += it->get<std::string>();
    });
    REQUIRE_FALSE(out.has_value());
    CHECK(out.error().kind() == error_kind::stream_truncated);
    CHECK(reasoning == "Let me think about it...");
    CHECK(out.error().partial_content().empty());
    const sturdy::chat_response* partial = out.error().partial_response();
    REQUIRE(partial != nullptr);
    const auto& message = partial->choices.at(0).message;
    CHECK(message.extra.at("reasoning_content") == reasoning);
    REQUIRE(message.tool_calls.size() == 1);
    CHECK(message.tool_calls[0].function.name == "weather");
    CHECK(message.tool_calls[0].function.arguments == "{\"ci");
}

TEST_CASE("report: a stream's first token is timed from the call and from its own attempt", "[socket][report]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::status(503).header("retry-after-ms", "200").body(R"({"error":{"message":"busy"}})"));
    srv.enqueue(reply::sse().data(delta_chunk({{"content", "Hi"}})).data("[DONE]"));
    sturdy::client client(options_for(srv));
    auto out = client.stream(hello, [](const sturdy::chat_chunk&) {});
    REQUIRE(out.call.time_to_first_token.has_value());
    REQUIRE(out.call.attempt_time_to_first_token.has_value());
    // The call's TTFT includes the 200 ms the server asked to wait; the attempt's does not.
    CHECK(*out.call.time_to_first_token >= 200ms);
    CHECK(*out.call.attempt_time_to_first_token < *out.call.time_to_first_token - 150ms);
    REQUIRE(out.call.attempt_log.size() == 2);
    CHECK(out.call.attempt_log[1].time_to_first_token == out.call.attempt_time_to_first_token);
    CHECK_FALSE(out.call.attempt_log[1].failure.has_value());
}

TEST_CASE("report: a call's times are read on the injected clock, as its policies' are", "[socket][report]") {
    // In virtual time the server's requested pause of 30 s passes at once on the fake clock, and
    // the report says 30 s: the client measured on the clock the retry waited on.
    sturdy_test::script_server srv;
    srv.enqueue(reply::status(503).header("retry-after", "30").body(R"({"error":{"message":"busy"}})"));
    srv.enqueue(reply::sse().data(delta_chunk({{"content", "Hi"}})).data("[DONE]"));
    sturdy::testing::fake_clock fake;
    sturdy::retry_options patient;
    patient.retry_after_limit = 60s;
    sturdy::basic_client<sturdy::curl_transport, sturdy::retry_policy> client(
        options_for(srv), sturdy::retry_policy(patient, fake.timing()), sturdy::curl_transport(), fake.timing());
    const auto started = std::chrono::steady_clock::now();
    auto out = client.stream(hello, [](const sturdy::chat_chunk&) {});
    CHECK(std::chrono::steady_clock::now() - started < 10s);  // nobody slept for real
    REQUIRE(fake.sleeps().size() == 1);
    CHECK(fake.sleeps()[0] == 30s);
    CHECK(out.call.latency == 30s);  // the fake clock moved only by the retry's wait
    REQUIRE(out.call.time_to_first_token.has_value());
    CHECK(*out.call.time_to_first_token == 30s);
    CHECK(out.call.attempt_time_to_first_token == std::chrono::microseconds(0));
}

TEST_CASE("report: model(id) through a fallback chain says which route answered", "[socket][report]") {
    sturdy_test::script_server deepseek, kimi;
    deepseek.enqueue(reply::status(404).body(R"({"error":{"message":"no such model","code":"model_not_found"}})"));
    kimi.enqueue(reply::json(200, R"({"id":"kimi-k2","object":"model","owned_by":"moonshot"})"));
    auto at = [](const sturdy_test::script_server& s) {
        sturdy::endpoint e;
        e.base_url = s.base_url();
        e.api_key = "sk-" + std::to_string(s.port());
        return e;
    };
    sturdy::fallback_policy chain(
        {sturdy::fallback_target("deepseek", "", at(deepseek)), sturdy::fallback_target("kimi", "", at(kimi))});
    sturdy::basic_client<sturdy::curl_transport, sturdy::fallback_policy> client(options_for(deepseek), chain);
    auto info = client.model("kimi-k2");
    CHECK(info.id == "kimi-k2");
    CHECK(info.call.route == "kimi");
    CHECK(info.call.fallbacks == 1);
    REQUIRE(info.call.errors.size() == 1);
    CHECK(info.call.errors[0].kind() == error_kind::not_found);

    // Asking one route: pin the call to it.
    deepseek.enqueue(reply::status(404).body(R"({"error":{"message":"no such model"}})"));
    sturdy::request_options only_deepseek;
    only_deepseek.pinned_route = "deepseek";
    auto there = client.try_model("kimi-k2", only_deepseek);
    REQUIRE_FALSE(there.has_value());
    CHECK(there.error().kind() == error_kind::not_found);
    CHECK(kimi.requests().size() == 1);
}

TEST_CASE("report: an outcome carries what its attempt saw of the reply", "[socket][report]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::json(200, R"({"id":"c","object":"chat.completion","created":1,"model":"m",
        "choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],
        "usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}})")
                    .header("x-ratelimit-remaining-requests", "41"));
    srv.enqueue(reply::json(429, R"({"error":{"message":"slow down"}})").header("retry-after", "7"));
    sturdy::basic_client<sturdy::curl_transport, sturdy::no_policy> client(options_for(srv));

    auto answered = client.try_chat(hello);
    REQUIRE(answered.has_value());
    const sturdy::reply_observation* seen = answered.observation();
    REQUIRE(seen != nullptr);
    CHECK(seen->status == 200);
    CHECK(seen->headers.get("x-ratelimit-remaining-requests") == "41");
    REQUIRE(seen->usage.has_value());
    CHECK(seen->usage->total_tokens == 7);
    CHECK(seen->latency.count() > 0);

    auto refused = client.try_chat(hello);
    REQUIRE_FALSE(refused.has_value());
    REQUIRE(refused.observation() != nullptr);
    CHECK(refused.observation()->status == 429);
    CHECK(refused.observation()->headers.get("retry-after") == "7");
    CHECK_FALSE(refused.observation()->usage.has_value());
}

TEST_CASE("report: a policy's own refusal carries no observation: no attempt made it", "[socket][report]") {
    sturdy_test::script_server srv;
    sturdy::basic_client<sturdy::curl_transport, requires_tenant> client(options_for(srv));
    auto refused = client.try_models();
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.observation() == nullptr);
    CHECK(srv.requests().empty());
}

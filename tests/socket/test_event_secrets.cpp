// The API key never reaches an event hook: every error a policy hands to its hooks (retry,
// fallback, breaker, hedging, shadow traffic) came through the client's redaction first. The
// servers echo the key in every error they send, in the forms relays use.
#include <sturdy/sturdy.hpp>

#include "support/catch.hpp"
#include "support/script_server.hpp"

#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using sturdy_test::reply;

namespace {

const std::string key = "sk-proj-event-hooks-5f0c2a9e71d84b36a0e9";

const char* const good_reply = R"({"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m",
    "choices":[{"index":0,"message":{"role":"assistant","content":"fine"},"finish_reason":"stop"}]})";

reply echoing(int status) {
    return reply::json(status, R"({"error":{"message":"upstream refused key )" + key + R"(","type":"server_error"}})");
}

sturdy::client_options options_for(const sturdy_test::script_server& srv) {
    sturdy::client_options o;
    o.base_url = srv.base_url();
    o.api_key = key;
    o.connect_timeout = 2s;
    o.timeout = 5s;
    return o;
}

const sturdy::chat_request hello{"m", {sturdy::chat_message::user("Hi")}};

// Every string of every error a hook received, collected from any thread.
struct seen_texts {
    std::mutex mutex;
    std::vector<std::string> texts;
    int errors = 0;

    void add(const sturdy::error& e) {
        std::lock_guard<std::mutex> lock(mutex);
        ++errors;
        for (const std::string& s : {std::string(e.what()), e.message(), e.body(), e.type(), e.code(), e.param(),
                                     e.request_id(), e.partial_content()})
            texts.push_back(s);
    }
    // No run of the key anywhere, and the echo itself did arrive, redacted.
    void check_clean() {
        std::lock_guard<std::mutex> lock(mutex);
        bool echo_seen = false;
        for (const auto& text : texts) {
            INFO(text);
            CHECK(text.find(key.substr(0, 8)) == std::string::npos);
            CHECK(text.find(key.substr(key.size() - 12)) == std::string::npos);
            echo_seen = echo_seen || text.find("upstream refused key [redacted]") != std::string::npos;
        }
        CHECK(echo_seen);
    }
};

}  // namespace

TEST_CASE("secrets: retry, fallback and breaker hooks never see the key", "[socket][secrets]") {
    sturdy_test::script_server primary, backup;
    primary.enqueue(echoing(500));
    primary.enqueue(echoing(503));
    backup.enqueue(reply::json(200, good_reply));
    seen_texts seen;

    sturdy::retry_options retry;
    retry.max_retries = 1;
    retry.backoff = sturdy::backoff::constant(1ms);
    retry.on_retry = [&](const sturdy::retry_event& e) { seen.add(e.cause); };
    auto breaker_for = [&](const std::string& name) {
        sturdy::circuit_breaker_options o;
        o.name = name;
        o.failure_threshold = 1;
        o.on_state_change = [&](const sturdy::circuit_state_event& e) {
            if (e.cause) seen.add(*e.cause);
        };
        return sturdy::circuit_breaker(o);
    };
    sturdy::fallback_options fallback;
    fallback.on_fallback = [&](const sturdy::fallback_event& e) { seen.add(e.cause); };
    sturdy::endpoint backup_endpoint;
    backup_endpoint.base_url = backup.base_url();
    backup_endpoint.api_key = key;
    const auto each_target = sturdy::compose(sturdy::retry_policy(retry), sturdy::per_route(breaker_for));
    const sturdy::basic_client<sturdy::curl_transport, sturdy::fallback_policy> client(
        options_for(primary),
        sturdy::fallback_policy({sturdy::fallback_target("primary", "m").with_policy(each_target),
                                 sturdy::fallback_target("backup", "m", backup_endpoint).with_policy(each_target)},
                                fallback));

    auto answer = client.chat(hello);
    CHECK(answer.content() == "fine");
    CHECK(answer.call.route == "backup");
    // One retry, one breaker opening (the retry's failure), one fallback: each handed the echoed error.
    CHECK(seen.errors == 3);
    seen.check_clean();
    for (const auto& met : answer.call.errors) seen.add(met);
    seen.check_clean();
}

TEST_CASE("secrets: a hedge started by a failure never sees the key", "[socket][secrets]") {
    sturdy_test::script_server srv;
    srv.enqueue(echoing(502));
    srv.enqueue(reply::json(200, good_reply));
    seen_texts seen;
    sturdy::hedging_options o;
    o.delay = 10s;  // only the failure starts the hedge
    o.on_hedge = [&](const sturdy::hedge_event& e) {
        if (e.cause) seen.add(*e.cause);
    };
    const sturdy::basic_client<sturdy::curl_transport, sturdy::hedging_policy> client(options_for(srv),
                                                                                      sturdy::hedging_policy(o));
    CHECK(client.chat(hello).content() == "fine");
    CHECK(seen.errors == 1);
    seen.check_clean();
}

TEST_CASE("secrets: a failed shadow call's error reaches on_shadow without the key", "[socket][secrets]") {
    sturdy_test::script_server live, candidate;
    live.enqueue(reply::json(200, good_reply));
    candidate.enqueue(echoing(401));
    seen_texts seen;
    sturdy::traffic_split_options opts;
    opts.on_shadow = [&](const sturdy::shadow_event& e) {
        if (e.shadow.failure) seen.add(*e.shadow.failure);
    };
    sturdy::endpoint candidate_endpoint;
    candidate_endpoint.base_url = candidate.base_url();
    candidate_endpoint.api_key = key;
    const sturdy::basic_client<sturdy::curl_transport, sturdy::traffic_split> client(
        options_for(live),
        sturdy::traffic_split({sturdy::split_arm("stable", "m").with_weight(1),
                               sturdy::split_arm("candidate", "m", candidate_endpoint).with_shadow(1.0)},
                              opts));
    CHECK(client.chat(hello).content() == "fine");
    // The shadow is reported when it ends, which may be after the live answer returned.
    for (int i = 0; i < 200; ++i) {
        {
            std::lock_guard<std::mutex> lock(seen.mutex);
            if (seen.errors == 1) break;
        }
        std::this_thread::sleep_for(10ms);
    }
    CHECK(seen.errors == 1);
    seen.check_clean();
}

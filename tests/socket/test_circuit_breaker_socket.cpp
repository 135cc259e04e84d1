// The circuit breaker in front of a real server: refused calls never reach the wire.
#include <sturdy/circuit_breaker.hpp>
#include <sturdy/pipeline.hpp>
#include <sturdy/sturdy.hpp>
#include <sturdy/testing/fake_clock.hpp>

#include "support/catch.hpp"
#include "support/script_server.hpp"

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using sturdy::circuit_state;
using sturdy::error_kind;
using sturdy_test::reply;

namespace {

const char* const chat_ok = R"({"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m",
    "choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"finish_reason":"stop"}]})";
const char* const busy = R"({"error":{"message":"overloaded","type":"server_error"}})";

const sturdy::chat_request hello{"m", {sturdy::chat_message::user("Hi")}};

template <class Policy>
sturdy::basic_client<sturdy::curl_transport, Policy> client_for(const sturdy_test::script_server& srv, Policy policy) {
    sturdy::client_options o;
    o.base_url = srv.base_url();
    o.api_key = "sk-breaker-test";
    o.connect_timeout = 2s;
    o.timeout = 5s;
    return sturdy::basic_client<sturdy::curl_transport, Policy>(o, std::move(policy));
}

sturdy::circuit_breaker named_breaker(sturdy::timing timing = {}, sturdy::clock::duration pause = 30s) {
    sturdy::circuit_breaker_options o;
    o.name = "script-server";
    o.break_duration = pause;
    return sturdy::circuit_breaker(o, std::move(timing));
}

}  // namespace

TEST_CASE("breaker over sockets: after three 503s the next call sends nothing; after the break a probe closes it", "[socket][breaker]") {
    sturdy_test::script_server srv;
    for (int i = 0; i < 3; ++i) srv.enqueue(reply::json(503, busy));
    srv.enqueue(reply::json(200, chat_ok));
    sturdy::testing::fake_clock fake;
    auto breaker = named_breaker(fake.timing());
    const auto client = client_for(srv, breaker);

    for (int i = 0; i < 3; ++i) CHECK(client.try_chat(hello).error().status() == 503);
    CHECK(breaker.state() == circuit_state::open);

    auto refused = client.try_chat(hello);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().kind() == error_kind::circuit_open);
    CHECK(std::string(refused.error().what()).find("'script-server' is open") != std::string::npos);
    CHECK(srv.request_count() == 3);  // nothing went out

    fake.advance(30s);
    auto probe = client.try_chat(hello);
    REQUIRE(probe.has_value());
    CHECK(probe->content() == "Hello there");
    CHECK(srv.request_count() == 4);
    CHECK(breaker.state() == circuit_state::closed);
}

TEST_CASE("breaker over sockets: inside a retry, the retries after the opening never reach the server", "[socket][breaker]") {
    sturdy_test::script_server srv;
    srv.set_default(reply::json(503, busy));
    sturdy::retry_options quick;
    quick.max_retries = 5;
    quick.backoff = sturdy::backoff::constant(5ms);
    sturdy::testing::fake_clock fake;
    auto breaker = named_breaker(fake.timing());
    const auto client = client_for(srv, sturdy::compose(sturdy::retry_policy(quick), breaker));

    auto first = client.try_chat(hello);
    CHECK(first.error().kind() == error_kind::circuit_open);  // three attempts, then refused
    CHECK(srv.request_count() == 3);
    CHECK(client.try_chat(hello).error().kind() == error_kind::circuit_open);
    CHECK(srv.request_count() == 3);
    CHECK(breaker.stats().rejections == 2);
}

TEST_CASE("breaker over sockets: streams cut off after their first content count as failures", "[socket][breaker]") {
    sturdy_test::script_server srv;
    const std::string content = R"({"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",)"
                                R"("choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]})";
    srv.set_default(reply::sse().data(content).drop());
    sturdy::testing::fake_clock fake;
    auto breaker = named_breaker(fake.timing());
    const auto client = client_for(srv, breaker);

    std::string seen;
    for (int i = 0; i < 3; ++i) {
        auto r = client.try_stream(hello, [&](const sturdy::chat_chunk& c) { seen += c.content(); });
        CHECK(r.error().kind() == error_kind::stream_truncated);
    }
    CHECK(seen == "HelHelHel");
    CHECK(breaker.state() == circuit_state::open);
    CHECK(client.try_stream(hello, [](const sturdy::chat_chunk&) {}).error().kind() == error_kind::circuit_open);
    CHECK(srv.request_count() == 3);
}

TEST_CASE("breaker over sockets: on the real clock, waiting out retry_after lets the probe through", "[socket][breaker]") {
    sturdy_test::script_server srv;
    for (int i = 0; i < 3; ++i) srv.enqueue(reply::json(500, busy));
    srv.enqueue(reply::json(200, chat_ok));
    auto breaker = named_breaker({}, 100ms);
    const auto client = client_for(srv, breaker);

    for (int i = 0; i < 3; ++i) client.try_chat(hello);
    auto refused = client.try_chat(hello);
    REQUIRE(refused.error().retry_after().has_value());
    CHECK(*refused.error().retry_after() <= 100ms);
    std::this_thread::sleep_for(*refused.error().retry_after());  // what a caller would do with the hint
    CHECK(client.try_chat(hello).has_value());
    CHECK(breaker.state() == circuit_state::closed);
    CHECK(srv.request_count() == 4);
}

TEST_CASE("breaker over sockets: the client's event sink hears the breaker's changes and refusals, by name",
          "[socket][breaker]") {
    struct breaker_log : sturdy::event_sink {
        std::mutex mutex;
        std::vector<std::string> heard;
        void add(const sturdy::event_source& from, std::string what) {
            std::lock_guard<std::mutex> lock(mutex);
            heard.push_back(std::string(from.policy) + "@" + std::string(from.route) + " " + what);
        }
        void on_circuit_state(const sturdy::event_source& from, const sturdy::circuit_state_event& e) override {
            add(from, std::string(sturdy::to_string(e.from)) + "->" + std::string(sturdy::to_string(e.to)));
        }
        void on_circuit_rejected(const sturdy::event_source& from, const sturdy::circuit_rejection_event&) override {
            add(from, "refused");
        }
    };
    sturdy_test::script_server srv;
    for (int i = 0; i < 3; ++i) srv.enqueue(reply::json(503, busy));
    srv.enqueue(reply::json(200, chat_ok));
    sturdy::testing::fake_clock fake;
    auto breaker = named_breaker(fake.timing());
    sturdy::client_options o;
    o.base_url = srv.base_url();
    o.api_key = "sk-breaker-test";
    o.timeout = 5s;
    auto log = std::make_shared<breaker_log>();
    o.events = log;  // every call of this client reports to it
    const sturdy::basic_client<sturdy::curl_transport, sturdy::circuit_breaker> client(o, breaker);

    for (int i = 0; i < 4; ++i) client.try_chat(hello);
    fake.advance(30s);
    CHECK(client.try_chat(hello).has_value());
    CHECK(log->heard == std::vector<std::string>{"script-server@ closed->open", "script-server@ refused",
                                                 "script-server@ open->half_open", "script-server@ half_open->closed"});
}

// One event sink for a whole client: client_options::events hears every call's attempts and end,
// and the events of the policies that run it, each with the policy's name and the route; and the
// call's request_options reach the policies as its context.
#include <sturdy/sturdy.hpp>

#include "support/catch.hpp"
#include "support/endpoints.hpp"
#include "support/script_server.hpp"

#include <chrono>
#include <iostream>
#include <memory>
#include <sstream>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using sturdy::fallback_target;
using sturdy_test::reply;

namespace {

const char* const ok_reply = R"({"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m",
    "choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]})";

const sturdy::chat_request hello{"m", {sturdy::chat_message::user("Hi")}};

/// Writes down every event as "<kind> <policy> <route>", in the order they came.
class journal : public sturdy::event_sink {
public:
    void on_retry(const sturdy::event_source& from, const sturdy::retry_event&) override { add("retry", from); }
    void on_fallback(const sturdy::event_source& from, const sturdy::fallback_event&) override {
        add("fallback", from);
    }
    void on_attempt(const sturdy::event_source& from, const sturdy::attempt_record& a) override {
        add("attempt", from);
        std::lock_guard<std::mutex> lock(mutex_);
        statuses_.push_back(a.status);
    }
    void on_call(const sturdy::event_source& from, const sturdy::call_info& info) override {
        add("call", from);
        std::lock_guard<std::mutex> lock(mutex_);
        call_attempts_.push_back(info.attempts);
    }

    std::vector<std::string> lines() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return lines_;
    }
    std::vector<int> statuses() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return statuses_;
    }
    std::vector<int> call_attempts() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return call_attempts_;
    }

private:
    void add(const char* kind, const sturdy::event_source& from) {
        std::lock_guard<std::mutex> lock(mutex_);
        lines_.push_back(std::string(kind) + " " + std::string(from.policy) + " " + std::string(from.route));
    }
    mutable std::mutex mutex_;
    std::vector<std::string> lines_;
    std::vector<int> statuses_;
    std::vector<int> call_attempts_;
};

/// A user's policy that writes down what the call's context says of its attempts.
struct context_probe {
    struct seen {
        std::optional<std::chrono::milliseconds> attempt_timeout;
        std::string trace_header;
    };
    std::shared_ptr<seen> out = std::make_shared<seen>();

    template <class T, class Next, class Done>
    void start(sturdy::call_context& ctx, Next next, Done done) const {
        out->attempt_timeout = ctx.attempt_timeout;
        for (const auto& h : ctx.headers)
            if (h.first == "x-trace") out->trace_header = h.second;
        next(ctx, std::move(done));
    }
};

// The README's sink, as written there.
struct log_sink : sturdy::event_sink {
    void on_retry(const sturdy::event_source& from, const sturdy::retry_event& e) override {
        std::clog << from.policy << '@' << from.route << ": retry " << e.retry << " after " << e.cause.what() << '\n';
    }
    void on_attempt(const sturdy::event_source& from, const sturdy::attempt_record& a) override {
        std::clog << from.route << ' ' << a.model << ' ' << a.status << ' ' << a.latency.count() << "us\n";
    }
};

/// Sends std::clog to a string for as long as it lives.
class clog_capture {
public:
    clog_capture() : saved_(std::clog.rdbuf(text_.rdbuf())) {}
    ~clog_capture() { std::clog.rdbuf(saved_); }
    std::string text() const { return text_.str(); }

private:
    std::ostringstream text_;
    std::streambuf* saved_;
};

}  // namespace

TEST_CASE("events: the README's log sink logs each retry and attempt of a routed call", "[socket][events]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::json(500, R"({"error":{"message":"oops"}})"));
    srv.enqueue(reply::json(200, ok_reply));
    auto options = sturdy_test::options_for(srv.base_url(), "sk-events-key");
    options.events = std::make_shared<log_sink>();
    sturdy::retry_options quick;
    quick.backoff = sturdy::backoff::constant(1ms);
    sturdy::basic_client<sturdy::curl_transport, sturdy::fallback_policy> client(
        options, sturdy::fallback_policy({fallback_target("local", "m").with_policy(sturdy::retry_policy(quick))}));

    clog_capture log;
    REQUIRE(client.try_chat(hello).has_value());
    const std::string text = log.text();
    CHECK(text.find("local m 500 ") == 0);
    CHECK(text.find("retry@local: retry 1 after ") != std::string::npos);
    CHECK(text.find("local m 200 ") != std::string::npos);
    CHECK(text.find("sk-events-key") == std::string::npos);
}

TEST_CASE("events: the client's sink hears each attempt, each retry and the call's end, in order", "[socket][events]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::json(503, R"({"error":{"message":"busy"}})").header("Retry-After", "0"));
    srv.enqueue(reply::json(200, ok_reply));
    auto sink = std::make_shared<journal>();
    auto opts = sturdy_test::options_for(srv.base_url(), "sk-events-key");
    opts.events = sink;
    sturdy::retry_options quick;
    quick.backoff = sturdy::backoff::constant(1ms);
    sturdy::basic_client<sturdy::curl_transport, sturdy::retry_policy> client(opts, sturdy::retry_policy(quick));

    auto reply_ = client.try_chat(hello);
    REQUIRE(reply_.has_value());
    CHECK(sink->lines() ==
          std::vector<std::string>{"attempt client ", "retry retry ", "attempt client ", "call client "});
    CHECK(sink->statuses() == std::vector<int>{503, 200});
    CHECK(sink->call_attempts() == std::vector<int>{2});
}

TEST_CASE("events: a failed call's end reaches the sink with the report its error carries", "[socket][events]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::json(400, R"({"error":{"message":"bad"}})"));
    auto sink = std::make_shared<journal>();
    auto opts = sturdy_test::options_for(srv.base_url(), "sk-events-key");
    opts.events = sink;
    sturdy::client client(opts);

    auto failed = client.try_chat(hello);
    REQUIRE_FALSE(failed.has_value());
    CHECK(sink->lines() == std::vector<std::string>{"attempt client ", "call client "});
    REQUIRE(failed.error().call() != nullptr);
    CHECK(sink->call_attempts() == std::vector<int>{failed.error().call()->attempts});
}

TEST_CASE("events: events on a route name it, and name the policy as its options do", "[socket][events]") {
    sturdy_test::script_server primary, backup;
    primary.enqueue(reply::json(503, R"({"error":{"message":"down"}})"));
    backup.enqueue(reply::json(200, ok_reply));
    auto sink = std::make_shared<journal>();
    auto opts = sturdy_test::options_for(primary.base_url(), "sk-events-key");
    opts.events = sink;
    sturdy::fallback_options chain;
    chain.name = "providers";
    sturdy::basic_client<sturdy::curl_transport, sturdy::fallback_policy> client(
        opts,
        sturdy::fallback_policy({fallback_target("deepseek", "m"),
                                 fallback_target("kimi", "m", sturdy_test::endpoint_for(backup.base_url(), "sk-b"))},
                                chain));

    REQUIRE(client.try_chat(hello).has_value());
    CHECK(sink->lines() == std::vector<std::string>{"attempt client deepseek", "fallback providers deepseek",
                                                    "attempt client kimi", "call client kimi"});
}

TEST_CASE("events: request_options enter the call's context, where every policy sees them", "[socket][events]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::json(200, ok_reply));
    srv.enqueue(reply::json(200, ok_reply));
    context_probe probe;
    sturdy::basic_client<sturdy::curl_transport, context_probe> client(
        sturdy_test::options_for(srv.base_url(), "sk-events-key"), probe);

    sturdy::request_options call;
    call.timeout = 1500ms;
    call.headers.push_back({"x-trace", "t-42"});
    REQUIRE(client.try_chat(hello, call).has_value());
    CHECK(probe.out->attempt_timeout == std::optional<std::chrono::milliseconds>(1500ms));
    CHECK(probe.out->trace_header == "t-42");
    CHECK(srv.requests().back().header("x-trace") == "t-42");

    // A bound on the whole call alone lifts the client's per-attempt default: the deadline governs.
    sturdy::request_options bounded;
    bounded.total_timeout = 2s;
    REQUIRE(client.try_chat(hello, bounded).has_value());
    CHECK_FALSE(probe.out->attempt_timeout.has_value());
}

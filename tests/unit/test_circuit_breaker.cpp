// The circuit breaker in virtual time: scripted attempts, no client, no real waits.
#include <sturdy/circuit_breaker.hpp>
#include <sturdy/dynamic_pipeline.hpp>
#include <sturdy/executor.hpp>
#include <sturdy/pipeline.hpp>
#include <sturdy/result.hpp>
#include <sturdy/retry.hpp>
#include <sturdy/testing/fake_clock.hpp>

#include "support/catch.hpp"
#include "support/gate.hpp"
#include "support/rerunning_store.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono;
using sturdy::circuit_state;
using sturdy::error;
using sturdy::error_kind;

namespace {

error status_error(int status, std::string code = "") {
    sturdy::error_details d;
    d.status = status;
    d.message = "scripted";
    d.code = std::move(code);
    return error(sturdy::kind_for_status(status), std::move(d));
}
const error server_error = status_error(503);

bool mentions(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Calls made through a policy with scripted attempts, on a fake clock.
struct caller {
    sturdy::testing::fake_clock fake;
    int attempts = 0;
    std::vector<error> noted;  // errors the policy noted on the call's state
    sturdy::event_sink* events = nullptr;        // each call's sink
    std::shared_ptr<const sturdy::route> route;  // and the route each call is on

    // One call whose attempts take `takes` of virtual time and end with `failure`, or 42 without one.
    template <class Policy>
    sturdy::result<int> operator()(const Policy& policy, std::optional<error> failure = std::nullopt, sturdy::clock::duration takes = {},
                                   sturdy::operation op = sturdy::operation::chat) {
        sturdy::call_state state;
        sturdy::call_context ctx(op, "m", state);
        ctx.events = events;
        ctx.route = route;
        auto out = policy.execute(ctx, [&](sturdy::call_context&) -> sturdy::result<int> {
            ++attempts;
            fake.advance(takes);
            if (failure) return *failure;
            return 42;
        });
        noted = state.errors();
        return out;
    }

    sturdy::circuit_breaker breaker(sturdy::circuit_breaker_options o = {}) { return sturdy::circuit_breaker(std::move(o), fake.timing()); }
    template <class Policy>
    void fail(const Policy& policy, int times = 1, const error& e = server_error) {
        for (int i = 0; i < times; ++i) (*this)(policy, e);
    }
};

sturdy::circuit_breaker_options ratio_options(double ratio, int minimum_calls) {
    sturdy::circuit_breaker_options o;
    o.trip = sturdy::circuit_trip::failure_ratio;
    o.failure_ratio = ratio;
    o.minimum_calls = minimum_calls;
    o.window = seconds(30);
    return o;
}

}  // namespace

// ---- consecutive failures ----

TEST_CASE("breaker: two failures leave it closed, the third in a row opens it", "[breaker]") {
    caller c;
    auto b = c.breaker();
    c.fail(b, 2);
    CHECK(b.state() == circuit_state::closed);
    c.fail(b);
    CHECK(b.state() == circuit_state::open);
    CHECK(c.attempts == 3);
}

TEST_CASE("breaker: a success ends the run of consecutive failures", "[breaker]") {
    caller c;
    auto b = c.breaker();
    c.fail(b, 2);
    CHECK(c(b).has_value());
    c.fail(b, 2);
    CHECK(b.state() == circuit_state::closed);
    c.fail(b);
    CHECK(b.state() == circuit_state::open);
}

TEST_CASE("breaker: an open circuit refuses calls at once, without attempting them", "[breaker]") {
    caller c;
    sturdy::circuit_breaker_options o;
    o.name = "api-a";
    auto b = c.breaker(o);
    c.fail(b, 3);
    auto r = c(b);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind() == error_kind::circuit_open);
    CHECK(c.attempts == 3);
    CHECK(r.error().retry_after() == milliseconds(30000));
    const std::string what = r.error().what();
    CHECK(mentions(what, "'api-a'"));
    CHECK(mentions(what, "half-opens in 30 s"));
    CHECK(mentions(what, "3 consecutive failures"));
    CHECK(mentions(what, "internal_server [503]"));  // the failure that opened it
    REQUIRE(c.noted.size() == 1);                    // the refusal is among the call's errors
    CHECK(c.noted[0].kind() == error_kind::circuit_open);
    CHECK(c.fake.sleeps().empty());  // failing fast means not waiting either
}

TEST_CASE("breaker: a refusal's retry_after is the time left in the break", "[breaker]") {
    caller c;
    auto b = c.breaker();
    c.fail(b, 3);
    c.fake.advance(milliseconds(12345) + microseconds(1));
    auto r = c(b);
    CHECK(r.error().retry_after() == milliseconds(17655));  // rounded up: never understated
    CHECK(mentions(r.error().what(), "half-opens in 18 s"));
    c.fake.advance(milliseconds(13200));
    r = c(b);
    CHECK(r.error().retry_after() == milliseconds(4455));
    CHECK(mentions(r.error().what(), "half-opens in 4.5 s"));
}

TEST_CASE("breaker: the circuit half-opens after exactly the break, not a nanosecond before", "[breaker]") {
    caller c;
    auto b = c.breaker();
    c.fail(b, 3);
    c.fake.advance(seconds(30) - nanoseconds(1));
    CHECK(b.state() == circuit_state::open);
    CHECK(c(b).error().kind() == error_kind::circuit_open);
    CHECK(c.attempts == 3);
    c.fake.advance(nanoseconds(1));
    CHECK(b.state() == circuit_state::half_open);
}

TEST_CASE("breaker: a successful probe closes the circuit and forgets the failures", "[breaker]") {
    caller c;
    auto b = c.breaker();
    c.fail(b, 3);
    c.fake.advance(seconds(30));
    CHECK(c(b).has_value());
    CHECK(c.attempts == 4);
    CHECK(b.state() == circuit_state::closed);
    c.fail(b, 2);
    CHECK(b.state() == circuit_state::closed);
    c.fail(b);
    CHECK(b.state() == circuit_state::open);
}

TEST_CASE("breaker: a failed probe opens the circuit for another full break", "[breaker]") {
    caller c;
    auto b = c.breaker();
    c.fail(b, 3);
    c.fake.advance(seconds(30));
    CHECK(c(b, server_error).error().status() == 503);  // the probe's own outcome
    CHECK(b.state() == circuit_state::open);
    auto r = c(b);
    CHECK(r.error().retry_after() == milliseconds(30000));
    CHECK(mentions(r.error().what(), "the probe failed"));
    c.fake.advance(seconds(30) - nanoseconds(1));
    CHECK(b.state() == circuit_state::open);
    c.fake.advance(nanoseconds(1));
    CHECK(b.state() == circuit_state::half_open);
    CHECK(c.attempts == 4);
}

TEST_CASE("breaker: while the probe runs, other calls fail fast with the half-open hint", "[breaker]") {
    caller c;
    sturdy::circuit_breaker_options o;
    o.half_open_retry_after = milliseconds(1500);
    auto b = c.breaker(o);
    c.fail(b, 3);
    c.fake.advance(seconds(30));
    std::optional<sturdy::result<int>> during;
    sturdy::call_state state;
    sturdy::call_context ctx(sturdy::operation::chat, "m", state);
    auto probe = b.execute(ctx, [&](sturdy::call_context&) -> sturdy::result<int> {
        during = c(b);  // a second call while the probe is out
        return 1;
    });
    CHECK(probe.has_value());
    REQUIRE(during.has_value());
    REQUIRE_FALSE(during->has_value());
    CHECK(during->error().kind() == error_kind::circuit_open);
    CHECK(during->error().retry_after() == milliseconds(1500));
    CHECK(mentions(during->error().what(), "half-open"));
    CHECK(c.attempts == 3);  // the second call made no attempt
    CHECK(b.state() == circuit_state::closed);
}

TEST_CASE("breaker: a probe that ends without a verdict lets the next call probe", "[breaker]") {
    caller c;
    auto b = c.breaker();
    c.fail(b, 3);
    c.fake.advance(seconds(30));
    c(b, error(error_kind::cancelled, "the caller gave up"));
    CHECK(b.state() == circuit_state::half_open);
    CHECK(c(b).has_value());
    CHECK(c.attempts == 5);
    CHECK(b.state() == circuit_state::closed);
}

TEST_CASE("breaker: a probe whose attempt throws frees its place", "[breaker]") {
    caller c;
    auto b = c.breaker();
    c.fail(b, 3);
    c.fake.advance(seconds(30));
    sturdy::call_state state;
    sturdy::call_context ctx(sturdy::operation::chat, "m", state);
    CHECK_THROWS_AS(b.execute(ctx, [](sturdy::call_context&) -> sturdy::result<int> { throw std::runtime_error("callback"); }),
                    std::runtime_error);
    CHECK(b.state() == circuit_state::half_open);
    CHECK(c(b).has_value());
    CHECK(b.state() == circuit_state::closed);
}

// ---- what counts ----

TEST_CASE("breaker: server and network trouble counts as failure by default", "[breaker]") {
    const std::vector<error> failures = {status_error(500),
                                         status_error(502),
                                         status_error(503),
                                         status_error(408),
                                         error(error_kind::timeout, "slow"),
                                         error(error_kind::connection, "refused"),
                                         error(error_kind::stream_truncated, "cut")};
    for (const auto& e : failures) {
        caller c;
        auto b = c.breaker();
        c.fail(b, 3, e);
        INFO(e.what());
        CHECK(b.state() == circuit_state::open);
    }
}

TEST_CASE("breaker: a 429 is backpressure: it neither opens the circuit nor ends a run, unless counted", "[breaker]") {
    caller c;
    auto b = c.breaker();
    // One call's three 429s with Retry-After: 1 used to open the primary's breaker for 30 s.
    c.fail(b, 6, status_error(429));
    CHECK(b.state() == circuit_state::closed);
    CHECK(b.stats().ignored == 6);
    c.fail(b, 2);
    c.fail(b, 1, status_error(429));
    c.fail(b, 1);
    CHECK(b.state() == circuit_state::open);

    caller counting;
    sturdy::circuit_breaker_options opts;
    opts.count_rate_limit = true;
    auto strict = counting.breaker(opts);
    counting.fail(strict, 3, status_error(429));
    CHECK(strict.state() == circuit_state::open);
    caller quota;
    auto billing = quota.breaker(opts);
    quota.fail(billing, 5, status_error(429, "insufficient_quota"));  // counted, but not a failure
    CHECK(billing.state() == circuit_state::closed);
}

TEST_CASE("breaker: client errors count as successes: a bad request says nothing of the backend", "[breaker]") {
    for (int status : {400, 401, 403, 404, 422}) {
        caller c;
        auto b = c.breaker();
        c.fail(b, 5, status_error(status));
        CHECK(b.state() == circuit_state::closed);
        // and they end a run of failures, as any healthy reply does
        c.fail(b, 2);
        c.fail(b, 1, status_error(status));
        c.fail(b, 2);
        CHECK(b.state() == circuit_state::closed);
        CHECK(b.stats().successes == 6);
    }
    caller quota;
    auto b = quota.breaker();
    quota.fail(b, 5, status_error(429, "insufficient_quota"));  // billing, not load: waiting will not help
    CHECK(b.state() == circuit_state::closed);
}

TEST_CASE("breaker: cancellations and refusals by inner breakers or limiters count neither way", "[breaker]") {
    for (auto kind : {error_kind::cancelled, error_kind::circuit_open, error_kind::rate_limited, error_kind::invalid_argument}) {
        caller c;
        auto b = c.breaker();
        c.fail(b, 2);
        c.fail(b, 4, error(kind, "not the backend"));  // neither opens the circuit nor ends the run
        CHECK(b.state() == circuit_state::closed);
        c.fail(b);
        CHECK(b.state() == circuit_state::open);
        CHECK(b.stats().ignored == 4);
    }
}

TEST_CASE("breaker: a deadline that passed before an attempt was sent counts neither way", "[breaker]") {
    caller c;
    auto b = c.breaker();
    sturdy::error_details d;
    d.message = "the call's deadline passed before this attempt";
    d.code = std::string(sturdy::error_codes::deadline_exceeded);
    c.fail(b, 5, error(error_kind::timeout, d));
    CHECK(b.state() == circuit_state::closed);
    CHECK(b.stats().ignored == 5);
    c.fail(b, 3, error(error_kind::timeout, "the server took too long"));  // a real timeout counts
    CHECK(b.state() == circuit_state::open);
}

TEST_CASE("breaker: should_handle and ignore_on decide what counts", "[breaker]") {
    caller c;
    sturdy::circuit_breaker_options o;
    o.should_handle = [](const error& e) { return e.status() == 404; };
    o.ignore_on = [](const error& e) { return e.status() == 500; };
    auto b = c.breaker(o);
    c.fail(b, 2, status_error(404));
    c.fail(b, 3, status_error(500));
    CHECK(b.state() == circuit_state::closed);
    c.fail(b, 1, status_error(404));
    CHECK(b.state() == circuit_state::open);

    caller other;
    auto custom = other.breaker(o);
    other.fail(custom, 3, server_error);  // not a 404: healthy by this predicate
    CHECK(custom.state() == circuit_state::closed);
    CHECK(custom.stats().successes == 3);
}

TEST_CASE("breaker: an empty should_handle is the documented default, is_transient", "[breaker]") {
    sturdy::circuit_breaker_options o;
    CHECK_FALSE(o.should_handle);  // empty, not a copy of the default to be overwritten
    CHECK_FALSE(o.ignore_on);
    caller c;
    auto b = c.breaker(o);
    c.fail(b, 3, status_error(404));  // counted, but not transient
    CHECK(b.stats().successes == 3);
    c.fail(b, 3, server_error);
    CHECK(b.stats().failures == 3);
    CHECK(b.state() == circuit_state::open);
}

TEST_CASE("breaker: a committed stream that fails counts as a failure", "[breaker]") {
    caller c;
    auto b = c.breaker();
    for (int i = 0; i < 3; ++i) {
        sturdy::call_state state;
        sturdy::call_context ctx(sturdy::operation::chat_stream, "m", state);
        // The attempt commits (an attempt started on a committed call would be refused), then is cut off.
        b.execute(ctx, [&state](sturdy::call_context&) -> sturdy::result<int> {
            REQUIRE(state.try_commit(1));
            return error(error_kind::stream_truncated, "cut after content");
        });
    }
    CHECK(b.state() == circuit_state::open);
}

// ---- slow calls ----

TEST_CASE("breaker: calls slower than the threshold count as failures, even when they succeed", "[breaker][slow]") {
    caller c;
    sturdy::circuit_breaker_options o;
    o.slow_call_threshold = seconds(10);
    auto b = c.breaker(o);
    c(b, std::nullopt, seconds(10) + nanoseconds(1));
    c(b, std::nullopt, seconds(11));
    c(b, std::nullopt, seconds(10));  // exactly the threshold: not slow, ends the run
    c(b, std::nullopt, seconds(11));
    c(b, std::nullopt, seconds(11));
    CHECK(b.state() == circuit_state::closed);
    c(b, std::nullopt, seconds(12));
    CHECK(b.state() == circuit_state::open);
    CHECK(b.stats().slow_calls == 5);
    CHECK(b.stats().successes == 6);
    CHECK(b.stats().failures == 0);
    CHECK(mentions(c(b).error().what(), "3 consecutive failed or slow calls"));
}

TEST_CASE("breaker: a stream is never slow: its length is the reply's, not the backend's health", "[breaker][slow]") {
    caller c;
    sturdy::circuit_breaker_options o;
    o.slow_call_threshold = seconds(1);
    auto b = c.breaker(o);
    for (int i = 0; i < 5; ++i) c(b, std::nullopt, seconds(60), sturdy::operation::chat_stream);
    CHECK(b.state() == circuit_state::closed);
    CHECK(b.stats().slow_calls == 0);
}

TEST_CASE("breaker: a slow probe opens the circuit again", "[breaker][slow]") {
    caller c;
    sturdy::circuit_breaker_options o;
    o.slow_call_threshold = seconds(5);
    auto b = c.breaker(o);
    c.fail(b, 3);
    c.fake.advance(seconds(30));
    CHECK(c(b, std::nullopt, seconds(6)).has_value());
    CHECK(b.state() == circuit_state::open);
    CHECK(mentions(c(b).error().what(), "the probe was slower than 5 s"));
}

TEST_CASE("breaker: ratio mode with a slow-call ratio counts slow calls apart from failures", "[breaker][slow][ratio]") {
    caller c;
    auto o = ratio_options(0.5, 4);
    o.slow_call_threshold = seconds(1);
    o.slow_call_ratio = 0.75;
    auto b = c.breaker(o);
    c(b, std::nullopt, seconds(2));
    c(b, std::nullopt, seconds(2));
    c(b, server_error, seconds(2));  // slow and failed: 1 of 3 failed, 3 of 3 slow, below the minimum
    c(b);                            // 4 calls: 25% failed, 75% slow
    CHECK(b.state() == circuit_state::open);
    CHECK(b.stats().slow_calls == 3);
    CHECK(mentions(c(b).error().what(), "3 of 4 calls in the last 30 s were slower than 1 s (threshold 75%)"));
}

// ---- failure ratio ----

TEST_CASE("breaker: ratio mode stays closed below the minimum number of calls", "[breaker][ratio]") {
    caller c;
    auto b = c.breaker(ratio_options(0.5, 10));
    c.fail(b, 9);  // 100% failed, but only 9 calls
    CHECK(b.state() == circuit_state::closed);
    c.fail(b);
    CHECK(b.state() == circuit_state::open);
    CHECK(mentions(c(b).error().what(), "10 of 10 calls in the last 30 s failed (threshold 50%)"));
}

TEST_CASE("breaker: ratio mode opens when the failure share reaches the threshold exactly", "[breaker][ratio]") {
    caller c;
    auto b = c.breaker(ratio_options(0.5, 10));
    for (int i = 0; i < 6; ++i) c(b);
    c.fail(b, 4);  // 4 of 10
    CHECK(b.state() == circuit_state::closed);
    c.fail(b);  // 5 of 11
    CHECK(b.state() == circuit_state::closed);
    c.fail(b);  // 6 of 12: exactly half
    CHECK(b.state() == circuit_state::open);
}

TEST_CASE("breaker: ratio mode forgets outcomes older than the window", "[breaker][ratio]") {
    for (bool expired : {false, true}) {
        caller c;
        auto b = c.breaker(ratio_options(0.5, 10));
        c.fail(b, 9);
        c.fake.advance(expired ? seconds(30) : seconds(30) - nanoseconds(1));
        c.fail(b);
        CHECK(b.state() == (expired ? circuit_state::closed : circuit_state::open));
    }
}

TEST_CASE("breaker: ratio mode starts counting afresh after the circuit closes", "[breaker][ratio]") {
    caller c;
    auto b = c.breaker(ratio_options(0.5, 4));
    c.fail(b, 4);
    c.fake.advance(seconds(30));
    c(b);  // the probe succeeds
    REQUIRE(b.state() == circuit_state::closed);
    c.fail(b, 3);
    CHECK(b.state() == circuit_state::closed);  // 3 calls since closing: below the minimum
    c.fail(b);
    CHECK(b.state() == circuit_state::open);
}

// ---- break durations ----

TEST_CASE("breaker: a break backoff makes breaks grow while probes fail, and starts over on closing", "[breaker]") {
    caller c;
    sturdy::circuit_breaker_options o;
    o.break_backoff = sturdy::backoff::exponential(seconds(10), seconds(40));
    std::vector<sturdy::clock::duration> breaks;
    o.on_state_change = [&](const sturdy::circuit_state_event& e) {
        if (e.to == circuit_state::open) breaks.push_back(e.break_duration);
    };
    auto b = c.breaker(o);
    c.fail(b, 3);
    for (int probe = 0; probe < 3; ++probe) {
        c.fake.advance(breaks.back());
        c.fail(b);
    }
    c.fake.advance(breaks.back());
    c(b);  // closes
    c.fail(b, 3);
    CHECK(breaks == std::vector<sturdy::clock::duration>{seconds(10), seconds(20), seconds(40), seconds(40), seconds(10)});
}

// ---- by hand ----

TEST_CASE("breaker: isolate refuses every call until reset", "[breaker]") {
    caller c;
    sturdy::circuit_breaker_options o;
    o.name = "api-b";
    auto b = c.breaker(o);
    b.isolate();
    CHECK(b.state() == circuit_state::isolated);
    c.fake.advance(hours(1));  // no break ends an isolation
    auto r = c(b);
    CHECK(r.error().kind() == error_kind::circuit_open);
    CHECK_FALSE(r.error().retry_after().has_value());
    CHECK(mentions(r.error().what(), "'api-b' is isolated"));
    CHECK(c.attempts == 0);
    b.reset();
    CHECK(b.state() == circuit_state::closed);
    CHECK(c(b).has_value());
}

TEST_CASE("breaker: reset closes an open circuit and forgets the failures counted", "[breaker]") {
    caller c;
    auto b = c.breaker();
    c.fail(b, 3);
    b.reset();
    CHECK(b.state() == circuit_state::closed);
    c.fail(b, 2);
    b.reset();  // while closed: the run of two is forgotten
    c.fail(b, 2);
    CHECK(b.state() == circuit_state::closed);
}

TEST_CASE("breaker: copies share one circuit", "[breaker]") {
    caller c;
    auto b = c.breaker();
    const sturdy::circuit_breaker copy = b;  // as a client holds its policy
    c.fail(copy, 3);
    CHECK(b.state() == circuit_state::open);
    b.reset();
    CHECK(copy.state() == circuit_state::closed);
    CHECK(copy.stats().failures == 3);
}

// ---- state in a store (sturdy/state_store.hpp) ----

namespace {

using circuit_store = sturdy::state_store<sturdy::circuit_breaker_state>;

sturdy::circuit_breaker_options stored_as(std::string name, std::shared_ptr<circuit_store> store) {
    sturdy::circuit_breaker_options o;
    o.name = std::move(name);
    o.store = std::move(store);
    return o;
}

}  // namespace

TEST_CASE("breaker: breakers of one name on one store share one circuit: one's failures open the other's",
          "[breaker][store]") {
    caller c;
    auto store = std::make_shared<sturdy::local_store<sturdy::circuit_breaker_state>>();
    const auto a = c.breaker(stored_as("api", store));  // as two clients would hold them
    const auto b = c.breaker(stored_as("api", store));
    c.fail(a, 2);
    c.fail(b);  // the third failure in a row, whichever breaker saw it
    CHECK(a.state() == circuit_state::open);
    CHECK(b.state() == circuit_state::open);
    const auto refused = c(a);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().kind() == error_kind::circuit_open);
    CHECK(mentions(refused.error().what(), "3 consecutive failures"));
    CHECK(mentions(refused.error().what(), "internal_server [503]"));  // b's failure, told by a
    CHECK(c.attempts == 3);

    c.fake.advance(seconds(30));
    CHECK(c(b).has_value());  // b's probe closes a's circuit too
    CHECK(a.state() == circuit_state::closed);
    a.isolate();
    CHECK(c(b).error().kind() == error_kind::circuit_open);
    b.reset();
    CHECK(c(a).has_value());

    // What each reports stays its own: its calls' counts.
    CHECK(a.stats().failures == 2);
    CHECK(b.stats().failures == 1);
    CHECK(a.stats().rejections == 1);
    CHECK(b.stats().rejections == 1);
    CHECK(b.stats().times_opened == 1);
    CHECK(a.stats().times_opened == 0);
}

TEST_CASE("breaker: different names on one store keep apart circuits; one name without a store is no bond",
          "[breaker][store]") {
    caller c;
    auto store = std::make_shared<sturdy::local_store<sturdy::circuit_breaker_state>>();
    const auto openai = c.breaker(stored_as("openai", store));
    const auto kimi = c.breaker(stored_as("kimi", store));
    const auto alone = c.breaker(stored_as("openai", nullptr));
    c.fail(openai, 3);
    CHECK(openai.state() == circuit_state::open);
    CHECK(kimi.state() == circuit_state::closed);
    CHECK(alone.state() == circuit_state::closed);
    CHECK(c(kimi).has_value());
    CHECK(c(alone).has_value());
}

namespace {

/// What calls through breakers on `store` met, as text: outcomes, state changes, stats. Jittered
/// breaks and a failure-ratio window make the breakers draw random numbers and count in windows.
std::vector<std::string> breaker_story(const std::shared_ptr<circuit_store>& store) {
    caller c;
    std::vector<std::string> story;
    const auto note = [&](const sturdy::result<int>& r) { story.push_back(r ? "ok" : std::string(r.error().what())); };
    auto o = stored_as("jittered", store);
    o.break_backoff = sturdy::backoff::full_jitter(seconds(10), seconds(60));
    o.on_state_change = [&](const sturdy::circuit_state_event& e) {
        story.push_back(std::string(e.name) + ": " + std::string(to_string(e.from)) + " -> " +
                        std::string(to_string(e.to)) + " (" + std::string(e.reason) + ") for " +
                        std::to_string(e.break_duration.count()));
    };
    auto ratio = ratio_options(0.5, 4);
    ratio.name = "ratio";
    ratio.store = store;
    ratio.on_state_change = o.on_state_change;
    const auto jittered = c.breaker(o);
    const auto by_ratio = c.breaker(ratio);
    const auto wait_out = [&](const sturdy::result<int>& refused) {
        if (refused) return;
        c.fake.advance(refused.error().retry_after().value_or(milliseconds(0)) + milliseconds(1));
    };
    for (int round = 0; round < 3; ++round) {
        c.fail(jittered, 3);
        auto refused = c(jittered);
        note(refused);
        wait_out(refused);
        note(c(jittered, server_error));  // the probe fails: a longer, jittered break
        refused = c(jittered);
        note(refused);
        wait_out(refused);
        note(c(jittered));  // the probe succeeds
        for (int i = 0; i < 4; ++i) note(c(by_ratio, i % 2 ? std::optional<error>() : server_error));
        note(c(by_ratio));
        c.fake.advance(seconds(31));
        note(c(by_ratio));
    }
    jittered.isolate();
    note(c(jittered));
    jittered.reset();
    const auto stats = [&](const char* who, const sturdy::circuit_breaker& b) {
        const auto s = b.stats();
        story.push_back(std::string(who) + ": " + std::to_string(s.successes) + " ok, " + std::to_string(s.failures) +
                        " failed, " + std::to_string(s.rejections) + " refused, " + std::to_string(s.times_opened) +
                        " opened");
    };
    stats("jittered", jittered);
    stats("ratio", by_ratio);
    return story;
}

}  // namespace

TEST_CASE("breaker: a store that runs each change twice, as an optimistic one may, gets the same decisions",
          "[breaker][store]") {
    const auto once = breaker_story(std::make_shared<sturdy::local_store<sturdy::circuit_breaker_state>>());
    const auto twice = breaker_story(std::make_shared<sturdy_test::rerunning_store<sturdy::circuit_breaker_state>>());
    CHECK(twice == once);
    // The story is one that could go wrong: jittered breaks of their own lengths, refusals and
    // openings counted once each.
    CHECK(std::count_if(once.begin(), once.end(),
                        [](const std::string& line) { return mentions(line, "jittered: closed -> open"); }) == 3);
    CHECK(std::count(once.begin(), once.end(), "jittered: 3 ok, 12 failed, 7 refused, 6 opened") == 1);
    CHECK(std::count(once.begin(), once.end(), "ratio: 9 ok, 6 failed, 3 refused, 3 opened") == 1);
}

TEST_CASE("breaker: a call admitted before the circuit changed does not count", "[breaker]") {
    caller c;
    auto b = c.breaker();
    sturdy::call_state state;
    sturdy::call_context ctx(sturdy::operation::chat, "m", state);
    // A slow call starts while closed; meanwhile others open the circuit and the break ends.
    b.execute(ctx, [&](sturdy::call_context&) -> sturdy::result<int> {
        c.fail(b, 3);
        c.fake.advance(seconds(30));
        CHECK(b.state() == circuit_state::half_open);
        return 1;  // this success is from before the opening: it must not close the circuit
    });
    CHECK(b.state() == circuit_state::half_open);
    CHECK(b.stats().successes == 1);  // still counted in the stats
}

// ---- events and stats ----

TEST_CASE("breaker: state changes are reported in order, with from, to, reason and cause", "[breaker][events]") {
    caller c;
    struct seen {
        circuit_state from, to;
        std::string reason;
        int cause_status;
        sturdy::clock::duration pause;
    };
    std::vector<seen> events;
    sturdy::circuit_breaker_options o;
    o.name = "api-c";
    std::optional<sturdy::circuit_breaker> self;
    o.on_state_change = [&](const sturdy::circuit_state_event& e) {
        CHECK(e.name == "api-c");
        events.push_back({e.from, e.to, std::string(e.reason), e.cause ? e.cause->status() : 0, e.break_duration});
        CHECK(self->stats().times_opened <= 2);  // the hook may call back into the breaker
    };
    self = c.breaker(o);
    auto& b = *self;
    c.fail(b, 2, status_error(500));
    c.fail(b, 1, status_error(502));
    c.fake.advance(seconds(30));
    c.fail(b, 1, status_error(504));  // the probe fails
    c.fake.advance(seconds(30));
    c(b);
    b.isolate();
    b.reset();
    using S = circuit_state;
    REQUIRE(events.size() == 7);
    CHECK((events[0].from == S::closed && events[0].to == S::open));
    CHECK(events[0].reason == "3 consecutive failures");
    CHECK(events[0].cause_status == 502);
    CHECK(events[0].pause == seconds(30));
    CHECK((events[1].from == S::open && events[1].to == S::half_open));
    CHECK(events[1].reason == "the break is over");
    CHECK(events[1].cause_status == 0);
    CHECK((events[2].from == S::half_open && events[2].to == S::open));
    CHECK(events[2].reason == "the probe failed");
    CHECK(events[2].cause_status == 504);
    CHECK((events[3].from == S::open && events[3].to == S::half_open));
    CHECK((events[4].from == S::half_open && events[4].to == S::closed));
    CHECK(events[4].reason == "the probe succeeded");
    CHECK((events[5].from == S::closed && events[5].to == S::isolated));
    CHECK((events[6].from == S::isolated && events[6].to == S::closed));
    CHECK(events[6].reason == "reset by hand");
}

TEST_CASE("breaker: on_rejected reports each refused call", "[breaker][events]") {
    caller c;
    sturdy::circuit_breaker_options o;
    o.name = "api-d";
    std::vector<std::pair<circuit_state, milliseconds>> rejected;
    o.on_rejected = [&](const sturdy::circuit_rejection_event& e) {
        CHECK(e.name == "api-d");
        CHECK(e.model == "m");
        CHECK(e.op == sturdy::operation::chat);
        CHECK(e.rejection.kind() == error_kind::circuit_open);
        rejected.emplace_back(e.state, e.rejection.retry_after().value_or(milliseconds(-1)));
    };
    auto b = c.breaker(o);
    c.fail(b, 3);
    c(b);
    c.fake.advance(seconds(10));
    c(b);
    b.isolate();
    c(b);
    CHECK(rejected == std::vector<std::pair<circuit_state, milliseconds>>{
                          {circuit_state::open, seconds(30)}, {circuit_state::open, seconds(20)}, {circuit_state::isolated, milliseconds(-1)}});
}

TEST_CASE("breaker: stats count successes, failures, slow calls, ignored outcomes, refusals and openings", "[breaker]") {
    caller c;
    sturdy::circuit_breaker_options o;
    o.slow_call_threshold = seconds(5);
    auto b = c.breaker(o);
    c(b);
    c(b, status_error(400));
    c(b, error(error_kind::cancelled, "stop"));
    c.fail(b, 3);
    c(b);
    c(b);
    c.fake.advance(seconds(30));
    c(b, std::nullopt, seconds(6));  // a slow probe: opens it again
    const auto s = b.stats();
    CHECK(s.successes == 3);
    CHECK(s.failures == 3);
    CHECK(s.slow_calls == 1);
    CHECK(s.ignored == 1);
    CHECK(s.rejections == 2);
    CHECK(s.times_opened == 2);
}

namespace {

/// One log, in order, of what hooks and sinks heard, from any thread.
class journal {
public:
    void add(std::string line) {
        std::lock_guard<std::mutex> lock(mutex_);
        lines_.push_back(std::move(line));
    }
    std::vector<std::string> lines() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return lines_;
    }

private:
    mutable std::mutex mutex_;
    std::vector<std::string> lines_;
};

std::string change_text(const sturdy::circuit_state_event& e) {
    return std::string(sturdy::to_string(e.from)) + "->" + std::string(sturdy::to_string(e.to));
}

/// A call's event sink: writes what it hears, with its own label and the event's source, into a journal.
class journal_sink : public sturdy::event_sink {
public:
    journal_sink(journal& j, std::string label) : journal_(j), label_(std::move(label)) {}
    void on_circuit_state(const sturdy::event_source& from, const sturdy::circuit_state_event& e) override {
        CHECK(e.name == from.policy);
        journal_.add(heard(from) + change_text(e));
    }
    void on_circuit_rejected(const sturdy::event_source& from, const sturdy::circuit_rejection_event& e) override {
        journal_.add(heard(from) + "refused while " + std::string(sturdy::to_string(e.state)));
    }

private:
    std::string heard(const sturdy::event_source& from) const {
        return label_ + " " + std::string(from.policy) + "@" + std::string(from.route) + " ";
    }
    journal& journal_;
    std::string label_;
};

/// Hooks that write into the journal too, to show their place before the sinks.
sturdy::circuit_breaker_options journaled(journal& j, sturdy::circuit_breaker_options o = {}) {
    o.on_state_change = [&j](const sturdy::circuit_state_event& e) { j.add("hook " + change_text(e)); };
    o.on_rejected = [&j](const sturdy::circuit_rejection_event& e) {
        j.add("hook refused while " + std::string(sturdy::to_string(e.state)));
    };
    return o;
}

std::shared_ptr<const sturdy::route> route_named(std::string name) {
    return std::make_shared<const sturdy::route>(sturdy::route{std::move(name), nullptr, ""});
}

}  // namespace

TEST_CASE("breaker: each change and refusal reaches the hook, then the sink of the call that made it",
          "[breaker][events]") {
    caller c;
    journal j;
    journal_sink first(j, "first"), second(j, "second");
    auto b = c.breaker(journaled(j));  // unnamed: named by its kind
    CHECK(b.name() == "circuit_breaker");
    c.events = &first;
    c.route = route_named("primary");
    c.fail(b, 3);
    auto refused = c(b);
    CHECK(mentions(refused.error().what(), "circuit breaker is open"));  // the kind is no name to quote
    c.fake.advance(seconds(30));
    c.events = &second;
    c.route = nullptr;
    c(b);  // finds the break over, probes and closes the circuit
    b.isolate();
    b.reset();  // no call made these two: the hook alone hears them
    CHECK(j.lines() == std::vector<std::string>{
                           "hook closed->open",
                           "first circuit_breaker@primary closed->open",
                           "hook refused while open",
                           "first circuit_breaker@primary refused while open",
                           "hook open->half_open",
                           "second circuit_breaker@ open->half_open",
                           "hook half_open->closed",
                           "second circuit_breaker@ half_open->closed",
                           "hook closed->isolated",
                           "hook isolated->closed",
                       });
}

TEST_CASE("breaker: a sink hears a named breaker's changes without any hook set", "[breaker][events]") {
    caller c;
    journal j;
    journal_sink sink(j, "sink");
    sturdy::circuit_breaker_options o;
    o.name = "api-e";
    auto b = c.breaker(o);
    c.events = &sink;
    c.route = route_named("backup");
    c.fail(b, 3);
    CHECK(mentions(c(b).error().what(), "circuit breaker 'api-e' is open"));
    b.isolate();  // heard by nobody: no hook, and no call made it
    CHECK(j.lines() ==
          std::vector<std::string>{"sink api-e@backup closed->open", "sink api-e@backup refused while open"});
}

TEST_CASE("breaker: a change made while another thread reports reaches its own call's sink before that call goes on",
          "[breaker][events][concurrency]") {
    caller c;
    journal j;
    sturdy_test::gate hook_held;
    auto o = journaled(j);
    const auto journal_hook = o.on_state_change;
    o.on_state_change = [&](const sturdy::circuit_state_event& e) {
        journal_hook(e);
        if (e.to == circuit_state::open) hook_held.pass();  // the opening's report stalls here
    };
    auto b = c.breaker(o);
    c.fail(b, 2);

    journal_sink opener_sink(j, "opener"), prober_sink(j, "prober");
    auto through = [&](journal_sink& sink, std::optional<error> failure, std::function<void()> inside = {}) {
        sturdy::call_state state;
        sturdy::call_context ctx(sturdy::operation::chat, "m", state);
        ctx.events = &sink;
        return b.execute(ctx, [&](sturdy::call_context&) -> sturdy::result<int> {
            if (inside) inside();
            if (failure) return *failure;
            return 42;
        });
    };
    std::thread opener([&] { through(opener_sink, server_error); });
    hook_held.wait_for_arrivals(1);  // the circuit is open; its report is running, held in the hook
    c.fake.advance(seconds(30));
    std::vector<std::string> heard_before_probing;
    std::thread prober([&] {
        // This call finds the break over: its change waits behind the opening's report.
        through(prober_sink, std::nullopt, [&] { heard_before_probing = j.lines(); });
    });
    std::this_thread::sleep_for(milliseconds(50));  // most often, the prober now waits for the report
    hook_held.open();
    opener.join();
    prober.join();
    const std::vector<std::string> half_open = {"hook closed->open", "opener circuit_breaker@ closed->open",
                                                "hook open->half_open", "prober circuit_breaker@ open->half_open"};
    CHECK(heard_before_probing == half_open);
    auto all = half_open;
    all.push_back("hook half_open->closed");
    all.push_back("prober circuit_breaker@ half_open->closed");
    CHECK(j.lines() == all);
}

TEST_CASE("breaker: a hook may change the state itself; the change is reported after it, in order",
          "[breaker][events]") {
    caller c;
    journal j;
    std::optional<sturdy::circuit_breaker> self;
    auto o = journaled(j);
    const auto journal_hook = o.on_state_change;
    o.on_state_change = [&](const sturdy::circuit_state_event& e) {
        journal_hook(e);
        if (e.to != circuit_state::open) return;
        c.fake.advance(seconds(30));
        CHECK(self->state() == circuit_state::half_open);  // a change made inside the report: no deadlock
        j.add("hook returns");
    };
    self = c.breaker(o);
    c.fail(*self, 3);
    CHECK(j.lines() == std::vector<std::string>{"hook closed->open", "hook returns", "hook open->half_open"});
}

TEST_CASE("breaker: a sink that throws at the break's end does not keep the probe's place", "[breaker][events]") {
    caller c;
    auto b = c.breaker();
    c.fail(b, 3);
    c.fake.advance(seconds(30));
    struct throwing_sink : sturdy::event_sink {
        void on_circuit_state(const sturdy::event_source&, const sturdy::circuit_state_event&) override {
            throw std::runtime_error("a sink failed");
        }
    } thrower;
    c.events = &thrower;
    CHECK_THROWS_AS(c(b), std::runtime_error);
    CHECK(c.attempts == 3);  // the call went no further
    c.events = nullptr;
    CHECK(c(b).has_value());  // the next call is the probe, not refused behind a lost one
    CHECK(b.state() == circuit_state::closed);
}

TEST_CASE("breaker: each option that makes no sense is refused at construction, naming the field", "[breaker]") {
    const auto refusal = [](const std::function<void(sturdy::circuit_breaker_options&)>& change) {
        sturdy::circuit_breaker_options o;
        change(o);
        try {
            sturdy::circuit_breaker b(o);
        } catch (const std::invalid_argument& e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    using opts = sturdy::circuit_breaker_options;
    const std::vector<std::pair<std::string, std::function<void(opts&)>>> nonsense = {
        {"failure_threshold", [](opts& o) { o.failure_threshold = 0; }},
        {"minimum_calls", [](opts& o) { o.minimum_calls = 0; }},
        {"failure_ratio", [](opts& o) { o.failure_ratio = 0; }},
        {"failure_ratio", [](opts& o) { o.failure_ratio = 1.01; }},
        {"window", [](opts& o) { o.window = seconds(0); }},
        {"break_duration", [](opts& o) { o.break_duration = milliseconds(-1); }},
        {"half_open_retry_after", [](opts& o) { o.half_open_retry_after = milliseconds(-1); }},
        {"slow_call_threshold", [](opts& o) { o.slow_call_threshold = milliseconds(-1); }},
        {"slow_call_ratio",
         [](opts& o) {
             o = ratio_options(0.5, 10);
             o.slow_call_threshold = seconds(1);
             o.slow_call_ratio = 0;
         }},
        {"slow_call_ratio",
         [](opts& o) {  // counted apart only in ratio mode: with consecutive failures it would do nothing
             o.slow_call_threshold = seconds(1);
             o.slow_call_ratio = 0.5;
         }},
        {"slow_call_ratio",
         [](opts& o) {  // without a threshold no call is slow
             o = ratio_options(0.5, 10);
             o.slow_call_ratio = 0.5;
         }},
    };
    for (const auto& [field, change] : nonsense) {
        const auto what = refusal(change);
        INFO(field << ": " << what);
        CHECK(mentions(what, "sturdy::circuit_breaker: " + field + " "));
    }
    CHECK(refusal([](opts& o) {
              o = ratio_options(1, 1);
              o.slow_call_threshold = seconds(0);
              o.slow_call_ratio = 1;
              o.break_duration = seconds(0);
              o.half_open_retry_after = seconds(0);
          }) == "accepted");  // the edges of each range are sound
}

// ---- in pipelines ----

TEST_CASE("breaker inside retry: once the circuit opens, the remaining retries fail fast", "[breaker][pipeline]") {
    caller c;
    sturdy::retry_options ro;
    ro.max_retries = 5;
    ro.backoff = sturdy::backoff::constant(seconds(1));
    auto policy = sturdy::compose(sturdy::retry_policy(ro, c.fake.timing()), c.breaker());
    auto r = c(policy, server_error);
    CHECK(c.attempts == 3);  // each attempt counted; the fourth was refused
    CHECK(r.error().kind() == error_kind::circuit_open);
    CHECK(c.fake.sleeps().size() == 3);  // no wait after the refusal: circuit_open is not retried
    CHECK(policy.get<1>().state() == circuit_state::open);
}

TEST_CASE("breaker outside retry: the breaker sees one outcome per call, after its retries", "[breaker][pipeline]") {
    caller c;
    sturdy::retry_options ro;
    ro.backoff = sturdy::backoff::constant(milliseconds(1));
    auto breaker = c.breaker();
    auto policy = sturdy::compose(breaker, sturdy::retry_policy(ro, c.fake.timing()));
    c.fail(policy, 2);
    CHECK(c.attempts == 6);
    CHECK(breaker.stats().failures == 2);
    CHECK(breaker.state() == circuit_state::closed);
    c.fail(policy);
    CHECK(breaker.state() == circuit_state::open);
    auto r = c(policy, server_error);
    CHECK(r.error().kind() == error_kind::circuit_open);
    CHECK(c.attempts == 9);  // refused before the retry policy ran
}

TEST_CASE("breaker: works inside a dynamic_pipeline", "[breaker][pipeline]") {
    caller c;
    sturdy::retry_options ro;
    ro.max_retries = 5;
    ro.backoff = sturdy::backoff::constant(seconds(1));
    auto breaker = c.breaker();
    sturdy::dynamic_pipeline policies;
    policies.add(sturdy::retry_policy(ro, c.fake.timing())).add(breaker);
    auto r = c(policies, server_error);
    CHECK(c.attempts == 3);
    CHECK(r.error().kind() == error_kind::circuit_open);
    CHECK(breaker.state() == circuit_state::open);
    c.fake.advance(seconds(30));
    CHECK(c(policies).value() == 42);
    CHECK(breaker.state() == circuit_state::closed);
}

TEST_CASE("retry: circuit_open is not retried by default: a refusal must fail fast", "[breaker][retry]") {
    caller c;
    auto breaker = c.breaker();
    breaker.isolate();
    CHECK_FALSE(sturdy::is_transient(c(breaker).error()));
    auto r = c(sturdy::compose(sturdy::retry_policy(sturdy::retry_options{}, c.fake.timing()), breaker));
    CHECK(r.error().kind() == error_kind::circuit_open);
    CHECK(c.fake.sleeps().empty());
    CHECK(breaker.stats().rejections == 2);  // one per call: no retry knocked again
}

// ---- concurrency ----

TEST_CASE("breaker: when many threads hit a half-open circuit, exactly one probe goes through", "[breaker][concurrency]") {
    caller c;
    auto b = c.breaker();
    c.fail(b, 3);
    c.fake.advance(seconds(30));

    constexpr int threads = 8;
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    std::mutex m;
    std::condition_variable changed;
    int probes = 0, refused = 0, ready = 0;
    bool go = false;
    auto tally = [&](int& n) {
        std::lock_guard<std::mutex> lock(m);
        ++n;
        changed.notify_all();
    };

    std::vector<sturdy::result<int>> outcomes(threads, error(error_kind::connection, "unset"));
    std::vector<std::thread> pool;
    for (int i = 0; i < threads; ++i) {
        pool.emplace_back([&, i] {
            {
                std::unique_lock<std::mutex> lock(m);
                ++ready;
                changed.notify_all();
                changed.wait(lock, [&] { return go; });  // all start together
            }
            sturdy::call_state state;
            sturdy::call_context ctx(sturdy::operation::chat, "m", state);
            auto out = b.execute(ctx, [&](sturdy::call_context&) -> sturdy::result<int> {
                tally(probes);
                released.wait();  // the probe is still running while the others arrive
                return 42;
            });
            if (!out) tally(refused);
            outcomes[static_cast<std::size_t>(i)] = out;
        });
    }
    {
        std::unique_lock<std::mutex> lock(m);
        changed.wait(lock, [&] { return ready == threads; });
        go = true;
        changed.notify_all();
        // Everyone but the probe is turned away while the probe is held.
        changed.wait(lock, [&] { return probes + refused == threads; });
        CHECK(probes == 1);
        CHECK(refused == threads - 1);
    }
    CHECK(b.state() == circuit_state::half_open);
    release.set_value();
    for (auto& t : pool) t.join();

    int succeeded = 0;
    for (const auto& out : outcomes) {
        if (out) ++succeeded;
        else CHECK(out.error().kind() == error_kind::circuit_open);
    }
    CHECK(succeeded == 1);
    CHECK(b.state() == circuit_state::closed);
    CHECK(b.stats().rejections == static_cast<std::uint64_t>(threads - 1));
}

TEST_CASE("breaker: concurrent calls keep exact counts and one opening", "[breaker][concurrency]") {
    caller c;
    std::atomic<int> opened{0};
    sturdy::circuit_breaker_options o;
    o.failure_threshold = 50;
    o.on_state_change = [&](const sturdy::circuit_state_event& e) {
        if (e.to == circuit_state::open) ++opened;
    };
    auto b = c.breaker(o);
    std::vector<std::thread> pool;
    for (int t = 0; t < 4; ++t) {
        pool.emplace_back([&] {
            for (int i = 0; i < 25; ++i) {
                sturdy::call_state state;
                sturdy::call_context ctx(sturdy::operation::chat, "m", state);
                b.execute(ctx, [](sturdy::call_context&) -> sturdy::result<int> { return server_error; });
            }
        });
    }
    for (auto& t : pool) t.join();
    const auto s = b.stats();
    CHECK(s.failures + s.rejections == 100);
    CHECK(s.failures >= 50);
    CHECK(s.times_opened == 1);
    CHECK(opened == 1);
    CHECK(b.state() == circuit_state::open);
}

// ---- the executor seam ----

namespace {

/// An executor that never sleeps nor starts a thread: it records what it is asked for, and runs a
/// wait's `then` at once after moving the fake clock on by it.
class recording_executor final : public sturdy::executor {
public:
    explicit recording_executor(sturdy::testing::fake_clock& fake) : fake_(fake) {}
    void after(const sturdy::clock&, sturdy::clock::duration d, const sturdy::cancellation_token& cancel,
               std::function<void(bool)> then) override {
        waits.push_back(d);
        if (cancel.cancelled()) return then(false);
        fake_.advance(d);
        then(true);
    }
    bool spawn(std::function<void()>) override {
        ++spawns;
        return false;
    }
    std::vector<sturdy::clock::duration> waits;
    int spawns = 0;

private:
    sturdy::testing::fake_clock& fake_;
};

/// What runs inside a policy started by hand: the attempt is sent and its reply kept for the test
/// to give, as an event loop's request on the wire (`next` returns before its outcome).
struct held_attempt {
    std::vector<std::function<void(sturdy::result<int>)>>* replies;
    template <class K>
    void operator()(sturdy::call_context&, K&& k) const {
        replies->emplace_back(std::forward<K>(k));
    }
};

struct keep_outcome {
    std::optional<sturdy::result<int>>* out;
    void operator()(sturdy::result<int> r) const { *out = std::move(r); }
};

}  // namespace

TEST_CASE("breaker: decides without waiting, through its call's executor, also when the outcome comes later",
          "[breaker][executor]") {
    caller c;
    auto b = c.breaker();
    recording_executor exec(c.fake);
    auto through_exec = [&](std::optional<error> failure) {
        sturdy::call_state state;
        sturdy::call_context ctx(sturdy::operation::chat, "m", state);
        ctx.exec = &exec;
        auto out = b.execute(ctx, [&](sturdy::call_context& attempt_ctx) -> sturdy::result<int> {
            ++c.attempts;
            CHECK(attempt_ctx.exec == &exec);
            if (failure) return *failure;
            return 42;
        });
        c.noted = state.errors();
        return out;
    };
    for (int i = 0; i < 3; ++i) through_exec(server_error);
    auto refused = through_exec(std::nullopt);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().kind() == error_kind::circuit_open);
    CHECK(c.attempts == 3);
    REQUIRE(c.noted.size() == 1);  // the executor records the refusal, once
    CHECK(c.noted[0].kind() == error_kind::circuit_open);
    CHECK(exec.waits.empty());  // a breaker never waits, on the executor or the clock
    CHECK(exec.spawns == 0);
    CHECK(c.fake.sleeps().empty());

    // The probe's outcome arrives after `start` returned: the probe holds its place until then.
    c.fake.advance(seconds(30));
    std::vector<std::function<void(sturdy::result<int>)>> replies;
    sturdy::call_state probe_state;
    sturdy::call_context probe_ctx(sturdy::operation::chat, "m", probe_state);
    probe_ctx.exec = &exec;
    std::optional<sturdy::result<int>> probe_outcome;
    b.start<int>(probe_ctx, held_attempt{&replies}, keep_outcome{&probe_outcome});
    REQUIRE(replies.size() == 1);
    CHECK_FALSE(probe_outcome);
    CHECK(b.state() == circuit_state::half_open);
    auto meanwhile = through_exec(std::nullopt);
    REQUIRE_FALSE(meanwhile.has_value());
    CHECK(mentions(meanwhile.error().message(), "probe call is still running"));
    replies[0](42);
    REQUIRE(probe_outcome);
    CHECK(probe_outcome->has_value());
    CHECK(b.state() == circuit_state::closed);
    CHECK(exec.waits.empty());
    CHECK(c.fake.sleeps().empty());
}

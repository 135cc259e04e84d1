#include <sturdy/bulkhead.hpp>
#include <sturdy/dynamic_pipeline.hpp>
#include <sturdy/executor.hpp>
#include <sturdy/pipeline.hpp>
#include <sturdy/result.hpp>
#include <sturdy/retry.hpp>
#include <sturdy/testing/fake_clock.hpp>

#include "support/catch.hpp"
#include "support/gate.hpp"

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono;
using sturdy::bulkhead_action;
using sturdy::error_kind;

// Bulkhead waits are sleeps on the injected clock, cut short when a slot is handed over: with a
// manual-mode fake clock, `wait_for_sleepers(n)` says n callers are queued, and `advance` runs
// out their max_wait. Attempts that must stay in flight block on a gate.

namespace {

using manual_clock = sturdy::testing::fake_clock;
constexpr auto manual = sturdy::testing::fake_clock::mode::manual;

using sturdy_test::gate;

template <class Policy, class Attempt>
sturdy::result<int> call(const Policy& policy, Attempt&& attempt, const sturdy::cancellation_token& cancel = {},
                         sturdy::deadline deadline = {}) {
    sturdy::call_state state;
    sturdy::call_context ctx(sturdy::operation::chat, "m", state);
    ctx.cancel = cancel;
    ctx.deadline = std::move(deadline);
    return policy.execute(ctx, attempt);
}

sturdy::result<int> ok(sturdy::call_context&) { return 42; }

/// A call on its own thread, its outcome kept.
class caller {
public:
    template <class F>
    explicit caller(F body) : thread_([this, body] { outcome_ = body(); }) {}
    caller(caller&&) = delete;
    ~caller() {
        if (thread_.joinable()) thread_.join();
    }
    const sturdy::result<int>& outcome() {
        if (thread_.joinable()) thread_.join();
        return *outcome_;
    }

private:
    std::optional<sturdy::result<int>> outcome_;
    std::thread thread_;
};

sturdy::bulkhead_options limits(int concurrent, int queue, sturdy::clock::duration max_wait = seconds(30)) {
    sturdy::bulkhead_options o;
    o.name = "pool";
    o.max_concurrent = concurrent;
    o.max_queue = queue;
    o.max_wait = max_wait;
    return o;
}

bool mentions(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("bulkhead: N in flight, the next Q wait, the one after is refused at once", "[bulkhead]") {
    manual_clock fake(0, manual);
    sturdy::bulkhead pool(limits(2, 1), fake.timing());
    gate held;
    auto blocking = [&](sturdy::call_context&) -> sturdy::result<int> {
        held.pass();
        return 1;
    };
    caller first([&] { return call(pool, blocking); });
    caller second([&] { return call(pool, blocking); });
    held.wait_for_arrivals(2);
    CHECK(pool.in_flight() == 2);

    caller third([&] { return call(pool, blocking); });
    fake.wait_for_sleepers(1);
    CHECK(pool.queued() == 1);

    bool attempted = false;
    auto refused = call(pool, [&](sturdy::call_context&) -> sturdy::result<int> { return attempted = true; });
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().kind() == error_kind::rate_limited);
    CHECK(refused.error().code() == sturdy::error_codes::bulkhead_full);
    CHECK(mentions(refused.error().message(), "'pool'"));
    CHECK(mentions(refused.error().message(), "queue is full"));
    CHECK_FALSE(refused.error().retry_after());
    CHECK_FALSE(attempted);

    held.open();
    CHECK(first.outcome().has_value());
    CHECK(second.outcome().has_value());
    CHECK(third.outcome().has_value());
    CHECK(pool.in_flight() == 0);
    CHECK(pool.queued() == 0);
}

TEST_CASE("bulkhead: without a queue, a call finding no free slot is refused at once", "[bulkhead]") {
    manual_clock fake(0, manual);
    sturdy::bulkhead pool(limits(1, 0), fake.timing());
    gate held;
    caller first([&] { return call(pool, [&](sturdy::call_context&) -> sturdy::result<int> { held.pass(); return 1; }); });
    held.wait_for_arrivals(1);
    auto refused = call(pool, ok);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().kind() == error_kind::rate_limited);
    held.open();
    CHECK(first.outcome().has_value());
    CHECK(call(pool, ok).has_value());
}

TEST_CASE("bulkhead: waiting callers get slots in arrival order", "[bulkhead]") {
    manual_clock fake(0, manual);
    sturdy::bulkhead pool(limits(1, 3), fake.timing());
    gate held;
    caller first([&] { return call(pool, [&](sturdy::call_context&) -> sturdy::result<int> { held.pass(); return 0; }); });
    held.wait_for_arrivals(1);

    std::mutex order_mutex;
    std::vector<int> order;
    std::vector<std::unique_ptr<caller>> waiting;
    for (int i = 1; i <= 3; ++i) {
        waiting.push_back(std::make_unique<caller>([&, i] {
            return call(pool, [&, i](sturdy::call_context&) -> sturdy::result<int> {
                std::lock_guard<std::mutex> lock(order_mutex);
                order.push_back(i);
                return i;
            });
        }));
        fake.wait_for_sleepers(i);  // queued before the next one arrives
    }
    held.open();
    for (auto& w : waiting) CHECK(w->outcome().has_value());
    CHECK(order == std::vector<int>{1, 2, 3});
}

TEST_CASE("bulkhead: a wait longer than max_wait is refused, in virtual time", "[bulkhead]") {
    manual_clock fake(0, manual);
    std::vector<sturdy::bulkhead_event> events;
    auto o = limits(1, 1, seconds(2));
    o.on_event = [&](const sturdy::bulkhead_event& e) { events.push_back(e); };  // only the waiter reports
    sturdy::bulkhead pool(o, fake.timing());
    gate held;
    caller first([&] { return call(pool, [&](sturdy::call_context&) -> sturdy::result<int> { held.pass(); return 1; }); });
    held.wait_for_arrivals(1);

    bool attempted = false;
    caller second([&] { return call(pool, [&](sturdy::call_context&) -> sturdy::result<int> { return attempted = true; }); });
    fake.wait_for_sleepers(1);
    fake.advance(milliseconds(1999));
    fake.wait_for_sleepers(1);
    CHECK(pool.queued() == 1);
    fake.advance(milliseconds(1));
    const auto& refused = second.outcome();
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().kind() == error_kind::rate_limited);
    CHECK(refused.error().code() == sturdy::error_codes::bulkhead_timeout);
    CHECK(mentions(refused.error().message(), "max_wait"));
    CHECK_FALSE(refused.error().retry_after());
    CHECK_FALSE(attempted);
    CHECK(pool.queued() == 0);
    CHECK(pool.in_flight() == 1);
    REQUIRE(events.size() == 2);
    CHECK(events[0].action == bulkhead_action::queued);
    CHECK(events[1].action == bulkhead_action::timed_out);
    CHECK(events[1].waited == seconds(2));
    CHECK(events[1].bulkhead == "pool");
    held.open();
    CHECK(first.outcome().has_value());
    CHECK(pool.in_flight() == 0);
}

TEST_CASE("bulkhead: the call's deadline ends the wait", "[bulkhead]") {
    manual_clock fake(0, manual);
    sturdy::bulkhead pool(limits(1, 1, seconds(30)), fake.timing());
    gate held;
    caller first([&] { return call(pool, [&](sturdy::call_context&) -> sturdy::result<int> { held.pass(); return 1; }); });
    held.wait_for_arrivals(1);
    caller second([&] { return call(pool, ok, {}, sturdy::deadline::after(fake.timing().clock, seconds(1))); });
    fake.wait_for_sleepers(1);
    fake.advance(seconds(1));
    const auto& refused = second.outcome();
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().kind() == error_kind::rate_limited);
    CHECK(mentions(refused.error().message(), "deadline"));
    held.open();
}

TEST_CASE("bulkhead: cancelling a queued call ends its wait and frees its place", "[bulkhead]") {
    manual_clock fake(0, manual);
    std::vector<bulkhead_action> actions;
    auto o = limits(1, 1);
    o.on_event = [&](const sturdy::bulkhead_event& e) { actions.push_back(e.action); };
    sturdy::bulkhead pool(o, fake.timing());
    gate held;
    caller first([&] { return call(pool, [&](sturdy::call_context&) -> sturdy::result<int> { held.pass(); return 1; }); });
    held.wait_for_arrivals(1);
    sturdy::cancellation_source stop;
    caller second([&] { return call(pool, ok, stop.token()); });
    fake.wait_for_sleepers(1);
    stop.cancel();
    const auto& cancelled = second.outcome();
    REQUIRE_FALSE(cancelled.has_value());
    CHECK(cancelled.error().kind() == error_kind::cancelled);
    CHECK(pool.queued() == 0);
    CHECK(actions == std::vector<bulkhead_action>{bulkhead_action::queued, bulkhead_action::cancelled});
    held.open();
    CHECK(first.outcome().has_value());
    CHECK(pool.in_flight() == 0);
}

TEST_CASE("bulkhead: a failed attempt frees its slot", "[bulkhead]") {
    sturdy::bulkhead pool(1);
    auto failed = call(pool, [](sturdy::call_context&) -> sturdy::result<int> { return sturdy::error(error_kind::connection, "refused"); });
    CHECK_FALSE(failed.has_value());
    CHECK(pool.in_flight() == 0);
    CHECK(call(pool, ok).has_value());
}

TEST_CASE("bulkhead: an attempt that throws frees its slot for the next in the queue", "[bulkhead]") {
    manual_clock fake(0, manual);
    sturdy::bulkhead pool(limits(1, 1), fake.timing());
    gate held;
    bool threw = false;
    std::thread thrower([&] {
        try {
            call(pool, [&](sturdy::call_context&) -> sturdy::result<int> {
                held.pass();
                throw std::runtime_error("a user's stream callback threw");
            });
        } catch (const std::runtime_error&) {
            threw = true;
        }
    });
    held.wait_for_arrivals(1);
    caller next([&] { return call(pool, ok); });
    fake.wait_for_sleepers(1);
    held.open();
    thrower.join();
    CHECK(threw);
    CHECK(next.outcome().has_value());
    CHECK(pool.in_flight() == 0);
    CHECK_THROWS_AS(call(pool, [](sturdy::call_context&) -> sturdy::result<int> { throw std::logic_error("again"); }),
                    std::logic_error);
    CHECK(pool.in_flight() == 0);
}

TEST_CASE("bulkhead: reports a wait and the admission after it", "[bulkhead]") {
    manual_clock fake(0, manual);
    std::vector<sturdy::bulkhead_event> events;
    auto o = limits(1, 2);
    o.on_event = [&](const sturdy::bulkhead_event& e) { events.push_back(e); };
    sturdy::bulkhead pool(o, fake.timing());
    gate held;
    caller first([&] { return call(pool, [&](sturdy::call_context&) -> sturdy::result<int> { held.pass(); return 1; }); });
    held.wait_for_arrivals(1);
    CHECK(events.empty());  // a free slot is taken silently
    caller second([&] { return call(pool, ok); });
    fake.wait_for_sleepers(1);
    fake.advance(milliseconds(300));  // less than max_wait: it sleeps on
    fake.wait_for_sleepers(1);
    held.open();
    CHECK(second.outcome().has_value());
    CHECK(first.outcome().has_value());
    REQUIRE(events.size() == 2);
    CHECK(events[0].action == bulkhead_action::queued);
    CHECK(events[0].in_flight == 1);
    CHECK(events[0].queued == 1);
    CHECK(events[1].action == bulkhead_action::admitted);
    CHECK(events[1].waited == milliseconds(300));
    CHECK(events[1].queued == 0);
    CHECK(events[1].model == "m");
}

namespace {

/// A call's event sink that writes each bulkhead_event it hears, with its source, into a log the
/// hooks write into too.
class door_sink : public sturdy::event_sink {
public:
    explicit door_sink(std::vector<std::string>& log) : log_(log) {}
    void on_bulkhead(const sturdy::event_source& from, const sturdy::bulkhead_event& e) override {
        CHECK(e.bulkhead == from.policy);
        log_.push_back("sink " + std::string(from.policy) + "@" + std::string(from.route) + " " +
                       std::string(sturdy::to_string(e.action)));
    }

private:
    std::vector<std::string>& log_;
};

}  // namespace

TEST_CASE("bulkhead: its events reach the hook, then the call's sink, named after the bulkhead and the call's route",
          "[bulkhead][events]") {
    manual_clock fake(0, manual);
    std::vector<std::string> log;  // written by the one thread that meets the door at a time
    door_sink sink(log);
    auto o = limits(1, 1, seconds(2));
    o.on_event = [&](const sturdy::bulkhead_event& e) {
        log.push_back("hook " + std::string(sturdy::to_string(e.action)));
    };
    const auto through = [&](const sturdy::bulkhead& pool, const char* route) {
        sturdy::call_state state;
        sturdy::call_context ctx(sturdy::operation::chat, "m", state);
        ctx.events = &sink;
        if (*route) ctx.route = std::make_shared<const sturdy::route>(sturdy::route{route, nullptr, ""});
        return pool.execute(ctx, ok);
    };
    // The only slot is held by a call of the test's; the others queue, time out, or find the queue full.
    const auto meet_full_pool = [&](const sturdy::bulkhead& pool) {
        gate held;
        caller first([&] {
            return call(pool, [&](sturdy::call_context&) -> sturdy::result<int> {
                held.pass();
                return 1;
            });
        });
        held.wait_for_arrivals(1);
        caller queued([&] { return through(pool, "primary"); });
        fake.wait_for_sleepers(1);
        CHECK_FALSE(through(pool, "").has_value());  // the queue is full
        fake.advance(seconds(2));
        CHECK_FALSE(queued.outcome().has_value());  // timed out
        held.open();
        CHECK(first.outcome().has_value());
    };

    SECTION("unnamed: named by its kind") {
        o.name.clear();
        const sturdy::bulkhead pool(o, fake.timing());
        CHECK(pool.options().name == "bulkhead");
        meet_full_pool(pool);
        CHECK(log == std::vector<std::string>{"hook queued", "sink bulkhead@primary queued", "hook queue_full",
                                              "sink bulkhead@ queue_full", "hook timed_out",
                                              "sink bulkhead@primary timed_out"});
    }
    SECTION("named, and heard by the sink alone") {
        o.on_event = nullptr;
        const sturdy::bulkhead pool(o, fake.timing());
        meet_full_pool(pool);
        CHECK(log == std::vector<std::string>{"sink pool@primary queued", "sink pool@ queue_full",
                                              "sink pool@primary timed_out"});
    }
}

TEST_CASE("bulkhead: copies share their slots", "[bulkhead]") {
    const sturdy::bulkhead pool(1);
    const sturdy::bulkhead copy = pool;
    int in_flight_seen = -1;
    call(copy, [&](sturdy::call_context&) -> sturdy::result<int> {
        in_flight_seen = pool.in_flight();
        return 1;
    });
    CHECK(in_flight_seen == 1);
}

TEST_CASE("bulkhead: works inside compose() and a dynamic_pipeline", "[bulkhead]") {
    manual_clock fake(0, manual);
    sturdy::bulkhead pool(limits(1, 0), fake.timing());
    auto check_nested_call_refused = [&](const auto& policy) {
        int in_flight_seen = -1;
        std::optional<sturdy::result<int>> nested;
        auto outer = call(policy, [&](sturdy::call_context&) -> sturdy::result<int> {
            in_flight_seen = pool.in_flight();
            nested = call(policy, ok);  // the only slot is taken and nobody may wait
            return 1;
        });
        CHECK(outer.has_value());
        CHECK(in_flight_seen == 1);
        REQUIRE(nested);
        REQUIRE_FALSE(nested->has_value());
        CHECK(nested->error().kind() == error_kind::rate_limited);  // and not retried
        CHECK(pool.in_flight() == 0);
    };
    SECTION("compose") { check_nested_call_refused(sturdy::compose(sturdy::retry_policy(sturdy::retry_options{}, fake.timing()), pool)); }
    SECTION("dynamic_pipeline") {
        check_nested_call_refused(sturdy::dynamic_pipeline{sturdy::retry_policy(sturdy::retry_options{}, fake.timing()), pool});
    }
}

TEST_CASE("bulkhead: nonsense settings are refused, naming the field", "[bulkhead]") {
    const auto refusal = [](const sturdy::bulkhead_options& o) {
        try {
            sturdy::bulkhead pool(o);
        } catch (const std::invalid_argument& e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    auto handling = limits(1, 1);
    handling.should_handle = sturdy::any_error;  // a bulkhead holds slots whatever the outcome: no failure to choose
    const std::vector<std::pair<std::string, sturdy::bulkhead_options>> nonsense = {
        {"max_concurrent", limits(0, 1)},
        {"max_queue", limits(1, -1)},
        {"max_wait", limits(1, 1, -nanoseconds(1))},
        {"should_handle", handling},
    };
    for (const auto& [field, options] : nonsense) {
        const auto what = refusal(options);
        INFO(field << ": " << what);
        CHECK(mentions(what, "sturdy::bulkhead: " + field + " "));
    }
    CHECK_THROWS_AS(sturdy::bulkhead(0), std::invalid_argument);
    CHECK_FALSE(sturdy::bulkhead_options{}.should_handle);
    CHECK(refusal(limits(1, 0, seconds(0))) == "accepted");
}

// ---- the executor seam ----

namespace {

/// An event loop's executor, reduced to what a test needs: it holds no thread and never sleeps. It
/// records each wait asked of it and keeps it: `run_woken` runs the waits whose token fired, as the
/// loop would; `elapse` moves the fake clock on by each wait and runs it as elapsed. With
/// `elapse_at_once`, it does so as soon as a wait is asked for.
class loop_executor final : public sturdy::executor {
public:
    explicit loop_executor(manual_clock& fake, bool elapse_at_once = false) : fake_(fake), at_once_(elapse_at_once) {}
    void after(const sturdy::clock&, sturdy::clock::duration d, const sturdy::cancellation_token& cancel,
               std::function<void(bool)> then) override {
        waits.push_back(d);
        if (cancel.cancelled()) return then(false);
        pending_.push_back({d, cancel, std::move(then)});
        if (at_once_) elapse();
    }
    bool spawn(std::function<void()>) override { return false; }

    std::size_t pending() const { return pending_.size(); }
    void run_woken() {
        for (;;) {
            const auto fired =
                std::find_if(pending_.begin(), pending_.end(), [](const wait& w) { return w.cancel.cancelled(); });
            if (fired == pending_.end()) return;
            auto then = std::move(fired->then);
            pending_.erase(fired);
            then(false);
        }
    }
    void elapse() {
        auto due = std::move(pending_);
        pending_.clear();
        for (auto& w : due) {
            fake_.advance(w.d);
            w.then(true);
        }
    }

    std::vector<sturdy::clock::duration> waits;

private:
    struct wait {
        sturdy::clock::duration d;
        sturdy::cancellation_token cancel;
        std::function<void(bool)> then;
    };
    manual_clock& fake_;
    const bool at_once_;
    std::vector<wait> pending_;
};

/// What runs inside a bulkhead started by hand: each attempt is sent and its reply kept for the
/// test to give, as an event loop's request on the wire (`next` returns before its outcome).
struct held_attempt {
    int id;
    std::vector<int>* started;
    std::vector<std::function<void(sturdy::result<int>)>>* replies;
    template <class K>
    void operator()(sturdy::call_context&, K&& k) const {
        started->push_back(id);
        replies->emplace_back(std::forward<K>(k));
    }
};

struct keep_outcome {
    std::optional<sturdy::result<int>>* out;
    void operator()(sturdy::result<int> r) const { *out = std::move(r); }
};

/// One call started by hand on one thread with the test's executor; its context lives as long as it.
struct started_call {
    sturdy::call_state state;
    sturdy::call_context ctx{sturdy::operation::chat, "m", state};
    std::optional<sturdy::result<int>> outcome;
};

}  // namespace

TEST_CASE("bulkhead: queued calls hold no thread: the executor waits for them, and a freed slot wakes the first",
          "[bulkhead][executor]") {
    manual_clock fake(0, manual);
    sturdy::bulkhead pool(limits(1, 2, seconds(30)), fake.timing());
    loop_executor exec(fake);
    std::vector<int> started;
    std::vector<std::function<void(sturdy::result<int>)>> replies;
    std::vector<std::unique_ptr<started_call>> calls;
    auto start = [&](int id) {
        calls.push_back(std::make_unique<started_call>());
        auto& c = *calls.back();
        c.ctx.exec = &exec;
        pool.start<int>(c.ctx, held_attempt{id, &started, &replies}, keep_outcome{&c.outcome});
        return &c;
    };

    // All on this thread: `start` returns at once for each call, queued or not.
    auto* first = start(1);
    auto* second = start(2);
    auto* third = start(3);
    auto* fourth = start(4);
    CHECK(started == std::vector<int>{1});
    CHECK(pool.in_flight() == 1);
    CHECK(pool.queued() == 2);
    CHECK(exec.waits ==
          std::vector<sturdy::clock::duration>{seconds(30), seconds(30)});  // max_wait, asked of the executor
    CHECK(exec.pending() == 2);
    REQUIRE(fourth->outcome);  // the queue is full
    CHECK(fourth->outcome->error().code() == sturdy::error_codes::bulkhead_full);
    CHECK_FALSE(second->outcome);
    CHECK_FALSE(third->outcome);

    // The first call's reply frees its slot, handed to the first waiter, whose wait the loop ends.
    replies[0](1);
    REQUIRE(first->outcome);
    CHECK(first->outcome->has_value());
    CHECK(started == std::vector<int>{1});  // woken by the loop, not run on the releasing call's stack
    exec.run_woken();
    CHECK(started == std::vector<int>{1, 2});
    CHECK(pool.in_flight() == 1);
    CHECK(pool.queued() == 1);

    // The third's max_wait runs out before the second replies.
    exec.elapse();
    REQUIRE(third->outcome);
    CHECK(third->outcome->error().code() == sturdy::error_codes::bulkhead_timeout);
    CHECK(pool.queued() == 0);

    replies[1](2);
    REQUIRE(second->outcome);
    CHECK(second->outcome->has_value());
    CHECK(started == std::vector<int>{1, 2});
    CHECK(pool.in_flight() == 0);
    CHECK(fake.sleeps().empty());  // nobody slept on the clock
}

TEST_CASE("bulkhead: through execute, a queued call's wait is asked of the call's executor", "[bulkhead][executor]") {
    manual_clock fake(0, manual);
    sturdy::bulkhead pool(limits(1, 1, seconds(2)), fake.timing());
    loop_executor exec(fake, /*elapse_at_once=*/true);
    std::optional<sturdy::result<int>> nested;
    auto outer = call(pool, [&](sturdy::call_context&) -> sturdy::result<int> {
        // The only slot is this call's: a call made from inside it queues, and its executor, not a
        // sleep on the clock (which nothing would ever advance), ends the wait.
        sturdy::call_state state;
        sturdy::call_context ctx(sturdy::operation::chat, "m", state);
        ctx.exec = &exec;
        nested = pool.execute(ctx, ok);
        return 1;
    });
    CHECK(outer.has_value());
    REQUIRE(nested);
    REQUIRE_FALSE(nested->has_value());
    CHECK(nested->error().code() == sturdy::error_codes::bulkhead_timeout);
    CHECK(exec.waits == std::vector<sturdy::clock::duration>{seconds(2)});
    CHECK(fake.sleeps().empty());
    CHECK(pool.in_flight() == 0);
}

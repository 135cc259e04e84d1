// The hedging policy in virtual time: scripted attempts that block until a gate opens or their
// cancellation fires, and a manual fake clock the test moves, so every race is decided by the test.
#include <sturdy/dynamic_pipeline.hpp>
#include <sturdy/hedging.hpp>
#include <sturdy/pipeline.hpp>
#include <sturdy/result.hpp>
#include <sturdy/retry.hpp>
#include <sturdy/testing/fake_clock.hpp>
#include <sturdy/timeout.hpp>

#include "support/catch.hpp"
#include "support/observed.hpp"
#include "support/gate.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono;
using sturdy::error;
using sturdy::error_kind;
using manual = sturdy::testing::fake_clock;

namespace {

constexpr auto manual_mode = sturdy::testing::fake_clock::mode::manual;

error http_error(int status) {
    sturdy::error_details d;
    d.status = status;
    d.message = "scripted " + std::to_string(status);
    return error(sturdy::kind_for_status(status), std::move(d));
}

using sturdy_test::gate;

error cancelled() { return error(error_kind::cancelled, "the request was cancelled"); }

using step = std::function<sturdy::result<int>(sturdy::call_context&)>;

// The n-th attempt to start runs steps[n - 1]; what each one saw is recorded.
struct script {
    struct seen {
        std::string route;  // ctx.route's name, "" for none
        std::string model;  // ctx.effective_model()
        bool cancelled = false;
    };

    explicit script(std::vector<step> s) : steps(std::move(s)), seen_by(steps.size()) {}

    sturdy::result<int> operator()(sturdy::call_context& ctx) {
        std::size_t n = 0;
        {
            std::lock_guard<std::mutex> lock(mutex);
            n = static_cast<std::size_t>(started++);
            seen_by.at(n).route = ctx.route ? ctx.route->name : "";
            seen_by.at(n).model = std::string(ctx.effective_model());
            cv.notify_all();
        }
        auto out = steps.at(n)(ctx);
        std::lock_guard<std::mutex> lock(mutex);
        seen_by[n].cancelled = ctx.cancel.cancelled();
        ++finished;
        cv.notify_all();
        return out;
    }

    void wait_finished(int n) {
        std::unique_lock<std::mutex> lock(mutex);
        cv.wait(lock, [&] { return finished >= n; });
    }

    void wait_started(int n) {
        std::unique_lock<std::mutex> lock(mutex);
        cv.wait(lock, [&] { return started >= n; });
    }
    int count() {
        std::lock_guard<std::mutex> lock(mutex);
        return started;
    }
    seen of(int n) {
        std::lock_guard<std::mutex> lock(mutex);
        return seen_by.at(static_cast<std::size_t>(n - 1));
    }

    std::vector<step> steps;
    std::mutex mutex;
    std::condition_variable cv;
    int started = 0;
    int finished = 0;
    std::vector<seen> seen_by;
};

step answer(int v) {
    return [v](sturdy::call_context&) -> sturdy::result<int> { return v; };
}
step fail(error e) {
    return [e](sturdy::call_context&) -> sturdy::result<int> { return e; };
}
// How long an attempt waits to be cancelled before it gives up, in real time. The script then
// records it as not cancelled, so a policy that leaves a loser running fails its test in seconds
// instead of hanging until ctest's timeout.
constexpr auto cancel_patience = seconds(5);

// Waits until `token` is cancelled (true) or `cancel_patience` has passed (false).
bool wait_cancelled(const sturdy::cancellation_token& token) {
    std::mutex m;
    std::condition_variable cv;
    // Registered before the lock is taken and released after it is: the callback takes it.
    auto registration = token.on_cancel([&] {
        std::lock_guard<std::mutex> inner(m);
        cv.notify_all();
    });
    std::unique_lock<std::mutex> lock(m);
    return cv.wait_for(lock, cancel_patience, [&] { return token.cancelled(); });
}

// Blocks until cancelled (or, when the policy never cancels it, for cancel_patience).
step hang() {
    return [](sturdy::call_context& ctx) -> sturdy::result<int> {
        wait_cancelled(ctx.cancel);
        return cancelled();
    };
}
// Blocks until `g` opens (then returns `then`) or the attempt is cancelled.
step hang_until(gate& g, sturdy::result<int> then) {
    return [&g, then](sturdy::call_context& ctx) -> sturdy::result<int> {
        if (!g.wait(ctx.cancel)) return cancelled();
        return then;
    };
}

struct call {
    explicit call(sturdy::operation op = sturdy::operation::chat) : ctx(op, "m", state) {}
    sturdy::call_state state;
    sturdy::call_context ctx;
};

// Runs a call on its own thread, as the caller's thread whose first attempt may block.
template <class Policy, class Attempt>
std::future<sturdy::result<int>> start(const Policy& policy, call& c, Attempt& attempt) {
    return std::async(std::launch::async, [&policy, &c, &attempt] { return policy.execute(c.ctx, attempt); });
}

// Lets the first attempt start and the hedging thread fall asleep, then moves the clock by `d`.
void pass(manual& fake, script& s, sturdy::clock::duration d) {
    s.wait_started(1);
    fake.wait_for_sleepers(1);
    fake.advance(d);
}

// The first attempt hangs until cancelled; the hedge, due after `delay`, answers 2 and wins.
template <class Policy>
void check_hedge_wins(const Policy& policy, manual& fake, sturdy::clock::duration delay) {
    script s({hang(), answer(2)});
    call c;
    auto running = start(policy, c, s);
    pass(fake, s, delay);
    auto out = running.get();
    REQUIRE(out);
    CHECK(*out == 2);
    CHECK(c.state.hedges() == 1);
    CHECK(s.of(1).cancelled);  // it had returned by the time the call did (the script recorded it)
}

// The first attempt answers `first`, but only once the hedge (running `hedge`) has started.
struct late_first {
    late_first(sturdy::result<int> first, step hedge) : s({hang_until(first_answers, std::move(first)), std::move(hedge)}) {}

    template <class Policy>
    sturdy::result<int> run(const Policy& policy, manual& fake, sturdy::clock::duration delay) {
        auto running = start(policy, c, s);
        pass(fake, s, delay);
        s.wait_started(2);
        first_answers.open();
        return running.get();
    }

    gate first_answers;
    script s;
    call c;
};

sturdy::hedging_options after(sturdy::clock::duration delay) {
    sturdy::hedging_options o;
    o.delay = delay;
    return o;
}

// Records every hedge event (copied: the event's views do not outlive the call).
struct event_log {
    struct entry {
        int hedge;
        sturdy::clock::duration waited;
        std::string route;
        std::string model;
        std::optional<int> cause_status;
    };
    std::mutex mutex;
    std::vector<entry> entries;

    std::function<void(const sturdy::hedge_event&)> hook() {
        return [this](const sturdy::hedge_event& e) {
            std::lock_guard<std::mutex> lock(mutex);
            entries.push_back({e.hedge, e.waited, e.route ? e.route->name : "", std::string(e.model),
                               e.cause ? std::optional<int>(e.cause->status()) : std::nullopt});
        };
    }
};

// One finished call whose winner took `latency` of virtual time, for the percentile window.
void feed(const sturdy::hedging_policy& h, manual& fake, milliseconds latency) {
    call c;
    auto attempt = [&](sturdy::call_context&) -> sturdy::result<int> {
        fake.advance(latency);
        return 1;
    };
    REQUIRE(h.execute(c.ctx, attempt));
}

}  // namespace

TEST_CASE("hedging: the hedge starts when the delay has passed, not before", "[hedging]") {
    manual fake(0, manual_mode);
    event_log events;
    auto o = after(100ms);
    o.on_hedge = events.hook();
    sturdy::hedging_policy h(o, fake.timing());
    script s({hang(), answer(2)});
    call c;
    auto running = start(h, c, s);

    s.wait_started(1);
    fake.wait_for_sleepers(1);
    CHECK(fake.sleeps().back() == 100ms);
    fake.advance(100ms - 1ns);
    CHECK(s.count() == 1);
    CHECK(c.state.hedges() == 0);
    fake.advance(1ns);

    auto out = running.get();
    REQUIRE(out);
    CHECK(*out == 2);
    CHECK(s.count() == 2);
    CHECK(c.state.hedges() == 1);
    REQUIRE(events.entries.size() == 1);
    CHECK(events.entries[0].hedge == 1);
    CHECK(events.entries[0].waited == 100ms);
    CHECK(events.entries[0].route.empty());
    CHECK(events.entries[0].model == "m");
    CHECK_FALSE(events.entries[0].cause_status.has_value());
    CHECK(s.of(1).cancelled);
}

TEST_CASE("hedging: when the hedge answers first, the first attempt is cancelled and waited for", "[hedging]") {
    manual fake(0, manual_mode);
    check_hedge_wins(sturdy::hedging_policy(after(50ms), fake.timing()), fake, 50ms);
}

TEST_CASE("hedging: the winner's outcome reaches the caller with what its attempt saw", "[hedging]") {
    manual fake(0, manual_mode);
    sturdy::hedging_policy h(after(0ms), fake.timing());
    script s({hang(), [](sturdy::call_context&) -> sturdy::result<int> {
                  sturdy::reply_observation seen;
                  seen.status = 201;
                  return sturdy_test::observed<int>(2, seen);
              }});
    call c;
    auto out = h.execute(c.ctx, s);
    REQUIRE(out);
    REQUIRE(out.observation() != nullptr);
    CHECK(out.observation()->status == 201);
    CHECK(s.of(1).cancelled);
}

TEST_CASE("hedging: when the first attempt answers after the hedge started, the hedge is cancelled", "[hedging]") {
    manual fake(0, manual_mode);
    sturdy::hedging_policy h(after(50ms), fake.timing());
    late_first race(1, hang());
    auto out = race.run(h, fake, 50ms);
    REQUIRE(out);
    CHECK(*out == 1);
    CHECK(race.s.of(2).cancelled);
    CHECK(race.c.state.hedges() == 1);
}

TEST_CASE("hedging: an answer within the delay makes no hedge and stops the hedging thread at once", "[hedging]") {
    manual fake(0, manual_mode);
    sturdy::hedging_policy h(after(100ms), fake.timing());
    script s({answer(1)});
    call c;
    // The clock never moves: the call returns only if the hedging thread's wait was ended.
    auto out = h.execute(c.ctx, s);
    REQUIRE(out);
    CHECK(*out == 1);
    CHECK(s.count() == 1);
    CHECK(c.state.hedges() == 0);
    CHECK(fake.sleeps().size() <= 1);
}

TEST_CASE("hedging: a handled failure starts the next hedge at once", "[hedging]") {
    manual fake(0, manual_mode);
    event_log events;
    auto o = after(10s);
    o.on_hedge = events.hook();
    sturdy::hedging_policy h(o, fake.timing());
    script s({fail(http_error(503)), answer(2)});
    call c;
    auto out = h.execute(c.ctx, s);  // the clock never moves
    REQUIRE(out);
    CHECK(*out == 2);
    CHECK(c.state.hedges() == 1);
    REQUIRE(events.entries.size() == 1);
    CHECK(events.entries[0].cause_status == 503);
    CHECK(events.entries[0].waited == 0ns);
}

TEST_CASE("hedging: with hedge_on_failure off, a failure alone ends the call", "[hedging]") {
    manual fake(0, manual_mode);
    auto o = after(10s);
    o.hedge_on_failure = false;
    sturdy::hedging_policy h(o, fake.timing());
    script s({fail(http_error(503))});
    call c;
    auto out = h.execute(c.ctx, s);
    REQUIRE_FALSE(out);
    CHECK(out.error().status() == 503);
    CHECK(c.state.hedges() == 0);
}

TEST_CASE("hedging: a failure should_handle rejects ends the call at once and cancels the hedges", "[hedging]") {
    manual fake(0, manual_mode);
    sturdy::hedging_policy h(after(50ms), fake.timing());
    late_first race(http_error(400), hang());
    auto out = race.run(h, fake, 50ms);
    REQUIRE_FALSE(out);
    CHECK(out.error().status() == 400);
    CHECK(race.s.of(2).cancelled);
}

TEST_CASE("hedging: should_handle decides which failures leave the race open", "[hedging]") {
    manual fake(0, manual_mode);
    auto o = after(10s);
    o.should_handle = [](const error& e) { return e.status() == 400; };
    sturdy::hedging_policy h(o, fake.timing());
    script s({fail(http_error(400)), answer(2)});
    call c;
    auto out = h.execute(c.ctx, s);
    REQUIRE(out);
    CHECK(*out == 2);

    script transient({fail(http_error(503))});  // is_transient would hedge it; this predicate does not
    call c2;
    auto ended = h.execute(c2.ctx, transient);
    REQUIRE_FALSE(ended);
    CHECK(ended.error().status() == 503);
    CHECK(c2.state.hedges() == 0);
}

TEST_CASE("hedging: an empty should_handle leaves the race open for what is_transient accepts", "[hedging]") {
    manual fake(0, manual_mode);
    auto o = after(10s);
    CHECK_FALSE(o.should_handle);  // empty by default: the documented default, not a copy of it
    sturdy::hedging_policy h(o, fake.timing());
    for (int status : {503, 429, 408}) {
        script s({fail(http_error(status)), answer(2)});
        call c;
        auto out = h.execute(c.ctx, s);  // the clock never moves: only the failure can start the hedge
        REQUIRE(out);
        CHECK(*out == 2);
        CHECK(c.state.hedges() == 1);
    }
    for (int status : {400, 401, 404}) {
        script s({fail(http_error(status))});
        call c;
        auto out = h.execute(c.ctx, s);
        REQUIRE_FALSE(out);
        CHECK(out.error().status() == status);
        CHECK(c.state.hedges() == 0);
    }
}

TEST_CASE("hedging: when every attempt fails, the first attempt's error is returned", "[hedging]") {
    manual fake(0, manual_mode);
    sturdy::hedging_policy h(after(50ms), fake.timing());
    late_first race(http_error(503), fail(http_error(502)));
    auto out = race.run(h, fake, 50ms);
    REQUIRE_FALSE(out);
    CHECK(out.error().status() == 503);
    CHECK(race.c.state.hedges() == 1);
}

TEST_CASE("hedging: no more than max_hedges, each a delay after the one before", "[hedging]") {
    manual fake(0, manual_mode);
    event_log events;
    auto o = after(100ms);
    o.max_hedges = 2;
    o.on_hedge = events.hook();
    sturdy::hedging_policy h(o, fake.timing());
    gate third_answers;
    script s({hang(), hang(), hang_until(third_answers, 3)});
    call c;
    auto running = start(h, c, s);
    pass(fake, s, 100ms);
    s.wait_started(2);
    fake.wait_for_sleepers(1);
    fake.advance(100ms);
    s.wait_started(3);
    fake.advance(1s);  // no third hedge: the script has no fourth step, it would throw
    third_answers.open();
    auto out = running.get();
    REQUIRE(out);
    CHECK(*out == 3);
    CHECK(s.count() == 3);
    CHECK(c.state.hedges() == 2);
    CHECK(s.of(1).cancelled);
    CHECK(s.of(2).cancelled);
    REQUIRE(events.entries.size() == 2);
    CHECK(events.entries[0].hedge == 1);
    CHECK(events.entries[1].hedge == 2);
    CHECK(events.entries[1].waited == 100ms);
}

TEST_CASE("hedging: a zero delay starts every attempt at once", "[hedging]") {
    manual fake(0, manual_mode);
    auto o = after(0ms);
    o.max_hedges = 2;
    sturdy::hedging_policy h(o, fake.timing());
    script s({hang(), hang(), answer(3)});
    call c;
    auto out = h.execute(c.ctx, s);  // the clock never moves
    REQUIRE(out);
    CHECK(*out == 3);
    CHECK(c.state.hedges() == 2);
    CHECK(s.of(1).cancelled);
    CHECK(s.of(2).cancelled);
}

TEST_CASE("hedging: an infinite delay hedges only on failures", "[hedging]") {
    manual fake(0, manual_mode);
    sturdy::hedging_policy h(after(sturdy::clock::duration::max()), fake.timing());
    script s({fail(http_error(503)), answer(2)});
    call c;
    auto out = h.execute(c.ctx, s);
    REQUIRE(out);
    CHECK(*out == 2);
    CHECK(fake.sleeps().empty());

    script quick({answer(1)});
    call c2;
    CHECK(*h.execute(c2.ctx, quick) == 1);
    CHECK(c2.state.hedges() == 0);
}

TEST_CASE("hedging: hedges go to the configured routes, in turn", "[hedging]") {
    manual fake(0, manual_mode);
    auto o = after(0ms);
    o.max_hedges = 3;
    o.routes = {{"backup", nullptr, "m-backup"}, {"other", nullptr, ""}};
    sturdy::hedging_policy h(o, fake.timing());
    script s({hang(), hang(), hang(), answer(4)});
    call c;
    auto out = h.execute(c.ctx, s);
    REQUIRE(out);
    // The first attempt keeps the call's route (none); hedge i takes routes[(i - 1) % 2]. With no
    // delay they reach the script in any order, so compare them as sets.
    std::vector<std::string> routes, models;
    for (int n = 1; n <= 4; ++n) {
        routes.push_back(s.of(n).route);
        models.push_back(s.of(n).model);
    }
    std::sort(routes.begin(), routes.end());
    std::sort(models.begin(), models.end());
    CHECK(routes == std::vector<std::string>{"", "backup", "backup", "other"});
    CHECK(models == std::vector<std::string>{"m", "m", "m-backup", "m-backup"});
    for (int n = 1; n <= 3; ++n) CHECK(s.of(n).cancelled);
}

TEST_CASE("hedging: a routed hedge that wins is reported as the call's route", "[hedging]") {
    manual fake(0, manual_mode);
    event_log events;
    auto o = after(50ms);
    o.routes = {{"backup", nullptr, "m-backup"}};
    o.on_hedge = events.hook();
    sturdy::hedging_policy h(o, fake.timing());
    script s({hang(), answer(2)});
    call c;
    auto running = start(h, c, s);
    pass(fake, s, 50ms);
    REQUIRE(running.get());
    CHECK(s.of(1).route.empty());
    CHECK(s.of(1).cancelled);
    CHECK(s.of(2).route == "backup");
    CHECK(s.of(2).model == "m-backup");
    CHECK(c.state.route_name() == "backup");
    CHECK(c.state.fallbacks() == 0);
    CHECK(c.ctx.route == nullptr);  // the caller's context is left as it was
    REQUIRE(events.entries.size() == 1);
    CHECK(events.entries[0].route == "backup");
    CHECK(events.entries[0].model == "m-backup");
}

TEST_CASE("hedging: the caller's cancellation cancels every attempt", "[hedging]") {
    manual fake(0, manual_mode);
    sturdy::hedging_policy h(after(50ms), fake.timing());
    sturdy::cancellation_source stop;
    script s({hang(), hang()});
    call c;
    c.ctx.cancel = stop.token();
    auto running = start(h, c, s);
    pass(fake, s, 50ms);
    s.wait_started(2);
    stop.cancel();
    auto out = running.get();
    REQUIRE_FALSE(out);
    CHECK(out.error().kind() == error_kind::cancelled);
    CHECK(s.of(1).cancelled);
    CHECK(s.of(2).cancelled);
}

TEST_CASE("hedging: a call cancelled during the delay makes no hedge", "[hedging]") {
    manual fake(0, manual_mode);
    sturdy::hedging_policy h(after(50ms), fake.timing());
    sturdy::cancellation_source stop;
    script s({hang()});
    call c;
    c.ctx.cancel = stop.token();
    auto running = start(h, c, s);
    s.wait_started(1);
    fake.wait_for_sleepers(1);
    stop.cancel();
    auto out = running.get();
    REQUIRE_FALSE(out);
    CHECK(out.error().kind() == error_kind::cancelled);
    CHECK(c.state.hedges() == 0);
    CHECK(s.of(1).cancelled);
}

TEST_CASE("hedging: no hedge starts past the call's deadline", "[hedging]") {
    manual fake(0, manual_mode);
    sturdy::hedging_policy h(after(100ms), fake.timing());
    gate first_answers;
    // Transient, so it would start a hedge at once if the deadline allowed one.
    script s({hang_until(first_answers, error(error_kind::timeout, "deadline"))});
    call c;
    c.ctx.deadline = sturdy::deadline::after(fake.timing().clock, 50ms);
    auto running = start(h, c, s);
    s.wait_started(1);
    fake.wait_for_sleepers(1);
    CHECK(fake.sleeps().back() == 50ms);  // it waits no longer than the deadline
    fake.advance(50ms);
    first_answers.open();
    auto out = running.get();
    REQUIRE_FALSE(out);
    CHECK(out.error().kind() == error_kind::timeout);
    CHECK(c.state.hedges() == 0);
    CHECK(s.count() == 1);
}

TEST_CASE("hedging: hedged attempts share the call's deadline", "[hedging]") {
    manual fake(0, manual_mode);
    sturdy::hedging_policy h(after(0ms), fake.timing());
    std::mutex m;
    std::vector<sturdy::clock::duration> left;
    auto report = [&](bool then_hang) -> step {
        return [&, then_hang](sturdy::call_context& ctx) -> sturdy::result<int> {
            {
                std::lock_guard<std::mutex> lock(m);
                left.push_back(ctx.deadline.remaining());
            }
            if (then_hang) return hang()(ctx);
            return 1;
        };
    };
    script s({report(true), report(false)});
    call c;
    c.ctx.deadline = sturdy::deadline::after(fake.timing().clock, 5s);
    REQUIRE(h.execute(c.ctx, s));
    CHECK(left == std::vector<sturdy::clock::duration>{5s, 5s});
    CHECK(s.of(1).cancelled);
}

TEST_CASE("hedging: the percentile delay is the fallback until enough latencies, then the window's percentile",
          "[hedging]") {
    manual fake(0, manual_mode);
    sturdy::hedging_options o;
    o.delay = 10s;
    o.percentile = 0.95;
    o.min_samples = 20;
    sturdy::hedging_policy h(o, fake.timing());
    const auto copy = h;  // copies share the window

    CHECK(h.current_delay() == 10s);
    // Slowest first, so the delay always exceeds the next latency and no feeding call is hedged.
    for (int i = 100; i > 81; --i) feed(h, fake, milliseconds(i));
    CHECK(h.current_delay() == 10s);
    for (int i = 81; i > 0; --i) feed(h, fake, milliseconds(i));
    // 95 ms (nearest rank), read within 1 % and never below.
    CHECK(copy.current_delay() >= 95ms);
    CHECK(copy.current_delay() <= microseconds(95950));

    // The next call waits exactly that long before its hedge.
    const auto expected = h.current_delay();
    call c;
    sturdy::clock::duration waited{};
    auto attempt = [&](sturdy::call_context&) -> sturdy::result<int> {
        fake.wait_for_sleepers(1);
        waited = fake.sleeps().back();
        return 1;
    };
    REQUIRE(h.execute(c.ctx, attempt));
    CHECK(waited == expected);
}

TEST_CASE("hedging: min_delay and max_delay bound a percentile delay", "[hedging]") {
    manual fake(0, manual_mode);
    sturdy::hedging_options o;
    o.percentile = 0.5;
    o.min_samples = 1;
    o.min_delay = 200ms;
    sturdy::hedging_policy floor(o, fake.timing());
    feed(floor, fake, 10ms);
    CHECK(floor.current_delay() == 200ms);

    o.min_delay = {};
    o.max_delay = 5ms;
    sturdy::hedging_policy ceiling(o, fake.timing());
    feed(ceiling, fake, 10ms);
    CHECK(ceiling.current_delay() == 5ms);
}

TEST_CASE("hedging: an attempt a hedge beat counts as at least as slow as it was", "[hedging]") {
    // Without it, the window would hold only the fast winners and the delay would keep shrinking.
    manual fake(0, manual_mode);
    sturdy::hedging_options o;
    o.delay = 100ms;
    o.percentile = 1.0;
    o.min_samples = 1;
    sturdy::hedging_policy h(o, fake.timing());
    script s({hang(), answer(2)});
    call c;
    auto running = start(h, c, s);
    pass(fake, s, 100ms);
    REQUIRE(running.get());
    CHECK(h.current_delay() >= 100ms);  // the hedge itself took no time at all
    CHECK(s.of(1).cancelled);
}

TEST_CASE("hedging: an exception from a hedged attempt reaches the caller after the others stop", "[hedging]") {
    manual fake(0, manual_mode);
    sturdy::hedging_policy h(after(50ms), fake.timing());
    script s({hang(), [](sturdy::call_context&) -> sturdy::result<int> { throw std::runtime_error("boom"); }});
    call c;
    auto running = start(h, c, s);
    pass(fake, s, 50ms);
    CHECK_THROWS_AS(running.get(), std::runtime_error);
    CHECK(s.of(1).cancelled);
}

TEST_CASE("hedging: an exception from a hedge after the first attempt returned becomes the call's error", "[hedging]") {
    // The first attempt's thread has left the call, and an outcome cannot carry an exception.
    manual fake(0, manual_mode);
    sturdy::hedging_policy h(after(10s), fake.timing());
    script s({fail(http_error(503)),
              [](sturdy::call_context&) -> sturdy::result<int> { throw std::runtime_error("boom"); }});
    call c;
    auto out = h.execute(c.ctx, s);
    REQUIRE_FALSE(out);
    CHECK(out.error().kind() == error_kind::invalid_response);
    CHECK(std::string(out.error().what()).find("boom") != std::string::npos);
    CHECK(s.count() == 2);
}

namespace {

// Notes each hedge event a sink receives, and the hook's, in the order they come (from any thread).
struct hedge_log final : sturdy::event_sink {
    std::mutex mutex;
    std::vector<std::string> lines;
    std::vector<std::thread::id> sink_threads;
    void on_hedge(const sturdy::event_source& from, const sturdy::hedge_event& e) override {
        {
            std::lock_guard<std::mutex> lock(mutex);
            sink_threads.push_back(std::this_thread::get_id());
        }
        note("sink " + std::string(from.policy) + "@" + std::string(from.route) + " " + std::to_string(e.hedge) +
             " to " + (e.route ? e.route->name : std::string("-")));
    }
    std::function<void(const sturdy::hedge_event&)> hook() {
        return [this](const sturdy::hedge_event& e) { note("hook " + std::to_string(e.hedge)); };
    }
    void note(std::string line) {
        std::lock_guard<std::mutex> lock(mutex);
        lines.push_back(std::move(line));
    }
};

}  // namespace

TEST_CASE("hedging: each hedge goes to the hook, then to the call's event sink, named after the policy",
          "[hedging][events]") {
    manual fake(0, manual_mode);
    hedge_log log;
    call c;
    c.ctx.events = &log;
    script s({fail(http_error(503)), answer(2)});  // the failure starts the hedge: the clock never moves

    SECTION("the default name, off any route") {
        auto o = after(10s);
        o.on_hedge = log.hook();
        sturdy::hedging_policy h(o, fake.timing());
        CHECK(h.options().name == "hedging");
        REQUIRE(h.execute(c.ctx, s));
        CHECK(log.lines == std::vector<std::string>{"hook 1", "sink hedging@ 1 to -"});
    }
    SECTION("a custom name; the source is the call's route, the event's route the hedge's") {
        auto o = after(10s);
        o.name = "tail-cutter";
        o.routes = {{"backup", nullptr, "m-backup"}};
        sturdy::hedging_policy h(o, fake.timing());
        c.ctx.route = std::make_shared<const sturdy::route>(sturdy::route{"primary", nullptr, ""});
        REQUIRE(h.execute(c.ctx, s));
        CHECK(log.lines == std::vector<std::string>{"sink tail-cutter@primary 1 to backup"});
    }
}

TEST_CASE("hedging: a hedge whose turn came is reported on the branch that starts it", "[hedging][events]") {
    manual fake(0, manual_mode);
    hedge_log log;
    sturdy::hedging_policy h(after(50ms), fake.timing());
    std::thread::id caller;
    script s({[&](sturdy::call_context& ctx) {
                  caller = std::this_thread::get_id();  // read once the call has returned
                  return hang()(ctx);
              },
              answer(2)});
    call c;
    c.ctx.events = &log;
    auto running = start(h, c, s);
    pass(fake, s, 50ms);
    REQUIRE(running.get());
    CHECK(log.lines == std::vector<std::string>{"sink hedging@ 1 to -"});
    REQUIRE(log.sink_threads.size() == 1);
    CHECK(log.sink_threads[0] != caller);
}

TEST_CASE("hedging: a sink that throws ends the race as a hook that throws does, and the hedge is not sent",
          "[hedging][events]") {
    struct throwing_sink final : sturdy::event_sink {
        void on_hedge(const sturdy::event_source&, const sturdy::hedge_event&) override {
            throw std::runtime_error("sink failed");
        }
    } sink;
    manual fake(0, manual_mode);
    sturdy::hedging_policy h(after(10s), fake.timing());
    script s({fail(http_error(503)), answer(2)});
    call c;
    c.ctx.events = &sink;
    auto out = h.execute(c.ctx, s);
    REQUIRE_FALSE(out);
    CHECK(out.error().kind() == error_kind::invalid_response);
    CHECK(std::string(out.error().what()).find("sink failed") != std::string::npos);
    CHECK(s.count() == 1);
}

TEST_CASE("hedging: options that make no sense are refused, naming the field", "[hedging]") {
    auto refusal = [](const sturdy::hedging_options& o) -> std::string {
        try {
            sturdy::hedging_policy h(o);
        } catch (const std::invalid_argument& e) {
            return e.what();
        }
        return "accepted";
    };
    using Catch::Matchers::StartsWith;
    sturdy::hedging_options o;
    CHECK(refusal(o) == "accepted");
    o.delay = -1ms;
    CHECK_THAT(refusal(o), StartsWith("sturdy::hedging_policy: delay "));
    for (double p : {-0.1, 1.5, std::nan("")}) {
        o = {};
        o.percentile = p;
        CHECK_THAT(refusal(o), StartsWith("sturdy::hedging_policy: percentile "));
    }
    o = {};
    o.min_samples = 0;  // used to be read as 1
    CHECK_THAT(refusal(o), StartsWith("sturdy::hedging_policy: min_samples "));
    o = {};
    o.window = 0s;
    CHECK_THAT(refusal(o), StartsWith("sturdy::hedging_policy: window "));
    o = {};
    o.min_delay = -1ms;
    CHECK_THAT(refusal(o), StartsWith("sturdy::hedging_policy: min_delay "));
    o = {};
    o.min_delay = 2s;
    o.max_delay = 1s;  // used to be raised to min_delay
    CHECK_THAT(refusal(o), StartsWith("sturdy::hedging_policy: max_delay "));
    o = {};
    o.max_hedges = -1;
    CHECK_THAT(refusal(o), StartsWith("sturdy::hedging_policy: max_hedges "));
}

TEST_CASE("hedging: a route without a name is named after its place", "[hedging]") {
    manual fake(0, manual_mode);
    auto o = after(50ms);  // the hedge starts once the first attempt is in: the script's order is known
    o.routes = {{"", nullptr, "m-backup"}};
    sturdy::hedging_policy h(o, fake.timing());
    script s({hang(), answer(2)});
    call c;
    auto running = start(h, c, s);
    pass(fake, s, 50ms);
    REQUIRE(running.get());
    CHECK(s.of(1).route.empty());
    CHECK(s.of(2).route == "route 1");
    CHECK(c.state.route_name() == "route 1");
}

TEST_CASE("hedging: max_hedges 0 is the attempt alone", "[hedging]") {
    manual fake(0, manual_mode);
    auto o = after(0ms);
    o.max_hedges = 0;
    sturdy::hedging_policy h(o, fake.timing());
    script s({fail(http_error(503))});
    call c;
    auto out = h.execute(c.ctx, s);
    REQUIRE_FALSE(out);
    CHECK(s.count() == 1);
}

// ---- streams: the attempts race for the call's one commit gate ----

namespace {

// A stream attempt as the client's is: content reaches the caller only through the commit gate.
struct fake_stream {
    std::mutex mutex;
    std::vector<std::string> delivered;  // what the caller's callback saw
    gate delivering;                     // opens with the first chunk delivered

    // Delivers `chunks` (after `before` opens, if given), then returns `end`.
    step attempt(std::vector<std::string> chunks, gate* before, sturdy::result<int> end, gate* after_first = nullptr) {
        return [this, chunks, before, end, after_first](sturdy::call_context& ctx) -> sturdy::result<int> {
            const int id = ctx.state->begin_attempt();
            if (before && !before->wait(ctx.cancel)) return cancelled();
            if (!ctx.state->try_commit(id))
                return error(error_kind::cancelled, "another attempt of this call delivered first");
            for (std::size_t i = 0; i < chunks.size(); ++i) {
                {
                    std::lock_guard<std::mutex> lock(mutex);
                    delivered.push_back(chunks[i]);
                }
                delivering.open();
                if (i == 0 && after_first && !after_first->wait(ctx.cancel)) return cancelled();
            }
            sturdy::reply_observation seen;
            seen.delivered = true;
            seen.latency = 7ms;
            return sturdy_test::observed(end, seen);
        };
    }
};

}  // namespace

TEST_CASE("hedging: streams: the attempt that delivers first wins; the other loses the commit gate", "[hedging][stream]") {
    manual fake(0, manual_mode);
    sturdy::hedging_policy h(after(50ms), fake.timing());
    fake_stream stream;
    gate first_content, hedge_done;
    script s({stream.attempt({"slow-a", "slow-b"}, &first_content, 1), stream.attempt({"a", "b", "c"}, nullptr, 2, &hedge_done)});
    call c(sturdy::operation::chat_stream);
    auto running = start(h, c, s);
    pass(fake, s, 50ms);
    stream.delivering.wait();  // the hedge is delivering
    first_content.open();  // too late: it loses the gate and returns
    hedge_done.open();
    auto out = running.get();
    REQUIRE(out);
    CHECK(*out == 2);
    CHECK(stream.delivered == std::vector<std::string>{"a", "b", "c"});
    CHECK(c.state.hedges() == 1);
    REQUIRE(out.observation() != nullptr);
    CHECK(out.observation()->latency == 7ms);
}

TEST_CASE("hedging: streams: no hedge once the first attempt delivered content", "[hedging][stream]") {
    manual fake(0, manual_mode);
    sturdy::hedging_policy h(after(50ms), fake.timing());
    fake_stream stream;
    gate rest;
    script s({stream.attempt({"a", "b"}, nullptr, 1, &rest)});  // a second attempt would throw
    call c(sturdy::operation::chat_stream);
    auto running = start(h, c, s);
    stream.delivering.wait();
    fake.advance(50ms);  // whether the hedging thread was asleep by then or not, it must not hedge
    rest.open();
    auto out = running.get();
    REQUIRE(out);
    CHECK(c.state.hedges() == 0);
    CHECK(stream.delivered == std::vector<std::string>{"a", "b"});
}

TEST_CASE("hedging: streams: the attempt that delivered ends the call when it fails", "[hedging][stream]") {
    manual fake(0, manual_mode);
    sturdy::hedging_policy h(after(50ms), fake.timing());
    fake_stream stream;
    gate first_content;
    script s({stream.attempt({"a"}, &first_content, error(error_kind::stream_truncated, "cut")), hang()});
    call c(sturdy::operation::chat_stream);
    auto running = start(h, c, s);
    pass(fake, s, 50ms);
    s.wait_started(2);
    first_content.open();
    auto out = running.get();  // the hedge, still waiting for content, does not keep the call open
    REQUIRE_FALSE(out);
    CHECK(out.error().kind() == error_kind::stream_truncated);
    CHECK(s.of(2).cancelled);
}

TEST_CASE("hedging: streams: another attempt's failure does not end a call that is delivering", "[hedging][stream]") {
    manual fake(0, manual_mode);
    sturdy::hedging_policy h(after(0ms), fake.timing());
    fake_stream stream;
    gate both_started, other_fails, rest;
    // With no delay both start at once, in either order: which one delivers does not matter.
    script s({stream.attempt({"a", "b"}, &both_started, 1, &rest), hang_until(other_fails, http_error(400))});
    call c(sturdy::operation::chat_stream);
    auto running = start(h, c, s);
    s.wait_started(2);
    both_started.open();
    stream.delivering.wait();
    other_fails.open();  // a 400 would end an ordinary race, but the caller is being served
    s.wait_finished(1);
    rest.open();
    auto out = running.get();
    REQUIRE(out);
    CHECK(*out == 1);
    CHECK(stream.delivered == std::vector<std::string>{"a", "b"});
    CHECK_FALSE(s.of(1).cancelled);  // the attempt serving the caller was left alone
}

// ---- composition ----

TEST_CASE("hedging: works inside compose()", "[hedging][pipeline]") {
    manual fake(0, manual_mode);
    check_hedge_wins(sturdy::compose(sturdy::deadline_policy(10s, fake.timing()), sturdy::hedging_policy(after(50ms), fake.timing()),
                                     sturdy::retry_policy(0)),
                     fake, 50ms);
}

TEST_CASE("hedging: works in a dynamic_pipeline", "[hedging][pipeline]") {
    manual fake(0, manual_mode);
    sturdy::dynamic_pipeline policy;
    policy.add(sturdy::hedging_policy(after(50ms), fake.timing())).add(sturdy::no_policy{});
    check_hedge_wins(policy, fake, 50ms);
}

// ---- the executor seam ----

namespace {

// An executor that records what a policy asks of it. Timers are deferred, as on an event loop:
// `after` returns at once, and its callback runs on a timer thread of this executor's own when the
// test fires the timers (then(true)) or when the wait's cancellation fires (then(false)). Each
// branch runs on a thread of its own. Every thread it starts is joined when it is destroyed.
class recording_executor final : public sturdy::executor {
public:
    ~recording_executor() override {
        std::vector<std::thread> threads;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stopping_ = true;
            changed_.notify_all();
        }
        // Threads may start threads: join until none is left.
        for (;;) {
            {
                std::lock_guard<std::mutex> lock(mutex_);
                threads.swap(threads_);
            }
            if (threads.empty()) return;
            for (auto& t : threads) t.join();
            threads.clear();
        }
    }

    void after(const sturdy::clock&, sturdy::clock::duration d, const sturdy::cancellation_token& cancel,
               std::function<void(bool)> then) override {
        std::lock_guard<std::mutex> lock(mutex_);
        waits_.push_back(d);
        const int timer = static_cast<int>(waits_.size());
        changed_.notify_all();
        start_locked([this, timer, cancel, then = std::move(then)] {
            bool elapsed = false;
            {
                // Registered before the lock is taken, released after: the callback takes it.
                auto registration = cancel.on_cancel([this] {
                    std::lock_guard<std::mutex> inner(mutex_);
                    changed_.notify_all();
                });
                std::unique_lock<std::mutex> waiting(mutex_);
                changed_.wait(waiting, [&] { return fired_ >= timer || cancel.cancelled() || stopping_; });
                elapsed = fired_ >= timer && !cancel.cancelled();
            }
            then(elapsed);
        });
    }

    bool spawn(std::function<void()> branch) override {
        std::lock_guard<std::mutex> lock(mutex_);
        ++spawns_;
        start_locked(std::move(branch));
        return true;
    }

    /// Ends every wait asked for so far, as elapsed.
    void fire_timers() {
        std::lock_guard<std::mutex> lock(mutex_);
        fired_ = static_cast<int>(waits_.size());
        changed_.notify_all();
    }
    void wait_for_waits(std::size_t n) {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return waits_.size() >= n; });
    }
    std::vector<sturdy::clock::duration> waits() {
        std::lock_guard<std::mutex> lock(mutex_);
        return waits_;
    }
    int spawns() {
        std::lock_guard<std::mutex> lock(mutex_);
        return spawns_;
    }
    /// Whether `id` is a thread this executor started (a branch or a timer).
    bool started(std::thread::id id) {
        std::lock_guard<std::mutex> lock(mutex_);
        return std::find(ids_.begin(), ids_.end(), id) != ids_.end();
    }

private:
    void start_locked(std::function<void()> work) {
        threads_.emplace_back(std::move(work));
        ids_.push_back(threads_.back().get_id());
    }

    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<std::thread> threads_;
    std::vector<std::thread::id> ids_;
    std::vector<sturdy::clock::duration> waits_;
    int fired_ = 0;
    int spawns_ = 0;
    bool stopping_ = false;
};

// An executor that can start no branch (out of threads), and must never be asked to wait.
class refusing_executor final : public sturdy::executor {
public:
    void after(const sturdy::clock&, sturdy::clock::duration, const sturdy::cancellation_token&,
               std::function<void(bool)> then) override {
        ++waits;
        then(false);
    }
    bool spawn(std::function<void()>) override {
        ++refused;
        return false;
    }
    std::atomic<int> waits{0};
    std::atomic<int> refused{0};
};

// Notes the thread each attempt of a script runs on.
struct thread_log {
    std::mutex mutex;
    std::vector<std::thread::id> ids;
    step noting(step inner) {
        return [this, inner](sturdy::call_context& ctx) {
            {
                std::lock_guard<std::mutex> lock(mutex);
                ids.push_back(std::this_thread::get_id());
            }
            return inner(ctx);
        };
    }
};

}  // namespace

TEST_CASE("hedging: waits and branches go through the call's executor, never the clock or a thread of its own",
          "[hedging][executor]") {
    // The clock never moves and nothing sleeps on it: only the executor's timer can start the hedge.
    manual fake(0, manual_mode);
    sturdy::hedging_policy h(after(1h), fake.timing());

    SECTION("the delay is a timer; the hedge starts when it fires") {
        thread_log threads;
        script s({threads.noting(hang()), threads.noting(answer(2))});
        call c;
        recording_executor exec;  // after c: joined before the call's state goes
        c.ctx.exec = &exec;
        auto running = start(h, c, s);
        exec.wait_for_waits(1);
        s.wait_started(1);
        CHECK(exec.waits() == std::vector<sturdy::clock::duration>{1h});
        CHECK(exec.spawns() == 1);  // the branch that waits
        CHECK(s.count() == 1);
        exec.fire_timers();
        auto out = running.get();
        REQUIRE(out);
        CHECK(*out == 2);
        CHECK(c.state.hedges() == 1);
        CHECK(s.of(1).cancelled);
        CHECK(fake.sleeps().empty());
        CHECK(c.ctx.exec == &exec);  // the caller's executor, kept
        REQUIRE(threads.ids.size() == 2);
        CHECK(exec.started(threads.ids[1]));        // the hedge ran on a thread the executor started
        CHECK_FALSE(exec.started(threads.ids[0]));  // the first attempt, where the call started
    }

    SECTION("a failure starts the hedge on a branch, and ends the pending wait through its cancellation") {
        thread_log threads;
        script s({threads.noting(fail(http_error(503))), threads.noting(answer(2))});
        call c;
        recording_executor exec;
        c.ctx.exec = &exec;
        auto out = h.execute(c.ctx, s);
        REQUIRE(out);
        CHECK(*out == 2);
        CHECK(c.state.hedges() == 1);
        CHECK(exec.spawns() == 2);        // the waiting branch, and the hedge
        CHECK(exec.waits().size() <= 1);  // asked once at most (the failure may come first), never fired
        CHECK(fake.sleeps().empty());
        REQUIRE(threads.ids.size() == 2);
        CHECK(exec.started(threads.ids[1]));
    }
}

TEST_CASE("hedging: when the executor can start no branch, the call goes on without it", "[hedging][executor]") {
    manual fake(0, manual_mode);
    sturdy::hedging_policy h(after(1h), fake.timing());
    refusing_executor exec;

    SECTION("no branch to wait in: no timed hedge") {
        script s({answer(1)});
        call c;
        c.ctx.exec = &exec;
        auto out = h.execute(c.ctx, s);
        REQUIRE(out);
        CHECK(*out == 1);
        CHECK(c.state.hedges() == 0);
        CHECK(exec.refused == 1);
    }

    SECTION("a hedge started by a failure runs on the thread whose attempt failed") {
        thread_log threads;
        script s({threads.noting(fail(http_error(503))), threads.noting(answer(2))});
        call c;
        c.ctx.exec = &exec;
        auto out = h.execute(c.ctx, s);
        REQUIRE(out);
        CHECK(*out == 2);
        CHECK(c.state.hedges() == 1);
        CHECK(exec.refused == 2);  // the waiting branch, then the hedge's
        REQUIRE(threads.ids.size() == 2);
        CHECK(threads.ids[0] == std::this_thread::get_id());
        CHECK(threads.ids[1] == std::this_thread::get_id());
    }
    CHECK(exec.waits == 0);
    CHECK(fake.sleeps().empty());
}

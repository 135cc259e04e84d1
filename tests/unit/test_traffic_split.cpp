// The traffic split over scripted attempts: weights with a seeded random source, weights changed
// at run time, the rollback guard, shadow calls. No client, virtual time.
#include <sturdy/client.hpp>
#include <sturdy/dynamic_pipeline.hpp>
#include <sturdy/executor.hpp>
#include <sturdy/pipeline.hpp>
#include <sturdy/retry.hpp>
#include <sturdy/traffic_split.hpp>
#include <sturdy/testing/fake_clock.hpp>

#include "support/catch.hpp"
#include "support/observed.hpp"
#include "support/test_executor.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

using namespace std::chrono;
using sturdy::error;
using sturdy::error_kind;
using sturdy::split_arm;

namespace {

/// What a client's attempt reports of a reply that took `latency` by the transport's clock.
sturdy::reply_observation reporting(std::chrono::microseconds latency) {
    sturdy::reply_observation seen;
    seen.latency = latency;
    return seen;
}

using fake_clock = sturdy::testing::fake_clock;

// Answers by route: "answer from <route>" after the route's latency in virtual time, or its
// scripted failure. Counts the attempts each route got; safe for shadows on other threads.
struct arms_backend {
    explicit arms_backend(fake_clock& c) : clock(c) {}

    fake_clock& clock;
    std::mutex mutex;
    std::map<std::string, int> calls;
    std::map<std::string, error> failing;
    std::map<std::string, milliseconds> latency;

    sturdy::result<std::string> operator()(sturdy::call_context& ctx) {
        ctx.state->begin_attempt();
        const std::string name = ctx.route ? ctx.route->name : "";
        std::optional<error> fail;
        milliseconds wait{0};
        {
            std::lock_guard<std::mutex> lock(mutex);
            ++calls[name];
            if (auto it = failing.find(name); it != failing.end()) fail = it->second;
            if (auto it = latency.find(name); it != latency.end()) wait = it->second;
        }
        if (wait > milliseconds::zero()) clock.sleep_for(wait, ctx.cancel);
        if (fail) return *fail;
        return "answer from " + name;
    }
    int calls_to(const std::string& name) {
        std::lock_guard<std::mutex> lock(mutex);
        return calls[name];
    }
};

struct call {
    sturdy::call_state state;
    sturdy::call_context ctx{sturdy::operation::chat, "requested", state};
};

template <class Policy>
sturdy::result<std::string> run(const Policy& policy, arms_backend& b) {
    call c;
    return policy.execute(c.ctx, [&](sturdy::call_context& ctx) { return b(ctx); });
}

template <class Policy>
void run_n(const Policy& policy, arms_backend& b, int n) {
    for (int i = 0; i < n; ++i) (void)run(policy, b);
}

sturdy::traffic_split ninety_ten(fake_clock& fake, sturdy::traffic_split_options opts = {}) {
    return sturdy::traffic_split({split_arm("primary", "m-old").with_weight(90), split_arm("candidate", "m-new").with_weight(10)},
                                 std::move(opts), fake.timing());
}

sturdy::rollback_guard guard_over(sturdy::clock::duration window, std::uint64_t samples) {
    sturdy::rollback_guard g;
    g.min_samples = samples;
    g.window = window;
    return g;
}

sturdy::rollback_guard error_guard(double rate, std::uint64_t samples) {
    auto g = guard_over(minutes(5), samples);
    g.max_error_rate = rate;
    return g;
}

// Options whose rollback hook counts into `n`.
sturdy::traffic_split_options counting_rollbacks(int& n) {
    sturdy::traffic_split_options opts;
    opts.on_rollback = [&n](const sturdy::rollback_event&) { ++n; };
    return opts;
}

}  // namespace

TEST_CASE("split: weights are respected with a seeded random source, and the same seed gives the same split", "[split]") {
    auto candidate_calls = [](std::uint64_t seed) {
        fake_clock fake(seed);
        arms_backend b(fake);
        auto split = ninety_ten(fake);
        run_n(split, b, 10000);
        CHECK(b.calls_to("primary") + b.calls_to("candidate") == 10000);
        CHECK(split.stats_for("candidate")->calls == static_cast<std::uint64_t>(b.calls_to("candidate")));
        return b.calls_to("candidate");
    };
    const int first = candidate_calls(11);
    CHECK(first >= 900);  // 10% of 10 000, within three standard deviations (30)
    CHECK(first <= 1100);
    CHECK(candidate_calls(11) == first);
    const int other = candidate_calls(12);
    CHECK(other >= 900);
    CHECK(other <= 1100);
}

TEST_CASE("split: weights change at run time: a ramp from 5% to 25% to 100%", "[split]") {
    fake_clock fake(5);
    arms_backend b(fake);
    sturdy::traffic_split split({split_arm("primary", "m-old").with_weight(95), split_arm("candidate", "m-new").with_weight(5)}, {},
                                fake.timing());
    const auto observer = split;  // a copy steers the same split
    auto share = [&](int n) {
        const int before = b.calls_to("candidate");
        run_n(split, b, n);
        return static_cast<double>(b.calls_to("candidate") - before) / n;
    };
    CHECK(share(4000) == Approx(0.05).margin(0.015));
    REQUIRE(observer.set_weight("primary", 75));
    REQUIRE(observer.set_weight("candidate", 25));
    CHECK(split.weight("candidate") == 25);
    CHECK(share(4000) == Approx(0.25).margin(0.025));
    observer.set_weight("primary", 0);
    observer.set_weight("candidate", 100);
    CHECK(share(1000) == 1.0);
    CHECK_FALSE(observer.set_weight("nope", 1));
    CHECK_FALSE(split.weight("nope").has_value());
}

TEST_CASE("split: the chosen arm's route is the call's, and its error is returned as is", "[split]") {
    fake_clock fake;
    arms_backend b(fake);
    b.failing.emplace("candidate", error(error_kind::internal_server, "down", 503));
    sturdy::traffic_split split({split_arm("primary", "m-old").with_weight(0), split_arm("candidate", "m-new").with_weight(1)}, {},
                                fake.timing());
    call c;
    std::string model;
    auto out = split.execute(c.ctx, [&](sturdy::call_context& ctx) {
        model = std::string(ctx.effective_model());
        return b(ctx);
    });
    REQUIRE_FALSE(out.has_value());
    CHECK(out.error().status() == 503);
    CHECK(model == "m-new");
    CHECK(b.calls_to("primary") == 0);  // the split does not fall back
    CHECK(c.state.route_name() == "candidate");
    CHECK(c.state.fallbacks() == 0);
    CHECK(c.ctx.route == nullptr);  // restored
}

TEST_CASE("split: with every weight at 0 the first arm takes the calls", "[split]") {
    fake_clock fake;
    arms_backend b(fake);
    sturdy::traffic_split split({split_arm("primary", "m-old"), split_arm("candidate", "m-new")}, {}, fake.timing());
    run_n(split, b, 20);
    CHECK(b.calls_to("primary") == 20);
}

TEST_CASE("split: a call's route_order prefers an arm, weights aside", "[split]") {
    fake_clock fake;
    arms_backend b(fake);
    auto split = ninety_ten(fake);
    for (int i = 0; i < 20; ++i) {
        call c;
        c.ctx.route_order = {"unknown", "candidate"};
        REQUIRE(split.execute(c.ctx, [&](sturdy::call_context& ctx) { return b(ctx); }).has_value());
    }
    CHECK(b.calls_to("candidate") == 20);
}

TEST_CASE("split: the guard rolls back on an error rate above its threshold, from min_samples on", "[split][rollback]") {
    fake_clock fake;
    arms_backend b(fake);
    std::vector<sturdy::rollback_event> events;
    std::vector<std::string> rolled;
    sturdy::traffic_split_options opts;
    opts.on_rollback = [&](const sturdy::rollback_event& e) {
        events.push_back(e);
        rolled.push_back(e.arm.name);
    };
    // All traffic to the candidate, so each call is one of its samples.
    sturdy::traffic_split split({split_arm("primary", "m-old").with_weight(0),
                                 split_arm("candidate", "m-new").with_weight(1).with_guard(error_guard(0.2, 10))},
                                opts, fake.timing());

    b.failing.emplace("candidate", error(error_kind::internal_server, "boom", 500));
    run_n(split, b, 3);  // 3 of 3 failed, but fewer than 10 samples: no verdict yet
    CHECK(events.empty());
    b.failing.clear();
    run_n(split, b, 7);  // 3 of 10 = 30%...
    REQUIRE(events.size() == 1);  // ...judged at the 10th sample
    CHECK(rolled == std::vector<std::string>{"candidate"});
    CHECK(events[0].reason == sturdy::rollback_reason::error_rate);
    CHECK(events[0].error_rate == Approx(0.3));
    CHECK(events[0].samples == 10);
    CHECK(split.weight("candidate") == 0);
    CHECK(split.stats_for("candidate")->rolled_back);

    // Traffic is back on the primary.
    run_n(split, b, 5);
    CHECK(b.calls_to("primary") == 5);
    CHECK(b.calls_to("candidate") == 10);
}

TEST_CASE("split: an error rate exactly at the threshold does not roll back; one more failure does", "[split][rollback]") {
    fake_clock fake;
    arms_backend b(fake);
    int rollbacks = 0;
    const auto opts = counting_rollbacks(rollbacks);
    sturdy::traffic_split split({split_arm("candidate", "m-new").with_weight(1).with_guard(error_guard(0.2, 10))}, opts, fake.timing());
    run_n(split, b, 8);
    b.failing.emplace("candidate", error(error_kind::timeout, "slow"));
    run_n(split, b, 2);  // 2 of 10 = 20%: at the threshold, not above
    CHECK(rollbacks == 0);
    run_n(split, b, 1);  // 3 of 11 = 27%
    CHECK(rollbacks == 1);
    CHECK(split.weight("candidate") == 0);
}

TEST_CASE("split: old outcomes leave the guard's window", "[split][rollback]") {
    fake_clock fake;
    arms_backend b(fake);
    auto guard = error_guard(0.2, 4);
    guard.window = seconds(10);
    sturdy::traffic_split split({split_arm("candidate", "m-new").with_weight(1).with_guard(guard)}, {}, fake.timing());
    b.failing.emplace("candidate", error(error_kind::internal_server, "boom", 500));
    run_n(split, b, 3);  // 3 failures, short of 4 samples
    fake.advance(seconds(30));  // out of the window now; in it, the 4th sample would make 75%
    b.failing.clear();
    run_n(split, b, 4);
    CHECK_FALSE(split.stats_for("candidate")->rolled_back);
}

TEST_CASE("split: the guard rolls back on p99 latency", "[split][rollback]") {
    fake_clock fake;
    arms_backend b(fake);
    std::vector<sturdy::rollback_event> events;
    sturdy::traffic_split_options opts;
    opts.on_rollback = [&](const sturdy::rollback_event& e) { events.push_back(e); };
    sturdy::rollback_guard guard;
    guard.min_samples = 20;
    guard.max_latency = seconds(2);
    sturdy::traffic_split split({split_arm("primary", "m-old"), split_arm("candidate", "m-new").with_weight(1).with_guard(guard)}, opts,
                                fake.timing());
    b.latency["candidate"] = milliseconds(300);
    run_n(split, b, 19);
    b.latency["candidate"] = seconds(5);
    run_n(split, b, 1);  // 1 in 20 is beyond the 99th percentile's rank
    REQUIRE(events.size() == 1);
    CHECK(events[0].reason == sturdy::rollback_reason::latency);
    REQUIRE(events[0].latency.has_value());
    CHECK(*events[0].latency >= seconds(5));
    CHECK(*events[0].latency <= milliseconds(5750));  // bins are 15% wide
    CHECK(events[0].error_rate == 0.0);
    CHECK(split.weight("candidate") == 0);
}

TEST_CASE("split: fast calls keep the p99 under the limit", "[split][rollback]") {
    fake_clock fake;
    arms_backend b(fake);
    sturdy::rollback_guard guard;
    guard.min_samples = 5;
    guard.max_latency = seconds(1);
    sturdy::traffic_split split({split_arm("candidate", "m-new").with_weight(1).with_guard(guard)}, {}, fake.timing());
    b.latency["candidate"] = milliseconds(700);
    run_n(split, b, 50);
    const auto stats = split.stats_for("candidate");
    CHECK_FALSE(stats->rolled_back);
    CHECK(stats->window_calls == 50);
    REQUIRE(stats->window_latency.has_value());
    CHECK(*stats->window_latency >= milliseconds(700));
}

TEST_CASE("split: the guard's error predicate decides what counts; cancelled calls never do", "[split][rollback]") {
    fake_clock fake;
    arms_backend b(fake);
    auto guard = error_guard(0.1, 5);
    guard.should_handle = [](const error& e) { return e.kind() != error_kind::bad_request; };
    sturdy::traffic_split split({split_arm("candidate", "m-new").with_weight(1).with_guard(guard)}, {}, fake.timing());
    b.failing.emplace("candidate", error(error_kind::bad_request, "caller's fault", 400));
    run_n(split, b, 5);
    b.failing.erase("candidate");
    b.failing.emplace("candidate", error(error_kind::cancelled, "caller stopped"));
    run_n(split, b, 5);
    const auto stats = split.stats_for("candidate");
    CHECK_FALSE(stats->rolled_back);
    CHECK(stats->failures == 10);      // every failed call is counted in the totals...
    CHECK(stats->window_calls == 5);   // ...but cancelled ones are not the arm's samples
    CHECK(stats->window_error_rate == 0.0);
}

TEST_CASE("split: a weight above 0 puts a rolled-back arm back with a fresh window", "[split][rollback]") {
    fake_clock fake;
    arms_backend b(fake);
    int rollbacks = 0;
    const auto opts = counting_rollbacks(rollbacks);
    sturdy::traffic_split split({split_arm("primary", "m-old"), split_arm("candidate", "m-new").with_weight(1).with_guard(error_guard(0.5, 4))},
                                opts, fake.timing());
    b.failing.emplace("candidate", error(error_kind::internal_server, "boom", 500));
    run_n(split, b, 4);
    REQUIRE(rollbacks == 1);
    b.failing.clear();
    REQUIRE(split.set_weight("candidate", 1));
    CHECK_FALSE(split.stats_for("candidate")->rolled_back);
    run_n(split, b, 4);
    CHECK(rollbacks == 1);  // the old failures are forgotten
    CHECK(b.calls_to("candidate") == 8);
}

TEST_CASE("split: a shadow gets a silent copy with its own state; the live answer is returned", "[split][shadow]") {
    fake_clock fake;
    arms_backend b(fake);
    std::vector<sturdy::shadow_event> events;
    sturdy::traffic_split_options opts;
    opts.on_shadow = [&](const sturdy::shadow_event& e) { events.push_back(e); };
    sturdy::traffic_split split({split_arm("primary", "m-old").with_weight(1), split_arm("candidate", "m-new").with_shadow(1.0)}, opts,
                                fake.timing());
    b.latency["candidate"] = milliseconds(40);
    b.failing.emplace("candidate", error(error_kind::internal_server, "boom", 500));

    struct seen {
        std::string route;
        bool silent;
        bool own_state;
        bool committed;
    };
    std::mutex mutex;
    std::vector<seen> attempts;
    call c;
    auto out = split.execute(c.ctx, [&](sturdy::call_context& ctx) {
        const int id = ctx.state->begin_attempt();
        const bool committed = ctx.state->try_commit(id);  // as a stream delivering content would
        {
            std::lock_guard<std::mutex> lock(mutex);
            attempts.push_back({ctx.route->name, ctx.silent, ctx.state != &c.state, committed});
        }
        return b(ctx);
    });
    REQUIRE(out.has_value());
    CHECK(*out == "answer from primary");
    REQUIRE(attempts.size() == 2);
    for (const auto& a : attempts) {
        CHECK(a.committed);  // each took its own commit gate
        CHECK(a.silent == (a.route == "candidate"));
        CHECK(a.own_state == (a.route == "candidate"));
    }
    CHECK(c.state.attempts() == 2);  // the shadow's attempts are not the live call's (each made 2 here)
    CHECK(c.state.route_name() == "primary");
    CHECK_FALSE(c.ctx.silent);

    REQUIRE(events.size() == 1);
    CHECK(events[0].live.arm.name == "primary");
    CHECK(events[0].live.ok());
    CHECK(events[0].shadow.arm.name == "candidate");
    REQUIRE_FALSE(events[0].shadow.ok());
    CHECK(events[0].shadow.failure->status() == 500);
    CHECK(events[0].shadow.latency >= milliseconds(40));
    CHECK_FALSE(events[0].cut);

    const auto stats = split.stats();
    CHECK(stats[0].calls == 1);
    CHECK(stats[0].shadow_calls == 0);
    CHECK(stats[1].calls == 0);
    CHECK(stats[1].shadow_calls == 1);
    CHECK(stats[1].shadow_failures == 1);
    CHECK(stats[1].window_error_rate == 1.0);
}

TEST_CASE("split: a shadow share below 1 copies that fraction of the calls", "[split][shadow]") {
    fake_clock fake(9);
    arms_backend b(fake);
    sturdy::traffic_split split({split_arm("primary", "m-old").with_weight(1), split_arm("candidate", "m-new").with_shadow(0.25)}, {},
                                fake.timing());
    run_n(split, b, 2000);
    CHECK(b.calls_to("primary") == 2000);
    CHECK(b.calls_to("candidate") == Approx(500).margin(75));
    REQUIRE(split.set_shadow("candidate", 0));
    const int before = b.calls_to("candidate");
    run_n(split, b, 100);
    CHECK(b.calls_to("candidate") == before);
}

TEST_CASE("split: a shadow that outlasts shadow_wait is cancelled, reported as cut, and not a failure", "[split][shadow]") {
    fake_clock fake(0, fake_clock::mode::manual);
    std::vector<sturdy::shadow_event> events;
    sturdy::traffic_split_options opts;
    opts.shadow_wait = milliseconds(100);
    opts.on_shadow = [&](const sturdy::shadow_event& e) { events.push_back(e); };
    sturdy::traffic_split split({split_arm("primary", "m-old").with_weight(1), split_arm("candidate", "m-new").with_shadow(1.0)}, opts,
                                fake.timing());
    // The call's thread waits 100 ms (virtual) for the shadow, which would take an hour.
    std::thread driver([&] {
        fake.wait_for_sleepers(2);
        fake.advance(milliseconds(100));
    });
    call c;
    auto out = split.execute(c.ctx, [&](sturdy::call_context& ctx) -> sturdy::result<std::string> {
        if (ctx.route->name == "primary") return std::string("live");
        if (!fake.sleep_for(hours(1), ctx.cancel)) return error(error_kind::cancelled, "cut");
        return std::string("late");
    });
    driver.join();
    REQUIRE(out.has_value());
    CHECK(*out == "live");
    REQUIRE(events.size() == 1);
    CHECK(events[0].cut);
    CHECK(events[0].shadow.latency >= milliseconds(100));
    const auto stats = split.stats_for("candidate");
    CHECK(stats->shadow_cut == 1);
    CHECK(stats->window_calls == 1);
    CHECK(stats->window_error_rate == 0.0);
}

TEST_CASE("split: the caller's cancel reaches a running shadow", "[split][shadow]") {
    fake_clock fake(0, fake_clock::mode::manual);
    sturdy::cancellation_source stop;
    sturdy::traffic_split split({split_arm("primary", "m-old").with_weight(1), split_arm("candidate", "m-new").with_shadow(1.0)}, {},
                                fake.timing());
    std::thread canceller([&] {
        fake.wait_for_sleepers(1);  // the shadow is waiting
        stop.cancel();
    });
    call c;
    c.ctx.cancel = stop.token();
    bool shadow_cancelled = false;
    auto out = split.execute(c.ctx, [&](sturdy::call_context& ctx) -> sturdy::result<std::string> {
        if (ctx.route->name == "primary") return std::string("live");
        shadow_cancelled = !fake.sleep_for(hours(1), ctx.cancel);
        return error(error_kind::cancelled, "stopped");
    });
    canceller.join();
    CHECK(out.has_value());
    CHECK(shadow_cancelled);
}

TEST_CASE("split: works inside compose() and a dynamic_pipeline", "[split][pipeline]") {
    fake_clock fake(4);
    sturdy::retry_options quick;
    quick.max_retries = 1;
    SECTION("compose: a retry around the split draws again; a retry inside an arm stays on it") {
        arms_backend b(fake);
        b.failing.emplace("candidate", error(error_kind::internal_server, "boom", 500));
        auto policy = sturdy::compose(sturdy::retry_policy(quick, fake.timing()), ninety_ten(fake));
        int answered = 0;
        for (int i = 0; i < 200; ++i) answered += run(policy, b).has_value() ? 1 : 0;
        CHECK(b.calls_to("candidate") > 0);
        CHECK(answered == b.calls_to("primary"));
        CHECK(answered >= 195);  // a failed draw of the candidate is retried, mostly on the primary
    }
    SECTION("dynamic_pipeline with a shadow") {
        arms_backend b(fake);
        sturdy::dynamic_pipeline policy;
        policy.add(sturdy::traffic_split(
            {split_arm("primary", "m-old").with_weight(1),
             split_arm("candidate", "m-new").with_shadow(1.0).with_policy(sturdy::retry_policy(quick, fake.timing()))},
            {}, fake.timing()));
        b.failing.emplace("candidate", error(error_kind::internal_server, "boom", 500));
        auto out = run(policy, b);
        REQUIRE(out.has_value());
        CHECK(*out == "answer from primary");
        CHECK(b.calls_to("candidate") == 2);  // the arm's own retry, on the shadow's thread
    }
}

TEST_CASE("split: weights change safely while calls run on many threads", "[split][threads]") {
    fake_clock fake(21);
    arms_backend b(fake);
    std::atomic<int> rollbacks{0};
    sturdy::traffic_split_options opts;
    opts.on_rollback = [&](const sturdy::rollback_event&) { ++rollbacks; };
    sturdy::traffic_split split({split_arm("primary", "m-old").with_weight(50),
                                 split_arm("candidate", "m-new").with_weight(50).with_shadow(0.1).with_guard(error_guard(0.9, 1000000))},
                                opts, fake.timing());
    std::atomic<bool> done{false};
    std::thread steer([&] {
        for (int w = 0; !done; w = (w + 10) % 100) {
            split.set_weight("candidate", w);
            (void)split.stats();
        }
    });
    std::vector<std::thread> callers;
    for (int t = 0; t < 4; ++t) callers.emplace_back([&] { run_n(split, b, 300); });
    for (auto& th : callers) th.join();
    done = true;
    steer.join();
    const auto stats = split.stats();
    CHECK(stats[0].calls + stats[1].calls == 1200);
    CHECK(rollbacks == 0);
}

// ---- the guard's percentile, read within 1% ----

namespace {

// One call per latency, each reported by its attempt as the client reports the transport's time.
// Virtual time stands still: every outcome lands in the same instant of the window.
template <class Policy>
void run_reporting(const Policy& policy, const std::vector<microseconds>& latencies) {
    for (const auto latency : latencies) {
        call c;
        (void)policy.execute(c.ctx, [&](sturdy::call_context&) -> sturdy::result<std::string> {
            return sturdy_test::observed<std::string>(std::string("answer"), reporting(latency));
        });
    }
}

// 1000 latencies whose nearest-rank p99 (the 990th fastest) is 754.6 ms: 989 from 200 ms to
// 694 ms, then 754.6 ms, then 10 from 900 ms to 1.8 s; in a scrambled order.
std::vector<microseconds> p99_of_754_6_ms() {
    std::vector<microseconds> sorted;
    for (int i = 0; i < 989; ++i) sorted.push_back(microseconds(200000 + 500 * i));
    sorted.push_back(microseconds(754600));
    for (int i = 0; i < 10; ++i) sorted.push_back(microseconds(900000 + 100000 * i));
    std::vector<microseconds> scrambled;
    for (std::size_t i = 0; i < sorted.size(); ++i)
        scrambled.push_back(sorted[(i * 7) % sorted.size()]);  // 7 is prime to 1000
    return scrambled;
}

sturdy::rollback_guard latency_guard(milliseconds limit, std::uint64_t samples) {
    auto g = guard_over(minutes(1), samples);
    g.max_latency = limit;
    return g;
}

}  // namespace

TEST_CASE("split: a p99 of 754.6 ms is read within 1% and not rolled back under an 800 ms limit", "[split][rollback]") {
    fake_clock fake;
    int rollbacks = 0;
    // Judged once, on all 1000 (from fewer, the p99 would be that of the ones in so far).
    sturdy::traffic_split split({split_arm("candidate", "m-new").with_weight(1).with_guard(latency_guard(800ms, 1000))},
                                counting_rollbacks(rollbacks), fake.timing());
    const auto latencies = p99_of_754_6_ms();
    auto sorted = latencies;
    std::sort(sorted.begin(), sorted.end());
    REQUIRE(sorted[989] == microseconds(754600));  // rank ceil(0.99 * 1000) = 990

    run_reporting(split, latencies);
    CHECK(rollbacks == 0);  // 15%-wide bins read this as about 825 ms and rolled back
    const auto stats = split.stats_for("candidate");
    CHECK(stats->window_calls == 1000);
    REQUIRE(stats->window_latency.has_value());
    CHECK(*stats->window_latency >= microseconds(754600));  // never below the exact value...
    CHECK(*stats->window_latency <= microseconds(762146));  // ...and within 1% above it
}

TEST_CASE("split: a rollback reports the percentile it judged, as the stats read it", "[split][rollback]") {
    fake_clock fake;
    std::vector<sturdy::rollback_event> events;
    std::vector<microseconds> reported;
    sturdy::traffic_split_options opts;
    opts.on_rollback = [&](const sturdy::rollback_event& e) {
        events.push_back(e);
        reported.push_back(*e.latency);
    };
    sturdy::traffic_split split({split_arm("candidate", "m-new").with_weight(1).with_guard(latency_guard(750ms, 1000))},
                                opts, fake.timing());
    run_reporting(split, p99_of_754_6_ms());
    REQUIRE(events.size() == 1);
    CHECK(events[0].reason == sturdy::rollback_reason::latency);
    CHECK(events[0].samples == 1000);
    CHECK(reported[0] >= microseconds(754600));
    CHECK(reported[0] <= microseconds(762146));
    CHECK(split.stats_for("candidate")->window_latency == reported[0]);
}

TEST_CASE("split: below 100 samples the p99 is the slowest call, judged from min_samples on", "[split][rollback]") {
    fake_clock fake;
    std::vector<sturdy::rollback_event> events;
    sturdy::traffic_split_options opts;
    opts.on_rollback = [&](const sturdy::rollback_event& e) { events.push_back(e); };
    sturdy::traffic_split split({split_arm("candidate", "m-new").with_weight(1).with_guard(latency_guard(1s, 5))}, opts,
                                fake.timing());
    run_reporting(split, {300ms, 2s, 300ms, 300ms});  // its p99 is 2 s, but 4 samples are short of 5
    CHECK(events.empty());
    CHECK(split.stats_for("candidate")->window_latency == 2s);
    run_reporting(split, {300ms});
    REQUIRE(events.size() == 1);
    CHECK(events[0].samples == 5);
    CHECK(events[0].latency == 2s);  // the slowest, exactly
}

TEST_CASE("split: latencies leave the guard's window as time moves on", "[split][rollback]") {
    fake_clock fake;
    int rollbacks = 0;
    auto guard = latency_guard(1s, 150);
    guard.window = 10s;  // 10 slices of 1 s
    sturdy::traffic_split split({split_arm("candidate", "m-new").with_weight(1).with_guard(guard)},
                                counting_rollbacks(rollbacks), fake.timing());
    std::vector<microseconds> first(90, microseconds(500ms));
    first.insert(first.end(), 10, microseconds(3s));
    run_reporting(split, first);  // at 0 s: p99 = 3 s, but 100 samples are short of 150
    CHECK(split.stats_for("candidate")->window_latency == 3s);

    fake.advance(6s);
    run_reporting(split, std::vector<microseconds>(20, microseconds(400ms)));
    CHECK(split.stats_for("candidate")->window_calls == 120);
    CHECK(split.stats_for("candidate")->window_latency == 3s);  // the 10 slow ones are still the top 1%

    fake.advance(4500ms);  // 10.5 s: the first second's outcomes are out
    const auto stats = split.stats_for("candidate");
    CHECK(stats->window_calls == 20);
    CHECK(stats->window_latency == 400ms);
    run_reporting(split, std::vector<microseconds>(200, microseconds(400ms)));
    CHECK(rollbacks == 0);  // 220 samples now, none of them slow
}

// ---- what the guard times: the arm's attempt, not the waits of the client's making ----

namespace {

// An arm policy that waits `wait` of virtual time (a rate limiter's or bulkhead's queue) before
// its attempt.
struct waiting_policy {
    fake_clock* clock;
    milliseconds wait;
    template <class Attempt>
    auto execute(sturdy::call_context& ctx, Attempt&& attempt) const -> decltype(attempt(ctx)) {
        clock->sleep_for(wait, ctx.cancel);
        return attempt(ctx);
    }
};

// An arm policy that refuses every call without an attempt, as an open breaker.
struct refusing_policy {
    template <class Attempt>
    auto execute(sturdy::call_context& ctx, Attempt&&) const -> decltype(std::declval<Attempt&>()(ctx)) {
        return error(error_kind::circuit_open, "open");
    }
};

// An attempt of `took` virtual time; `reports` sets what the client would report of it
// (zero: nothing, as an attempt function of the caller's own).
auto timed_attempt(fake_clock& clock, milliseconds took, milliseconds reports) {
    return [&clock, took, reports](sturdy::call_context& ctx) -> sturdy::result<std::string> {
        ctx.state->begin_attempt();
        clock.sleep_for(took, ctx.cancel);
        return sturdy_test::observed<std::string>(std::string("answer"), reporting(reports));
    };
}

}  // namespace

TEST_CASE("split: the guard times the arm's attempt, not its policy's 2 s wait before it", "[split][rollback]") {
    fake_clock fake;
    int rollbacks = 0;
    sturdy::traffic_split split({split_arm("candidate", "m-new")
                                     .with_weight(1)
                                     .with_policy(waiting_policy{&fake, 2s})
                                     .with_guard(latency_guard(1s, 1))},
                                counting_rollbacks(rollbacks), fake.timing());
    SECTION("as the client reports it") {
        call c;
        // The attempt takes 710 ms, of which the transport saw 700 ms (the rest: reading the reply).
        REQUIRE(split.execute(c.ctx, timed_attempt(fake, 710ms, 700ms)).has_value());
        CHECK(split.stats_for("candidate")->window_latency == 700ms);
    }
    SECTION("timed around the attempt when it reports nothing") {
        call c;
        REQUIRE(split.execute(c.ctx, timed_attempt(fake, 700ms, 0ms)).has_value());
        CHECK(split.stats_for("candidate")->window_latency == 700ms);
    }
    CHECK(rollbacks == 0);  // 2.7 s end to end, above the 1 s limit: the wait is not the model's
}

TEST_CASE("split: the guard times the answering attempt of an arm that retried", "[split][rollback]") {
    fake_clock fake;
    sturdy::retry_options once;
    once.max_retries = 1;
    sturdy::traffic_split split({split_arm("candidate", "m-new")
                                     .with_weight(1)
                                     .with_policy(sturdy::retry_policy(once, fake.timing()))
                                     .with_guard(latency_guard(1s, 1000))},
                                {}, fake.timing());
    int attempts = 0;
    call c;
    auto out = split.execute(c.ctx, [&](sturdy::call_context&) -> sturdy::result<std::string> {
        if (++attempts == 1)
            return sturdy_test::observed<std::string>(error(error_kind::internal_server, "boom", 503), reporting(5s));
        return sturdy_test::observed<std::string>(std::string("answer"), reporting(700ms));
    });
    REQUIRE(out.has_value());
    CHECK(attempts == 2);
    CHECK(split.stats_for("candidate")->window_latency == 700ms);
}

TEST_CASE("split: an arm whose policy refused without an attempt counts as a failure without a latency",
          "[split][rollback]") {
    fake_clock fake;
    sturdy::traffic_split split({split_arm("candidate", "m-new")
                                     .with_weight(1)
                                     .with_policy(refusing_policy{})
                                     .with_guard(error_guard(1.0, 1000))},
                                {}, fake.timing());
    call c;
    CHECK_FALSE(split.execute(c.ctx, timed_attempt(fake, 700ms, 700ms)).has_value());
    const auto stats = split.stats_for("candidate");
    CHECK(stats->window_calls == 1);
    CHECK(stats->window_error_rate == 1.0);
    CHECK_FALSE(stats->window_latency.has_value());
}

TEST_CASE("split: a shadow is timed by its attempt too, apart from its policy's wait", "[split][shadow]") {
    fake_clock fake;
    std::vector<sturdy::shadow_event> events;
    sturdy::traffic_split_options opts;
    opts.on_shadow = [&](const sturdy::shadow_event& e) { events.push_back(e); };
    sturdy::traffic_split split(
        {split_arm("primary", "m-old").with_weight(1),
         split_arm("candidate", "m-new").with_shadow(1.0).with_policy(waiting_policy{&fake, 2s})},
        opts, fake.timing());
    call c;
    REQUIRE(split.execute(c.ctx, [](sturdy::call_context& ctx) -> sturdy::result<std::string> {
        return sturdy_test::observed<std::string>(std::string("answer"),
                                                  reporting(ctx.route->name == "candidate" ? 700ms : 300ms));
    }));
    REQUIRE(events.size() == 1);
    CHECK(events[0].live.latency == 300ms);
    CHECK(events[0].shadow.latency == 700ms);
    CHECK(split.stats_for("candidate")->window_latency == 700ms);
    CHECK(split.stats_for("primary")->window_latency == 300ms);
}

namespace {

// Answers every request with a chat completion after `takes` of real time, as a provider would.
struct slow_transport {
    milliseconds takes;
    sturdy::result<sturdy::http_head> send(const sturdy::http_request&, sturdy::response_sink& sink) const {
        std::this_thread::sleep_for(takes);
        sturdy::http_head head;
        head.status = 200;
        const std::string body = R"({"id":"c-1","object":"chat.completion","model":"m-new","choices":[{"index":0,)"
                                 R"("message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]})";
        if (!sink.on_head(head) || !sink.on_data(body)) return error(error_kind::cancelled, "stopped");
        return head;
    }
};

}  // namespace

TEST_CASE("split: through the client, the guard sees the transport's time, not the arm's 2 s wait",
          "[split][rollback]") {
    fake_clock fake;  // the split's and the arm policy's clock; the client times the transport on the real one
    int rollbacks = 0;
    const sturdy::traffic_split split({split_arm("candidate", "m-new")
                                           .with_weight(1)
                                           .with_policy(waiting_policy{&fake, 2s})
                                           .with_guard(latency_guard(1s, 1))},
                                      counting_rollbacks(rollbacks), fake.timing());
    sturdy::client_options options;
    options.base_url = "http://127.0.0.1:9/v1";
    options.api_key = "sk-test";
    const sturdy::basic_client<slow_transport, sturdy::traffic_split> client(options, split, slow_transport{30ms});
    auto reply = client.try_chat(sturdy::chat_request{"m", {sturdy::chat_message::user("hi")}});
    REQUIRE(reply.has_value());
    CHECK(reply->call.route == "candidate");
    const auto stats = split.stats_for("candidate");
    REQUIRE(stats->window_latency.has_value());
    CHECK(*stats->window_latency >= 30ms);
    CHECK(*stats->window_latency < 1s);
    CHECK(rollbacks == 0);
}

// ---- the guard's options ----

TEST_CASE("split: a guard whose options make no sense is refused at construction, naming the field",
          "[split][policy]") {
    auto refusal = [](sturdy::rollback_guard g) -> std::string {
        try {
            sturdy::traffic_split split({split_arm("candidate", "m-new").with_guard(std::move(g))});
        } catch (const std::invalid_argument& e) {
            return e.what();
        }
        return "";
    };
    sturdy::rollback_guard g;
    g.latency_percentile = 0;
    CHECK(refusal(g) == "sturdy::traffic_split: rollback_guard.latency_percentile must be in (0, 1]");
    g.latency_percentile = 1.5;
    CHECK(refusal(g) == "sturdy::traffic_split: rollback_guard.latency_percentile must be in (0, 1]");
    g = {};
    g.window = seconds(0);
    CHECK(refusal(g) == "sturdy::traffic_split: rollback_guard.window must be positive");
    g = {};
    g.min_samples = 0;
    CHECK(refusal(g) == "sturdy::traffic_split: rollback_guard.min_samples must be at least 1");
    g = {};
    g.max_error_rate = 1.2;
    CHECK(refusal(g) == "sturdy::traffic_split: rollback_guard.max_error_rate must be in [0, 1]");
    g = {};
    g.max_latency = milliseconds(-1);
    CHECK(refusal(g) == "sturdy::traffic_split: rollback_guard.max_latency must not be negative");
    g = {};
    g.latency_percentile = 1.0;  // p100, the slowest call: allowed
    CHECK(refusal(g).empty());
}

TEST_CASE("split: options that make no sense are refused at construction, naming the field", "[split][policy]") {
    auto refusal = [](std::vector<split_arm> arms, sturdy::traffic_split_options opts = {}) -> std::string {
        try {
            sturdy::traffic_split split(std::move(arms), std::move(opts));
        } catch (const std::invalid_argument& e) {
            return e.what();
        }
        return "";
    };
    const std::string bad_weight = "sturdy::traffic_split: split_arm.weight must be finite and not negative";
    CHECK(refusal({split_arm("a", "m").with_weight(-1)}) == bad_weight);  // used to count as 0 in silence
    CHECK(refusal({split_arm("a", "m").with_weight(std::nan(""))}) == bad_weight);
    CHECK(refusal({split_arm("a", "m").with_weight(HUGE_VAL)}) == bad_weight);
    const std::string bad_shadow = "sturdy::traffic_split: split_arm.shadow must be in [0, 1]";
    CHECK(refusal({split_arm("a", "m").with_shadow(1.5)}) == bad_shadow);  // used to be clamped to 1
    CHECK(refusal({split_arm("a", "m").with_shadow(-0.1)}) == bad_shadow);
    sturdy::traffic_split_options opts;
    opts.shadow_wait = milliseconds(-1);
    CHECK(refusal({split_arm("a", "m")}, opts) == "sturdy::traffic_split: shadow_wait must not be negative");
    // Unnamed arms are named after their model: two on one model need names of their own.
    CHECK(refusal({split_arm("", "m"), split_arm("b", "m"), split_arm("", "m")}) ==
          "sturdy::traffic_split: split_arm.route.name must differ from the others': 'm' names two");
    // The edges that make sense are not refused.
    opts.shadow_wait = milliseconds(0);
    CHECK(refusal({split_arm("a", "m").with_weight(0).with_shadow(1.0), split_arm("b", "m").with_shadow(0)}, opts)
              .empty());
}

TEST_CASE("split: split_options is the deprecated name of traffic_split_options", "[split][policy]") {
#if defined(__GNUC__)
#  pragma GCC diagnostic push
#  pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif
    STATIC_REQUIRE(std::is_same_v<sturdy::split_options, sturdy::traffic_split_options>);
#if defined(__GNUC__)
#  pragma GCC diagnostic pop
#endif
}

// ---- pinning ----

TEST_CASE("split: a pinned arm takes the call whatever its weight, without shadows", "[split][pin]") {
    fake_clock fake;
    arms_backend b(fake);
    std::vector<sturdy::shadow_event> shadows;
    sturdy::traffic_split_options opts;
    opts.on_shadow = [&](const sturdy::shadow_event& e) { shadows.push_back(e); };
    sturdy::traffic_split split(
        {split_arm("primary", "m-old").with_weight(1), split_arm("candidate", "m-new").with_weight(0),
         split_arm("mirror", "m-mirror").with_shadow(1.0)},
        opts, fake.timing());
    for (int i = 0; i < 5; ++i) {
        call c;
        c.ctx.pinned_route = "candidate";
        auto out = split.execute(c.ctx, [&](sturdy::call_context& ctx) { return b(ctx); });
        REQUIRE(out.has_value());
        CHECK(*out == "answer from candidate");
        CHECK(c.state.route_name() == "candidate");
    }
    CHECK(b.calls_to("candidate") == 5);
    CHECK(b.calls_to("primary") == 0);
    CHECK(b.calls_to("mirror") == 0);  // a pinned call asked for that one route: no copies elsewhere
    CHECK(shadows.empty());
    CHECK(split.stats_for("candidate")->calls == 5);

    // Pinned to the shadow arm itself, it is the live call, and not copied to itself.
    call c;
    c.ctx.pinned_route = "mirror";
    CHECK(*split.execute(c.ctx, [&](sturdy::call_context& ctx) { return b(ctx); }) == "answer from mirror");
    CHECK(b.calls_to("mirror") == 1);
    CHECK(shadows.empty());
}

TEST_CASE("split: a pinned arm takes the call after its guard rolled it back", "[split][pin][rollback]") {
    fake_clock fake;
    arms_backend b(fake);
    sturdy::traffic_split split({split_arm("primary", "m-old").with_weight(1),
                                 split_arm("candidate", "m-new").with_weight(1).with_guard(error_guard(0.5, 2))},
                                {}, fake.timing());
    b.failing.emplace("candidate", error(error_kind::internal_server, "boom", 500));
    for (int i = 0; i < 2; ++i) {
        call c;
        c.ctx.pinned_route = "candidate";
        (void)split.execute(c.ctx, [&](sturdy::call_context& ctx) { return b(ctx); });
    }
    REQUIRE(split.stats_for("candidate")->rolled_back);
    b.failing.clear();
    call c;
    c.ctx.pinned_route = "candidate";
    CHECK(*split.execute(c.ctx, [&](sturdy::call_context& ctx) { return b(ctx); }) == "answer from candidate");
    CHECK(split.stats_for("candidate")->rolled_back);  // a pinned call does not put it back
    CHECK(split.weight("candidate") == 0);
}

TEST_CASE("split: a pinned arm that fails fails the call with its own error", "[split][pin]") {
    fake_clock fake;
    arms_backend b(fake);
    b.failing.emplace("candidate", error(error_kind::internal_server, "down", 503));
    auto split = ninety_ten(fake);
    call c;
    c.ctx.pinned_route = "candidate";
    c.ctx.route_order = {"primary"};  // the pin wins over a preference
    auto out = split.execute(c.ctx, [&](sturdy::call_context& ctx) { return b(ctx); });
    REQUIRE_FALSE(out.has_value());
    CHECK(out.error().status() == 503);
    CHECK(out.error().message() == "down");
    CHECK(b.calls_to("primary") == 0);
    CHECK(split.stats_for("candidate")->failures == 1);
}

TEST_CASE("split: a call pinned to an arm the split does not have is invalid_argument", "[split][pin]") {
    fake_clock fake;
    arms_backend b(fake);
    auto split = ninety_ten(fake);
    call c;
    c.ctx.pinned_route = "kimi";
    auto out = split.execute(c.ctx, [&](sturdy::call_context& ctx) { return b(ctx); });
    REQUIRE_FALSE(out.has_value());
    CHECK(out.error().kind() == error_kind::invalid_argument);
    CHECK(out.error().message() == sturdy::detail::unknown_pinned_route("kimi").message());
    CHECK(out.error().message().find("'kimi'") != std::string::npos);
    CHECK(b.calls_to("primary") + b.calls_to("candidate") == 0);
    CHECK(split.stats_for("primary")->calls + split.stats_for("candidate")->calls == 0);
}

// ---- the executor seam: shadows are branches the call's executor runs ----

namespace {

using sturdy_test::test_executor;

sturdy::traffic_split live_and_shadow(fake_clock& fake, sturdy::traffic_split_options opts) {
    return sturdy::traffic_split(
        {split_arm("primary", "m-old").with_weight(1), split_arm("candidate", "m-new").with_shadow(1.0)},
        std::move(opts), fake.timing());
}

}  // namespace

TEST_CASE("split: a shadow starts only as a branch of the call's executor", "[split][shadow][executor]") {
    fake_clock fake;
    arms_backend b(fake);
    b.failing.emplace("candidate", error(error_kind::internal_server, "boom", 500));
    std::vector<sturdy::shadow_event> events;
    sturdy::traffic_split_options opts;
    opts.shadow_wait = milliseconds(100);
    opts.on_shadow = [&](const sturdy::shadow_event& e) { events.push_back(e); };
    const auto split = live_and_shadow(fake, opts);

    test_executor exec(test_executor::mode::inline_calls);
    std::map<std::string, bool> in_branch;  // by route: whether its attempt ran in the executor's branch
    call c;
    c.ctx.exec = &exec;
    auto out = split.execute(c.ctx, [&](sturdy::call_context& ctx) {
        in_branch[ctx.route->name] = test_executor::in_branch();
        return b(ctx);
    });
    REQUIRE(out.has_value());
    CHECK(*out == "answer from primary");
    CHECK(exec.spawns() == 1);
    CHECK(in_branch == std::map<std::string, bool>{{"candidate", true}, {"primary", false}});
    // The shadow had ended before the live arm did: nothing left to wait for, so no timer.
    CHECK(exec.waits().empty());
    REQUIRE(events.size() == 1);
    CHECK(events[0].live.ok());
    CHECK(events[0].shadow.failure->status() == 500);
    CHECK_FALSE(events[0].cut);
    CHECK(split.stats_for("candidate")->shadow_calls == 1);
    CHECK(c.state.attempts() == 1);
    CHECK(c.ctx.route == nullptr);

    // Without shadows, the split asks its executor for nothing.
    test_executor quiet(test_executor::mode::inline_calls);
    sturdy::traffic_split plain({split_arm("primary", "m-old")}, {}, fake.timing());
    call d;
    d.ctx.exec = &quiet;
    REQUIRE(plain.execute(d.ctx, [&](sturdy::call_context& ctx) { return b(ctx); }).has_value());
    CHECK(quiet.spawns() == 0);
    CHECK(quiet.waits().empty());
}

TEST_CASE("split: when the executor can start no branch, the call goes on without its shadow",
          "[split][shadow][executor]") {
    fake_clock fake;
    arms_backend b(fake);
    int shadows = 0;
    sturdy::traffic_split_options opts;
    opts.on_shadow = [&](const sturdy::shadow_event&) { ++shadows; };
    const auto split = live_and_shadow(fake, opts);
    test_executor exec(test_executor::mode::refusing);
    call c;
    c.ctx.exec = &exec;
    auto out = split.execute(c.ctx, [&](sturdy::call_context& ctx) { return b(ctx); });
    REQUIRE(out.has_value());
    CHECK(*out == "answer from primary");
    CHECK(exec.spawns() == 1);  // asked, refused
    CHECK(b.calls_to("candidate") == 0);
    CHECK(shadows == 0);
    CHECK(split.stats_for("candidate")->shadow_calls == 0);
    CHECK(split.stats_for("primary")->calls == 1);
}

namespace {

// What runs inside the split, as an event-driven engine would give it: the candidate's attempt
// answers only once `release` is set.
struct gated_next {
    std::shared_future<void> release;
    template <class K>
    void operator()(sturdy::call_context& ctx, K&& k) const {
        ctx.state->begin_attempt();
        if (ctx.route->name != "candidate") return k(sturdy::result<std::string>("answer from " + ctx.route->name));
        release.wait();
        k(sturdy::result<std::string>(error(error_kind::internal_server, "boom", 500)));
    }
};

struct deliver {
    std::shared_ptr<std::promise<sturdy::result<std::string>>> to;
    void operator()(sturdy::result<std::string> outcome) const { to->set_value(std::move(outcome)); }
};

}  // namespace

TEST_CASE(
    "split: in continuation form, the live outcome goes on before its shadow ends; the shadow reports when it does",
    "[split][shadow][executor]") {
    fake_clock fake;
    std::mutex mutex;
    std::vector<sturdy::shadow_event> events;
    sturdy::traffic_split_options opts;
    opts.on_shadow = [&](const sturdy::shadow_event& e) {
        std::lock_guard<std::mutex> lock(mutex);
        events.push_back(e);
    };
    const auto split = live_and_shadow(fake, opts);
    test_executor exec(test_executor::mode::threads);
    std::promise<void> release;
    auto outcome = std::make_shared<std::promise<sturdy::result<std::string>>>();
    auto live = outcome->get_future();
    call c;
    c.ctx.exec = &exec;
    split.start<std::string>(c.ctx, gated_next{release.get_future().share()}, deliver{outcome});

    const auto answer = live.get();  // the candidate is still waiting
    REQUIRE(answer.has_value());
    CHECK(*answer == "answer from primary");
    CHECK(c.ctx.route == nullptr);
    CHECK(split.stats_for("primary")->calls == 1);
    CHECK(split.stats_for("candidate")->shadow_calls == 0);
    {
        std::lock_guard<std::mutex> lock(mutex);
        CHECK(events.empty());
    }

    release.set_value();
    exec.join();  // the shadow's branch has ended
    CHECK(exec.spawns() == 1);
    REQUIRE(events.size() == 1);
    CHECK(events[0].live.arm.name == "primary");
    CHECK(events[0].live.ok());
    CHECK(events[0].shadow.arm.name == "candidate");
    CHECK(events[0].shadow.failure->status() == 500);
    CHECK(split.stats_for("candidate")->shadow_calls == 1);
    CHECK(split.stats_for("candidate")->shadow_failures == 1);
    CHECK(c.state.attempts() == 1);  // the shadow's attempt was its own call state's
}

TEST_CASE("split: an exception from the live arm stops its shadows rather than waiting for them", "[split][shadow]") {
    fake_clock fake(0, fake_clock::mode::manual);  // the shadow would wait an hour that never passes
    const auto split = live_and_shadow(fake, {});
    std::atomic<bool> shadow_stopped{false};
    call c;
    CHECK_THROWS_AS(split.execute(c.ctx,
                                  [&](sturdy::call_context& ctx) -> sturdy::result<std::string> {
                                      if (ctx.route->name == "primary") {
                                          fake.wait_for_sleepers(1);  // the shadow is under way
                                          throw std::runtime_error("the attempt threw");
                                      }
                                      shadow_stopped = !fake.sleep_for(hours(1), ctx.cancel);
                                      return error(error_kind::cancelled, "stopped");
                                  }),
                    std::runtime_error);
    CHECK(shadow_stopped);
}

// ---- the policy convention: name, events, should_handle ----

namespace {

// Writes down the split's events as "<who> <kind> <policy>@<route>", hooks and sink alike.
struct split_log final : sturdy::event_sink {
    std::mutex mutex;
    std::vector<std::string> lines;
    void on_rollback(const sturdy::event_source& from, const sturdy::rollback_event& e) override {
        add("sink rollback " + std::string(from.policy) + "@" + std::string(from.route) + " " + e.arm.name);
    }
    void on_shadow(const sturdy::event_source& from, const sturdy::shadow_event& e) override {
        add("sink shadow " + std::string(from.policy) + "@" + std::string(from.route) + " " + e.shadow.arm.name);
    }
    void hook_into(sturdy::traffic_split_options& opts) {
        opts.on_rollback = [this](const sturdy::rollback_event& e) { add("hook rollback " + e.arm.name); };
        opts.on_shadow = [this](const sturdy::shadow_event& e) { add("hook shadow " + e.shadow.arm.name); };
    }
    void add(std::string line) {
        std::lock_guard<std::mutex> lock(mutex);
        lines.push_back(std::move(line));
    }
};

}  // namespace

TEST_CASE("split: events go to the hook, then the call's sink, from the arm whose outcome caused them",
          "[split][events]") {
    fake_clock fake;
    arms_backend b(fake);
    b.failing.emplace("candidate", error(error_kind::internal_server, "boom", 500));
    b.failing.emplace("mirror", error(error_kind::internal_server, "boom", 500));
    split_log log;
    sturdy::traffic_split_options opts;
    log.hook_into(opts);
    std::string name = "traffic_split";
    SECTION("the default name") {}
    SECTION("a name of the user's") {
        opts.name = "migration";
        name = "migration";
    }
    // The live candidate rolls back on its first failure; the mirror's shadow copy of the same call,
    // on its own; the call is on an outer route that no event names.
    sturdy::traffic_split split({split_arm("candidate", "m-new").with_weight(1).with_guard(error_guard(0.5, 1)),
                                 split_arm("mirror", "m-mirror").with_shadow(1.0).with_guard(error_guard(0.5, 1))},
                                opts, fake.timing());
    CHECK(split.options().name == name);
    call c;
    c.ctx.events = &log;
    c.ctx.route = std::make_shared<const sturdy::route>(sturdy::route{"outer", nullptr, ""});
    (void)split.execute(c.ctx, [&](sturdy::call_context& ctx) { return b(ctx); });
    // The shadow ended first (the blocking executor runs it at once) and waits for the live arm's
    // outcome to be reported.
    CHECK(log.lines == std::vector<std::string>{"hook rollback candidate",
                                                "sink rollback " + name + "@candidate candidate",
                                                "hook rollback mirror", "sink rollback " + name + "@mirror mirror",
                                                "hook shadow mirror", "sink shadow " + name + "@mirror mirror"});
}

TEST_CASE("split: a shadow that ends after its call returned still reports to that call's sink",
          "[split][events][executor]") {
    fake_clock fake;
    split_log log;
    const auto split = live_and_shadow(fake, {});
    test_executor exec(test_executor::mode::threads);
    std::promise<void> release;
    auto outcome = std::make_shared<std::promise<sturdy::result<std::string>>>();
    auto live = outcome->get_future();
    call c;
    c.ctx.exec = &exec;
    c.ctx.events = &log;
    split.start<std::string>(c.ctx, gated_next{release.get_future().share()}, deliver{outcome});
    REQUIRE(live.get().has_value());
    {
        std::lock_guard<std::mutex> lock(log.mutex);
        CHECK(log.lines.empty());
    }
    release.set_value();
    exec.join();
    CHECK(log.lines == std::vector<std::string>{"sink shadow traffic_split@candidate candidate"});
}

TEST_CASE("split: should_handle chooses what counts against an arm; a guard's own replaces it for that arm",
          "[split][rollback][policy]") {
    fake_clock fake;
    arms_backend b(fake);
    std::vector<std::string> rolled;
    SECTION("empty: every failure counts, a 400 too") {
        CHECK_FALSE(sturdy::traffic_split_options{}.should_handle);
        CHECK_FALSE(sturdy::rollback_guard{}.should_handle);
        sturdy::traffic_split split({split_arm("candidate", "m-new").with_weight(1).with_guard(error_guard(0.5, 2))},
                                    {}, fake.timing());
        b.failing.emplace("candidate", error(error_kind::bad_request, "rejected", 400));
        run_n(split, b, 2);
        CHECK(split.stats_for("candidate")->rolled_back);
        CHECK(split.stats_for("candidate")->window_error_rate == 1.0);
    }
    SECTION("the split's, for every arm without its own; the guard's, for its arm") {
        sturdy::traffic_split_options opts;
        opts.should_handle = [](const error& e) { return e.kind() != error_kind::bad_request; };
        opts.on_rollback = [&](const sturdy::rollback_event& e) { rolled.push_back(e.arm.name); };
        auto strict = error_guard(0.5, 2);
        strict.should_handle = sturdy::any_error;
        sturdy::traffic_split split({split_arm("lenient", "m-a").with_weight(1).with_guard(error_guard(0.5, 2)),
                                     split_arm("strict", "m-b").with_weight(1).with_guard(strict),
                                     split_arm("unguarded", "m-c").with_weight(1)},
                                    opts, fake.timing());
        for (const auto* arm : {"lenient", "strict", "unguarded"})
            b.failing.emplace(arm, error(error_kind::bad_request, "rejected", 400));
        for (const auto* arm : {"lenient", "strict", "unguarded"}) {
            for (int i = 0; i < 2; ++i) {
                call c;
                c.ctx.pinned_route = arm;
                (void)split.execute(c.ctx, [&](sturdy::call_context& ctx) { return b(ctx); });
            }
        }
        CHECK(rolled == std::vector<std::string>{"strict"});
        CHECK(split.stats_for("lenient")->window_error_rate == 0.0);
        CHECK(split.stats_for("unguarded")->window_error_rate == 0.0);  // the window figures count alike
        CHECK(split.stats_for("lenient")->failures == 2);               // the totals count every failure
    }
}

// The traffic split over scripted attempts: weights with a seeded random source, weights changed
// at run time, the rollback guard, shadow calls. No client, virtual time.
#include <sturdy/dynamic_pipeline.hpp>
#include <sturdy/pipeline.hpp>
#include <sturdy/retry.hpp>
#include <sturdy/traffic_split.hpp>
#include <sturdy/testing/fake_clock.hpp>

#include "support/catch.hpp"

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono;
using sturdy::error;
using sturdy::error_kind;
using sturdy::split_arm;

namespace {

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

sturdy::traffic_split ninety_ten(fake_clock& fake, sturdy::split_options opts = {}) {
    return sturdy::traffic_split({split_arm("primary", "m-old").with_weight(90), split_arm("candidate", "m-new").with_weight(10)},
                                 std::move(opts), fake.timing());
}

sturdy::rollback_guard error_guard(double rate, std::uint64_t samples) {
    sturdy::rollback_guard g;
    g.max_error_rate = rate;
    g.min_samples = samples;
    g.window = minutes(5);
    return g;
}

// Options whose rollback hook counts into `n`.
sturdy::split_options counting_rollbacks(int& n) {
    sturdy::split_options opts;
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

TEST_CASE("split: a call's route_order pins an arm, weights aside", "[split]") {
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
    sturdy::split_options opts;
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
    sturdy::split_options opts;
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
    guard.counts_as_error = [](const error& e) { return e.kind() != error_kind::bad_request; };
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
    sturdy::split_options opts;
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
    sturdy::split_options opts;
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
    sturdy::split_options opts;
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

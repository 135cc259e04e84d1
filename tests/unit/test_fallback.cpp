// The fallback chain over scripted attempts: which errors move on, order, context windows,
// per-target policies, commit, stats and events, composition. No client, virtual time.
#include <sturdy/circuit_breaker.hpp>
#include <sturdy/dynamic_pipeline.hpp>
#include <sturdy/executor.hpp>
#include <sturdy/fallback.hpp>
#include <sturdy/per_route.hpp>
#include <sturdy/pipeline.hpp>
#include <sturdy/retry.hpp>
#include <sturdy/timeout.hpp>
#include <sturdy/testing/fake_clock.hpp>

#include "support/catch.hpp"
#include "support/test_executor.hpp"

#include <algorithm>
#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono;
using sturdy::error;
using sturdy::error_kind;
using sturdy::fallback_target;

namespace {

error failure(error_kind kind, int status = 0, std::string code = {}) {
    sturdy::error_details d;
    d.status = status;
    d.message = "scripted";
    d.code = std::move(code);
    return error(kind, std::move(d));
}

// Answers as a provider would, by the model asked for: queued errors first, then "answer from
// <model>"; a model that is down always fails. Records what each attempt asked for, and notes
// failed attempts in the call state as the client does.
struct provider {
    std::map<std::string, std::deque<error>> queued;
    std::map<std::string, error> down;
    std::vector<std::string> asked;       // model of each attempt
    std::vector<std::string> routes;      // route name of each attempt
    std::vector<std::string> base_urls;   // the route's endpoint, "" for the client's own

    sturdy::result<std::string> operator()(sturdy::call_context& ctx) {
        ctx.state->begin_attempt();
        const std::string model(ctx.effective_model());
        asked.push_back(model);
        routes.push_back(ctx.route ? ctx.route->name : "");
        base_urls.push_back(ctx.route && ctx.route->endpoint ? ctx.route->endpoint->base_url : "");
        if (auto it = down.find(model); it != down.end()) return fail(ctx, it->second);
        auto& q = queued[model];
        if (!q.empty()) {
            auto e = q.front();
            q.pop_front();
            return fail(ctx, e);
        }
        return "answer from " + model;
    }

    static error fail(sturdy::call_context& ctx, error e) {
        ctx.state->note_error(e);
        return e;
    }
};

// One call's context and state.
struct call {
    sturdy::call_state state;
    sturdy::call_context ctx{sturdy::operation::chat, "requested", state};
};

template <class Policy>
sturdy::result<std::string> run(const Policy& policy, call& c, provider& p) {
    return policy.execute(c.ctx, [&](sturdy::call_context& ctx) { return p(ctx); });
}

sturdy::fallback_policy two_targets(sturdy::fallback_options opts = {}) {
    return sturdy::fallback_policy({fallback_target("primary", "model-a"), fallback_target("secondary", "model-b")}, std::move(opts));
}

// Whether a failure of the first target moves the call on to the second.
bool moves_on(const error& e) {
    provider p;
    p.down.emplace("model-a", e);
    call c;
    auto out = run(two_targets(), c, p);
    return out.has_value() && p.asked.size() == 2;
}

}  // namespace

TEST_CASE("fallback: the default predicate moves on for provider failures and stays for request errors", "[fallback]") {
    // Moves on: another provider may have the capacity, the quota or the model.
    CHECK(moves_on(failure(error_kind::rate_limit, 429)));
    CHECK(moves_on(failure(error_kind::rate_limit, 429, "insufficient_quota")));
    CHECK(moves_on(failure(error_kind::internal_server, 500)));
    CHECK(moves_on(failure(error_kind::internal_server, 503)));
    CHECK(moves_on(failure(error_kind::timeout)));
    CHECK(moves_on(failure(error_kind::connection)));
    CHECK(moves_on(failure(error_kind::not_found, 404, "model_not_found")));
    CHECK(moves_on(failure(error_kind::circuit_open)));
    CHECK(moves_on(failure(error_kind::rate_limited)));
    CHECK(moves_on(failure(error_kind::stream_truncated)));
    CHECK(moves_on(failure(error_kind::conflict, 409)));
    CHECK(moves_on(failure(error_kind::invalid_response, 200)));
    CHECK(moves_on(failure(error_kind::api_status, 408)));
    CHECK(moves_on(failure(error_kind::api_status, 402)));
    // Stays: no provider would take the request, or the caller stopped.
    CHECK_FALSE(moves_on(failure(error_kind::bad_request, 400)));
    CHECK_FALSE(moves_on(failure(error_kind::authentication, 401)));
    CHECK_FALSE(moves_on(failure(error_kind::permission_denied, 403)));
    CHECK_FALSE(moves_on(failure(error_kind::unprocessable_entity, 422)));
    CHECK_FALSE(moves_on(failure(error_kind::invalid_argument)));
    CHECK_FALSE(moves_on(failure(error_kind::cancelled)));
    CHECK_FALSE(moves_on(failure(error_kind::api_status, 418)));
}

TEST_CASE("fallback: targets are tried in order until one answers, and the call state says where", "[fallback]") {
    sturdy::fallback_policy chain(
        {fallback_target("primary", "model-a"), fallback_target("secondary", "model-b"), fallback_target("tertiary", "model-c")});
    provider p;
    p.down.emplace("model-a", failure(error_kind::internal_server, 503));
    p.down.emplace("model-b", failure(error_kind::rate_limit, 429));
    call c;
    auto out = run(chain, c, p);
    REQUIRE(out.has_value());
    CHECK(*out == "answer from model-c");
    CHECK(p.asked == std::vector<std::string>{"model-a", "model-b", "model-c"});
    CHECK(p.routes == std::vector<std::string>{"primary", "secondary", "tertiary"});
    CHECK(c.state.route_name() == "tertiary");
    CHECK(c.state.fallbacks() == 2);
    const auto errors = c.state.errors();
    REQUIRE(errors.size() == 2);
    CHECK(errors[0].status() == 503);
    CHECK(errors[1].status() == 429);
}

TEST_CASE("fallback: the first target answering is no fallback", "[fallback]") {
    provider p;
    call c;
    auto out = run(two_targets(), c, p);
    REQUIRE(out.has_value());
    CHECK(*out == "answer from model-a");
    CHECK(c.state.route_name() == "primary");
    CHECK(c.state.fallbacks() == 0);
    CHECK(c.state.errors().empty());
}

TEST_CASE("fallback: when every target fails, the last error is returned", "[fallback]") {
    provider p;
    p.down.emplace("model-a", failure(error_kind::internal_server, 500));
    p.down.emplace("model-b", failure(error_kind::timeout));
    call c;
    auto out = run(two_targets(), c, p);
    REQUIRE_FALSE(out.has_value());
    CHECK(out.error().kind() == error_kind::timeout);
    CHECK(p.asked.size() == 2);
    CHECK(c.state.errors().size() == 2);
}

TEST_CASE("fallback: an error that does not move on is returned at once", "[fallback]") {
    provider p;
    p.down.emplace("model-a", failure(error_kind::bad_request, 400));
    call c;
    auto out = run(two_targets(), c, p);
    REQUIRE_FALSE(out.has_value());
    CHECK(out.error().status() == 400);
    CHECK(p.asked == std::vector<std::string>{"model-a"});
    CHECK(c.state.fallbacks() == 0);
}

TEST_CASE("fallback: the predicate is the user's to choose", "[fallback]") {
    sturdy::fallback_options opts;
    opts.should_handle = [](const error& e) { return e.is(error_kind::bad_request); };
    provider p;
    p.down.emplace("model-a", failure(error_kind::bad_request, 400));
    call c;
    CHECK(run(two_targets(opts), c, p).has_value());

    provider q;
    q.down.emplace("model-a", failure(error_kind::internal_server, 500));
    call d;
    CHECK_FALSE(run(two_targets(opts), d, q).has_value());
    CHECK(q.asked.size() == 1);
}

TEST_CASE("fallback: context_length_exceeded jumps to a larger window, passing smaller and undeclared ones", "[fallback]") {
    std::vector<sturdy::fallback_skip_event> skips;
    std::vector<std::string> skipped;
    sturdy::fallback_options opts;
    opts.on_skip = [&](const sturdy::fallback_skip_event& e) {
        skipped.push_back(e.target.name);
        skips.push_back(e);
    };
    sturdy::fallback_policy chain({fallback_target("short", "m-8k").with_window(8000), fallback_target("shorter", "m-4k").with_window(4000),
                                   fallback_target("same", "m-8k-too").with_window(8000), fallback_target("unknown", "m-x"),
                                   fallback_target("long", "m-128k").with_window(128000)},
                                  opts);
    provider p;
    p.down.emplace("m-8k", failure(error_kind::context_length_exceeded, 400, "context_length_exceeded"));
    call c;
    auto out = run(chain, c, p);
    REQUIRE(out.has_value());
    CHECK(*out == "answer from m-128k");
    CHECK(p.asked == std::vector<std::string>{"m-8k", "m-128k"});
    CHECK(skipped == std::vector<std::string>{"shorter", "same", "unknown"});
    REQUIRE(skips.size() == 3);
    CHECK(skips[0].reason == sturdy::fallback_skip::window_not_larger);
    CHECK(skips[0].context_window == 4000);
    CHECK(c.state.fallbacks() == 1);
    CHECK(c.state.route_name() == "long");
    CHECK(c.state.errors().size() == 1);  // passing a target over invents no error
    CHECK(chain.stats_for("shorter")->skipped == 1);
    CHECK(chain.stats_for("short")->fallbacks == 1);
}

TEST_CASE("fallback: context_length_exceeded with no larger window left is returned", "[fallback]") {
    sturdy::fallback_policy chain({fallback_target("a", "m-a").with_window(32000), fallback_target("b", "m-b").with_window(16000)});
    provider p;
    p.down.emplace("m-a", failure(error_kind::context_length_exceeded, 400));
    call c;
    auto out = run(chain, c, p);
    REQUIRE_FALSE(out.has_value());
    CHECK(out.error().kind() == error_kind::context_length_exceeded);
    CHECK(p.asked.size() == 1);
}

TEST_CASE("fallback: an overflow at an undeclared window may go to any declared one", "[fallback]") {
    sturdy::fallback_policy chain({fallback_target("a", "m-a"), fallback_target("b", "m-b"), fallback_target("c", "m-c").with_window(16000)});
    provider p;
    p.down.emplace("m-a", failure(error_kind::context_length_exceeded, 400));
    call c;
    auto out = run(chain, c, p);
    REQUIRE(out.has_value());
    CHECK(p.asked == std::vector<std::string>{"m-a", "m-c"});
}

TEST_CASE("fallback: without the context-window rule, context_length_exceeded goes through the predicate", "[fallback]") {
    sturdy::fallback_options opts;
    opts.context_window_fallback = false;
    provider p;
    p.down.emplace("model-a", failure(error_kind::context_length_exceeded, 400));
    call c;
    auto out = run(two_targets(opts), c, p);
    REQUIRE_FALSE(out.has_value());
    CHECK(p.asked.size() == 1);
}

TEST_CASE("fallback: targets too small for the estimated prompt and output are passed over before calling", "[fallback]") {
    std::vector<sturdy::fallback_skip_event> skips;
    sturdy::fallback_options opts;
    opts.on_skip = [&](const sturdy::fallback_skip_event& e) { skips.push_back(e); };
    sturdy::fallback_policy chain({fallback_target("8k", "m-8k").with_window(8000), fallback_target("11k", "m-11k").with_window(11000),
                                   fallback_target("12k", "m-12k").with_window(12000)},
                                  opts);
    provider p;
    call c;
    c.ctx.estimated_prompt_tokens = 10000;
    c.ctx.max_output_tokens = 2000;
    auto out = run(chain, c, p);
    REQUIRE(out.has_value());
    CHECK(*out == "answer from m-12k");  // 10000 + 2000 fits a 12000 window exactly
    CHECK(p.asked.size() == 1);
    CHECK(c.state.fallbacks() == 0);  // nothing failed: no fallback, no error
    CHECK(c.state.errors().empty());
    CHECK(c.state.route_name() == "12k");
    REQUIRE(skips.size() == 2);
    CHECK(skips[0].reason == sturdy::fallback_skip::window_too_small);
    CHECK(skips[0].needed_tokens == 12000);
    CHECK(skips[1].target.name == "11k");
}

TEST_CASE("fallback: when no window holds the call, it fails with context_length_exceeded and no attempt", "[fallback]") {
    sturdy::fallback_policy chain({fallback_target("a", "m-a").with_window(1000), fallback_target("b", "m-b").with_window(2000)});
    provider p;
    call c;
    c.ctx.estimated_prompt_tokens = 5000;
    auto out = run(chain, c, p);
    REQUIRE_FALSE(out.has_value());
    CHECK(out.error().kind() == error_kind::context_length_exceeded);
    CHECK(p.asked.empty());
    CHECK(c.state.attempts() == 0);
}

TEST_CASE("fallback: skipping by estimate can be turned off", "[fallback]") {
    sturdy::fallback_options opts;
    opts.skip_small_windows = false;
    sturdy::fallback_policy chain({fallback_target("a", "m-a").with_window(1000)}, opts);
    provider p;
    call c;
    c.ctx.estimated_prompt_tokens = 5000;
    CHECK(run(chain, c, p).has_value());
}

TEST_CASE("fallback: the call's route_order goes first, the rest follow in configured order", "[fallback]") {
    sturdy::fallback_policy chain({fallback_target("a", "m-a"), fallback_target("b", "m-b"), fallback_target("c", "m-c"),
                                   fallback_target("d", "m-d")});
    provider p;
    for (auto m : {"m-a", "m-b", "m-c", "m-d"}) p.down.emplace(m, failure(error_kind::internal_server, 500));
    call c;
    c.ctx.route_order = {"c", "no-such-route", "b", "c"};
    auto out = run(chain, c, p);
    REQUIRE_FALSE(out.has_value());
    CHECK(p.routes == std::vector<std::string>{"c", "b", "a", "d"});
}

TEST_CASE("fallback: a target's own retry runs before the chain moves on", "[fallback]") {
    sturdy::testing::fake_clock fake(3);
    sturdy::fallback_policy chain(
        {fallback_target("primary", "model-a").with_policy(sturdy::retry_policy(sturdy::retry_options{}, fake.timing())),
         fallback_target("secondary", "model-b")});
    provider p;
    p.down.emplace("model-a", failure(error_kind::internal_server, 503));
    call c;
    auto out = run(chain, c, p);
    REQUIRE(out.has_value());
    CHECK(p.asked == std::vector<std::string>{"model-a", "model-a", "model-a", "model-b"});
    CHECK(fake.sleeps().size() == 2);  // the primary's two backoffs, in virtual time
    CHECK(c.state.attempts() == 4);
    CHECK(c.state.errors().size() == 3);
    CHECK(c.state.fallbacks() == 1);
    const auto primary = chain.stats_for("primary");
    CHECK(primary->calls == 1);
    CHECK(primary->failures == 1);
}

TEST_CASE("fallback: a stream that delivered content never falls back", "[fallback]") {
    provider p;
    call c;
    auto out = two_targets().execute(c.ctx, [&](sturdy::call_context& ctx) -> sturdy::result<std::string> {
        const int id = ctx.state->begin_attempt();
        p.asked.emplace_back(ctx.effective_model());
        REQUIRE(ctx.state->try_commit(id));  // content reached the caller, then the stream broke
        return failure(error_kind::stream_truncated);
    });
    REQUIRE_FALSE(out.has_value());
    CHECK(out.error().kind() == error_kind::stream_truncated);
    CHECK(p.asked.size() == 1);
}

TEST_CASE("fallback: a cancelled call or a passed deadline stops the chain", "[fallback]") {
    SECTION("cancelled") {
        sturdy::cancellation_source stop;
        call c;
        c.ctx.cancel = stop.token();
        provider p;
        auto out = two_targets().execute(c.ctx, [&](sturdy::call_context& ctx) -> sturdy::result<std::string> {
            p.asked.emplace_back(ctx.effective_model());
            stop.cancel();
            return failure(error_kind::timeout);
        });
        CHECK_FALSE(out.has_value());
        CHECK(p.asked.size() == 1);
    }
    SECTION("deadline") {
        sturdy::testing::fake_clock fake;
        call c;
        c.ctx.deadline = sturdy::deadline::after(fake.timing().clock, seconds(5));
        provider p;
        auto out = two_targets().execute(c.ctx, [&](sturdy::call_context& ctx) -> sturdy::result<std::string> {
            p.asked.emplace_back(ctx.effective_model());
            fake.advance(seconds(6));
            return failure(error_kind::timeout);
        });
        CHECK_FALSE(out.has_value());
        CHECK(p.asked.size() == 1);
    }
}

TEST_CASE("fallback: each target's endpoint and model reach the attempt, and the route is restored after", "[fallback]") {
    sturdy::endpoint other;
    other.base_url = "http://other.example/v1";
    other.api_key = "sk-other";
    sturdy::fallback_policy chain({fallback_target("own", ""), fallback_target("other", "m-other", other)});
    provider p;
    p.down.emplace("requested", failure(error_kind::internal_server, 502));
    call c;
    auto outer = std::make_shared<const sturdy::route>(sturdy::route{"outer", nullptr, ""});
    c.ctx.route = outer;
    auto out = run(chain, c, p);
    REQUIRE(out.has_value());
    CHECK(p.asked == std::vector<std::string>{"requested", "m-other"});  // an empty model is the request's
    CHECK(p.routes == std::vector<std::string>{"own", "other"});
    CHECK(p.base_urls == std::vector<std::string>{"", "http://other.example/v1"});
    CHECK(c.ctx.route == outer);
}

TEST_CASE("fallback: a target without a name is named after its model, or its place", "[fallback]") {
    sturdy::fallback_policy chain({fallback_target("", "m-a"), fallback_target("", "")});
    const auto stats = chain.stats();
    REQUIRE(stats.size() == 2);
    CHECK(stats[0].name == "m-a");
    CHECK(stats[1].name == "route 2");
}

TEST_CASE("fallback: on_fallback reports each move with its cause; stats count per target", "[fallback]") {
    struct move {
        std::string from, to;
        int status;
        int number;
    };
    std::vector<move> moves;
    sturdy::fallback_options opts;
    opts.cooldown = std::chrono::seconds(0);  // the 429 is a move like any other here; cool-downs: below
    opts.on_fallback = [&](const sturdy::fallback_event& e) { moves.push_back({e.from.name, e.to.name, e.cause.status(), e.fallback}); };
    sturdy::fallback_policy chain(
        {fallback_target("a", "m-a"), fallback_target("b", "m-b").with_window(100), fallback_target("c", "m-c")}, opts);
    const auto observer = chain;  // a copy shares the counts

    provider p;
    p.queued["m-a"] = {failure(error_kind::internal_server, 500), failure(error_kind::rate_limit, 429)};
    p.queued["m-b"] = {failure(error_kind::internal_server, 503)};
    for (int i = 0; i < 3; ++i) {
        call c;
        REQUIRE(run(chain, c, p).has_value());
    }
    call big;
    big.ctx.estimated_prompt_tokens = 1000;  // too large for b
    REQUIRE(run(chain, big, p).has_value());

    REQUIRE(moves.size() == 3);
    CHECK(moves[0].from == "a");
    CHECK(moves[0].to == "b");
    CHECK(moves[0].status == 500);
    CHECK(moves[0].number == 1);
    CHECK(moves[1].from == "b");
    CHECK(moves[1].to == "c");
    CHECK(moves[1].status == 503);
    CHECK(moves[1].number == 2);
    CHECK(moves[2].from == "a");
    CHECK(moves[2].to == "b");
    CHECK(moves[2].status == 429);

    const auto stats = observer.stats();
    REQUIRE(stats.size() == 3);
    CHECK(stats[0].name == "a");
    CHECK(stats[0].calls == 4);
    CHECK(stats[0].successes == 2);
    CHECK(stats[0].failures == 2);
    CHECK(stats[0].fallbacks == 2);
    CHECK(stats[1].calls == 2);
    CHECK(stats[1].successes == 1);
    CHECK(stats[1].failures == 1);
    CHECK(stats[1].fallbacks == 1);
    CHECK(stats[1].skipped == 0);
    CHECK(stats[2].calls == 1);
    CHECK(stats[2].successes == 1);
    CHECK_FALSE(observer.stats_for("nope").has_value());
}

TEST_CASE("fallback: works inside compose() and a dynamic_pipeline", "[fallback][pipeline]") {
    sturdy::testing::fake_clock fake;
    sturdy::retry_options quick;
    quick.max_retries = 1;
    SECTION("compose: a deadline around the chain, a retry inside each target") {
        auto policy = sturdy::compose(sturdy::deadline_policy(seconds(30), fake.timing()), two_targets(),
                                      sturdy::retry_policy(quick, fake.timing()));
        provider p;
        p.down.emplace("model-a", failure(error_kind::internal_server, 500));
        call c;
        auto out = run(policy, c, p);
        REQUIRE(out.has_value());
        CHECK(p.asked == std::vector<std::string>{"model-a", "model-a", "model-b"});
        CHECK(c.state.fallbacks() == 1);
        CHECK_FALSE(c.ctx.deadline.is_set());  // restored by the deadline policy
    }
    SECTION("dynamic_pipeline") {
        sturdy::dynamic_pipeline policy;
        policy.add(two_targets()).add(sturdy::retry_policy(quick, fake.timing()));
        provider p;
        p.down.emplace("model-a", failure(error_kind::connection));
        call c;
        auto out = run(policy, c, p);
        REQUIRE(out.has_value());
        CHECK(*out == "answer from model-b");
        CHECK(p.asked.size() == 3);
        CHECK(c.state.route_name() == "secondary");
    }
}

TEST_CASE("fallback: an empty chain makes the attempt as it is", "[fallback]") {
    sturdy::fallback_policy chain({});
    provider p;
    call c;
    auto out = run(chain, c, p);
    REQUIRE(out.has_value());
    CHECK(*out == "answer from requested");
    CHECK(c.state.route_name().empty());
}

TEST_CASE("fallback: counts stay right under calls from many threads", "[fallback][threads]") {
    sturdy::fallback_policy chain({fallback_target("a", "m-a"), fallback_target("b", "m-b")});
    std::atomic<int> answered{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 250; ++i) {
                call c;
                auto out = chain.execute(c.ctx, [&](sturdy::call_context& ctx) -> sturdy::result<int> {
                    if (ctx.effective_model() == "m-a" && (i + t) % 2 == 0) return failure(error_kind::internal_server, 500);
                    return 1;
                });
                if (out) ++answered;
            }
        });
    }
    for (auto& th : threads) th.join();
    CHECK(answered == 1000);
    const auto stats = chain.stats();
    CHECK(stats[0].calls == 1000);
    CHECK(stats[0].failures == 500);
    CHECK(stats[0].fallbacks == 500);
    CHECK(stats[1].successes == 500);
}

// ---- the semantics a migration needs ----

TEST_CASE("fallback: a 429 cools its target down for the Retry-After; calls pass it over, then try it again",
          "[fallback]") {
    sturdy::testing::fake_clock fake(5);
    std::vector<sturdy::fallback_skip> skips;
    sturdy::fallback_options opts;
    opts.on_skip = [&](const sturdy::fallback_skip_event& e) { skips.push_back(e.reason); };
    sturdy::fallback_policy chain({fallback_target("primary", "model-a"), fallback_target("secondary", "model-b")},
                                  opts, fake.timing());
    provider p;
    sturdy::error_details d;
    d.status = 429;
    d.message = "slow down";
    d.retry_after = std::chrono::milliseconds(2000);
    p.queued["model-a"] = {error(error_kind::rate_limit, d)};

    call first;
    CHECK(run(chain, first, p).value() == "answer from model-b");
    call second;  // within the pause: the primary is not asked
    fake.advance(std::chrono::milliseconds(1999));
    CHECK(run(chain, second, p).value() == "answer from model-b");
    CHECK(p.asked == std::vector<std::string>{"model-a", "model-b", "model-b"});
    REQUIRE(skips.size() == 1);
    CHECK(skips[0] == sturdy::fallback_skip::cooling_down);
    call third;  // the pause is over: the primary answers again
    fake.advance(std::chrono::milliseconds(1));
    CHECK(run(chain, third, p).value() == "answer from model-a");
    const auto primary = chain.stats_for("primary");
    CHECK(primary->calls == 3);
    CHECK(primary->attempts == 2);
    CHECK(primary->refusals == 1);
    CHECK(primary->failures == 1);
}

TEST_CASE("fallback: every target cooling down fails fast, with when the first is ready", "[fallback]") {
    sturdy::testing::fake_clock fake(6);
    sturdy::fallback_policy chain({fallback_target("only", "model-a")}, {}, fake.timing());
    provider p;
    p.queued["model-a"] = {failure(error_kind::rate_limit, 429)};  // no Retry-After: the 1 s default
    call first;
    CHECK(run(chain, first, p).error().kind() == error_kind::rate_limit);
    call second;
    fake.advance(std::chrono::milliseconds(400));
    auto out = run(chain, second, p);
    REQUIRE_FALSE(out.has_value());
    CHECK(out.error().kind() == error_kind::rate_limited);
    CHECK(out.error().code() == sturdy::error_codes::routes_cooling_down);
    CHECK(out.error().retry_after() == std::chrono::milliseconds(600));
    CHECK(sturdy::is_transient(out.error()));  // a retry around the chain waits for it
    CHECK(p.asked.size() == 1);
}

TEST_CASE("fallback: a 401 moves on to a target with its own key, not to one sharing the refused key", "[fallback]") {
    auto key = [](std::string k) {
        sturdy::endpoint e;
        e.base_url = "https://x.example/v1";
        e.api_key = std::move(k);
        return e;
    };
    sturdy::fallback_policy chain({fallback_target("deepseek", "m-a", key("sk-missing")),
                                   fallback_target("deepseek-2", "m-b", key("sk-missing")),
                                   fallback_target("gemini", "m-c", key("sk-gemini"))});
    provider p;
    p.down.emplace("m-a", failure(error_kind::authentication, 401));
    call c;
    CHECK(run(chain, c, p).value() == "answer from m-c");
    CHECK(p.asked == std::vector<std::string>{"m-a", "m-c"});  // m-b shares the refused key

    // Targets on the client's own key: a 401 there stops the chain, as every target would refuse it.
    sturdy::fallback_policy shared({fallback_target("a", "m-a"), fallback_target("b", "m-b")});
    provider q;
    q.down.emplace("m-a", failure(error_kind::permission_denied, 403));
    call d;
    auto out = run(shared, d, q);
    REQUIRE_FALSE(out.has_value());
    CHECK(out.error().kind() == error_kind::permission_denied);
    CHECK(q.asked == std::vector<std::string>{"m-a"});
}

TEST_CASE("fallback: a pinned route is the only one tried; an unknown one is invalid_argument", "[fallback]") {
    provider p;
    p.down.emplace("model-b", failure(error_kind::internal_server, 503));
    call pinned;
    pinned.ctx.pinned_route = "secondary";
    auto out = run(two_targets(), pinned, p);
    REQUIRE_FALSE(out.has_value());  // down: its own error, never an answer from elsewhere
    CHECK(out.error().status() == 503);
    CHECK(p.asked == std::vector<std::string>{"model-b"});

    call unknown;
    unknown.ctx.pinned_route = "kimi";
    auto bad = run(two_targets(), unknown, p);
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().kind() == error_kind::invalid_argument);
    CHECK(std::string(bad.error().what()).find("kimi") != std::string::npos);
    CHECK(p.asked.size() == 1);
}

TEST_CASE("fallback: stats tell attempts sent, refusals and failures apart", "[fallback]") {
    sturdy::testing::fake_clock fake(7);
    sturdy::circuit_breaker_options open_after_one;
    open_after_one.failure_threshold = 1;
    sturdy::circuit_breaker breaker(open_after_one, fake.timing());
    sturdy::fallback_policy chain(
        {fallback_target("deepseek", "m-a").with_policy(breaker), fallback_target("kimi", "m-b")}, {}, fake.timing());
    provider p;
    p.down.emplace("m-a", failure(error_kind::internal_server, 500));
    for (int i = 0; i < 5; ++i) {
        call c;
        CHECK(run(chain, c, p).value() == "answer from m-b");
        // The breaker's refusal is in the call's errors, though no attempt met it.
        if (i > 0) CHECK(c.state.errors().back().kind() == error_kind::circuit_open);
    }
    const auto deepseek = chain.stats_for("deepseek");
    CHECK(deepseek->calls == 5);
    CHECK(deepseek->attempts == 1);  // what the server saw
    CHECK(deepseek->failures == 1);
    CHECK(deepseek->refusals == 4);
}

TEST_CASE("per_route: one breaker per target, wherever it sits; the healthy targets keep answering",
          "[fallback][per_route]") {
    sturdy::testing::fake_clock fake(8);
    std::vector<std::string> made;
    auto breaker_for = [&](const std::string& route) {
        made.push_back(route);
        sturdy::circuit_breaker_options o;
        o.name = route;
        o.failure_threshold = 2;
        return sturdy::circuit_breaker(o, fake.timing());
    };
    auto keyed = sturdy::per_route(breaker_for);
    const std::vector<fallback_target> targets{fallback_target("deepseek", "m-a"), fallback_target("kimi", "m-b"),
                                               fallback_target("gemini", "m-c")};
    // Inside the chain, after it in a pipeline.
    auto pipeline = sturdy::compose(sturdy::fallback_policy(targets, {}, fake.timing()), keyed);
    provider p;
    p.down.emplace("m-a", failure(error_kind::internal_server, 503));
    for (int i = 0; i < 5; ++i) {
        call c;
        CHECK(run(pipeline, c, p).value() == "answer from m-b");
    }
    CHECK(keyed.get("deepseek").state() == sturdy::circuit_state::open);
    CHECK(keyed.get("kimi").state() == sturdy::circuit_state::closed);
    CHECK(made == std::vector<std::string>{"deepseek", "kimi"});  // gemini never needed one
    CHECK(keyed.get("deepseek").name() == "deepseek");
    // The primary was called twice, then refused by its own breaker; the server saw 2 requests.
    CHECK(std::count(p.asked.begin(), p.asked.end(), "m-a") == 2);

    // The same keyed policy as the targets' own policy: one line, one breaker per target.
    std::vector<fallback_target> owned;
    for (auto t : targets) owned.push_back(t.with_policy(keyed));
    sturdy::fallback_policy chain(owned, {}, fake.timing());
    call c;
    CHECK(run(chain, c, p).value() == "answer from m-b");
    CHECK(keyed.routes() == std::vector<std::string>{"deepseek", "kimi"});
}

// ---- the policy convention: name, events, should_handle, options ----

namespace {

// Writes down the chain's events as "<who> <kind> <policy>@<route> <target>", hooks and sink alike.
struct fallback_log final : sturdy::event_sink {
    std::vector<std::string> lines;
    void on_fallback(const sturdy::event_source& from, const sturdy::fallback_event& e) override {
        lines.push_back("sink move " + std::string(from.policy) + "@" + std::string(from.route) + " " + e.to.name);
    }
    void on_fallback_skip(const sturdy::event_source& from, const sturdy::fallback_skip_event& e) override {
        lines.push_back("sink skip " + std::string(from.policy) + "@" + std::string(from.route) + " " + e.target.name);
    }
    void hook_into(sturdy::fallback_options& opts) {
        opts.on_fallback = [this](const sturdy::fallback_event& e) { lines.push_back("hook move " + e.to.name); };
        opts.on_skip = [this](const sturdy::fallback_skip_event& e) { lines.push_back("hook skip " + e.target.name); };
    }
};

// "small" is passed over for its window before anything was tried; "primary" fails, "tiny" is
// passed over after it, and "backup" answers.
sturdy::fallback_policy skip_fail_skip_answer(sturdy::fallback_options opts) {
    return sturdy::fallback_policy(
        {fallback_target("small", "m-small").with_window(10), fallback_target("primary", "m-a"),
         fallback_target("tiny", "m-tiny").with_window(10), fallback_target("backup", "m-b")},
        std::move(opts));
}

std::string refusal(const std::function<void()>& make) {
    try {
        make();
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("fallback: events go to the hook, then the call's sink, from the route the call was on",
          "[fallback][events]") {
    fallback_log log;
    provider p;
    p.down.emplace("m-a", failure(error_kind::internal_server, 503));
    call c;
    c.ctx.events = &log;
    c.ctx.estimated_prompt_tokens = 100;  // too many for the 10-token windows
    sturdy::fallback_options opts;
    log.hook_into(opts);

    SECTION("the default name; off any route, a pass-over before the first target comes from nowhere") {
        const auto chain = skip_fail_skip_answer(opts);
        CHECK(chain.options().name == "fallback");
        REQUIRE(run(chain, c, p).has_value());
        CHECK(log.lines == std::vector<std::string>{"hook skip small", "sink skip fallback@ small", "hook skip tiny",
                                                    "sink skip fallback@primary tiny", "hook move backup",
                                                    "sink move fallback@primary backup"});
    }
    SECTION("a name of the user's; inside an outer route, that route until a target was tried") {
        opts.name = "providers";
        const auto outer = std::make_shared<const sturdy::route>(sturdy::route{"region-eu", nullptr, ""});
        c.ctx.route = outer;
        REQUIRE(run(skip_fail_skip_answer(opts), c, p).has_value());
        CHECK(log.lines == std::vector<std::string>{"hook skip small", "sink skip providers@region-eu small",
                                                    "hook skip tiny", "sink skip providers@primary tiny",
                                                    "hook move backup", "sink move providers@primary backup"});
        CHECK(c.ctx.route == outer);
    }
    SECTION("without a sink, the hooks alone") {
        c.ctx.events = nullptr;
        REQUIRE(run(skip_fail_skip_answer(opts), c, p).has_value());
        CHECK(log.lines == std::vector<std::string>{"hook skip small", "hook skip tiny", "hook move backup"});
    }
    SECTION("without hooks, the sink alone") {
        REQUIRE(run(skip_fail_skip_answer({}), c, p).has_value());
        CHECK(log.lines == std::vector<std::string>{"sink skip fallback@ small", "sink skip fallback@primary tiny",
                                                    "sink move fallback@primary backup"});
    }
}

TEST_CASE("fallback: should_handle is empty by default, meaning should_fall_back", "[fallback][policy]") {
    CHECK_FALSE(sturdy::fallback_options{}.should_handle);
    CHECK_FALSE(sturdy::fallback_policy({}).options().should_handle);  // the chain keeps it empty
    // A custom one is the chain's only say (the predicate test above); here, that it replaces the
    // default rather than adding to it: a 503 the default moves on for now stays.
    sturdy::fallback_options opts;
    opts.should_handle = [](const error& e) { return e.is(error_kind::timeout); };
    provider p;
    p.down.emplace("model-a", failure(error_kind::internal_server, 503));
    call c;
    CHECK(run(two_targets(opts), c, p).error().status() == 503);
    CHECK(p.asked.size() == 1);
}

TEST_CASE("fallback: the credential and window rules hold whatever should_handle says", "[fallback][policy]") {
    sturdy::fallback_options never;
    never.should_handle = [](const error&) { return false; };
    sturdy::endpoint own;
    own.base_url = "https://other.example/v1";
    own.api_key = "sk-other";
    sturdy::fallback_policy chain(
        {fallback_target("shared", "m-a").with_window(8000), fallback_target("own-key", "m-b", own).with_window(16000)},
        never);
    SECTION("a 401 moves on to a target with a key of its own") {
        provider p;
        p.down.emplace("m-a", failure(error_kind::authentication, 401));
        call c;
        CHECK(run(chain, c, p).value() == "answer from m-b");
    }
    SECTION("a context_length_exceeded moves on to a larger window") {
        provider p;
        p.down.emplace("m-a", failure(error_kind::context_length_exceeded, 400, "context_length_exceeded"));
        call c;
        CHECK(run(chain, c, p).value() == "answer from m-b");
    }
    SECTION("anything else stays, as the predicate says") {
        provider p;
        p.down.emplace("m-a", failure(error_kind::internal_server, 503));
        call c;
        CHECK(run(chain, c, p).error().status() == 503);
    }
}

TEST_CASE("fallback: options that make no sense are refused at construction, naming the field", "[fallback][policy]") {
    const std::vector<fallback_target> two{fallback_target("a", "m-a"), fallback_target("b", "m-b")};
    sturdy::fallback_options opts;
    opts.cooldown = milliseconds(-1);
    CHECK(refusal([&] { sturdy::fallback_policy chain(two, opts); }) ==
          "sturdy::fallback_policy: cooldown must not be negative");
    opts = {};
    opts.max_cooldown = milliseconds(-1);
    CHECK(refusal([&] { sturdy::fallback_policy chain(two, opts); }) ==
          "sturdy::fallback_policy: max_cooldown must not be negative");
    CHECK(refusal([] { sturdy::fallback_policy chain({fallback_target("a", "m-a").with_window(0)}); }) ==
          "sturdy::fallback_policy: fallback_target.context_window must be positive");
    // Unnamed targets are named after their model: two on one model need names of their own.
    sturdy::endpoint other;
    other.base_url = "https://other.example/v1";
    CHECK(refusal([&] {
              sturdy::fallback_policy chain({fallback_target("", "m-a"), fallback_target("", "m-a", other)});
          }) == "sturdy::fallback_policy: fallback_target.route.name must differ from the others': 'm-a' names two");
    // And the edges that make sense are not refused.
    opts = {};
    opts.cooldown = seconds(0);
    opts.max_cooldown = seconds(0);
    CHECK(refusal([&] {
              sturdy::fallback_policy chain({fallback_target("a", "m-a").with_window(1), fallback_target("", "m-a")},
                                            opts);
          }) == "");
}

TEST_CASE("per_route: each route's breaker reports under its route's name, on that route",
          "[fallback][per_route][events]") {
    struct breaker_log final : sturdy::event_sink {
        std::vector<std::string> lines;
        void on_circuit_state(const sturdy::event_source& from, const sturdy::circuit_state_event&) override {
            lines.push_back("state " + std::string(from.policy) + "@" + std::string(from.route));
        }
        void on_circuit_rejected(const sturdy::event_source& from, const sturdy::circuit_rejection_event&) override {
            lines.push_back("rejected " + std::string(from.policy) + "@" + std::string(from.route));
        }
    };
    sturdy::testing::fake_clock fake(8);
    auto breaker_for = [&](const std::string& route) {
        sturdy::circuit_breaker_options o;
        o.name = route;  // the idiom per_route.hpp shows
        o.failure_threshold = 1;
        return sturdy::circuit_breaker(o, fake.timing());
    };
    auto keyed = sturdy::per_route(breaker_for);
    std::vector<fallback_target> targets;
    for (auto t : {fallback_target("deepseek", "m-a"), fallback_target("kimi", "m-b")})
        targets.push_back(t.with_policy(keyed));
    sturdy::fallback_policy chain(targets, {}, fake.timing());
    provider p;
    p.down.emplace("m-a", failure(error_kind::internal_server, 503));
    breaker_log log;
    for (int i = 0; i < 2; ++i) {
        call c;
        c.ctx.events = &log;
        CHECK(run(chain, c, p).value() == "answer from m-b");
    }
    // The first call opens deepseek's breaker; the second meets it open. Kimi's never changes.
    CHECK(log.lines == std::vector<std::string>{"state deepseek@deepseek", "rejected deepseek@deepseek"});
}

// ---- the executor seam ----

namespace {

using sturdy_test::test_executor;

}  // namespace

TEST_CASE("fallback: a target's waits go through the call's executor; the chain starts no branch",
          "[fallback][executor]") {
    sturdy::testing::fake_clock fake(3);
    sturdy::fallback_policy chain({fallback_target("primary", "model-a")
                                       .with_policy(sturdy::retry_policy(sturdy::retry_options{}, fake.timing())),
                                   fallback_target("secondary", "model-b")},
                                  {}, fake.timing());
    provider p;
    p.down.emplace("model-a", failure(error_kind::internal_server, 503));
    // Inline, the retry's waits return having run on; with threads, they return at once and the
    // primary's next attempts, and the move to the secondary, run on the executor's threads.
    const auto m = GENERATE(test_executor::mode::inline_calls, test_executor::mode::threads);
    test_executor exec(m);
    call c;
    c.ctx.exec = &exec;
    auto out = run(chain, c, p);
    REQUIRE(out.has_value());
    CHECK(*out == "answer from model-b");
    CHECK(p.asked == std::vector<std::string>{"model-a", "model-a", "model-a", "model-b"});
    CHECK(exec.waits().size() == 2);  // the primary's two backoffs, asked of this executor
    CHECK(exec.waits() == fake.sleeps());
    CHECK(exec.spawns() == 0);
    CHECK(c.ctx.exec == &exec);     // the caller's executor stays in place
    CHECK(c.ctx.route == nullptr);  // restored, on whichever thread the chain ended
    CHECK(c.state.route_name() == "secondary");
    CHECK(c.state.fallbacks() == 1);
    CHECK(c.state.errors().size() == 3);
    CHECK(chain.stats_for("primary")->attempts == 3);
}

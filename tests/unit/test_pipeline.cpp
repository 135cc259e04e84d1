#include <sturdy/dynamic_pipeline.hpp>
#include <sturdy/pipeline.hpp>
#include <sturdy/retry.hpp>
#include <sturdy/testing/fake_clock.hpp>
#include <sturdy/timeout.hpp>

#include "support/catch.hpp"
#include "support/tracer.hpp"

#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono;
using sturdy::error;
using sturdy::error_kind;

namespace {

using sturdy_test::tracer;

struct call {
    sturdy::call_state state;
    sturdy::call_context ctx{sturdy::operation::chat, "m", state};
};

sturdy::result<std::string> ok(sturdy::call_context&) { return std::string("value"); }

}  // namespace

TEST_CASE("pipeline: policies run outer to inner, as written", "[pipeline]") {
    std::vector<std::string> log;
    auto p = sturdy::compose(tracer{"a", &log}, tracer{"b", &log}, tracer{"c", &log});
    call c;
    auto r = p.execute(c.ctx, [&](sturdy::call_context&) -> sturdy::result<std::string> {
        log.push_back("attempt");
        return std::string("x");
    });
    CHECK(*r == "x");
    CHECK(log == std::vector<std::string>{"a+", "b+", "c+", "attempt", "c-", "b-", "a-"});
}

TEST_CASE("pipeline: an empty pipeline is one attempt", "[pipeline]") {
    call c;
    CHECK(*sturdy::pipeline<>().execute(c.ctx, ok) == "value");
}

TEST_CASE("pipeline: the position of retry decides what a retry repeats", "[pipeline]") {
    // compose(retry, inner): the inner policy runs once per attempt; compose(inner, retry): once per call.
    std::vector<std::string> log;
    sturdy::testing::fake_clock fake;
    sturdy::retry_policy retry(sturdy::retry_options{}, fake.timing());
    int failures = 2;
    auto flaky = [&](sturdy::call_context&) -> sturdy::result<std::string> {
        if (failures-- > 0) return error(error_kind::connection, "reset");
        return std::string("ok");
    };
    call c1;
    CHECK(sturdy::compose(retry, tracer{"t", &log}).execute(c1.ctx, flaky));
    CHECK(log.size() == 6);  // entered three times
    log.clear();
    failures = 2;
    call c2;
    CHECK(sturdy::compose(tracer{"t", &log}, retry).execute(c2.ctx, flaky));
    CHECK(log.size() == 2);  // entered once
}

TEST_CASE("any_policy and dynamic_pipeline: run-time composition, same semantics", "[pipeline]") {
    std::vector<std::string> log;
    sturdy::dynamic_pipeline dyn;
    dyn.add(tracer{"a", &log}).add(sturdy::no_policy{}).add(tracer{"b", &log});
    CHECK(dyn.size() == 3);
    call c;
    auto r = dyn.execute(c.ctx, ok);
    CHECK(*r == "value");
    CHECK(log == std::vector<std::string>{"a+", "b+", "b-", "a-"});

    // Errors cross the type erasure unchanged.
    sturdy::any_policy erased = tracer{"e", &log};
    call c2;
    auto failed = erased.execute(c2.ctx, [](sturdy::call_context&) -> sturdy::result<int> { return error(error_kind::not_found, "gone", 404); });
    REQUIRE_FALSE(failed);
    CHECK(failed.error().status() == 404);
}

TEST_CASE("any_policy: a retry behind type erasure retries", "[pipeline]") {
    sturdy::testing::fake_clock fake;
    sturdy::any_policy erased = sturdy::retry_policy(sturdy::retry_options{}, fake.timing());
    int attempts = 0;
    call c;
    auto r = erased.execute(c.ctx, [&](sturdy::call_context&) -> sturdy::result<std::vector<int>> {
        if (++attempts < 3) return error(error_kind::internal_server, "busy", 503);
        return std::vector<int>{1, 2, 3};
    });
    CHECK(r->size() == 3);
    CHECK(attempts == 3);
}

TEST_CASE("deadline_policy: every attempt inside shares one deadline", "[timeout]") {
    sturdy::testing::fake_clock fake;
    auto t = fake.timing();
    std::vector<sturdy::clock::duration> left;
    auto attempt = [&](sturdy::call_context& ctx) -> sturdy::result<int> {
        left.push_back(ctx.deadline.remaining());
        fake.advance(milliseconds(400));  // each attempt takes 400 ms
        return error(error_kind::timeout, "slow");
    };
    sturdy::retry_options ro;
    ro.max_retries = 5;
    ro.backoff = sturdy::backoff::constant(milliseconds(100));
    auto p = sturdy::compose(sturdy::deadline_policy(seconds(1), t), sturdy::retry_policy(ro, t));
    call c;
    auto r = p.execute(c.ctx, attempt);
    CHECK_FALSE(r);
    // 1000 ms, then 1000-400-100 = 500 ms; then 0 ms would be left after the next wait: no third attempt.
    REQUIRE(left.size() == 2);
    CHECK(left[0] == milliseconds(1000));
    CHECK(left[1] == milliseconds(500));
    CHECK_FALSE(c.ctx.deadline.is_set());  // restored after the call
}

TEST_CASE("deadline_policy: an outer deadline that is earlier wins", "[timeout]") {
    sturdy::testing::fake_clock fake;
    auto t = fake.timing();
    call c;
    c.ctx.deadline = sturdy::deadline::after(t.clock, milliseconds(200));
    sturdy::clock::duration seen{};
    sturdy::deadline_policy(seconds(5), t).execute(c.ctx, [&](sturdy::call_context& ctx) -> sturdy::result<int> {
        seen = ctx.deadline.remaining();
        return 1;
    });
    CHECK(seen == milliseconds(200));
}

TEST_CASE("timeout_policy: per-attempt limits, tightest wins, restored afterwards", "[timeout]") {
    sturdy::testing::fake_clock fake;
    auto t = fake.timing();
    sturdy::timeout_options o;
    o.attempt = seconds(3);
    o.first_token = milliseconds(500);
    o.idle = milliseconds(2000);
    call c;
    c.ctx.idle_timeout = milliseconds(1000);  // the caller asked for less: kept
    sturdy::timeout_policy(o, t).execute(c.ctx, [&](sturdy::call_context& ctx) -> sturdy::result<int> {
        CHECK(ctx.deadline.remaining() == seconds(3));
        CHECK(ctx.first_token_timeout == milliseconds(500));
        CHECK(ctx.idle_timeout == milliseconds(1000));
        return 1;
    });
    CHECK_FALSE(c.ctx.deadline.is_set());
    CHECK_FALSE(c.ctx.first_token_timeout.has_value());
    CHECK(c.ctx.idle_timeout == milliseconds(1000));
}

TEST_CASE("timeout_policy inside a retry: each attempt gets a fresh limit", "[timeout]") {
    sturdy::testing::fake_clock fake;
    auto t = fake.timing();
    sturdy::timeout_options o;
    o.attempt = milliseconds(300);
    std::vector<sturdy::clock::duration> left;
    sturdy::retry_options ro;
    ro.backoff = sturdy::backoff::constant(milliseconds(50));
    auto p = sturdy::compose(sturdy::retry_policy(ro, t), sturdy::timeout_policy(o, t));
    call c;
    p.execute(c.ctx, [&](sturdy::call_context& ctx) -> sturdy::result<int> {
        left.push_back(ctx.deadline.remaining());
        fake.advance(milliseconds(300));
        return error(error_kind::timeout, "attempt limit");
    });
    CHECK(left == std::vector<sturdy::clock::duration>(3, milliseconds(300)));
}

TEST_CASE("timeout policies: a limit that is not positive is refused, naming the field", "[timeout]") {
    auto refusal = [](auto make) -> std::string {
        try {
            make();
        } catch (const std::invalid_argument& e) {
            return e.what();
        }
        return "accepted";
    };
    using Catch::Matchers::StartsWith;
    CHECK_THAT(refusal([] { sturdy::deadline_policy d(seconds(0)); }), StartsWith("sturdy::deadline_policy: total "));
    CHECK_THAT(refusal([] { sturdy::deadline_policy d(milliseconds(-1)); }),
               StartsWith("sturdy::deadline_policy: total "));
    CHECK(refusal([] { sturdy::deadline_policy d(milliseconds(1)); }) == "accepted");
    const auto timeout_refusal = [&](const sturdy::timeout_options& o) {
        return refusal([&] { sturdy::timeout_policy t(o); });
    };
    CHECK(timeout_refusal({}) == "accepted");  // no limit at all: the caller's own
    sturdy::timeout_options o;
    o.attempt = seconds(0);
    CHECK_THAT(timeout_refusal(o), StartsWith("sturdy::timeout_policy: attempt "));
    o = {};
    o.first_token = milliseconds(-1);
    CHECK_THAT(timeout_refusal(o), StartsWith("sturdy::timeout_policy: first_token "));
    o = {};
    o.idle = milliseconds(0);
    CHECK_THAT(timeout_refusal(o), StartsWith("sturdy::timeout_policy: idle "));
}

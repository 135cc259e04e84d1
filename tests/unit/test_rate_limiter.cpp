#include <sturdy/dynamic_pipeline.hpp>
#include <sturdy/pipeline.hpp>
#include <sturdy/rate_limiter.hpp>
#include <sturdy/result.hpp>
#include <sturdy/retry.hpp>
#include <sturdy/testing/fake_clock.hpp>

#include "support/catch.hpp"

#include <functional>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono;
using sturdy::error_kind;
using sturdy::rate_limit_kind;

namespace {

using attempt_fn = std::function<sturdy::result<int>(sturdy::call_context&)>;

sturdy::result<int> ok(sturdy::call_context&) { return 42; }

/// One call through `policy` with a fresh context, after `prepare` sets it up.
template <class Policy>
sturdy::result<int> call(const Policy& policy, const attempt_fn& attempt = ok,
                         const std::function<void(sturdy::call_context&)>& prepare = {}) {
    sturdy::call_state state;
    sturdy::call_context ctx(sturdy::operation::chat, "m", state);
    ctx.max_output_tokens = 0;  // only the prompt estimate counts unless a test says otherwise
    if (prepare) prepare(ctx);
    return policy.execute(ctx, attempt);
}

sturdy::rate_limiter per_minute(sturdy::testing::fake_clock& fake, std::int64_t requests, std::int64_t tokens = 0) {
    sturdy::rate_limiter_options o;
    o.name = "test-limiter";
    o.requests = requests;
    o.tokens = tokens;
    return sturdy::rate_limiter(o, fake.timing());
}

std::function<void(sturdy::call_context&)> prompt_of(std::int64_t tokens, std::optional<std::int64_t> max_output = 0) {
    return [=](sturdy::call_context& ctx) {
        ctx.estimated_prompt_tokens = tokens;
        ctx.max_output_tokens = max_output;
    };
}

attempt_fn reporting_usage(std::int64_t total) {
    return [total](sturdy::call_context& ctx) -> sturdy::result<int> {
        sturdy::token_usage u;
        u.total_tokens = total;
        ctx.last_reply.usage = u;
        return 42;
    };
}

attempt_fn replying_with(std::vector<std::pair<std::string, std::string>> headers) {
    return [headers](sturdy::call_context& ctx) -> sturdy::result<int> {
        for (const auto& h : headers) ctx.last_reply.headers.add(h.first, h.second);
        return 42;
    };
}

bool mentions(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("rate limiter: 60 rpm lets 60 calls through at once, then one a second", "[rate_limiter]") {
    sturdy::testing::fake_clock fake;
    auto limiter = per_minute(fake, 60);
    for (int i = 0; i < 60; ++i) REQUIRE(call(limiter).has_value());
    CHECK(fake.sleeps().empty());
    for (int i = 0; i < 3; ++i) REQUIRE(call(limiter).has_value());
    CHECK(fake.sleeps() == std::vector<sturdy::clock::duration>{seconds(1), seconds(1), seconds(1)});
}

TEST_CASE("rate limiter: the bucket refills continuously and never beyond its capacity", "[rate_limiter]") {
    sturdy::testing::fake_clock fake(0, sturdy::testing::fake_clock::mode::manual);
    auto limiter = per_minute(fake, 60);
    for (int i = 0; i < 60; ++i) call(limiter);
    CHECK(limiter.available(rate_limit_kind::requests) == Approx(0));
    fake.advance(milliseconds(500));
    CHECK(limiter.available(rate_limit_kind::requests) == Approx(0.5));
    fake.advance(seconds(30));
    CHECK(limiter.available(rate_limit_kind::requests) == Approx(30.5));
    fake.advance(minutes(10));
    CHECK(limiter.available(rate_limit_kind::requests) == Approx(60));
}

TEST_CASE("rate limiter: a burst sets the bucket's size, not its rate", "[rate_limiter]") {
    sturdy::testing::fake_clock fake;
    sturdy::rate_limiter_options o;
    o.requests = 60;
    o.request_burst = 5;
    sturdy::rate_limiter limiter(o, fake.timing());
    for (int i = 0; i < 7; ++i) call(limiter);
    CHECK(fake.sleeps() == std::vector<sturdy::clock::duration>{seconds(1), seconds(1)});
}

TEST_CASE("rate limiter: a configured period sets the rate", "[rate_limiter]") {
    sturdy::testing::fake_clock fake;
    sturdy::rate_limiter_options o;
    o.requests = 10;
    o.period = seconds(1);
    o.request_burst = 1;
    sturdy::rate_limiter limiter(o, fake.timing());
    for (int i = 0; i < 3; ++i) call(limiter);
    CHECK(fake.sleeps() == std::vector<sturdy::clock::duration>{milliseconds(100), milliseconds(100)});
}

TEST_CASE("rate limiter: the token estimate is the prompt plus max_tokens or the expected completion", "[rate_limiter]") {
    sturdy::testing::fake_clock fake;
    auto limiter = per_minute(fake, 0, 10000);
    sturdy::call_state state;
    sturdy::call_context ctx(sturdy::operation::chat, "m", state);
    ctx.estimated_prompt_tokens = 100;
    CHECK(limiter.estimate(ctx) == 100 + limiter.options().expected_completion_tokens);
    ctx.max_output_tokens = 50;
    CHECK(limiter.estimate(ctx) == 150);
    ctx.op = sturdy::operation::embeddings;  // no completion
    CHECK(limiter.estimate(ctx) == 100);
    ctx.op = sturdy::operation::list_models;
    ctx.estimated_prompt_tokens = 0;
    CHECK(limiter.estimate(ctx) == 0);
}

TEST_CASE("rate limiter: tokens are charged before the attempt", "[rate_limiter]") {
    sturdy::testing::fake_clock fake;
    auto limiter = per_minute(fake, 0, 1000);
    double during = 0;
    call(limiter, [&](sturdy::call_context&) -> sturdy::result<int> {
        during = limiter.available(rate_limit_kind::tokens);
        return 42;
    }, prompt_of(100, 50));
    CHECK(during == Approx(850));
}

TEST_CASE("rate limiter: the reply's usage corrects the estimate", "[rate_limiter]") {
    sturdy::testing::fake_clock fake(0, sturdy::testing::fake_clock::mode::manual);  // no refill meanwhile
    auto limiter = per_minute(fake, 0, 1000);
    SECTION("less usage than estimated is refunded") {
        call(limiter, reporting_usage(30), prompt_of(100, 50));
        CHECK(limiter.available(rate_limit_kind::tokens) == Approx(970));
    }
    SECTION("more usage than estimated is charged") {
        call(limiter, reporting_usage(400), prompt_of(100, 50));
        CHECK(limiter.available(rate_limit_kind::tokens) == Approx(600));
    }
    SECTION("without usage the estimate stays") {
        call(limiter, ok, prompt_of(100, 50));
        CHECK(limiter.available(rate_limit_kind::tokens) == Approx(850));
    }
    SECTION("a refund never fills the bucket beyond its capacity") {
        call(limiter, reporting_usage(0), prompt_of(100, 50));
        CHECK(limiter.available(rate_limit_kind::tokens) == Approx(1000));
    }
}

TEST_CASE("rate limiter: a wait longer than max_wait is refused at once, saying when the budget is back", "[rate_limiter]") {
    sturdy::testing::fake_clock fake;
    sturdy::rate_limiter_options o;
    o.name = "batch";
    o.requests = 60;
    o.tokens = 600;  // 10 a second
    o.max_wait = milliseconds(500);
    sturdy::rate_limiter limiter(o, fake.timing());
    int attempts = 0;
    auto counted = [&](sturdy::call_context&) -> sturdy::result<int> { return ++attempts; };

    SECTION("requests") {
        for (int i = 0; i < 60; ++i) call(limiter, counted);
        auto refused = call(limiter, counted);
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error().kind() == error_kind::rate_limited);
        CHECK(refused.error().retry_after() == milliseconds(1000));
        CHECK(refused.error().code() == sturdy::error_codes::requests_limit);
        CHECK(mentions(refused.error().message(), "requests"));
        CHECK(mentions(refused.error().message(), "'batch'"));
        CHECK(attempts == 60);
    }
    SECTION("tokens") {
        call(limiter, counted, prompt_of(550));
        auto refused = call(limiter, counted, prompt_of(100));  // 50 left: 50 more take 5 s
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error().kind() == error_kind::rate_limited);
        CHECK(refused.error().retry_after() == milliseconds(5000));
        CHECK(refused.error().code() == sturdy::error_codes::tokens_limit);
        CHECK(mentions(refused.error().message(), "tokens"));
        CHECK(mentions(refused.error().message(), "'batch'"));
        CHECK(attempts == 1);
    }
    CHECK(fake.sleeps().empty());
}

TEST_CASE("rate limiter: a refused call takes nothing from the budget", "[rate_limiter]") {
    sturdy::testing::fake_clock fake(0, sturdy::testing::fake_clock::mode::manual);
    sturdy::rate_limiter_options o;
    o.requests = 60;
    o.max_wait = sturdy::clock::duration::zero();
    sturdy::rate_limiter limiter(o, fake.timing());
    for (int i = 0; i < 60; ++i) call(limiter);
    for (int i = 0; i < 5; ++i) CHECK_FALSE(call(limiter).has_value());
    CHECK(limiter.available(rate_limit_kind::requests) == Approx(0));
    fake.advance(seconds(1));
    CHECK(call(limiter).has_value());
}

TEST_CASE("rate limiter: never waits past the call's deadline", "[rate_limiter]") {
    sturdy::testing::fake_clock fake;
    auto limiter = per_minute(fake, 60);
    for (int i = 0; i < 60; ++i) call(limiter);
    auto with_deadline = [&](sturdy::clock::duration d) {
        return [&fake, d](sturdy::call_context& ctx) { ctx.deadline = sturdy::deadline::after(fake.timing().clock, d); };
    };
    auto refused = call(limiter, ok, with_deadline(milliseconds(500)));
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().kind() == error_kind::rate_limited);
    CHECK(refused.error().retry_after() == milliseconds(1000));
    CHECK(mentions(refused.error().message(), "deadline"));
    CHECK(fake.sleeps().empty());
    CHECK(call(limiter, ok, with_deadline(seconds(2))).has_value());
    CHECK(fake.sleeps() == std::vector<sturdy::clock::duration>{seconds(1)});
}

TEST_CASE("rate limiter: cancelling a waiting call ends its wait and returns its share", "[rate_limiter]") {
    sturdy::testing::fake_clock fake(0, sturdy::testing::fake_clock::mode::manual);
    auto limiter = per_minute(fake, 60);
    for (int i = 0; i < 60; ++i) call(limiter);
    sturdy::cancellation_source stop;
    bool attempted = false;
    std::optional<sturdy::result<int>> outcome;
    std::thread waiter([&] {
        outcome = call(limiter, [&](sturdy::call_context&) -> sturdy::result<int> {
            attempted = true;
            return 42;
        }, [&](sturdy::call_context& ctx) { ctx.cancel = stop.token(); });
    });
    fake.wait_for_sleepers(1);
    CHECK(limiter.available(rate_limit_kind::requests) == Approx(-1));
    stop.cancel();
    waiter.join();
    REQUIRE(outcome);
    REQUIRE_FALSE(outcome->has_value());
    CHECK(outcome->error().kind() == error_kind::cancelled);
    CHECK_FALSE(attempted);
    CHECK(limiter.available(rate_limit_kind::requests) == Approx(0));
}

TEST_CASE("rate limiter: waiting callers are served in arrival order", "[rate_limiter]") {
    sturdy::testing::fake_clock fake(0, sturdy::testing::fake_clock::mode::manual);
    auto limiter = per_minute(fake, 60);
    for (int i = 0; i < 60; ++i) call(limiter);
    std::vector<std::thread> callers;
    std::vector<int> served(3, 0);
    for (int i = 0; i < 3; ++i) {
        callers.emplace_back([&, i] {
            call(limiter, [&, i](sturdy::call_context&) -> sturdy::result<int> { return served[static_cast<std::size_t>(i)] = 1; });
        });
        fake.wait_for_sleepers(i + 1);  // the next caller arrives once this one waits
    }
    CHECK(fake.sleeps() == std::vector<sturdy::clock::duration>{seconds(1), seconds(2), seconds(3)});
    for (std::size_t i = 0; i < 3; ++i) {
        fake.advance(seconds(1));
        callers[i].join();  // the i-th arrival is through after i + 1 seconds
        CHECK(served[i] == 1);
    }
}

TEST_CASE("rate limiter: x-ratelimit reset durations", "[rate_limiter]") {
    using sturdy::parse_reset_duration;
    CHECK(parse_reset_duration("6m0s") == seconds(360));
    CHECK(parse_reset_duration("1s") == seconds(1));
    CHECK(parse_reset_duration("20ms") == milliseconds(20));
    CHECK(parse_reset_duration("1m30.5s") == milliseconds(90500));
    CHECK(parse_reset_duration("1h2m3s") == seconds(3723));
    CHECK(parse_reset_duration("0.5s") == milliseconds(500));
    CHECK(parse_reset_duration("250us") == microseconds(250));
    CHECK(parse_reset_duration("7ns") == nanoseconds(7));
    CHECK(parse_reset_duration(" 2s ") == seconds(2));
    CHECK(parse_reset_duration("0") == seconds(0));
    CHECK_FALSE(parse_reset_duration(""));
    CHECK_FALSE(parse_reset_duration("soon"));
    CHECK_FALSE(parse_reset_duration("12"));  // a bare number has no unit
    CHECK_FALSE(parse_reset_duration("-1s"));
    CHECK_FALSE(parse_reset_duration("1x"));
    CHECK_FALSE(parse_reset_duration("1.2.3s"));
    CHECK_FALSE(parse_reset_duration("s"));
    CHECK_FALSE(parse_reset_duration("1s2"));
    CHECK_FALSE(parse_reset_duration("99999999999h"));
}

TEST_CASE("rate limiter: the server's remaining count lowers the bucket", "[rate_limiter]") {
    sturdy::testing::fake_clock fake(0, sturdy::testing::fake_clock::mode::manual);
    sturdy::rate_limiter_options o;
    o.requests = 60;
    o.tokens = 10000;
    o.adapt_to_server = true;
    sturdy::rate_limiter limiter(o, fake.timing());
    call(limiter, replying_with({{"x-ratelimit-remaining-requests", "5"}, {"x-ratelimit-remaining-tokens", "1200"}}));
    CHECK(limiter.available(rate_limit_kind::requests) == Approx(5));
    CHECK(limiter.available(rate_limit_kind::tokens) == Approx(1200));
    // A higher count never raises it.
    call(limiter, replying_with({{"x-ratelimit-remaining-requests", "50"}}));
    CHECK(limiter.available(rate_limit_kind::requests) == Approx(4));
}

TEST_CASE("rate limiter: remaining 0 holds calls until the server's reset", "[rate_limiter]") {
    sturdy::testing::fake_clock fake;
    sturdy::rate_limiter_options o;
    o.name = "adaptive";
    o.adapt_to_server = true;  // no local limits: the server's headers alone hold calls back
    o.max_wait = minutes(10);
    sturdy::rate_limiter limiter(o, fake.timing());
    call(limiter, replying_with({{"x-ratelimit-remaining-tokens", "0"}, {"x-ratelimit-reset-tokens", "6m0s"}}));
    CHECK(fake.sleeps().empty());
    CHECK(call(limiter, ok, prompt_of(10)).has_value());
    CHECK(fake.sleeps() == std::vector<sturdy::clock::duration>{seconds(360)});
    // Once past the reset, calls go straight through again.
    CHECK(call(limiter, ok, prompt_of(10)).has_value());
    CHECK(fake.sleeps().size() == 1);
}

TEST_CASE("rate limiter: a server hold longer than max_wait is refused with the reset as the hint", "[rate_limiter]") {
    sturdy::testing::fake_clock fake;
    sturdy::rate_limiter_options o;
    o.name = "adaptive";
    o.adapt_to_server = true;
    sturdy::rate_limiter limiter(o, fake.timing());
    call(limiter, replying_with({{"x-ratelimit-remaining-requests", "0"}, {"x-ratelimit-reset-requests", "1m30.5s"}}));
    auto refused = call(limiter);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().kind() == error_kind::rate_limited);
    CHECK(refused.error().retry_after() == milliseconds(90500));
    CHECK(mentions(refused.error().message(), "server"));
    CHECK(mentions(refused.error().message(), "requests"));
}

TEST_CASE("rate limiter: headers are ignored unless adapt_to_server is set", "[rate_limiter]") {
    sturdy::testing::fake_clock fake;
    auto limiter = per_minute(fake, 60);
    call(limiter, replying_with({{"x-ratelimit-remaining-requests", "0"}, {"x-ratelimit-reset-requests", "30s"}}));
    CHECK(limiter.available(rate_limit_kind::requests) == Approx(59));
    CHECK(call(limiter).has_value());
    CHECK(fake.sleeps().empty());
}

TEST_CASE("rate limiter: a 429 empties the bucket it names and holds calls until its Retry-After", "[rate_limiter]") {
    sturdy::testing::fake_clock fake;
    sturdy::rate_limiter_options o;
    o.requests = 60;
    o.tokens = 100000;
    o.adapt_to_server = true;
    sturdy::rate_limiter limiter(o, fake.timing());
    auto too_many = [](std::string type) {
        return [type](sturdy::call_context&) -> sturdy::result<int> {
            sturdy::error_details d;
            d.status = 429;
            d.type = type;
            d.code = "rate_limit_exceeded";
            d.retry_after = seconds(5);
            return sturdy::error(error_kind::rate_limit, std::move(d));
        };
    };
    SECTION("requests") {
        CHECK_FALSE(call(limiter, too_many("requests")).has_value());
        CHECK(limiter.available(rate_limit_kind::requests) == Approx(0));
        CHECK(limiter.available(rate_limit_kind::tokens) > 99000);
    }
    SECTION("tokens") {
        CHECK_FALSE(call(limiter, too_many("tokens")).has_value());
        CHECK(limiter.available(rate_limit_kind::tokens) == Approx(0));
        CHECK(limiter.available(rate_limit_kind::requests) == Approx(59));
    }
    CHECK(call(limiter, ok, prompt_of(10)).has_value());
    CHECK(fake.sleeps() == std::vector<sturdy::clock::duration>{seconds(5)});
}

TEST_CASE("rate limiter: a 429 for exhausted quota holds nothing", "[rate_limiter]") {
    sturdy::testing::fake_clock fake;
    sturdy::rate_limiter_options o;
    o.adapt_to_server = true;
    sturdy::rate_limiter limiter(o, fake.timing());
    call(limiter, [](sturdy::call_context&) -> sturdy::result<int> {
        sturdy::error_details d;
        d.status = 429;
        d.code = "insufficient_quota";
        d.retry_after = seconds(5);
        return sturdy::error(error_kind::rate_limit, std::move(d));
    });
    CHECK(call(limiter).has_value());
    CHECK(fake.sleeps().empty());
}

TEST_CASE("rate limiter: a request larger than the token bucket is refused by default", "[rate_limiter]") {
    sturdy::testing::fake_clock fake;
    sturdy::rate_limiter_options o;
    o.name = "small";
    o.tokens = 1000;
    sturdy::rate_limiter limiter(o, fake.timing());
    auto refused = call(limiter, ok, prompt_of(900, 200));
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().kind() == error_kind::rate_limited);
    CHECK_FALSE(refused.error().retry_after());  // no wait would make room
    CHECK(refused.error().code() == sturdy::error_codes::request_too_large);
    CHECK(mentions(refused.error().message(), "1100 tokens"));
    CHECK(mentions(refused.error().message(), "'small'"));
    CHECK(limiter.available(rate_limit_kind::tokens) == Approx(1000));
}

TEST_CASE("rate limiter: alone_when_full lets an oversized request through once the bucket is full", "[rate_limiter]") {
    sturdy::testing::fake_clock fake;
    sturdy::rate_limiter_options o;
    o.tokens = 600;  // 10 a second
    o.max_wait = minutes(5);
    o.oversized = sturdy::oversized_request::alone_when_full;
    sturdy::rate_limiter limiter(o, fake.timing());
    call(limiter, ok, prompt_of(100));
    CHECK(call(limiter, ok, prompt_of(1000)).has_value());  // waits 10 s for the 100 to come back
    CHECK(limiter.available(rate_limit_kind::tokens) == Approx(-400));
    CHECK(call(limiter, ok, prompt_of(100)).has_value());  // pays off the debt first: 50 s
    CHECK(fake.sleeps() == std::vector<sturdy::clock::duration>{seconds(10), seconds(50)});
}

TEST_CASE("rate limiter: reports waits and refusals", "[rate_limiter]") {
    sturdy::testing::fake_clock fake;
    sturdy::rate_limiter_options o;
    o.name = "observed";
    o.requests = 60;
    o.max_wait = milliseconds(1500);
    std::vector<std::string> seen;
    o.on_rate_limited = [&](const sturdy::rate_limited_event& e) {
        seen.push_back(std::string(e.limiter) + " " + std::string(to_string(e.limit)) + " " +
                       std::to_string(duration_cast<milliseconds>(e.wait).count()) + (e.rejected ? " rejected" : " waited"));
    };
    sturdy::rate_limiter limiter(o, fake.timing());
    for (int i = 0; i < 60; ++i) call(limiter);
    CHECK(seen.empty());
    call(limiter);
    CHECK(seen == std::vector<std::string>{"observed requests 1000 waited"});
    call(limiter, ok, [&](sturdy::call_context& ctx) { ctx.deadline = sturdy::deadline::after(fake.timing().clock, milliseconds(10)); });
    CHECK(seen.back() == "observed requests 1000 rejected");
}

TEST_CASE("rate limiter: copies share their buckets", "[rate_limiter]") {
    sturdy::testing::fake_clock fake(0, sturdy::testing::fake_clock::mode::manual);
    auto limiter = per_minute(fake, 60);
    const sturdy::rate_limiter copy = limiter;
    for (int i = 0; i < 10; ++i) call(copy);
    CHECK(limiter.available(rate_limit_kind::requests) == Approx(50));
}

TEST_CASE("rate limiter: works inside compose() and a dynamic_pipeline", "[rate_limiter]") {
    sturdy::testing::fake_clock fake;
    sturdy::rate_limiter_options o;
    o.requests = 2;
    o.max_wait = sturdy::clock::duration::zero();
    sturdy::rate_limiter limiter(o, fake.timing());
    auto check_two_then_refused = [&](const auto& policy) {
        CHECK(call(policy).has_value());
        CHECK(call(policy).has_value());
        auto refused = call(policy);
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error().kind() == error_kind::rate_limited);  // and not retried
    };
    SECTION("compose") {
        check_two_then_refused(sturdy::compose(sturdy::retry_policy(sturdy::retry_options{}, fake.timing()), limiter));
    }
    SECTION("dynamic_pipeline") {
        check_two_then_refused(sturdy::dynamic_pipeline{sturdy::retry_policy(sturdy::retry_options{}, fake.timing()), limiter});
    }
    CHECK(fake.sleeps().empty());
}

TEST_CASE("rate limiter: inside a retry, every attempt is counted", "[rate_limiter]") {
    sturdy::testing::fake_clock fake(0, sturdy::testing::fake_clock::mode::manual);
    sturdy::retry_options r;
    r.backoff = sturdy::backoff::constant(sturdy::clock::duration::zero());
    auto limiter = per_minute(fake, 60);
    int attempts = 0;
    call(sturdy::compose(sturdy::retry_policy(r, fake.timing()), limiter), [&](sturdy::call_context&) -> sturdy::result<int> {
        if (++attempts < 3) return sturdy::error(error_kind::internal_server, "scripted", 500);
        return 42;
    });
    CHECK(attempts == 3);
    CHECK(limiter.available(rate_limit_kind::requests) == Approx(57));
}

TEST_CASE("rate limiter: nonsense settings are refused", "[rate_limiter]") {
    auto make = [](auto change) {
        sturdy::rate_limiter_options o;
        change(o);
        return sturdy::rate_limiter(o);
    };
    CHECK_THROWS_AS(make([](auto& o) { o.requests = -1; }), std::invalid_argument);
    CHECK_THROWS_AS(make([](auto& o) { o.period = sturdy::clock::duration::zero(); }), std::invalid_argument);
    CHECK_THROWS_AS(make([](auto& o) { o.token_burst = 0; }), std::invalid_argument);
    CHECK_NOTHROW(make([](auto& o) { o.requests = 1; }));
}

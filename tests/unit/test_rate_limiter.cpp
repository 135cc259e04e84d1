#include <sturdy/dynamic_pipeline.hpp>
#include <sturdy/executor.hpp>
#include <sturdy/pipeline.hpp>
#include <sturdy/rate_limiter.hpp>
#include <sturdy/result.hpp>
#include <sturdy/retry.hpp>
#include <sturdy/testing/fake_clock.hpp>

#include "support/catch.hpp"
#include "support/observed.hpp"
#include "support/rerunning_store.hpp"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
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

/// `requests` per `period`, nothing else.
sturdy::rate_limiter requests_per(sturdy::testing::fake_clock& fake, std::int64_t requests,
                                  sturdy::clock::duration period) {
    sturdy::rate_limiter_options o;
    o.name = "test-limiter";
    o.requests = requests;
    o.period = period;
    return sturdy::rate_limiter(o, fake.timing());
}

/// An attempt that notes when it started, on the fake clock, and then does `then`.
attempt_fn noting_start(sturdy::testing::fake_clock& fake, std::vector<sturdy::clock::time_point>& starts,
                        attempt_fn then = ok) {
    return [&fake, &starts, then](sturdy::call_context& ctx) {
        starts.push_back(fake.now());
        return then(ctx);
    };
}

std::function<void(sturdy::call_context&)> prompt_of(std::int64_t tokens, std::optional<std::int64_t> max_output = 0) {
    return [=](sturdy::call_context& ctx) {
        ctx.estimated_prompt_tokens = tokens;
        ctx.max_output_tokens = max_output;
    };
}

attempt_fn reporting_usage(std::int64_t total) {
    return [total](sturdy::call_context&) -> sturdy::result<int> {
        sturdy::reply_observation seen;
        seen.usage = sturdy::token_usage{};
        seen.usage->total_tokens = total;
        return sturdy_test::observed<int>(42, seen);
    };
}

attempt_fn replying_with(std::vector<std::pair<std::string, std::string>> headers) {
    return [headers](sturdy::call_context&) -> sturdy::result<int> {
        sturdy::reply_observation seen;
        for (const auto& h : headers) seen.headers.add(h.first, h.second);
        return sturdy_test::observed<int>(42, seen);
    };
}

/// The most starts a window of `period` holds; `starts` in order. A fullest window can be taken to
/// begin at a start, so those are the windows checked.
std::size_t fullest_window(const std::vector<sturdy::clock::time_point>& starts, sturdy::clock::duration period) {
    std::size_t most = 0;
    for (std::size_t first = 0, end = 0; first < starts.size(); ++first) {
        while (end < starts.size() && starts[end] < starts[first] + period) ++end;
        most = std::max(most, end - first);
    }
    return most;
}

/// The most tokens the calls started in a window of `period` hold, likewise.
std::int64_t heaviest_window(const std::vector<sturdy::clock::time_point>& starts,
                             const std::vector<std::int64_t>& amounts, sturdy::clock::duration period) {
    std::int64_t most = 0, held = 0;
    for (std::size_t first = 0, end = 0; first < starts.size(); held -= amounts[first], ++first) {
        for (; end < starts.size() && starts[end] < starts[first] + period; ++end) held += amounts[end];
        most = std::max(most, held);
    }
    return most;
}

bool mentions(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("rate limiter: requests = N lets N start at once, and the next exactly one period later", "[rate_limiter]") {
    sturdy::testing::fake_clock fake;
    auto limiter = per_minute(fake, 60);
    std::vector<sturdy::clock::time_point> starts;
    for (int i = 0; i < 60; ++i) REQUIRE(call(limiter, noting_start(fake, starts)).has_value());
    CHECK(fake.sleeps().empty());
    REQUIRE(call(limiter, noting_start(fake, starts)).has_value());
    CHECK(fake.sleeps() == std::vector<sturdy::clock::duration>{minutes(1)});
    CHECK(starts.back() == sturdy::clock::time_point{} + minutes(1));
    // The first 60 left the window together: 59 more go at once, and the next waits a period again.
    for (int i = 0; i < 59; ++i) call(limiter, noting_start(fake, starts));
    CHECK(fake.sleeps().size() == 1);
    call(limiter, noting_start(fake, starts));
    CHECK(fake.sleeps() == std::vector<sturdy::clock::duration>{minutes(1), minutes(1)});
    CHECK(starts.back() == sturdy::clock::time_point{} + minutes(2));
}

TEST_CASE("rate limiter: requests = 20 per 2 s never lets more than 20 start in one 2-second window",
          "[rate_limiter]") {
    // The reported case: a bucket full at the start and refilling meanwhile let 40 through.
    sturdy::testing::fake_clock fake;
    auto limiter = requests_per(fake, 20, seconds(2));
    std::vector<sturdy::clock::time_point> starts;
    for (int i = 0; i < 40; ++i) {
        REQUIRE(call(limiter, noting_start(fake, starts)).has_value());
        fake.advance(milliseconds(50));  // 40 calls asked for within 2 s
    }
    CHECK(fullest_window(starts, seconds(2)) == 20);
    CHECK(starts[20] == starts[0] + seconds(2));
}

TEST_CASE("rate limiter: a start leaves the window exactly one period after it", "[rate_limiter]") {
    sturdy::testing::fake_clock fake(0, sturdy::testing::fake_clock::mode::manual);
    auto limiter = per_minute(fake, 60);
    for (int i = 0; i < 30; ++i) call(limiter);
    fake.advance(seconds(20));
    for (int i = 0; i < 30; ++i) call(limiter);
    CHECK(limiter.available(rate_limit_kind::requests) == 0);
    fake.advance(seconds(40) - nanoseconds(1));  // nothing comes back before a start's period is over
    CHECK(limiter.available(rate_limit_kind::requests) == 0);
    fake.advance(nanoseconds(1));
    CHECK(limiter.available(rate_limit_kind::requests) == 30);
    fake.advance(seconds(20));
    CHECK(limiter.available(rate_limit_kind::requests) == 60);
    fake.advance(minutes(10));
    CHECK(limiter.available(rate_limit_kind::requests) == 60);
}

TEST_CASE("rate limiter: a burst adds starts to the window: at most requests + request_burst in any period",
          "[rate_limiter]") {
    sturdy::testing::fake_clock fake;
    sturdy::rate_limiter_options o;
    o.requests = 60;
    o.request_burst = 5;
    sturdy::rate_limiter limiter(o, fake.timing());
    std::vector<sturdy::clock::time_point> starts;
    for (int i = 0; i < 200; ++i) call(limiter, noting_start(fake, starts));
    CHECK(starts[64] == sturdy::clock::time_point{});
    CHECK(starts[65] == sturdy::clock::time_point{} + minutes(1));
    CHECK(fullest_window(starts, minutes(1)) == 65);
}

TEST_CASE("rate limiter: a configured period sets the window", "[rate_limiter]") {
    sturdy::testing::fake_clock fake;
    auto limiter = requests_per(fake, 10, seconds(1));
    std::vector<sturdy::clock::time_point> starts;
    for (int i = 0; i < 25; ++i) call(limiter, noting_start(fake, starts));
    CHECK(fake.sleeps() == std::vector<sturdy::clock::duration>{seconds(1), seconds(1)});
    CHECK(starts[9] == sturdy::clock::time_point{});
    CHECK(starts[10] == sturdy::clock::time_point{} + seconds(1));
    CHECK(starts[24] == sturdy::clock::time_point{} + seconds(2));
}

TEST_CASE("rate limiter: calls asked for faster than the cap start as soon as the window allows, never sooner",
          "[rate_limiter]") {
    sturdy::testing::fake_clock fake;
    constexpr std::size_t cap = 5;
    const auto period = seconds(1);
    auto limiter = requests_per(fake, cap, period);
    std::vector<sturdy::clock::time_point> asked, starts;
    for (int i = 0; i < 200; ++i) {
        // Every 150 ms, faster than the 200 ms the cap allows on average.
        const auto planned = sturdy::clock::time_point{} + milliseconds(150) * i;
        if (fake.now() < planned) fake.advance(planned - fake.now());
        asked.push_back(fake.now());
        REQUIRE(call(limiter, noting_start(fake, starts)).has_value());
    }
    CHECK(fullest_window(starts, period) == cap);
    for (std::size_t k = 0; k < starts.size(); ++k) {
        const auto due = k < cap ? asked[k] : std::max(asked[k], starts[k - cap] + period);
        CHECK(starts[k] == due);
    }
}

TEST_CASE("rate limiter: over a long random schedule, no window holds more than the cap", "[rate_limiter]") {
    sturdy::testing::fake_clock fake;
    constexpr std::size_t cap = 7;
    const auto period = seconds(1);
    auto limiter = requests_per(fake, cap, period);
    std::mt19937_64 random(20240611);
    std::vector<sturdy::clock::time_point> asked, starts;
    for (int i = 0; i < 3000; ++i) {
        // Runs of calls at the same moment, and gaps from none to 400 ms.
        if (random() % 3 != 0) fake.advance(microseconds(static_cast<std::int64_t>(random() % 400000)));
        asked.push_back(fake.now());
        REQUIRE(call(limiter, noting_start(fake, starts)).has_value());
    }
    CHECK(fullest_window(starts, period) == cap);
    // And no call waited longer than the cap required: the (k - cap)-th start had to leave first.
    std::size_t exact = 0;
    for (std::size_t k = 0; k < starts.size(); ++k)
        if (starts[k] == (k < cap ? asked[k] : std::max(asked[k], starts[k - cap] + period))) ++exact;
    CHECK(exact == starts.size());
}

TEST_CASE("rate limiter: over a random schedule with usage corrections, no window holds more tokens than the cap",
          "[rate_limiter]") {
    sturdy::testing::fake_clock fake;
    constexpr std::int64_t cap = 1000;
    const auto period = seconds(1);
    sturdy::rate_limiter_options o;
    o.tokens = cap;
    o.period = period;
    sturdy::rate_limiter limiter(o, fake.timing());
    std::mt19937_64 random(7);
    std::vector<sturdy::clock::time_point> asked, starts;
    std::vector<std::int64_t> estimates, kept;  // kept: what the window holds once the reply is in
    for (int i = 0; i < 2000; ++i) {
        if (random() % 2) fake.advance(microseconds(static_cast<std::int64_t>(random() % 300000)));
        const auto estimate = 1 + static_cast<std::int64_t>(random() % 300);
        const auto kind = random() % 3;  // no usage, less than estimated, or more
        const std::int64_t used = kind == 0 ? estimate
                                  : kind == 1
                                      ? static_cast<std::int64_t>(random() % static_cast<std::uint64_t>(estimate))
                                      : estimate + 40;
        asked.push_back(fake.now());
        estimates.push_back(estimate);
        kept.push_back(used);
        REQUIRE(call(limiter, noting_start(fake, starts, kind == 0 ? attempt_fn(ok) : reporting_usage(used)),
                     prompt_of(estimate))
                    .has_value());
    }
    // A reservation is checked against what the window held then: the replies before it corrected.
    for (std::size_t k = 0; k < starts.size(); ++k) {
        auto held_at = [&](sturdy::clock::time_point t) {
            std::int64_t held = 0;
            for (std::size_t j = 0; j < k; ++j)
                if (starts[j] + period > t) held += kept[j];
            return held;
        };
        CHECK(held_at(starts[k]) + estimates[k] <= cap);
        // Not sooner than needed either: at the start asked for, or when a departure made room.
        bool due = starts[k] == asked[k];
        for (std::size_t j = 0; j < k && !due; ++j) due = starts[j] + period == starts[k];
        CHECK(due);
        if (starts[k] > asked[k]) CHECK(held_at(starts[k] - nanoseconds(1)) + estimates[k] > cap);
    }
    // Replies never above their estimate keep every window within the cap.
    std::vector<std::int64_t> at_most_estimated(kept);
    for (std::size_t k = 0; k < kept.size(); ++k) at_most_estimated[k] = std::min(kept[k], estimates[k]);
    CHECK(heaviest_window(starts, at_most_estimated, period) <= cap);
}

TEST_CASE("rate limiter: a reply using fewer tokens than estimated frees that part of its window", "[rate_limiter]") {
    sturdy::testing::fake_clock fake;
    auto limiter = per_minute(fake, 0, 1000);
    call(limiter, reporting_usage(300), prompt_of(800));
    CHECK(call(limiter, ok, prompt_of(700)).has_value());  // the 500 not used went back at once
    CHECK(fake.sleeps().empty());
    call(limiter, ok, prompt_of(1));
    CHECK(fake.sleeps() == std::vector<sturdy::clock::duration>{minutes(1)});
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
    SECTION("a refund never makes more room than the cap") {
        call(limiter, reporting_usage(0), prompt_of(100, 50));
        CHECK(limiter.available(rate_limit_kind::tokens) == Approx(1000));
    }
}

TEST_CASE("rate limiter: a wait longer than max_wait is refused at once, saying when there is room", "[rate_limiter]") {
    sturdy::testing::fake_clock fake;
    sturdy::rate_limiter_options o;
    o.name = "batch";
    o.requests = 60;
    o.tokens = 600;
    o.max_wait = milliseconds(500);
    sturdy::rate_limiter limiter(o, fake.timing());
    int attempts = 0;
    auto counted = [&](sturdy::call_context&) -> sturdy::result<int> { return ++attempts; };

    SECTION("requests") {
        for (int i = 0; i < 60; ++i) call(limiter, counted);
        auto refused = call(limiter, counted);
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error().kind() == error_kind::rate_limited);
        CHECK(refused.error().retry_after() == minutes(1));  // when the first 60 leave the window
        CHECK(refused.error().code() == sturdy::error_codes::requests_limit);
        CHECK(mentions(refused.error().message(), "requests"));
        CHECK(mentions(refused.error().message(), "'batch'"));
        CHECK(attempts == 60);
    }
    SECTION("tokens") {
        call(limiter, counted, prompt_of(550));
        fake.advance(seconds(15));
        auto refused = call(limiter, counted, prompt_of(100));  // 50 left until the 550 leave, 45 s on
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error().kind() == error_kind::rate_limited);
        CHECK(refused.error().retry_after() == seconds(45));
        CHECK(refused.error().code() == sturdy::error_codes::tokens_limit);
        CHECK(mentions(refused.error().message(), "tokens"));
        CHECK(mentions(refused.error().message(), "'batch'"));
        CHECK(attempts == 1);
    }
    CHECK(fake.sleeps().empty());
}

TEST_CASE("rate limiter: a refused call takes no room", "[rate_limiter]") {
    sturdy::testing::fake_clock fake(0, sturdy::testing::fake_clock::mode::manual);
    sturdy::rate_limiter_options o;
    o.requests = 60;
    o.max_wait = sturdy::clock::duration::zero();
    sturdy::rate_limiter limiter(o, fake.timing());
    for (int i = 0; i < 60; ++i) call(limiter);
    for (int i = 0; i < 5; ++i) CHECK_FALSE(call(limiter).has_value());
    CHECK(limiter.available(rate_limit_kind::requests) == Approx(0));
    fake.advance(minutes(1) - nanoseconds(1));
    CHECK_FALSE(call(limiter).has_value());
    fake.advance(nanoseconds(1));
    for (int i = 0; i < 60; ++i) CHECK(call(limiter).has_value());
}

TEST_CASE("rate limiter: never waits past the call's deadline", "[rate_limiter]") {
    sturdy::testing::fake_clock fake;
    auto limiter = per_minute(fake, 60);
    for (int i = 0; i < 60; ++i) call(limiter);
    auto with_deadline = [&](sturdy::clock::duration d) {
        return [&fake, d](sturdy::call_context& ctx) { ctx.deadline = sturdy::deadline::after(fake.timing().clock, d); };
    };
    auto refused = call(limiter, ok, with_deadline(seconds(59)));
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().kind() == error_kind::rate_limited);
    CHECK(refused.error().retry_after() == minutes(1));
    CHECK(mentions(refused.error().message(), "deadline"));
    CHECK_FALSE(call(limiter, ok, with_deadline(minutes(1))).has_value());  // it would start as the deadline passes
    CHECK(fake.sleeps().empty());
    CHECK(call(limiter, ok, with_deadline(seconds(61))).has_value());
    CHECK(fake.sleeps() == std::vector<sturdy::clock::duration>{minutes(1)});
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
    auto limiter = requests_per(fake, 1, seconds(1));  // each caller waits for the one before to leave
    call(limiter);
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

TEST_CASE("rate limiter: the server's remaining count lowers the room left", "[rate_limiter]") {
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
    // What the server counts beyond our own starts comes back at our rate, one request a second.
    fake.advance(seconds(10));
    CHECK(limiter.available(rate_limit_kind::requests) == Approx(14));
    fake.advance(minutes(1));
    CHECK(limiter.available(rate_limit_kind::requests) == Approx(60));
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

TEST_CASE("rate limiter: a 429 takes the room left in the budget it names and holds calls until its Retry-After",
          "[rate_limiter]") {
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

TEST_CASE("rate limiter: a request larger than the token cap is refused by default", "[rate_limiter]") {
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

TEST_CASE("rate limiter: alone_when_full lets an oversized request start once the window holds nothing else",
          "[rate_limiter]") {
    sturdy::testing::fake_clock fake;
    sturdy::rate_limiter_options o;
    o.tokens = 600;
    o.max_wait = minutes(5);
    o.oversized = sturdy::oversized_request::alone_when_full;
    sturdy::rate_limiter limiter(o, fake.timing());
    std::vector<sturdy::clock::time_point> starts;
    call(limiter, noting_start(fake, starts), prompt_of(100));
    fake.advance(seconds(20));
    CHECK(call(limiter, noting_start(fake, starts), prompt_of(1000)).has_value());  // waits 40 s for the 100 to leave
    CHECK(limiter.available(rate_limit_kind::tokens) == Approx(-400));
    CHECK(call(limiter, noting_start(fake, starts), prompt_of(100)).has_value());  // waits for the 1000 to leave
    CHECK(fake.sleeps() == std::vector<sturdy::clock::duration>{seconds(40), minutes(1)});
    CHECK(starts == std::vector<sturdy::clock::time_point>{sturdy::clock::time_point{},
                                                           sturdy::clock::time_point{} + minutes(1),
                                                           sturdy::clock::time_point{} + minutes(2)});
}

TEST_CASE("rate limiter: reports waits and refusals", "[rate_limiter]") {
    sturdy::testing::fake_clock fake;
    sturdy::rate_limiter_options o;
    o.name = "observed";
    o.requests = 1;
    o.period = seconds(1);
    o.max_wait = milliseconds(1500);
    std::vector<std::string> seen;
    o.on_rate_limited = [&](const sturdy::rate_limited_event& e) {
        seen.push_back(std::string(e.limiter) + " " + std::string(to_string(e.limit)) + " " +
                       std::to_string(duration_cast<milliseconds>(e.wait).count()) + (e.rejected ? " rejected" : " waited"));
    };
    sturdy::rate_limiter limiter(o, fake.timing());
    call(limiter);
    CHECK(seen.empty());
    call(limiter);
    CHECK(seen == std::vector<std::string>{"observed requests 1000 waited"});
    call(limiter, ok, [&](sturdy::call_context& ctx) { ctx.deadline = sturdy::deadline::after(fake.timing().clock, milliseconds(10)); });
    CHECK(seen.back() == "observed requests 1000 rejected");
}

namespace {

/// A call's event sink that writes each rate_limited_event it hears, with its source, into a log
/// the hooks write into too.
class limited_sink : public sturdy::event_sink {
public:
    explicit limited_sink(std::vector<std::string>& log) : log_(log) {}
    void on_rate_limited(const sturdy::event_source& from, const sturdy::rate_limited_event& e) override {
        CHECK(e.limiter == from.policy);
        log_.push_back("sink " + std::string(from.policy) + "@" + std::string(from.route) +
                       (e.rejected ? " refused" : " waits"));
    }

private:
    std::vector<std::string>& log_;
};

}  // namespace

TEST_CASE(
    "rate limiter: waits and refusals reach the hook, then the call's sink, named after the limiter and its route",
    "[rate_limiter][events]") {
    sturdy::testing::fake_clock fake;
    std::vector<std::string> log;
    limited_sink sink(log);
    sturdy::rate_limiter_options o;
    o.requests = 1;
    o.period = seconds(1);
    o.max_wait = milliseconds(1500);
    o.on_rate_limited = [&](const sturdy::rate_limited_event& e) {
        log.push_back(e.rejected ? "hook refused" : "hook waits");
    };
    const auto on_route = [&](const char* route) {
        return [&sink, &fake, route](sturdy::call_context& ctx) {
            ctx.events = &sink;
            if (*route) ctx.route = std::make_shared<const sturdy::route>(sturdy::route{route, nullptr, ""});
            ctx.deadline = sturdy::deadline::after(fake.timing().clock, seconds(10));
        };
    };
    const auto past_deadline = [&](sturdy::call_context& ctx) {
        on_route("")(ctx);
        ctx.deadline = sturdy::deadline::after(fake.timing().clock, milliseconds(10));
    };

    SECTION("unnamed: named by its kind") {
        sturdy::rate_limiter limiter(o, fake.timing());
        CHECK(limiter.options().name == "rate_limiter");
        call(limiter, ok, on_route("primary"));  // room: no event
        call(limiter, ok, on_route("primary"));
        call(limiter, ok, past_deadline);
        CHECK(log == std::vector<std::string>{"hook waits", "sink rate_limiter@primary waits", "hook refused",
                                              "sink rate_limiter@ refused"});
    }
    SECTION("named, and heard by the sink alone") {
        o.name = "rpm";
        o.on_rate_limited = nullptr;
        sturdy::rate_limiter limiter(o, fake.timing());
        call(limiter, ok, on_route("backup"));
        call(limiter, ok, on_route("backup"));
        auto refused = call(limiter, ok, past_deadline);
        CHECK(mentions(refused.error().message(), "rate limiter 'rpm'"));
        CHECK(log == std::vector<std::string>{"sink rpm@backup waits", "sink rpm@ refused"});
    }
}

TEST_CASE("rate limiter: should_handle has no meaning for a limiter, so a set one is refused", "[rate_limiter]") {
    sturdy::rate_limiter_options o;
    CHECK_FALSE(o.should_handle);
    CHECK_NOTHROW(sturdy::rate_limiter(o));
    o.should_handle = sturdy::any_error;
    CHECK_THROWS_WITH(sturdy::rate_limiter(o), Catch::Matchers::StartsWith("sturdy::rate_limiter: should_handle "));
}

TEST_CASE("rate limiter: copies share their windows", "[rate_limiter]") {
    sturdy::testing::fake_clock fake(0, sturdy::testing::fake_clock::mode::manual);
    auto limiter = per_minute(fake, 60);
    const sturdy::rate_limiter copy = limiter;
    for (int i = 0; i < 10; ++i) call(copy);
    CHECK(limiter.available(rate_limit_kind::requests) == Approx(50));
}

// ---- windows in a store (sturdy/state_store.hpp) ----

namespace {

using window_store = sturdy::state_store<sturdy::rate_limiter_state>;

sturdy::rate_limiter stored_limiter(sturdy::testing::fake_clock& fake, std::string name,
                                    std::shared_ptr<window_store> store, sturdy::rate_limiter_options o = {}) {
    o.name = std::move(name);
    o.store = std::move(store);
    if (o.requests == 0) o.requests = 3;
    o.max_wait = seconds(0);
    return sturdy::rate_limiter(o, fake.timing());
}

}  // namespace

TEST_CASE("rate limiter: limiters of one name on one store share their windows: one's starts fill the other's",
          "[rate_limiter][store]") {
    sturdy::testing::fake_clock fake(0, sturdy::testing::fake_clock::mode::manual);
    auto store = std::make_shared<sturdy::local_store<sturdy::rate_limiter_state>>();
    const auto a = stored_limiter(fake, "openai", store);  // as two clients would hold them
    const auto b = stored_limiter(fake, "openai", store);
    CHECK(call(a).has_value());
    CHECK(call(a).has_value());
    CHECK(b.available(rate_limit_kind::requests) == Approx(1));
    CHECK(call(b).has_value());
    const auto refused = call(a);  // the window is full, whoever filled it
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().kind() == error_kind::rate_limited);
    CHECK(refused.error().retry_after() == minutes(1));
    fake.advance(minutes(1));
    CHECK(call(b).has_value());
    CHECK(a.available(rate_limit_kind::requests) == Approx(2));
}

TEST_CASE("rate limiter: different names on one store keep apart windows; one name without a store is no bond",
          "[rate_limiter][store]") {
    sturdy::testing::fake_clock fake(0, sturdy::testing::fake_clock::mode::manual);
    auto store = std::make_shared<sturdy::local_store<sturdy::rate_limiter_state>>();
    const auto openai = stored_limiter(fake, "openai", store);
    const auto kimi = stored_limiter(fake, "kimi", store);
    const auto alone = stored_limiter(fake, "openai", nullptr);
    for (int i = 0; i < 3; ++i) CHECK(call(openai).has_value());
    CHECK_FALSE(call(openai).has_value());
    CHECK(kimi.available(rate_limit_kind::requests) == Approx(3));
    CHECK(alone.available(rate_limit_kind::requests) == Approx(3));
    CHECK(call(kimi).has_value());
    CHECK(call(alone).has_value());
}

namespace {

/// What calls through a limiter on `store` met, as text: when each started, or why it was refused,
/// and the room left; through waits, usage corrections, the server's headers and a 429.
std::vector<std::string> limiter_story(const std::shared_ptr<window_store>& store) {
    sturdy::testing::fake_clock fake;
    sturdy::rate_limiter_options o;
    o.name = "story";
    o.store = store;
    o.requests = 4;
    o.tokens = 1000;
    o.period = seconds(10);
    o.max_wait = seconds(15);
    o.adapt_to_server = true;
    const sturdy::rate_limiter limiter(o, fake.timing());
    const auto start = fake.now();
    std::vector<std::string> story;
    const auto attempt = [&](attempt_fn then) -> attempt_fn {
        return [&fake, &story, start, then](sturdy::call_context& ctx) {
            story.push_back("start at " + std::to_string(duration_cast<milliseconds>(fake.now() - start).count()));
            return then(ctx);
        };
    };
    const auto note = [&](const sturdy::result<int>& r) {
        story.push_back((r ? std::string("ok") : std::string(r.error().what())) + "; room " +
                        std::to_string(limiter.available(rate_limit_kind::requests)) + " / " +
                        std::to_string(limiter.available(rate_limit_kind::tokens)));
    };
    const attempt_fn too_many = [](sturdy::call_context&) -> sturdy::result<int> {
        sturdy::error_details d;
        d.status = 429;
        d.type = "tokens";
        d.retry_after = seconds(3);
        return sturdy::error(error_kind::rate_limit, std::move(d));
    };
    for (int round = 0; round < 2; ++round) {
        for (int i = 0; i < 6; ++i) note(call(limiter, attempt(reporting_usage(100 + 10 * i)), prompt_of(150)));
        note(call(limiter, attempt(ok), prompt_of(2000)));  // larger than the window: refused
        note(call(
            limiter,
            attempt(replying_with({{"x-ratelimit-remaining-requests", "0"}, {"x-ratelimit-reset-requests", "2s"}})),
            prompt_of(10)));
        note(call(limiter, attempt(too_many), prompt_of(10)));
        note(call(limiter, attempt(ok), prompt_of(10)));
        fake.advance(seconds(4));
    }
    return story;
}

}  // namespace

TEST_CASE("rate limiter: a store that runs each change twice, as an optimistic one may, gets the same decisions",
          "[rate_limiter][store]") {
    const auto once = limiter_story(std::make_shared<sturdy::local_store<sturdy::rate_limiter_state>>());
    const auto twice = limiter_story(std::make_shared<sturdy_test::rerunning_store<sturdy::rate_limiter_state>>());
    CHECK(twice == once);
    // The story is one that could go wrong: calls wait for room, are refused, and the server's
    // word holds them back.
    CHECK(std::count(once.begin(), once.end(), "start at 10000") == 3);
    CHECK(std::count(once.begin(), once.end(), "start at 12500") == 1);
    CHECK(std::count(once.begin(), once.end(), "rate_limit [429]: (no message); room 0.000000 / 0.000000") == 2);
    CHECK(std::count_if(once.begin(), once.end(),
                        [](const std::string& line) { return mentions(line, "refused the call"); }) == 2);
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

TEST_CASE("rate limiter: nonsense settings are refused, naming the field", "[rate_limiter]") {
    using opts = sturdy::rate_limiter_options;
    const auto refusal = [](const std::function<void(opts&)>& change) {
        opts o;
        change(o);
        try {
            sturdy::rate_limiter limiter(o);
        } catch (const std::invalid_argument& e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    constexpr auto most = std::numeric_limits<std::int64_t>::max();
    const std::vector<std::pair<std::string, std::function<void(opts&)>>> nonsense = {
        {"requests", [](opts& o) { o.requests = -1; }},
        {"tokens", [](opts& o) { o.tokens = -1; }},
        {"period", [](opts& o) { o.period = sturdy::clock::duration::zero(); }},
        {"request_burst",
         [](opts& o) {
             o.requests = 10;
             o.request_burst = -1;
         }},
        {"token_burst",
         [](opts& o) {
             o.tokens = 10;
             o.token_burst = -1;
         }},
        {"request_burst", [](opts& o) { o.request_burst = 5; }},  // a burst of no limit
        {"token_burst", [](opts& o) { o.token_burst = 5; }},
        {"request_burst",
         [](opts& o) {
             o.requests = most;
             o.request_burst = 1;
         }},
        {"token_burst",
         [](opts& o) {
             o.tokens = most;
             o.token_burst = 1;
         }},
        {"expected_completion_tokens", [](opts& o) { o.expected_completion_tokens = -1; }},
        {"max_wait", [](opts& o) { o.max_wait = -nanoseconds(1); }},
        {"should_handle", [](opts& o) { o.should_handle = sturdy::any_error; }},
    };
    for (const auto& [field, change] : nonsense) {
        const auto what = refusal(change);
        INFO(field << ": " << what);
        CHECK(mentions(what, "sturdy::rate_limiter: " + field + " "));
    }
    CHECK(refusal([](opts& o) { o.requests = 1; }) == "accepted");
    CHECK(refusal([](opts& o) {
              o.tokens = 10;
              o.token_burst = 0;
              o.expected_completion_tokens = 0;
              o.max_wait = sturdy::clock::duration::zero();
          }) == "accepted");
}

TEST_CASE("rate limiter: the decision core decides from the time it is given, and never sleeps", "[rate_limiter]") {
    sturdy::rate_limiter_options o;
    o.requests = 2;
    o.period = seconds(10);
    o.max_wait = seconds(30);
    const sturdy::detail::rate_limit_core core(o);
    auto state = core.fresh_state();
    const sturdy::clock::time_point t0{};
    using sturdy::detail::rate_refusal;

    const auto first = core.reserve(state, {}, t0);
    REQUIRE(first.admitted);
    CHECK(first.wait == seconds(0));
    REQUIRE(core.reserve(state, {}, t0 + seconds(3)).admitted);
    const auto third = core.reserve(state, {}, t0 + seconds(4));  // due when the first leaves
    REQUIRE(third.admitted);
    CHECK(third.admitted->start == t0 + seconds(10));
    CHECK(third.wait == seconds(6));
    CHECK(third.limit == rate_limit_kind::requests);
    const auto fourth = core.reserve(state, {}, t0 + seconds(4));  // after the third, when the second leaves
    REQUIRE(fourth.admitted);
    CHECK(fourth.admitted->start == t0 + seconds(13));
    CHECK(state.requests.room(t0 + seconds(4)) == -2);

    sturdy::detail::rate_request hurried;
    hurried.time_left = seconds(1);
    const auto refused = core.reserve(state, hurried, t0 + seconds(4));  // its turn: at 20 s
    CHECK_FALSE(refused.admitted);
    CHECK(refused.refused == rate_refusal::past_deadline);
    CHECK(refused.wait == seconds(16));
    CHECK(state.requests.room(t0 + seconds(4)) == -2);  // a refusal reserves nothing

    core.give_back(state, *fourth.admitted, t0 + seconds(5));
    CHECK(state.requests.room(t0 + seconds(5)) == -1);
    const auto patient = core.reserve(state, {}, t0 + seconds(5));
    REQUIRE(patient.admitted);
    CHECK(patient.admitted->start == t0 + seconds(13));  // never before an earlier reservation
}

TEST_CASE("rate limiter: a call keeps its place behind a waiting one, even when it needs no tokens", "[rate_limiter]") {
    sturdy::rate_limiter_options o;
    o.requests = 10;
    o.tokens = 1000;
    const sturdy::detail::rate_limit_core core(o);
    auto state = core.fresh_state();
    const sturdy::clock::time_point t0{};
    sturdy::detail::rate_request big, none;
    big.tokens = 800;
    REQUIRE(core.reserve(state, big, t0).admitted);
    const auto waiting = core.reserve(state, big, t0 + seconds(1));  // until the first leaves
    REQUIRE(waiting.admitted);
    CHECK(waiting.admitted->start == t0 + minutes(1));
    CHECK(waiting.limit == rate_limit_kind::tokens);
    const auto later = core.reserve(state, none, t0 + seconds(2));  // the requests window has room, but not before it
    REQUIRE(later.admitted);
    CHECK(later.admitted->start == t0 + minutes(1));
}

TEST_CASE("rate limiter: a window's log stays within its bound, and merging never makes more room", "[rate_limiter]") {
    using sturdy::detail::rate_window;
    constexpr std::int64_t cap = 1000000;
    const auto period = seconds(10);
    rate_window window(cap, 0, period);
    const sturdy::clock::time_point t0{};
    std::vector<sturdy::clock::time_point> starts;
    for (int i = 0; i < 5000; ++i) {
        const auto at = t0 + milliseconds(i);
        REQUIRE(window.earliest_start(3, at) == at);
        window.reserve(3, at, at);
        starts.push_back(at);
    }
    CHECK(window.entries() <= rate_window::max_entries);
    const auto last = starts.back();
    SECTION("merged entries leave no sooner than their starts would") {
        for (auto t = last; t < last + period; t += milliseconds(7)) {
            std::int64_t exact = 0;
            for (auto s : starts)
                if (s + period > t) exact += 3;
            REQUIRE(window.room(t) <= static_cast<double>(cap - exact));
        }
        CHECK(window.room(last + period) == cap);  // and nothing stays past the last departure
    }
    SECTION("each reservation can still be given back, from whichever entry holds it") {
        for (auto s : starts) window.adjust(s, -3, last);
        CHECK(window.room(last) == cap);
        CHECK(window.entries() == 0);
    }
}

namespace {

/// An executor that never sleeps nor starts a thread: it records each wait asked of it, moves the
/// fake clock on by it and runs `then` at once (then(false) when the token has already fired).
class recording_executor final : public sturdy::executor {
public:
    explicit recording_executor(sturdy::testing::fake_clock& fake) : fake_(fake) {}
    void after(const sturdy::clock& on, sturdy::clock::duration d, const sturdy::cancellation_token& cancel,
               std::function<void(bool)> then) override {
        waits.push_back(d);
        on_fake_clock = on_fake_clock && &on == static_cast<const sturdy::clock*>(&fake_);
        if (cancel.cancelled()) return then(false);
        fake_.advance(d);
        then(true);
    }
    bool spawn(std::function<void()>) override { return false; }
    std::vector<sturdy::clock::duration> waits;
    bool on_fake_clock = true;  ///< every wait was asked on the limiter's clock

private:
    sturdy::testing::fake_clock& fake_;
};

}  // namespace

TEST_CASE("rate limiter: waits through its call's executor, exactly as long as the core decided, never on its own",
          "[rate_limiter][executor]") {
    sturdy::testing::fake_clock fake;
    auto limiter = per_minute(fake, 0, 1000);
    recording_executor exec(fake);
    const auto via_exec = [&](std::int64_t tokens, const sturdy::cancellation_token& cancel = {}) {
        return [&exec, tokens, cancel](sturdy::call_context& ctx) {
            prompt_of(tokens)(ctx);
            ctx.cancel = cancel;
            ctx.exec = &exec;
        };
    };
    const auto t0 = fake.now();

    // The same calls, decided by a core of the same settings.
    const sturdy::detail::rate_limit_core core(limiter.options());
    auto state = core.fresh_state();
    const auto first = core.reserve(state, {800, std::nullopt}, t0);
    sturdy::reply_observation replied;
    replied.usage = sturdy::token_usage{};
    replied.usage->total_tokens = 900;
    core.settle(state, *first.admitted, &replied, nullptr, t0);
    const auto second = core.reserve(state, {500, std::nullopt}, t0 + seconds(10));
    REQUIRE(second.admitted);
    CHECK(second.wait == seconds(50));  // the 900 used leave the window a minute after t0

    REQUIRE(call(limiter, reporting_usage(900), via_exec(800)).has_value());
    CHECK(exec.waits.empty());
    fake.advance(seconds(10));
    std::vector<sturdy::clock::time_point> starts;
    REQUIRE(call(limiter, noting_start(fake, starts), via_exec(500)).has_value());
    CHECK(exec.waits == std::vector<sturdy::clock::duration>{second.wait});
    CHECK(exec.on_fake_clock);
    REQUIRE(starts.size() == 1);
    CHECK(starts[0] == t0 + seconds(60));
    CHECK(fake.sleeps().empty());  // the limiter never slept on the clock itself

    // A call cancelled during its wait gives its reservation back.
    CHECK(limiter.available(rate_limit_kind::tokens) == Approx(500));
    sturdy::cancellation_source stop;
    stop.cancel();
    bool attempted = false;
    auto cancelled = call(
        limiter, [&](sturdy::call_context&) -> sturdy::result<int> { return attempted = true; },
        via_exec(600, stop.token()));
    REQUIRE_FALSE(cancelled.has_value());
    CHECK(cancelled.error().kind() == error_kind::cancelled);
    CHECK_FALSE(attempted);
    CHECK(exec.waits == std::vector<sturdy::clock::duration>{seconds(50), seconds(60)});
    CHECK(limiter.available(rate_limit_kind::tokens) == Approx(500));
    CHECK(fake.sleeps().empty());
}

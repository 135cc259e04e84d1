#include <sturdy/result.hpp>
#include <sturdy/retry.hpp>
#include <sturdy/retry_budget.hpp>
#include <sturdy/testing/fake_clock.hpp>

#include "support/catch.hpp"
#include "support/rerunning_store.hpp"

#include <cmath>
#include <deque>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono;
using sturdy::error;
using sturdy::error_kind;
using Catch::Matchers::StartsWith;

namespace {

error http_error(int status, std::string code = "", std::optional<milliseconds> retry_after = std::nullopt,
                 std::optional<bool> should_retry = std::nullopt) {
    sturdy::error_details d;
    d.status = status;
    d.message = "scripted";
    d.code = std::move(code);
    d.retry_after = retry_after;
    d.should_retry = should_retry;
    return error(sturdy::kind_for_status(status), std::move(d));
}

// Runs `policy` over scripted outcomes (errors first, then success) and returns what it did.
struct run_result {
    sturdy::result<int> outcome;
    int attempts;
    std::vector<sturdy::clock::duration> sleeps;
};

template <class Policy>
run_result run(const Policy& policy, sturdy::testing::fake_clock& fake, std::deque<error> failures,
               sturdy::call_context* given = nullptr) {
    sturdy::call_state state;
    sturdy::call_context local(sturdy::operation::chat, "m", state);
    sturdy::call_context& ctx = given ? *given : local;
    int attempts = 0;
    auto outcome = policy.execute(ctx, [&](sturdy::call_context&) -> sturdy::result<int> {
        ++attempts;
        if (failures.empty()) return 42;
        auto e = failures.front();
        failures.pop_front();
        return e;
    });
    return {outcome, attempts, fake.sleeps()};
}

double seconds_of(sturdy::clock::duration d) { return duration<double>(d).count(); }

// The message of the std::invalid_argument that `make` throws, or "accepted".
template <class Make>
std::string refusal_of(Make make) {
    try {
        make();
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "accepted";
}

}  // namespace

TEST_CASE("retry: the official schedule, exactly, in virtual time", "[retry]") {
    sturdy::testing::fake_clock fake(7);
    sturdy::retry_policy retry(sturdy::retry_options{}, fake.timing());
    auto r = run(retry, fake, {http_error(500), http_error(503)});
    CHECK(r.outcome.has_value());
    CHECK(r.attempts == 3);
    REQUIRE(r.sleeps.size() == 2);
    // Replay the same random draws: delay n = min(0.5 * 2^n, 8) * (1 - 0.25 * U).
    sturdy::testing::fake_clock same_seed(7);
    for (int n = 0; n < 2; ++n) {
        const double expected = std::min(0.5 * std::pow(2.0, n), 8.0) * (1 - 0.25 * same_seed.next_unit());
        CHECK(seconds_of(r.sleeps[static_cast<std::size_t>(n)]) == Approx(expected).margin(1e-9));  // whole nanoseconds
    }
    CHECK(seconds_of(r.sleeps[0]) > 0.375);
    CHECK(seconds_of(r.sleeps[0]) <= 0.5);
    CHECK(seconds_of(r.sleeps[1]) > 0.75);
    CHECK(seconds_of(r.sleeps[1]) <= 1.0);
}

TEST_CASE("retry: two retries by default, then the last error", "[retry]") {
    sturdy::testing::fake_clock fake;
    auto r = run(sturdy::retry_policy(sturdy::retry_options{}, fake.timing()), fake, {http_error(500), http_error(502), http_error(503), http_error(504)});
    REQUIRE_FALSE(r.outcome.has_value());
    CHECK(r.outcome.error().status() == 503);
    CHECK(r.attempts == 3);
}

TEST_CASE("retry: the backoff is capped at 8 seconds", "[retry]") {
    sturdy::testing::fake_clock fake(1);
    sturdy::retry_options opts;
    opts.max_retries = 8;
    auto r = run(sturdy::retry_policy(opts, fake.timing()), fake, std::deque<error>(8, http_error(500)));
    REQUIRE(r.sleeps.size() == 8);
    for (auto s : r.sleeps) CHECK(seconds_of(s) <= 8.0);
    CHECK(seconds_of(r.sleeps.back()) > 6.0);
}

TEST_CASE("retry: which errors are retried", "[retry]") {
    auto attempts_for = [](error e) {
        sturdy::testing::fake_clock fake;
        return run(sturdy::retry_policy(sturdy::retry_options{}, fake.timing()), fake, {e}).attempts;
    };
    CHECK(attempts_for(http_error(408)) == 2);
    CHECK(attempts_for(http_error(409)) == 2);
    CHECK(attempts_for(http_error(429)) == 2);
    CHECK(attempts_for(http_error(500)) == 2);
    CHECK(attempts_for(error(error_kind::connection, "refused")) == 2);
    CHECK(attempts_for(error(error_kind::timeout, "slow")) == 2);
    CHECK(attempts_for(error(error_kind::stream_truncated, "cut")) == 2);
    CHECK(attempts_for(http_error(400)) == 1);
    CHECK(attempts_for(http_error(401)) == 1);
    CHECK(attempts_for(http_error(403)) == 1);
    CHECK(attempts_for(http_error(404)) == 1);
    CHECK(attempts_for(http_error(422)) == 1);
    CHECK(attempts_for(error(error_kind::invalid_response, "garbled")) == 1);
    CHECK(attempts_for(error(error_kind::cancelled, "stop")) == 1);
    // Improvement over the official contract: exhausted quota does not come back in a second.
    CHECK(attempts_for(http_error(429, "insufficient_quota")) == 1);
}

TEST_CASE("retry: x-should-retry overrides the status rules", "[retry]") {
    sturdy::testing::fake_clock fake;
    sturdy::retry_policy retry(sturdy::retry_options{}, fake.timing());
    CHECK(run(retry, fake, {http_error(500, "", std::nullopt, false)}).attempts == 1);
    CHECK(run(retry, fake, {http_error(400, "", std::nullopt, true)}).attempts == 2);
}

TEST_CASE("retry: a Retry-After in (0, 60] s is waited as asked", "[retry]") {
    sturdy::testing::fake_clock fake;
    auto r = run(sturdy::retry_policy(sturdy::retry_options{}, fake.timing()), fake,
                 {http_error(429, "", milliseconds(2500)), http_error(429, "", seconds(60))});
    REQUIRE(r.sleeps.size() == 2);
    CHECK(r.sleeps[0] == milliseconds(2500));
    CHECK(r.sleeps[1] == seconds(60));
}

TEST_CASE("retry: a Retry-After of zero, negative or over the limit falls back to the backoff", "[retry]") {
    for (auto asked : {milliseconds(0), milliseconds(-5000), milliseconds(61000)}) {
        sturdy::testing::fake_clock fake(3);
        auto r = run(sturdy::retry_policy(sturdy::retry_options{}, fake.timing()), fake, {http_error(429, "", asked)});
        REQUIRE(r.sleeps.size() == 1);
        CHECK(seconds_of(r.sleeps[0]) <= 0.5);
        CHECK(seconds_of(r.sleeps[0]) > 0.375);
    }
}

TEST_CASE("retry: a long Retry-After can be capped or refused", "[retry]") {
    sturdy::testing::fake_clock fake;
    sturdy::retry_options cap;
    cap.retry_after_limit = seconds(10);
    cap.beyond_limit = sturdy::long_retry_after::wait_limit;
    auto capped = run(sturdy::retry_policy(cap, fake.timing()), fake, {http_error(429, "", seconds(300))});
    REQUIRE(capped.sleeps.size() == 1);
    CHECK(capped.sleeps[0] == seconds(10));

    sturdy::testing::fake_clock fake2;
    sturdy::retry_options refuse;
    refuse.beyond_limit = sturdy::long_retry_after::give_up;
    auto refused = run(sturdy::retry_policy(refuse, fake2.timing()), fake2, {http_error(429, "", seconds(300))});
    CHECK(refused.attempts == 1);
    CHECK(refused.sleeps.empty());
}

TEST_CASE("retry: a committed stream is never replayed", "[retry]") {
    sturdy::testing::fake_clock fake;
    sturdy::call_state state;
    sturdy::call_context ctx(sturdy::operation::chat_stream, "m", state);
    sturdy::retry_policy retry(sturdy::retry_options{}, fake.timing());
    int attempts = 0;
    auto outcome = retry.execute(ctx, [&](sturdy::call_context&) -> sturdy::result<int> {
        REQUIRE(state.try_commit(++attempts));  // content reached the caller, then the stream was cut
        return error(error_kind::stream_truncated, "cut");
    });
    CHECK(attempts == 1);
    CHECK(outcome.error().kind() == error_kind::stream_truncated);  // the cut itself, not a refused replay
    CHECK(fake.sleeps().empty());
}

TEST_CASE("retry: never sleeps past the call's deadline", "[retry]") {
    sturdy::testing::fake_clock fake(5);
    auto timing = fake.timing();
    sturdy::call_state state;
    sturdy::call_context ctx(sturdy::operation::chat, "m", state);
    ctx.deadline = sturdy::deadline::after(timing.clock, milliseconds(300));
    auto r = run(sturdy::retry_policy(sturdy::retry_options{}, timing), fake, {http_error(500)}, &ctx);
    CHECK(r.attempts == 1);        // the first backoff (>= 375 ms) does not fit in 300 ms
    CHECK(r.sleeps.empty());
    CHECK(r.outcome.error().status() == 500);  // the last error, not a timeout
}

TEST_CASE("retry: max_elapsed bounds when a retry may start", "[retry]") {
    sturdy::testing::fake_clock fake;
    sturdy::retry_options opts;
    opts.max_retries = 10;
    opts.backoff = sturdy::backoff::constant(seconds(1));
    opts.max_elapsed = milliseconds(2500);
    auto r = run(sturdy::retry_policy(opts, fake.timing()), fake, std::deque<error>(10, http_error(500)));
    CHECK(r.attempts == 3);  // waits at 0 s and 1 s fit; the third would end at 3 s
}

TEST_CASE("retry: counts per error kind replace the default rules", "[retry]") {
    sturdy::testing::fake_clock fake;
    sturdy::retry_options opts;
    opts.retries_for(error_kind::rate_limit, 4).retries_for(error_kind::bad_request, 1).retries_for(error_kind::internal_server, 0);
    sturdy::retry_policy retry(opts, fake.timing());
    CHECK(run(retry, fake, std::deque<error>(9, http_error(429))).attempts == 5);
    CHECK(run(retry, fake, std::deque<error>(9, http_error(400))).attempts == 2);
    CHECK(run(retry, fake, std::deque<error>(9, http_error(500))).attempts == 1);
    CHECK(run(retry, fake, std::deque<error>(9, error(error_kind::timeout, "t"))).attempts == 3);
}

TEST_CASE("retry: a custom should_handle and min/max delays", "[retry]") {
    sturdy::testing::fake_clock fake;
    sturdy::retry_options opts;
    opts.should_handle = [](const error& e) { return e.status() == 404; };
    opts.backoff = sturdy::backoff::exponential(milliseconds(10), seconds(100));
    opts.min_delay = milliseconds(50);
    opts.max_delay = milliseconds(60);
    auto r = run(sturdy::retry_policy(opts, fake.timing()), fake, {http_error(404), http_error(500)});
    CHECK(r.attempts == 2);
    REQUIRE(r.sleeps.size() == 1);
    CHECK(r.sleeps[0] == milliseconds(50));  // the backoff's 10 ms, raised to the minimum
    opts.max_delay = milliseconds(30);       // below the minimum: refused, not clamped in silence
    CHECK_THROWS_AS(sturdy::retry_policy(opts), std::invalid_argument);
}

TEST_CASE("retry: on_retry reports each retry before its wait", "[retry]") {
    sturdy::testing::fake_clock fake;
    std::vector<std::pair<int, bool>> seen;
    sturdy::retry_options opts;
    opts.on_retry = [&](const sturdy::retry_event& e) {
        CHECK(e.model == "m");
        CHECK(e.op == sturdy::operation::chat);
        seen.emplace_back(e.retry, e.from_retry_after);
        CHECK(e.cause.status() >= 429);
    };
    run(sturdy::retry_policy(opts, fake.timing()), fake, {http_error(429, "", seconds(1)), http_error(500)});
    CHECK(seen == std::vector<std::pair<int, bool>>{{1, true}, {2, false}});
}

TEST_CASE("retry: an empty should_handle retries what is_transient accepts", "[retry]") {
    sturdy::testing::fake_clock fake;
    sturdy::retry_options opts;
    CHECK_FALSE(opts.should_handle);  // empty by default: the documented default, not a copy of it
    sturdy::retry_policy retry(opts, fake.timing());
    CHECK(run(retry, fake, {http_error(503), http_error(503)}).attempts == 3);
    CHECK(run(retry, fake, {http_error(400)}).attempts == 1);
    CHECK(run(retry, fake, {http_error(429, "insufficient_quota")}).attempts == 1);
}

TEST_CASE("retry: a count per kind applies whatever should_handle says", "[retry]") {
    sturdy::testing::fake_clock fake;
    sturdy::retry_options opts;
    opts.should_handle = [](const error&) { return false; };
    opts.retries_for(error_kind::bad_request, 2);
    sturdy::retry_policy retry(opts, fake.timing());
    CHECK(run(retry, fake, std::deque<error>(5, http_error(400))).attempts == 3);
    CHECK(run(retry, fake, std::deque<error>(5, http_error(503))).attempts == 1);
}

namespace {

// Notes each retry event a sink receives, and the hook's, in the order they come.
struct retry_log final : sturdy::event_sink {
    std::vector<std::string> lines;
    void on_retry(const sturdy::event_source& from, const sturdy::retry_event& e) override {
        lines.push_back("sink " + std::string(from.policy) + "@" + std::string(from.route) + " " +
                        std::to_string(e.retry) + " " + std::to_string(e.cause.status()));
    }
    std::function<void(const sturdy::retry_event&)> hook() {
        return [this](const sturdy::retry_event& e) { lines.push_back("hook " + std::to_string(e.retry)); };
    }
};

}  // namespace

TEST_CASE("retry: each retry goes to the hook, then to the call's event sink, named after the policy",
          "[retry][events]") {
    sturdy::testing::fake_clock fake;
    retry_log log;
    sturdy::call_state state;
    sturdy::call_context ctx(sturdy::operation::chat, "m", state);
    ctx.events = &log;

    SECTION("the default name, off any route") {
        sturdy::retry_options opts;
        opts.on_retry = log.hook();
        sturdy::retry_policy retry(opts, fake.timing());
        CHECK(retry.options().name == "retry");
        run(retry, fake, {http_error(500), http_error(503)}, &ctx);
        CHECK(log.lines == std::vector<std::string>{"hook 1", "sink retry@ 1 500", "hook 2", "sink retry@ 2 503"});
    }
    SECTION("a custom name, on a route") {
        sturdy::retry_options opts;
        opts.name = "patient";
        ctx.route = std::make_shared<const sturdy::route>(sturdy::route{"backup", nullptr, "m-backup"});
        run(sturdy::retry_policy(opts, fake.timing()), fake, {http_error(502)}, &ctx);
        CHECK(log.lines == std::vector<std::string>{"sink patient@backup 1 502"});  // no hook: the sink alone
    }
    SECTION("no retry, no event") {
        run(sturdy::retry_policy(sturdy::retry_options{}, fake.timing()), fake, {http_error(400)}, &ctx);
        CHECK(log.lines.empty());
    }
}

TEST_CASE("retry: options that make no sense are refused, naming the field", "[retry]") {
    auto refusal = [](const sturdy::retry_options& o) { return refusal_of([&] { sturdy::retry_policy retry(o); }); };
    sturdy::retry_options o;
    CHECK(refusal(o) == "accepted");
    o.max_retries = -1;
    CHECK_THAT(refusal(o), StartsWith("sturdy::retry_policy: max_retries "));
    o = {};
    o.retries_for(error_kind::rate_limit, -1);
    CHECK_THAT(refusal(o), StartsWith("sturdy::retry_policy: max_retries_by_kind "));
    o = {};
    o.min_delay = milliseconds(-1);
    CHECK_THAT(refusal(o), StartsWith("sturdy::retry_policy: min_delay "));
    o = {};
    o.min_delay = seconds(2);
    o.max_delay = seconds(1);
    CHECK_THAT(refusal(o), StartsWith("sturdy::retry_policy: max_delay "));
    o = {};
    o.retry_after_limit = milliseconds(-1);
    CHECK_THAT(refusal(o), StartsWith("sturdy::retry_policy: retry_after_limit "));
    o = {};
    o.max_elapsed = seconds(0);
    CHECK_THAT(refusal(o), StartsWith("sturdy::retry_policy: max_elapsed "));
    o.max_elapsed = milliseconds(1);
    CHECK(refusal(o) == "accepted");
}

TEST_CASE("retry: cancelling during the wait ends the call at once", "[retry]") {
    sturdy::testing::fake_clock fake(0, sturdy::testing::fake_clock::mode::manual);
    sturdy::cancellation_source stop;
    sturdy::call_state state;
    sturdy::call_context ctx(sturdy::operation::chat, "m", state);
    ctx.cancel = stop.token();
    run_result r{error(error_kind::connection, "unset"), 0, {}};
    std::thread caller([&] { r = run(sturdy::retry_policy(sturdy::retry_options{}, fake.timing()), fake, {http_error(500)}, &ctx); });
    fake.wait_for_sleepers(1);
    stop.cancel();
    caller.join();
    REQUIRE_FALSE(r.outcome.has_value());
    CHECK(r.outcome.error().kind() == error_kind::cancelled);
    CHECK(r.attempts == 1);
}

TEST_CASE("retry budget: retries stop when the budget is spent, and come back as the window slides", "[retry][budget]") {
    sturdy::testing::fake_clock fake;
    sturdy::retry_budget_options bopts;
    bopts.ratio = 0.5;
    bopts.min_retries = 1;
    bopts.window = seconds(10);
    auto budget = std::make_shared<sturdy::retry_budget>(bopts, fake.timing());
    sturdy::retry_options opts;
    opts.budget = budget;
    opts.backoff = sturdy::backoff::constant(milliseconds(1));
    sturdy::retry_policy retry(opts, fake.timing());

    // An outage: every call fails. Allowance = 1 + 0.5 * calls.
    int total_attempts = 0;
    for (int call = 0; call < 10; ++call) total_attempts += run(retry, fake, std::deque<error>(5, http_error(503))).attempts;
    // Without a budget: 30 attempts. With it, retries stay within 1 + 0.5 * 10 = 6.
    CHECK(total_attempts == 10 + 6);
    CHECK(budget->refused() >= 4);
    fake.advance(seconds(11));
    CHECK(budget->available() == Approx(1.0));
}

TEST_CASE("retry budget: options that make no sense are refused, naming the field", "[retry][budget]") {
    auto refusal = [](const sturdy::retry_budget_options& o) {
        return refusal_of([&] { sturdy::retry_budget budget(o); });
    };
    CHECK(refusal({}) == "accepted");
    CHECK(refusal({0.0, 0, milliseconds(1)}) == "accepted");  // no retries beyond a quiet minimum: sound
    for (double ratio : {-0.1, std::nan(""), HUGE_VAL})
        CHECK_THAT(refusal({ratio, 10, seconds(10)}), StartsWith("sturdy::retry_budget: ratio "));
    CHECK_THAT(refusal({0.2, -1, seconds(10)}), StartsWith("sturdy::retry_budget: min_retries "));
    CHECK_THAT(refusal({0.2, 10, seconds(0)}), StartsWith("sturdy::retry_budget: window "));
}

namespace {

using budget_store = sturdy::state_store<sturdy::retry_budget_state>;

sturdy::retry_budget stored_budget(sturdy::testing::fake_clock& fake, std::string name,
                                   std::shared_ptr<budget_store> store) {
    sturdy::retry_budget_options o;
    o.ratio = 0.5;
    o.min_retries = 1;
    o.window = seconds(10);
    o.name = std::move(name);
    o.store = std::move(store);
    return sturdy::retry_budget(o, fake.timing());
}

}  // namespace

TEST_CASE("retry budget: budgets of one name on one store share their windows: one's calls count in the other's",
          "[retry][budget][store]") {
    sturdy::testing::fake_clock fake;
    auto store = std::make_shared<sturdy::local_store<sturdy::retry_budget_state>>();
    auto a = stored_budget(fake, "backend", store);  // as two clients would hold them
    auto b = stored_budget(fake, "backend", store);
    for (int i = 0; i < 4; ++i) a.record_call();
    CHECK(b.available() == Approx(3.0));  // 1 + 0.5 * 4, from a's calls
    CHECK(b.try_spend());
    CHECK(b.try_spend());
    CHECK(a.available() == Approx(1.0));
    CHECK(a.try_spend());
    CHECK_FALSE(b.try_spend());
    CHECK(b.refused() == 1);
    CHECK(a.refused() == 0);  // what a budget refused is its own count
    fake.advance(seconds(11));
    CHECK(a.available() == Approx(1.0));
}

TEST_CASE("retry budget: different names on one store keep apart windows; one name without a store is no bond",
          "[retry][budget][store]") {
    sturdy::testing::fake_clock fake;
    auto store = std::make_shared<sturdy::local_store<sturdy::retry_budget_state>>();
    auto a = stored_budget(fake, "backend", store);
    auto other = stored_budget(fake, "other", store);
    auto alone = stored_budget(fake, "backend", nullptr);
    for (int i = 0; i < 4; ++i) a.record_call();
    CHECK(a.try_spend());
    CHECK(a.available() == Approx(2.0));
    CHECK(other.available() == Approx(1.0));
    CHECK(alone.available() == Approx(1.0));
    CHECK(sturdy::retry_budget().options().name == "retry_budget");  // an empty name is the kind
}

TEST_CASE("retry budget: a store that runs each change twice, as an optimistic one may, gets the same decisions",
          "[retry][budget][store]") {
    const auto story = [](std::shared_ptr<budget_store> store) {
        sturdy::testing::fake_clock fake;
        auto budget = stored_budget(fake, "backend", std::move(store));
        std::string spent;
        for (int step = 0; step < 40; ++step) {
            if (step % 3 == 0) budget.record_call();
            spent += budget.try_spend() ? '+' : '-';
            fake.advance(milliseconds(700));
        }
        return spent + " refused " + std::to_string(budget.refused());
    };
    const auto once = story(std::make_shared<sturdy::local_store<sturdy::retry_budget_state>>());
    const auto twice = story(std::make_shared<sturdy_test::rerunning_store<sturdy::retry_budget_state>>());
    CHECK(twice == once);
    CHECK(once == "+--+-----+-----+--+----+-----+--+-----+- refused 31");
}

TEST_CASE("backoff: each strategy's formula", "[backoff]") {
    struct fixed_random : sturdy::random_source {
        double value;
        explicit fixed_random(double v) : value(v) {}
        double next_unit() override { return value; }
    } half(0.5);
    auto delays = [&](const sturdy::backoff& b, int n) {
        sturdy::backoff_state s;
        std::vector<double> out;
        for (int i = 0; i < n; ++i) out.push_back(duration<double, std::milli>(b.next(s, half)).count());
        return out;
    };
    using V = std::vector<double>;
    CHECK(delays(sturdy::backoff::constant(milliseconds(100)), 3) == V{100, 100, 100});
    CHECK(delays(sturdy::backoff::linear(milliseconds(100), milliseconds(250)), 4) == V{100, 200, 250, 250});
    CHECK(delays(sturdy::backoff::exponential(milliseconds(100), milliseconds(500)), 4) == V{100, 200, 400, 500});
    CHECK(delays(sturdy::backoff::full_jitter(milliseconds(100), seconds(10)), 3) == V{50, 100, 200});
    CHECK(delays(sturdy::backoff::equal_jitter(milliseconds(100), seconds(10)), 3) == V{75, 150, 300});
    // Decorrelated: uniform in [base, 3 * previous): with U = 0.5, 100 + (300-100)/2 = 200, then 100 + (600-100)/2 = 350.
    CHECK(delays(sturdy::backoff::decorrelated_jitter(milliseconds(100), seconds(10)), 2) == V{200, 350});
    CHECK(delays(sturdy::backoff::official(), 3) == V{437.5, 875, 1750});
    // Polly's v2: with U = 0.5 the first delay is 2^0.5 * tanh(sqrt(2)) / 1.4 of the median.
    auto v2 = delays(sturdy::backoff::decorrelated_jitter_v2(milliseconds(1000), seconds(60)), 3);
    CHECK(v2[0] == Approx(std::pow(2, 0.5) * std::tanh(std::sqrt(2.0)) / 1.4 * 1000).epsilon(1e-9));
    CHECK(v2[1] > v2[0]);
    CHECK(v2[2] > v2[1]);
}

TEST_CASE("backoff: decorrelated jitter v2 centres its first delay near the median asked for", "[backoff]") {
    sturdy::testing::fake_clock fake(11);
    auto b = sturdy::backoff::decorrelated_jitter_v2(milliseconds(1000), seconds(60));
    std::vector<double> first;
    for (int i = 0; i < 2001; ++i) {
        sturdy::backoff_state s;
        first.push_back(duration<double>(b.next(s, fake)).count());
    }
    std::nth_element(first.begin(), first.begin() + 1000, first.end());
    // Polly documents the target as approximate: its formula puts the median at 2^0.5 * tanh(sqrt 2) / 1.4.
    CHECK(first[1000] == Approx(0.897).margin(0.03));
    CHECK(*std::max_element(first.begin(), first.end()) <= 60.0);
}

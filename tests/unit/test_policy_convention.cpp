// The rules every policy follows alike: what an empty predicate means.
#include <sturdy/bulkhead.hpp>
#include <sturdy/circuit_breaker.hpp>
#include <sturdy/fallback.hpp>
#include <sturdy/hedging.hpp>
#include <sturdy/rate_limiter.hpp>
#include <sturdy/retry.hpp>
#include <sturdy/traffic_split.hpp>
#include <sturdy/testing/fake_clock.hpp>

#include "support/catch.hpp"

#include <stdexcept>
#include <string>
#include <vector>

using sturdy::error;
using sturdy::error_kind;

namespace {

error http_error(int status) {
    sturdy::error_details d;
    d.status = status;
    d.message = "scripted";
    return error(sturdy::kind_for_status(status), std::move(d));
}

/// Runs one call through `policy`: each attempt fails with the next of `failures`, then succeeds.
template <class Policy>
int attempts_made(const Policy& policy, std::vector<error> failures) {
    sturdy::call_state state;
    sturdy::call_context ctx(sturdy::operation::chat, "m", state);
    std::size_t next = 0;
    (void)policy.execute(ctx, [&](sturdy::call_context&) -> sturdy::result<int> {
        if (next < failures.size()) return failures[next++];
        return 1;
    });
    return static_cast<int>(next);
}

}  // namespace

TEST_CASE("convention: an empty predicate means the policy's documented default", "[policy]") {
    sturdy::testing::fake_clock fake(11);

    sturdy::retry_options r;
    r.should_handle = nullptr;  // retry_on = nullptr used to throw std::bad_function_call
    sturdy::retry_policy retry(r, fake.timing());
    CHECK(attempts_made(retry, {http_error(503), http_error(503), http_error(503)}) == 3);  // transient: 2 retries
    CHECK(attempts_made(retry, {http_error(400), http_error(400)}) == 1);                   // not transient

    sturdy::circuit_breaker_options b;
    b.should_handle = nullptr;  // failure_on, before it, used to mean "every error"
    b.ignore_on = nullptr;   // used to mean "none"
    b.failure_threshold = 2;
    sturdy::circuit_breaker breaker(b, fake.timing());
    for (int i = 0; i < 3; ++i) attempts_made(breaker, {http_error(400)});  // a client error: healthy
    for (int i = 0; i < 3; ++i) attempts_made(breaker, {error(error_kind::cancelled, "gave up")});  // ignored
    CHECK(breaker.state() == sturdy::circuit_state::closed);
    CHECK(breaker.stats().ignored == 3);
    for (int i = 0; i < 2; ++i) attempts_made(breaker, {http_error(503)});
    CHECK(breaker.state() == sturdy::circuit_state::open);

    sturdy::fallback_options f;
    f.should_handle = nullptr;
    sturdy::fallback_policy chain({sturdy::fallback_target("a", "m-a"), sturdy::fallback_target("b", "m-b")}, f,
                                  fake.timing());
    CHECK(attempts_made(chain, {http_error(503)}) == 1);  // moved on: the second target answered
    CHECK(chain.stats_for("b")->successes == 1);

    sturdy::rollback_guard g;
    CHECK_FALSE(g.should_handle);  // empty: the split's, whose own empty one counts every failure
    sturdy::traffic_split_options s;
    CHECK_FALSE(s.should_handle);
}

TEST_CASE("convention: options that make no sense are refused at construction, naming the field", "[policy]") {
    auto refused = [](auto make, const std::string& field) {
        try {
            make();
        } catch (const std::invalid_argument& e) {
            INFO(e.what());
            CHECK(std::string(e.what()).find(field) != std::string::npos);
            return true;
        }
        return false;
    };
    sturdy::circuit_breaker_options b;
    b.failure_threshold = 0;  // used to be clamped to 1 in silence
    CHECK(refused([&] { sturdy::circuit_breaker breaker(b); }, "failure_threshold"));
    b = {};
    b.failure_ratio = 1.5;
    CHECK(refused([&] { sturdy::circuit_breaker breaker(b); }, "failure_ratio"));
    sturdy::hedging_options h;
    h.percentile = 1.5;  // used to be clamped to 1
    CHECK(refused([&] { sturdy::hedging_policy hedging(h); }, "percentile"));
    h = {};
    h.delay = std::chrono::milliseconds(-1);
    CHECK(refused([&] { sturdy::hedging_policy hedging(h); }, "delay"));
    sturdy::retry_options r;
    r.max_retries = -1;
    CHECK(refused([&] { sturdy::retry_policy retry(r); }, "max_retries"));
    sturdy::rate_limiter_options l;
    l.period = std::chrono::seconds(0);
    CHECK(refused([&] { sturdy::rate_limiter limiter(l); }, "period"));
    CHECK(refused([&] { sturdy::bulkhead bulkhead(0); }, "max_concurrent"));
    // And sound options are not refused.
    CHECK_FALSE(refused([&] { sturdy::circuit_breaker breaker; }, ""));
}

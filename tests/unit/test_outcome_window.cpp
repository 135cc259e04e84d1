#include <sturdy/detail/outcome_window.hpp>

#include "support/catch.hpp"

using namespace std::chrono;
using sturdy::detail::outcome_window;

namespace {
sturdy::clock::time_point at(milliseconds t) { return sturdy::clock::time_point(t); }
}  // namespace

TEST_CASE("outcome window: counts calls, failures and slow calls", "[window]") {
    outcome_window w(seconds(10));
    for (int i = 0; i < 8; ++i) w.record(at(milliseconds(100 * i)), i % 4 == 0, std::nullopt, i == 7);
    auto t = w.sums(at(milliseconds(900)));
    CHECK(t.calls == 8);
    CHECK(t.failures == 2);
    CHECK(t.slow == 1);
    CHECK(t.failure_ratio() == Approx(0.25));
    CHECK(t.slow_ratio() == Approx(0.125));
}

TEST_CASE("outcome window: old slices expire as time moves on", "[window]") {
    outcome_window w(seconds(10), 10);  // 1 s slices
    w.record(at(milliseconds(0)), true);
    w.record(at(milliseconds(5500)), false);
    CHECK(w.sums(at(milliseconds(9999))).calls == 2);
    CHECK(w.sums(at(milliseconds(10000))).calls == 1);  // the slice of [0, 1 s) has left the window
    CHECK(w.sums(at(milliseconds(16000))).calls == 0);
    // A slice reused for a new period starts from zero.
    w.record(at(milliseconds(20500)), true);
    CHECK(w.sums(at(milliseconds(20600))).calls == 1);
}

TEST_CASE("outcome window: nearest-rank percentiles, within 1% and never below", "[window]") {
    outcome_window w(seconds(60));
    for (int i = 1; i <= 100; ++i) w.record(at(milliseconds(i)), false, milliseconds(i));
    auto p50 = w.percentile(at(milliseconds(100)), 0.5);
    auto p99 = w.percentile(at(milliseconds(100)), 0.99);
    REQUIRE(p50);
    REQUIRE(p99);
    CHECK(*p50 >= milliseconds(50));  // the 50th of 100
    CHECK(*p50 <= microseconds(50500));
    CHECK(*p99 >= milliseconds(99));  // the 99th
    CHECK(*p99 <= microseconds(99990));
    CHECK(w.percentile(at(milliseconds(100)), 1.0) == milliseconds(100));  // the slowest, exactly
    CHECK(w.timed(at(milliseconds(100))) == 100);
    CHECK_FALSE(outcome_window(seconds(1)).percentile(at(milliseconds(0)), 0.5).has_value());
}

TEST_CASE("outcome window: latencies leave the percentile with their slice", "[window]") {
    outcome_window w(seconds(10), 10);  // 1 s slices
    for (int i = 0; i < 5; ++i) w.record(at(milliseconds(0)), false, seconds(3));
    for (int i = 0; i < 95; ++i) w.record(at(milliseconds(5000)), false, milliseconds(200));
    w.record(at(milliseconds(5000)), false);  // a call without a latency counts, but not here
    CHECK(w.percentile(at(milliseconds(9999)), 0.99) == seconds(3));
    CHECK(w.timed(at(milliseconds(9999))) == 100);
    CHECK(w.percentile(at(milliseconds(10000)), 0.99) == milliseconds(200));  // the 3 s ones are out
    CHECK(w.timed(at(milliseconds(10000))) == 95);
    CHECK(w.sums(at(milliseconds(10000))).calls == 96);
    w.clear();
    CHECK_FALSE(w.percentile(at(milliseconds(10000)), 0.99).has_value());
}

TEST_CASE("outcome window: extreme latencies are read exactly at the ends", "[window]") {
    outcome_window w(seconds(60));
    w.record(at(milliseconds(0)), false, microseconds(1));
    w.record(at(milliseconds(0)), false, hours(30));  // beyond the histogram's last bucket
    CHECK(w.percentile(at(milliseconds(0)), 0.0) == microseconds(1));
    CHECK(w.percentile(at(milliseconds(0)), 0.5) == microseconds(1));
    CHECK(w.percentile(at(milliseconds(0)), 1.0) == hours(30));
}

// The latency histogram: nearest-rank percentiles within 1% of the sorted samples' value, never
// below it, over latencies from a microsecond to hours.
#include <sturdy/detail/latency_histogram.hpp>

#include "support/catch.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

using namespace std::chrono;
using sturdy::detail::latency_histogram;

namespace {

// The nearest-rank percentile of `samples`: the ceil(p * n)-th smallest.
microseconds exact_percentile(std::vector<microseconds> samples, double p) {
    std::sort(samples.begin(), samples.end());
    const auto rank = latency_histogram::nearest_rank(p, samples.size());
    return samples[rank - 1];
}

}  // namespace

TEST_CASE("latency histogram: every percentile within 1% above the sorted samples' value", "[histogram]") {
    std::mt19937_64 random(42);
    // Log-uniform from 1 us to about 10 minutes, the range of an API's latencies and more.
    std::uniform_real_distribution<double> exponent(0, std::log(6e8));
    std::vector<microseconds> samples;
    latency_histogram h;
    for (int i = 0; i < 20000; ++i) {
        samples.push_back(microseconds(static_cast<std::int64_t>(std::exp(exponent(random)))));
        h.add(samples.back());
    }
    CHECK(h.count() == 20000);
    for (double p : {0.0, 0.001, 0.1, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0}) {
        INFO("p = " << p);
        const auto exact = exact_percentile(samples, p);
        const auto read = *h.percentile(p);
        CHECK(read >= exact);
        CHECK(static_cast<double>(read.count()) <= static_cast<double>(exact.count()) * 1.01);
    }
}

TEST_CASE("latency histogram: each bucket's largest value is at most 1% above any value it holds", "[histogram]") {
    for (std::int64_t us = 0; us < 3000000; us += (us < 200000 ? 1 : 97)) {
        const auto largest = latency_histogram::largest_in()[latency_histogram::bucket_of(us)];
        REQUIRE(largest >= us);
        REQUIRE(static_cast<double>(largest) <= static_cast<double>(us) * 1.01);
    }
    CHECK(latency_histogram::largest_in().size() < 2200);  // the memory the header states
}

TEST_CASE("latency histogram: exact below 100 us and at the largest latency", "[histogram]") {
    latency_histogram h;
    for (int us = 1; us <= 99; ++us) h.add(microseconds(us));
    CHECK(h.percentile(0.5) == microseconds(50));
    CHECK(h.percentile(0.0) == microseconds(1));
    h.add(milliseconds(754));
    CHECK(h.percentile(1.0) == milliseconds(754));  // a bucket's largest value is capped at the largest seen
    h.add(microseconds(-5));                        // a clock that went back: counted as 0
    CHECK(h.percentile(0.0) == microseconds(0));
    CHECK(h.count() == 101);
}

TEST_CASE("latency histogram: nearest rank, without rounding 0.95 * 20 up", "[histogram]") {
    CHECK(latency_histogram::nearest_rank(0.95, 20) == 19);
    CHECK(latency_histogram::nearest_rank(0.99, 1000) == 990);
    CHECK(latency_histogram::nearest_rank(0.99, 99) == 99);  // below 100 samples, the p99 is the largest
    CHECK(latency_histogram::nearest_rank(0.5, 1) == 1);
    CHECK(latency_histogram::nearest_rank(0.0, 10) == 1);
    CHECK(latency_histogram::nearest_rank(1.0, 10) == 10);
}

TEST_CASE("latency histogram: merged, it is the histogram of both; cleared, empty", "[histogram]") {
    latency_histogram fast, slow, both;
    for (int i = 1; i <= 90; ++i) {
        fast.add(milliseconds(i));
        both.add(milliseconds(i));
    }
    for (int i = 1; i <= 10; ++i) {
        slow.add(seconds(i));
        both.add(seconds(i));
    }
    latency_histogram merged;
    merged.merge(fast);
    merged.merge(slow);
    merged.merge(latency_histogram{});  // an empty one adds nothing
    CHECK(merged.count() == 100);
    for (double p : {0.0, 0.5, 0.9, 0.95, 0.99, 1.0}) CHECK(merged.percentile(p) == both.percentile(p));
    merged.clear();
    CHECK(merged.count() == 0);
    CHECK_FALSE(merged.percentile(0.5).has_value());
    merged.add(milliseconds(7));
    CHECK(merged.percentile(0.99) == milliseconds(7));  // nothing left over from before
    CHECK_FALSE(latency_histogram{}.percentile(0.5).has_value());
}

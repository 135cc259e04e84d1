#pragma once
// The statistics `sturdy bench` reports, exact over the measured values: sorting a few thousand
// latencies costs nothing next to the calls that made them, so no approximation is needed.

#include <algorithm>
#include <cstddef>
#include <numeric>
#include <optional>
#include <vector>

namespace sturdy_cli {

/// The nearest rank of the `percent`-th percentile (0 to 100) among `n` values: ceil(percent/100
/// · n), at least 1. In whole numbers, so that p95 of 20 values is the 19th, not a rounding away
/// from it. With 50 values, p50 is the 25th, p95 the 48th, p99 the 50th.
constexpr std::size_t nearest_rank(std::size_t percent, std::size_t n) {
    const std::size_t rank = (percent * n + 99) / 100;
    return rank < 1 ? 1 : rank;
}

/// The `percent`-th percentile of `sorted` (ascending), by nearest rank; nullopt when empty.
inline std::optional<double> percentile(const std::vector<double>& sorted, std::size_t percent) {
    if (sorted.empty()) return std::nullopt;
    return sorted[nearest_rank(percent, sorted.size()) - 1];
}

/// p50, p95, p99 and the mean of some durations, in milliseconds.
struct duration_summary {
    double p50 = 0;
    double p95 = 0;
    double p99 = 0;
    double mean = 0;
};

/// The summary of `ms`, in any order; nullopt when there are none.
inline std::optional<duration_summary> summarise(std::vector<double> ms) {
    if (ms.empty()) return std::nullopt;
    std::sort(ms.begin(), ms.end());
    duration_summary s;
    s.p50 = *percentile(ms, 50);
    s.p95 = *percentile(ms, 95);
    s.p99 = *percentile(ms, 99);
    s.mean = std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(ms.size());
    return s;
}

}  // namespace sturdy_cli

#pragma once
// Latencies in buckets 1% wide, for percentiles within 1% of the exact value in constant memory.
// Used by outcome_window (the rollback guard's p99, hedging's delay); fit for p50/p95/p99 metrics.
// Not synchronised: owners lock.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

namespace sturdy::detail {

/// Latencies counted in buckets: one per whole microsecond below 100 us, then each bucket's upper
/// edge 1.01 times its lower one, up to 2^36 us (about 19 hours); longer ones share a last bucket.
///
/// `percentile(p)` is nearest-rank: the ceil(p * n)-th smallest latency (the smallest, for p = 0).
/// It is reported as the largest whole microsecond that latency's bucket holds, and never above
/// the largest latency recorded: so never below the exact value, and above it by at most 1%
/// (p = 1 is the largest latency exactly). In the last bucket, beyond 2^36 us, the 1% no longer
/// holds: a percentile there is reported as the largest latency.
///
/// Memory: about 2,150 counters (8.6 KB), allocated on the first `add` or `merge`; `clear` keeps
/// them for reuse.
class latency_histogram {
public:
    static constexpr std::int64_t exact_below_us = 100;
    static constexpr double growth = 1.01;
    static constexpr std::int64_t last_bucket_from_us = std::int64_t{1} << 36;

    void add(std::chrono::microseconds latency) {
        const std::int64_t us = std::max<std::int64_t>(latency.count(), 0);
        const std::size_t b = bucket_of(us);
        if (counts_.empty()) counts_.assign(largest_in().size(), 0);
        ++counts_[b];
        note(b, b, 1, us);
    }

    /// Adds `other`'s latencies to these: a histogram over both.
    void merge(const latency_histogram& other) {
        if (other.total_ == 0) return;
        if (counts_.empty()) counts_.assign(largest_in().size(), 0);
        for (std::size_t b = other.lowest_; b <= other.highest_; ++b) counts_[b] += other.counts_[b];
        note(other.lowest_, other.highest_, other.total_, other.max_us_);
    }

    std::uint64_t count() const noexcept { return total_; }

    /// The nearest-rank percentile `p` (0..1): the smallest latency with at least p * n of the n
    /// latencies at or below it, read as the class comment says; nullopt when there are none.
    std::optional<std::chrono::microseconds> percentile(double p) const {
        if (total_ == 0) return std::nullopt;
        const std::uint64_t rank = nearest_rank(p, total_);
        std::uint64_t seen = 0;
        std::size_t b = lowest_;
        for (; b < highest_; ++b) {
            seen += counts_[b];
            if (seen >= rank) break;
        }
        return std::chrono::microseconds(std::min(largest_in()[b], max_us_));
    }

    /// Empties it, keeping the counters' memory.
    void clear() noexcept {
        if (total_ > 0)
            std::fill(counts_.begin() + static_cast<std::ptrdiff_t>(lowest_),
                      counts_.begin() + static_cast<std::ptrdiff_t>(highest_) + 1, 0u);
        total_ = 0;
        max_us_ = 0;
        lowest_ = highest_ = 0;
    }

    /// 1-based rank of the nearest-rank percentile `p` among `n` values. The tolerance keeps a
    /// product such as 0.95 * 20 from rounding up past 19 to a rank of 20.
    static std::uint64_t nearest_rank(double p, std::uint64_t n) {
        const double exact = std::clamp(p, 0.0, 1.0) * static_cast<double>(n);
        const auto rank = static_cast<std::uint64_t>(std::ceil(exact - 1e-9));
        return std::clamp<std::uint64_t>(rank, 1, n);
    }

    /// The bucket holding `us` microseconds: the first whose largest value is not below it.
    static std::size_t bucket_of(std::int64_t us) {
        const auto& largest = largest_in();
        return static_cast<std::size_t>(std::lower_bound(largest.begin(), largest.end() - 1, us) - largest.begin());
    }

    /// Per bucket, the largest whole microsecond it holds (the last one: no bound). Bucket b holds
    /// the values above bucket b-1's and up to its own; each is one microsecond, or lies within
    /// [x, 1.01 x) for its lowest value x, so its largest value is at most 1% above any it holds.
    static const std::vector<std::int64_t>& largest_in() {
        static const std::vector<std::int64_t> table = [] {
            std::vector<std::int64_t> t;
            for (std::int64_t us = 0; us < exact_below_us; ++us) t.push_back(us);
            // Upper edges at exact_below_us * growth^k, nudged down by a rounding error so that an
            // edge falling on a whole microsecond leaves it to the next bucket. An edge that adds no
            // whole microsecond to the previous bucket's makes no bucket.
            for (int k = 1; t.back() < last_bucket_from_us; ++k) {
                const double upper = static_cast<double>(exact_below_us) * std::pow(growth, k) * (1 - 1e-12);
                const auto largest = static_cast<std::int64_t>(std::ceil(upper)) - 1;
                if (largest > t.back()) t.push_back(largest);
            }
            t.push_back(std::numeric_limits<std::int64_t>::max());
            return t;
        }();
        return table;
    }

private:
    void note(std::size_t low, std::size_t high, std::uint64_t n, std::int64_t max_us) {
        lowest_ = total_ == 0 ? low : std::min(lowest_, low);
        highest_ = total_ == 0 ? high : std::max(highest_, high);
        total_ += n;
        max_us_ = std::max(max_us_, max_us);
    }

    std::vector<std::uint32_t> counts_;  // per bucket; empty until the first latency
    std::uint64_t total_ = 0;
    std::int64_t max_us_ = 0;
    // The occupied buckets lie in [lowest_, highest_]: merges and scans skip the rest.
    std::size_t lowest_ = 0, highest_ = 0;
};

}  // namespace sturdy::detail

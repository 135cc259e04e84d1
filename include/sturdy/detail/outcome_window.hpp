#pragma once
// Outcomes over a sliding window of time: counts, failure and slow-call ratios, and latency
// percentiles. Shared by the circuit breaker (failure ratio), the traffic split's rollback guard
// (error rate, p99) and hedging (a delay at a latency percentile). Every function is given the
// time: the window reads no clock. Not synchronised: owners lock.

#include <sturdy/clock.hpp>
#include <sturdy/detail/latency_histogram.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

namespace sturdy::detail {

class outcome_window {
public:
    struct totals {
        std::uint64_t calls = 0;
        std::uint64_t failures = 0;
        std::uint64_t slow = 0;
        double failure_ratio() const { return calls ? static_cast<double>(failures) / static_cast<double>(calls) : 0.0; }
        double slow_ratio() const { return calls ? static_cast<double>(slow) / static_cast<double>(calls) : 0.0; }
    };

    /// A window of `span`, kept as `buckets` slices that expire one at a time. Each slice that was
    /// given a latency holds a latency_histogram (8.6 KB): at most 86 KB for the default 10 slices,
    /// whatever the traffic; a window given no latencies (a breaker's) holds none.
    explicit outcome_window(clock::duration span, std::size_t buckets = 10)
        : width_(std::max<clock::duration>(span / static_cast<clock::duration::rep>(std::max<std::size_t>(buckets, 1)), clock::duration(1))),
          slices_(std::max<std::size_t>(buckets, 1)) {}

    void record(clock::time_point now, bool failure, std::optional<std::chrono::microseconds> latency = std::nullopt,
                bool slow = false) {
        slice& s = current(now);
        ++s.sums.calls;
        if (failure) ++s.sums.failures;
        if (slow) ++s.sums.slow;
        if (latency) s.latencies.add(*latency);
    }

    totals sums(clock::time_point now) const {
        totals t;
        for (const auto& s : slices_) {
            if (!live(s, now)) continue;
            t.calls += s.sums.calls;
            t.failures += s.sums.failures;
            t.slow += s.sums.slow;
        }
        return t;
    }

    /// The nearest-rank percentile `p` (0..1) of the window's latencies, within 1% and never below
    /// (latency_histogram::percentile); nullopt without latencies.
    std::optional<std::chrono::microseconds> percentile(clock::time_point now, double p) const {
        latency_histogram merged;
        for (const auto& s : slices_)
            if (live(s, now)) merged.merge(s.latencies);
        return merged.percentile(p);
    }

    /// Number of timed calls in the window.
    std::uint64_t timed(clock::time_point now) const {
        std::uint64_t n = 0;
        for (const auto& s : slices_)
            if (live(s, now)) n += s.latencies.count();
        return n;
    }

    void clear() {
        for (auto& s : slices_) s.reset(unused);
    }

private:
    static constexpr std::int64_t unused = std::numeric_limits<std::int64_t>::min();

    struct slice {
        std::int64_t epoch = unused;  // which width_-long interval of time this slice holds
        totals sums;
        latency_histogram latencies;

        // Reused for another interval: emptied, keeping the histogram's memory.
        void reset(std::int64_t new_epoch) {
            epoch = new_epoch;
            sums = {};
            latencies.clear();
        }
    };

    std::int64_t epoch_of(clock::time_point now) const {
        const auto t = now.time_since_epoch().count();
        const auto w = width_.count();
        return t >= 0 ? t / w : (t - w + 1) / w;  // floor, also before the clock's epoch
    }

    bool live(const slice& s, clock::time_point now) const {
        const auto e = epoch_of(now);
        return s.epoch != unused && s.epoch > e - static_cast<std::int64_t>(slices_.size()) && s.epoch <= e;
    }

    slice& current(clock::time_point now) {
        const auto e = epoch_of(now);
        slice& s = slices_[static_cast<std::size_t>(((e % static_cast<std::int64_t>(slices_.size())) + static_cast<std::int64_t>(slices_.size())) %
                                                    static_cast<std::int64_t>(slices_.size()))];
        if (s.epoch != e) s.reset(e);
        return s;
    }

    clock::duration width_;
    std::vector<slice> slices_;
};

}  // namespace sturdy::detail

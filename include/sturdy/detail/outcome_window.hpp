#pragma once
// Outcomes over a sliding window of time: counts, failure and slow-call ratios, and latency
// percentiles. Shared by the circuit breaker (failure ratio), the traffic split's rollback guard
// (error rate, p99) and hedging (a delay at a latency percentile). Not synchronised: owners lock.

#include <sturdy/clock.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

namespace sturdy::detail {

/// Latencies in log-spaced bins: bin i holds [10 us * 1.15^i, 10 us * 1.15^(i+1)), so a percentile
/// is known within 15%, from 10 us to about 9 minutes, in constant memory.
class latency_bins {
public:
    static constexpr std::size_t count = 128;
    static constexpr double first_edge_us = 10.0;
    static constexpr double growth = 1.15;

    static std::size_t bin_of(std::chrono::microseconds latency) {
        const double us = static_cast<double>(latency.count());
        if (us < first_edge_us) return 0;
        const auto i = static_cast<std::size_t>(std::log(us / first_edge_us) / std::log(growth)) + 1;
        return std::min(i, count - 1);
    }
    /// The bin's upper edge: a percentile is reported at the edge, so it never understates.
    static std::chrono::microseconds upper_edge(std::size_t bin) {
        return std::chrono::microseconds(static_cast<std::int64_t>(std::ceil(first_edge_us * std::pow(growth, static_cast<double>(bin)))));
    }

    void add(std::chrono::microseconds latency) { ++bins_[bin_of(latency)]; }
    void merge_into(std::array<std::uint32_t, count>& total) const {
        for (std::size_t i = 0; i < count; ++i) total[i] += bins_[i];
    }
    void clear() { bins_.fill(0); }

private:
    std::array<std::uint32_t, count> bins_{};
};

class outcome_window {
public:
    struct totals {
        std::uint64_t calls = 0;
        std::uint64_t failures = 0;
        std::uint64_t slow = 0;
        double failure_ratio() const { return calls ? static_cast<double>(failures) / static_cast<double>(calls) : 0.0; }
        double slow_ratio() const { return calls ? static_cast<double>(slow) / static_cast<double>(calls) : 0.0; }
    };

    /// A window of `span`, kept as `buckets` slices that expire one at a time.
    explicit outcome_window(clock::duration span, std::size_t buckets = 10)
        : width_(std::max<clock::duration>(span / static_cast<clock::duration::rep>(std::max<std::size_t>(buckets, 1)), clock::duration(1))),
          slices_(std::max<std::size_t>(buckets, 1)) {}

    void record(clock::time_point now, bool failure, std::optional<std::chrono::microseconds> latency = std::nullopt,
                bool slow = false) {
        slice& s = current(now);
        ++s.sums.calls;
        if (failure) ++s.sums.failures;
        if (slow) ++s.sums.slow;
        if (latency) {
            s.latencies.add(*latency);
            ++s.timed;
        }
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

    /// The latency below which a fraction `p` (0..1) of the timed calls fell; nullopt without samples.
    std::optional<std::chrono::microseconds> percentile(clock::time_point now, double p) const {
        std::array<std::uint32_t, latency_bins::count> merged{};
        std::uint64_t timed = 0;
        for (const auto& s : slices_) {
            if (!live(s, now)) continue;
            s.latencies.merge_into(merged);
            timed += s.timed;
        }
        if (timed == 0) return std::nullopt;
        const auto rank = static_cast<std::uint64_t>(std::ceil(std::clamp(p, 0.0, 1.0) * static_cast<double>(timed)));
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < merged.size(); ++i) {
            seen += merged[i];
            if (seen >= std::max<std::uint64_t>(rank, 1)) return latency_bins::upper_edge(i);
        }
        return latency_bins::upper_edge(merged.size() - 1);
    }

    /// Number of timed calls in the window.
    std::uint64_t timed(clock::time_point now) const {
        std::uint64_t n = 0;
        for (const auto& s : slices_)
            if (live(s, now)) n += s.timed;
        return n;
    }

    void clear() {
        for (auto& s : slices_) s = slice{};
    }

private:
    static constexpr std::int64_t unused = std::numeric_limits<std::int64_t>::min();

    struct slice {
        std::int64_t epoch = unused;  // which width_-long interval of time this slice holds
        totals sums;
        latency_bins latencies;
        std::uint64_t timed = 0;
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
        if (s.epoch != e) {
            s = slice{};
            s.epoch = e;
        }
        return s;
    }

    clock::duration width_;
    std::vector<slice> slices_;
};

}  // namespace sturdy::detail

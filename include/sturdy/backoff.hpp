#pragma once
/// @file
/// Backoff strategies: how long a retry waits. Each is a value; the retry policy keeps one per call.

#include <sturdy/clock.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <utility>

namespace sturdy {

/// What a strategy remembers between the retries of one call.
struct backoff_state {
    int retry = 0;                            ///< retries taken so far: 0 before the first
    clock::duration previous{0};              ///< the last delay; zero before the first retry
    double carry = 0;                         ///< a number the strategy keeps for itself
};

/// How long to wait before a retry. Copyable and thread-safe: state lives in `backoff_state`.
///
///     auto b = sturdy::backoff::full_jitter(std::chrono::milliseconds(200), std::chrono::seconds(10));
class backoff {
public:
    using duration = clock::duration;
    using function = std::function<duration(backoff_state&, random_source&)>;

    explicit backoff(function next) : next_(std::move(next)) {}

    /// The delay before the next retry; advances `state`.
    duration next(backoff_state& state, random_source& random) const {
        duration d = std::max(next_(state, random), duration::zero());
        state.previous = d;
        ++state.retry;
        return d;
    }

    /// The official SDKs': min(0.5 s * 2^n, 8 s), shortened by up to 25% at random.
    static backoff official() {
        return backoff([](backoff_state& s, random_source& r) {
            const double seconds = std::min(0.5 * std::pow(2.0, std::min(s.retry, 1000)), 8.0);
            return seconds_of(seconds * (1.0 - 0.25 * r.next_unit()));
        });
    }

    /// The same delay every time.
    static backoff constant(duration delay) {
        return backoff([delay](backoff_state&, random_source&) { return delay; });
    }

    /// delay * (n + 1), at most `max`: Polly's linear backoff.
    static backoff linear(duration delay, duration max = duration::max()) {
        return backoff([delay, max](backoff_state& s, random_source&) { return capped(to_double(delay) * (s.retry + 1), max); });
    }

    /// initial * factor^n, at most `max`, without jitter.
    static backoff exponential(duration initial, duration max, double factor = 2.0) {
        return backoff([=](backoff_state& s, random_source&) { return capped(grown(initial, factor, s.retry), max); });
    }

    /// Uniform in [0, min(max, initial * 2^n)): AWS's "full jitter".
    static backoff full_jitter(duration initial, duration max) {
        return backoff([=](backoff_state& s, random_source& r) {
            return capped(to_double(capped(grown(initial, 2.0, s.retry), max)) * r.next_unit(), max);
        });
    }

    /// Half of min(max, initial * 2^n), plus a uniform share of the other half: AWS's "equal jitter".
    static backoff equal_jitter(duration initial, duration max) {
        return backoff([=](backoff_state& s, random_source& r) {
            const double v = to_double(capped(grown(initial, 2.0, s.retry), max));
            return capped(v / 2 + v / 2 * r.next_unit(), max);
        });
    }

    /// min(max, uniform in [initial, 3 * previous)): Marc Brooker's decorrelated jitter.
    static backoff decorrelated_jitter(duration initial, duration max) {
        return backoff([=](backoff_state& s, random_source& r) {
            const double low = to_double(initial);
            const double high = std::max(low, 3 * to_double(s.previous == duration::zero() ? initial : s.previous));
            return capped(low + (high - low) * r.next_unit(), max);
        });
    }

    /// Polly's decorrelated jitter v2: delays spread around `median_first * 2^n` with no clustering,
    /// at most `max`.
    static backoff decorrelated_jitter_v2(duration median_first, duration max) {
        return backoff([=](backoff_state& s, random_source& r) {
            constexpr double p_factor = 4.0, rp_scaling = 1 / 1.4;
            const double t = s.retry + r.next_unit();
            const double next = std::pow(2.0, t) * std::tanh(std::sqrt(p_factor * t));
            const double step = next - s.carry;
            s.carry = next;
            return capped(step * rp_scaling * to_double(median_first), max);
        });
    }

private:
    static double to_double(duration d) { return static_cast<double>(d.count()); }
    static duration seconds_of(double s) { return capped(s * 1e9, duration::max()); }
    static double grown(duration initial, double factor, int n) {
        return to_double(initial) * std::pow(factor, std::min(n, 1000));
    }
    static duration capped(double nanos, duration max) {
        if (!(nanos < to_double(max))) return max;  // also catches inf and nan
        return duration(static_cast<duration::rep>(std::max(0.0, nanos)));
    }

    function next_;
};

}  // namespace sturdy

#pragma once
/// @file
/// Time and chance, injectable: every time-based policy reads `now`, sleeps and draws random numbers
/// through these, so tests can run schedules in virtual time (see sturdy/testing/fake_clock.hpp).

#include <sturdy/cancellation.hpp>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

namespace sturdy {

/// A source of time that can also wait. Sleeping belongs here because a fake clock's sleep must
/// advance that same clock.
class clock {
public:
    using duration = std::chrono::nanoseconds;
    using time_point = std::chrono::steady_clock::time_point;

    virtual ~clock() = default;
    /// Monotonic time, for deadlines, delays and windows.
    virtual time_point now() const = 0;
    /// Calendar time, for HTTP dates such as Retry-After.
    virtual std::chrono::system_clock::time_point wall_now() const = 0;
    /// Waits for `d`, or until `cancel` fires. Returns false when cancelled.
    virtual bool sleep_for(duration d, const cancellation_token& cancel) const = 0;
};

/// Uniform random numbers in [0, 1). Implementations are safe to call from many threads.
class random_source {
public:
    virtual ~random_source() = default;
    virtual double next_unit() = 0;
};

namespace detail {

class steady_clock_source final : public sturdy::clock {
public:
    time_point now() const override { return std::chrono::steady_clock::now(); }
    std::chrono::system_clock::time_point wall_now() const override { return std::chrono::system_clock::now(); }
    bool sleep_for(duration d, const cancellation_token& cancel) const override {
        if (d <= duration::zero()) return !cancel.cancelled();
        if (!cancel.cancellable()) {
            std::this_thread::sleep_for(d);
            return true;
        }
        struct waiter {
            std::mutex mutex;
            std::condition_variable cv;
            bool woken = false;
        };
        auto w = std::make_shared<waiter>();
        auto registration = cancel.on_cancel([w] {
            std::lock_guard<std::mutex> lock(w->mutex);
            w->woken = true;
            w->cv.notify_all();
        });
        std::unique_lock<std::mutex> lock(w->mutex);
        w->cv.wait_for(lock, d, [&] { return w->woken; });
        return !w->woken;
    }
};

class thread_local_random final : public random_source {
public:
    double next_unit() override {
        thread_local std::mt19937_64 engine{std::random_device{}()};
        return std::uniform_real_distribution<double>(0.0, 1.0)(engine);
    }
};

}  // namespace detail

/// The real clock: std::chrono::steady_clock, system_clock and real sleeps.
inline std::shared_ptr<clock> real_clock() {
    static const auto instance = std::make_shared<detail::steady_clock_source>();
    return instance;
}

/// A non-deterministic random source, one engine per thread.
inline std::shared_ptr<random_source> real_random() {
    static const auto instance = std::make_shared<detail::thread_local_random>();
    return instance;
}

/// What a time-based policy takes from the world: a clock (that also sleeps) and a random source.
///
///     sturdy::testing::fake_clock fake(42);
///     sturdy::retry_policy retry(sturdy::retry_options{}, fake.timing());
struct timing {
    std::shared_ptr<sturdy::clock> clock = real_clock();
    std::shared_ptr<sturdy::random_source> random = real_random();
};

}  // namespace sturdy

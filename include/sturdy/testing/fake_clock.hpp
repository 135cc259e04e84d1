#pragma once
/// @file
/// Virtual time for tests: a clock that moves only when told to, and a seeded random source.
/// Users test their own pipelines with it, as Polly's users do with FakeTimeProvider.

#include <sturdy/clock.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <vector>

namespace sturdy::testing {

/// A deterministic clock and random source.
///
/// In `auto_advance` mode (the default) a sleep moves the clock forward at once, so a retry
/// schedule of minutes runs in microseconds. In `manual` mode a sleep blocks until another thread
/// calls `advance` past its wake-up time, for tests where several threads share the clock.
///
///     sturdy::testing::fake_clock fake(/*seed=*/42);
///     sturdy::retry_policy retry(sturdy::retry_options{}, fake.timing());
///     ... run a call ...
///     CHECK(fake.sleeps().size() == 2);
///
/// The clock must outlive everything given its timing().
class fake_clock final : public sturdy::clock, public sturdy::random_source {
public:
    enum class mode { auto_advance, manual };

    explicit fake_clock(std::uint64_t seed = 0, mode m = mode::auto_advance) : mode_(m), engine_(seed) {}

    time_point now() const override {
        std::lock_guard<std::mutex> lock(mutex_);
        return now_;
    }

    /// Calendar time: 2026-01-01T00:00:00Z plus the virtual time elapsed.
    std::chrono::system_clock::time_point wall_now() const override {
        std::lock_guard<std::mutex> lock(mutex_);
        return std::chrono::system_clock::time_point(std::chrono::seconds(1767225600)) +
               std::chrono::duration_cast<std::chrono::system_clock::duration>(now_ - time_point{});
    }

    bool sleep_for(duration d, const cancellation_token& cancel) const override {
        // The callback takes mutex_ under the token's lock, so it is registered before mutex_ is
        // taken and unregistered after it is released (declared first): never the other order.
        cancellation_registration registration;
        if (mode_ == mode::manual)
            registration = cancel.on_cancel([this] {
                std::lock_guard<std::mutex> inner(mutex_);
                changed_.notify_all();
            });
        std::unique_lock<std::mutex> lock(mutex_);
        sleeps_.push_back(d);
        if (cancel.cancelled()) return false;
        if (mode_ == mode::auto_advance) {
            if (d > duration::zero()) now_ += d;
            changed_.notify_all();
            return true;
        }
        const time_point wake = now_ + d;
        ++sleepers_;
        changed_.notify_all();
        changed_.wait(lock, [&] { return now_ >= wake || cancel.cancelled(); });
        --sleepers_;
        return !cancel.cancelled();
    }

    /// Moves the clock forward, waking the sleepers whose time has come.
    void advance(duration d) {
        std::lock_guard<std::mutex> lock(mutex_);
        now_ += d;
        changed_.notify_all();
    }

    /// Manual mode: blocks until at least `n` threads are asleep on this clock.
    void wait_for_sleepers(int n) const {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return sleepers_ >= n; });
    }

    /// Every sleep asked for, in order.
    std::vector<duration> sleeps() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return sleeps_;
    }

    double next_unit() override {
        std::lock_guard<std::mutex> lock(mutex_);
        return std::uniform_real_distribution<double>(0.0, 1.0)(engine_);
    }

    /// Clock and random source for policies; non-owning, so this object must outlive them.
    sturdy::timing timing() {
        return sturdy::timing{std::shared_ptr<sturdy::clock>(std::shared_ptr<void>(), this),
                              std::shared_ptr<sturdy::random_source>(std::shared_ptr<void>(), this)};
    }

private:
    const mode mode_;
    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    mutable time_point now_{};
    mutable std::vector<duration> sleeps_;
    mutable int sleepers_ = 0;
    std::mt19937_64 engine_;
};

}  // namespace sturdy::testing

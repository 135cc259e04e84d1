#pragma once
// A one-way gate for concurrency tests: attempts wait at it until the test opens it, so a test
// decides the order of events with no sleeps.

#include <sturdy/cancellation.hpp>

#include <condition_variable>
#include <mutex>

namespace sturdy_test {

class gate {
public:
    /// Lets every waiter (and every later one) through.
    void open() {
        std::lock_guard<std::mutex> lock(mutex_);
        open_ = true;
        changed_.notify_all();
    }

    /// Waits until the gate opens.
    void wait() {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return open_; });
    }

    /// Waits until the gate opens or `token` is cancelled; true when the gate opened.
    bool wait(const sturdy::cancellation_token& token) {
        // Registered before the lock is taken, and released after it is: the callback takes it.
        auto registration = token.on_cancel([this] {
            std::lock_guard<std::mutex> inner(mutex_);
            changed_.notify_all();
        });
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return open_ || token.cancelled(); });
        return open_;
    }

    /// Waits at the gate, counted as an arrival (see wait_for_arrivals).
    void pass() {
        std::unique_lock<std::mutex> lock(mutex_);
        ++arrived_;
        changed_.notify_all();
        changed_.wait(lock, [&] { return open_; });
    }

    /// Blocks until `n` callers have arrived at pass().
    void wait_for_arrivals(int n) {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return arrived_ >= n; });
    }

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    bool open_ = false;
    int arrived_ = 0;
};

}  // namespace sturdy_test

#pragma once
// An executor of the tests' own, to show what a policy asks of the executor: it records the waits
// and branches asked of it, and marks each branch's thread. Inline, it waits on the calling thread
// (a fake clock's wait advances it) and runs each branch inside spawn; with threads, each wait and
// each branch runs on a thread of its own, joined by join() or when it goes; refusing, it starts no
// branch.

#include <sturdy/clock.hpp>
#include <sturdy/executor.hpp>

#include <functional>
#include <mutex>
#include <vector>

namespace sturdy_test {

class test_executor final : public sturdy::executor {
public:
    enum class mode { inline_calls, threads, refusing };
    explicit test_executor(mode m) : mode_(m) {}

    /// Whether the calling thread is running a branch this executor started.
    static bool in_branch() { return branch_depth > 0; }

    void after(const sturdy::clock& on, sturdy::clock::duration d, const sturdy::cancellation_token& cancel,
               std::function<void(bool)> then) override {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            waits_.push_back(d);
        }
        if (mode_ != mode::threads) return then(on.sleep_for(d, cancel));
        threads_.spawn([&on, d, cancel, then = std::move(then)] { then(on.sleep_for(d, cancel)); });
    }

    bool spawn(std::function<void()> branch) override {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            ++spawns_;
        }
        if (mode_ == mode::refusing) return false;
        auto marked = [branch = std::move(branch)] {
            ++branch_depth;
            branch();
            --branch_depth;
        };
        if (mode_ == mode::threads) return threads_.spawn(std::move(marked));
        marked();
        return true;
    }

    /// Waits for every wait and branch started on a thread so far.
    void join() { threads_.join(); }

    std::vector<sturdy::clock::duration> waits() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return waits_;
    }
    int spawns() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return spawns_;
    }

private:
    static inline thread_local int branch_depth = 0;
    const mode mode_;
    mutable std::mutex mutex_;
    std::vector<sturdy::clock::duration> waits_;
    int spawns_ = 0;
    sturdy::blocking_executor threads_;  // last: its destructor joins before the rest goes
};

}  // namespace sturdy_test

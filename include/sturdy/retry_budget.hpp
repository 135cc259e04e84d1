#pragma once
/// @file
/// A retry budget shared by many calls: during an outage, retries stop multiplying the load.

#include <sturdy/clock.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <utility>

namespace sturdy {

/// Settings of a retry budget.
struct retry_budget_options {
    /// Retries allowed per call made, over the window: 0.2 lets retries add at most 20% load.
    double ratio = 0.2;
    /// Retries allowed in any window regardless of traffic, so a quiet client can still retry.
    int min_retries = 10;
    /// How far back calls and retries count.
    clock::duration window = std::chrono::seconds(10);
};

/// Envoy's and Finagle's retry budget: within a sliding window, retries may be at most
/// `min_retries + ratio * calls`. Share one budget (through retry_options::budget) among every
/// policy that talks to the same backend. Thread-safe.
///
///     auto budget = std::make_shared<sturdy::retry_budget>();
///     sturdy::retry_options opts;
///     opts.budget = budget;
class retry_budget {
public:
    explicit retry_budget(retry_budget_options options = {}, sturdy::timing timing = {})
        : options_(options), timing_(std::move(timing)) {}

    /// A call started.
    void record_call() {
        std::lock_guard<std::mutex> lock(mutex_);
        const auto now = timing_.clock->now();
        expire(now);
        calls_.push_back(now);
    }

    /// Takes one retry from the budget; false when it is spent.
    bool try_spend() {
        std::lock_guard<std::mutex> lock(mutex_);
        const auto now = timing_.clock->now();
        expire(now);
        if (static_cast<double>(retries_.size()) >= allowance()) {
            ++refused_;
            return false;
        }
        retries_.push_back(now);
        return true;
    }

    /// Retries the budget would allow now.
    double available() {
        std::lock_guard<std::mutex> lock(mutex_);
        expire(timing_.clock->now());
        return std::max(0.0, allowance() - static_cast<double>(retries_.size()));
    }

    /// Retries refused since the budget was made.
    std::uint64_t refused() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return refused_;
    }

private:
    double allowance() const { return options_.min_retries + options_.ratio * static_cast<double>(calls_.size()); }

    void expire(clock::time_point now) {
        const auto horizon = now - options_.window;
        while (!calls_.empty() && calls_.front() <= horizon) calls_.pop_front();
        while (!retries_.empty() && retries_.front() <= horizon) retries_.pop_front();
    }

    retry_budget_options options_;
    sturdy::timing timing_;
    mutable std::mutex mutex_;
    std::deque<clock::time_point> calls_, retries_;
    std::uint64_t refused_ = 0;
};

}  // namespace sturdy

#pragma once
/// @file
/// A retry budget shared by many calls: during an outage, retries stop multiplying the load.

#include <sturdy/clock.hpp>
#include <sturdy/detail/option_check.hpp>
#include <sturdy/detail/outcome_window.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <mutex>
#include <string_view>
#include <utility>

namespace sturdy {

/// Settings of a retry budget. Not a policy's options (no policy_options base): a budget acts on
/// no failure and reports no event, it only counts what the retry policies sharing it do.
struct retry_budget_options {
    /// Retries allowed per call made, over the window: 0.2 lets retries add at most 20% load.
    double ratio = 0.2;
    /// Retries allowed in any window regardless of traffic, so a quiet client can still retry.
    int min_retries = 10;
    /// How far back calls and retries count (in tenths: the oldest tenth expires at once).
    clock::duration window = std::chrono::seconds(10);
};

/// Envoy's and Finagle's retry budget: within a sliding window, retries may be at most
/// `min_retries + ratio * calls`. Share one budget (through retry_options::budget) among every
/// policy that talks to the same backend. Thread-safe, and constant in memory whatever the traffic.
///
///     auto budget = std::make_shared<sturdy::retry_budget>();
///     sturdy::retry_options opts;
///     opts.budget = budget;
class retry_budget {
public:
    /// Throws std::invalid_argument for a ratio that is negative or not finite, a negative
    /// min_retries, or a window that is not positive.
    explicit retry_budget(retry_budget_options options = {}, sturdy::timing timing = {})
        : options_(checked(options)), timing_(std::move(timing)), calls_(options_.window), retries_(options_.window) {}

    /// A call started.
    void record_call() {
        const auto now = timing_.clock->now();
        std::lock_guard<std::mutex> lock(mutex_);
        calls_.record(now, false);
    }

    /// Takes one retry from the budget; false when it is spent.
    bool try_spend() {
        const auto now = timing_.clock->now();
        std::lock_guard<std::mutex> lock(mutex_);
        if (available_at(now) < 1.0) {
            ++refused_;
            return false;
        }
        retries_.record(now, false);
        return true;
    }

    /// Retries the budget would allow now.
    double available() const {
        const auto now = timing_.clock->now();
        std::lock_guard<std::mutex> lock(mutex_);
        return std::max(0.0, available_at(now));
    }

    /// Retries refused since the budget was made.
    std::uint64_t refused() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return refused_;
    }

private:
    static retry_budget_options checked(const retry_budget_options& o) {
        constexpr std::string_view budget = "retry_budget";
        detail::require_option(std::isfinite(o.ratio) && o.ratio >= 0, budget, "ratio",
                               "must be finite and not negative");
        detail::require_option(o.min_retries >= 0, budget, "min_retries", "must not be negative");
        detail::require_option(o.window > clock::duration::zero(), budget, "window", "must be positive");
        return o;
    }

    double available_at(clock::time_point now) const {
        const auto calls = static_cast<double>(calls_.sums(now).calls);
        const auto retries = static_cast<double>(retries_.sums(now).calls);
        return options_.min_retries + options_.ratio * calls - retries;
    }

    retry_budget_options options_;
    sturdy::timing timing_;
    mutable std::mutex mutex_;
    detail::outcome_window calls_, retries_;  // a retry is counted as a "call" of its own window
    std::uint64_t refused_ = 0;
};

}  // namespace sturdy

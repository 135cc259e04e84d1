#pragma once
/// @file
/// A retry budget shared by many calls: during an outage, retries stop multiplying the load.

#include <sturdy/clock.hpp>
#include <sturdy/detail/option_check.hpp>
#include <sturdy/detail/outcome_window.hpp>
#include <sturdy/policy_options.hpp>
#include <sturdy/state_store.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace sturdy {

struct retry_budget_state;

/// Settings of a retry budget. Not a policy's options (no policy_options base): a budget acts on
/// no failure and reports no event, it only counts what the retry policies sharing it do.
struct retry_budget_options {
    /// Retries allowed per call made, over the window: 0.2 lets retries add at most 20% load.
    double ratio = 0.2;
    /// Retries allowed in any window regardless of traffic, so a quiet client can still retry.
    int min_retries = 10;
    /// How far back calls and retries count (in tenths: the oldest tenth expires at once).
    clock::duration window = std::chrono::seconds(10);
    /// The budget's key in its store; empty: "retry_budget". Budgets of one name on one store
    /// share their windows, whichever client they are in.
    std::string name{};
    /// Where the windows live (sturdy/state_store.hpp), under `name`. Null: a store of this
    /// budget's own.
    std::shared_ptr<state_store<retry_budget_state>> store{};
};

/// What the budgets of one name share, kept in their store (`retry_budget_options::store`): the
/// calls and the retries of the window. A plain value; each window's span is the options' window
/// (a budget's first state is made from its options).
struct retry_budget_state {
    detail::outcome_window calls{std::chrono::seconds(10)};
    detail::outcome_window retries{std::chrono::seconds(10)};  // each retry a "call" of its own window
};

/// Envoy's and Finagle's retry budget: within a sliding window, retries may be at most
/// `min_retries + ratio * calls`. Share one budget (through retry_options::budget) among every
/// policy that talks to the same backend, or give budgets one name and one store to share their
/// windows across clients (and, with a store kept outside, processes). Thread-safe, and constant
/// in memory whatever the traffic.
///
///     auto budget = std::make_shared<sturdy::retry_budget>();
///     sturdy::retry_options opts;
///     opts.budget = budget;
class retry_budget {
public:
    /// Throws std::invalid_argument for a ratio that is negative or not finite, a negative
    /// min_retries, or a window that is not positive.
    explicit retry_budget(retry_budget_options options = {}, sturdy::timing timing = {})
        : options_(checked(std::move(options))), timing_(std::move(timing)),
          windows_(options_.store, options_.name, first_state(options_)) {}

    const retry_budget_options& options() const noexcept { return options_; }

    /// A call started.
    void record_call() {
        const auto now = timing_.clock->now();
        windows_.update([&](retry_budget_state& s) { s.calls.record(now, false); });
    }

    /// Takes one retry from the budget; false when it is spent.
    bool try_spend() {
        const auto now = timing_.clock->now();
        bool spent = false;
        windows_.update([&](retry_budget_state& s) {
            spent = available_at(s, now) >= 1.0;
            if (spent) s.retries.record(now, false);
        });
        if (!spent) refused_.fetch_add(1, std::memory_order_relaxed);
        return spent;
    }

    /// Retries the budget would allow now.
    double available() const {
        const auto now = timing_.clock->now();
        return std::max(0.0, windows_.read([&](const retry_budget_state& s) { return available_at(s, now); }));
    }

    /// Retries this budget (and not another sharing its windows) refused since it was made.
    std::uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }

private:
    static retry_budget_options checked(retry_budget_options o) {
        constexpr std::string_view budget = "retry_budget";
        detail::require_option(std::isfinite(o.ratio) && o.ratio >= 0, budget, "ratio",
                               "must be finite and not negative");
        detail::require_option(o.min_retries >= 0, budget, "min_retries", "must not be negative");
        detail::require_option(o.window > clock::duration::zero(), budget, "window", "must be positive");
        return detail::named(std::move(o), budget);
    }

    static retry_budget_state first_state(const retry_budget_options& o) {
        return retry_budget_state{detail::outcome_window(o.window), detail::outcome_window(o.window)};
    }

    double available_at(const retry_budget_state& s, clock::time_point now) const {
        const auto calls = static_cast<double>(s.calls.sums(now).calls);
        const auto retries = static_cast<double>(s.retries.sums(now).calls);
        return options_.min_retries + options_.ratio * calls - retries;
    }

    const retry_budget_options options_;
    const sturdy::timing timing_;
    const detail::stored_state<retry_budget_state> windows_;
    std::atomic<std::uint64_t> refused_{0};
};

}  // namespace sturdy

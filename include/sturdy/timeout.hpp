#pragma once
/// @file
/// Timeouts as policies: a deadline for the whole call, and limits for each attempt inside it.
///
///     sturdy::timeout_options per_attempt;
///     per_attempt.attempt = 10s;
///     per_attempt.first_token = 5s;
///     auto policy = sturdy::compose(sturdy::deadline_policy(30s),   // everything below shares 30 s
///                                   sturdy::retry_policy(),         // never waits past what is left
///                                   sturdy::timeout_policy(per_attempt));
///
/// Each attempt gets the time left: the earlier of its own limit and the call's deadline. A
/// stream's first-token and idle limits are enforced between chunks, to the millisecond.

#include <sturdy/clock.hpp>
#include <sturdy/executor.hpp>
#include <sturdy/policy.hpp>
#include <sturdy/result.hpp>
#include <sturdy/detail/option_check.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string_view>
#include <utility>

namespace sturdy {

namespace detail {

/// A context's limits, saved before an attempt narrows them and put back when its outcome arrives.
class saved_limits {
public:
    explicit saved_limits(const call_context& ctx)
        : deadline_(ctx.deadline), first_token_(ctx.first_token_timeout), idle_(ctx.idle_timeout) {}
    void restore(call_context& ctx) const {
        ctx.deadline = deadline_;
        ctx.first_token_timeout = first_token_;
        ctx.idle_timeout = idle_;
    }

private:
    sturdy::deadline deadline_;
    std::optional<std::chrono::milliseconds> first_token_, idle_;
};

/// Puts a context's limits back, then hands the outcome on.
template <class T, class Done>
struct restore_limits {
    call_context* ctx;
    saved_limits saved;
    Done done;
    void operator()(result<T> outcome) {
        saved.restore(*ctx);
        done(std::move(outcome));
    }
};

/// Runs `next` with the limits `narrow` set on `ctx`, and restores them before `done` sees the outcome.
template <class T, class Next, class Done, class Narrow>
void with_limits(call_context& ctx, const Next& next, Done done, Narrow&& narrow) {
    saved_limits saved(ctx);
    narrow(ctx);
    next(ctx, restore_limits<T, Done>{&ctx, std::move(saved), std::move(done)});
}

inline std::optional<std::chrono::milliseconds> tighter(std::optional<std::chrono::milliseconds> a,
                                                        std::optional<std::chrono::milliseconds> b) {
    if (!a) return b;
    if (!b) return a;
    return std::min(*a, *b);
}

}  // namespace detail

/// One deadline for everything inside it: retries, fallbacks, hedges and their waits.
class deadline_policy : public blocking_form<deadline_policy> {
public:
    /// Throws std::invalid_argument for a `total` that is not positive.
    explicit deadline_policy(clock::duration total, sturdy::timing timing = {})
        : total_(checked(total)), timing_(std::move(timing)) {}

    template <class T, class Next, class Done>
    void start(call_context& ctx, Next next, Done done) const {
        detail::with_limits<T>(ctx, next, std::move(done), [this](call_context& c) {
            c.deadline = deadline::earliest(c.deadline, deadline::after(timing_.clock, total_));
        });
    }

    clock::duration total() const noexcept { return total_; }

private:
    static clock::duration checked(clock::duration total) {
        detail::require_option(total > clock::duration::zero(), "deadline_policy", "total", "must be positive");
        return total;
    }

    clock::duration total_;
    sturdy::timing timing_;
};

/// Limits of each attempt made inside this policy (so place it inside a retry). Each one set must
/// be positive. Not a policy_options: a timeout acts on no failure and reports no event, so a
/// `should_handle` here would be read by nothing (the timeout error comes from the attempt).
struct timeout_options {
    /// The whole attempt, from request to the end of the reply.
    std::optional<clock::duration> attempt;
    /// Streams: the longest wait for the first content.
    std::optional<std::chrono::milliseconds> first_token;
    /// Streams: the longest gap between two chunks.
    std::optional<std::chrono::milliseconds> idle;
};

class timeout_policy : public blocking_form<timeout_policy> {
public:
    /// Throws std::invalid_argument for a limit that is set but not positive.
    explicit timeout_policy(timeout_options options, sturdy::timing timing = {})
        : options_(checked(options)), timing_(std::move(timing)) {}

    template <class T, class Next, class Done>
    void start(call_context& ctx, Next next, Done done) const {
        detail::with_limits<T>(ctx, next, std::move(done), [this](call_context& c) {
            if (options_.attempt)
                c.deadline = deadline::earliest(c.deadline, deadline::after(timing_.clock, *options_.attempt));
            c.first_token_timeout = detail::tighter(c.first_token_timeout, options_.first_token);
            c.idle_timeout = detail::tighter(c.idle_timeout, options_.idle);
        });
    }

    const timeout_options& options() const noexcept { return options_; }

private:
    static timeout_options checked(const timeout_options& o) {
        constexpr std::string_view policy = "timeout_policy";
        const auto positive = [](const auto& limit) { return !limit || *limit > limit->zero(); };
        detail::require_option(positive(o.attempt), policy, "attempt", "must be positive when set");
        detail::require_option(positive(o.first_token), policy, "first_token", "must be positive when set");
        detail::require_option(positive(o.idle), policy, "idle", "must be positive when set");
        return o;
    }

    timeout_options options_;
    sturdy::timing timing_;
};

}  // namespace sturdy

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
#include <sturdy/policy.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <utility>

namespace sturdy {

namespace detail {

/// Restores a context's limits when an attempt made with narrower ones returns.
class scoped_limits {
public:
    explicit scoped_limits(call_context& ctx)
        : ctx_(ctx), deadline_(ctx.deadline), first_token_(ctx.first_token_timeout), idle_(ctx.idle_timeout) {}
    ~scoped_limits() {
        ctx_.deadline = deadline_;
        ctx_.first_token_timeout = first_token_;
        ctx_.idle_timeout = idle_;
    }
    scoped_limits(const scoped_limits&) = delete;
    scoped_limits& operator=(const scoped_limits&) = delete;

private:
    call_context& ctx_;
    sturdy::deadline deadline_;
    std::optional<std::chrono::milliseconds> first_token_, idle_;
};

inline std::optional<std::chrono::milliseconds> tighter(std::optional<std::chrono::milliseconds> a,
                                                        std::optional<std::chrono::milliseconds> b) {
    if (!a) return b;
    if (!b) return a;
    return std::min(*a, *b);
}

}  // namespace detail

/// One deadline for everything inside it: retries, fallbacks, hedges and their waits.
class deadline_policy {
public:
    explicit deadline_policy(clock::duration total, sturdy::timing timing = {}) : total_(total), timing_(std::move(timing)) {}

    template <class Attempt>
    auto execute(call_context& ctx, Attempt&& attempt) const -> decltype(attempt(ctx)) {
        detail::scoped_limits restore(ctx);
        ctx.deadline = deadline::earliest(ctx.deadline, deadline::after(timing_.clock, total_));
        return attempt(ctx);
    }

    clock::duration total() const noexcept { return total_; }

private:
    clock::duration total_;
    sturdy::timing timing_;
};

/// Limits of each attempt made inside this policy (so place it inside a retry).
struct timeout_options {
    /// The whole attempt, from request to the end of the reply.
    std::optional<clock::duration> attempt;
    /// Streams: the longest wait for the first content.
    std::optional<std::chrono::milliseconds> first_token;
    /// Streams: the longest gap between two chunks.
    std::optional<std::chrono::milliseconds> idle;
};

class timeout_policy {
public:
    explicit timeout_policy(timeout_options options, sturdy::timing timing = {})
        : options_(options), timing_(std::move(timing)) {}

    template <class Attempt>
    auto execute(call_context& ctx, Attempt&& attempt) const -> decltype(attempt(ctx)) {
        detail::scoped_limits restore(ctx);
        if (options_.attempt) ctx.deadline = deadline::earliest(ctx.deadline, deadline::after(timing_.clock, *options_.attempt));
        ctx.first_token_timeout = detail::tighter(ctx.first_token_timeout, options_.first_token);
        ctx.idle_timeout = detail::tighter(ctx.idle_timeout, options_.idle);
        return attempt(ctx);
    }

    const timeout_options& options() const noexcept { return options_; }

private:
    timeout_options options_;
    sturdy::timing timing_;
};

}  // namespace sturdy

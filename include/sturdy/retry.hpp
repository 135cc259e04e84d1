#pragma once
/// @file
/// The retry policy. Its defaults are the official SDKs' contract; every part of it can be changed.

#include <sturdy/backoff.hpp>
#include <sturdy/clock.hpp>
#include <sturdy/error.hpp>
#include <sturdy/events.hpp>
#include <sturdy/executor.hpp>
#include <sturdy/policy.hpp>
#include <sturdy/policy_options.hpp>
#include <sturdy/detail/option_check.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace sturdy {

class retry_budget;

/// Whether an error is worth another attempt, by the official SDKs' rules: the server's
/// `x-should-retry` decides when sent; otherwise 408, 409, 429, 5xx, connection errors and
/// timeouts are retried. Improvements: a 429 for `insufficient_quota` is not transient, a
/// stream cut off before its first content is, and so is a fallback chain whose every target is
/// cooling down after a 429 (its retry_after says when the first is ready again).
inline bool is_transient(const error& e) {
    if (auto hint = e.details().should_retry) return *hint;
    switch (e.kind()) {
        case error_kind::connection:
        case error_kind::timeout:
        case error_kind::stream_truncated:
        case error_kind::internal_server:
        case error_kind::conflict:
            return true;
        case error_kind::rate_limit:
            return e.code() != "insufficient_quota";
        case error_kind::api_status:
            return e.status() == 408;
        case error_kind::rate_limited: return e.code() == error_codes::routes_cooling_down;
        default:
            return false;
    }
}

/// What to do with a Retry-After longer than `retry_options::retry_after_limit`.
enum class long_retry_after {
    use_backoff,  ///< ignore it and use the backoff delay (the official SDKs)
    wait_limit,   ///< wait the limit instead
    give_up,      ///< do not retry
};

/// Reported before each retry's wait.
struct retry_event {
    operation op;
    std::string_view model;
    int retry;                    ///< 1 for the first retry
    clock::duration delay;        ///< the wait before it
    const error& cause;           ///< the failure being retried
    bool from_retry_after;        ///< the delay is the server's Retry-After
};

/// Settings of a retry policy. The defaults are the official SDKs' contract.
///
/// `should_handle` (policy_options) chooses the failures that are retried; empty: is_transient.
/// `name` (empty: "retry") names the policy in its events.
struct retry_options : policy_options {
    /// Retries after the first attempt.
    int max_retries = 2;
    /// Retries allowed per error kind, replacing `should_handle` and `max_retries` for that kind
    /// (as LiteLLM's RetryPolicy): `opts.retries_for(error_kind::rate_limit, 5)`.
    std::array<std::optional<int>, error_kind_count> max_retries_by_kind{};
    /// How long to wait.
    sturdy::backoff backoff = sturdy::backoff::official();
    /// Bounds on a backoff delay (a server's Retry-After is governed by the two settings below).
    clock::duration min_delay = clock::duration::zero();
    clock::duration max_delay = clock::duration::max();
    /// A Retry-After in (0, limit] is waited as asked.
    clock::duration retry_after_limit = std::chrono::seconds(60);
    long_retry_after beyond_limit = long_retry_after::use_backoff;
    /// No retry starts after this much time since the call began.
    std::optional<clock::duration> max_elapsed;
    /// Shared across calls: retries stop when it is spent (see sturdy/retry_budget.hpp).
    std::shared_ptr<retry_budget> budget;
    /// Called before each retry's wait, then the call's event_sink::on_retry.
    std::function<void(const retry_event&)> on_retry;

    retry_options& retries_for(error_kind kind, int retries) {
        max_retries_by_kind[static_cast<std::size_t>(kind)] = retries;
        return *this;
    }
};

/// Retries failed attempts with backoff, honouring the server's Retry-After. Never retries a
/// stream once content reached the caller, never waits past the call's deadline, and stops
/// waiting when the call is cancelled. Each retry is reported, before its wait, to `on_retry` and
/// then to the call's event sink, from the thread whose attempt failed.
///
///     sturdy::retry_policy retry;                       // the official contract
///     sturdy::retry_options opts;
///     opts.max_retries = 5;
///     opts.backoff = sturdy::backoff::decorrelated_jitter(100ms, 10s);
///     sturdy::retry_policy patient(opts);
class retry_policy : public blocking_form<retry_policy> {
public:
    /// Throws std::invalid_argument for a negative max_retries, max_retries_by_kind, min_delay or
    /// retry_after_limit, a max_delay below min_delay, or a max_elapsed that is not positive.
    explicit retry_policy(retry_options options = {}, sturdy::timing timing = {})
        : options_(checked(std::move(options))), timing_(std::move(timing)) {}
    /// The official contract with `max_retries` retries.
    explicit retry_policy(int max_retries) : retry_policy(with_retries(max_retries)) {}

    const retry_options& options() const noexcept { return options_; }

    template <class T, class Next, class Done>
    void start(call_context& ctx, Next next, Done done) const;

private:
    template <class T, class Next, class Done>
    class run;

    static retry_options checked(retry_options o) {
        constexpr std::string_view policy = "retry_policy";
        detail::require_option(o.max_retries >= 0, policy, "max_retries", "must not be negative");
        for (const auto& n : o.max_retries_by_kind)
            detail::require_option(n.value_or(0) >= 0, policy, "max_retries_by_kind", "must not be negative");
        detail::require_option(o.min_delay >= clock::duration::zero(), policy, "min_delay", "must not be negative");
        detail::require_option(o.max_delay >= o.min_delay, policy, "max_delay", "must not be below min_delay");
        detail::require_option(o.retry_after_limit >= clock::duration::zero(), policy, "retry_after_limit",
                               "must not be negative");
        detail::require_option(!o.max_elapsed || *o.max_elapsed > clock::duration::zero(), policy, "max_elapsed",
                               "must be positive when set");
        return detail::named(std::move(o), "retry");
    }
    static retry_options with_retries(int n) {
        retry_options o;
        o.max_retries = n;
        return o;
    }

    struct plan {
        clock::duration delay;
        bool from_retry_after;
    };
    std::optional<plan> next_wait(const call_context& ctx, const error& e, int retries, int retries_of_kind,
                                  backoff_state& state, clock::time_point started) const;

    retry_options options_;
    sturdy::timing timing_;
};

}  // namespace sturdy

#include <sturdy/retry_budget.hpp>

namespace sturdy {

/// One call through a retry policy: its attempts so far, and the decision after each.
template <class T, class Next, class Done>
class retry_policy::run : public std::enable_shared_from_this<run<T, Next, Done>> {
public:
    run(const retry_policy& policy, call_context& ctx, Next next, Done done)
        : policy_(policy), ctx_(ctx), next_(std::move(next)), done_(std::move(done)),
          started_(policy.timing_.clock->now()) {}

    /// Makes one attempt; `self` (this run) is held by its continuation until the outcome is in.
    static void attempt(std::shared_ptr<run> self) {
        run& r = *self;
        r.next_(r.ctx_, settle_outcome{std::move(self)});
    }

private:
    struct settle_outcome {
        std::shared_ptr<run> self;
        void operator()(result<T> outcome) const { self->settle(std::move(outcome)); }
    };

    void settle(result<T> outcome) {
        if (outcome) return finish(std::move(outcome));
        const error failure = outcome.error();
        const auto kind = static_cast<std::size_t>(failure.kind());
        auto wait = policy_.next_wait(ctx_, failure, retries_, retries_by_kind_[kind], backoff_, started_);
        if (!wait) return finish(std::move(outcome));
        ++retries_by_kind_[kind];
        ++retries_;
        const auto& o = policy_.options_;
        detail::emit(
            o.on_retry, ctx_.events, detail::source(ctx_, o.name),
            retry_event{ctx_.op, ctx_.effective_model(), retries_, wait->delay, failure, wait->from_retry_after});
        ctx_.exec->after(
            *policy_.timing_.clock, wait->delay, ctx_.cancel, [self = this->shared_from_this(), failure](bool elapsed) {
                if (elapsed) return attempt(std::move(self));
                self->finish(error(error_kind::cancelled,
                                   "cancelled while waiting to retry after: " + std::string(failure.what())));
            });
    }

    void finish(result<T> outcome) { done_(std::move(outcome)); }

    const retry_policy& policy_;
    call_context& ctx_;
    Next next_;
    Done done_;
    clock::time_point started_;
    backoff_state backoff_;
    int retries_ = 0;
    std::array<int, error_kind_count> retries_by_kind_{};
};

template <class T, class Next, class Done>
void retry_policy::start(call_context& ctx, Next next, Done done) const {
    if (options_.budget) options_.budget->record_call();
    run<T, Next, Done>::attempt(std::make_shared<run<T, Next, Done>>(*this, ctx, std::move(next), std::move(done)));
}

inline std::optional<retry_policy::plan> retry_policy::next_wait(const call_context& ctx, const error& e, int retries,
                                                                 int retries_of_kind, backoff_state& state,
                                                                 clock::time_point started) const {
    // A stream that delivered content must not be replayed; a cancelled call is over.
    if (ctx.state->committed() || ctx.cancel.cancelled()) return std::nullopt;
    const auto& per_kind = options_.max_retries_by_kind[static_cast<std::size_t>(e.kind())];
    if (per_kind ? retries_of_kind >= *per_kind
                 : (retries >= options_.max_retries || !matches(options_.should_handle, is_transient, e)))
        return std::nullopt;

    plan p{clock::duration::zero(), false};
    const auto asked = e.retry_after();
    if (asked && *asked > clock::duration::zero() && *asked <= options_.retry_after_limit) {
        p = {*asked, true};
    } else if (asked && *asked > options_.retry_after_limit && options_.beyond_limit != long_retry_after::use_backoff) {
        if (options_.beyond_limit == long_retry_after::give_up) return std::nullopt;
        p = {options_.retry_after_limit, true};
    } else {
        auto d = options_.backoff.next(state, *timing_.random);
        p = {std::clamp(d, options_.min_delay, options_.max_delay), false};
    }

    if (options_.max_elapsed && timing_.clock->now() - started + p.delay > *options_.max_elapsed) return std::nullopt;
    // Fail now rather than sleep into a deadline that leaves no time for the attempt.
    if (ctx.deadline.is_set() && p.delay >= ctx.deadline.remaining()) return std::nullopt;
    if (options_.budget && !options_.budget->try_spend()) return std::nullopt;
    return p;
}

}  // namespace sturdy

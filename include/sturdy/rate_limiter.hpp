#pragma once
/// @file
/// A client-side rate limiter: token buckets for requests and tokens per minute, so that a batch
/// stays under a provider's RPM and TPM limits instead of discovering them as 429s.
///
///     sturdy::rate_limiter_options limits;
///     limits.name = "openai";
///     limits.requests = 500;                     // per minute
///     limits.tokens = 200000;                    // per minute
///     limits.adapt_to_server = true;             // also follow x-ratelimit-* and 429s
///     sturdy::rate_limiter limiter(limits);      // keep a copy to watch it: copies share the buckets
///     auto policy = sturdy::compose(sturdy::retry_policy(), limiter);   // each attempt is counted
///
/// A call reserves one request and its estimated tokens (the prompt, ~4 characters a token, plus
/// `max_tokens` or `expected_completion_tokens`) before its attempt, and the reply's usage corrects
/// the estimate afterwards. When the budget is short the call waits, in arrival order; when the
/// wait would be longer than `max_wait` or run past the call's deadline, it is refused at once
/// with `error_kind::rate_limited`, whose `retry_after()` says when the budget will be back.

#include <sturdy/clock.hpp>
#include <sturdy/error.hpp>
#include <sturdy/policy.hpp>
#include <sturdy/detail/duration_text.hpp>
#include <sturdy/detail/option_check.hpp>
#include <sturdy/retry_after.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace sturdy {

/// Which of a limiter's budgets held a call back.
enum class rate_limit_kind { requests, tokens };

constexpr std::string_view to_string(rate_limit_kind kind) noexcept {
    return kind == rate_limit_kind::requests ? "requests" : "tokens";
}

/// Reads the reset time of an `x-ratelimit-reset-*` header, Go's duration syntax as OpenAI sends
/// it: "1s", "6m0s", "20ms", "1m30.5s", "1h2m", with units h, m, s, ms, us (or µs) and ns.
/// Nullopt for anything else (a bare number other than "0", a negative or absurd value).
inline std::optional<clock::duration> parse_reset_duration(std::string_view text) {
    text = detail::trim(text);
    if (text == "0") return clock::duration::zero();
    if (text.empty()) return std::nullopt;
    auto numeric = [](char c) { return (c >= '0' && c <= '9') || c == '.'; };
    double ns = 0;
    while (!text.empty()) {
        std::size_t digits = 0;
        while (digits < text.size() && numeric(text[digits])) ++digits;
        const auto number = detail::parse_decimal(text.substr(0, digits));
        if (digits == 0 || !number) return std::nullopt;
        text.remove_prefix(digits);
        std::size_t letters = 0;
        while (letters < text.size() && !numeric(text[letters])) ++letters;
        const auto unit = text.substr(0, letters);
        text.remove_prefix(letters);
        double scale = 0;
        if (unit == "h") scale = 3600e9;
        else if (unit == "m") scale = 60e9;
        else if (unit == "s") scale = 1e9;
        else if (unit == "ms") scale = 1e6;
        else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") scale = 1e3;  // micro sign, Greek mu
        else if (unit == "ns") scale = 1;
        else return std::nullopt;
        ns += *number * scale;
    }
    // Beyond about 30 years the value is not a reset time but garbage.
    if (!(ns <= 1e18)) return std::nullopt;
    return clock::duration(static_cast<clock::duration::rep>(std::llround(ns)));
}

/// Reported when a call waits for its budget (before the wait) or is refused.
struct rate_limited_event {
    std::string_view limiter;  ///< rate_limiter_options::name
    operation op;
    std::string_view model;
    rate_limit_kind limit;     ///< the budget that held the call back (the longer wait)
    clock::duration wait;      ///< the wait; for a refusal, the wait it would have needed (zero: never enough)
    bool rejected;             ///< refused with error_kind::rate_limited instead of waiting
    std::int64_t tokens;       ///< the tokens reserved for the call (its estimate)
};

/// What to do with a call whose token estimate is larger than the whole token bucket.
enum class oversized_request {
    reject,          ///< refuse it at once, without a retry hint: no wait would make room
    alone_when_full, ///< let it through once the bucket is full; its debt then holds back later calls
};

/// Settings of a rate limiter. A zero limit is no limit; the defaults limit nothing.
struct rate_limiter_options {
    /// Names the limiter in errors and events.
    std::string name = "rate_limiter";
    /// Requests allowed per `period` (RPM with the default period).
    std::int64_t requests = 0;
    /// Tokens allowed per `period` (TPM with the default period), prompt and completion together.
    std::int64_t tokens = 0;
    /// The buckets refill continuously: `requests` (`tokens`) per `period`.
    clock::duration period = std::chrono::minutes(1);
    /// Bucket sizes: how much may go at once after a quiet spell. Default: a whole period's worth.
    std::optional<std::int64_t> request_burst;
    std::optional<std::int64_t> token_burst;
    /// Completion tokens expected of a chat request without `max_tokens` (with it, `max_tokens`
    /// counts, as providers count it). The reply's usage corrects the estimate either way.
    std::int64_t expected_completion_tokens = 256;
    /// The longest wait for budget; a call that would wait longer is refused at once. Zero: never wait.
    clock::duration max_wait = std::chrono::seconds(60);
    oversized_request oversized = oversized_request::reject;
    /// Follow the server: lower the buckets to its `x-ratelimit-remaining-*`, hold calls until its
    /// `x-ratelimit-reset-*` when one is at 0, and after a 429 empty the bucket it names and hold
    /// until its Retry-After. Off by default: with one limiter before several models or providers,
    /// one model's limits would hold back the others.
    bool adapt_to_server = false;
    /// Called when a call waits or is refused (outside the limiter's lock).
    std::function<void(const rate_limited_event&)> on_rate_limited;
};

namespace detail {

/// A token bucket whose level may go below zero: a caller takes its share at once and waits
/// until the debt is paid off, so waiters are served in arrival order (the reservations of
/// golang.org/x/time/rate and Guava's RateLimiter). Not synchronised: the owner locks.
class token_bucket {
public:
    token_bucket() = default;  ///< no limit
    token_bucket(std::int64_t limit, std::int64_t capacity, clock::duration period, clock::time_point now)
        : limit_(static_cast<double>(limit)), capacity_(static_cast<double>(capacity)),
          period_ns_(static_cast<double>(period.count())), level_(capacity_), stamp_(now) {}

    bool limited() const noexcept { return limit_ > 0; }
    double capacity() const noexcept { return capacity_; }
    double limit() const noexcept { return limit_; }

    /// The level at `now`: refilled continuously since the last change, never above capacity.
    double level(clock::time_point now) const {
        if (!limited()) return std::numeric_limits<double>::infinity();
        if (now <= stamp_) return level_;
        // elapsed * limit / period, in this order, keeps whole-second refills exact.
        return std::min(capacity_, level_ + static_cast<double>((now - stamp_).count()) * limit_ / period_ns_);
    }

    /// How long from `now` until the level is back up to `need`, and no sooner than a hold ends.
    clock::duration wait(double need, clock::time_point now) const {
        const clock::duration held = hold_until_ > now ? hold_until_ - now : clock::duration::zero();
        if (!limited()) return held;
        const double missing = need - level(now);
        if (missing <= 1e-9) return held;
        const double ns = std::ceil(missing * period_ns_ / limit_);
        return std::max(held, clock::duration(static_cast<clock::duration::rep>(std::min(ns, 1e18))));
    }

    bool held(clock::time_point now) const noexcept { return hold_until_ > now; }

    /// Takes `n` (a negative `n` gives back, up to capacity).
    void take(double n, clock::time_point now) {
        if (!limited()) return;
        settle(now);
        level_ = std::min(capacity_, level_ - n);
    }
    /// Lowers the level to `n` if it is higher (the server knows better).
    void lower_to(double n, clock::time_point now) {
        if (!limited()) return;
        settle(now);
        level_ = std::min(level_, n);
    }
    /// Lets nothing through before `until`.
    void hold(clock::time_point until) { hold_until_ = std::max(hold_until_, until); }

private:
    void settle(clock::time_point now) {
        level_ = level(now);
        stamp_ = std::max(stamp_, now);
    }

    double limit_ = 0, capacity_ = 0, period_ns_ = 1, level_ = 0;
    clock::time_point stamp_{};
    clock::time_point hold_until_ = clock::time_point::min();
};

}  // namespace detail

/// Client-side RPM and TPM limits as a policy: see the top of this file. Place it inside a retry
/// so that every attempt is counted. Copies share their buckets; thread-safe.
class rate_limiter {
public:
    /// Throws std::invalid_argument for negative limits, a burst below 1 or a period of 0.
    explicit rate_limiter(rate_limiter_options options = {}, sturdy::timing timing = {})
        : state_(std::make_shared<state>(std::move(options), std::move(timing))) {}

    const rate_limiter_options& options() const noexcept { return state_->options; }

    /// The budget left now: negative when callers are waiting for it, infinite without a limit.
    double available(rate_limit_kind kind) const {
        std::lock_guard<std::mutex> lock(state_->mutex);
        return bucket(kind).level(state_->timing.clock->now());
    }

    /// The tokens a call is charged before its attempt: the prompt estimate, plus for chat the
    /// reply's `max_tokens` or `expected_completion_tokens`.
    std::int64_t estimate(const call_context& ctx) const {
        std::int64_t n = std::max<std::int64_t>(ctx.estimated_prompt_tokens, 0);
        if (ctx.op == operation::chat || ctx.op == operation::chat_stream)
            n += ctx.max_output_tokens ? std::max<std::int64_t>(*ctx.max_output_tokens, 0) : state_->options.expected_completion_tokens;
        return n;
    }

    template <class Attempt>
    auto execute(call_context& ctx, Attempt&& attempt) const -> decltype(attempt(ctx)) {
        const std::int64_t tokens = estimate(ctx);
        auto p = reserve(ctx, tokens);
        if (p.event && state_->options.on_rate_limited) state_->options.on_rate_limited(*p.event);
        if (p.refusal) {
            ctx.state->note_error(*p.refusal);  // no attempt will record it
            return *p.refusal;
        }
        if (p.wait > clock::duration::zero() && !state_->timing.clock->sleep_for(p.wait, ctx.cancel)) {
            give_back(tokens);
            return error(error_kind::cancelled, "cancelled while waiting for rate limiter '" + state_->options.name + "'");
        }
        auto outcome = attempt(ctx);
        observe(ctx, tokens, outcome ? nullptr : &outcome.error());
        return outcome;
    }

private:
    struct state {
        state(rate_limiter_options o, sturdy::timing t) : options(std::move(o)), timing(std::move(t)) {
            constexpr std::string_view policy = "rate_limiter";
            detail::require_option(options.requests >= 0, policy, "requests", "must not be negative");
            detail::require_option(options.tokens >= 0, policy, "tokens", "must not be negative");
            detail::require_option(options.period > clock::duration::zero(), policy, "period", "must be positive");
            detail::require_option(options.request_burst.value_or(1) >= 1, policy, "request_burst",
                                   "must be at least 1");
            detail::require_option(options.token_burst.value_or(1) >= 1, policy, "token_burst", "must be at least 1");
            detail::require_option(options.expected_completion_tokens >= 0, policy, "expected_completion_tokens",
                                   "must not be negative");
            detail::require_option(options.max_wait >= clock::duration::zero(), policy, "max_wait",
                                   "must not be negative");
            const auto now = timing.clock->now();
            if (options.requests > 0)
                requests = detail::token_bucket(options.requests, options.request_burst.value_or(options.requests), options.period, now);
            if (options.tokens > 0)
                tokens = detail::token_bucket(options.tokens, options.token_burst.value_or(options.tokens), options.period, now);
        }
        const rate_limiter_options options;
        const sturdy::timing timing;
        std::mutex mutex;
        detail::token_bucket requests, tokens;
    };

    struct plan {
        clock::duration wait = clock::duration::zero();
        std::optional<error> refusal;
        std::optional<rate_limited_event> event;
    };

    detail::token_bucket& bucket(rate_limit_kind kind) const {
        return kind == rate_limit_kind::requests ? state_->requests : state_->tokens;
    }

    std::string describe(rate_limit_kind kind) const {
        const auto& b = bucket(kind);
        if (!b.limited()) return "the server's " + std::string(to_string(kind)) + " limit";
        return "the " + std::string(to_string(kind)) + " limit (" + std::to_string(static_cast<std::int64_t>(b.limit())) + " per " +
               detail::duration_text(state_->options.period) + ")";
    }

    error refusal(std::string_view code, std::string message, std::optional<clock::duration> wait) const {
        error_details d;
        d.code = std::string(code);
        d.message = "rate limiter '" + state_->options.name + "' refused the call: " + std::move(message);
        if (wait) d.retry_after = std::chrono::ceil<std::chrono::milliseconds>(*wait);
        return error(error_kind::rate_limited, std::move(d));
    }

    /// Takes the call's share of both buckets and says how long to wait, or refuses the call.
    plan reserve(const call_context& ctx, std::int64_t tokens) const {
        auto& s = *state_;
        const auto& o = s.options;
        plan p;
        rate_limited_event event{o.name, ctx.op, ctx.effective_model(), rate_limit_kind::tokens, clock::duration::zero(), true, tokens};
        std::lock_guard<std::mutex> lock(s.mutex);
        const auto now = s.timing.clock->now();
        const auto n = static_cast<double>(tokens);
        const bool oversized = s.tokens.limited() && n > s.tokens.capacity();
        if (oversized && o.oversized == oversized_request::reject) {
            p.refusal = refusal(error_codes::request_too_large, "the request's ~" + std::to_string(tokens) + " tokens exceed " + describe(rate_limit_kind::tokens) +
                                    ", whose bucket holds " + std::to_string(static_cast<std::int64_t>(s.tokens.capacity())),
                                std::nullopt);
            p.event = event;
            return p;
        }
        // An oversized call waits for a full bucket, then takes more than it holds.
        const auto token_wait = tokens > 0 ? s.tokens.wait(std::min(n, s.tokens.capacity()), now) : clock::duration::zero();
        const auto request_wait = s.requests.wait(1, now);
        event.limit = token_wait > request_wait ? rate_limit_kind::tokens : rate_limit_kind::requests;
        event.wait = std::max(token_wait, request_wait);
        if (event.wait > clock::duration::zero()) {
            std::string why;
            if (event.wait > o.max_wait) why = "longer than max_wait (" + detail::duration_text(o.max_wait) + ")";
            else if (ctx.deadline.is_set() && event.wait >= ctx.deadline.remaining()) why = "past the call's deadline";
            if (!why.empty()) {
                const bool by_server = bucket(event.limit).held(now);
                p.refusal = refusal(event.limit == rate_limit_kind::tokens ? error_codes::tokens_limit : error_codes::requests_limit,
                                    describe(event.limit) + " has no room for another " + detail::duration_text(event.wait) +
                                        (by_server ? " (as the server said)" : "") + ", " + why,
                                    event.wait);
                p.event = event;
                return p;
            }
            event.rejected = false;
            p.event = event;
        }
        s.requests.take(1, now);
        if (tokens > 0) s.tokens.take(n, now);
        p.wait = event.wait;
        return p;
    }

    void give_back(std::int64_t tokens) const {
        std::lock_guard<std::mutex> lock(state_->mutex);
        const auto now = state_->timing.clock->now();
        state_->requests.take(-1, now);
        if (tokens > 0) state_->tokens.take(-static_cast<double>(tokens), now);
    }

    /// After the attempt: the reply's usage replaces the estimate; the server's limits lower ours.
    void observe(const call_context& ctx, std::int64_t tokens, const error* failure) const {
        auto& s = *state_;
        std::lock_guard<std::mutex> lock(s.mutex);
        const auto now = s.timing.clock->now();
        if (tokens > 0 && ctx.last_reply.usage)
            s.tokens.take(static_cast<double>(ctx.last_reply.usage->total_tokens - tokens), now);
        if (!s.options.adapt_to_server) return;
        follow_headers(s.requests, ctx.last_reply.headers, "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests", now);
        follow_headers(s.tokens, ctx.last_reply.headers, "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens", now);
        // Exhausted quota is not a rate: holding calls back would not bring it back.
        if (failure && failure->kind() == error_kind::rate_limit && failure->code() != "insufficient_quota") {
            // OpenAI's 429 names the exhausted limit in its type: "requests" or "tokens".
            auto& b = failure->type() == "tokens" ? s.tokens : s.requests;
            b.lower_to(0, now);
            if (auto after = failure->retry_after(); after && *after > clock::duration::zero()) b.hold(now + *after);
        }
    }

    static void follow_headers(detail::token_bucket& b, const response_headers& headers, std::string_view remaining_name,
                               std::string_view reset_name, clock::time_point now) {
        const auto remaining_text = headers.find(remaining_name);
        if (!remaining_text) return;
        const auto remaining = detail::parse_decimal(*remaining_text);
        if (!remaining || *remaining < 0) return;
        b.lower_to(*remaining, now);
        if (*remaining < 1)
            if (auto reset = parse_reset_duration(headers.get(reset_name))) b.hold(now + *reset);
    }

    std::shared_ptr<state> state_;
};

}  // namespace sturdy

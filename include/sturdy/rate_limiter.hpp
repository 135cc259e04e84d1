#pragma once
/// @file
/// A client-side rate limiter: caps on the requests and tokens started in any window of a period
/// (RPM and TPM by default), so that a batch stays under a provider's limits instead of
/// discovering them as 429s.
///
///     sturdy::rate_limiter_options limits;
///     limits.name = "openai";
///     limits.requests = 500;                     // at most 500 starts in any minute
///     limits.tokens = 200000;                    // at most 200000 tokens reserved in any minute
///     limits.adapt_to_server = true;             // also follow x-ratelimit-* and 429s
///     sturdy::rate_limiter limiter(limits);      // keep a copy to watch it: copies share the windows
///     auto policy = sturdy::compose(sturdy::retry_policy(), limiter);   // each attempt is counted
///
/// The limits are sliding windows, exact: with `requests = N`, no window of length `period` holds
/// more than N starts (plus `request_burst`, none by default), wherever it begins. A call reserves
/// one request and its estimated tokens (the prompt as `client_options::tokens` counts it, plus `max_tokens` or
/// `expected_completion_tokens`) at its start, and the reply's usage corrects the reserved tokens
/// afterwards. When a window is full the call waits, in arrival order, until enough of it has left;
/// when the wait would be longer than `max_wait` or run past the call's deadline, it is refused at
/// once with `error_kind::rate_limited`, whose `retry_after()` says when there will be room.
///
/// Inside, a decision core (`detail::rate_limit_core`) decides from the time it is given and never
/// sleeps; the policy reads the clock, asks the core, and has the call's executor wait
/// (`ctx.exec->after`) until the reservation's start. The windows are kept in a state store under
/// the limiter's name (`rate_limiter_options::store`, sturdy/state_store.hpp), so that limiters of
/// one name can share them across clients, and one day across processes.

#include <sturdy/clock.hpp>
#include <sturdy/error.hpp>
#include <sturdy/events.hpp>
#include <sturdy/executor.hpp>
#include <sturdy/policy.hpp>
#include <sturdy/policy_options.hpp>
#include <sturdy/detail/duration_text.hpp>
#include <sturdy/detail/option_check.hpp>
#include <sturdy/retry_after.hpp>
#include <sturdy/state_store.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
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

/// Reported when a call waits for room (before the wait) or is refused.
struct rate_limited_event {
    std::string_view limiter;  ///< rate_limiter_options::name
    operation op;
    std::string_view model;
    rate_limit_kind limit;     ///< the budget that held the call back (the longer wait)
    clock::duration wait;      ///< the wait; for a refusal, the wait it would have needed (zero: never enough)
    bool rejected;             ///< refused with error_kind::rate_limited instead of waiting
    std::int64_t tokens;       ///< the tokens reserved for the call (its estimate)
};

/// What to do with a call whose token estimate is more than a whole window may hold.
enum class oversized_request {
    reject,           ///< refuse it at once, without a retry hint: no wait would make room
    alone_when_full,  ///< let it start once the window holds nothing else; later calls wait until it leaves the window
};

struct rate_limiter_state;

/// Settings of a rate limiter. A zero limit is no limit; the defaults limit nothing.
///
/// From policy_options: `name` (empty: "rate_limiter") names the limiter in errors and events.
/// `should_handle` has no use here and must stay empty: a limiter decides before the attempt, so
/// no failure passes through it to be chosen (a 429 that adapt_to_server follows is the server's
/// word on the limits, not a failure the limiter handles). A predicate set on it is refused rather
/// than ignored in silence.
struct rate_limiter_options : policy_options {
    /// At most this many requests start in any window of `period` (RPM with the default period).
    std::int64_t requests = 0;
    /// At most this many tokens, prompt and completion together, are reserved by the calls that
    /// start in any window of `period` (TPM with the default period).
    std::int64_t tokens = 0;
    /// The length of the sliding window: a start counts against the limits for exactly this long.
    clock::duration period = std::chrono::minutes(1);
    /// Extra starts (tokens) a window may hold above the limit, for a provider known to tolerate
    /// bursts: at most `requests + request_burst` starts, and `tokens + token_burst` tokens, in any
    /// period. None by default, so that a limit is a cap. To spread a limit out rather than let it
    /// go at once, state it over a shorter period: 600 a minute as `requests = 10, period = 1s`.
    std::int64_t request_burst = 0;
    std::int64_t token_burst = 0;
    /// Completion tokens expected of a chat request without `max_tokens` (with it, `max_tokens`
    /// counts, as providers count it). The reply's usage corrects the estimate either way.
    std::int64_t expected_completion_tokens = 256;
    /// The longest wait for room; a call that would wait longer is refused at once. Zero: never wait.
    clock::duration max_wait = std::chrono::seconds(60);
    oversized_request oversized = oversized_request::reject;
    /// Follow the server: lower the room left to its `x-ratelimit-remaining-*` (what it counts
    /// beyond our own starts comes back at our limit's rate, as its budget refills), hold calls
    /// until its `x-ratelimit-reset-*` when one is at 0, and after a 429 take all the room left in
    /// the budget it names and hold until its Retry-After. Off by default: with one limiter before
    /// several models or providers, one model's limits would hold back the others.
    bool adapt_to_server = false;
    /// Called when a call waits or is refused (outside the limiter's lock), then that call's
    /// event_sink.
    std::function<void(const rate_limited_event&)> on_rate_limited;
    /// Where the windows live (sturdy/state_store.hpp), under the limiter's `name`: limiters of one
    /// name on one store share their windows, whichever client they are in. Null: a store of this
    /// limiter's own, shared by its copies alone.
    std::shared_ptr<state_store<rate_limiter_state>> store{};
};

namespace detail {

/// One budget, requests or tokens, as a sliding window of what started in the last `period`: a
/// start stays in the window for exactly one period. A new start at t goes only when everything
/// that has not left by t (the starts after t - period, waiting reservations included) leaves room
/// for it, which covers every window containing t. Reservations may lie in the future (callers
/// waiting for their turn), each no earlier than the one before, so that callers are served in
/// arrival order and the log stays in order of departure.
///
/// Memory: the log keeps one entry per distinct start time still in the window, and never more
/// than `max_entries`. A requests window holds at most its cap of entries (each holds a start, and
/// a reservation is made only within the cap), so up to `max_entries` a period it is always exact.
/// Past the bound (a busy window), neighbours merge pairwise, each pair into its later entry,
/// whose amount then leaves the window a little late: that can only hold calls back, never let
/// more than the cap through. Halving the log at once, rather than merging one pair per
/// reservation, keeps the work per call constant when amortised.
///
/// The server's word comes in two forms: a hold (nothing starts before a time) and a claim, room
/// the server counts as used beyond what the log holds, which drains at the limit's rate as the
/// server's own budget refills. Not synchronised: the owner locks.
class rate_window {
public:
    static constexpr std::size_t max_entries = 1024;

    rate_window() = default;  ///< no limit
    rate_window(std::int64_t limit, std::int64_t burst, clock::duration period)
        : limit_(limit), cap_(limit + burst), period_(period) {}

    bool limited() const noexcept { return limit_ > 0; }
    /// The most a window may hold: the limit plus its burst.
    std::int64_t cap() const noexcept { return cap_; }
    std::size_t entries() const noexcept { return log_.size(); }

    /// The room left at `now`: negative while reservations wait for their start, infinite without a limit.
    double room(clock::time_point now) const {
        if (!limited()) return std::numeric_limits<double>::infinity();
        return static_cast<double>(cap_ - held_at(now)) - claim_at(now);
    }

    /// The earliest start for `amount` more, no sooner than `now`, any earlier reservation and any
    /// hold, at which what has not left the window by then leaves room for it. An amount above the
    /// cap needs the window empty.
    clock::time_point earliest_start(std::int64_t amount, clock::time_point now) const {
        if (!limited()) return std::max(now, hold_until_);
        clock::time_point at = std::max({now, latest_start_, hold_until_});
        const std::int64_t may_hold_besides = cap_ - std::min(amount, cap_);
        std::int64_t held = logged_;
        auto next = log_.begin();
        const auto leave_until = [&](clock::time_point t) {
            for (; next != log_.end() && next->leaves <= t; ++next) held -= next->amount;
        };
        leave_until(at);
        for (;;) {
            if (held <= may_hold_besides) {
                // The claim drains continuously: its room may come before the next departure.
                const auto drained = claim_drained_to(static_cast<double>(may_hold_besides - held), at);
                if (next == log_.end() || drained < next->leaves) return drained;
            }
            // Not the end of the log: an empty log holds nothing, and then the claim drains in time.
            at = next->leaves;
            leave_until(at);
        }
    }

    /// Records `amount` starting at `start`, a time earliest_start gave (or later).
    void reserve(std::int64_t amount, clock::time_point start, clock::time_point now) {
        if (!limited() || amount <= 0) return;
        forget_departed(now);
        latest_start_ = std::max(latest_start_, start);
        const clock::time_point leaves = start + period_;
        logged_ += amount;
        if (!log_.empty() && log_.back().leaves == leaves) {
            log_.back().amount += amount;
            return;
        }
        log_.push_back({leaves, amount});
        if (log_.size() > max_entries) halve();
    }

    /// Changes what the reservation that started at `start` holds by `delta`: the reply's usage
    /// against the estimate, or minus all of it to give it back. Nothing once it has left.
    void adjust(clock::time_point start, std::int64_t delta, clock::time_point now) {
        if (!limited() || delta == 0) return;
        forget_departed(now);
        const clock::time_point leaves = start + period_;
        if (leaves <= now) return;
        // Its own entry, or the later one it was merged into: entries only ever merge forward.
        const auto holder = std::lower_bound(log_.begin(), log_.end(), leaves,
                                             [](const entry& e, clock::time_point t) { return e.leaves < t; });
        if (holder == log_.end()) return;
        const std::int64_t change = std::max(delta, -holder->amount);
        holder->amount += change;
        logged_ += change;
        if (holder->amount == 0) log_.erase(holder);
    }

    /// Lowers the room left to `level` if it is higher (the server knows better).
    void lower_room_to(double level, clock::time_point now) {
        if (!limited()) return;
        forget_departed(now);
        const double excess = room(now) - level;
        if (!(excess > 0)) return;  // also a NaN level
        claim_ = claim_at(now) + excess;
        claim_since_ = now;
    }

    /// Lets nothing start before `until`.
    void hold(clock::time_point until) { hold_until_ = std::max(hold_until_, until); }
    bool held(clock::time_point now) const noexcept { return hold_until_ > now; }

private:
    struct entry {
        clock::time_point leaves;  ///< when the starts it records leave the window
        std::int64_t amount;
    };

    double period_ns() const { return static_cast<double>(period_.count()); }

    /// What the log holds at `now`: everything that has not left yet.
    std::int64_t held_at(clock::time_point now) const {
        std::int64_t held = logged_;
        for (const auto& e : log_) {
            if (e.leaves > now) break;
            held -= e.amount;
        }
        return held;
    }

    double claim_at(clock::time_point t) const {
        if (claim_ <= 0) return 0;
        if (t <= claim_since_) return claim_;
        // elapsed * limit / period, in this order, keeps whole-second drains exact.
        const double drained =
            static_cast<double>((t - claim_since_).count()) * static_cast<double>(limit_) / period_ns();
        return std::max(0.0, claim_ - drained);
    }

    /// The first time from `from` at which the claim is down to `level`.
    clock::time_point claim_drained_to(double level, clock::time_point from) const {
        const double excess = claim_at(from) - level;
        if (excess <= 1e-9) return from;
        const double ns = std::ceil(excess * period_ns() / static_cast<double>(limit_));
        return from + clock::duration(static_cast<clock::duration::rep>(std::min(ns, 1e18)));
    }

    void forget_departed(clock::time_point now) {
        for (; !log_.empty() && log_.front().leaves <= now; log_.pop_front()) logged_ -= log_.front().amount;
        if (claim_at(now) <= 0) claim_ = 0;
    }

    /// Keeps the log within max_entries: neighbours merge pairwise into the later of each pair.
    void halve() {
        std::size_t kept = 0;
        for (std::size_t i = 0; i < log_.size(); i += 2) {
            entry merged = log_[i];
            if (i + 1 < log_.size()) merged = {log_[i + 1].leaves, merged.amount + log_[i + 1].amount};
            log_[kept++] = merged;
        }
        log_.resize(kept);
    }

    std::int64_t limit_ = 0, cap_ = 0;
    clock::duration period_{1};
    std::deque<entry> log_;    ///< ordered by departure
    std::int64_t logged_ = 0;  ///< the sum of the log's amounts
    clock::time_point latest_start_ = clock::time_point::min();
    clock::time_point hold_until_ = clock::time_point::min();
    double claim_ = 0;
    clock::time_point claim_since_{};
};

}  // namespace detail

/// What the limiters of one name share, kept in their store (`rate_limiter_options::store`): the
/// two windows. A plain value, apart from the options and the decisions, so that it can move to a
/// store outside the process without changing them.
struct rate_limiter_state {
    detail::rate_window requests, tokens;

    detail::rate_window& of(rate_limit_kind kind) { return kind == rate_limit_kind::requests ? requests : tokens; }
    const detail::rate_window& of(rate_limit_kind kind) const {
        return kind == rate_limit_kind::requests ? requests : tokens;
    }
};

namespace detail {

/// What a call asks of the limiter.
struct rate_request {
    std::int64_t tokens = 0;                   ///< its token estimate
    std::optional<clock::duration> time_left;  ///< until its deadline, when it has one
};

/// A call's place in the windows, for the usage correction or the give-back that follows.
struct rate_reservation {
    clock::time_point start{};
    std::int64_t tokens = 0;
};

enum class rate_refusal {
    too_large,      ///< more tokens than any window may hold, and oversized_request::reject
    wait_too_long,  ///< the wait is longer than max_wait
    past_deadline,  ///< the wait would run to the call's deadline or past it
};

/// The core's answer: a reservation and the wait until its start, or a refusal.
struct rate_decision {
    std::optional<rate_reservation> admitted;
    std::optional<rate_refusal> refused;
    /// Until the start; for a refusal, the wait it would have needed (zero: never enough).
    clock::duration wait = clock::duration::zero();
    rate_limit_kind limit = rate_limit_kind::tokens;  ///< the budget that set the wait
    bool by_server = false;                           ///< that budget is held by the server's word
};

/// The limiter's decisions: given the shared state and the time, when a call may start, or why it
/// may not; and what a reply changes. It reads no clock, never sleeps and changes nothing but the
/// state it is given, so that a store may run it again (sturdy/state_store.hpp): whoever calls it
/// reads the time and waits.
class rate_limit_core {
public:
    /// Throws std::invalid_argument for options that make no sense.
    explicit rate_limit_core(rate_limiter_options options) : options_(validated(std::move(options))) {}

    const rate_limiter_options& options() const noexcept { return options_; }

    /// Empty windows of the configured sizes.
    rate_limiter_state fresh_state() const {
        rate_limiter_state s;
        if (options_.requests > 0) s.requests = rate_window(options_.requests, options_.request_burst, options_.period);
        if (options_.tokens > 0) s.tokens = rate_window(options_.tokens, options_.token_burst, options_.period);
        return s;
    }

    /// Reserves one request and the call's tokens at the earliest start both windows allow, or
    /// refuses the call, reserving nothing.
    rate_decision reserve(rate_limiter_state& s, const rate_request& call, clock::time_point now) const {
        rate_decision d;
        if (s.tokens.limited() && call.tokens > s.tokens.cap() && options_.oversized == oversized_request::reject) {
            d.refused = rate_refusal::too_large;
            return d;
        }
        // A call without tokens is no part of the tokens window's order, nor held by it.
        const auto tokens_at = call.tokens > 0 ? s.tokens.earliest_start(call.tokens, now) : now;
        const auto requests_at = s.requests.earliest_start(1, now);
        d.limit = tokens_at > requests_at ? rate_limit_kind::tokens : rate_limit_kind::requests;
        const auto start = std::max(tokens_at, requests_at);
        d.wait = start - now;
        d.by_server = s.of(d.limit).held(now);
        if (d.wait > options_.max_wait) {
            d.refused = rate_refusal::wait_too_long;
        } else if (d.wait > clock::duration::zero() && call.time_left && d.wait >= *call.time_left) {
            d.refused = rate_refusal::past_deadline;
        }
        if (d.refused) return d;
        // Room only grows with time, so the later of the two starts suits both windows.
        s.requests.reserve(1, start, now);
        s.tokens.reserve(call.tokens, start, now);
        d.admitted = rate_reservation{start, call.tokens};
        return d;
    }

    /// Takes back a reservation whose call never started (cancelled while waiting).
    void give_back(rate_limiter_state& s, const rate_reservation& r, clock::time_point now) const {
        s.requests.adjust(r.start, -1, now);
        s.tokens.adjust(r.start, -r.tokens, now);
    }

    /// After the attempt, from what it saw (`seen`, null when no attempt of a client made the
    /// outcome): the reply's usage, when it has one, replaces the reserved estimate; and with
    /// adapt_to_server, the server's headers and 429 lower the room left.
    void settle(rate_limiter_state& s, const rate_reservation& r, const reply_observation* seen, const error* failure,
                clock::time_point now) const {
        if (r.tokens > 0 && seen && seen->usage) {
            // A server's absurd count must not overflow the log's sums.
            const auto used = std::clamp<std::int64_t>(seen->usage->total_tokens, 0, std::int64_t(1) << 50);
            s.tokens.adjust(r.start, used - r.tokens, now);
        }
        if (!options_.adapt_to_server) return;
        if (seen) {
            follow_headers(s.requests, seen->headers, "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests",
                           now);
            follow_headers(s.tokens, seen->headers, "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens", now);
        }
        // Exhausted quota is not a rate: holding calls back would not bring it back.
        if (failure && failure->kind() == error_kind::rate_limit && failure->code() != "insufficient_quota") {
            // OpenAI's 429 names the exhausted limit in its type: "requests" or "tokens".
            auto& w = failure->type() == "tokens" ? s.tokens : s.requests;
            w.lower_room_to(0, now);
            if (auto after = failure->retry_after(); after && *after > clock::duration::zero()) w.hold(now + *after);
        }
    }

private:
    static rate_limiter_options validated(rate_limiter_options o) {
        constexpr std::string_view policy = "rate_limiter";
        constexpr auto most = std::numeric_limits<std::int64_t>::max();
        require_option(!o.should_handle, policy, "should_handle", "must be empty: a limiter handles no failures");
        require_option(o.requests >= 0, policy, "requests", "must not be negative");
        require_option(o.tokens >= 0, policy, "tokens", "must not be negative");
        require_option(o.period > clock::duration::zero(), policy, "period", "must be positive");
        require_option(o.request_burst >= 0, policy, "request_burst", "must not be negative");
        require_option(o.token_burst >= 0, policy, "token_burst", "must not be negative");
        require_option(o.request_burst == 0 || o.requests > 0, policy, "request_burst", "needs a requests limit");
        require_option(o.token_burst == 0 || o.tokens > 0, policy, "token_burst", "needs a tokens limit");
        require_option(o.request_burst <= most - o.requests, policy, "request_burst",
                       "plus requests must fit in 64 bits");
        require_option(o.token_burst <= most - o.tokens, policy, "token_burst", "plus tokens must fit in 64 bits");
        require_option(o.expected_completion_tokens >= 0, policy, "expected_completion_tokens", "must not be negative");
        require_option(o.max_wait >= clock::duration::zero(), policy, "max_wait", "must not be negative");
        return named(std::move(o), policy);
    }

    static void follow_headers(rate_window& w, const response_headers& headers, std::string_view remaining_name,
                               std::string_view reset_name, clock::time_point now) {
        const auto remaining_text = headers.find(remaining_name);
        if (!remaining_text) return;
        const auto remaining = parse_decimal(*remaining_text);
        if (!remaining || *remaining < 0) return;
        w.lower_room_to(*remaining, now);
        if (*remaining < 1)
            if (auto reset = parse_reset_duration(headers.get(reset_name))) w.hold(now + *reset);
    }

    const rate_limiter_options options_;
};

}  // namespace detail

/// Client-side RPM and TPM caps as a policy: see the top of this file. Place it inside a retry so
/// that every attempt is counted. Copies share their windows; thread-safe.
class rate_limiter : public blocking_form<rate_limiter> {
public:
    /// Throws std::invalid_argument for negative limits, bursts, expected_completion_tokens or
    /// max_wait, a burst without its limit or beyond 64 bits with it, a period that is not positive,
    /// or a should_handle.
    explicit rate_limiter(rate_limiter_options options = {}, sturdy::timing timing = {})
        : shared_(std::make_shared<shared>(std::move(options), std::move(timing))) {}

    const rate_limiter_options& options() const noexcept { return shared_->core.options(); }

    /// The room left now: negative when callers are waiting for it, infinite without a limit.
    double available(rate_limit_kind kind) const {
        const auto now = shared_->timing.clock->now();
        return shared_->state.read([&](const rate_limiter_state& s) { return s.of(kind).room(now); });
    }

    /// The tokens a call reserves before its attempt: the prompt estimate, plus for chat the
    /// reply's `max_tokens` or `expected_completion_tokens`.
    std::int64_t estimate(const call_context& ctx) const {
        std::int64_t n = std::max<std::int64_t>(ctx.estimated_prompt_tokens, 0);
        if (ctx.op == operation::chat || ctx.op == operation::chat_stream)
            n += ctx.max_output_tokens ? std::max<std::int64_t>(*ctx.max_output_tokens, 0)
                                       : options().expected_completion_tokens;
        return n;
    }

    /// Reserves room for the call and waits for it through `ctx.exec`, or refuses the call; the
    /// reply's usage corrects the reservation before `done` sees the outcome.
    template <class T, class Next, class Done>
    void start(call_context& ctx, Next next, Done done) const {
        const auto& o = options();
        const std::int64_t tokens = estimate(ctx);
        const auto decision = decide(ctx, tokens);
        if (decision.refused || decision.wait > clock::duration::zero())
            detail::emit(o.on_rate_limited, ctx.events, detail::source(ctx, o.name),
                         rate_limited_event{o.name, ctx.op, ctx.effective_model(), decision.limit, decision.wait,
                                            decision.refused.has_value(), tokens});
        if (decision.refused) return done(refusal(decision, tokens));
        const auto& reservation = *decision.admitted;
        if (decision.wait <= clock::duration::zero())
            return next(ctx, settle_outcome<T, Done>{shared_, reservation, std::move(done)});
        auto waiting = std::make_shared<waiting_call<T, Next, Done>>(
            waiting_call<T, Next, Done>{shared_, reservation, &ctx, std::move(next), std::move(done)});
        ctx.exec->after(*shared_->timing.clock, decision.wait, ctx.cancel,
                        [waiting](bool elapsed) { waiting->go(elapsed); });
    }

private:
    struct shared {
        shared(rate_limiter_options o, sturdy::timing t)
            : core(std::move(o)), timing(std::move(t)),
              state(core.options().store, core.options().name, core.fresh_state()) {}
        const detail::rate_limit_core core;
        const sturdy::timing timing;
        const detail::stored_state<rate_limiter_state> state;
    };

    /// Corrects the reservation by what the reply said, then hands the outcome on.
    template <class T, class Done>
    struct settle_outcome {
        std::shared_ptr<shared> limiter;
        detail::rate_reservation reservation;
        Done done;
        void operator()(result<T> outcome) {
            const auto now = limiter->timing.clock->now();
            const error* failure = outcome ? nullptr : &outcome.error();
            limiter->state.update([&](rate_limiter_state& s) {
                limiter->core.settle(s, reservation, outcome.observation(), failure, now);
            });
            done(std::move(outcome));
        }
    };

    /// A call admitted for a later start, waiting for it.
    template <class T, class Next, class Done>
    struct waiting_call {
        std::shared_ptr<shared> limiter;
        detail::rate_reservation reservation;
        call_context* ctx;
        Next next;
        Done done;

        /// The wait is over: `elapsed` false when the call was cancelled during it.
        void go(bool elapsed) {
            if (!elapsed) {
                const auto now = limiter->timing.clock->now();
                limiter->state.update([&](rate_limiter_state& s) { limiter->core.give_back(s, reservation, now); });
                return done(error(error_kind::cancelled,
                                  "cancelled while waiting for rate limiter '" + limiter->core.options().name + "'"));
            }
            next(*ctx, settle_outcome<T, Done>{limiter, reservation, std::move(done)});
        }
    };

    /// Reservations follow the order of the store's steps: a window never reserves a start earlier
    /// than one it holds, so a call that read the time a little before another one still waits
    /// behind it when it comes second.
    detail::rate_decision decide(const call_context& ctx, std::int64_t tokens) const {
        detail::rate_request call{tokens, std::nullopt};
        const auto now = shared_->timing.clock->now();
        if (ctx.deadline.is_set()) call.time_left = ctx.deadline.remaining();
        detail::rate_decision decision;
        shared_->state.update([&](rate_limiter_state& s) { decision = shared_->core.reserve(s, call, now); });
        return decision;
    }

    std::string describe(rate_limit_kind kind) const {
        const auto& o = options();
        const bool requests = kind == rate_limit_kind::requests;
        const std::int64_t limit = requests ? o.requests : o.tokens;
        const std::int64_t burst = requests ? o.request_burst : o.token_burst;
        const std::string what(to_string(kind));
        if (limit == 0) return "the server's " + what + " limit";
        return "the " + what + " limit (" + std::to_string(limit) +
               (burst > 0 ? " + " + std::to_string(burst) + " burst" : "") + " per " + detail::duration_text(o.period) +
               ")";
    }

    error refusal(const detail::rate_decision& d, std::int64_t tokens) const {
        const auto& o = options();
        error_details details;
        std::string why;
        switch (*d.refused) {
            case detail::rate_refusal::too_large:
                details.code = std::string(error_codes::request_too_large);
                why = "the request's ~" + std::to_string(tokens) + " tokens exceed " +
                      describe(rate_limit_kind::tokens) + ": no window may hold them";
                break;  // and no retry hint: no wait would make room
            case detail::rate_refusal::wait_too_long:
            case detail::rate_refusal::past_deadline:
                details.code = std::string(d.limit == rate_limit_kind::tokens ? error_codes::tokens_limit
                                                                              : error_codes::requests_limit);
                why = describe(d.limit) + " has no room for another " + detail::duration_text(d.wait) +
                      (d.by_server ? " (as the server said)" : "") + ", " +
                      (*d.refused == detail::rate_refusal::wait_too_long
                           ? "longer than max_wait (" + detail::duration_text(o.max_wait) + ")"
                           : std::string("past the call's deadline"));
                details.retry_after = std::chrono::ceil<std::chrono::milliseconds>(d.wait);
                break;
        }
        details.message = "rate limiter '" + o.name + "' refused the call: " + why;
        return error(error_kind::rate_limited, std::move(details));
    }

    std::shared_ptr<shared> shared_;
};

}  // namespace sturdy

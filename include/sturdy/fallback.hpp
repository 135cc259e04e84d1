#pragma once
/// @file
/// The fallback chain: when a target fails in a way another may not, the call moves on to the next.
///
///     sturdy::endpoint backup;                           // another provider, its own key
///     backup.base_url = "https://backup.example/v1";
///     backup.api_key = backup_key;
///     sturdy::fallback_policy chain({
///         sturdy::fallback_target("primary", "gpt-4o").with_window(128000).with_policy(sturdy::retry_policy(2)),
///         sturdy::fallback_target("backup", "llama-3.1-70b", backup).with_window(131072),
///         sturdy::fallback_target("long", "gemini-1.5-pro", backup).with_window(1000000),
///     });
///     sturdy::basic_client<sturdy::curl_transport, sturdy::fallback_policy> client(options, chain);
///     auto reply = client.chat(request);   // reply.call.route, .fallbacks, .errors tell the way
///
/// Each target wraps the attempts made for it in its own policy (a retry, a breaker), so "retry
/// the primary twice, then fall back" is one target's policy. Put a deadline outside the chain to
/// bound the whole way: `compose(sturdy::deadline_policy(60s), chain)`.

#include <sturdy/clock.hpp>
#include <sturdy/context_window.hpp>
#include <sturdy/dynamic_pipeline.hpp>
#include <sturdy/error.hpp>
#include <sturdy/executor.hpp>
#include <sturdy/options.hpp>
#include <sturdy/policy.hpp>
#include <sturdy/policy_options.hpp>
#include <sturdy/detail/option_check.hpp>
#include <sturdy/detail/routing.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sturdy {

/// Whether an error should move a fallback chain on to its next target: the target is failing,
/// overloaded, out of quota or without the model, so another may answer. That is 429 (also
/// `insufficient_quota`: another provider has its own quota), 402, 404, 408, 409, 5xx, timeouts,
/// connection errors, a stream cut off, a garbled reply, and client-side refusals (circuit_open,
/// rate_limited). A request no provider would take (400, 422), a cancelled call and a malformed
/// request stay. (Two errors have rules of their own, whatever `fallback_options::should_handle`
/// says: context_length_exceeded, `fallback_options::context_window_fallback`; and credentials,
/// 401 and 403, which move on only to a target with a key of its own.)
inline bool should_fall_back(const error& e) {
    switch (e.kind()) {
        case error_kind::rate_limit:
        case error_kind::internal_server:
        case error_kind::not_found:
        case error_kind::conflict:
        case error_kind::timeout:
        case error_kind::connection:
        case error_kind::stream_truncated:
        case error_kind::invalid_response:
        case error_kind::circuit_open:
        case error_kind::rate_limited:
            return true;
        case error_kind::api_status:
            return e.status() == 402 || e.status() == 408;
        default:
            return false;
    }
}

/// One place a fallback chain may send a call: a route, what it can hold, and the policy its
/// attempts run through.
struct fallback_target {
    /// Where: name (for reports), endpoint (null: the client's own) and model (empty: the request's).
    sturdy::route route;
    /// The model's context window in tokens, when known: a call too large for it skips it. Positive.
    std::optional<std::int64_t> context_window;
    /// Wraps the attempts made for this target: a retry, a breaker, a limiter of its own.
    any_policy policy;

    fallback_target() = default;
    /// `model` (empty: the request's) at the client's own endpoint; `name` defaults to the model.
    fallback_target(std::string name, std::string model) : route(detail::make_route(std::move(name), std::move(model), nullptr)) {}
    /// `model` at another endpoint (its own base URL and key).
    fallback_target(std::string name, std::string model, std::shared_ptr<const endpoint> at)
        : route(detail::make_route(std::move(name), std::move(model), std::move(at))) {}
    fallback_target(std::string name, std::string model, endpoint at)
        : fallback_target(std::move(name), std::move(model), std::make_shared<const endpoint>(std::move(at))) {}

    fallback_target& with_window(std::int64_t tokens) {
        context_window = tokens;
        return *this;
    }
    fallback_target& with_policy(any_policy p) {
        policy = std::move(p);
        return *this;
    }
};

/// Reported when the chain moves on from a failed target to the next one it calls.
struct fallback_event {
    operation op;
    const route& from;
    const route& to;
    const error& cause;  ///< what `from` failed with
    int fallback;        ///< 1 for this call's first move
};

/// Why a target was passed over without being called.
enum class fallback_skip {
    window_too_small,   ///< its declared window is smaller than the call's estimated tokens
    window_not_larger,  ///< after a context_length_exceeded: its window is not known to be larger
    cooling_down,       ///< it answered 429 and its Retry-After (or cool-down) is not over
    same_credentials,   ///< it shares the key an earlier target's 401 or 403 refused
};

/// Reported when the chain passes a target over without calling it.
struct fallback_skip_event {
    operation op;
    const route& target;
    fallback_skip reason;
    std::optional<std::int64_t> context_window;  ///< the target's declared window
    std::int64_t needed_tokens;                  ///< the call's estimated prompt plus its max output
};

/// Settings of a fallback chain.
///
/// `should_handle` (policy_options) chooses the errors that move the call on to the next target;
/// empty: `should_fall_back`. Two rules come before it: a context_length_exceeded moves on to a
/// larger window (`context_window_fallback`), and a 401 or 403 moves on only to targets with a key
/// of their own (one sharing the refused key would refuse too). `name` (default "fallback") names
/// the chain in events.
///
/// Events (`on_fallback`, `on_skip`, and the call's `event_sink`) come from the route the call was
/// on when they happened: for a move, the target it moves on from (`fallback_event::from`); for a
/// pass-over, the last target the call tried, else the route an outer policy put it on (empty at
/// the client's own endpoint).
struct fallback_options : policy_options {
    /// A context_length_exceeded error moves the call on to the next target whose declared window
    /// is larger than the failed one's (targets without a declared window are passed over: nothing
    /// says they are larger). Off: the error goes through `should_handle` like any other.
    bool context_window_fallback = true;
    /// Pass over targets whose declared window is smaller than the call's prompt tokens plus its
    /// max output tokens (request fields). The prompt is counted by the client's
    /// `client_options::tokens`, the estimate unless you set an exact tokenizer there.
    bool skip_small_windows = true;
    /// Where a target without `with_window` finds its window, by its model (read when the chain
    /// is made). Empty: only declared windows count.
    /// `context_window_table::with_defaults()` knows the README's providers' models.
    context_window_table context_windows;
    /// A target that answers 429 cools down: calls pass it over until its Retry-After is over, or
    /// for this long when the 429 named no delay, then try it again. Zero: no cool-down; not negative.
    clock::duration cooldown = std::chrono::seconds(1);
    /// The longest cool-down a Retry-After may ask for. Zero: a Retry-After cools nothing down;
    /// not negative.
    clock::duration max_cooldown = std::chrono::minutes(5);
    /// Called before the call moves on to the next target.
    std::function<void(const fallback_event&)> on_fallback;
    /// Called when a target is passed over without being called.
    std::function<void(const fallback_skip_event&)> on_skip;
};

/// What a fallback chain did with one target, since it was made.
struct fallback_target_stats {
    std::string name;
    std::uint64_t calls = 0;      ///< times the chain turned to it: answered, failed or refused
    std::uint64_t attempts = 0;   ///< requests actually sent to it (its own policy's retries included)
    std::uint64_t successes = 0;  ///< times it answered
    std::uint64_t failures = 0;   ///< times it failed after a request was sent
    /// Times it was refused without a request: its breaker was open, a limiter held it back, or
    /// the chain passed it over.
    std::uint64_t refusals = 0;
    std::uint64_t fallbacks = 0;  ///< times the chain moved on from it to another target
    std::uint64_t skipped = 0;    ///< of the refusals, the passes over (window, cool-down, credentials)
};

/// Tries its targets in order until one answers, moving on only for errors another target may
/// not have (`fallback_options::should_handle`), and never once a stream delivered content.
///
/// Order: the names in the call's `request_options::route_order` first, in that order (names
/// that are not targets are ignored), then the other targets in the order given; a call that pins
/// a route (`request_options::pinned_route`) tries that one only. A target is passed over,
/// without an error, when its declared context window cannot hold the call (the call fails with
/// context_length_exceeded when no target can), while it cools down after a 429, and when it
/// shares the key that an earlier target's 401 or 403 refused. When the chain runs out of targets,
/// the call fails with the last error met. Every error on the way is in `call_info::errors` (the
/// reply's `call`, or the final error's `call()`), and `call_info::route` / `call_info::fallbacks`
/// say where it was answered (or last tried) and how many moves it took. A cancelled call or a
/// passed deadline stops the chain. A chain without targets is the client's own endpoint.
///
/// A target's endpoint replaces the client's for its attempts (its base URL, key, organization,
/// project, headers), including any route an outer policy chose. Copies share the statistics.
///
/// The chain never waits: a target's own policy does (through the call's executor), and the chain
/// turns to the next target when that policy hands its outcome back, on whichever thread it does.
class fallback_policy : public blocking_form<fallback_policy> {
public:
    /// Throws std::invalid_argument for options that make no sense (see `fallback_options`), a
    /// declared window that is not positive, and two targets of one name (a name is how a call
    /// pins or prefers a target, and how stats and `per_route` tell them apart).
    explicit fallback_policy(std::vector<fallback_target> targets, fallback_options options = {},
                             sturdy::timing timing = {});

    template <class T, class Next, class Done>
    void start(call_context& ctx, Next next, Done done) const;

    /// Per target, in the order given.
    std::vector<fallback_target_stats> stats() const;
    /// The target named `name`; nullopt when there is none.
    std::optional<fallback_target_stats> stats_for(std::string_view name) const;
    const fallback_options& options() const noexcept { return state_->options; }

private:
    struct counters {
        std::atomic<std::uint64_t> calls{0}, attempts{0}, successes{0}, failures{0}, refusals{0}, fallbacks{0},
            skipped{0};
        /// While it cools down after a 429: until then, on the chain's clock (nanoseconds since its epoch).
        std::atomic<clock::duration::rep> cooling_until{0};
    };
    struct entry {
        std::shared_ptr<const sturdy::route> route;
        std::optional<std::int64_t> context_window;
        any_policy policy;
    };
    struct state {
        std::vector<entry> targets;
        fallback_options options;
        sturdy::timing timing;
        mutable std::vector<counters> counts;
    };
    /// One call's way through the chain, as far as it went: what the decisions below read and update.
    struct walk {
        std::vector<std::size_t> plan;        ///< the targets in the order this call tries them
        std::size_t next = 0;                 ///< where in the plan it goes on
        std::int64_t needed = 0;              ///< the call's estimated prompt plus its max output tokens
        std::optional<error> last;            ///< what the last target called failed with
        std::optional<std::size_t> previous;  ///< that target
        int moves = 0;
        bool cooling = false;  ///< a target was passed over for its cool-down
        /// After a context_length_exceeded, only targets with a declared window above this are tried.
        std::optional<std::int64_t> overflowed_at;
        /// Targets whose key a 401 or 403 refused: the ones sharing it are passed over.
        std::vector<std::size_t> refused_keys;
    };
    template <class T, class Next, class Done>
    class run;

    // The decisions and their counts, apart from the glue that waits for outcomes (`run`). Time is
    // the chain's injected clock's.
    std::optional<std::size_t> next_target(walk& w, call_context& ctx) const;
    void answered(std::size_t i, int sent) const;
    bool moves_on(walk& w, std::size_t i, int sent, const error& failure, const call_context& ctx) const;
    error exhausted(const walk& w) const;

    event_source where(const walk& w, const call_context& ctx) const;
    static fallback_options checked(fallback_options options);
    fallback_target_stats stats_of(std::size_t i) const;
    std::optional<fallback_skip> skip_reason(std::size_t i, const call_context& ctx, std::int64_t needed,
                                             std::optional<std::int64_t> overflowed_at,
                                             const std::vector<std::size_t>& refused_keys, clock::time_point now) const;
    void cool_down(std::size_t i, const error& failure, clock::time_point now) const;
    static bool refused_credentials(const error& e) {
        return e.kind() == error_kind::authentication || e.kind() == error_kind::permission_denied;
    }
    static bool refusal(const error& e) {
        return e.kind() == error_kind::circuit_open || e.kind() == error_kind::rate_limited;
    }
    static error nothing_fits(std::int64_t needed);
    error all_cooling(clock::time_point now) const;

    std::shared_ptr<const state> state_;
};

inline fallback_options fallback_policy::checked(fallback_options options) {
    constexpr std::string_view policy = "fallback_policy";
    detail::require_option(options.cooldown >= clock::duration::zero(), policy, "cooldown", "must not be negative");
    detail::require_option(options.max_cooldown >= clock::duration::zero(), policy, "max_cooldown",
                           "must not be negative");
    return detail::named(std::move(options), "fallback");
}

inline fallback_policy::fallback_policy(std::vector<fallback_target> targets, fallback_options options,
                                        sturdy::timing timing) {
    auto s = std::make_shared<state>();
    s->targets.reserve(targets.size());
    for (std::size_t i = 0; i < targets.size(); ++i) {
        auto& t = targets[i];
        detail::require_option(!t.context_window || *t.context_window > 0, "fallback_policy",
                               "fallback_target.context_window", "must be positive");
        auto window = t.context_window ? t.context_window : options.context_windows.find(t.route.model);
        s->targets.push_back(entry{detail::share_route(std::move(t.route), i), window, std::move(t.policy)});
    }
    detail::require_distinct_names(s->targets, "fallback_policy", "fallback_target");
    s->options = checked(std::move(options));
    s->timing = std::move(timing);
    s->counts = std::vector<counters>(s->targets.size());
    state_ = std::move(s);
}

/// One call through a fallback chain: the target it is at, and the decision after each outcome.
template <class T, class Next, class Done>
class fallback_policy::run : public std::enable_shared_from_this<run<T, Next, Done>> {
public:
    run(const fallback_policy& policy, call_context& ctx, walk way, Next next, Done done)
        : policy_(policy), ctx_(ctx), way_(std::move(way)), next_(std::move(next)), done_(std::move(done)),
          outer_route_(ctx.route) {}

    /// Calls the next target that is not passed over, or ends the call when none is left.
    void call_next() {
        const auto i = policy_.next_target(way_, ctx_);
        if (!i) return done_(policy_.exhausted(way_));
        const entry& target = policy_.state_->targets[*i];
        current_ = *i;
        attempts_before_ = ctx_.state->attempts();
        ctx_.route = target.route;
        detail::start_route_policy<T>(target.policy, ctx_, next_, settle_outcome{this->shared_from_this()});
    }

private:
    struct settle_outcome {
        std::shared_ptr<run> self;
        void operator()(result<T> outcome) const { self->settle(std::move(outcome)); }
    };

    void settle(result<T> outcome) {
        ctx_.route = outer_route_;
        const int sent = ctx_.state->attempts() - attempts_before_;
        if (outcome) {
            policy_.answered(current_, sent);
            return done_(std::move(outcome));
        }
        if (!policy_.moves_on(way_, current_, sent, outcome.error(), ctx_)) return done_(std::move(outcome));
        call_next();
    }

    const fallback_policy& policy_;
    call_context& ctx_;
    walk way_;
    Next next_;
    Done done_;
    std::shared_ptr<const sturdy::route> outer_route_;  // an outer policy's choice, put back after each target
    std::size_t current_ = 0;
    int attempts_before_ = 0;
};

template <class T, class Next, class Done>
void fallback_policy::start(call_context& ctx, Next next, Done done) const {
    if (state_->targets.empty()) return next(ctx, std::move(done));
    auto plan = detail::route_plan(state_->targets, ctx);
    if (!plan) return done(plan.error());
    walk way;
    way.plan = std::move(*plan);
    way.needed = ctx.estimated_prompt_tokens + ctx.max_output_tokens.value_or(0);
    std::make_shared<run<T, Next, Done>>(*this, ctx, std::move(way), std::move(next), std::move(done))->call_next();
}

// Passes over the targets that cannot or should not take the call (counting and reporting each),
// then reports the move to the one it returns.
inline std::optional<std::size_t> fallback_policy::next_target(walk& w, call_context& ctx) const {
    const auto& targets = state_->targets;
    const auto& opts = state_->options;
    while (w.next < w.plan.size()) {
        const std::size_t i = w.plan[w.next++];
        const entry& target = targets[i];
        auto& count = state_->counts[i];
        if (auto skip = skip_reason(i, ctx, w.needed, w.overflowed_at, w.refused_keys, state_->timing.clock->now())) {
            w.cooling = w.cooling || *skip == fallback_skip::cooling_down;
            count.skipped.fetch_add(1, std::memory_order_relaxed);
            count.refusals.fetch_add(1, std::memory_order_relaxed);
            detail::emit(opts.on_skip, ctx.events, where(w, ctx),
                         fallback_skip_event{ctx.op, *target.route, *skip, target.context_window, w.needed});
            continue;
        }
        if (w.previous) {
            state_->counts[*w.previous].fallbacks.fetch_add(1, std::memory_order_relaxed);
            detail::emit(opts.on_fallback, ctx.events, where(w, ctx),
                         fallback_event{ctx.op, *targets[*w.previous].route, *target.route, *w.last, w.moves + 1});
            ++w.moves;
        }
        ctx.state->note_route(target.route->name, w.previous.has_value());
        count.calls.fetch_add(1, std::memory_order_relaxed);
        return i;
    }
    return std::nullopt;
}

// The route the call is on, for its events: the target it last tried, else an outer policy's.
inline event_source fallback_policy::where(const walk& w, const call_context& ctx) const {
    auto source = detail::source(ctx, state_->options.name);
    if (w.previous) source.route = state_->targets[*w.previous].route->name;
    return source;
}

// Target i answered after `sent` attempts.
inline void fallback_policy::answered(std::size_t i, int sent) const {
    auto& count = state_->counts[i];
    count.attempts.fetch_add(static_cast<std::uint64_t>(std::max(sent, 0)), std::memory_order_relaxed);
    count.successes.fetch_add(1, std::memory_order_relaxed);
}

// Target i failed after `sent` attempts: counts it, cools the target down after a 429, and says
// whether the call goes on to another target. (The executor records the failure in the call's
// report, as it does every failed outcome leaving the target's policy.)
inline bool fallback_policy::moves_on(walk& w, std::size_t i, int sent, const error& failure,
                                      const call_context& ctx) const {
    const entry& target = state_->targets[i];
    const auto& opts = state_->options;
    auto& count = state_->counts[i];
    count.attempts.fetch_add(static_cast<std::uint64_t>(std::max(sent, 0)), std::memory_order_relaxed);
    (refusal(failure) ? count.refusals : count.failures).fetch_add(1, std::memory_order_relaxed);
    if (failure.kind() == error_kind::rate_limit) cool_down(i, failure, state_->timing.clock->now());

    // Content already reached the caller: another target would make it see a second reply.
    if (ctx.state->committed() || ctx.cancel.cancelled() || ctx.deadline.expired()) return false;
    if (opts.context_window_fallback && failure.kind() == error_kind::context_length_exceeded) {
        // An undeclared window that overflowed tells nothing of size: any declared one may hold it.
        const std::int64_t floor = target.context_window.value_or(0);
        w.overflowed_at = w.overflowed_at ? std::max(*w.overflowed_at, floor) : floor;
    } else if (refused_credentials(failure)) {
        w.refused_keys.push_back(i);  // another provider's key may be good: the targets left decide
    } else if (!matches(opts.should_handle, should_fall_back, failure)) {
        return false;
    }
    w.last = failure;
    w.previous = i;
    return true;
}

// The call's outcome when no target is left: the last error met, else why none was called.
inline error fallback_policy::exhausted(const walk& w) const {
    if (w.last) return *w.last;
    if (w.cooling) return all_cooling(state_->timing.clock->now());
    return nothing_fits(w.needed);
}

inline std::optional<fallback_skip> fallback_policy::skip_reason(std::size_t i, const call_context& ctx,
                                                                 std::int64_t needed,
                                                                 std::optional<std::int64_t> overflowed_at,
                                                                 const std::vector<std::size_t>& refused_keys,
                                                                 clock::time_point now) const {
    const entry& target = state_->targets[i];
    const auto& opts = state_->options;
    if (overflowed_at && (!target.context_window || *target.context_window <= *overflowed_at))
        return fallback_skip::window_not_larger;
    if (opts.skip_small_windows && target.context_window && *target.context_window < needed)
        return fallback_skip::window_too_small;
    for (std::size_t refused : refused_keys)
        if (detail::same_credentials(*state_->targets[refused].route, *target.route))
            return fallback_skip::same_credentials;
    // A pinned target is tried however hot it is: the call asked for it and for nothing else.
    if (ctx.pinned_route.empty() &&
        now.time_since_epoch().count() < state_->counts[i].cooling_until.load(std::memory_order_relaxed))
        return fallback_skip::cooling_down;
    return std::nullopt;
}

inline void fallback_policy::cool_down(std::size_t i, const error& failure, clock::time_point now) const {
    const auto& opts = state_->options;
    clock::duration pause = opts.cooldown;
    if (auto asked = failure.retry_after(); asked && *asked > clock::duration::zero())
        pause = std::min<clock::duration>(*asked, opts.max_cooldown);
    if (pause <= clock::duration::zero()) return;
    auto& until = state_->counts[i].cooling_until;
    const auto end = (now + pause).time_since_epoch().count();
    auto seen = until.load(std::memory_order_relaxed);
    while (seen < end && !until.compare_exchange_weak(seen, end, std::memory_order_relaxed)) {}
}

inline error fallback_policy::all_cooling(clock::time_point now) const {
    auto soonest = clock::duration::max();
    for (const auto& c : state_->counts) {
        const auto left = clock::duration(c.cooling_until.load(std::memory_order_relaxed)) - now.time_since_epoch();
        if (left > clock::duration::zero()) soonest = std::min(soonest, left);
    }
    error_details d;
    d.code = std::string(error_codes::routes_cooling_down);
    d.message = "every fallback target it could call is cooling down after a 429";
    if (soonest != clock::duration::max()) d.retry_after = std::chrono::ceil<std::chrono::milliseconds>(soonest);
    return error(error_kind::rate_limited, std::move(d));
}

inline fallback_target_stats fallback_policy::stats_of(std::size_t i) const {
    const auto& c = state_->counts[i];
    fallback_target_stats s;
    s.name = state_->targets[i].route->name;
    s.calls = c.calls.load(std::memory_order_relaxed) + c.skipped.load(std::memory_order_relaxed);
    s.attempts = c.attempts.load(std::memory_order_relaxed);
    s.successes = c.successes.load(std::memory_order_relaxed);
    s.failures = c.failures.load(std::memory_order_relaxed);
    s.refusals = c.refusals.load(std::memory_order_relaxed);
    s.fallbacks = c.fallbacks.load(std::memory_order_relaxed);
    s.skipped = c.skipped.load(std::memory_order_relaxed);
    return s;
}

inline std::vector<fallback_target_stats> fallback_policy::stats() const {
    std::vector<fallback_target_stats> out;
    for (std::size_t i = 0; i < state_->targets.size(); ++i) out.push_back(stats_of(i));
    return out;
}

inline std::optional<fallback_target_stats> fallback_policy::stats_for(std::string_view name) const {
    const auto i = detail::find_route(state_->targets, name);
    if (i >= state_->targets.size()) return std::nullopt;
    return stats_of(i);
}

inline error fallback_policy::nothing_fits(std::int64_t needed) {
    return error(error_kind::context_length_exceeded,
                 "no fallback target's context window holds the call's estimated " + std::to_string(needed) + " tokens");
}

}  // namespace sturdy

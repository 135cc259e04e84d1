#pragma once
/// @file
/// The traffic split: weighted routing between arms (a model migration, a canary), with an
/// automatic rollback guard and a shadow mode that tries a candidate without showing its answers.
///
///     sturdy::rollback_guard guard;                  // over the last minute, from 20 calls on:
///     guard.max_error_rate = 0.05;                   // more than 5% errors, or
///     guard.max_latency = std::chrono::seconds(8);   // a p99 above 8 s, and its weight drops to 0
///     sturdy::traffic_split split({
///         sturdy::split_arm("stable", "gpt-4o").with_weight(90),
///         sturdy::split_arm("candidate", "gpt-4.1").with_weight(10).with_guard(guard),
///     });
///     split.set_weight("candidate", 25);             // at run time, from any thread (a copy works too)
///
/// Shadow mode: `split_arm("candidate", "gpt-4.1").with_shadow(1.0)` (and weight 0) copies every
/// call to the candidate, as a branch beside the live call, and returns the live arm's answer; a
/// streamed shadow never reaches the caller's callback. Both outcomes are recorded and reported
/// (`on_shadow`). The call's executor runs the branch (`executor::spawn`): a synchronous call's
/// blocking executor gives it a thread and joins it before the call returns, so the shadow has
/// ended and been reported by then; an event-driven executor hands the call its outcome as soon
/// as the live arm answers, and its shadows end, and are reported, later.
///
/// The split does not fall back: an error from the chosen arm is the call's. To fall back, put the
/// split inside a chain's target, or a chain inside an arm (`with_policy(chain)`), or retry around
/// it: `compose(retry, split)` draws an arm again for each retry.

#include <sturdy/clock.hpp>
#include <sturdy/dynamic_pipeline.hpp>
#include <sturdy/error.hpp>
#include <sturdy/executor.hpp>
#include <sturdy/options.hpp>
#include <sturdy/policy.hpp>
#include <sturdy/policy_options.hpp>
#include <sturdy/detail/option_check.hpp>
#include <sturdy/detail/outcome_window.hpp>
#include <sturdy/detail/routing.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sturdy {

/// When an arm is taken out of the split: its weight (and shadow share) drop to 0 once its error
/// rate or its latency over the window crosses a threshold, judged from `min_samples` outcomes on.
/// Outcomes are the arm's live and shadow calls; calls cancelled by the caller are not counted.
/// Which failed ones count against the arm is the split's `should_handle` (every failure, by
/// default), or the guard's own when it sets one.
///
/// A call's latency is its arm's answering attempt's (else its last attempt's) as the client saw
/// the transport: from sending the request to the reply, or to the first content for a stream
/// (the latency in its outcome's `observation()`). Waits of the client's own making inside the arm (its rate
/// limiter's or bulkhead's queue, its retry's backoff) are not the arm's latency; a call its own
/// policy refused without an attempt counts for the error rate but has no latency.
///
/// Ramping up: the guard can judge only once the window holds `min_samples` outcomes. An arm with
/// a fraction w of R calls/s (plus its shadow copies) gets them in min_samples / (w * R) seconds,
/// so the window must be at least that long or the guard never judges. At 10% of 5 calls/s, the
/// default 20 samples take 20 / (0.1 * 5) = 40 s, within the default one-minute window; at 10% of
/// 2 calls/s they take 100 s, and a one-minute window never holds them: make it 2 to 3 minutes,
/// or lower `min_samples`. Below 100 samples a p99 is the slowest call in the window, so one call
/// above `max_latency` rolls back.
struct rollback_guard {
    /// How far back outcomes count; positive.
    clock::duration window = std::chrono::minutes(1);
    /// Outcomes the window must hold before the guard judges; at least 1.
    std::uint64_t min_samples = 20;
    /// Roll back when the share of failed calls in the window is above this (0..1).
    std::optional<double> max_error_rate;
    /// Roll back when `latency_percentile` of the call latencies in the window is above this.
    /// The percentile is nearest-rank: the ceil(p * n)-th fastest of the window's n latencies,
    /// read within 1% and never below it (detail::latency_histogram).
    std::optional<clock::duration> max_latency;
    /// In (0, 1]: 0.99 is the p99.
    double latency_percentile = 0.99;
    /// Which failures count against this arm, in place of the split's `should_handle` (the same
    /// meaning, for this arm only). Empty: the split's.
    error_predicate should_handle{};
};

/// One arm of a split: a route, its share of the calls, and the policy its attempts run through.
struct split_arm {
    /// Where: name (for reports), endpoint (null: the client's own) and model (empty: the request's).
    sturdy::route route;
    /// Share of the calls, relative to the other arms' weights (90 and 10, or 0.9 and 0.1); finite,
    /// not negative.
    double weight = 0;
    /// Shadow mode: the fraction (0..1) of the calls answered by other arms that are also sent here.
    double shadow = 0;
    /// Wraps the attempts made for this arm: a retry, a breaker, a fallback chain.
    any_policy policy;
    /// Takes the arm out automatically when it misbehaves.
    std::optional<rollback_guard> guard;

    split_arm() = default;
    /// `model` (empty: the request's) at the client's own endpoint; `name` defaults to the model.
    split_arm(std::string name, std::string model) : route(detail::make_route(std::move(name), std::move(model), nullptr)) {}
    /// `model` at another endpoint (its own base URL and key).
    split_arm(std::string name, std::string model, std::shared_ptr<const endpoint> at)
        : route(detail::make_route(std::move(name), std::move(model), std::move(at))) {}
    split_arm(std::string name, std::string model, endpoint at)
        : split_arm(std::move(name), std::move(model), std::make_shared<const endpoint>(std::move(at))) {}

    split_arm& with_weight(double w) {
        weight = w;
        return *this;
    }
    split_arm& with_shadow(double fraction) {
        shadow = fraction;
        return *this;
    }
    split_arm& with_policy(any_policy p) {
        policy = std::move(p);
        return *this;
    }
    split_arm& with_guard(rollback_guard g) {
        guard = std::move(g);
        return *this;
    }
};

enum class rollback_reason { error_rate, latency };

/// Reported when a guard took its arm out of the split.
struct rollback_event {
    const route& arm;
    rollback_reason reason;
    double error_rate;  ///< failed share of the window's calls
    std::optional<std::chrono::microseconds> latency;  ///< the guard's latency percentile over the window, as judged
    std::uint64_t samples;                             ///< calls in the window
};

/// How one arm did on one call.
struct split_outcome {
    const route& arm;
    std::optional<error> failure;  ///< unset: it answered
    /// Its answering (else last) attempt's, as the rollback guard counts it (`rollback_guard`);
    /// zero when its policy made no attempt.
    std::chrono::microseconds latency{0};
    bool ok() const noexcept { return !failure; }
};

/// Reported when a shadow call finished, beside the live call it copied.
struct shadow_event {
    operation op;
    split_outcome live;    ///< the answer the caller got
    split_outcome shadow;  ///< the copy's, never shown to the caller
    bool cut;              ///< cancelled after outlasting `traffic_split_options::shadow_wait`
};

/// Settings of a traffic split.
///
/// `should_handle` (policy_options) chooses the failures that count against an arm: in its
/// guard's error rate (`rollback_guard`, whose own `should_handle` replaces it for that arm) and in
/// its window figures (`split_arm_stats`). Empty: every failure. Whatever it says, a call the
/// caller cancelled and a shadow cut after `shadow_wait` never count. `name` (default
/// "traffic_split") names the split in events.
///
/// Events (`on_rollback`, `on_shadow`, and the call's `event_sink`) come from the arm whose outcome
/// caused them: the arm rolled back, or the shadow's arm. They go to the sink of the call the
/// outcome belongs to, even when a shadow ends after that call returned.
struct traffic_split_options : policy_options {
    /// After the live arm answered, how long its shadows may go on before they are cancelled; not
    /// negative (zero: cut as soon as the live arm answers).
    /// Unset (the default): until they finish, so the candidate's latency is measured in full. Set:
    /// a shadow cut short counts with the time it had, never as a failure. A synchronous call
    /// returns once its shadows ended, so its caller waits at most this much longer (unset: for a
    /// slower candidate); on an event-driven executor the caller never waits for a shadow.
    std::optional<clock::duration> shadow_wait;
    /// Called when a guard takes an arm out.
    std::function<void(const rollback_event&)> on_rollback;
    /// Called for each shadow call once both it and the live arm ended, on the thread of whichever
    /// ended last; before a synchronous call returns (see the top of this file). If it throws on a
    /// shadow's branch, the exception is dropped there: nothing is left to hand it to.
    std::function<void(const shadow_event&)> on_shadow;
};

/// The former name of `traffic_split_options`.
using split_options [[deprecated("use traffic_split_options")]] = traffic_split_options;

/// An arm's state and what it did since the split was made (window figures: over its guard's
/// window, one minute without a guard).
struct split_arm_stats {
    std::string name;
    double weight = 0;
    double shadow = 0;
    bool rolled_back = false;
    std::uint64_t calls = 0;            ///< live calls sent to it
    std::uint64_t failures = 0;         ///< of those, failed
    std::uint64_t shadow_calls = 0;     ///< shadow copies sent to it
    std::uint64_t shadow_failures = 0;  ///< of those, failed (cut ones included)
    std::uint64_t shadow_cut = 0;       ///< of those, cancelled after `shadow_wait`
    std::uint64_t window_calls = 0;  ///< live and shadow outcomes in the window
    double window_error_rate = 0;    ///< of those, the share that failed
    /// At the guard's percentile (p99 without a guard), read as the guard reads it.
    std::optional<std::chrono::microseconds> window_latency;
};

namespace detail {

/// What the rollback guard judges an arm by: the latency of its answering attempt (the first to
/// answer, so a hedge race's winner), else of its last one, as each attempt reported it. Times
/// what runs inside the arm's policy (`timed_next`), so the waits that policy makes around it (a
/// limiter, a bulkhead, a retry's backoff) are left out. Shared by the continuations that note
/// into it, so a hedged attempt ending after its arm's outcome still has it.
class attempt_latency {
public:
    explicit attempt_latency(std::shared_ptr<const sturdy::clock> clock) : clock_(std::move(clock)) {}
    attempt_latency(const attempt_latency&) = delete;
    attempt_latency& operator=(const attempt_latency&) = delete;

    clock::time_point now() const { return clock_->now(); }

    /// An attempt started at `started` has just ended, having seen `seen` of its reply.
    void note(const reply_observation* seen, clock::time_point started, bool answered) {
        // The client's attempts report the transport's time (to the first content, for a
        // stream); one that reports none (a stream that failed before content, an attempt
        // function of the caller's) is timed here, around itself only.
        const auto reported = seen ? seen->latency : std::chrono::microseconds::zero();
        const auto latency = reported > std::chrono::microseconds::zero()
                                 ? reported
                                 : std::chrono::duration_cast<std::chrono::microseconds>(clock_->now() - started);
        std::lock_guard<std::mutex> lock(mutex_);  // hedged attempts inside the arm end on their own branches
        if (answered_) return;
        latency_ = latency;
        answered_ = answered;
    }

    /// Nullopt when the arm made no attempt (its own breaker or limiter refused the call).
    std::optional<std::chrono::microseconds> latency() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return latency_;
    }

private:
    std::shared_ptr<const sturdy::clock> clock_;
    mutable std::mutex mutex_;
    std::optional<std::chrono::microseconds> latency_;
    bool answered_ = false;
};

/// Notes an attempt's latency, then hands its outcome on.
template <class T, class K>
struct timed_outcome {
    std::shared_ptr<attempt_latency> latency;
    clock::time_point started;
    K k;
    void operator()(result<T> outcome) {
        latency->note(outcome.observation(), started, static_cast<bool>(outcome));
        k(std::move(outcome));
    }
};

/// What runs inside an arm's policy: `next`, each run of it timed.
template <class T, class Next>
struct timed_next {
    Next next;
    std::shared_ptr<attempt_latency> latency;
    template <class K>
    void operator()(call_context& ctx, K&& k) const {
        next(ctx, timed_outcome<T, std::decay_t<K>>{latency, latency->now(), std::forward<K>(k)});
    }
};

/// A shadow call beside a live one: a copy of the context that is silent, with its own call
/// state (no share in the live call's commit or attempt count) and its own cancellation. Lives
/// in the call's shared state until its branch has ended.
struct shadow_run {
    shadow_run(const call_context& live, std::size_t arm_index, std::shared_ptr<const sturdy::route> to,
               std::shared_ptr<const sturdy::clock> clock)
        : arm(arm_index), stop(live.cancel), ctx(live), latency(std::make_shared<attempt_latency>(std::move(clock))) {
        ctx.state = &state;
        ctx.silent = true;
        ctx.cancel = stop.token();
        ctx.route = std::move(to);
    }
    shadow_run(const shadow_run&) = delete;
    shadow_run& operator=(const shadow_run&) = delete;

    const std::size_t arm;
    call_state state;
    cancellation_source stop;  // cancels the shadow; also fires when the caller cancels
    call_context ctx;
    const std::shared_ptr<attempt_latency> latency;
    // Under the split call's mutex until `ended` is set; unchanged after.
    std::optional<error> failure;
    bool cut = false;
    bool ended = false;
};

}  // namespace detail

/// Sends each call to one arm, drawn by weight with the injected random source. When every weight
/// is 0 the first arm takes the calls. The live arm is reported as `call_info::route`. Weights
/// and shadow shares change at run time, from any thread; copies share them.
///
/// A call may choose its arm, weights and rollbacks aside, as it chooses a fallback chain's target
/// (detail::route_plan): `request_options::pinned_route` sends it to that arm only, and an arm
/// the split does not have is invalid_argument. A pinned arm that fails fails the call with its
/// own error, and a pinned call is never copied to shadows: it asked for that one route. Else the
/// first arm named in `request_options::route_order`, if any, takes it, shadows alongside.
///
/// The split never blocks: its arms' policies wait, and it waits out `shadow_wait`, through the
/// call's executor, which also runs the shadows (see the top of this file).
class traffic_split : public blocking_form<traffic_split> {
public:
    /// Throws std::invalid_argument for options that make no sense: a negative `shadow_wait`, an
    /// arm's negative or infinite weight, a shadow share outside 0..1, a guard's (`rollback_guard`),
    /// and two arms of one name (a name is how a call pins or prefers an arm, and how stats and
    /// `per_route` tell them apart).
    explicit traffic_split(std::vector<split_arm> arms, traffic_split_options options = {}, sturdy::timing timing = {});

    template <class T, class Next, class Done>
    void start(call_context& ctx, Next next, Done done) const;

    /// Sets an arm's weight (negative counts as 0). A weight above 0 puts a rolled-back arm back,
    /// its guard judging from a fresh window. False when no arm has that name.
    bool set_weight(std::string_view name, double weight) const;
    /// Sets the fraction (0..1) of other arms' calls copied to this arm as shadows.
    bool set_shadow(std::string_view name, double fraction) const;
    std::optional<double> weight(std::string_view name) const;

    /// Per arm, in the order given.
    std::vector<split_arm_stats> stats() const;
    std::optional<split_arm_stats> stats_for(std::string_view name) const;
    const traffic_split_options& options() const noexcept { return state_->options; }

private:
    struct arm_state {
        arm_state(split_arm&& a, std::size_t index)
            : route(detail::share_route(std::move(a.route), index)), policy(std::move(a.policy)),
              guard(checked(std::move(a.guard))), weight(checked_weight(a.weight)), shadow(checked_shadow(a.shadow)),
              window(guard ? guard->window : std::chrono::minutes(1)) {}

        std::shared_ptr<const sturdy::route> route;
        any_policy policy;
        std::optional<rollback_guard> guard;
        // Under the mutex:
        double weight;
        double shadow;
        bool rolled_back = false;
        detail::outcome_window window;
        std::uint64_t calls = 0, failures = 0, shadow_calls = 0, shadow_failures = 0, shadow_cut = 0;
    };
    struct state {
        traffic_split_options options;
        sturdy::timing timing;
        mutable std::mutex mutex;
        std::vector<arm_state> arms;
    };
    /// How an arm did on one call, live or shadow, as its guard counts it.
    struct arm_outcome {
        const std::optional<error>& failure;
        std::optional<std::chrono::microseconds> latency;
        bool shadow;
        bool cut;
    };
    struct rollback {
        std::size_t arm;
        rollback_reason reason;
        double error_rate;
        std::optional<std::chrono::microseconds> latency;
        std::uint64_t samples;
    };

    /// Where one call goes: its live arm, and the arms that get a shadow copy of it.
    struct choice {
        std::size_t live = 0;
        std::vector<std::size_t> shadows;
    };
    struct split_call;
    template <class T, class Done>
    struct live_outcome;
    template <class T>
    struct shadow_outcome;

    static traffic_split_options checked(traffic_split_options options);
    static std::optional<rollback_guard> checked(std::optional<rollback_guard> guard);
    static double checked_weight(double weight);
    static double checked_shadow(double shadow);
    // The decisions: functions of the call, the injected random source and the time given.
    choice choose(const call_context& ctx, const std::vector<std::size_t>& plan) const;
    std::size_t pick(const call_context& ctx, const std::vector<std::size_t>& plan, double draw) const;
    std::optional<rollback> record(std::size_t arm, const arm_outcome& outcome, clock::time_point now) const;
    void report(const std::optional<rollback>& r, event_sink* events) const;
    // The glue: a call's live arm and shadows, each ending on its own branch.
    template <class T, class Next>
    void start_shadow(const std::shared_ptr<split_call>& call, std::size_t arm, call_context& live,
                      const Next& next) const;
    void end_live(const std::shared_ptr<split_call>& call, std::optional<error> failure, executor& exec) const;
    void end_shadow(split_call& call, detail::shadow_run& run, std::optional<error> failure) const;
    void report_shadow(const split_call& call, const detail::shadow_run& run) const;
    void cut_after(const std::shared_ptr<split_call>& call, executor& exec, clock::duration wait) const;
    void cut_unfinished(split_call& call) const;
    void abandon_shadows(split_call& call) const;
    split_arm_stats stats_of(const arm_state& a, clock::time_point now) const;

    std::shared_ptr<state> state_;
};

inline traffic_split::traffic_split(std::vector<split_arm> arms, traffic_split_options options, sturdy::timing timing)
    : state_(std::make_shared<state>()) {
    state_->options = checked(std::move(options));
    state_->timing = std::move(timing);
    state_->arms.reserve(arms.size());
    for (std::size_t i = 0; i < arms.size(); ++i) state_->arms.emplace_back(std::move(arms[i]), i);
    detail::require_distinct_names(state_->arms, "traffic_split", "split_arm");
}

inline traffic_split_options traffic_split::checked(traffic_split_options options) {
    detail::require_option(!options.shadow_wait || *options.shadow_wait >= clock::duration::zero(), "traffic_split",
                           "shadow_wait", "must not be negative");
    return detail::named(std::move(options), "traffic_split");
}

inline double traffic_split::checked_weight(double weight) {
    detail::require_option(std::isfinite(weight) && weight >= 0, "traffic_split", "split_arm.weight",
                           "must be finite and not negative");
    return weight;
}

inline double traffic_split::checked_shadow(double shadow) {
    detail::require_option(shadow >= 0 && shadow <= 1, "traffic_split", "split_arm.shadow", "must be in [0, 1]");
    return shadow;
}

inline std::optional<rollback_guard> traffic_split::checked(std::optional<rollback_guard> guard) {
    if (!guard) return guard;
    constexpr std::string_view policy = "traffic_split";
    detail::require_option(guard->window > clock::duration::zero(), policy, "rollback_guard.window",
                           "must be positive");
    detail::require_option(guard->min_samples >= 1, policy, "rollback_guard.min_samples", "must be at least 1");
    detail::require_option(guard->latency_percentile > 0 && guard->latency_percentile <= 1, policy,
                           "rollback_guard.latency_percentile", "must be in (0, 1]");
    detail::require_option(!guard->max_error_rate || (*guard->max_error_rate >= 0 && *guard->max_error_rate <= 1),
                           policy, "rollback_guard.max_error_rate", "must be in [0, 1]");
    detail::require_option(!guard->max_latency || *guard->max_latency >= clock::duration::zero(), policy,
                           "rollback_guard.max_latency", "must not be negative");
    return guard;
}

/// One call through a split, shared by its live arm and its shadows, each ending on its own branch.
/// A shadow is reported once both it and the live arm have ended, by whichever ended last.
struct traffic_split::split_call {
    split_call(const traffic_split& policy, const call_context& ctx, std::size_t live_arm)
        : split(policy), op(ctx.op), events(ctx.events), live(live_arm),
          live_timing(std::make_shared<detail::attempt_latency>(policy.state_->timing.clock)) {}

    const traffic_split split;  // a copy sharing the state: shadows may end after the call did
    const operation op;
    event_sink* const events;  // the call's: its shadows' events go there too, whenever they end
    const std::size_t live;
    const std::shared_ptr<detail::attempt_latency> live_timing;
    cancellation_source shadows_ended;  // fired by the last shadow to end: the cut need not wait
    std::mutex mutex;
    // Under the mutex:
    std::vector<std::shared_ptr<detail::shadow_run>> shadows;
    bool live_ended = false;
    // Unchanged once live_ended: the live arm's outcome as recorded, for the shadows' reports.
    std::optional<error> live_failure;
    std::optional<std::chrono::microseconds> live_latency;

    bool shadows_running() const {
        return std::any_of(shadows.begin(), shadows.end(), [](const auto& run) { return !run->ended; });
    }
};

/// The live arm's outcome: puts the outer route back, records it, then hands it on.
template <class T, class Done>
struct traffic_split::live_outcome {
    std::shared_ptr<split_call> call;
    call_context* ctx;
    std::shared_ptr<const sturdy::route> outer_route;
    Done done;
    void operator()(result<T> outcome) {
        ctx->route = std::move(outer_route);
        std::optional<error> failure;
        if (!outcome) failure = outcome.error();
        call->split.end_live(call, std::move(failure), *ctx->exec);
        done(std::move(outcome));
    }
};

/// A shadow's outcome, kept for its report.
template <class T>
struct traffic_split::shadow_outcome {
    std::shared_ptr<split_call> call;
    std::shared_ptr<detail::shadow_run> run;
    void operator()(result<T> outcome) const {
        std::optional<error> failure;
        if (!outcome) failure = outcome.error();
        call->split.end_shadow(*call, *run, std::move(failure));
    }
};

template <class T, class Next, class Done>
void traffic_split::start(call_context& ctx, Next next, Done done) const {
    const auto& arms = state_->arms;
    if (arms.empty()) return next(ctx, std::move(done));
    const auto plan = detail::route_plan(arms, ctx);
    if (!plan) return done(plan.error());
    const choice chosen = choose(ctx, *plan);
    auto call = std::make_shared<split_call>(*this, ctx, chosen.live);
    // Shadows start first, so they run beside the live call rather than after it.
    for (std::size_t arm : chosen.shadows) start_shadow<T>(call, arm, ctx, next);

    const arm_state& live = arms[chosen.live];
    ctx.state->note_route(live.route->name, false);
    auto outer_route = std::exchange(ctx.route, live.route);
    auto timed = detail::timed_next<T, Next>{std::move(next), call->live_timing};
    try {
        detail::start_route_policy<T>(live.policy, ctx, std::move(timed),
                                      live_outcome<T, Done>{call, &ctx, std::move(outer_route), std::move(done)});
    } catch (...) {
        // The live arm threw (an attempt function of the caller's may): the call ends here, and its
        // shadows are stopped rather than waited for.
        abandon_shadows(*call);
        throw;
    }
}

template <class T, class Next>
void traffic_split::start_shadow(const std::shared_ptr<split_call>& call, std::size_t arm, call_context& live,
                                 const Next& next) const {
    auto run = std::make_shared<detail::shadow_run>(live, arm, state_->arms[arm].route, state_->timing.clock);
    {
        // Listed before its branch starts, which may end it at once.
        std::lock_guard<std::mutex> lock(call->mutex);
        call->shadows.push_back(run);
    }
    const bool started = live.exec->spawn([call, run, next] {
        const any_policy& policy = call->split.state_->arms[run->arm].policy;
        try {
            detail::start_route_policy<T>(policy, run->ctx, detail::timed_next<T, Next>{next, run->latency},
                                          shadow_outcome<T>{call, run});
        } catch (const std::exception& e) {
            // A shadow must not take the process down; its exception is its failure.
            call->split.end_shadow(
                *call, *run, error(error_kind::invalid_response, std::string("the shadow attempt threw: ") + e.what()));
        }
    });
    if (started) return;
    // No branch to spare: the live call goes on without this shadow.
    std::lock_guard<std::mutex> lock(call->mutex);
    call->shadows.erase(std::find(call->shadows.begin(), call->shadows.end(), run));
}

// Records the live arm's outcome, reports the shadows that ended before it, and has the ones still
// running cut after `shadow_wait`.
inline void traffic_split::end_live(const std::shared_ptr<split_call>& call, std::optional<error> failure,
                                    executor& exec) const {
    const auto latency = call->live_timing->latency();
    report(record(call->live, arm_outcome{failure, latency, false, false}, state_->timing.clock->now()), call->events);
    std::vector<std::shared_ptr<detail::shadow_run>> ended;
    bool running = false;
    {
        std::lock_guard<std::mutex> lock(call->mutex);
        call->live_failure = std::move(failure);
        call->live_latency = latency;
        call->live_ended = true;
        for (const auto& run : call->shadows)
            if (run->ended) ended.push_back(run);
        running = call->shadows_running();
    }
    for (const auto& run : ended) report_shadow(*call, *run);
    if (running && state_->options.shadow_wait) cut_after(call, exec, *state_->options.shadow_wait);
}

// Keeps a shadow's outcome; reports it now if the live arm has ended, else the live arm will.
inline void traffic_split::end_shadow(split_call& call, detail::shadow_run& run, std::optional<error> failure) const {
    bool report_now = false;
    bool last = false;
    {
        std::lock_guard<std::mutex> lock(call.mutex);
        if (run.ended) return;  // it threw after its outcome was in: that outcome stands
        run.failure = std::move(failure);
        run.cut = run.cut && run.failure.has_value();  // it may have answered as it was being cut
        run.ended = true;
        report_now = call.live_ended;
        last = !call.shadows_running();
    }
    if (last) call.shadows_ended.cancel();
    if (report_now) report_shadow(call, run);
}

inline void traffic_split::report_shadow(const split_call& call, const detail::shadow_run& run) const {
    const auto shadow_latency = run.latency->latency();
    report(record(run.arm, arm_outcome{run.failure, shadow_latency, true, run.cut}, state_->timing.clock->now()),
           call.events);
    const auto& opts = state_->options;
    if (!opts.on_shadow && !call.events) return;  // nothing to build the outcomes' copies for
    const auto zero = std::chrono::microseconds::zero();
    const auto& shadow_route = *state_->arms[run.arm].route;
    detail::emit(
        opts.on_shadow, call.events, event_source{opts.name, shadow_route.name},
        shadow_event{call.op,
                     split_outcome{*state_->arms[call.live].route, call.live_failure, call.live_latency.value_or(zero)},
                     split_outcome{shadow_route, run.failure, shadow_latency.value_or(zero)}, run.cut});
}

// Cuts the shadows still running once `wait` has passed, unless they all end first. The wait runs
// on a branch of its own, so the live outcome goes on at once; with no branch to spare, it runs
// here, before the live outcome goes on.
inline void traffic_split::cut_after(const std::shared_ptr<split_call>& call, executor& exec,
                                     clock::duration wait) const {
    std::shared_ptr<const sturdy::clock> clock = state_->timing.clock;
    auto timer = [call, &exec, clock, wait] {
        exec.after(*clock, wait, call->shadows_ended.token(), [call](bool elapsed) {
            if (elapsed) call->split.cut_unfinished(*call);
        });
    };
    if (!exec.spawn(timer)) timer();
}

inline void traffic_split::cut_unfinished(split_call& call) const {
    std::vector<std::shared_ptr<detail::shadow_run>> running;
    {
        std::lock_guard<std::mutex> lock(call.mutex);
        for (const auto& run : call.shadows) {
            if (run->ended) continue;
            run->cut = true;
            running.push_back(run);
        }
    }
    for (const auto& run : running) run->stop.cancel();
}

inline void traffic_split::abandon_shadows(split_call& call) const {
    {
        std::lock_guard<std::mutex> lock(call.mutex);
        if (call.live_ended) return;  // the exception came after the live outcome went on: the shadows run on
    }
    cut_unfinished(call);
}

inline traffic_split::choice traffic_split::choose(const call_context& ctx,
                                                   const std::vector<std::size_t>& plan) const {
    auto& s = *state_;
    const double draw = s.timing.random->next_unit();
    choice c;
    std::vector<std::pair<std::size_t, double>> shadow_shares;
    {
        std::lock_guard<std::mutex> lock(s.mutex);
        c.live = pick(ctx, plan, draw);
        if (ctx.pinned_route.empty())
            for (std::size_t i = 0; i < s.arms.size(); ++i)
                if (i != c.live && s.arms[i].shadow > 0) shadow_shares.emplace_back(i, s.arms[i].shadow);
    }
    for (const auto& [arm, share] : shadow_shares)
        if (share >= 1.0 || s.timing.random->next_unit() < share) c.shadows.push_back(arm);
    return c;
}

inline std::size_t traffic_split::pick(const call_context& ctx, const std::vector<std::size_t>& plan,
                                       double draw) const {
    const auto& arms = state_->arms;
    // The plan puts the call's own choice first: its pinned arm, or the first of its route_order.
    const std::size_t chosen = plan.front();
    if (!ctx.pinned_route.empty() ||
        std::find(ctx.route_order.begin(), ctx.route_order.end(), arms[chosen].route->name) != ctx.route_order.end())
        return chosen;
    double total = 0;
    for (const auto& a : arms) total += a.weight;
    if (total <= 0) return 0;
    const double point = draw * total;
    double reached = 0;
    std::size_t last = 0;
    for (std::size_t i = 0; i < arms.size(); ++i) {
        if (arms[i].weight <= 0) continue;
        reached += arms[i].weight;
        last = i;
        if (point < reached) return i;
    }
    return last;  // draw * total rounded up to the total
}

// The guard's decision: a function of the outcome and the time given, under the split's lock.
inline std::optional<traffic_split::rollback> traffic_split::record(std::size_t arm, const arm_outcome& outcome,
                                                                    clock::time_point now) const {
    const auto& failure = outcome.failure;
    std::lock_guard<std::mutex> lock(state_->mutex);
    arm_state& a = state_->arms[arm];
    if (outcome.shadow) {
        ++a.shadow_calls;
        if (failure) ++a.shadow_failures;
        if (outcome.cut) ++a.shadow_cut;
    } else {
        ++a.calls;
        if (failure) ++a.failures;
    }
    // A call the caller cancelled says nothing of the arm; one cut for time says it was slow.
    if (failure && failure->kind() == error_kind::cancelled && !outcome.cut) return std::nullopt;
    const auto& counts = a.guard && a.guard->should_handle ? a.guard->should_handle : state_->options.should_handle;
    const bool failed = failure && !outcome.cut && matches(counts, any_error, *failure);
    a.window.record(now, failed, outcome.latency);

    if (!a.guard || a.rolled_back) return std::nullopt;
    const rollback_guard& g = *a.guard;
    const auto sums = a.window.sums(now);
    if (sums.calls < g.min_samples) return std::nullopt;
    const auto percentile = a.window.percentile(now, g.latency_percentile);
    std::optional<rollback_reason> reason;
    if (g.max_error_rate && sums.failure_ratio() > *g.max_error_rate) reason = rollback_reason::error_rate;
    else if (g.max_latency && percentile && *percentile > *g.max_latency) reason = rollback_reason::latency;
    if (!reason) return std::nullopt;
    a.weight = 0;
    a.shadow = 0;
    a.rolled_back = true;
    return rollback{arm, *reason, sums.failure_ratio(), percentile, sums.calls};
}

inline void traffic_split::report(const std::optional<rollback>& r, event_sink* events) const {
    if (!r) return;
    const auto& opts = state_->options;
    const auto& arm = *state_->arms[r->arm].route;
    detail::emit(opts.on_rollback, events, event_source{opts.name, arm.name},
                 rollback_event{arm, r->reason, r->error_rate, r->latency, r->samples});
}

inline bool traffic_split::set_weight(std::string_view name, double w) const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    const auto i = detail::find_route(state_->arms, name);
    if (i >= state_->arms.size()) return false;
    arm_state& a = state_->arms[i];
    a.weight = std::max(w, 0.0);
    if (a.rolled_back && a.weight > 0) {
        a.rolled_back = false;
        a.window.clear();
    }
    return true;
}

inline bool traffic_split::set_shadow(std::string_view name, double fraction) const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    const auto i = detail::find_route(state_->arms, name);
    if (i >= state_->arms.size()) return false;
    state_->arms[i].shadow = std::clamp(fraction, 0.0, 1.0);
    return true;
}

inline std::optional<double> traffic_split::weight(std::string_view name) const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    const auto i = detail::find_route(state_->arms, name);
    if (i >= state_->arms.size()) return std::nullopt;
    return state_->arms[i].weight;
}

inline split_arm_stats traffic_split::stats_of(const arm_state& a, clock::time_point now) const {
    split_arm_stats s;
    s.name = a.route->name;
    s.weight = a.weight;
    s.shadow = a.shadow;
    s.rolled_back = a.rolled_back;
    s.calls = a.calls;
    s.failures = a.failures;
    s.shadow_calls = a.shadow_calls;
    s.shadow_failures = a.shadow_failures;
    s.shadow_cut = a.shadow_cut;
    const auto sums = a.window.sums(now);
    s.window_calls = sums.calls;
    s.window_error_rate = sums.failure_ratio();
    s.window_latency = a.window.percentile(now, a.guard ? a.guard->latency_percentile : 0.99);
    return s;
}

inline std::vector<split_arm_stats> traffic_split::stats() const {
    const auto now = state_->timing.clock->now();
    std::lock_guard<std::mutex> lock(state_->mutex);
    std::vector<split_arm_stats> out;
    for (const auto& a : state_->arms) out.push_back(stats_of(a, now));
    return out;
}

inline std::optional<split_arm_stats> traffic_split::stats_for(std::string_view name) const {
    const auto now = state_->timing.clock->now();
    std::lock_guard<std::mutex> lock(state_->mutex);
    const auto i = detail::find_route(state_->arms, name);
    if (i >= state_->arms.size()) return std::nullopt;
    return stats_of(state_->arms[i], now);
}

}  // namespace sturdy

#pragma once
/// @file
/// The circuit breaker: after repeated failures, stop calling a backend for a while, then let one
/// probe call through to learn whether it recovered.
///
///     sturdy::circuit_breaker_options opts;
///     opts.name = "openai";                     // names the breaker in its errors and events
///     sturdy::circuit_breaker breaker(opts);    // 3 failures in a row open it for 30 s
///     auto policy = sturdy::compose(sturdy::retry_policy(), breaker);
///     sturdy::basic_client<sturdy::curl_transport, decltype(policy)> client(options, policy);
///     // `breaker` shares its state with the copy inside the client:
///     if (breaker.state() == sturdy::circuit_state::open) ...
///
/// States:
///   closed     calls go through and their outcomes are counted
///   open       calls fail at once, without an attempt, with error_kind::circuit_open whose
///              retry_after() is the time left in the break
///   half_open  the break is over: the next call is the probe, the others fail fast while it
///              runs; its success closes the circuit, its failure opens it for another break
///   isolated   held open by hand (isolate()) until reset()
///
/// Where it sits in a pipeline matters (see sturdy/pipeline.hpp): inside a retry, each attempt
/// counts and the retries that follow an opening fail fast (circuit_open is not retried by
/// default); outside it, the breaker sees one outcome per call, after all its retries.

#include <sturdy/backoff.hpp>
#include <sturdy/clock.hpp>
#include <sturdy/detail/duration_text.hpp>
#include <sturdy/detail/option_check.hpp>
#include <sturdy/detail/outcome_window.hpp>
#include <sturdy/error.hpp>
#include <sturdy/events.hpp>
#include <sturdy/executor.hpp>
#include <sturdy/policy.hpp>
#include <sturdy/policy_options.hpp>
#include <sturdy/result.hpp>
#include <sturdy/retry.hpp>
#include <sturdy/state_store.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

namespace sturdy {

/// Where a circuit breaker stands.
enum class circuit_state {
    closed,     ///< calls go through
    open,       ///< calls fail fast until the break is over
    half_open,  ///< one probe call goes through; the others fail fast
    isolated,   ///< held open by hand until reset()
};

constexpr std::string_view to_string(circuit_state s) noexcept {
    switch (s) {
        case circuit_state::closed: return "closed";
        case circuit_state::open: return "open";
        case circuit_state::half_open: return "half_open";
        case circuit_state::isolated: return "isolated";
    }
    return "unknown";
}

/// What opens a closed circuit.
enum class circuit_trip {
    consecutive_failures,  ///< `failure_threshold` failures in a row
    failure_ratio,         ///< a share of failed calls over a sliding window, given enough calls
};

/// The default for `circuit_breaker_options::ignore_on`: errors that say nothing about the
/// backend's health, because no request reached it (a refusal by a client-side breaker or
/// limiter, a request that could not be sent), because the caller gave up, or because the server
/// asked for a pause: a 429 is backpressure from a healthy backend, which a retry's wait or a
/// fallback chain's cool-down answers, not a break (`count_rate_limit` counts it).
inline bool ignored_by_breaker(const error& e) {
    switch (e.kind()) {
        case error_kind::cancelled:
        case error_kind::circuit_open:
        case error_kind::rate_limited:
        case error_kind::invalid_argument:
        case error_kind::rate_limit: return true;
        case error_kind::timeout:
            return e.code() == error_codes::deadline_exceeded;  // nothing reached the backend
        default:
            return false;
    }
}

/// Reported when a breaker changes state. The views are valid during the hook's call only.
struct circuit_state_event {
    std::string_view name;            ///< circuit_breaker_options::name
    circuit_state from;
    circuit_state to;
    std::string_view reason;          ///< "3 consecutive failures", "the probe succeeded"...
    const error* cause;               ///< the failure that opened the circuit, if one did; else null
    clock::duration break_duration;   ///< when `to` is open: how long until it half-opens; else zero
};

/// Reported when a breaker refuses a call.
struct circuit_rejection_event {
    std::string_view name;
    operation op;
    std::string_view model;
    circuit_state state;              ///< open, half_open or isolated
    const error& rejection;           ///< the circuit_open error the call fails with
};

/// What a breaker (with its copies) has counted since it was made (reset() does not clear these).
/// Its own: breakers sharing a circuit through a store each count their own calls.
struct circuit_stats {
    std::uint64_t successes = 0;      ///< outcomes counted as healthy (client errors included)
    std::uint64_t failures = 0;       ///< outcomes `should_handle` counted as failures
    std::uint64_t slow_calls = 0;     ///< attempts longer than `slow_call_threshold`
    std::uint64_t ignored = 0;        ///< outcomes `ignore_on` set aside
    std::uint64_t rejections = 0;     ///< calls refused without an attempt
    std::uint64_t times_opened = 0;   ///< transitions to open, probe failures included
};

struct circuit_breaker_state;

/// Settings of a circuit breaker. The defaults are the common recipe: 3 consecutive failures
/// open the circuit for 30 s.
///
/// From policy_options: `name` (empty: "circuit_breaker") names the breaker, usually after its
/// target, in circuit_open errors and in events. `should_handle` chooses the errors that count as
/// failures; the others count as successes. Empty: is_transient, which counts server and network
/// trouble (5xx, 408, 409, 429 but not insufficient_quota, timeouts, connection errors, truncated
/// streams) but not client errors: a bad request says nothing about the backend. `ignore_on` is
/// asked first, and by default it sets 429s aside (see `count_rate_limit`).
struct circuit_breaker_options : policy_options {
    /// What opens the circuit: failures in a row, or a failure ratio over a window.
    circuit_trip trip = circuit_trip::consecutive_failures;
    /// consecutive_failures: how many in a row open the circuit; any counted success resets the run.
    int failure_threshold = 3;
    /// failure_ratio: open when at least this share (0..1] of the calls in the window failed...
    double failure_ratio = 0.5;
    /// ...and the window holds at least this many calls, so two failures of two calls do not trip it.
    int minimum_calls = 10;
    /// failure_ratio: how far back calls count. Outcomes expire a tenth of the window at a time.
    clock::duration window = std::chrono::seconds(30);

    /// How long the circuit stays open before it lets a probe through.
    clock::duration break_duration = std::chrono::seconds(30);
    /// Breaks that grow while probes keep failing: when set, it replaces `break_duration`; the
    /// first break is its first delay, each failed probe takes the next, and closing starts it
    /// over. `backoff::exponential(30s, 10min)` doubles the break up to 10 minutes; a jittered
    /// backoff keeps many clients from probing a recovering backend at the same moment.
    std::optional<sturdy::backoff> break_backoff;
    /// The retry_after() of calls refused while the probe runs: about the time one call takes.
    clock::duration half_open_retry_after = std::chrono::seconds(1);

    /// Attempts longer than this (on the breaker's clock) are slow. A slow attempt counts as a
    /// failure, even when it succeeded, unless `slow_call_ratio` is set. Streams are never slow:
    /// their length is the reply's, not the backend's health; bound them with first_token_timeout,
    /// whose timeouts count as failures.
    std::optional<clock::duration> slow_call_threshold;
    /// failure_ratio only: slow calls count apart from failures, and open the circuit when at least
    /// this share of the window's calls were slow (resilience4j's slowCallRateThreshold).
    std::optional<double> slow_call_ratio;

    /// Errors that count neither way (asked before `should_handle`). Empty: ignored_by_breaker.
    error_predicate ignore_on{};
    /// Count a 429 (rate_limit) through `should_handle` like any other error, for backends whose
    /// 429s do mean overload. Off by default: a 429 is the server asking for a pause, and one
    /// call's three 429s would otherwise open the circuit for the whole break.
    bool count_rate_limit = false;

    /// Called on each state change, in the order the changes happened; then the change goes to
    /// the event_sink of the call whose arrival (a break found over) or outcome made it. A change
    /// no call made (isolate(), reset(), a break that state() found over) goes to the hook alone.
    /// Never called under the breaker's lock, and maybe on another thread, which reports changes
    /// that happened at once in order. A call that made a change goes on only once its change
    /// was reported, waiting for a report of earlier changes running on another thread if need
    /// be: so a hook or sink must not wait for another call through the same breaker. A breaker
    /// reports the changes its own calls (and its copies' calls) made: one made through another
    /// breaker sharing its circuit (`store`) reaches that breaker's hook and sinks.
    std::function<void(const circuit_state_event&)> on_state_change;
    /// Called for each refused call, on the caller's thread, then that call's event_sink.
    std::function<void(const circuit_rejection_event&)> on_rejected;
    /// Where the circuit lives (sturdy/state_store.hpp), under the breaker's `name`: breakers of
    /// one name on one store share one circuit, whichever client they are in, so that one's
    /// failures open the other's. Null: a store of this breaker's own, shared by its copies alone.
    std::shared_ptr<state_store<circuit_breaker_state>> store{};
};

/// What the breakers of one name share, kept in their store (`circuit_breaker_options::store`):
/// where the circuit stands, and what it counts towards opening. A plain value. What a breaker
/// reports (its hooks, its events, its stats) is not shared: each breaker reports what its own
/// calls and copies did.
struct circuit_breaker_state {
    circuit_state state = circuit_state::closed;
    /// Counts the circuit's periods: a call admitted in an earlier one says nothing about this one.
    std::uint64_t generation = 0;
    bool probe_out = false;  ///< half_open: the probe call is running
    int consecutive = 0;     ///< consecutive_failures: failures in a row so far
    /// failure_ratio: the period's outcomes. Its span is the options' window (a breaker's first
    /// state is made from its options).
    detail::outcome_window window{std::chrono::seconds(30)};
    clock::time_point open_until{};  ///< open: when the break ends
    backoff_state break_state;       ///< break_backoff: the breaks taken since the circuit last closed
    std::string reason;              ///< why the circuit is open or isolated, for refusals
    std::string cause;               ///< what() of the failure that opened it; empty: none did
};

namespace detail {

/// A breaker's decisions on its shared state, and the report of the changes they make. Each
/// decision is a step on the state in its store, which changes nothing else, since a store may
/// run it again (sturdy/state_store.hpp); what it leads to (a refusal's event, a state change's
/// report, the stats) happens after the step, from what its last run decided.
class breaker_core {
public:
    static constexpr std::string_view kind = "circuit_breaker";

    /// A call let through: which period of the circuit admitted it, and whether it is the probe.
    struct ticket {
        std::uint64_t generation = 0;
        bool probe = false;
        clock::time_point started{};
    };

    breaker_core(circuit_breaker_options options, sturdy::timing timing)
        : options_(sanitized(std::move(options))), timing_(std::move(timing)),
          circuit_(options_.store, options_.name, first_state(options_)) {}

    const circuit_breaker_options& options() const noexcept { return options_; }

    /// Lets a call through, or returns the circuit_open error it fails with.
    result<ticket> admit(const call_context& ctx) {
        std::optional<error> refused;
        circuit_state seen{};
        ticket t;
        const auto now = timing_.clock->now();
        try {
            changing(
                &ctx,
                [&](circuit_breaker_state& s, step& out) {
                    refused.reset();
                    t = ticket{};
                    end_break_if_over(s, now, out);
                    seen = s.state;
                    if (s.state == circuit_state::closed || (s.state == circuit_state::half_open && !s.probe_out)) {
                        t.generation = s.generation;
                        t.probe = s.state == circuit_state::half_open;
                        s.probe_out = s.probe_out || t.probe;
                    } else {
                        refused = rejection(s, now);
                    }
                },
                [&] {
                    if (refused) ++stats_.rejections;
                });
        } catch (...) {
            if (!refused) abandon(t);  // a hook or sink that throws must not keep the probe's place
            throw;
        }
        if (refused) {
            emit(options_.on_rejected, ctx.events, source(ctx, options_.name),
                 circuit_rejection_event{options_.name, ctx.op, ctx.effective_model(), seen, *refused});
            return *refused;
        }
        t.started = timing_.clock->now();  // after the report: a hook's time is not the call's
        return t;
    }

    /// Counts the outcome of an admitted call, `ctx`'s: `failure` is its error, null when it succeeded.
    void record(const ticket& t, const error* failure, const call_context& ctx) {
        const auto now = timing_.clock->now();
        const auto took = now - t.started;
        // The predicates are user code: run them before the step.
        const bool counted_429 = failure && options_.count_rate_limit && failure->kind() == error_kind::rate_limit;
        const bool ignored = failure && !counted_429 && matches(options_.ignore_on, ignored_by_breaker, *failure);
        const bool failed = failure && !ignored && matches(options_.should_handle, is_transient, *failure);
        const bool slow = !ignored && options_.slow_call_threshold && ctx.op != operation::chat_stream &&
                          took > *options_.slow_call_threshold;
        changing(
            &ctx,
            [&](circuit_breaker_state& s, step& out) {
                // A call admitted before the circuit last changed says nothing about its present period.
                if (t.generation == s.generation) apply(s, t, failure, ignored, failed, slow, now, out);
            },
            [&] { count(ignored, failed, slow); });
    }

    /// An admitted call ended without an outcome (the attempt threw): frees the probe's place.
    void abandon(const ticket& t) {
        if (!t.probe) return;
        circuit_.update([&](circuit_breaker_state& s) {
            if (t.generation == s.generation) s.probe_out = false;
        });
    }

    circuit_state state() {
        circuit_state seen{};
        const auto now = timing_.clock->now();
        changing(
            nullptr,
            [&](circuit_breaker_state& s, step& out) {
                end_break_if_over(s, now, out);
                seen = s.state;
            },
            [] {});
        return seen;
    }

    circuit_stats stats() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return stats_;
    }

    void isolate() {
        changing(
            nullptr,
            [&](circuit_breaker_state& s, step& out) {
                if (s.state == circuit_state::isolated) return;
                s.reason = "isolated by hand";
                s.cause.clear();
                move_to(s, circuit_state::isolated, s.reason, nullptr, clock::duration::zero(), out);
            },
            [] {});
    }

    void reset() {
        changing(
            nullptr, [&](circuit_breaker_state& s, step& out) { close(s, "reset by hand", out); }, [] {});
    }

private:
    /// The state change a step made, if any (a step makes one at most), and the random numbers it
    /// drew, which a run of the step again sees again.
    struct step {
        explicit step(random_source& source) : random(source) {}

        struct transition {
            circuit_state from{}, to{};
            std::string reason;
            clock::duration pause{};
            const error* cause = nullptr;  ///< the failure that made it: the caller's, alive until reported
        };
        std::optional<transition> changed;
        replayed_random random;
    };

    struct pending_change {
        std::uint64_t number;
        circuit_state from, to;
        std::string reason;
        std::optional<error> cause;
        clock::duration break_duration;
        event_sink* sink;                            ///< the sink of the call that made it, if any
        std::shared_ptr<const sturdy::route> route;  ///< the route that call was on, for the sink
    };

    static circuit_breaker_options sanitized(circuit_breaker_options o) {
        require_option(o.failure_threshold >= 1, kind, "failure_threshold", "must be at least 1");
        require_option(o.minimum_calls >= 1, kind, "minimum_calls", "must be at least 1");
        require_option(o.failure_ratio > 0 && o.failure_ratio <= 1, kind, "failure_ratio", "must be in (0, 1]");
        require_option(o.window > clock::duration::zero(), kind, "window", "must be positive");
        require_option(o.break_duration >= clock::duration::zero(), kind, "break_duration", "must not be negative");
        require_option(o.half_open_retry_after >= clock::duration::zero(), kind, "half_open_retry_after",
                       "must not be negative");
        require_option(!o.slow_call_threshold || *o.slow_call_threshold >= clock::duration::zero(), kind,
                       "slow_call_threshold", "must not be negative");
        require_option(!o.slow_call_ratio || (*o.slow_call_ratio > 0 && *o.slow_call_ratio <= 1), kind,
                       "slow_call_ratio", "must be in (0, 1]");
        require_option(!o.slow_call_ratio || o.trip == circuit_trip::failure_ratio, kind, "slow_call_ratio",
                       "needs trip = failure_ratio");
        require_option(!o.slow_call_ratio || o.slow_call_threshold, kind, "slow_call_ratio",
                       "needs a slow_call_threshold");
        return named(std::move(o), kind);
    }

    static circuit_breaker_state first_state(const circuit_breaker_options& o) {
        circuit_breaker_state s;
        s.window = outcome_window(o.window);
        return s;
    }

    /// Runs `decide(state, out)` as one step on the circuit, then, under the breaker's own lock,
    /// `tally()` (its stats) and the queueing of the change the step made, with the sink and route
    /// of the call `by` that made it; then reports that change outside every lock. The lock is held
    /// across the store's step so that changes queue in the order they were made.
    template <class Decide, class Tally>
    void changing(const call_context* by, Decide&& decide, Tally&& tally) {
        std::uint64_t made = 0;  // the number of the step's change, if it made one that is reported
        {
            std::lock_guard<std::mutex> lock(mutex_);
            step out(*timing_.random);
            circuit_.update([&](circuit_breaker_state& s) {
                out.changed.reset();
                out.random.rewind();
                decide(s, out);
            });
            tally();
            if (out.changed) made = queue(*out.changed, by);
        }
        report(made);
    }

    // ---- under mutex_ ----

    void count(bool ignored, bool failed, bool slow) {
        if (ignored) ++stats_.ignored;
        else if (failed) ++stats_.failures;
        else ++stats_.successes;
        if (slow) ++stats_.slow_calls;
    }

    /// Queues a change for report() when anyone will hear of it; returns its number, 0 if not.
    std::uint64_t queue(const step::transition& c, const call_context* by) {
        if (c.to == circuit_state::open) ++stats_.times_opened;
        event_sink* const sink = by ? by->events : nullptr;
        if (!options_.on_state_change && !sink) return 0;
        pending_.push_back(pending_change{++queued_, c.from, c.to, c.reason,
                                          c.cause ? std::optional<error>(*c.cause) : std::nullopt, c.pause, sink,
                                          sink ? by->route : nullptr});
        return queued_;
    }

    // ---- steps on the circuit: they change the state and `out` alone ----

    bool slow_counted_apart() const {
        return options_.trip == circuit_trip::failure_ratio && options_.slow_call_ratio.has_value();
    }

    /// Counts the outcome of an admitted call in the circuit's present period.
    void apply(circuit_breaker_state& s, const ticket& t, const error* failure, bool ignored, bool failed, bool slow,
               clock::time_point now, step& out) const {
        if (ignored) {
            if (t.probe) s.probe_out = false;  // the next call probes instead
            return;
        }
        const bool bad = failed || (slow && !slow_counted_apart());
        if (t.probe) {
            if (failed)
                open(s, now, "the probe failed", failure, out);
            else if (slow)
                open(s, now, "the probe was slower than " + duration_text(*options_.slow_call_threshold), nullptr, out);
            else
                close(s, "the probe succeeded", out);
            return;
        }
        if (options_.trip == circuit_trip::consecutive_failures) {
            if (!bad) {
                s.consecutive = 0;
            } else if (++s.consecutive >= options_.failure_threshold) {
                open(s, now,
                     std::to_string(s.consecutive) +
                         (options_.slow_call_threshold ? " consecutive failed or slow calls" : " consecutive failures"),
                     failed ? failure : nullptr, out);
            }
            return;
        }
        s.window.record(now, bad, std::nullopt, slow);
        const auto sums = s.window.sums(now);
        if (sums.calls < static_cast<std::uint64_t>(options_.minimum_calls)) return;
        const auto of_calls = [&](std::uint64_t n, std::string_view what, double threshold) {
            return std::to_string(n) + " of " + std::to_string(sums.calls) + " calls in the last " +
                   duration_text(options_.window) + " " + std::string(what) + " (threshold " +
                   std::to_string(std::lround(threshold * 100)) + "%)";
        };
        if (sums.failure_ratio() >= options_.failure_ratio) {
            open(s, now,
                 of_calls(sums.failures,
                          options_.slow_call_threshold && !slow_counted_apart() ? "failed or were slow" : "failed",
                          options_.failure_ratio),
                 failed ? failure : nullptr, out);
        } else if (slow_counted_apart() && sums.slow_ratio() >= *options_.slow_call_ratio) {
            open(s, now,
                 of_calls(sums.slow, "were slower than " + duration_text(*options_.slow_call_threshold),
                          *options_.slow_call_ratio),
                 nullptr, out);
        }
    }

    void end_break_if_over(circuit_breaker_state& s, clock::time_point now, step& out) const {
        if (s.state != circuit_state::open || now < s.open_until) return;
        s.probe_out = false;
        move_to(s, circuit_state::half_open, "the break is over", nullptr, clock::duration::zero(), out);
    }

    void open(circuit_breaker_state& s, clock::time_point now, std::string reason, const error* cause,
              step& out) const {
        const auto pause =
            options_.break_backoff ? options_.break_backoff->next(s.break_state, out.random) : options_.break_duration;
        s.open_until = now + pause;
        s.reason = std::move(reason);
        s.cause = cause ? cause->what() : std::string();
        move_to(s, circuit_state::open, s.reason, cause, pause, out);
    }

    void close(circuit_breaker_state& s, std::string_view reason, step& out) const {
        s.break_state = backoff_state{};
        s.cause.clear();
        if (s.state != circuit_state::closed) {
            move_to(s, circuit_state::closed, reason, nullptr, clock::duration::zero(), out);
            return;
        }
        // Already closed: forget the counts, and the calls in flight that would add to them.
        ++s.generation;
        s.consecutive = 0;
        s.window.clear();
    }

    /// Moves to `to`: a new period of the circuit, whose outcomes alone count.
    static void move_to(circuit_breaker_state& s, circuit_state to, std::string_view reason, const error* cause,
                        clock::duration pause, step& out) {
        out.changed = step::transition{s.state, to, std::string(reason), pause, cause};
        s.state = to;
        ++s.generation;
        s.probe_out = false;
        s.consecutive = 0;
        s.window.clear();
    }

    /// "circuit breaker 'openai'", or "circuit breaker" for one named by its kind alone.
    std::string who() const {
        return options_.name == kind ? std::string("circuit breaker") : "circuit breaker '" + options_.name + "'";
    }

    error rejection(const circuit_breaker_state& s, clock::time_point now) const {
        error_details d;
        if (s.state == circuit_state::open) {
            const auto left = s.open_until - now;
            d.retry_after = std::chrono::ceil<std::chrono::milliseconds>(left);
            d.message = who() + " is open (" + s.reason + (s.cause.empty() ? std::string() : "; last: " + s.cause) +
                        "); it half-opens in " + duration_text(left);
        } else if (s.state == circuit_state::half_open) {
            d.retry_after = std::chrono::ceil<std::chrono::milliseconds>(options_.half_open_retry_after);
            d.message = who() + " is half-open and its probe call is still running; try again in " +
                        duration_text(options_.half_open_retry_after);
        } else {
            d.message = who() + " is isolated: calls are refused until reset()";
        }
        return error(error_kind::circuit_open, std::move(d));
    }

    // ---- the report of changes, outside the store ----

    /// Reports the queued changes, in order, the caller's own numbered `mine` among them (0: it
    /// made none, and has nothing to report): each to the hook, then to the sink of its call. Never
    /// under the lock while user code runs. One thread reports at a time; a caller whose change
    /// another thread's report has not reached yet waits for that report to take it or to end, so
    /// that no change reaches a sink after its call went on. A change made by a hook or sink on the
    /// reporting thread itself is left to the report running further up that thread's stack.
    void report(std::uint64_t mine) {
        if (mine == 0) return;
        std::unique_lock<std::mutex> lock(mutex_);
        const auto this_thread = std::this_thread::get_id();
        if (reporting_ && reporter_ == this_thread) return;
        report_moved_.wait(lock, [&] { return reported_ >= mine || !reporting_; });
        if (reported_ >= mine) return;
        reporting_ = true;
        reporter_ = this_thread;
        const auto stop_reporting = [&](std::uint64_t last) {
            reported_ = std::max(reported_, last);
            reporting_ = false;
            report_moved_.notify_all();
        };
        while (!pending_.empty()) {
            pending_change c = std::move(pending_.front());
            pending_.pop_front();
            lock.unlock();
            try {
                const event_source from{options_.name, c.route ? std::string_view(c.route->name) : std::string_view{}};
                emit(options_.on_state_change, c.sink, from,
                     circuit_state_event{options_.name, c.from, c.to, c.reason, c.cause ? &*c.cause : nullptr,
                                         c.break_duration});
            } catch (...) {
                lock.lock();
                stop_reporting(c.number);  // its report is over, if not whole: nobody waits for it any longer
                throw;
            }
            lock.lock();
            reported_ = c.number;
            report_moved_.notify_all();
        }
        stop_reporting(reported_);
    }

    const circuit_breaker_options options_;
    const sturdy::timing timing_;
    const stored_state<circuit_breaker_state> circuit_;

    mutable std::mutex mutex_;  // what this breaker and its copies report: stats and changes
    circuit_stats stats_;
    std::deque<pending_change> pending_;  // changes not yet reported, numbered in order
    std::uint64_t queued_ = 0;            // the number of the last change queued
    std::uint64_t reported_ = 0;          // the number of the last change reported
    bool reporting_ = false;
    std::thread::id reporter_;
    std::condition_variable report_moved_;
};

}  // namespace detail

/// A circuit breaker policy. Copies share one circuit, so keep a copy to watch or steer the one
/// inside a client; use one breaker per backend you want to protect separately, or breakers of
/// one name on one store (`circuit_breaker_options::store`) to share a circuit across clients.
/// Thread-safe.
class circuit_breaker : public blocking_form<circuit_breaker> {
public:
    /// Throws std::invalid_argument for options that make no sense (a failure_threshold or
    /// minimum_calls below 1, a failure_ratio or slow_call_ratio outside (0, 1], a window that is
    /// not positive, a negative duration, a slow_call_ratio without its threshold or ratio trip).
    explicit circuit_breaker(circuit_breaker_options options = {}, sturdy::timing timing = {})
        : core_(std::make_shared<detail::breaker_core>(std::move(options), std::move(timing))) {}

    /// Admits the call or refuses it with circuit_open; an admitted call's outcome is counted
    /// before `done` sees it.
    template <class T, class Next, class Done>
    void start(call_context& ctx, Next next, Done done) const;

    /// The state now; an open circuit whose break is over reports (and becomes) half_open.
    circuit_state state() const { return core_->state(); }
    circuit_stats stats() const { return core_->stats(); }
    /// Holds the circuit open, refusing every call, until reset().
    void isolate() const { core_->isolate(); }
    /// Closes the circuit now and forgets the failures counted.
    void reset() const { core_->reset(); }

    const circuit_breaker_options& options() const noexcept { return core_->options(); }
    const std::string& name() const noexcept { return core_->options().name; }

private:
    /// An admitted call's place in the circuit. Counts the call's outcome once; when the call ends
    /// without one (its attempt threw, or its continuation was dropped), frees the probe's place.
    class pass {
    public:
        pass(std::shared_ptr<detail::breaker_core> core, const detail::breaker_core::ticket& t)
            : core_(std::move(core)), ticket_(t) {}
        ~pass() {
            if (!recorded_) core_->abandon(ticket_);
        }
        pass(const pass&) = delete;
        pass& operator=(const pass&) = delete;
        void record(const error* failure, const call_context& ctx) {
            recorded_ = true;
            core_->record(ticket_, failure, ctx);
        }

    private:
        std::shared_ptr<detail::breaker_core> core_;
        detail::breaker_core::ticket ticket_;
        bool recorded_ = false;
    };

    /// Counts the outcome of what ran inside the breaker, then hands it on.
    template <class T, class Done>
    struct count_outcome {
        std::shared_ptr<pass> through;
        const call_context* ctx;  // lives until the outcome comes: the continuation form's contract
        Done done;
        void operator()(result<T> outcome) {
            through->record(outcome ? nullptr : &outcome.error(), *ctx);
            through.reset();
            done(std::move(outcome));
        }
    };

    std::shared_ptr<detail::breaker_core> core_;
};

template <class T, class Next, class Done>
void circuit_breaker::start(call_context& ctx, Next next, Done done) const {
    auto admitted = core_->admit(ctx);
    if (!admitted) return done(admitted.error());
    next(ctx, count_outcome<T, Done>{std::make_shared<pass>(core_, *admitted), &ctx, std::move(done)});
}

}  // namespace sturdy

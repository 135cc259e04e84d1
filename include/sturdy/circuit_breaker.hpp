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
#include <sturdy/executor.hpp>
#include <sturdy/policy.hpp>
#include <sturdy/result.hpp>
#include <sturdy/retry.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
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

/// What a breaker has counted since it was made (reset() does not clear these).
struct circuit_stats {
    std::uint64_t successes = 0;      ///< outcomes counted as healthy (client errors included)
    std::uint64_t failures = 0;       ///< outcomes `failure_on` counted as failures
    std::uint64_t slow_calls = 0;     ///< attempts longer than `slow_call_threshold`
    std::uint64_t ignored = 0;        ///< outcomes `ignore_on` set aside
    std::uint64_t rejections = 0;     ///< calls refused without an attempt
    std::uint64_t times_opened = 0;   ///< transitions to open, probe failures included
};

/// Settings of a circuit breaker. The defaults are the common recipe: 3 consecutive failures
/// open the circuit for 30 s.
struct circuit_breaker_options {
    /// Names the breaker (usually its target) in circuit_open errors and in events.
    std::string name;

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

    /// Which errors count as failures; the others count as successes. The default counts server and
    /// network trouble (5xx, 408, 409, 429 but not insufficient_quota, timeouts, connection errors,
    /// truncated streams) but not client errors: a bad request says nothing about the backend.
    /// Empty: the default, is_transient.
    std::function<bool(const error&)> failure_on = is_transient;
    /// Errors that count neither way (checked first). Empty: the default, ignored_by_breaker.
    std::function<bool(const error&)> ignore_on = ignored_by_breaker;
    /// Count a 429 (rate_limit) through `failure_on` like any other error, for backends whose 429s
    /// do mean overload. Off by default: a 429 is the server asking for a pause, and one call's
    /// three 429s would otherwise open the circuit for the whole break.
    bool count_rate_limit = false;

    /// Called on each state change, in the order the changes happened, outside the breaker's lock
    /// (maybe on another thread that is reporting changes when several happen at once).
    std::function<void(const circuit_state_event&)> on_state_change;
    /// Called for each refused call, on the caller's thread.
    std::function<void(const circuit_rejection_event&)> on_rejected;
};

namespace detail {

/// A breaker's shared state: everything its copies see.
class breaker_core {
public:
    /// A call let through: which period of the circuit admitted it, and whether it is the probe.
    struct ticket {
        std::uint64_t generation = 0;
        bool probe = false;
        clock::time_point started{};
    };

    breaker_core(circuit_breaker_options options, sturdy::timing timing)
        : options_(sanitized(std::move(options))), timing_(std::move(timing)), window_(options_.window) {}

    const circuit_breaker_options& options() const noexcept { return options_; }

    /// Lets a call through, or returns the circuit_open error it fails with.
    result<ticket> admit(const call_context& ctx) {
        std::optional<error> refused;
        circuit_state seen{};
        ticket t;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            const auto now = timing_.clock->now();
            end_break_if_over(now);
            seen = state_;
            if (state_ == circuit_state::closed || (state_ == circuit_state::half_open && !probe_out_)) {
                t.generation = generation_;
                t.probe = state_ == circuit_state::half_open;
                probe_out_ = probe_out_ || t.probe;
            } else {
                ++stats_.rejections;
                refused = rejection(now);
            }
        }
        deliver_changes();
        if (refused) {
            if (options_.on_rejected)
                options_.on_rejected(circuit_rejection_event{options_.name, ctx.op, ctx.effective_model(), seen, *refused});
            return *refused;
        }
        t.started = timing_.clock->now();
        return t;
    }

    /// Counts the outcome of an admitted call: `failure` is its error, null when it succeeded.
    void record(const ticket& t, const error* failure, operation op) {
        const auto took = timing_.clock->now() - t.started;
        // The predicates are user code: run them before taking the lock.
        const bool counted_429 = failure && options_.count_rate_limit && failure->kind() == error_kind::rate_limit;
        const bool ignored = failure && !counted_429 && matches(options_.ignore_on, ignored_by_breaker, *failure);
        const bool failed = failure && !ignored && matches(options_.failure_on, is_transient, *failure);
        const bool slow = !ignored && options_.slow_call_threshold && op != operation::chat_stream && took > *options_.slow_call_threshold;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            count(ignored, failed, slow);
            // A call admitted before the circuit last changed says nothing about its present period.
            if (t.generation == generation_) apply(t, failure, ignored, failed, slow);
        }
        deliver_changes();
    }

    /// An admitted call ended without an outcome (the attempt threw): frees the probe's place.
    void abandon(const ticket& t) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (t.probe && t.generation == generation_) probe_out_ = false;
    }

    circuit_state state() {
        circuit_state s{};
        {
            std::lock_guard<std::mutex> lock(mutex_);
            end_break_if_over(timing_.clock->now());
            s = state_;
        }
        deliver_changes();
        return s;
    }

    circuit_stats stats() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return stats_;
    }

    void isolate() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (state_ != circuit_state::isolated) {
                reason_ = "isolated by hand";
                cause_.reset();
                change(circuit_state::isolated, reason_, nullptr, clock::duration::zero());
            }
        }
        deliver_changes();
    }

    void reset() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            close("reset by hand");
        }
        deliver_changes();
    }

private:
    struct pending_change {
        circuit_state from, to;
        std::string reason;
        std::optional<error> cause;
        clock::duration break_duration;
    };

    static circuit_breaker_options sanitized(circuit_breaker_options o) {
        constexpr std::string_view policy = "circuit_breaker";
        require_option(o.failure_threshold >= 1, policy, "failure_threshold", "must be at least 1");
        require_option(o.minimum_calls >= 1, policy, "minimum_calls", "must be at least 1");
        require_option(o.failure_ratio > 0 && o.failure_ratio <= 1, policy, "failure_ratio", "must be in (0, 1]");
        require_option(o.window > clock::duration::zero(), policy, "window", "must be positive");
        require_option(o.break_duration >= clock::duration::zero(), policy, "break_duration", "must not be negative");
        require_option(!o.slow_call_ratio || (*o.slow_call_ratio > 0 && *o.slow_call_ratio <= 1), policy,
                       "slow_call_ratio", "must be in (0, 1]");
        return o;
    }

    // ---- all below run under mutex_ ----

    void count(bool ignored, bool failed, bool slow) {
        if (ignored) ++stats_.ignored;
        else if (failed) ++stats_.failures;
        else ++stats_.successes;
        if (slow) ++stats_.slow_calls;
    }

    bool slow_counted_apart() const {
        return options_.trip == circuit_trip::failure_ratio && options_.slow_call_ratio.has_value();
    }

    void apply(const ticket& t, const error* failure, bool ignored, bool failed, bool slow) {
        if (ignored) {
            if (t.probe) probe_out_ = false;  // the next call probes instead
            return;
        }
        const auto now = timing_.clock->now();
        const bool bad = failed || (slow && !slow_counted_apart());
        if (t.probe) {
            if (failed) open(now, "the probe failed", failure);
            else if (slow) open(now, "the probe was slower than " + duration_text(*options_.slow_call_threshold), nullptr);
            else close("the probe succeeded");
            return;
        }
        if (options_.trip == circuit_trip::consecutive_failures) {
            if (!bad) {
                consecutive_ = 0;
            } else if (++consecutive_ >= options_.failure_threshold) {
                open(now, std::to_string(consecutive_) + (options_.slow_call_threshold ? " consecutive failed or slow calls" : " consecutive failures"),
                     failed ? failure : nullptr);
            }
            return;
        }
        window_.record(now, bad, std::nullopt, slow);
        const auto sums = window_.sums(now);
        if (sums.calls < static_cast<std::uint64_t>(options_.minimum_calls)) return;
        const auto of_calls = [&](std::uint64_t n, std::string_view what, double threshold) {
            return std::to_string(n) + " of " + std::to_string(sums.calls) + " calls in the last " + duration_text(options_.window) + " " +
                   std::string(what) + " (threshold " + std::to_string(std::lround(threshold * 100)) + "%)";
        };
        if (sums.failure_ratio() >= options_.failure_ratio) {
            open(now, of_calls(sums.failures, options_.slow_call_threshold && !slow_counted_apart() ? "failed or were slow" : "failed", options_.failure_ratio),
                 failed ? failure : nullptr);
        } else if (slow_counted_apart() && sums.slow_ratio() >= *options_.slow_call_ratio) {
            open(now, of_calls(sums.slow, "were slower than " + duration_text(*options_.slow_call_threshold), *options_.slow_call_ratio),
                 nullptr);
        }
    }

    void end_break_if_over(clock::time_point now) {
        if (state_ != circuit_state::open || now < open_until_) return;
        probe_out_ = false;
        change(circuit_state::half_open, "the break is over", nullptr, clock::duration::zero());
    }

    void open(clock::time_point now, std::string reason, const error* cause) {
        const auto pause = options_.break_backoff ? options_.break_backoff->next(break_state_, *timing_.random) : options_.break_duration;
        open_until_ = now + pause;
        ++stats_.times_opened;
        reason_ = std::move(reason);
        if (cause) cause_ = *cause;
        else cause_.reset();
        change(circuit_state::open, reason_, cause, pause);
    }

    void close(std::string_view reason) {
        break_state_ = backoff_state{};
        cause_.reset();
        if (state_ != circuit_state::closed) {
            change(circuit_state::closed, reason, nullptr, clock::duration::zero());
            return;
        }
        // Already closed: forget the counts, and the calls in flight that would add to them.
        ++generation_;
        consecutive_ = 0;
        window_.clear();
    }

    /// Moves to `to`: a new period of the circuit, whose outcomes alone count.
    void change(circuit_state to, std::string_view reason, const error* cause, clock::duration pause) {
        const auto from = state_;
        state_ = to;
        ++generation_;
        probe_out_ = false;
        consecutive_ = 0;
        window_.clear();
        if (options_.on_state_change)
            pending_.push_back(pending_change{from, to, std::string(reason), cause ? std::optional<error>(*cause) : std::nullopt, pause});
    }

    error rejection(clock::time_point now) const {
        error_details d;
        const std::string who = options_.name.empty() ? std::string("circuit breaker") : "circuit breaker '" + options_.name + "'";
        if (state_ == circuit_state::open) {
            const auto left = open_until_ - now;
            d.retry_after = std::chrono::ceil<std::chrono::milliseconds>(left);
            d.message = who + " is open (" + reason_ + (cause_ ? std::string("; last: ") + cause_->what() : std::string()) +
                        "); it half-opens in " + duration_text(left);
        } else if (state_ == circuit_state::half_open) {
            d.retry_after = std::chrono::ceil<std::chrono::milliseconds>(options_.half_open_retry_after);
            d.message = who + " is half-open and its probe call is still running; try again in " +
                        duration_text(options_.half_open_retry_after);
        } else {
            d.message = who + " is isolated: calls are refused until reset()";
        }
        return error(error_kind::circuit_open, std::move(d));
    }

    // ---- end of the locked part ----

    /// Reports queued state changes, in order, without holding the lock while user code runs.
    /// One thread reports at a time; a thread that finds another reporting leaves its changes to it.
    void deliver_changes() {
        if (!options_.on_state_change) return;
        std::unique_lock<std::mutex> lock(mutex_);
        if (delivering_) return;
        delivering_ = true;
        while (!pending_.empty()) {
            pending_change c = std::move(pending_.front());
            pending_.pop_front();
            lock.unlock();
            try {
                options_.on_state_change(circuit_state_event{options_.name, c.from, c.to, c.reason, c.cause ? &*c.cause : nullptr,
                                                             c.break_duration});
            } catch (...) {
                lock.lock();
                delivering_ = false;
                throw;
            }
            lock.lock();
        }
        delivering_ = false;
    }

    const circuit_breaker_options options_;
    const sturdy::timing timing_;

    mutable std::mutex mutex_;
    circuit_state state_ = circuit_state::closed;
    std::uint64_t generation_ = 0;
    bool probe_out_ = false;
    int consecutive_ = 0;
    outcome_window window_;
    clock::time_point open_until_{};
    backoff_state break_state_;
    std::string reason_;          // why the circuit is open or isolated, for rejections
    std::optional<error> cause_;  // the failure that opened it
    circuit_stats stats_;
    std::deque<pending_change> pending_;
    bool delivering_ = false;
};

}  // namespace detail

/// A circuit breaker policy. Copies share one circuit, so keep a copy to watch or steer the one
/// inside a client; use one breaker per backend you want to protect separately. Thread-safe.
class circuit_breaker : public blocking_form<circuit_breaker> {
public:
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
        void record(const error* failure, operation op) {
            recorded_ = true;
            core_->record(ticket_, failure, op);
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
        operation op;
        Done done;
        void operator()(result<T> outcome) {
            through->record(outcome ? nullptr : &outcome.error(), op);
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
    next(ctx, count_outcome<T, Done>{std::make_shared<pass>(core_, *admitted), ctx.op, std::move(done)});
}

}  // namespace sturdy

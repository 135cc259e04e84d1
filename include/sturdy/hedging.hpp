#pragma once
/// @file
/// Hedging: when an attempt has not answered within a delay, a second one starts beside it, on the
/// same target or the next; the first answer wins and the others are cancelled. It trades a little
/// extra load for a shorter tail of latency (Dean and Barroso's "hedged requests", Polly's hedging).
///
///     sturdy::hedging_options opts;
///     opts.delay = 150ms;                       // no answer after 150 ms: ask again
///     sturdy::basic_client<sturdy::curl_transport, sturdy::hedging_policy> client(options, sturdy::hedging_policy(opts));
///
/// Place it outside a retry to hedge whole retry sequences, inside a deadline so every attempt
/// shares one: `compose(deadline_policy(30s), hedging_policy(opts), retry_policy())`.

#include <sturdy/cancellation.hpp>
#include <sturdy/clock.hpp>
#include <sturdy/error.hpp>
#include <sturdy/events.hpp>
#include <sturdy/executor.hpp>
#include <sturdy/policy.hpp>
#include <sturdy/policy_options.hpp>
#include <sturdy/result.hpp>
#include <sturdy/retry.hpp>
#include <sturdy/detail/option_check.hpp>
#include <sturdy/detail/outcome_window.hpp>
#include <sturdy/detail/routing.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace sturdy {

/// Reported when a hedged attempt starts, on the thread that starts it. Its `route` is where the
/// hedge goes; the event_source's route is the route of the call the policy works for.
struct hedge_event {
    operation op;
    std::string_view model;        ///< the model the hedged attempt asks for
    int hedge;                     ///< 1 for the first hedged attempt
    clock::duration waited;        ///< since the attempt before it started
    const sturdy::route* route;    ///< where it goes; null: the client's endpoint and the request's model
    const error* cause;            ///< the failure that started it at once; null when the delay passed
};

/// Settings of a hedging policy. The defaults are Polly's: one hedge after 2 s, and a failure
/// the policy handles starts the next hedge at once.
///
/// `should_handle` (policy_options) chooses the failures that leave the race open: the other
/// attempts may still answer, and with `hedge_on_failure` the next hedge starts at once. Any other
/// failure ends the call as a success would (Polly's rule): asking again would fail again. Empty:
/// is_transient. `name` (empty: "hedging") names the policy in its events.
struct hedging_options : policy_options {
    /// The wait for an answer (for a stream, its first content) before the next hedged attempt,
    /// counted from the start of the attempt before it. `zero()` starts every attempt at once;
    /// `clock::duration::max()` hedges only on failures (a fallback that keeps the first attempt).
    clock::duration delay = std::chrono::seconds(2);
    /// When set (0..1, e.g. 0.95), the delay is this percentile of the latency of recent successful
    /// attempts; `delay` serves until the window holds `min_samples` (at least 1) of them.
    std::optional<double> percentile;
    std::uint64_t min_samples = 20;
    /// How far back latencies count for the percentile; positive.
    clock::duration window = std::chrono::minutes(1);
    /// Bounds on a percentile delay; 0 <= min_delay <= max_delay.
    clock::duration min_delay = clock::duration::zero();
    clock::duration max_delay = clock::duration::max();
    /// Hedged attempts beside the first.
    int max_hedges = 1;
    /// Where hedge i goes: `routes[(i - 1) % routes.size()]`; empty: where the first attempt goes.
    /// A route without a name is called "route N", by its place here.
    std::vector<sturdy::route> routes;
    /// A failure `should_handle` accepts starts the next hedge at once instead of after the delay.
    bool hedge_on_failure = true;
    /// Called when a hedged attempt starts, before it is sent, then the call's
    /// event_sink::on_hedge. Both run on the thread that starts the hedge: the call's scheduling
    /// branch, or the attempt whose failure started it (so from several threads at once, within a
    /// call and across calls). One that throws ends the race, as an attempt that throws does.
    std::function<void(const hedge_event&)> on_hedge;
};

namespace detail {

/// What copies of a hedging policy share: settings, and recent latencies for a percentile delay.
class hedging_core {
public:
    hedging_core(hedging_options o, sturdy::timing t)
        : options(std::move(o)), timing(std::move(t)), routes(shared_routes(options.routes)), window_(options.window) {}

    clock::duration delay() const {
        if (!options.percentile) return options.delay;
        const auto now = timing.clock->now();
        std::lock_guard<std::mutex> lock(mutex_);
        if (window_.timed(now) < options.min_samples) return options.delay;
        const clock::duration p = *window_.percentile(now, *options.percentile);
        return std::clamp(p, options.min_delay, options.max_delay);
    }

    void record(clock::time_point now, const std::vector<std::chrono::microseconds>& latencies) {
        if (!options.percentile || latencies.empty()) return;
        std::lock_guard<std::mutex> lock(mutex_);
        for (auto l : latencies) window_.record(now, false, l);
    }

    const hedging_options options;
    const sturdy::timing timing;
    /// Made once, so an attempt's context points at them without a copy per call.
    const std::vector<std::shared_ptr<const route>> routes;

private:
    static std::vector<std::shared_ptr<const route>> shared_routes(const std::vector<route>& given) {
        std::vector<std::shared_ptr<const route>> out;
        for (std::size_t i = 0; i < given.size(); ++i) out.push_back(share_route(given[i], i));
        return out;
    }

    mutable std::mutex mutex_;
    outcome_window window_;
};

/// One call's attempts racing, in continuation form. Each attempt runs on its own copy of the
/// call's context (with its own cancellation, linked to the caller's) held here. The first runs
/// where the call started; a scheduling branch waits for each hedge's turn through the executor
/// and starts it, on a branch of its own unless it is the last; a failure the policy handles starts
/// the next hedge at once from the attempt that failed. Every continuation of the race holds it, so
/// it lives until the last of them has run.
template <class T, class Next, class Done>
class hedge_race : public std::enable_shared_from_this<hedge_race<T, Next, Done>> {
public:
    hedge_race(std::shared_ptr<hedging_core> core, call_context& caller, Next next, Done done)
        : core_(std::move(core)), clock_(*core_->timing.clock), caller_(caller), base_(caller), next_(std::move(next)),
          done_(std::move(done)), delay_(core_->delay()) {}

    hedge_race(const hedge_race&) = delete;
    hedge_race& operator=(const hedge_race&) = delete;

    /// Starts the race: the scheduling branch, then the first attempt on this thread. An exception
    /// thrown while the first attempt was running is rethrown here, and `done` is never called.
    void run() {
        arm* first = nullptr;
        bool timed_turns = false;
        {
            auto prepared = std::make_unique<arm>(base_);
            std::lock_guard<std::mutex> lock(mutex_);
            first = &claim(std::move(prepared), clock_.now());
            timed_turns = timed();
        }
        // A stream that commits stops the other attempts at once: they could never deliver.
        std::weak_ptr<hedge_race> weak = this->shared_from_this();
        base_.state->set_commit_listener([weak] {
            if (auto self = weak.lock()) self->stop_all_but_committer();
        });
        // A branch waits for the hedges' turns; when none can be started, only failures start hedges.
        if (timed_turns) base_.exec->spawn([self = this->shared_from_this()] { self->schedule(no_due_turn); });
        try {
            run_arm(*first);
        } catch (...) {
            take_exception_on_first_thread();
            throw;
        }
        if (auto thrown = take_exception_on_first_thread()) std::rethrow_exception(thrown);
    }

private:
    struct arm {
        explicit arm(const call_context& base) : cancel(base.cancel), ctx(base) { ctx.cancel = cancel.token(); }
        cancellation_source cancel;  // linked to the caller's, so either can stop this attempt
        call_context ctx;
        // Set when the race claims it, before any other thread sees it.
        int hedge = 0;        // 0 for the first attempt
        bool routed = false;  // sent to one of the policy's routes
        clock::time_point started{};
        clock::duration waited{};  // since the attempt before it started
        // Under the race's lock:
        bool finished = false;   // its outcome (or exception) reached the race
        std::thread::id runner;  // the thread inside this attempt's `next`, while it is there
        std::optional<result<T>> outcome;
    };

    /// The continuation of one attempt.
    struct settle_arm {
        std::shared_ptr<hedge_race> race;
        arm* which;
        void operator()(result<T> outcome) const { race->settle(*which, std::move(outcome)); }
    };

    /// What the scheduling branch does next: start `hedge`, wait `wait`, or nothing more.
    struct turn {
        arm* hedge = nullptr;
        bool last = false;  // no turn follows this hedge
        std::optional<clock::duration> wait;
        cancellation_token wake;
        int due_for = no_due_turn;  // the wait's end is hedge number `due_for + 1`'s turn
    };
    static constexpr int no_due_turn = -1;

    // ---- decisions (under the lock) ----

    int hedges() const { return static_cast<int>(arms_.size()) - 1; }

    // Whether a delay runs before the next hedge at all: clock::duration::max() hedges only on failures.
    bool timed() const { return delay_ < clock::time_point::max() - last_started_; }

    // Whether a hedge may start now. Not once the race is decided, the caller cancelled, a stream
    // delivered content, the deadline passed, or max_hedges have started.
    bool may_hedge() const {
        return !over_ && hedges() < core_->options.max_hedges && !base_.cancel.cancelled() &&
               !base_.state->committed() && !base_.deadline.expired();
    }

    // The next attempt of the race, numbered and routed: hedge i goes to routes[(i - 1) % size].
    arm& claim(std::unique_ptr<arm> a, clock::time_point now) {
        const int n = static_cast<int>(arms_.size());
        const auto& routes = core_->routes;
        if (n > 0 && !routes.empty()) {
            a->ctx.route = routes[static_cast<std::size_t>(n - 1) % routes.size()];
            a->routed = true;
        }
        a->hedge = n;
        a->started = now;
        a->waited = n > 0 ? now - last_started_ : clock::duration::zero();
        last_started_ = now;
        arms_.push_back(std::move(a));
        ++running_;
        return *arms_.back();
    }

    turn next_turn(int due_for, std::unique_ptr<arm>& prepared, std::shared_ptr<cancellation_source>& wake) {
        turn t;
        if (!may_hedge() || running_ == 0 || !timed()) return t;
        const auto now = clock_.now();
        if (due_for != hedges() && now < last_started_ + delay_) {
            t.wait = last_started_ + delay_ - now;
            t.due_for = hedges();
            if (base_.deadline.is_set() && base_.deadline.remaining() < *t.wait) {
                t.wait = base_.deadline.remaining();  // then the deadline, not the turn, ends the wait
                t.due_for = no_due_turn;
            }
            // The spent one is destroyed outside the lock: unlinking it takes the caller's token's lock.
            std::swap(wake_, wake);
            t.wake = wake_->token();
            return t;
        }
        t.hedge = &claim(std::move(prepared), now);
        t.last = hedges() == core_->options.max_hedges;
        return t;
    }

    // What an attempt saw of its reply, from its outcome: null until it settled, or when no
    // attempt of a client made the outcome.
    static const reply_observation* seen(const arm& a) { return a.outcome ? a.outcome->observation() : nullptr; }

    bool delivered(const arm& a) const {
        const reply_observation* s = seen(a);
        return a.ctx.state->committed() && s && s->delivered;
    }

    // Whether this outcome ends the call.
    bool is_answer(const arm& a, bool handled) const {
        if (*a.outcome) return true;
        // Cancelled by the race (a winner, or a stream that lost the commit gate) is no answer.
        if (a.outcome->error().kind() == error_kind::cancelled) return base_.cancel.cancelled();
        // Once a stream delivered content, only the attempt that delivered it can end the call.
        if (base_.state->committed()) return delivered(a);
        return !handled;
    }

    // The most informative failure when every attempt failed: the first attempt's (what the call
    // would have returned without hedging), unless it was cancelled by the race; then the earliest
    // hedge's real failure.
    arm* best_failure() const {
        for (const auto& a : arms_)
            if (a->outcome && !*a->outcome && a->outcome->error().kind() != error_kind::cancelled) return a.get();
        return arms_.front().get();
    }

    void decide(arm* a) {
        over_ = true;
        decider_ = a;
    }

    std::vector<arm*> still_running() const {
        std::vector<arm*> out;
        for (const auto& a : arms_)
            if (!a->finished) out.push_back(a.get());
        return out;
    }

    // The outcome is handed on once, when the race is decided and every attempt has returned: the
    // commit listener and the attempts' contexts are done with before the caller goes on.
    bool take_conclusion() {
        if (!over_ || running_ > 0 || concluded_) return false;
        concluded_ = true;
        return true;
    }

    // ---- continuations ----

    // The scheduling branch: starts each hedge whose turn has come, and waits for the next turn
    // through the executor. `due_for` is the hedge count when the wait that just elapsed began.
    void schedule(int due_for) {
        for (;;) {
            {
                std::lock_guard<std::mutex> lock(mutex_);
                if (over_) return;  // a wait ended by the race's end: nothing of the call is touched again
            }
            // Made outside the lock: a linked cancellation registers with the caller's token.
            auto prepared = std::make_unique<arm>(base_);
            auto wake = std::make_shared<cancellation_source>(base_.cancel);
            turn t;
            {
                std::lock_guard<std::mutex> lock(mutex_);
                t = next_turn(due_for, prepared, wake);
            }
            due_for = no_due_turn;
            if (t.wait) {
                base_.exec->after(clock_, *t.wait, t.wake,
                                  [self = this->shared_from_this(), due = t.due_for](bool elapsed) {
                                      self->schedule(elapsed ? due : no_due_turn);
                                  });
                return;
            }
            if (!t.hedge || !start_hedge(*t.hedge, nullptr, t.last)) return;
        }
    }

    // Reports a hedge, then runs it: on a branch of its own, or on this thread when `here` (or when
    // no branch can be started). True when it went to a branch.
    bool start_hedge(arm& h, const error* cause, bool here) {
        base_.state->note_hedge();
        const auto& o = core_->options;
        try {
            detail::emit(o.on_hedge, base_.events, detail::source(base_, o.name),
                         hedge_event{h.ctx.op, h.ctx.effective_model(), h.hedge, h.waited, h.ctx.route.get(), cause});
        } catch (...) {
            fail(nullptr, std::current_exception());  // the race is over: the hedge below is not sent
        }
        if (!here && base_.exec->spawn([self = this->shared_from_this(), &h] { self->run_arm(h); })) return true;
        run_arm(h);
        return false;
    }

    void run_arm(arm& a) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            a.runner = std::this_thread::get_id();
        }
        if (a.cancel.cancelled()) {
            // A hedge the race no longer needs is not sent at all.
            settle(a, error(error_kind::cancelled, "the call was answered before this hedged attempt started"));
        } else {
            try {
                next_(a.ctx, settle_arm{this->shared_from_this(), &a});
            } catch (...) {
                // The attempt's exception ends the race. One thrown after its outcome settled is
                // not the attempt's but from where the outcome went on (the caller's continuation):
                // it goes on up.
                if (!fail(&a, std::current_exception())) throw;
            }
        }
        std::lock_guard<std::mutex> lock(mutex_);
        a.runner = std::thread::id();
    }

    void settle(arm& a, result<T> out) {
        const auto& o = core_->options;
        bool handled = false;
        if (!out && out.error().kind() != error_kind::cancelled) {
            try {
                handled = matches(o.should_handle, is_transient, out.error());  // the user's code: outside the lock
            } catch (...) {
                fail(&a, std::current_exception());
                return;
            }
        }
        const bool starts_hedge = handled && o.hedge_on_failure;
        auto prepared = starts_hedge ? std::make_unique<arm>(base_) : nullptr;
        const auto now = clock_.now();
        arm* hedge = nullptr;
        std::optional<error> cause;
        std::vector<arm*> losers;
        std::shared_ptr<cancellation_source> wake;
        bool won = false;
        bool conclude = false;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (a.finished) return;  // a second outcome for one attempt breaks the contract: ignored
            a.finished = true;
            --running_;
            a.outcome.emplace(std::move(out));
            if (!over_) {
                if (is_answer(a, handled)) {
                    decide(&a);
                    won = static_cast<bool>(*a.outcome);
                    losers = still_running();
                } else if (starts_hedge && may_hedge()) {
                    cause = a.outcome->error();
                    hedge = &claim(std::move(prepared), now);
                }
                if (!over_ && running_ == 0) decide(best_failure());  // nothing left that could answer
            }
            // The scheduling branch reconsiders: the next turn counts from this hedge, or none is left.
            if (over_ || hedge) wake = wake_;
            conclude = take_conclusion();
        }
        if (won) record_latencies(a, losers, now);
        stop(losers, wake);
        if (hedge) start_hedge(*hedge, &*cause, false);
        if (conclude) finish();
    }

    // An attempt (`a`), a hook or a predicate threw: it ends the race as an answer would. False
    // when `a` had already settled (the exception is not the attempt's).
    bool fail(arm* a, std::exception_ptr thrown) {
        std::vector<arm*> losers;
        std::shared_ptr<cancellation_source> wake;
        bool conclude = false;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (a && a->finished) return false;
            const bool first_running = !arms_.front()->finished;
            if (a) {
                a->finished = true;
                --running_;
            }
            if (!over_) {
                // Rethrown on the first attempt's thread if that is still in the call; decided now,
                // so the exception's form does not depend on which thread gets there first.
                first_rethrows_ = first_running;
                thrown_ = thrown;
                decide(nullptr);
                losers = still_running();
            }
            wake = wake_;
            conclude = take_conclusion();
        }
        stop(losers, wake);
        if (conclude) finish();
        return true;
    }

    // The commit listener: runs on the thread of the attempt that just committed. That attempt is
    // the one whose `next` this thread is in; when no single attempt is (the attempt's work runs
    // elsewhere than its `next`, as on an event loop), the others are left to lose the commit gate.
    void stop_all_but_committer() {
        std::vector<arm*> others;
        std::shared_ptr<cancellation_source> wake;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            const auto here = std::this_thread::get_id();
            std::vector<arm*> running = still_running();
            const auto committing =
                std::count_if(running.begin(), running.end(), [&](const arm* a) { return a->runner == here; });
            if (committing == 1)
                for (arm* a : running)
                    if (a->runner != here) others.push_back(a);
            wake = wake_;  // no hedge starts once a stream committed
        }
        stop(others, wake);
    }

    // Cancels outside the lock: a cancellation runs its callbacks at once.
    static void stop(const std::vector<arm*>& losers, const std::shared_ptr<cancellation_source>& wake) {
        for (arm* l : losers) l->cancel.cancel();
        if (wake) wake->cancel();
    }

    // The winner's latency, and a lower bound for each attempt it beat: without those the window
    // would lose exactly the slow tail that hedging cuts, and a percentile delay would shrink call
    // after call until most calls were hedged.
    void record_latencies(const arm& winner, const std::vector<arm*>& losers, clock::time_point now) {
        using std::chrono::microseconds;
        std::vector<microseconds> samples;
        const reply_observation* s = seen(winner);
        const bool first_content = winner.ctx.op == operation::chat_stream && s && s->delivered;
        samples.push_back(first_content ? s->latency : std::chrono::duration_cast<microseconds>(now - winner.started));
        for (const arm* l : losers) samples.push_back(std::chrono::duration_cast<microseconds>(now - l->started));
        core_->record(now, samples);
    }

    // The first attempt's thread, once its `next` has returned: takes an exception it can rethrow.
    std::exception_ptr take_exception_on_first_thread() {
        std::lock_guard<std::mutex> lock(mutex_);
        first_returned_ = true;
        if (!thrown_ || !first_rethrows_ || exception_taken_) return nullptr;
        exception_taken_ = true;
        return thrown_;
    }

    // Every attempt has returned and the race is decided: the outcome goes to the caller.
    void finish() {
        base_.state->set_commit_listener(nullptr);
        if (thrown_) {
            {
                std::lock_guard<std::mutex> lock(mutex_);
                // The first attempt's thread is still inside its `next`: it rethrows the exception.
                if (exception_taken_ || (first_rethrows_ && !first_returned_)) return;
                exception_taken_ = true;
            }
            // The first attempt had returned: no thread of the caller's is left to rethrow on, and
            // the exception becomes the outcome.
            return done_(result<T>(thrown_error(thrown_)));
        }
        arm* d = decider_;
        // A stream may have delivered content just after another attempt's failure ended the race:
        // then the outcome is the delivering attempt's, the one that matches what the caller saw.
        if (base_.state->committed() && !delivered(*d))
            for (const auto& a : arms_)
                if (a->outcome && delivered(*a)) d = a.get();
        if (d->routed && *d->outcome) caller_.state->note_route(d->ctx.route->name, false);
        done_(std::move(*d->outcome));
    }

    static error thrown_error(const std::exception_ptr& thrown) {
        try {
            std::rethrow_exception(thrown);
        } catch (const std::exception& e) {
            return error(error_kind::invalid_response, std::string("an attempt of the hedged call threw: ") + e.what());
        } catch (...) {
            return error(error_kind::invalid_response,
                         "an attempt of the hedged call threw an exception of unknown type");
        }
    }

    const std::shared_ptr<hedging_core> core_;
    const sturdy::clock& clock_;
    call_context& caller_;     // touched only by `finish`, before `done`
    const call_context base_;  // taken before the first attempt starts: attempts copy this, not the live one
    const Next next_;
    Done done_;
    const clock::duration delay_;

    std::mutex mutex_;
    std::vector<std::unique_ptr<arm>> arms_;
    clock::time_point last_started_{};
    int running_ = 0;    // attempts claimed whose outcome has not come back
    bool over_ = false;  // decided: no hedge starts; the decider's outcome (or thrown_) is the call's
    bool concluded_ = false;
    bool first_returned_ = false;  // the first attempt's `next` has returned to `run`
    bool first_rethrows_ = false;  // thrown_ came while the first attempt was running
    bool exception_taken_ = false;
    arm* decider_ = nullptr;
    std::exception_ptr thrown_;
    std::shared_ptr<cancellation_source> wake_;  // ends the scheduling branch's current wait
};

}  // namespace detail

/// Starts a hedged attempt when the first has not answered within a delay (a stream: has not
/// delivered its first content), up to `max_hedges` of them; the first answer wins, the others are
/// cancelled and waited for, and the winner's outcome is returned. When every attempt fails, the
/// first attempt's error is returned (or the earliest real failure, if the race cancelled it).
///
/// The first attempt runs where the call started; a branch of the call's executor waits for each
/// hedge's turn (`ctx.exec->after`) and starts it, on a branch of its own (`ctx.exec->spawn`) unless
/// it is the last, which the waiting branch runs itself. Every attempt has its own copy of the
/// context, whose cancellation is linked to the caller's. All of them share the call's deadline and
/// state: no hedge starts past the deadline, and a stream's attempts race for its one commit gate,
/// so the caller's callback sees each chunk once, from the attempt that delivered first, but
/// possibly on a hedging branch. Once a stream has delivered content, no hedge starts and the other
/// attempts are stopped. When the executor can start no branch, the call goes on without it: no
/// timed hedge, or a hedge run by the branch that started it. An attempt that throws ends the race
/// as an answer would. When the first attempt was still running then, inside its `next` (always so
/// on the blocking executor, whose `next` returns with the attempt), the exception is rethrown there,
/// on the caller's thread; otherwise it becomes the call's `invalid_response` error, an outcome
/// being all that can reach the caller then.
///
///     sturdy::hedging_options opts;
///     opts.percentile = 0.95;                        // hedge the slowest 5%...
///     opts.delay = 1s;                               // ...with 1 s until 20 latencies are known
///     opts.routes = {{"backup", backup_endpoint, "gpt-4o-mini"}};
///     sturdy::hedging_policy hedging(opts);
///
/// Each hedge is reported to `on_hedge`, then to the call's event sink, on the thread that starts
/// it (often a branch of the executor's, not the caller's), so a sink given to hedged calls must be
/// safe to call from several threads at once.
///
/// Copies share their settings and latency window.
class hedging_policy : public blocking_form<hedging_policy> {
public:
    explicit hedging_policy(hedging_options options = {}, sturdy::timing timing = {})
        : core_(std::make_shared<detail::hedging_core>(checked(std::move(options)), std::move(timing))) {}
    /// One hedge after a fixed `delay`.
    explicit hedging_policy(clock::duration delay) : hedging_policy(with_delay(delay)) {}

    const hedging_options& options() const noexcept { return core_->options; }

    /// The wait before the first hedge of a call starting now.
    clock::duration current_delay() const { return core_->delay(); }

    template <class T, class Next, class Done>
    void start(call_context& ctx, Next next, Done done) const {
        if (core_->options.max_hedges <= 0) return next(ctx, std::move(done));
        std::make_shared<detail::hedge_race<T, Next, Done>>(core_, ctx, std::move(next), std::move(done))->run();
    }

private:
    static hedging_options with_delay(clock::duration delay) {
        hedging_options o;
        o.delay = delay;
        return o;
    }
    static hedging_options checked(hedging_options o) {
        constexpr std::string_view policy = "hedging_policy";
        detail::require_option(o.delay >= clock::duration::zero(), policy, "delay", "must not be negative");
        detail::require_option(!o.percentile || (*o.percentile >= 0 && *o.percentile <= 1), policy, "percentile",
                               "must be in [0, 1]");
        detail::require_option(o.min_samples >= 1, policy, "min_samples", "must be at least 1");
        detail::require_option(o.window > clock::duration::zero(), policy, "window", "must be positive");
        detail::require_option(o.min_delay >= clock::duration::zero(), policy, "min_delay", "must not be negative");
        detail::require_option(o.max_delay >= o.min_delay, policy, "max_delay", "must not be below min_delay");
        detail::require_option(o.max_hedges >= 0, policy, "max_hedges", "must not be negative");
        return detail::named(std::move(o), "hedging");
    }

    std::shared_ptr<detail::hedging_core> core_;
};

}  // namespace sturdy

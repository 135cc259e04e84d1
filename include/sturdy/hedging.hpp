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
#include <sturdy/policy.hpp>
#include <sturdy/retry.hpp>
#include <sturdy/detail/option_check.hpp>
#include <sturdy/detail/outcome_window.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace sturdy {

/// Reported when a hedged attempt starts, on the thread that starts it.
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
struct hedging_options {
    /// The wait for an answer (for a stream, its first content) before the next hedged attempt,
    /// counted from the start of the attempt before it. `zero()` starts every attempt at once;
    /// `clock::duration::max()` hedges only on failures (a fallback that keeps the first attempt).
    clock::duration delay = std::chrono::seconds(2);
    /// When set (0..1, e.g. 0.95), the delay is this percentile of the latency of recent successful
    /// attempts; `delay` serves until the window holds `min_samples` of them.
    std::optional<double> percentile;
    std::uint64_t min_samples = 20;
    /// How far back latencies count for the percentile.
    clock::duration window = std::chrono::minutes(1);
    /// Bounds on a percentile delay.
    clock::duration min_delay = clock::duration::zero();
    clock::duration max_delay = clock::duration::max();
    /// Hedged attempts beside the first.
    int max_hedges = 1;
    /// Where hedge i goes: `routes[(i - 1) % routes.size()]`; empty: where the first attempt goes.
    std::vector<sturdy::route> routes;
    /// A failure `hedge_on` accepts starts the next hedge at once instead of after the delay.
    bool hedge_on_failure = true;
    /// Failures that leave the race open (the other attempts may still answer). Any other failure
    /// ends the call as a success would (Polly's rule): asking again would fail again. Empty: the
    /// default, is_transient.
    std::function<bool(const error&)> hedge_on = is_transient;
    /// Called when a hedged attempt starts, on the hedging thread of its call (so from several
    /// threads at once when calls run in parallel), before the attempt is sent.
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
        if (window_.timed(now) < std::max<std::uint64_t>(options.min_samples, 1)) return options.delay;
        const clock::duration p = *window_.percentile(now, *options.percentile);
        return std::clamp(p, options.min_delay, std::max(options.min_delay, options.max_delay));
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
        for (const auto& r : given) out.push_back(std::make_shared<const route>(r));
        return out;
    }

    mutable std::mutex mutex_;
    outcome_window window_;
};

/// One call's attempts racing: the first on the caller's thread, the hedges on others, each on its
/// own copy of the context with its own cancellation. Everything here lives on the caller's stack
/// and every thread is joined before `run` returns.
template <class Outcome, class Attempt>
class hedge_race {
public:
    hedge_race(hedging_core& core, call_context& caller, Attempt& attempt)
        : core_(core), clock_(*core.timing.clock), caller_(caller), base_(caller), attempt_(attempt), delay_(core.delay()) {}

    hedge_race(const hedge_race&) = delete;
    hedge_race& operator=(const hedge_race&) = delete;

    Outcome run() {
        arm* first = nullptr;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            first = &add_arm(0, nullptr);
        }
        // A stream that commits stops the other attempts at once: they could never deliver.
        base_.state->set_commit_listener([this] { stop_all_but_this_thread(); });
        try {
            scheduler_ = std::thread([this, first] { schedule(first->started); });
        } catch (const std::system_error&) {
            scheduler_done_ = true;  // no thread to spare: the call runs unhedged
        }
        run_arm(*first);
        return conclude();
    }

private:
    struct arm {
        arm(const call_context& base, int number, std::shared_ptr<const route> where, clock::time_point start)
            : cancel(base.cancel), ctx(base), hedge(number), routed(static_cast<bool>(where)), started(start) {
            ctx.cancel = cancel.token();
            if (where) ctx.route = std::move(where);
            ctx.last_reply = reply_observation{};
        }
        cancellation_source cancel;  // linked to the caller's, so either can stop this attempt
        call_context ctx;
        const int hedge;             // 0 for the first attempt
        const bool routed;           // sent to one of the policy's routes
        const clock::time_point started;
        bool done = false;
        std::thread::id runner;      // the thread running this attempt
        std::optional<Outcome> outcome;
        std::thread thread;
    };

    arm& add_arm(int number, std::shared_ptr<const route> where) {
        arms_.push_back(std::make_unique<arm>(base_, number, std::move(where), clock_.now()));
        ++running_;
        return *arms_.back();
    }

    void run_arm(arm& a) {
        std::optional<Outcome> out;
        std::exception_ptr thrown;
        bool handled = false;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            a.runner = std::this_thread::get_id();
        }
        try {
            // A hedge the race no longer needs is not sent at all.
            if (a.cancel.cancelled()) out.emplace(error(error_kind::cancelled, "the call was answered before this hedged attempt started"));
            else out.emplace(attempt_(a.ctx));
            // Outside the lock: `hedge_on` is the user's code.
            const auto& o = core_.options;
            if (!*out && out->error().kind() != error_kind::cancelled)
                handled = matches(o.hedge_on, is_transient, out->error());
        } catch (...) {
            thrown = std::current_exception();
        }
        finish(a, std::move(out), thrown, handled);
    }

    bool delivered(const arm& a) const { return a.ctx.state->committed() && a.ctx.last_reply.delivered; }

    // The commit listener: runs on the thread of the attempt that just committed.
    void stop_all_but_this_thread() {
        std::vector<arm*> others;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            for (const auto& a : arms_)
                if (!a->done && a->runner != std::this_thread::get_id()) others.push_back(a.get());
        }
        for (arm* a : others) a->cancel.cancel();
    }

    // Under the lock: whether this outcome ends the call.
    bool is_answer(const arm& a, bool handled) const {
        if (*a.outcome) return true;
        // Cancelled by the race (a winner, or a stream that lost the commit gate) is no answer.
        if (a.outcome->error().kind() == error_kind::cancelled) return base_.cancel.cancelled();
        // Once a stream delivered content, only the attempt that delivered it can end the call.
        if (base_.state->committed()) return delivered(a);
        return !handled;
    }

    void finish(arm& a, std::optional<Outcome> out, std::exception_ptr thrown, bool handled) {
        const auto now = clock_.now();
        std::vector<arm*> losers;
        std::shared_ptr<cancellation_source> wake;
        bool won = false;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            a.done = true;
            --running_;
            a.outcome = std::move(out);
            if (!over_) {
                if (thrown || is_answer(a, handled)) {
                    thrown_ = thrown;
                    decide(&a);
                    won = !thrown && *a.outcome;
                    losers = still_running();
                } else if (handled && core_.options.hedge_on_failure) {
                    triggers_.push_back(a.outcome->error());
                }
            }
            // The scheduler reconsiders: a hedge to start now, or none left to start.
            if (over_ || !triggers_.empty() || running_ == 0) wake = wake_;
            cv_.notify_all();
        }
        if (won) record_latencies(a, losers, now);
        for (arm* l : losers) l->cancel.cancel();
        if (wake) wake->cancel();
    }

    // The winner's latency, and a lower bound for each attempt it beat: without those the window
    // would lose exactly the slow tail that hedging cuts, and a percentile delay would shrink call
    // after call until most calls were hedged.
    void record_latencies(const arm& winner, const std::vector<arm*>& losers, clock::time_point now) {
        using std::chrono::microseconds;
        std::vector<microseconds> samples;
        const bool first_content = winner.ctx.op == operation::chat_stream && winner.ctx.last_reply.delivered;
        samples.push_back(first_content ? winner.ctx.last_reply.latency : std::chrono::duration_cast<microseconds>(now - winner.started));
        for (const arm* l : losers) samples.push_back(std::chrono::duration_cast<microseconds>(now - l->started));
        core_.record(now, samples);
    }

    void decide(arm* a) {
        over_ = true;
        decider_ = a;
    }

    std::vector<arm*> still_running() const {
        std::vector<arm*> out;
        for (const auto& a : arms_)
            if (!a->done && a.get() != decider_) out.push_back(a.get());
        return out;
    }

    // The most informative failure when every attempt failed: the first attempt's (what the call
    // would have returned without hedging), unless it was cancelled by the race; then the earliest
    // hedge's real failure.
    arm* best_failure() const {
        for (const auto& a : arms_)
            if (a->outcome && !*a->outcome && a->outcome->error().kind() != error_kind::cancelled) return a.get();
        return arms_.front().get();
    }

    void schedule(clock::time_point first_started) {
        try {
            launch_hedges(first_started);
        } catch (...) {
            std::vector<arm*> losers;
            {
                std::lock_guard<std::mutex> lock(mutex_);
                if (!over_) {
                    thrown_ = std::current_exception();
                    decide(nullptr);
                    losers = still_running();
                }
            }
            for (arm* l : losers) l->cancel.cancel();
        }
        std::lock_guard<std::mutex> lock(mutex_);
        scheduler_done_ = true;
        cv_.notify_all();
    }

    void launch_hedges(clock::time_point last_started) {
        const auto& o = core_.options;
        for (int n = 1; n <= o.max_hedges; ++n) {
            std::optional<error> cause;
            arm* a = next_turn(n, last_started, cause);
            if (!a) return;
            base_.state->note_hedge();
            if (o.on_hedge)
                o.on_hedge(hedge_event{a->ctx.op, a->ctx.effective_model(), n, a->started - last_started, a->ctx.route.get(),
                                       cause ? &*cause : nullptr});
            last_started = a->started;
            // The last hedge runs on this thread, so the default (one hedge) costs one thread.
            if (n == o.max_hedges) return run_arm(*a);
            try {
                a->thread = std::thread([this, a] { run_arm(*a); });
            } catch (const std::system_error&) {
                return run_arm(*a);
            }
        }
    }

    // Waits until hedge `n` is due (its delay passed, or a failure asks for it), then adds it.
    // Null when no hedge will start: the race is decided, the caller cancelled, a stream already
    // delivered content, the deadline passed, or nothing is left running to hedge.
    arm* next_turn(int n, clock::time_point last_started, std::optional<error>& cause) {
        const bool timed = delay_ < clock::time_point::max() - last_started;
        std::unique_lock<std::mutex> lock(mutex_);
        for (;;) {
            if (over_ || base_.cancel.cancelled() || base_.state->committed() || base_.deadline.expired()) return nullptr;
            if (!triggers_.empty()) {
                cause = std::move(triggers_.front());
                triggers_.pop_front();
                break;
            }
            if (running_ == 0) return nullptr;
            const auto now = clock_.now();
            if (timed && now >= last_started + delay_) break;
            if (!timed) {
                cv_.wait(lock);
                continue;
            }
            auto wait = last_started + delay_ - now;
            if (base_.deadline.is_set()) wait = std::min(wait, base_.deadline.remaining());
            auto wake = std::make_shared<cancellation_source>(base_.cancel);
            wake_ = wake;
            lock.unlock();
            clock_.sleep_for(wait, wake->token());
            lock.lock();
            wake_.reset();
        }
        const auto& routes = core_.routes;
        auto where = routes.empty() ? nullptr : routes[static_cast<std::size_t>(n - 1) % routes.size()];
        return &add_arm(n, std::move(where));
    }

    Outcome conclude() {
        std::vector<arm*> losers;
        std::shared_ptr<cancellation_source> wake;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            cv_.wait(lock, [&] { return over_ || (running_ == 0 && scheduler_done_); });
            if (!over_) decide(best_failure());
            losers = still_running();
            wake = wake_;
            cv_.notify_all();
        }
        for (arm* l : losers) l->cancel.cancel();
        if (wake) wake->cancel();
        // The attempts refer to the caller's stack: all of them return before the call does.
        if (scheduler_.joinable()) scheduler_.join();
        for (auto& a : arms_)
            if (a->thread.joinable()) a->thread.join();
        base_.state->set_commit_listener(nullptr);
        if (thrown_) std::rethrow_exception(thrown_);

        // A stream may have delivered content just after another attempt's failure ended the race:
        // then the outcome is the delivering attempt's, the one that matches what the caller saw.
        if (base_.state->committed() && !delivered(*decider_))
            for (auto& a : arms_)
                if (delivered(*a)) decider_ = a.get();
        arm& d = *decider_;
        caller_.last_reply = std::move(d.ctx.last_reply);
        if (d.routed && *d.outcome) caller_.state->note_route(d.ctx.route->name, false);
        return std::move(*d.outcome);
    }

    hedging_core& core_;
    const sturdy::clock& clock_;
    call_context& caller_;
    const call_context base_;  // taken before the first attempt starts: hedges copy this, not the live one
    Attempt& attempt_;
    const clock::duration delay_;

    std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<std::unique_ptr<arm>> arms_;
    int running_ = 0;
    bool over_ = false;
    bool scheduler_done_ = false;
    arm* decider_ = nullptr;
    std::exception_ptr thrown_;
    std::deque<error> triggers_;                  // handled failures asking for the next hedge now
    std::shared_ptr<cancellation_source> wake_;   // ends the scheduler's current wait
    std::thread scheduler_;
};

}  // namespace detail

/// Starts a hedged attempt when the first has not answered within a delay (a stream: has not
/// delivered its first content), up to `max_hedges` of them; the first answer wins, the others are
/// cancelled and waited for, and the winner's outcome is returned. When every attempt fails, the
/// first attempt's error is returned (or the earliest real failure, if the race cancelled it).
///
/// The first attempt runs on the calling thread; hedges run on threads of their own, each on a
/// copy of the context whose cancellation is linked to the caller's. All of them share the call's
/// deadline and state: no hedge starts past the deadline, and a stream's attempts race for its one
/// commit gate, so the caller's callback sees each chunk once, from the attempt that delivered
/// first, but possibly on a hedging thread. Once a stream has delivered content, no hedge starts.
///
///     sturdy::hedging_options opts;
///     opts.percentile = 0.95;                        // hedge the slowest 5%...
///     opts.delay = 1s;                               // ...with 1 s until 20 latencies are known
///     opts.routes = {{"backup", backup_endpoint, "gpt-4o-mini"}};
///     sturdy::hedging_policy hedging(opts);
///
/// Copies share their settings and latency window.
class hedging_policy {
public:
    explicit hedging_policy(hedging_options options = {}, sturdy::timing timing = {})
        : core_(std::make_shared<detail::hedging_core>(sanitized(std::move(options)), std::move(timing))) {}
    /// One hedge after a fixed `delay`.
    explicit hedging_policy(clock::duration delay) : hedging_policy(with_delay(delay)) {}

    const hedging_options& options() const noexcept { return core_->options; }

    /// The wait before the first hedge of a call starting now.
    clock::duration current_delay() const { return core_->delay(); }

    template <class Attempt>
    auto execute(call_context& ctx, Attempt&& attempt) const -> decltype(attempt(ctx)) {
        using outcome = decltype(attempt(ctx));
        if (core_->options.max_hedges <= 0) return attempt(ctx);
        detail::hedge_race<outcome, std::remove_reference_t<Attempt>> race(*core_, ctx, attempt);
        return race.run();
    }

private:
    static hedging_options with_delay(clock::duration delay) {
        hedging_options o;
        o.delay = delay;
        return o;
    }
    static hedging_options sanitized(hedging_options o) {
        constexpr std::string_view policy = "hedging_policy";
        detail::require_option(o.delay >= clock::duration::zero(), policy, "delay", "must not be negative");
        detail::require_option(!o.percentile || (*o.percentile >= 0 && *o.percentile <= 1), policy, "percentile",
                               "must be in [0, 1]");
        detail::require_option(o.max_hedges >= 0, policy, "max_hedges", "must not be negative");
        return o;
    }

    std::shared_ptr<detail::hedging_core> core_;
};

}  // namespace sturdy

#pragma once
/// @file
/// A bulkhead: at most N calls in flight, a bounded queue of callers waiting for a slot, in order.
///
///     sturdy::bulkhead_options opts;
///     opts.max_concurrent = 4;                   // at most 4 requests on the wire
///     opts.max_queue = 32;                       // 32 more callers may wait...
///     opts.max_wait = std::chrono::seconds(10);  // ...for at most 10 s each
///     sturdy::bulkhead pool(opts);               // copies share the slots
///     auto policy = sturdy::compose(pool, sturdy::rate_limiter(limits), sturdy::retry_policy());
///
/// A full queue, or a wait that ends without a slot (max_wait or the call's deadline), is an
/// `error_kind::rate_limited` error without a retry hint: when a slot frees depends on calls
/// that are still running. Waiting stops when the call is cancelled.
///
/// Unlike a breaker's circuit, a limiter's windows and a retry budget's counts, a bulkhead's state
/// has no place in a state store (sturdy/state_store.hpp): its queue holds the continuations of
/// this process's waiting calls, which no other process could resume. So a bulkhead bounds the
/// calls of one process, shared by its copies.

#include <sturdy/cancellation.hpp>
#include <sturdy/clock.hpp>
#include <sturdy/error.hpp>
#include <sturdy/events.hpp>
#include <sturdy/executor.hpp>
#include <sturdy/policy.hpp>
#include <sturdy/policy_options.hpp>
#include <sturdy/detail/duration_text.hpp>
#include <sturdy/detail/option_check.hpp>

#include <algorithm>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace sturdy {

/// What happened to a call at the bulkhead's door.
enum class bulkhead_action {
    queued,      ///< no free slot: it waits in the queue
    admitted,    ///< it got a slot after waiting
    queue_full,  ///< refused at once: the queue was full
    timed_out,   ///< refused: no slot within max_wait or before the call's deadline
    cancelled,   ///< the caller cancelled while it waited
};

constexpr std::string_view to_string(bulkhead_action action) noexcept {
    switch (action) {
        case bulkhead_action::queued: return "queued";
        case bulkhead_action::admitted: return "admitted";
        case bulkhead_action::queue_full: return "queue_full";
        case bulkhead_action::timed_out: return "timed_out";
        case bulkhead_action::cancelled: return "cancelled";
    }
    return "unknown";
}

/// Reported when a call has to wait for a slot, gets one, or is refused. Calls that find a free
/// slot pass without an event.
struct bulkhead_event {
    std::string_view bulkhead;  ///< bulkhead_options::name
    operation op;
    std::string_view model;
    bulkhead_action action;
    clock::duration waited;     ///< time spent in the queue so far
    int in_flight;              ///< calls holding a slot at that moment
    int queued;                 ///< callers waiting at that moment
};

/// Settings of a bulkhead.
///
/// From policy_options: `name` (empty: "bulkhead") names the bulkhead in errors and events.
/// `should_handle` has no use here and must stay empty: a bulkhead holds a slot for whatever runs
/// inside it, whatever the outcome, so there is no failure for it to choose. A predicate set on it
/// is refused rather than ignored in silence.
struct bulkhead_options : policy_options {
    /// Calls allowed in flight at once.
    int max_concurrent = 10;
    /// Callers allowed to wait for a slot; more are refused at once. Zero: never wait.
    int max_queue = 100;
    /// The longest wait for a slot, measured on the injected clock; the call's deadline also ends it.
    clock::duration max_wait = std::chrono::seconds(30);
    /// Called on a wait, an admission after waiting and a refusal (outside the bulkhead's lock),
    /// then that call's event_sink.
    std::function<void(const bulkhead_event&)> on_event;
};

/// At most `max_concurrent` calls in flight, the next `max_queue` callers waiting in arrival
/// order. A slot is held for the whole of what runs inside the bulkhead and freed however that
/// ends: an outcome, a failure or an exception. Copies share the slots; thread-safe.
///
/// A queued call holds no thread: it asks the call's executor to wait (`ctx.exec->after`) on the
/// injected clock for its time left, on a token that a freed slot or a cancellation fires. On the
/// blocking executor that wait is a sleep of the caller's own thread, so max_wait runs in virtual
/// time under sturdy::testing::fake_clock (use its manual mode: in auto_advance mode, a queued
/// caller's sleep jumps straight to its timeout).
class bulkhead : public blocking_form<bulkhead> {
public:
    /// Throws std::invalid_argument for max_concurrent < 1, max_queue < 0, a negative max_wait or a
    /// should_handle.
    explicit bulkhead(bulkhead_options options = {}, sturdy::timing timing = {})
        : state_(std::make_shared<state>(std::move(options), std::move(timing))) {}
    /// `max_concurrent` in flight, with the other settings' defaults.
    explicit bulkhead(int max_concurrent, sturdy::timing timing = {}) : bulkhead(with_limit(max_concurrent), std::move(timing)) {}

    const bulkhead_options& options() const noexcept { return state_->options; }

    /// Calls holding a slot now.
    int in_flight() const {
        std::lock_guard<std::mutex> lock(state_->mutex);
        return state_->in_flight;
    }
    /// Callers waiting for a slot now.
    int queued() const {
        std::lock_guard<std::mutex> lock(state_->mutex);
        return static_cast<int>(state_->queue.size());
    }

    /// Runs the call in a free slot, queues it for one, or refuses it when the queue is full.
    template <class T, class Next, class Done>
    void start(call_context& ctx, Next next, Done done) const;

private:
    // The longest single wait: a real clock's wait_for overflows with duration::max().
    static constexpr clock::duration longest_sleep = std::chrono::hours(1);

    /// A caller in the queue: the FIFO holds these, and a freed slot is handed to the first.
    struct waiter {
        explicit waiter(const cancellation_token& caller) : wake(caller) {}
        cancellation_source wake;  ///< fired by a slot handed over, and by the caller's cancellation
        bool granted = false;      ///< guarded by state::mutex
    };

    /// How a call met the bulkhead: a free slot, a place in the queue, or neither (the queue is full).
    struct arrival {
        bool admitted = false;
        std::shared_ptr<waiter> queued;
        int in_flight = 0, queue_length = 0;  ///< as the call found them, for its event
    };

    /// How a wait ended, with the counts as it left them for its event.
    struct wait_end {
        bulkhead_action action;
        int in_flight, queue_length;
    };

    /// What the copies of a bulkhead share: its slots and its queue, and the decisions on them.
    struct state {
        state(bulkhead_options o, sturdy::timing t) : options(checked(std::move(o))), timing(std::move(t)) {}

        static bulkhead_options checked(bulkhead_options o) {
            constexpr std::string_view policy = "bulkhead";
            detail::require_option(o.max_concurrent >= 1, policy, "max_concurrent", "must be at least 1");
            detail::require_option(o.max_queue >= 0, policy, "max_queue", "must not be negative");
            detail::require_option(o.max_wait >= clock::duration::zero(), policy, "max_wait", "must not be negative");
            detail::require_option(!o.should_handle, policy, "should_handle",
                                   "must be empty: a bulkhead handles no failures");
            return detail::named(std::move(o), policy);
        }

        /// Takes a free slot when nobody waits for one, else a place at the end of the queue if there is one.
        arrival arrive(const cancellation_token& caller) {
            std::lock_guard<std::mutex> lock(mutex);
            arrival a;
            if (in_flight < options.max_concurrent && queue.empty()) {
                ++in_flight;
                a.admitted = true;
                return a;
            }
            if (static_cast<int>(queue.size()) < options.max_queue) {
                a.queued = std::make_shared<waiter>(caller);
                queue.push_back(a.queued);
            }
            a.in_flight = in_flight;
            a.queue_length = static_cast<int>(queue.size());
            return a;
        }

        /// Decides a waiter's wait after a wake-up: a slot handed over admits it, else a cancellation
        /// or the end of its time takes it out of the queue; nullopt: it waits on.
        std::optional<wait_end> settle_wait(const std::shared_ptr<waiter>& w, bool cancelled, bool time_up) {
            std::optional<bulkhead_action> action;
            bool handed_slot = false;
            int counted_in_flight = 0, queue_length = 0;
            {
                std::lock_guard<std::mutex> lock(mutex);
                handed_slot = w->granted;
                if (handed_slot) {
                    action = cancelled ? bulkhead_action::cancelled : bulkhead_action::admitted;
                } else if (cancelled || time_up) {
                    const auto place = std::find(queue.begin(), queue.end(), w);
                    if (place != queue.end()) queue.erase(place);
                    action = cancelled ? bulkhead_action::cancelled : bulkhead_action::timed_out;
                }
                counted_in_flight = in_flight;
                queue_length = static_cast<int>(queue.size());
            }
            if (!action) return std::nullopt;
            if (handed_slot && *action == bulkhead_action::cancelled) release();  // on to the next waiter
            return wait_end{*action, counted_in_flight, queue_length};
        }

        /// Frees a slot, handing it straight to the first waiter so that nobody overtakes the queue.
        void release() noexcept {
            std::shared_ptr<waiter> next;
            {
                std::lock_guard<std::mutex> lock(mutex);
                if (queue.empty()) {
                    --in_flight;
                } else {
                    next = std::move(queue.front());
                    queue.pop_front();
                    next->granted = true;
                }
            }
            if (next) next->wake.cancel();
        }

        const bulkhead_options options;
        const sturdy::timing timing;
        std::mutex mutex;
        int in_flight = 0;
        std::deque<std::shared_ptr<waiter>> queue;
    };

    /// A slot held by a call, freed once: when its outcome arrives, or when the call ends without
    /// one (its attempt threw, or its continuation was dropped).
    class slot {
    public:
        explicit slot(std::shared_ptr<state> s) : state_(std::move(s)) {}
        ~slot() { free(); }
        slot(const slot&) = delete;
        slot& operator=(const slot&) = delete;
        void free() noexcept {
            if (state_) state_->release();
            state_.reset();
        }

    private:
        std::shared_ptr<state> state_;
    };

    /// Frees the call's slot, then hands its outcome on.
    template <class T, class Done>
    struct free_slot {
        std::shared_ptr<slot> held;
        Done done;
        void operator()(result<T> outcome) {
            held->free();
            held.reset();
            done(std::move(outcome));
        }
    };

    template <class T, class Next, class Done>
    class queued_call;

    static bulkhead_options with_limit(int max_concurrent) {
        bulkhead_options o;
        o.max_concurrent = max_concurrent;
        return o;
    }

    static void notify(const state& s, const call_context& ctx, bulkhead_action action, clock::duration waited,
                       int in_flight, int queued) {
        detail::emit(s.options.on_event, ctx.events, detail::source(ctx, s.options.name),
                     bulkhead_event{s.options.name, ctx.op, ctx.effective_model(), action, waited, in_flight, queued});
    }

    static error refusal(const state& s, std::string_view code, const std::string& why) {
        error_details d;
        d.code = std::string(code);
        d.message = "bulkhead '" + s.options.name + "' refused the call: " + why;
        return error(error_kind::rate_limited, std::move(d));
    }

    std::shared_ptr<state> state_;
};

/// A call waiting in the queue: its wake-ups, and what it does once its wait ends.
template <class T, class Next, class Done>
class bulkhead::queued_call : public std::enable_shared_from_this<queued_call<T, Next, Done>> {
public:
    queued_call(std::shared_ptr<state> s, call_context& ctx, Next next, Done done, std::shared_ptr<waiter> w)
        : state_(std::move(s)), ctx_(ctx), next_(std::move(next)), done_(std::move(done)), waiter_(std::move(w)),
          started_(state_->timing.clock->now()) {}
    queued_call(const queued_call&) = delete;
    queued_call& operator=(const queued_call&) = delete;
    /// A wait dropped before it ended (its executor stopped, or an event hook threw) gives up its
    /// place in the queue, or the slot it was handed.
    ~queued_call() {
        if (!ended_) state_->settle_wait(waiter_, /*cancelled=*/true, /*time_up=*/true);
    }

    /// Waits until a slot is handed over, max_wait or the call's deadline passes, or the call is
    /// cancelled, whichever comes first.
    void wait() { settle(std::nullopt); }

private:
    /// The time a waiter has left, and whether the call's deadline (not max_wait) sets it.
    struct time_limit {
        clock::duration left;
        bool by_deadline;
    };

    time_limit time_left(clock::duration waited) const {
        time_limit t{state_->options.max_wait - waited, false};
        if (ctx_.deadline.is_set() && ctx_.deadline.remaining() < t.left) t = {ctx_.deadline.remaining(), true};
        return t;
    }

    /// After a wake-up: ends the wait, or waits on. `ran_out` is the limit whose whole time the
    /// executor says has passed, when it has.
    void settle(std::optional<time_limit> ran_out) {
        auto& s = *state_;
        const auto waited = s.timing.clock->now() - started_;
        const time_limit limit = ran_out ? *ran_out : time_left(waited);
        const bool time_up = ran_out || limit.left <= clock::duration::zero();
        const auto end = s.settle_wait(waiter_, ctx_.cancel.cancelled(), time_up);
        ended_ = end.has_value();
        if (!end) {
            // Waits out the time left (in steps of at most longest_sleep); a slot handed over or the
            // caller's cancellation fires the token and cuts the wait short.
            const bool whole = limit.left <= longest_sleep;
            ctx_.exec->after(*s.timing.clock, whole ? limit.left : longest_sleep, waiter_->wake.token(),
                             [self = this->shared_from_this(), whole, limit](bool elapsed) {
                                 self->settle(elapsed && whole ? std::optional<time_limit>(limit) : std::nullopt);
                             });
            return;
        }
        std::shared_ptr<slot> held;
        if (end->action == bulkhead_action::admitted) held = std::make_shared<slot>(state_);
        notify(s, ctx_, end->action, waited, end->in_flight, end->queue_length);
        switch (end->action) {
            case bulkhead_action::admitted: return next_(ctx_, free_slot<T, Done>{std::move(held), std::move(done_)});
            case bulkhead_action::cancelled:
                return done_(error(error_kind::cancelled,
                                   "cancelled while waiting for a slot in bulkhead '" + s.options.name + "'"));
            default:
                return done_(refusal(s, error_codes::bulkhead_timeout,
                                     limit.by_deadline ? std::string("no free slot before the call's deadline")
                                                       : "no free slot within max_wait (" +
                                                             detail::duration_text(s.options.max_wait) + ")"));
        }
    }

    std::shared_ptr<state> state_;
    call_context& ctx_;
    Next next_;
    Done done_;
    std::shared_ptr<waiter> waiter_;
    clock::time_point started_;
    bool ended_ = false;
};

template <class T, class Next, class Done>
void bulkhead::start(call_context& ctx, Next next, Done done) const {
    auto& s = *state_;
    auto arrived = s.arrive(ctx.cancel);
    if (arrived.admitted) return next(ctx, free_slot<T, Done>{std::make_shared<slot>(state_), std::move(done)});
    if (!arrived.queued) {
        notify(s, ctx, bulkhead_action::queue_full, clock::duration::zero(), arrived.in_flight, arrived.queue_length);
        return done(refusal(s, error_codes::bulkhead_full,
                            std::to_string(arrived.in_flight) + " calls in flight (its limit) and " +
                                std::to_string(arrived.queue_length) + " waiting (its queue is full)"));
    }
    // Made before the event, so that a hook that throws leaves no stray waiter in the queue.
    auto waiting = std::make_shared<queued_call<T, Next, Done>>(state_, ctx, std::move(next), std::move(done),
                                                                std::move(arrived.queued));
    notify(s, ctx, bulkhead_action::queued, clock::duration::zero(), arrived.in_flight, arrived.queue_length);
    waiting->wait();
}

}  // namespace sturdy

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

#include <sturdy/cancellation.hpp>
#include <sturdy/clock.hpp>
#include <sturdy/error.hpp>
#include <sturdy/policy.hpp>
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
struct bulkhead_options {
    /// Names the bulkhead in errors and events.
    std::string name = "bulkhead";
    /// Calls allowed in flight at once.
    int max_concurrent = 10;
    /// Callers allowed to wait for a slot; more are refused at once. Zero: never wait.
    int max_queue = 100;
    /// The longest wait for a slot, measured on the injected clock; the call's deadline also ends it.
    clock::duration max_wait = std::chrono::seconds(30);
    /// Called on a wait, an admission after waiting and a refusal (outside the bulkhead's lock).
    std::function<void(const bulkhead_event&)> on_event;
};

/// At most `max_concurrent` calls in flight, the next `max_queue` callers waiting in arrival
/// order. A slot is held for the whole of what runs inside the bulkhead and freed however that
/// ends: an outcome, a failure or an exception. Copies share the slots; thread-safe.
///
/// The wait is a sleep on the injected clock that a freed slot or a cancellation cuts short, so
/// max_wait runs in virtual time under sturdy::testing::fake_clock (use its manual mode: in
/// auto_advance mode, a queued caller's sleep jumps straight to its timeout).
class bulkhead {
public:
    /// Throws std::invalid_argument for max_concurrent < 1, max_queue < 0 or a negative max_wait.
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

    template <class Attempt>
    auto execute(call_context& ctx, Attempt&& attempt) const -> decltype(attempt(ctx)) {
        if (auto refused = acquire(ctx)) {
            if (refused->kind() == error_kind::rate_limited) ctx.state->note_error(*refused);  // no attempt will record it
            return *refused;
        }
        slot held(*state_);
        return attempt(ctx);
    }

private:
    // The longest single sleep: a real clock's wait_for overflows with duration::max().
    static constexpr clock::duration longest_sleep = std::chrono::hours(1);

    struct waiter {
        explicit waiter(const cancellation_token& caller) : wake(caller) {}
        cancellation_source wake;  ///< fired by a slot handed over, and by the caller's cancellation
        bool granted = false;      ///< guarded by state::mutex
    };

    struct state {
        state(bulkhead_options o, sturdy::timing t) : options(std::move(o)), timing(std::move(t)) {
            detail::require_option(options.max_concurrent >= 1, "bulkhead", "max_concurrent", "must be at least 1");
            detail::require_option(options.max_queue >= 0, "bulkhead", "max_queue", "must not be negative");
            detail::require_option(options.max_wait >= clock::duration::zero(), "bulkhead", "max_wait",
                                   "must not be negative");
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

        void leave_queue(const std::shared_ptr<waiter>& w) { queue.erase(std::find(queue.begin(), queue.end(), w)); }

        const bulkhead_options options;
        const sturdy::timing timing;
        std::mutex mutex;
        int in_flight = 0;
        std::deque<std::shared_ptr<waiter>> queue;
    };

    /// Holds a slot until destroyed, also when the attempt throws.
    class slot {
    public:
        explicit slot(state& s) : state_(s) {}
        ~slot() { state_.release(); }
        slot(const slot&) = delete;
        slot& operator=(const slot&) = delete;

    private:
        state& state_;
    };

    static bulkhead_options with_limit(int max_concurrent) {
        bulkhead_options o;
        o.max_concurrent = max_concurrent;
        return o;
    }

    void notify(const call_context& ctx, bulkhead_action action, clock::duration waited, int in_flight, int queued) const {
        if (state_->options.on_event)
            state_->options.on_event(bulkhead_event{state_->options.name, ctx.op, ctx.effective_model(), action, waited, in_flight, queued});
    }

    error refusal(std::string_view code, const std::string& why) const {
        error_details d;
        d.code = std::string(code);
        d.message = "bulkhead '" + state_->options.name + "' refused the call: " + why;
        return error(error_kind::rate_limited, std::move(d));
    }

    /// Takes a slot, waiting for one if need be; the error when the call may not go ahead.
    std::optional<error> acquire(const call_context& ctx) const {
        auto& s = *state_;
        const auto& o = s.options;
        std::shared_ptr<waiter> w;
        int in_flight = 0, queued = 0;
        {
            std::lock_guard<std::mutex> lock(s.mutex);
            if (s.in_flight < o.max_concurrent && s.queue.empty()) {
                ++s.in_flight;
                return std::nullopt;
            }
            if (static_cast<int>(s.queue.size()) < o.max_queue) {
                w = std::make_shared<waiter>(ctx.cancel);
                s.queue.push_back(w);
            }
            in_flight = s.in_flight;
            queued = static_cast<int>(s.queue.size());
        }
        if (!w) {
            notify(ctx, bulkhead_action::queue_full, clock::duration::zero(), in_flight, queued);
            return refusal(error_codes::bulkhead_full, std::to_string(in_flight) + " calls in flight (its limit) and " + std::to_string(queued) +
                           " waiting (its queue is full)");
        }
        notify(ctx, bulkhead_action::queued, clock::duration::zero(), in_flight, queued);

        const auto& clock = *s.timing.clock;
        const auto started = clock.now();
        const auto wake = w->wake.token();
        for (;;) {
            const auto waited = clock.now() - started;
            auto left = o.max_wait - waited;
            const bool deadline_first = ctx.deadline.is_set() && ctx.deadline.remaining() < left;
            if (deadline_first) left = ctx.deadline.remaining();
            std::optional<bulkhead_action> ending;
            bool granted = false;
            {
                std::lock_guard<std::mutex> lock(s.mutex);
                granted = w->granted;
                const bool cancelled = ctx.cancel.cancelled();
                if (granted) {
                    ending = cancelled ? bulkhead_action::cancelled : bulkhead_action::admitted;
                } else if (cancelled || left <= clock::duration::zero()) {
                    s.leave_queue(w);
                    ending = cancelled ? bulkhead_action::cancelled : bulkhead_action::timed_out;
                }
                in_flight = s.in_flight;
                queued = static_cast<int>(s.queue.size());
            }
            if (!ending) {
                // Cut short by a slot handed over or by the caller's cancellation.
                clock.sleep_for(std::min(left, longest_sleep), wake);
                continue;
            }
            if (granted && *ending == bulkhead_action::cancelled) s.release();
            notify(ctx, *ending, waited, in_flight, queued);
            switch (*ending) {
                case bulkhead_action::admitted:
                    return std::nullopt;
                case bulkhead_action::cancelled:
                    return error(error_kind::cancelled, "cancelled while waiting for a slot in bulkhead '" + o.name + "'");
                default:
                    return refusal(error_codes::bulkhead_timeout, deadline_first ? std::string("no free slot before the call's deadline")
                                                  : "no free slot within max_wait (" + detail::duration_text(o.max_wait) + ")");
            }
        }
    }

    std::shared_ptr<state> state_;
};

}  // namespace sturdy

#pragma once
/// @file
/// The executor: the one part of a call that waits and runs branches side by side.
///
/// Policies decide (retry after 400 ms, refuse, try the next route, start a hedge now); they never
/// sleep or start a thread. A policy written in continuation form, `start` (see policy.hpp), asks
/// the call's executor for both:
///
///     ctx.exec->after(*timing.clock, delay, ctx.cancel, [=](bool elapsed) { ... });
///     ctx.exec->spawn([=] { next(branch_ctx, on_outcome); });
///
/// Today's synchronous calls run on a `blocking_executor`, one per call: a wait blocks the calling
/// thread on the clock it names (a fake clock's wait advances it), and each branch runs on a thread
/// of its own, joined before the call returns. An event-driven executor keeps the same seam with
/// timers and a loop instead, and the policies stay as they are.
///
/// `sturdy::execute(policy, ctx, attempt)` runs a policy of either form (`start` or `execute`)
/// synchronously over a blocking attempt; every policy's `execute` member is that call.

#include <sturdy/cancellation.hpp>
#include <sturdy/clock.hpp>
#include <sturdy/error.hpp>
#include <sturdy/policy.hpp>
#include <sturdy/result.hpp>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace sturdy {

/// Waits and concurrent branches for the policies of a call. Implementations are safe to call from
/// every branch of the call at once.
class executor {
public:
    virtual ~executor() = default;
    /// Calls `then(true)` once `d` has passed on `on`, or `then(false)` as soon as `cancel` fires
    /// (at once when it already has).
    virtual void after(const sturdy::clock& on, clock::duration d, const cancellation_token& cancel,
                       std::function<void(bool elapsed)> then) = 0;
    /// Runs `branch` beside the current one (a hedged attempt, a shadow call). Returns false, and
    /// never runs it, when no branch can be started now (out of threads): the caller goes on without.
    virtual bool spawn(std::function<void()> branch) = 0;
};

/// The synchronous executor: waits block the calling thread; each branch gets a thread of its own.
/// One serves one call, and its destructor joins every branch the call started.
class blocking_executor final : public executor {
public:
    blocking_executor() = default;
    blocking_executor(const blocking_executor&) = delete;
    blocking_executor& operator=(const blocking_executor&) = delete;
    ~blocking_executor() override { join(); }

    void after(const sturdy::clock& on, clock::duration d, const cancellation_token& cancel,
               std::function<void(bool)> then) override {
        then(on.sleep_for(d, cancel));
    }

    bool spawn(std::function<void()> branch) override {
        std::lock_guard<std::mutex> lock(mutex_);
        try {
            threads_.emplace_back(std::move(branch));
        } catch (const std::system_error&) {
            return false;
        }
        spawned_.store(true, std::memory_order_release);
        return true;
    }

    /// Waits for every branch started so far, and for those they started in turn.
    void join() {
        if (!spawned_.load(std::memory_order_acquire)) return;  // most calls start no branch
        for (;;) {
            std::vector<std::thread> running;
            {
                std::lock_guard<std::mutex> lock(mutex_);
                running.swap(threads_);
            }
            if (running.empty()) return;
            for (auto& t : running) t.join();
        }
    }

private:
    std::atomic<bool> spawned_{false};
    std::mutex mutex_;
    std::vector<std::thread> threads_;
};

namespace detail {

inline error replay_refused() {
    error_details d;
    d.code = std::string(error_codes::stream_committed);
    d.message =
        "another attempt was asked for after the stream delivered content to the caller; it was refused, "
        "since the caller would see a second reply";
    return error(error_kind::invalid_argument, std::move(d));
}

/// Holds one outcome handed over from whichever thread finishes, for a thread that waits for it.
/// An outcome handed over before anyone waits (every call that needs no branch) costs two atomic
/// operations; only a waiter that must block takes the lock.
template <class R>
class outcome_slot {
public:
    void set(R r) {
        value_.emplace(std::move(r));
        if (state_.exchange(filled, std::memory_order_acq_rel) != waiting) return;
        std::lock_guard<std::mutex> lock(mutex_);
        woken_ = true;
        ready_.notify_all();  // under the lock: the waiter may destroy the slot as soon as it wakes
    }
    R take() {
        int expected = empty;
        if (state_.compare_exchange_strong(expected, waiting, std::memory_order_acq_rel)) {
            std::unique_lock<std::mutex> lock(mutex_);
            ready_.wait(lock, [this] { return woken_; });
        }
        return std::move(*value_);
    }

private:
    enum : int { empty, waiting, filled };
    std::atomic<int> state_{empty};
    std::mutex mutex_;
    std::condition_variable ready_;
    bool woken_ = false;
    std::optional<R> value_;
};

/// Stand-ins to ask whether a policy has the continuation form.
struct probe_next {
    template <class K>
    void operator()(call_context&, K&&) const {}
};
struct probe_done {
    template <class R>
    void operator()(R&&) const {}
};

template <class Policy, class = void>
struct has_start : std::false_type {};
template <class Policy>
struct has_start<Policy, std::void_t<decltype(std::declval<const Policy&>().template start<int>(
                             std::declval<call_context&>(), probe_next{}, probe_done{}))>> : std::true_type {};

// Continuations here and in the policies are named class templates, not lambdas: a lambda's type
// is named after the whole signature of the function it is written in, so continuations wrapping
// continuations would get type names that double with every layer of a pipeline.

/// Hands an outcome to a slot.
template <class R>
struct fill_slot {
    outcome_slot<R>* slot;
    void operator()(R r) const { slot->set(std::move(r)); }
};

/// Runs `next` and waits for its outcome: how a policy in blocking form calls what is inside it.
template <class T, class Next>
result<T> wait_for(const Next& next, call_context& ctx) {
    outcome_slot<result<T>> slot;
    next(ctx, fill_slot<result<T>>{&slot});
    return slot.take();
}

/// Records a failed outcome in the call's report, then hands it on.
template <class T, class Done>
struct record_failure {
    call_state* state;
    Done done;
    void operator()(result<T> r) {
        if (!r) state->note_outcome(r.error());
        done(std::move(r));
    }
};

/// What a policy in blocking form calls as its attempt: what is inside it, waited for.
template <class T, class Next>
struct blocking_attempt {
    const Next* next;
    result<T> operator()(call_context& ctx) const { return wait_for<T>(*next, ctx); }
};

/// Starts one layer of a pipeline, whichever form its policy has. Every failed outcome leaving the
/// layer is recorded in the call's report, once: the executor, not each policy, records a
/// policy's own refusals and cancels.
template <class T, class Policy, class Next, class Done>
void start_layer(const Policy& policy, call_context& ctx, Next next, Done done) {
    record_failure<T, Done> recorded{ctx.state, std::move(done)};
    if constexpr (has_start<Policy>::value) {
        policy.template start<T>(ctx, std::move(next), std::move(recorded));
    } else {
        recorded(policy.execute(ctx, blocking_attempt<T, Next>{&next}));
    }
}

/// The commit point, for every policy alike: once a stream has delivered content to the caller, no
/// further attempt of the call starts, whichever policy asks for it (a retry, a fallback, a
/// user's own).
template <class Attempt>
struct guarded_attempt {
    Attempt* attempt;
    auto operator()(call_context& ctx) const -> decltype((*attempt)(ctx)) {
        if (ctx.state->committed()) {
            error refused = replay_refused();
            ctx.state->note_error(refused);
            return refused;
        }
        return (*attempt)(ctx);
    }
};

/// The last step of a pipeline: one blocking attempt, its outcome handed on.
template <class Attempt>
struct attempt_step {
    const Attempt* attempt;
    template <class K>
    void operator()(call_context& ctx, K&& k) const {
        k((*attempt)(ctx));
    }
};

/// A whole policy over one step: what `execute` waits for.
template <class T, class Policy, class Step>
struct policy_step {
    const Policy* policy;
    Step step;
    template <class K>
    void operator()(call_context& ctx, K&& k) const {
        start_layer<T>(*policy, ctx, step, std::forward<K>(k));
    }
};

/// The executor of one synchronous call: the context's own if it has one, else a blocking executor
/// for this call alone, whose branches are joined (and the context given back as it was) when the
/// call ends, by an outcome or an exception.
class call_executor {
public:
    explicit call_executor(call_context& ctx) : ctx_(ctx), given_(ctx.exec) {
        if (!given_) ctx_.exec = &own_.emplace();
    }
    ~call_executor() {
        own_.reset();
        ctx_.exec = given_;
    }
    call_executor(const call_executor&) = delete;
    call_executor& operator=(const call_executor&) = delete;

private:
    call_context& ctx_;
    executor* given_;
    std::optional<blocking_executor> own_;
};

}  // namespace detail

/// Runs `policy` over `attempt` (a blocking `result<T>(call_context&)`) and returns the call's
/// outcome. Waits and branches go to `ctx.exec`; a context without one gets a blocking executor for
/// this call, whose branches have all ended when this returns.
template <class Policy, class Attempt>
auto execute(const Policy& policy, call_context& ctx, Attempt&& attempt) -> decltype(attempt(ctx)) {
    using outcome = decltype(attempt(ctx));
    using value = typename outcome::value_type;
    using guarded = detail::guarded_attempt<std::remove_reference_t<Attempt>>;
    const guarded one_attempt{&attempt};
    if constexpr (!detail::has_start<Policy>::value) {
        return policy.execute(ctx, one_attempt);
    } else {
        detail::call_executor exec(ctx);
        using step = detail::attempt_step<guarded>;
        const detail::policy_step<value, Policy, step> whole{&policy, step{&one_attempt}};
        return detail::wait_for<value>(whole, ctx);
    }
}

/// Gives a policy in continuation form the blocking `execute` member of the Policy contract.
template <class Derived>
class blocking_form {
public:
    template <class Attempt>
    auto execute(call_context& ctx, Attempt&& attempt) const -> decltype(attempt(ctx)) {
        return sturdy::execute(static_cast<const Derived&>(*this), ctx, attempt);
    }
};

}  // namespace sturdy

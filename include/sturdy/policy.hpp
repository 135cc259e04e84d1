#pragma once
/// @file
/// The policy seam: what a policy is, and the context every attempt of a call shares.
///
/// A policy decides; the call's executor (sturdy/executor.hpp) waits and runs branches for it. A
/// Policy is a class callable on a const object from many threads, in one of two forms.
///
/// The continuation form, which every sturdy policy has and an event-driven executor needs:
///
///     template <class T, class Next, class Done>
///     void start(sturdy::call_context& ctx, Next next, Done done) const;
///
/// `next(ctx, k)` runs what is inside the policy (more policies, then one attempt) and calls
/// `k(sturdy::result<T>)` once, perhaps later and on another thread; `ctx` must live until then.
/// The policy calls `done(result<T>)` exactly once with the call's outcome. It may call `next`
/// once (a breaker, a limiter), again after a wait (`ctx.exec->after`, a retry), with a changed
/// context (a timeout narrows `ctx.deadline`, a fallback sets `ctx.route`), or on copies of the
/// context in branches (`ctx.exec->spawn`, hedging). It never sleeps, blocks or starts a thread.
///
/// The blocking form, simpler to write for a policy of one's own:
///
///     template <class Attempt>
///     auto execute(sturdy::call_context& ctx, Attempt&& attempt) const -> decltype(attempt(ctx));
///
/// `attempt(ctx)` makes one try, blocking, and returns its outcome. `sturdy::execute(policy, ctx,
/// attempt)` runs either form this way, and every sturdy policy has this member too.
///
/// In both forms outcomes flow as values, as in Polly's pipelines: a failed attempt is an outcome,
/// not an exception. Whatever a policy does, the executor records every failed outcome leaving it
/// (its own refusals included) in the call's report, and refuses any attempt asked for once a
/// stream has delivered content to the caller, so no policy can replay a committed stream.

#include <sturdy/call_info.hpp>
#include <sturdy/cancellation.hpp>
#include <sturdy/clock.hpp>
#include <sturdy/error.hpp>
#include <sturdy/events.hpp>
#include <sturdy/http.hpp>
#include <sturdy/observation.hpp>
#include <sturdy/options.hpp>
#include <sturdy/policy_options.hpp>
#include <sturdy/properties.hpp>
#include <sturdy/usage.hpp>

#include <atomic>
#include <chrono>
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

class executor;

/// What a call does.
enum class operation { chat, chat_stream, list_models, retrieve_model, embeddings };

constexpr std::string_view to_string(operation op) noexcept {
    switch (op) {
        case operation::chat: return "chat";
        case operation::chat_stream: return "chat_stream";
        case operation::list_models: return "list_models";
        case operation::retrieve_model: return "retrieve_model";
        case operation::embeddings: return "embeddings";
    }
    return "unknown";
}

/// A point in time on a given clock, or no deadline at all.
class deadline {
public:
    deadline() = default;
    deadline(std::shared_ptr<const sturdy::clock> on, clock::time_point at) : clock_(std::move(on)), at_(at) {}

    /// The deadline `d` from now on `on`.
    static deadline after(std::shared_ptr<const sturdy::clock> on, clock::duration d) {
        auto now = on->now();
        return deadline(std::move(on), now + d);
    }

    bool is_set() const noexcept { return static_cast<bool>(clock_); }
    /// Time left; clock::duration::max() when unset, zero or less once passed.
    clock::duration remaining() const {
        return clock_ ? at_ - clock_->now() : clock::duration::max();
    }
    bool expired() const { return clock_ && remaining() <= clock::duration::zero(); }

    /// The earlier of two deadlines (compared by time left, so they may come from different clocks).
    static deadline earliest(const deadline& a, const deadline& b) {
        if (!a.is_set()) return b;
        if (!b.is_set()) return a;
        return a.remaining() <= b.remaining() ? a : b;
    }

private:
    std::shared_ptr<const sturdy::clock> clock_;
    clock::time_point at_{};
};

/// Where an attempt goes when a policy (a fallback chain, a traffic split) sends it elsewhere
/// than the client's own endpoint and the request's model.
struct route {
    std::string name;                          ///< for reports and events
    std::shared_ptr<const sturdy::endpoint> endpoint;  ///< null: the client's own
    std::string model;                         ///< empty: the request's own
};

/// State every attempt of one call shares, on every thread.
class call_state {
public:
    /// A new attempt's number, 1-based.
    int begin_attempt() noexcept { return attempts_.fetch_add(1, std::memory_order_relaxed) + 1; }
    int attempts() const noexcept { return attempts_.load(std::memory_order_relaxed); }

    /// Streams: claims the right to deliver content to the caller for attempt `id`. The first claim
    /// wins; from then on the call is committed and must never be replayed.
    bool try_commit(int id) {
        int expected = 0;
        if (owner_.compare_exchange_strong(expected, id)) {
            if (commit_listener_) commit_listener_();
            return true;
        }
        return expected == id;
    }
    bool committed() const noexcept { return owner_.load() != 0; }

    /// Called once, on the committing attempt's thread, when a stream commits: lets a policy that
    /// races attempts (hedging) stop the others at once. Set it before any attempt starts and clear
    /// it after they have all returned; one listener at a time.
    void set_commit_listener(std::function<void()> listener) { commit_listener_ = std::move(listener); }

    /// Errors met on the way to the outcome, oldest first (retries, fallbacks, hedges).
    void note_error(const error& e) {
        std::lock_guard<std::mutex> lock(mutex_);
        errors_.push_back(e);
    }
    /// Notes the error an outcome failed with, unless it is the error noted last (the same error,
    /// or a copy of it): every layer an outcome passes may call this, and a refusal made by a
    /// policy (no attempt noted it) is recorded once, as is the call's final error.
    void note_outcome(const error& e) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!errors_.empty() && &errors_.back().details() == &e.details()) return;
        errors_.push_back(e);
    }
    /// An attempt ended; the client records each one.
    void note_attempt(attempt_record record) {
        std::lock_guard<std::mutex> lock(mutex_);
        attempt_log_.push_back(std::move(record));
    }
    std::vector<attempt_record> attempt_log() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return attempt_log_;
    }
    std::vector<error> errors() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return errors_;
    }

    /// A fallback or split took the call to another route.
    void note_route(const std::string& name, bool fallback) {
        std::lock_guard<std::mutex> lock(mutex_);
        route_ = name;
        if (fallback) ++fallbacks_;
    }
    /// A hedged attempt started.
    void note_hedge() noexcept { hedges_.fetch_add(1, std::memory_order_relaxed); }
    int hedges() const noexcept { return hedges_.load(std::memory_order_relaxed); }
    std::string route_name() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return route_;
    }
    int fallbacks() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return fallbacks_;
    }

private:
    std::atomic<int> attempts_{0};
    std::atomic<int> owner_{0};
    std::atomic<int> hedges_{0};
    mutable std::mutex mutex_;
    std::vector<error> errors_;
    std::vector<attempt_record> attempt_log_;
    std::string route_;
    int fallbacks_ = 0;
    std::function<void()> commit_listener_;
};

/// One call as policies see it: what it is, where it goes, how long it may take. Policies narrow
/// it for the attempts they make, and copy it for attempts on other threads.
struct call_context {
    call_context(operation what, std::string_view requested_model, call_state& shared)
        : op(what), model(requested_model), state(&shared) {}

    operation op;
    /// The model the request names; `route->model` replaces it when set.
    std::string_view model;
    /// Estimated prompt tokens of the request, for token limits and context-window checks.
    std::int64_t estimated_prompt_tokens = 0;
    /// The most tokens the reply may add (max_tokens), when the request bounds it.
    std::optional<std::int64_t> max_output_tokens;

    /// The call's deadline; inside a per-attempt timeout, that attempt's.
    sturdy::deadline deadline;
    /// The longest one attempt may take (request_options::timeout; else the client's own).
    std::optional<std::chrono::milliseconds> attempt_timeout;
    /// Headers every attempt of this call adds to the endpoint's (request_options::headers).
    header_list headers;
    /// Streams: the longest wait for the first content, and the longest gap between chunks.
    std::optional<std::chrono::milliseconds> first_token_timeout;
    std::optional<std::chrono::milliseconds> idle_timeout;
    cancellation_token cancel;
    /// Set by routing policies; null means the client's endpoint and the request's model.
    std::shared_ptr<const sturdy::route> route;
    /// Names of routes this call prefers, in order (request_options::route_order); routing
    /// policies try these first.
    std::vector<std::string> route_order;
    /// The one route this call may take (request_options::pinned_route); empty: any.
    std::string pinned_route;
    /// A shadow attempt: its reply is recorded but never delivered to the caller's callback.
    bool silent = false;
    /// The call's hints for policies that read them (request_options::properties).
    property_bag properties;

    call_state* state;
    /// Waits and branches of this call (sturdy/executor.hpp); set by whoever runs the call.
    executor* exec = nullptr;
    /// Where the call's policies report (sturdy/events.hpp); null: only their own hooks.
    event_sink* events = nullptr;

    /// The model this attempt will ask for.
    std::string_view effective_model() const noexcept {
        return route && !route->model.empty() ? std::string_view(route->model) : model;
    }
};

namespace detail {

/// Where an event a policy reports comes from: the policy, and the route its call is on.
inline event_source source(const call_context& ctx, std::string_view policy) noexcept {
    return {policy, ctx.route ? std::string_view(ctx.route->name) : std::string_view{}};
}

}  // namespace detail

/// The policy that does nothing: one attempt, its outcome returned as is.
struct no_policy {
    template <class T, class Next, class Done>
    void start(call_context& ctx, Next next, Done done) const {
        next(ctx, std::move(done));
    }
    template <class Attempt>
    auto execute(call_context& ctx, Attempt&& attempt) const -> decltype(attempt(ctx)) {
        return attempt(ctx);
    }
};

}  // namespace sturdy

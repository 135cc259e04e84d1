#pragma once
/// @file
/// Where the decision cores keep what they share: the state behind a rate limiter, a circuit
/// breaker and a retry budget, reached through one small interface so that it can live outside
/// the process (a store shared by several processes or hosts) without changing the policies.
///
///     auto circuits = std::make_shared<sturdy::local_store<sturdy::circuit_breaker_state>>();
///     sturdy::circuit_breaker_options o;
///     o.name = "openai";
///     o.store = circuits;    // every breaker named "openai" on `circuits` shares one circuit
///
/// The key is the policy's name (`policy_options::name`; `retry_budget_options::name` for a
/// budget): two policies of one name on one store share their state by design, whichever client
/// they are in, and a store kept outside the process extends that across processes. A `per_route`
/// factory names each instance after its route, so each route keeps its own state. Policies that
/// share a key must be made with the same options: the state starts from the options of the first
/// one to use it (a limiter's window sizes live in its state).
///
/// A policy given no store keeps its state in a `local_store` of its own, shared by its copies
/// alone: what every policy did before stores existed.
///
/// The contract of `update`, which a store kept elsewhere must keep too:
/// - `change` runs on the state of `key` as one step that no other change to that key interleaves
///   with; a key not yet there starts as a copy of `initial`.
/// - `change` may run more than once for one update, each time on a fresh copy of the state as the
///   store has it, and only the last run counts: a store that works optimistically (read, change,
///   write if nobody wrote meanwhile) runs it again after a conflict. So `change` touches only the
///   state and its own locals, which each run sets anew, and only decides: it calls no hook, emits
///   no event, waits for nothing and reads no clock (the caller reads the time before and passes
///   it in). Whatever the decision leads to (an event, a wait, a refusal) happens after `update`
///   returns, from what the last run left in the caller's locals.
/// - `update` does not return before the change is in the state: a later update to the key, from
///   any thread, sees it.
/// - State types are plain values: copyable, holding no pointer, mutex or callback, so that a store
///   can copy them, and one kept elsewhere can serialise them.

#include <sturdy/clock.hpp>
#include <sturdy/detail/function_ref.hpp>

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sturdy {

/// The states of one kind of decision core, by key. See the top of this file for the contract.
template <class State>
class state_store {
public:
    using state_type = State;

    virtual ~state_store() = default;

    /// Applies `change` to the state kept under `key` as one step no other change to that key
    /// interleaves with; a key not yet there starts from `initial` (given by the policy). `change`
    /// may run more than once, only the last run counting: it must touch nothing but the state and
    /// its own locals.
    virtual void update(std::string_view key, const State& initial, detail::function_ref<void(State&)> change) = 0;
};

/// The store in this process: a map of states behind one mutex, `change` running once under it.
/// A policy given no store keeps a `local_store` of its own; share one among policies (of this
/// process) to share their states by name.
template <class State>
class local_store final : public state_store<State> {
public:
    void update(std::string_view key, const State& initial, detail::function_ref<void(State&)> change) override {
        std::lock_guard<std::mutex> lock(mutex_);
        // Most stores serve one key, or one key again and again: remember the last one found, so
        // that the hot key costs a comparison rather than a search.
        if (!last_ || last_->first != key) {
            auto it = states_.find(key);
            if (it == states_.end()) it = states_.emplace(std::string(key), initial).first;
            last_ = &*it;
        }
        change(last_->second);
    }

private:
    std::mutex mutex_;
    std::map<std::string, State, std::less<>> states_;     // node-based: `last_` stays valid
    std::pair<const std::string, State>* last_ = nullptr;  // the entry the last update found
};

namespace detail {

/// A policy's state in its store: the store (the options' one, or a private local store), the key
/// (the policy's name) and the state a new key starts from. The one way the three cores reach
/// their state, so that they take and use a store alike.
template <class State>
class stored_state {
public:
    stored_state(std::shared_ptr<state_store<State>> store, std::string key, State initial)
        : store_(store ? std::move(store) : std::make_shared<local_store<State>>()), key_(std::move(key)),
          initial_(std::move(initial)) {}

    /// Runs `change(State&)` as one step, by the store's contract (see the top of this file).
    template <class Change>
    void update(Change&& change) const {
        store_->update(key_, initial_, change);
    }

    /// What `look(const State&)` returns, read in one step.
    template <class Look>
    auto read(Look&& look) const {
        decltype(look(std::declval<const State&>())) seen{};
        update([&](State& s) { seen = look(static_cast<const State&>(s)); });
        return seen;
    }

private:
    std::shared_ptr<state_store<State>> store_;
    std::string key_;
    State initial_;
};

/// The random numbers a change draws, the same on every run of it: the first run draws from the
/// source, later runs (after rewind()) replay those draws, so that a store that runs a change again
/// gets the same decision from it (a jittered break, for one).
class replayed_random final : public random_source {
public:
    explicit replayed_random(random_source& source) noexcept : source_(source) {}

    /// A new run of the change starts: it sees the same draws again.
    void rewind() noexcept { next_ = 0; }

    double next_unit() override {
        if (next_ == drawn_.size()) drawn_.push_back(source_.next_unit());
        return drawn_[next_++];
    }

private:
    random_source& source_;
    std::vector<double> drawn_;
    std::size_t next_ = 0;
};

}  // namespace detail
}  // namespace sturdy

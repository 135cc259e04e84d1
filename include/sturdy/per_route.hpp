#pragma once
/// @file
/// Keyed policies: one instance of a policy per route, made on first use.
///
/// A breaker or a limiter usually guards one backend. Placed once in a pipeline, it would guard
/// every route together: with the primary down, its open circuit would refuse the healthy backups
/// too. `per_route(factory)` keeps one policy per route a call goes to (a fallback target, a split
/// arm; "" for the client's own endpoint), made by `factory(route_name)` the first time that route
/// is used, as Polly's registry keys pipelines. Write it once, wherever it sits:
///
///     auto breaker_for = [](const std::string& route) {
///         sturdy::circuit_breaker_options o;
///         o.name = route;                       // the idiom: each instance named after its route
///         return sturdy::circuit_breaker(o);
///     };
///     // inside the chain, so each target's attempts meet that target's breaker...
///     auto policy = sturdy::compose(sturdy::fallback_policy(targets), sturdy::retry_policy(),
///                                   sturdy::per_route(breaker_for));
///     // ...or as every target's own policy: fallback_target(...).with_policy(keyed), one `keyed`
///     // shared by all targets.
///
/// The factory is handed the route's name so that it can name the policy after it
/// (`policy_options::name`): the instances' events then say which route's breaker opened
/// (`event_source::policy` "kimi" rather than "circuit_breaker" for every route), as do their
/// errors and stats. For the client's own endpoint the name is "", and an empty name is the
/// policy's kind.
///
/// Copies share the instances, so a copy kept outside the client can look one up: `get("kimi")`.

#include <sturdy/executor.hpp>
#include <sturdy/policy.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace sturdy {

/// One `Policy` per route, made by a factory on first use. See the top of this file.
template <class Factory>
class per_route_policy : public blocking_form<per_route_policy<Factory>> {
public:
    /// The policy each route gets.
    using policy_type = std::decay_t<std::invoke_result_t<Factory&, const std::string&>>;

    explicit per_route_policy(Factory factory) : state_(std::make_shared<state>(std::move(factory))) {}

    template <class T, class Next, class Done>
    void start(call_context& ctx, Next next, Done done) const {
        const std::string_view route = ctx.route ? std::string_view(ctx.route->name) : std::string_view();
        detail::start_layer<T>(*instance(route), ctx, std::move(next), std::move(done));
    }

    /// The policy of `route` ("" for the client's own endpoint), made now if no call used it yet.
    /// Policies are handles: the copy returned shares its state with the one calls use.
    policy_type get(std::string_view route) const { return *instance(route); }

    /// The routes that have a policy so far, in name order.
    std::vector<std::string> routes() const {
        std::shared_lock<std::shared_mutex> lock(state_->mutex);
        std::vector<std::string> names;
        for (const auto& entry : state_->policies) names.push_back(entry.first);
        return names;
    }

private:
    struct state {
        explicit state(Factory f) : factory(std::move(f)) {}
        Factory factory;
        mutable std::shared_mutex mutex;
        std::map<std::string, std::shared_ptr<const policy_type>, std::less<>> policies;
    };

    std::shared_ptr<const policy_type> instance(std::string_view route) const {
        {
            std::shared_lock<std::shared_mutex> lock(state_->mutex);
            if (auto it = state_->policies.find(route); it != state_->policies.end()) return it->second;
        }
        std::unique_lock<std::shared_mutex> lock(state_->mutex);
        auto it = state_->policies.find(route);
        if (it == state_->policies.end()) {
            // Made under the lock, so two first calls on one route cannot make two policies.
            std::string name(route);
            auto made = std::make_shared<const policy_type>(state_->factory(name));
            it = state_->policies.emplace(std::move(name), std::move(made)).first;
        }
        return it->second;
    }

    std::shared_ptr<state> state_;
};

/// `per_route(factory)`: a policy per route, `factory(route_name)` making each on first use.
template <class Factory>
per_route_policy<std::decay_t<Factory>> per_route(Factory&& factory) {
    return per_route_policy<std::decay_t<Factory>>(std::forward<Factory>(factory));
}

}  // namespace sturdy

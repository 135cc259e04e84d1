#pragma once
// What the routing policies (fallback.hpp, traffic_split.hpp) share: building a named route,
// refusing two of one name, and the order in which a call may take the routes. (Each policy
// points the call's context at a route when it starts that route's policy and puts the outer
// route back when the outcome arrives: a scope cannot span a continuation.)

#include <sturdy/options.hpp>
#include <sturdy/error.hpp>
#include <sturdy/policy.hpp>
#include <sturdy/result.hpp>
#include <sturdy/detail/option_check.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sturdy::detail {

/// A route to `model` at `at`. A route needs a name for reports: an empty one takes the model's.
inline sturdy::route make_route(std::string name, std::string model, std::shared_ptr<const endpoint> at) {
    if (name.empty()) name = model;
    return sturdy::route{std::move(name), std::move(at), std::move(model)};
}

/// A shared, immutable copy of `r`, so a context can point at it without copying per call. A route
/// still without a name is called "route N" (1-based), by its place in the policy.
inline std::shared_ptr<const sturdy::route> share_route(sturdy::route r, std::size_t index) {
    if (r.name.empty()) r.name = "route " + std::to_string(index + 1);
    return std::make_shared<const sturdy::route>(std::move(r));
}

/// Where the route named `name` stands among `entries` (each with a `route` pointer), or npos.
template <class Entries>
std::size_t find_route(const Entries& entries, std::string_view name) {
    for (std::size_t i = 0; i < entries.size(); ++i)
        if (entries[i].route->name == name) return i;
    return static_cast<std::size_t>(-1);
}

/// Refuses two routes of one name among `entries`: a name is how a call pins or prefers a route,
/// and how stats and per_route tell routes apart.
template <class Entries>
void require_distinct_names(const Entries& entries, std::string_view policy, std::string_view kind) {
    for (std::size_t i = 0; i < entries.size(); ++i) {
        const std::string& name = entries[i].route->name;
        if (find_route(entries, name) == i) continue;
        require_option(false, policy, std::string(kind) + ".route.name",
                       "must differ from the others': '" + name + "' names two");
    }
}

/// The error for a call pinned to a route that the policy does not have.
inline error unknown_pinned_route(std::string_view name) {
    return error(error_kind::invalid_argument,
                 "the call is pinned to route '" + std::string(name) + "', which this policy does not have");
}

/// The routes a call may take, as indices into `entries`, in the order it tries them: only the
/// pinned route when the call pins one (request_options::pinned_route), else the names of its
/// route_order first, then the rest in the order given. An unknown pinned route is the caller's
/// mistake: invalid_argument.
template <class Entries>
result<std::vector<std::size_t>> route_plan(const Entries& entries, const call_context& ctx) {
    std::vector<std::size_t> order;
    if (!ctx.pinned_route.empty()) {
        const auto i = find_route(entries, ctx.pinned_route);
        if (i >= entries.size()) return unknown_pinned_route(ctx.pinned_route);
        order.push_back(i);
        return order;
    }
    order.reserve(entries.size());
    std::vector<bool> taken(entries.size(), false);
    for (const auto& name : ctx.route_order) {
        const auto i = find_route(entries, name);
        if (i < entries.size() && !taken[i]) {
            taken[i] = true;
            order.push_back(i);
        }
    }
    for (std::size_t i = 0; i < entries.size(); ++i)
        if (!taken[i]) order.push_back(i);
    return order;
}

/// Whether two routes authenticate with the same credentials. A route without an endpoint of its
/// own uses the client's.
inline bool same_credentials(const sturdy::route& a, const sturdy::route& b) {
    if (!a.endpoint || !b.endpoint) return !a.endpoint && !b.endpoint;
    return a.endpoint->api_key == b.endpoint->api_key;
}

}  // namespace sturdy::detail

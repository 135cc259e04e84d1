#pragma once
// What the routing policies (fallback.hpp, traffic_split.hpp) share: building a named route, and
// pointing a call's context at a route for the attempts made for it.

#include <sturdy/options.hpp>
#include <sturdy/policy.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

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

/// Points a context at a route for the attempts made while it lives, then restores the route it had.
class scoped_route {
public:
    scoped_route(call_context& ctx, std::shared_ptr<const sturdy::route> to) : ctx_(ctx), saved_(std::exchange(ctx.route, std::move(to))) {}
    ~scoped_route() { ctx_.route = std::move(saved_); }
    scoped_route(const scoped_route&) = delete;
    scoped_route& operator=(const scoped_route&) = delete;

private:
    call_context& ctx_;
    std::shared_ptr<const sturdy::route> saved_;
};

/// Where the route named `name` stands among `entries` (each with a `route` pointer), or npos.
template <class Entries>
std::size_t find_route(const Entries& entries, std::string_view name) {
    for (std::size_t i = 0; i < entries.size(); ++i)
        if (entries[i].route->name == name) return i;
    return static_cast<std::size_t>(-1);
}

}  // namespace sturdy::detail

#pragma once
/// @file
/// What the options of every policy share: a name, and which failures the policy acts on.
///
/// Every policy's options derive from `policy_options`, and every policy reads them by the same
/// rules:
/// - `name` names the policy in events (`event_source::policy`), errors and stats. Empty: the
///   policy's kind ("retry", "circuit_breaker", "rate_limiter", "bulkhead", "fallback",
///   "traffic_split", "hedging"). A `per_route` factory names each instance after its route
///   (`o.name = route`), so its events and errors say which route's policy acted.
/// - `should_handle` chooses the failed outcomes the policy acts on: those a retry retries, a
///   breaker counts as failures, a fallback moves on from, a hedge starts at once for, a split's
///   guard counts against its arm. Empty: the policy's documented default, never "none" or "all".
/// - Options that make no sense throw std::invalid_argument when the policy is made, naming the
///   policy and the field; none is clamped in silence.

#include <sturdy/error.hpp>

#include <functional>
#include <string>
#include <string_view>

namespace sturdy {

/// A predicate over a failed outcome's error.
using error_predicate = std::function<bool(const error&)>;

/// The part of every policy's options that means the same in each.
struct policy_options {
    /// Names the policy in events, errors and stats, and keys its state in a store
    /// (state_store.hpp). Empty: the policy's kind.
    std::string name{};
    /// Which failures the policy acts on. Empty: the policy's documented default.
    error_predicate should_handle{};
};

/// A policy's error predicate, by the one rule every policy follows: an empty predicate means the
/// documented default.
inline bool matches(const error_predicate& predicate, bool (*default_predicate)(const error&), const error& e) {
    return predicate ? predicate(e) : default_predicate(e);
}

/// The predicate that matches every error.
inline bool any_error(const error&) { return true; }

namespace detail {

/// `options` with its name filled in: the policy's kind when the user gave none.
template <class Options>
Options named(Options options, std::string_view kind) {
    if (options.name.empty()) options.name = std::string(kind);
    return options;
}

}  // namespace detail
}  // namespace sturdy

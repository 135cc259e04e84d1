#pragma once
// The one validation rule of every policy: options that make no sense are refused when the policy
// is made, with std::invalid_argument naming the policy and the field, never clamped in silence.

#include <stdexcept>
#include <string>
#include <string_view>

namespace sturdy::detail {

/// Throws std::invalid_argument("sturdy::POLICY: FIELD RULE") unless `ok`.
inline void require_option(bool ok, std::string_view policy, std::string_view field, std::string_view rule) {
    if (ok) return;
    std::string message = "sturdy::";
    message.append(policy).append(": ").append(field).append(" ").append(rule);
    throw std::invalid_argument(message);
}

}  // namespace sturdy::detail

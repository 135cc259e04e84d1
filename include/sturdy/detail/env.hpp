#pragma once
// Reading the environment.

#include <cstdlib>
#include <string>

namespace sturdy::detail {

/// The variable's value, or `fallback` when it is unset or empty.
inline std::string env_or(const char* name, std::string fallback = {}) {
    const char* value = std::getenv(name);
    return (value && *value) ? std::string(value) : fallback;
}

}  // namespace sturdy::detail

#pragma once
// Durations in messages, the same way everywhere: "250 ms", "2.5 s", "30 s".

#include <sturdy/clock.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>

namespace sturdy::detail {

/// A duration for an error or event message, rounded up so it never understates a wait.
inline std::string duration_text(clock::duration d) {
    const auto ms = std::max<std::int64_t>(std::chrono::ceil<std::chrono::milliseconds>(d).count(), 0);
    if (ms < 1000) return std::to_string(ms) + " ms";
    if (ms >= 10000 || ms % 1000 == 0) return std::to_string((ms + 999) / 1000) + " s";
    const auto tenths = (ms + 99) / 100;
    return std::to_string(tenths / 10) + (tenths % 10 ? "." + std::to_string(tenths % 10) : std::string()) + " s";
}

}  // namespace sturdy::detail

#pragma once
/// @file
/// What a call went through: attempts, timing, where it was answered. Every response carries one
/// (`reply.call`), and so does the error a failed call ends with (`error.call()`).

#include <sturdy/error.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace sturdy {

/// How a call went, beyond its payload.
struct call_info {
    /// Attempts made, the successful one included (1 when nothing was retried).
    int attempts = 0;
    /// From the call's start to its result, every retry and wait included.
    std::chrono::microseconds latency{0};
    /// For streams: from the call's start to the first content delivered to the caller.
    std::optional<std::chrono::microseconds> time_to_first_token{};
    /// The answering reply's x-request-id.
    std::string request_id{};
    /// For streams: the caller's callback returned false, so the reply is partial by request.
    bool stopped_early = false;
    /// The route (fallback target, split arm) that answered, or for a failed call the last one
    /// tried; empty for the client's own endpoint.
    std::string route{};
    /// Times a fallback chain moved on to its next target.
    int fallbacks = 0;
    /// Hedged attempts started beside the first.
    int hedges = 0;
    /// Every error met on the way, oldest first; for a failed call, the last is the call's error.
    std::vector<error> errors{};
};

}  // namespace sturdy

#pragma once
/// @file
/// What one attempt saw of its reply. The client's attempts attach it to the outcome they return
/// (`result::observation()`), so a policy reads what its own attempt saw (a limiter the usage and
/// the x-ratelimit-* headers, a split's guard the latency) from the outcome it is given, and a
/// caller reads the answering attempt's headers from the reply it gets.

#include <sturdy/http.hpp>
#include <sturdy/usage.hpp>

#include <chrono>
#include <optional>

namespace sturdy {

struct reply_observation {
    /// The HTTP status; 0 when no reply came.
    int status = 0;
    response_headers headers;
    std::optional<token_usage> usage;
    /// From the attempt's start to its reply (to its first content, for a stream that delivered).
    std::chrono::microseconds latency{0};
    /// Streams: this attempt won the commit gate and delivered content to the caller.
    bool delivered = false;
    /// Streams: chunks carrying content, and the time from the first of them to the last
    /// (`attempt_record::content_chunks`, `generation_time`).
    int content_chunks = 0;
    std::chrono::microseconds generation_time{0};
};

}  // namespace sturdy

#pragma once
/// @file
/// What a call went through: attempts, timing, where it was answered. Every response carries one
/// (`reply.call`), and so does the error a failed call ends with (`error.call()`).

#include <sturdy/error.hpp>
#include <sturdy/usage.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sturdy {

/// One attempt of a call, as the client made it.
struct attempt_record {
    /// 1 for the call's first attempt; hedges and retries count on from there.
    int number = 0;
    /// The route it went to (fallback target, split arm); empty for the client's own endpoint.
    std::string route{};
    /// The model it asked for.
    std::string model{};
    /// The HTTP status of its reply; 0 when none came.
    int status = 0;
    /// From its start to its reply; for a stream, to its first content, or to its end when it
    /// delivered none.
    std::chrono::microseconds latency{0};
    /// Streams: from this attempt's start to its first content, when it delivered some.
    std::optional<std::chrono::microseconds> time_to_first_token{};
    /// Streams: the chunks it received that carry content (text, reasoning, a tool call, a refusal,
    /// a finish reason), the first included; 0 for a reply that is not a stream.
    int content_chunks = 0;
    /// Streams: from its first content to its last content chunk, when it delivered some; with
    /// `content_chunks`, the mean gap between chunks (inter-token latency) and its tokens per second.
    std::optional<std::chrono::microseconds> generation_time{};
    /// What it failed with; empty for the attempt that answered.
    std::optional<error> failure{};
};

/// An attempt about to be sent (`event_sink::on_attempt_start`); its `attempt_record` follows
/// when it ends, whatever its outcome.
struct attempt_start {
    /// As `attempt_record::number`, `route` and `model` of the record that follows.
    int number = 0;
    std::string_view route{};
    std::string_view model{};
};

/// How a call went, beyond its payload.
struct call_info {
    /// Attempts made, the successful one included (1 when nothing was retried).
    int attempts = 0;
    /// From the call's start to its result, every retry and wait included.
    std::chrono::microseconds latency{0};
    /// For streams: from the call's start to the first content delivered to the caller, every
    /// retry, Retry-After and queue wait before it included.
    std::optional<std::chrono::microseconds> time_to_first_token{};
    /// For streams: from the answering attempt's own start to its first content, what compares
    /// one provider with another.
    std::optional<std::chrono::microseconds> attempt_time_to_first_token{};
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
    /// The model the route that answered asked for (for a failed call, the last attempt's on
    /// `route`): a route's own model where it has one; the request's when no attempt went there.
    std::string model{};
    /// The call failed: its error is the last of `errors`, and this report is its `error::call()`.
    bool failed = false;
    /// Every error met on the way, oldest first, a policy's own refusals included; for a failed
    /// call, the last is the call's error.
    std::vector<error> errors{};
    /// Every attempt made, in the order each ended.
    std::vector<attempt_record> attempt_log{};
    /// The tokens the reply used, as the server counted them (a failed stream: what it received);
    /// unset when the server reported none, and for models().
    std::optional<token_usage> usage{};
    /// What the tokens of the reply cost, in US dollars, by `client_options::prices`: for a failed
    /// call, of what its stream received (`error::partial_response()`'s usage). Unset when the
    /// tokens or the model's price are unknown, never a guess. Attempts that failed without
    /// reporting usage (a retried error, a cancelled hedge) are not in it.
    std::optional<double> cost_usd{};
    /// The price-table entry `cost_usd` was computed with, e.g. "gpt-4o-mini" for a reply from
    /// "gpt-4o-mini-2024-07-18"; empty when `cost_usd` is unset.
    std::string priced_model{};
};

}  // namespace sturdy

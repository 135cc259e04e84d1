#pragma once
/// @file
/// Where a client sends its calls, as whom, and how long it waits.

#include <sturdy/cancellation.hpp>
#include <sturdy/detail/env.hpp>
#include <sturdy/events.hpp>
#include <sturdy/http.hpp>
#include <sturdy/pricing.hpp>
#include <sturdy/properties.hpp>
#include <sturdy/tokens.hpp>
#include <sturdy/version.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sturdy {

/// An OpenAI-compatible API and the credentials for it.
struct endpoint {
    /// The API's base URL, up to and including the version ("https://api.openai.com/v1").
    std::string base_url = "https://api.openai.com/v1";
    /// Sent as "Authorization: Bearer <key>"; never written into an error or log line.
    std::string api_key;
    /// Sent as OpenAI-Organization / OpenAI-Project when set.
    std::string organization;
    std::string project;
    /// Sent with every request.
    header_list default_headers;
};

/// Settings of a client.
///
///     auto opts = sturdy::client_options::from_env();     // OPENAI_BASE_URL, OPENAI_API_KEY...
///     opts.timeout = std::chrono::seconds(30);
struct client_options : endpoint {
    /// Longest wait for a connection.
    std::chrono::milliseconds connect_timeout = std::chrono::seconds(5);
    /// Longest wait for one attempt, from request to the end of the reply (streams included).
    std::chrono::milliseconds timeout = std::chrono::seconds(600);
    std::string user_agent = "sturdy/" STURDY_VERSION;
    /// Largest reply body read, or whole stream, after decompression. Past it a call fails with
    /// `invalid_response`, code `response_too_large`. The default holds the largest embeddings
    /// batch OpenAI allows (2,048 inputs of 3,072 dimensions) even as JSON floats, about 90 MB.
    std::size_t max_response_bytes = std::size_t{128} << 20;
    /// Largest line or event of a stream. Past it a call fails with `invalid_response`, code
    /// `event_too_large`. A chunk is a few hundred bytes; a whole reply sent as one event fits.
    std::size_t max_event_bytes = std::size_t{16} << 20;
    /// Counts each request's prompt tokens before it is sent, for the policies that need the
    /// number (a fallback chain's context windows, a rate limiter's token budget). The estimate
    /// by default; `token_counter(your_tokenizer)` makes every policy exact at once.
    token_counter tokens;
    /// Prices every reply's tokens into `call_info::cost_usd` (pricing.hpp). By default the table
    /// sturdy ships (`price_table::builtin()`, dated); set your own, or nullptr for no cost at all.
    std::shared_ptr<const price_table> prices = price_table::builtin();
    /// Receives the events of every call this client makes, from its policies and itself
    /// (events.hpp). Null: only each policy's own hooks.
    std::shared_ptr<event_sink> events;

    /// OpenAI's variables: OPENAI_BASE_URL (default https://api.openai.com/v1), OPENAI_API_KEY,
    /// OPENAI_ORG_ID and OPENAI_PROJECT_ID.
    static client_options from_env() {
        client_options o;
        o.base_url = detail::env_or("OPENAI_BASE_URL", o.base_url);
        o.api_key = detail::env_or("OPENAI_API_KEY");
        o.organization = detail::env_or("OPENAI_ORG_ID");
        o.project = detail::env_or("OPENAI_PROJECT_ID");
        return o;
    }
};

/// Settings of one call, over the client's.
struct request_options {
    /// Replaces the client's per-attempt timeout.
    std::optional<std::chrono::milliseconds> timeout;
    /// A bound on the whole call: every attempt, retry wait and stream included.
    std::optional<std::chrono::milliseconds> total_timeout;
    /// Streams: longest wait from the start of an attempt to its first content.
    std::optional<std::chrono::milliseconds> first_token_timeout;
    /// Streams: longest gap between two chunks.
    std::optional<std::chrono::milliseconds> idle_timeout;
    /// Extra headers for this call.
    header_list headers;
    /// Cancels the call from another thread.
    cancellation_token cancel;
    /// Routes (fallback targets, split arms) to try first, by name, for this call only.
    std::vector<std::string> route_order;
    /// The one route (fallback target, split arm) this call may take, by name. A pinned route that
    /// fails fails the call with its own error: it never answers from elsewhere. A name the
    /// routing policy does not have is invalid_argument.
    std::string pinned_route;
    /// Hints for policies of your own, read as `call_context::properties` (properties.hpp).
    property_bag properties;
};

}  // namespace sturdy

#pragma once
/// @file
/// The error model: one error type, classified by kind, carrying what the provider said.

#include <sturdy/safe_text.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace sturdy {

/// What went wrong. The HTTP kinds follow the official SDKs' error classes and status mapping.
enum class error_kind {
    bad_request,              ///< 400
    authentication,           ///< 401
    permission_denied,        ///< 403
    not_found,                ///< 404
    conflict,                 ///< 409
    unprocessable_entity,     ///< 422
    rate_limit,               ///< 429
    internal_server,          ///< 500 and above
    api_status,               ///< any other error status
    context_length_exceeded,  ///< a bad request whose prompt does not fit the model's context window
    connection,               ///< no usable HTTP reply: refused, reset, DNS, TLS
    timeout,                  ///< a timeout or deadline passed
    invalid_response,         ///< a successful reply whose body is not what the API promises
    stream_truncated,         ///< a stream ended without [DONE] and without a finish reason
    cancelled,                ///< the caller cancelled the call
    invalid_argument,         ///< the request cannot be sent as given (a malformed URL, say)
    circuit_open,             ///< a circuit breaker refused the call
    rate_limited,             ///< a client-side limiter (rate, concurrency, budget) refused the call
};

/// How many kinds there are, for tables indexed by kind.
inline constexpr std::size_t error_kind_count = static_cast<std::size_t>(error_kind::rate_limited) + 1;

/// The kind's name, as the CLI prints it: "rate_limit", "stream_truncated"...
constexpr std::string_view to_string(error_kind kind) noexcept {
    switch (kind) {
        case error_kind::bad_request: return "bad_request";
        case error_kind::authentication: return "authentication";
        case error_kind::permission_denied: return "permission_denied";
        case error_kind::not_found: return "not_found";
        case error_kind::conflict: return "conflict";
        case error_kind::unprocessable_entity: return "unprocessable_entity";
        case error_kind::rate_limit: return "rate_limit";
        case error_kind::internal_server: return "internal_server";
        case error_kind::api_status: return "api_status";
        case error_kind::context_length_exceeded: return "context_length_exceeded";
        case error_kind::connection: return "connection";
        case error_kind::timeout: return "timeout";
        case error_kind::invalid_response: return "invalid_response";
        case error_kind::stream_truncated: return "stream_truncated";
        case error_kind::cancelled: return "cancelled";
        case error_kind::invalid_argument: return "invalid_argument";
        case error_kind::circuit_open: return "circuit_open";
        case error_kind::rate_limited: return "rate_limited";
    }
    return "unknown";
}

/// The kind the official SDKs give an HTTP error status.
constexpr error_kind kind_for_status(int status) noexcept {
    switch (status) {
        case 400: return error_kind::bad_request;
        case 401: return error_kind::authentication;
        case 403: return error_kind::permission_denied;
        case 404: return error_kind::not_found;
        case 409: return error_kind::conflict;
        case 422: return error_kind::unprocessable_entity;
        case 429: return error_kind::rate_limit;
        default: return status >= 500 ? error_kind::internal_server : error_kind::api_status;
    }
}

/// Codes sturdy gives the errors it raises itself, without a server's word (error::code()).
namespace error_codes {
/// A timeout raised before an attempt was sent: the call's deadline left no time for it.
inline constexpr std::string_view deadline_exceeded = "deadline_exceeded";
/// rate_limited by a rate limiter: its requests, or its tokens, had no room in time.
inline constexpr std::string_view requests_limit = "requests_limit";
inline constexpr std::string_view tokens_limit = "tokens_limit";
/// rate_limited: the request alone needs more tokens than the limiter's cap (plus burst) allows.
inline constexpr std::string_view request_too_large = "request_too_large";
/// rate_limited by a bulkhead: its queue was full, or no slot freed in time.
inline constexpr std::string_view bulkhead_full = "bulkhead_full";
inline constexpr std::string_view bulkhead_timeout = "bulkhead_timeout";
/// invalid_response: the reply body passed client_options::max_response_bytes.
inline constexpr std::string_view response_too_large = "response_too_large";
/// invalid_response: a stream's line or event passed client_options::max_event_bytes.
inline constexpr std::string_view event_too_large = "event_too_large";
/// rate_limited by a fallback chain: every target it could call is cooling down after a 429.
inline constexpr std::string_view routes_cooling_down = "routes_cooling_down";
/// invalid_argument: a policy asked for another attempt of a stream that had delivered content to
/// the caller; the client refused it, since the caller would see a second reply.
inline constexpr std::string_view stream_committed = "stream_committed";
/// api_status: the server answered with a redirect, which sturdy does not follow.
inline constexpr std::string_view redirect = "redirect";
/// not_found from a model_catalog: the endpoint does not serve the model named. It is also the code
/// OpenAI's own reply carries, so one check covers both.
inline constexpr std::string_view model_not_found = "model_not_found";
}  // namespace error_codes

struct chat_response;  // chat.hpp

/// Everything known about a failure. Its strings never contain the API key; `partial_response`
/// is reply data, kept exactly as the server sent it and the caller's callback received it (a
/// successful reply's content is never altered either).
struct error_details {
    int status = 0;               ///< HTTP status; 0 when there was none
    std::string message;          ///< the provider's message, or ours
    std::string type;             ///< the provider's error type ("invalid_request_error"...)
    std::string code;             ///< the provider's error code ("insufficient_quota"...)
    std::string param;            ///< the request parameter the provider blamed
    std::string request_id;       ///< x-request-id
    std::string body;             ///< the raw reply body, truncated
    std::optional<std::chrono::milliseconds> retry_after;  ///< from retry-after-ms / retry-after
    std::optional<bool> should_retry;                      ///< the server's x-should-retry, if sent
    /// Everything a stream delivered before it failed, assembled as a reply: content, reasoning
    /// (`message.extra["reasoning_content"]`), tool-call fragments, finish reasons and usage.
    std::shared_ptr<const chat_response> partial_response;
    /// The text a stream delivered before it failed: `partial_response`'s first choice content,
    /// shared with it (a reply near the size limit is held once).
    std::shared_ptr<const std::string> partial_content;
};

struct call_info;  // call_info.hpp: what a call went through

/// A failed call. Thrown by the throwing API, held by `result<T>` in the non-throwing one.
///
/// `what()` reads "KIND [STATUS]: MESSAGE", the status only when there was one (an HTTP status,
/// 100 to 999), with any terminal control character the server put in the message written out
/// (see sturdy::printable); the details keep the text as it was sent.
class error : public std::runtime_error {
public:
    error(error_kind kind, error_details details)
        : std::runtime_error(describe(kind, details)),
          kind_(kind),
          details_(std::make_shared<const error_details>(std::move(details))) {}

    error(error_kind kind, std::string message, int status = 0)
        : error(kind, with_message(std::move(message), status)) {}

    error_kind kind() const noexcept { return kind_; }
    /// True for the kind itself and for its parent: a context_length_exceeded error is a bad_request.
    bool is(error_kind k) const noexcept {
        return k == kind_ || (k == error_kind::bad_request && kind_ == error_kind::context_length_exceeded);
    }
    const error_details& details() const noexcept { return *details_; }
    int status() const noexcept { return details_->status; }
    const std::string& message() const noexcept { return details_->message; }
    const std::string& type() const noexcept { return details_->type; }
    const std::string& code() const noexcept { return details_->code; }
    const std::string& param() const noexcept { return details_->param; }
    const std::string& request_id() const noexcept { return details_->request_id; }
    const std::string& body() const noexcept { return details_->body; }
    /// The text a stream delivered before it failed; empty when none arrived.
    const std::string& partial_content() const noexcept {
        static const std::string none;
        return details_->partial_content ? *details_->partial_content : none;
    }
    /// For a stream that failed after some of its reply arrived: that much of the reply, nothing
    /// received lost (tool-call fragments keep their stream `index`). Null otherwise.
    const chat_response* partial_response() const noexcept { return details_->partial_response.get(); }
    std::optional<std::chrono::milliseconds> retry_after() const noexcept { return details_->retry_after; }

    /// What the failed call went through, as a reply's `call` says it for a call that answered:
    /// attempts, latency, the last route tried, fallbacks, hedges, and every error met (this one
    /// last). Set on the error a client call ends with; nullptr on the errors inside that report.
    const call_info* call() const noexcept { return call_.get(); }
    /// Attaches the report of the call this error ended (the client does this).
    void set_call(std::shared_ptr<const call_info> report) noexcept { call_ = std::move(report); }

private:
    static error_details with_message(std::string message, int status) {
        error_details d;
        d.message = std::move(message);
        d.status = status;
        return d;
    }
    static std::string describe(error_kind kind, const error_details& d) {
        std::string s(to_string(kind));
        // Only an HTTP status: a number a broken transport made up could spell part of the key.
        if (d.status >= 100 && d.status <= 999) s += " [" + std::to_string(d.status) + "]";
        s += ": ";
        s += d.message.empty() ? std::string("(no message)") : printable(d.message);
        return s;
    }

    error_kind kind_;
    // Shared so that copies, which exceptions and results make, cannot throw.
    std::shared_ptr<const error_details> details_;
    std::shared_ptr<const call_info> call_;
};

}  // namespace sturdy

#pragma once
// Turning a provider's error reply, in any of the shapes servers send, into a sturdy::error.

#include <sturdy/error.hpp>
#include <sturdy/http.hpp>
#include <sturdy/retry_after.hpp>
#include <sturdy/detail/redact.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace sturdy::detail {

/// The longest raw body an error keeps.
inline constexpr std::size_t error_body_limit = 4096;
/// The most of an error reply that is read at all: enough for any provider's JSON error, and a
/// server that sends more cannot make the client buffer it.
inline constexpr std::size_t error_read_limit = 64 * 1024;
/// The longest message an error carries: a server's text is cut there, so that one line of a
/// log or a terminal stays one line.
inline constexpr std::size_t error_message_limit = 1024;

inline std::string json_text(const nlohmann::json& j) {
    if (j.is_string()) return j.get<std::string>();
    if (j.is_null()) return {};
    return j.dump();
}

inline std::string lowercase(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = ascii_lower(c);
    return out;
}

/// Fills message, type, code and param from an error body: {"error": {...}} (OpenAI, llama.cpp,
/// vLLM), [{"error": {...}}] (Gemini), {"error": "text"}, a bare {"message": ...} (vLLM's
/// ErrorResponse, DashScope), or FastAPI's {"detail": ...}. Returns false when none matched.
inline bool read_error_fields(const nlohmann::json& body, error_details& d) {
    const nlohmann::json* j = &body;
    if (j->is_array() && !j->empty()) j = &j->front();
    if (!j->is_object()) return false;
    if (auto it = j->find("error"); it != j->end()) {
        if (!it->is_object()) {
            d.message = json_text(*it);
            return !d.message.empty();
        }
        j = &*it;
    }
    bool found = false;
    auto take = [&](const char* key, std::string& out) {
        if (auto it = j->find(key); it != j->end() && !it->is_null()) {
            out = json_text(*it);
            found = true;
        }
    };
    take("message", d.message);
    if (d.message.empty()) take("detail", d.message);
    take("type", d.type);
    if (d.type.empty()) take("status", d.type);  // Google's "RESOURCE_EXHAUSTED"
    take("code", d.code);
    take("param", d.param);
    return found && !(d.message.empty() && d.type.empty() && d.code.empty());
}

/// Whether an error says the prompt did not fit: OpenAI's code, llama.cpp's type, or the wording
/// of vLLM, Gemini, Mistral, DeepSeek and others.
inline bool is_context_length_error(const error_details& d) {
    if (d.code == "context_length_exceeded" || d.type == "exceed_context_size_error" ||
        d.code == "exceed_context_size_error" || d.type == "context_length_exceeded")
        return true;
    static constexpr std::array<std::string_view, 11> phrases = {
        "maximum context length",          // OpenAI, vLLM, DeepSeek
        "context length exceeded",         //
        "context_length_exceeded",         //
        "exceeds the available context",   // llama.cpp
        "context window",                  // "exceeds the model's context window"
        "prompt is too long",              // Anthropic-compatible gateways
        "input is too long",               // Bedrock-style relays
        "reduce the length of the messages",
        "exceeds the maximum number of tokens",  // Gemini
        "input token count",                     // Gemini: "The input token count (N) exceeds..."
        "too large for model with",              // Mistral
    };
    const std::string message = lowercase(d.message);
    for (auto phrase : phrases)
        if (message.find(phrase) != std::string::npos) return true;
    return false;
}

/// The kind of an error reply, refining 400-class statuses that mean "context too long".
inline error_kind classify(int status, const error_details& d) {
    const error_kind kind = kind_for_status(status);
    const bool may_be_context = status == 400 || status == 413 || status == 422;
    return may_be_context && is_context_length_error(d) ? error_kind::context_length_exceeded : kind;
}

/// The error for a reply or stream event that passed one of the client's size limits.
inline error size_limit_error(std::string_view code, std::string_view what, std::size_t limit) {
    error_details d;
    d.code = std::string(code);
    d.message = std::string(what) + " passed the client's limit of " + std::to_string(limit) + " bytes";
    return error(error_kind::invalid_response, std::move(d));
}

/// An error body as JSON (discarded when it is not JSON). Values nested deeper than any error
/// are dropped: json_text's dump() and every copy recurse once per level.
inline nlohmann::json parse_error_body(std::string_view body) {
    constexpr int max_depth = 32;
    return nlohmann::json::parse(
        body.begin(), body.end(),
        [](int depth, nlohmann::json::parse_event_t, nlohmann::json&) { return depth <= max_depth; }, false);
}

/// Keeps the key out of every string of the details.
inline void redact_details(error_details& d, std::string_view secret) {
    if (secret.empty()) return;
    for (std::string* s : {&d.message, &d.type, &d.code, &d.param, &d.request_id, &d.body})
        *s = redact(std::move(*s), secret);
}

/// The last step of an error read from a server's text: the key out, then the message and the
/// body cut to their limits (in that order, as "[redacted]" may be longer than what it replaces).
inline void finish_server_details(error_details& d, std::string_view secret) {
    redact_details(d, secret);
    d.message = truncate_utf8(d.message, error_message_limit);
    d.body = truncate_utf8(d.body, error_body_limit);
}

/// An HTTP status a JSON number names, if it is one: a huge number must not wrap into one.
inline int status_in(const nlohmann::json& value) {
    if (!value.is_number_integer()) return 0;
    const bool fits = value.is_number_unsigned() ? value.get<std::uint64_t>() <= 999
                                                 : value.get<std::int64_t>() >= 0 && value.get<std::int64_t>() <= 999;
    return fits ? static_cast<int>(value.get<std::int64_t>()) : 0;
}

/// The error for a reply with an error status.
inline error status_error(int status, const response_headers& headers, std::string_view body, std::string_view secret,
                          std::chrono::system_clock::time_point now) {
    error_details d;
    d.status = status;
    d.request_id = std::string(headers.get("x-request-id"));
    d.retry_after = parse_retry_after(headers, now);
    if (auto hint = headers.find("x-should-retry")) {
        if (*hint == "true") d.should_retry = true;
        else if (*hint == "false") d.should_retry = false;
    }
    d.body = truncate_utf8(body, error_body_limit);
    if (status >= 300 && status < 400) {
        // Following a redirect could send the key to another host; naming it lets the user fix
        // the base URL instead.
        d.code = std::string(error_codes::redirect);
        const auto location = headers.get("location");
        d.message = "HTTP " + std::to_string(status) + ": the server redirects to " +
                    (location.empty() ? std::string("(no Location)") : truncate_utf8(location, 200)) +
                    "; sturdy does not follow redirects, so set the base URL to where it points";
        finish_server_details(d, secret);
        return error(error_kind::api_status, std::move(d));
    }
    auto parsed = parse_error_body(body);
    if (parsed.is_discarded() || !read_error_fields(parsed, d) || d.message.empty()) {
        // Not a JSON error (a proxy's HTML page, say): the status still classifies it.
        std::string snippet(trim(body.substr(0, 200)));
        for (char& c : snippet)
            if (c == '\n' || c == '\r' || c == '\t') c = ' ';
        d.message = "HTTP " + std::to_string(status) + (snippet.empty() ? "" : ": " + snippet);
    }
    finish_server_details(d, secret);
    const error_kind kind = classify(status, d);  // before d is moved from
    return error(kind, std::move(d));
}

/// The error a stream carried in its body (a `data: {"error": ...}` event, an `event: error`, or an
/// `error:` field). Its status, when the body gives one, classifies it; then its type.
inline error stream_error(std::string_view payload, std::string_view secret) {
    error_details d;
    d.body = truncate_utf8(payload, error_body_limit);
    auto parsed = parse_error_body(payload);
    int status = 0;
    if (!parsed.is_discarded() && read_error_fields(parsed, d)) {
        const nlohmann::json* inner = &parsed;
        if (inner->is_object() && inner->contains("error") && (*inner)["error"].is_object()) inner = &(*inner)["error"];
        for (const char* key : {"status", "code"}) {
            if (inner->is_object() && inner->contains(key) && (*inner)[key].is_number_integer()) {
                status = status_in((*inner)[key]);
                break;
            }
        }
    } else {
        d.message = std::string(trim(payload.substr(0, 200)));
    }
    if (d.message.empty()) d.message = "the stream carried an error";
    d.message = "stream error: " + d.message;
    finish_server_details(d, secret);
    error_kind kind = error_kind::api_status;
    if (status >= 400 && status <= 599) {
        kind = classify(status, d);
    } else if (is_context_length_error(d)) {
        kind = error_kind::context_length_exceeded;
    } else {
        const std::string type = lowercase(d.type + " " + d.code);
        if (type.find("rate_limit") != std::string::npos || type.find("resource_exhausted") != std::string::npos)
            kind = error_kind::rate_limit;
        else if (type.find("server_error") != std::string::npos || type.find("internal") != std::string::npos ||
                 type.find("overloaded") != std::string::npos || type.find("unavailable") != std::string::npos)
            kind = error_kind::internal_server;
        else if (type.find("invalid_request") != std::string::npos)
            kind = error_kind::bad_request;
        else if (type.find("authentication") != std::string::npos)
            kind = error_kind::authentication;
    }
    return error(kind, std::move(d));
}

}  // namespace sturdy::detail

#pragma once
/// @file
/// HTTP as a transport sees it: a request, a response head, headers and a sink for body bytes.

#include <sturdy/cancellation.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sturdy {

/// Request headers, in order: name and value.
using header_list = std::vector<std::pair<std::string, std::string>>;

enum class http_method { get, post };

/// One HTTP exchange to make.
struct http_request {
    http_method method = http_method::get;
    std::string url;
    header_list headers;
    std::string body;
    std::chrono::milliseconds connect_timeout{5000};
    /// The whole exchange, body included; zero means none.
    std::chrono::milliseconds timeout{600000};
    cancellation_token cancel;
};

namespace detail {
constexpr char ascii_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    return true;
}
constexpr std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
    return s;
}
}  // namespace detail

/// Response headers, looked up without regard to case.
///
/// Kept as the raw "Name: value" lines in one buffer: a successful reply is parsed for two or three
/// headers at most, so splitting every header into strings would be wasted work.
class response_headers {
public:
    /// Adds one header line as received ("Name: value", with or without CRLF).
    void add_line(std::string_view line) {
        line = detail::trim(line);
        if (line.empty()) return;
        raw_.append(line.data(), line.size());
        raw_.push_back('\n');
    }
    void add(std::string_view name, std::string_view value) {
        raw_.append(name.data(), name.size());
        raw_ += ": ";
        raw_.append(value.data(), value.size());
        raw_.push_back('\n');
    }
    void clear() noexcept { raw_.clear(); }
    bool empty() const noexcept { return raw_.empty(); }

    /// The first value of `name`, trimmed; nullopt when absent. Valid while this object lives unchanged.
    std::optional<std::string_view> find(std::string_view name) const noexcept {
        std::optional<std::string_view> found;
        for_each([&](std::string_view n, std::string_view v) {
            if (!found && detail::iequals(n, name)) found = v;
        });
        return found;
    }
    /// The first value of `name`, or an empty view.
    std::string_view get(std::string_view name) const noexcept { return find(name).value_or(std::string_view{}); }

    /// Calls f(name, value) for every header, in order.
    template <class F>
    void for_each(F&& f) const {
        std::string_view rest = raw_;
        while (!rest.empty()) {
            auto eol = rest.find('\n');
            auto line = rest.substr(0, eol);
            rest.remove_prefix(eol == std::string_view::npos ? rest.size() : eol + 1);
            auto colon = line.find(':');
            if (colon == std::string_view::npos) continue;
            f(detail::trim(line.substr(0, colon)), detail::trim(line.substr(colon + 1)));
        }
    }

private:
    std::string raw_;
};

/// The status line and headers of a response.
struct http_head {
    int status = 0;
    response_headers headers;
};

/// Receives a response as it arrives. The transport calls on_head once, then on_data for each
/// piece of the body, on the thread that called send.
class response_sink {
public:
    virtual ~response_sink() = default;
    /// The final status and headers have arrived. Return false to stop the transfer.
    virtual bool on_head(const http_head& head) = 0;
    /// More body bytes. Return false to stop the transfer.
    virtual bool on_data(std::string_view bytes) = 0;
    /// The time by which the next bytes must arrive; the transport fails the exchange with a
    /// timeout past it. Lets a stream enforce first-token and idle timeouts.
    virtual std::chrono::steady_clock::time_point progress_deadline() const {
        return std::chrono::steady_clock::time_point::max();
    }
};

namespace detail {

/// Appends `bytes` unless `buffer` would pass `limit`, never growing its capacity past the limit
/// either, so a reply's memory is bounded by the limit itself, not by twice it.
inline bool append_within(std::string& buffer, std::string_view bytes, std::size_t limit) {
    if (bytes.size() > limit - std::min(limit, buffer.size())) return false;
    const std::size_t needed = buffer.size() + bytes.size();
    if (needed > buffer.capacity()) buffer.reserve(std::min(limit, std::max(needed, buffer.capacity() * 2)));
    buffer.append(bytes.data(), bytes.size());
    return true;
}

/// The Content-Length a reply announced, if it is a plain number.
inline std::optional<std::size_t> content_length(const response_headers& headers) {
    auto text = headers.find("content-length");
    if (!text || text->empty() || text->size() > 18) return std::nullopt;
    std::size_t n = 0;
    for (char c : *text) {
        if (c < '0' || c > '9') return std::nullopt;
        n = n * 10 + static_cast<std::size_t>(c - '0');
    }
    return n;
}

}  // namespace detail

/// A sink that keeps the whole body, within limits: `max_bytes` for a successful (2xx) reply,
/// `max_error_bytes` for any other. Past its limit it stops the transfer and `overflowed()` is
/// true; an error reply then keeps its first `max_error_bytes` and its head, so it can still be
/// read as an error.
class body_collector final : public response_sink {
public:
    static constexpr std::size_t unlimited = static_cast<std::size_t>(-1);

    body_collector() = default;
    body_collector(std::size_t max_bytes, std::size_t max_error_bytes) noexcept
        : max_bytes_(max_bytes), max_error_bytes_(max_error_bytes) {}

    bool on_head(const http_head& head) override {
        status_ = head.status;
        const bool success = status_ >= 200 && status_ < 300;
        limit_ = success ? max_bytes_ : max_error_bytes_;
        if (!success) head_ = head;  // errors are rare, and their headers (Retry-After) matter
        if (auto length = detail::content_length(head.headers)) {
            if (success && *length > limit_) {
                overflowed_ = true;
                return false;
            }
            body.reserve(std::min(*length, limit_));
        }
        return true;
    }
    bool on_data(std::string_view bytes) override {
        if (detail::append_within(body, bytes, limit_)) return true;
        body.append(bytes.data(), limit_ - std::min(limit_, body.size()));
        overflowed_ = true;
        return false;
    }

    /// The body passed its limit and the transfer was stopped.
    bool overflowed() const noexcept { return overflowed_; }
    /// The status of the reply, once its head arrived; 0 before.
    int status() const noexcept { return status_; }
    /// The head of an error reply (not kept for a successful one, which the transport returns).
    const http_head& error_head() const noexcept { return head_; }
    /// The limit in force for this reply.
    std::size_t limit() const noexcept { return limit_; }

    std::string body;

private:
    std::size_t max_bytes_ = unlimited, max_error_bytes_ = unlimited, limit_ = unlimited;
    int status_ = 0;
    bool overflowed_ = false;
    http_head head_;
};

}  // namespace sturdy

#pragma once
/// @file
/// An incremental parser for server-sent events (the WHATWG event-stream format).

#include <chrono>
#include <cstddef>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace sturdy {

/// One dispatched event. The views are valid only during the callback that receives it.
struct sse_event {
    std::string_view type = "message";  ///< the `event:` field, "message" when absent
    std::string_view data;              ///< the `data:` lines, joined with "\n"
    std::string_view id;                ///< the last event ID seen so far
    /// Beyond the standard: the value of an `error:` field, which older llama.cpp servers send
    /// instead of a data line. An event carrying only such a field is still dispatched.
    std::string_view error;
};

/// Splits a byte stream into events, whatever the read boundaries: LF, CR and CRLF line ends
/// (a CRLF may straddle two reads), an optional space after the colon, comment lines, multi-line
/// data, `event`, `id` and `retry` fields, and a leading byte-order mark.
///
///     sturdy::sse_parser parser;
///     parser.feed(bytes, [](const sturdy::sse_event& e) { std::cout << e.data << "\n"; });
///     parser.finish(on_event);   // at end of stream
///
/// A callback may return `false` to stop: `feed` then returns false and the rest of the bytes are
/// not read. So does a line or an event's data past `max_event_bytes`, which `overflowed()` then
/// tells: a server that never ends a line cannot grow memory without bound.
class sse_parser {
public:
    explicit sse_parser(std::size_t max_event_bytes = static_cast<std::size_t>(-1)) noexcept
        : max_event_bytes_(max_event_bytes) {}

    /// Feeds the next bytes. Returns false when a callback asked to stop.
    template <class OnEvent>
    bool feed(std::string_view bytes, OnEvent&& on_event) {
        if (overflowed_) return false;
        if (bom_pending_ && !skip_bom(bytes)) return true;
        // Lines end at LF nearly always: find LFs with memchr, and CRs only before the next LF.
        const char* next_lf = nullptr;
        while (!bytes.empty()) {
            if (skip_lf_) {
                skip_lf_ = false;
                if (bytes.front() == '\n') {
                    bytes.remove_prefix(1);
                    continue;
                }
            }
            const char* begin = bytes.data();
            const char* end = begin + bytes.size();
            if (!next_lf || next_lf < begin) {
                next_lf = static_cast<const char*>(std::memchr(begin, '\n', bytes.size()));
                if (!next_lf) next_lf = end;
            }
            const auto* cr = static_cast<const char*>(std::memchr(begin, '\r', static_cast<std::size_t>(next_lf - begin)));
            const char* eol = cr ? cr : next_lf;
            if (eol == end) {
                if (bytes.size() > max_event_bytes_ - line_.size()) return overflow();
                line_.append(begin, bytes.size());
                return true;
            }
            skip_lf_ = *eol == '\r';
            const auto eol_index = static_cast<std::size_t>(eol - begin);
            std::string_view line = bytes.substr(0, eol_index);
            bytes.remove_prefix(eol_index + 1);
            bool keep_going;
            if (line_.empty()) {
                // The same limit as a line that arrives in pieces: read boundaries must not matter.
                if (line.size() > max_event_bytes_) return overflow();
                keep_going = process_line(line, on_event);
            } else {
                if (line.size() > max_event_bytes_ - line_.size()) return overflow();
                line_.append(line.data(), line.size());
                keep_going = process_line(std::string_view(line_), on_event);
                line_.clear();
            }
            if (!keep_going) return false;
        }
        return true;
    }

    /// Ends the stream. By the standard an event without its closing blank line is dropped; a
    /// complete last line is honoured here, since servers that close right after it exist.
    /// Returns false when a callback asked to stop.
    template <class OnEvent>
    bool finish(OnEvent&& on_event) {
        bool keep_going = true;
        if (!line_.empty()) {
            keep_going = process_line(std::string_view(line_), on_event);
            line_.clear();
        }
        if (keep_going) keep_going = dispatch(on_event);
        reset_event();
        return keep_going;
    }

    /// The reconnection time a `retry:` field set, if any.
    std::optional<std::chrono::milliseconds> retry() const noexcept { return retry_; }
    /// The last event ID, which a reconnecting client sends as Last-Event-ID.
    const std::string& last_event_id() const noexcept { return last_id_; }
    /// True when a line or an event's data passed `max_event_bytes`; the parser then stops.
    bool overflowed() const noexcept { return overflowed_; }
    std::size_t max_event_bytes() const noexcept { return max_event_bytes_; }
    /// True while part of an event (or of a line) has been read but not dispatched.
    bool mid_event() const noexcept { return !line_.empty() || has_data_ || !type_.empty() || has_error_; }

private:
    bool skip_bom(std::string_view& bytes) {
        static constexpr std::string_view bom = "\xEF\xBB\xBF";
        while (!bytes.empty() && bom_matched_ < bom.size()) {
            if (bytes.front() != bom[bom_matched_]) {
                // Not a BOM after all: the bytes matched so far are ordinary text.
                line_.append(bom.data(), bom_matched_);
                bom_pending_ = false;
                return true;
            }
            ++bom_matched_;
            bytes.remove_prefix(1);
        }
        if (bom_matched_ == bom.size()) bom_pending_ = false;
        return !bom_pending_;
    }

    bool overflow() noexcept {
        overflowed_ = true;
        line_.clear();
        reset_event();
        return false;
    }

    template <class OnEvent>
    bool process_line(std::string_view line, OnEvent& on_event) {
        if (line.empty()) return dispatch(on_event);
        if (line.front() == ':') return true;  // a comment
        std::string_view field = line, value;
        if (auto colon = line.find(':'); colon != std::string_view::npos) {
            field = line.substr(0, colon);
            value = line.substr(colon + 1);
            if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        }
        if (field == "data") {
            if (value.size() + 1 > max_event_bytes_ - data_.size()) return overflow();
            if (has_data_) data_.push_back('\n');
            data_.append(value.data(), value.size());
            has_data_ = true;
        } else if (field == "event") {
            type_.assign(value.data(), value.size());
        } else if (field == "id") {
            if (value.find('\0') == std::string_view::npos) last_id_.assign(value.data(), value.size());
        } else if (field == "retry") {
            if (auto ms = parse_digits(value)) retry_ = std::chrono::milliseconds(*ms);
        } else if (field == "error") {
            error_.assign(value.data(), value.size());
            has_error_ = true;
        }
        return true;
    }

    static std::optional<long long> parse_digits(std::string_view s) {
        if (s.empty() || s.size() > 18) return std::nullopt;  // 18 digits cannot overflow
        long long n = 0;
        for (char c : s) {
            if (c < '0' || c > '9') return std::nullopt;
            n = n * 10 + (c - '0');
        }
        return n;
    }

    template <class OnEvent>
    bool dispatch(OnEvent& on_event) {
        if (!has_data_ && !has_error_) {
            type_.clear();
            return true;
        }
        sse_event event;
        if (!type_.empty()) event.type = type_;
        event.data = data_;
        event.id = last_id_;
        event.error = error_;
        bool keep_going = invoke(on_event, event);
        reset_event();
        return keep_going;
    }

    template <class OnEvent>
    static bool invoke(OnEvent& on_event, const sse_event& event) {
        if constexpr (std::is_convertible_v<std::invoke_result_t<OnEvent&, const sse_event&>, bool>) {
            return static_cast<bool>(on_event(event));
        } else {
            on_event(event);
            return true;
        }
    }

    void reset_event() {
        data_.clear();
        type_.clear();
        error_.clear();
        has_data_ = has_error_ = false;
    }

    std::string line_;  // an unterminated line carried over from the previous read
    std::string data_, type_, error_, last_id_;
    std::optional<std::chrono::milliseconds> retry_;
    std::size_t max_event_bytes_;
    std::size_t bom_matched_ = 0;
    bool bom_pending_ = true, skip_lf_ = false, has_data_ = false, has_error_ = false, overflowed_ = false;
};

}  // namespace sturdy

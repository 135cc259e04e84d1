#pragma once
// Keeps secrets out of messages: every string that leaves the client in an error goes through here.

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

namespace sturdy::detail {

inline constexpr std::string_view redacted_marker = "[redacted]";

/// Replaces each occurrence of `secret`, and each run of 8 or more characters taken from it (a
/// server may echo a key cut short), with "[redacted]".
inline std::string redact(std::string_view text, std::string_view secret) {
    if (secret.empty() || text.empty()) return std::string(text);
    const std::size_t min_run = std::min<std::size_t>(8, secret.size());
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i < text.size()) {
        std::size_t longest = 0;
        for (std::size_t j = 0; j < secret.size(); ++j) {
            std::size_t n = 0;
            while (i + n < text.size() && j + n < secret.size() && text[i + n] == secret[j + n]) ++n;
            longest = std::max(longest, n);
        }
        if (longest >= min_run) {
            out += redacted_marker;
            i += longest;
        } else {
            out += text[i++];
        }
    }
    return out;
}

/// Cuts `text` to at most `limit` bytes without splitting a UTF-8 sequence.
inline std::string truncate_utf8(std::string_view text, std::size_t limit) {
    if (text.size() <= limit) return std::string(text);
    std::size_t end = limit;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
    return std::string(text.substr(0, end)) + "...";
}

}  // namespace sturdy::detail

#pragma once
// Keeps secrets out of messages: every string that leaves the client in an error goes through here.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sturdy::detail {

inline constexpr std::string_view redacted_marker = "[redacted]";

/// Replaces each occurrence of `secret`, and each run of 8 or more characters taken from it (a
/// server may echo a key cut short), with "[redacted]".
///
/// Linear in the text: a run is found by its first 8 bytes, looked up among the key's 8-byte
/// windows, so a reply of many megabytes costs one pass, not one pass per character of the key.
/// Text with nothing to redact is returned as it came, without a copy.
inline std::string redact(std::string text, std::string_view secret) {
    if (secret.empty() || text.empty()) return text;
    const std::size_t run = std::min<std::size_t>(8, secret.size());
    if (text.size() < run) return text;
    const std::uint64_t mask = run == 8 ? ~std::uint64_t{0} : (std::uint64_t{1} << (8 * run)) - 1;
    const auto push = [mask](std::uint64_t window, char c) {
        return ((window << 8) | static_cast<unsigned char>(c)) & mask;
    };
    // Every window of the key, sorted, with where it starts in the key.
    std::vector<std::pair<std::uint64_t, std::size_t>> windows;
    windows.reserve(secret.size() - run + 1);
    std::uint64_t w = 0;
    for (std::size_t j = 0; j < secret.size(); ++j) {
        w = push(w, secret[j]);
        if (j + 1 >= run) windows.emplace_back(w, j + 1 - run);
    }
    std::sort(windows.begin(), windows.end());

    // The longest run of the key starting at text[i], given that text[i, i + run) is a window.
    const auto longest_at = [&](std::size_t i, std::uint64_t window) {
        std::size_t longest = 0;
        auto it = std::lower_bound(windows.begin(), windows.end(), std::make_pair(window, std::size_t{0}));
        for (; it != windows.end() && it->first == window; ++it) {
            std::size_t n = run;
            while (i + n < text.size() && it->second + n < secret.size() && text[i + n] == secret[it->second + n]) ++n;
            longest = std::max(longest, n);
        }
        return longest;
    };
    std::string out;         // built only once something is found
    std::size_t copied = 0;  // text[0, copied) is in `out` already
    w = 0;
    std::size_t filled = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        w = push(w, text[i]);
        if (++filled < run) continue;
        const std::size_t start = i + 1 - run;
        if (start < copied) continue;  // inside a run already replaced
        const std::size_t n = longest_at(start, w);
        if (n == 0) continue;
        if (out.empty()) out.reserve(text.size());
        out.append(text, copied, start - copied);
        out += redacted_marker;
        copied = start + n;
    }
    if (copied == 0) return text;
    out.append(text, copied, std::string::npos);
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

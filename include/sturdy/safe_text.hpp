#pragma once
/// @file
/// Text a server sent, made safe to show: without the API key, and without terminal controls.
///
/// A hostile or broken server can put anything in an error message or a reply: escape sequences
/// that retitle or clear a terminal, or the caller's own key echoed back. sturdy's errors are
/// redacted and their `what()` is printable already; these are for other text a program shows.

#include <sturdy/detail/redact.hpp>

#include <string>
#include <string_view>

namespace sturdy {

/// `text` with every control character that a terminal would act on written out instead
/// (ESC becomes `\x{1B}`, a C1 control such as U+009B becomes `\u{9B}`). Line breaks (LF, CR) and
/// tabs stay, as do all printable characters, UTF-8 included.
///
///     std::cerr << sturdy::printable(server_text) << "\n";
inline std::string printable(std::string_view text) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        // Escapes are braced: one that ended in a hex digit would join the text after it, and
        // "\x00" before 7 characters of the key makes a run of 8 that redaction never saw.
        if ((c < 0x20 && c != '\n' && c != '\r' && c != '\t') || c == 0x7F) {
            out += "\\x{";
            out += hex[c >> 4];
            out += hex[c & 15];
            out += '}';
        } else if (c == 0xC2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
                   static_cast<unsigned char>(text[i + 1]) <= 0x9F) {
            // U+0080..U+009F in UTF-8: the C1 controls, CSI (U+009B) and OSC (U+009D) among them.
            const auto c1 = static_cast<unsigned char>(text[++i]);
            out += "\\u{";
            out += hex[c1 >> 4];
            out += hex[c1 & 15];
            out += '}';
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

/// `text` with `secret` taken out: each occurrence, and each run of 8 or more of its characters (a
/// server may echo a key cut short), becomes "[redacted]". The same redaction every error gets.
inline std::string redact(std::string_view text, std::string_view secret) {
    return detail::redact(std::string(text), secret);
}

}  // namespace sturdy

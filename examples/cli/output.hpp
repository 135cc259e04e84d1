#pragma once
// How the `sturdy` tool prints: results on stdout, with the API key taken out, JSON on one line.

#include <sturdy/sturdy.hpp>

#include <unistd.h>

#include <chrono>
#include <iostream>
#include <string>
#include <string_view>
#include <utility>

namespace sturdy_cli {

/// stdout, remembering whether a line was left open, so that an error after streamed text can
/// finish that line first. Everything printed has the API key taken out (a server or a model may
/// echo it), and on a terminal, a reply's control characters are written out rather than obeyed.
class output {
public:
    explicit output(std::string secret = {}) : secret_(std::move(secret)), terminal_(isatty(STDOUT_FILENO) == 1) {}

    /// Writes `text` at once (a streamed chunk).
    void write(std::string_view text) {
        if (text.empty()) return;
        std::cout << shown(text) << std::flush;
        open_line_ = text.back() != '\n';
    }
    void line(std::string_view text) {
        std::cout << shown(text) << '\n';
        open_line_ = false;
    }
    void end_open_line() {
        if (open_line_) line("");
    }

private:
    std::string shown(std::string_view text) const {
        std::string safe = sturdy::redact(text, secret_);
        return terminal_ ? sturdy::printable(safe) : safe;
    }

    std::string secret_;
    bool terminal_;
    bool open_line_ = false;
};

/// One line of JSON. Invalid UTF-8 (a model may produce it) is replaced rather than thrown on.
template <class Json>
std::string dump(const Json& j) {
    return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

/// `text` with its line breaks turned into spaces: an error is one line on stderr.
inline std::string one_line(std::string text) {
    for (char& c : text)
        if (c == '\n' || c == '\r') c = ' ';
    return text;
}

inline double to_ms(std::chrono::microseconds d) { return static_cast<double>(d.count()) / 1000.0; }

}  // namespace sturdy_cli

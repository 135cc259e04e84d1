#pragma once
/// @file
/// Reading a server's requested delay: `retry-after-ms`, then `retry-after` in seconds or as an HTTP date.

#include <sturdy/http.hpp>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string_view>

namespace sturdy {

namespace detail {

/// A decimal number with optional sign and fraction ("1", "1.5", "-2"), locale-independent.
inline std::optional<double> parse_decimal(std::string_view s) {
    s = trim(s);
    if (s.empty()) return std::nullopt;
    double sign = 1;
    if (s.front() == '-' || s.front() == '+') {
        if (s.front() == '-') sign = -1;
        s.remove_prefix(1);
    }
    double value = 0, scale = 1;
    bool digits = false, fraction = false;
    for (char c : s) {
        if (c == '.' && !fraction) {
            fraction = true;
        } else if (c >= '0' && c <= '9') {
            digits = true;
            if (fraction) value += (scale /= 10) * (c - '0');
            else value = value * 10 + (c - '0');
        } else {
            return std::nullopt;
        }
    }
    if (!digits || !std::isfinite(value)) return std::nullopt;
    return sign * value;
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
constexpr std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

inline std::optional<unsigned> month_number(std::string_view name) {
    static constexpr std::array<std::string_view, 12> months = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    for (unsigned i = 0; i < months.size(); ++i)
        if (iequals(name, months[i])) return i + 1;
    return std::nullopt;
}

inline std::optional<int> parse_int(std::string_view s) {
    if (s.empty() || s.size() > 9) return std::nullopt;
    int n = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        n = n * 10 + (c - '0');
    }
    return n;
}

/// Seconds since 1970-01-01T00:00:00Z of an HTTP date in any of the three forms HTTP allows, for
/// any year up to 9 digits: far-future dates stay representable here, where a system_clock
/// time_point (nanoseconds in libstdc++) would overflow past the year 2262.
inline std::optional<std::int64_t> http_date_seconds(std::string_view text) {
    // Split into words on spaces, commas and the dashes of the RFC 850 form.
    std::array<std::string_view, 8> w{};
    std::size_t n = 0;
    std::size_t start = std::string_view::npos;
    for (std::size_t i = 0; i <= text.size(); ++i) {
        const bool sep = i == text.size() || text[i] == ' ' || text[i] == ',' || text[i] == '-';
        if (!sep && start == std::string_view::npos) start = i;
        if (sep && start != std::string_view::npos) {
            if (n == w.size()) return std::nullopt;
            w[n++] = text.substr(start, i - start);
            start = std::string_view::npos;
        }
    }
    std::string_view day, month, year, time;
    if (n == 6 && iequals(w[5], "GMT")) {  // IMF-fixdate or RFC 850
        day = w[1], month = w[2], year = w[3], time = w[4];
    } else if (n == 5) {  // asctime
        month = w[1], day = w[2], time = w[3], year = w[4];
    } else {
        return std::nullopt;
    }
    auto d = parse_int(day);
    auto m = month_number(month);
    auto y = parse_int(year);
    if (!d || !m || !y || time.size() != 8 || time[2] != ':' || time[5] != ':') return std::nullopt;
    auto hh = parse_int(time.substr(0, 2)), mm = parse_int(time.substr(3, 2)), ss = parse_int(time.substr(6, 2));
    if (!hh || !mm || !ss || *d < 1 || *d > 31 || *hh > 23 || *mm > 59 || *ss > 60) return std::nullopt;
    std::int64_t full_year = *y;
    if (year.size() == 2) full_year += full_year < 70 ? 2000 : 1900;  // RFC 850's two-digit years
    const std::int64_t days = days_from_civil(full_year, *m, static_cast<unsigned>(*d));
    return days * 86400 + std::int64_t{*hh} * 3600 + std::int64_t{*mm} * 60 + *ss;
}

}  // namespace detail

/// Parses an HTTP date in any of the three forms HTTP allows:
/// "Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994".
/// Nullopt for text that is not such a date, and for a date system_clock cannot represent.
inline std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view text) {
    using system_seconds = std::chrono::duration<std::int64_t>;
    const auto seconds = detail::http_date_seconds(text);
    constexpr auto max_seconds =
        std::chrono::duration_cast<system_seconds>(std::chrono::system_clock::duration::max()).count();
    constexpr auto min_seconds =
        std::chrono::duration_cast<system_seconds>(std::chrono::system_clock::duration::min()).count();
    if (!seconds || *seconds >= max_seconds || *seconds <= min_seconds) return std::nullopt;
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(system_seconds(*seconds)));
}

/// The delay a reply asks for before a retry: `retry-after-ms` (milliseconds), else `retry-after`
/// as seconds (fractions allowed) or as an HTTP date relative to `now`. May be negative or huge;
/// whether to honour it is the retry policy's decision. Nullopt when absent or unreadable.
inline std::optional<std::chrono::milliseconds> parse_retry_after(const response_headers& headers,
                                                                  std::chrono::system_clock::time_point now) {
    // Clamped so that absurd values stay representable; they are "too long" all the same.
    constexpr double limit_ms = 1e12;
    auto clamp = [&](double ms) {
        return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(std::fmax(-limit_ms, std::fmin(limit_ms, ms)))));
    };
    if (auto v = headers.find("retry-after-ms"))
        if (auto ms = detail::parse_decimal(*v)) return clamp(*ms);
    if (auto v = headers.find("retry-after")) {
        if (auto s = detail::parse_decimal(*v)) return clamp(*s * 1000);
        if (auto when = detail::http_date_seconds(*v)) {
            // In doubles, so that a date of any year subtracts without overflow.
            const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
            return clamp(static_cast<double>(*when) * 1000 - static_cast<double>(now_ms));
        }
    }
    return std::nullopt;
}

}  // namespace sturdy

#pragma once
// Fuzz check for Retry-After (retry_after.hpp): parse_retry_after over retry-after-ms,
// retry-after in seconds and retry-after as an HTTP date in its three forms, and parse_http_date.
//
// The input is header lines ("retry-after: Wed, 21 Oct 2015 07:28:00 GMT"); its first line is also
// tried alone as a Retry-After value, and every value as an HTTP date.
//
// Invariants (UBSan and ASan watch for undefined behaviour throughout):
//  1. The delay, when there is one, is within +-1e12 ms (parse_retry_after's clamp): absurd
//     values stay representable whatever `now` is.
//  2. retry-after-ms and retry-after in seconds give the number the text says (strtod on the
//     same digits, times 1000 for seconds), rounded to a millisecond and clamped.
//  3. A Retry-After date gives the date minus `now` (parse_http_date's time point), to the
//     millisecond and clamped.
//  4. Round trip: a date parse_http_date accepts, formatted back as an IMF-fixdate, as asctime,
//     and (for 1970-2069, which two-digit years reach) as an RFC 850 date, parses to the same
//     time point. So does a second drawn from the input, of all system_clock holds (the RFC 850
//     form: of 1970-2069).
//  5. parse_http_date gives nothing, rather than a wrong time point, for a date system_clock
//     cannot hold; what it gives agrees with an independent calendar computation.

#include "fuzz_support.hpp"

#include <sturdy/http.hpp>
#include <sturdy/retry_after.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sturdy_fuzz {

inline constexpr double retry_after_limit_ms = 1e12;

struct civil_time {
    std::int64_t year;
    int month, day, hour, minute, second, weekday;  // weekday 0 = Sunday
};

inline std::int64_t floor_div(std::int64_t a, std::int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

/// Seconds since the epoch -> calendar fields, by counting 400-year cycles (not the parser's formula).
inline civil_time civil_from_seconds(std::int64_t t) {
    std::int64_t days = floor_div(t, 86400);
    std::int64_t secs = t - days * 86400;
    civil_time c{};
    c.hour = static_cast<int>(secs / 3600), c.minute = static_cast<int>(secs / 60 % 60),
    c.second = static_cast<int>(secs % 60);
    c.weekday = static_cast<int>(((days % 7) + 7 + 4) % 7);  // 1970-01-01 was a Thursday
    auto leap = [](std::int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; };
    // Move to 2000-01-01 (a cycle start), then whole 400-year cycles of 146097 days.
    days -= 10957;
    std::int64_t year = 2000 + 400 * floor_div(days, 146097);
    days -= floor_div(days, 146097) * 146097;
    while (days >= (leap(year) ? 366 : 365)) days -= leap(year) ? 366 : 365, ++year;
    static const int month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int month = 0;
    while (true) {
        const int n = month_days[month] + (month == 1 && leap(year));
        if (days < n) break;
        days -= n;
        ++month;
    }
    c.year = year, c.month = month + 1, c.day = static_cast<int>(days) + 1;
    return c;
}

/// Calendar fields -> seconds since the epoch; days past the month's end roll over (as sturdy's do).
inline std::int64_t seconds_from_civil(std::int64_t year, int month, int day, int hour, int minute, int second) {
    auto leap = [](std::int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; };
    static const int before[] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    const std::int64_t y = year - 1;
    const std::int64_t days_to_year =
        365 * y + floor_div(y, 4) - floor_div(y, 100) + floor_div(y, 400);  // from 0001-01-01
    const std::int64_t days = days_to_year + before[month - 1] + (month > 2 && leap(year)) + (day - 1) - 719162;
    return days * 86400 + hour * 3600 + minute * 60 + second;
}

inline const char* const weekday_short[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
inline const char* const weekday_long[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                           "Thursday", "Friday", "Saturday"};
inline const char* const month_short[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

enum class date_form { imf_fixdate, rfc850, asctime };

inline std::string format_http_date(std::int64_t seconds, date_form form) {
    const civil_time c = civil_from_seconds(seconds);
    char buf[96];
    const long long y = static_cast<long long>(c.year);
    switch (form) {
        case date_form::imf_fixdate:
            std::snprintf(buf, sizeof buf, "%s, %02d %s %04lld %02d:%02d:%02d GMT", weekday_short[c.weekday], c.day,
                          month_short[c.month - 1], y, c.hour, c.minute, c.second);
            break;
        case date_form::rfc850:
            std::snprintf(buf, sizeof buf, "%s, %02d-%s-%02lld %02d:%02d:%02d GMT", weekday_long[c.weekday], c.day,
                          month_short[c.month - 1], y % 100, c.hour, c.minute, c.second);
            break;
        case date_form::asctime:
            std::snprintf(buf, sizeof buf, "%s %s %2d %02d:%02d:%02d %04lld", weekday_short[c.weekday],
                          month_short[c.month - 1], c.day, c.hour, c.minute, c.second, y);
            break;
    }
    return buf;
}

inline std::int64_t seconds_of(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

/// The whole seconds system_clock holds, with a second to spare at each end.
inline std::int64_t system_clock_max_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::duration::max()).count() - 1;
}

/// An IMF-fixdate read strictly by this check: "Www, DD Mon YYYY HH:MM:SS GMT" -> seconds.
inline std::optional<std::int64_t> strict_imf_fixdate(std::string_view s) {
    if (s.size() != 29 || s.substr(3, 2) != ", " || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' || s[19] != ':' ||
        s[22] != ':' || s.substr(25) != " GMT")
        return std::nullopt;
    auto number = [&](std::size_t at, std::size_t n) -> std::optional<int> {
        int v = 0;
        for (std::size_t i = at; i < at + n; ++i) {
            if (s[i] < '0' || s[i] > '9') return std::nullopt;
            v = v * 10 + (s[i] - '0');
        }
        return v;
    };
    bool weekday = false;
    for (const char* name : weekday_short) weekday = weekday || s.substr(0, 3) == name;
    int month = 0;
    for (int m = 0; m < 12; ++m)
        if (s.substr(8, 3) == month_short[m]) month = m + 1;
    if (!weekday) return std::nullopt;
    const auto day = number(5, 2), year = number(12, 4), hh = number(17, 2), mm = number(20, 2), ss = number(23, 2);
    if (!month || !day || !year || !hh || !mm || !ss || *day < 1 || *day > 31 || *hh > 23 || *mm > 59 || *ss > 60)
        return std::nullopt;
    return seconds_from_civil(*year, month, *day, *hh, *mm, *ss);
}

inline bool close_ms(double expected_ms, std::chrono::milliseconds got, double slack_ms) {
    const double clamped = std::fmax(-retry_after_limit_ms, std::fmin(retry_after_limit_ms, expected_ms));
    return std::fabs(clamped - static_cast<double>(got.count())) <= slack_ms + std::fabs(clamped) * 1e-9;
}

inline void check_one_date(std::string_view text) {
    const auto parsed = sturdy::parse_http_date(text);
    if (const auto strict = strict_imf_fixdate(text)) {
        // The last second at either end may be refused: it is a boundary, not a date a server sends.
        require(parsed || *strict >= system_clock_max_seconds() || *strict <= -system_clock_max_seconds(),
                "http date: an IMF-fixdate that system_clock holds is read", escaped(text));
        if (parsed)
            require(seconds_of(*parsed) == *strict, "http date: an IMF-fixdate gives the calendar's time point",
                    escaped(text) + " gave " + std::to_string(seconds_of(*parsed)) + ", expected " +
                        std::to_string(*strict));
    }
    if (!parsed) return;
    const std::int64_t t = seconds_of(*parsed);
    require(std::chrono::system_clock::time_point(std::chrono::seconds(t)) == *parsed, "http date: a whole second");
    for (date_form form : {date_form::imf_fixdate, date_form::asctime, date_form::rfc850}) {
        if (form == date_form::rfc850 && (civil_from_seconds(t).year < 1970 || civil_from_seconds(t).year > 2069))
            continue;
        const std::string again = format_http_date(t, form);
        const auto reparsed = sturdy::parse_http_date(again);
        require(reparsed.has_value() && *reparsed == *parsed,
                "http date: formatted again, a date parses to the same time point",
                escaped(text) + " -> " + escaped(again));
    }
}

inline void check_retry_after_headers(const sturdy::response_headers& headers,
                                      std::chrono::system_clock::time_point now) {
    const auto got = sturdy::parse_retry_after(headers, now);
    if (got)
        require(std::fabs(static_cast<double>(got->count())) <= retry_after_limit_ms,
                "retry-after: the delay is within +-1e12 ms", std::to_string(got->count()));
    // What the headers say, read by this check.
    if (const auto ms_text = headers.find("retry-after-ms")) {
        if (const auto ms = strict_decimal(*ms_text)) {
            require(got && close_ms(*ms, *got, 1), "retry-after-ms: the delay is the number of milliseconds",
                    escaped(*ms_text));
            return;
        }
    }
    const auto text = headers.find("retry-after");
    if (!text) {
        require(!got, "retry-after: no delay without a readable header");
        return;
    }
    if (const auto s = strict_decimal(*text)) {
        require(got && close_ms(*s * 1000, *got, 1), "retry-after: the delay is the number of seconds", escaped(*text));
        return;
    }
    if (const auto when = sturdy::parse_http_date(*text)) {
        // In doubles: a date and a `now` centuries apart differ by more nanoseconds than int64 holds.
        const double expected = static_cast<double>(seconds_of(*when)) * 1000 -
                                std::chrono::duration<double, std::milli>(now.time_since_epoch()).count();
        require(got && close_ms(expected, *got, 1), "retry-after: a date's delay is the date minus now",
                escaped(*text));
    }
}

inline void check_retry_after(const std::uint8_t* data, std::size_t size) {
    const std::string_view text = as_text(data, size);
    input_rng rng(text);
    using std::chrono::system_clock;
    const system_clock::time_point nows[] = {
        system_clock::time_point(std::chrono::seconds(1767225600)),  // 2026-01-01
        system_clock::time_point{},
        // Any instant from 1970 to about 2116.
        system_clock::time_point(std::chrono::duration_cast<system_clock::duration>(
            std::chrono::nanoseconds(static_cast<std::int64_t>(rng.next() >> 2)))),
    };

    sturdy::response_headers headers;
    std::vector<std::string_view> values;
    for (std::string_view rest = text; !rest.empty();) {
        const auto end = rest.find('\n');
        const std::string_view line = rest.substr(0, end);
        headers.add_line(line);
        if (auto colon = line.find(':'); colon != std::string_view::npos)
            values.push_back(sturdy::detail::trim(line.substr(colon + 1)));
        rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 1);
    }
    const std::string_view first_line = sturdy::detail::trim(text.substr(0, text.find('\n')));
    sturdy::response_headers alone;
    alone.add("Retry-After", first_line);
    for (const auto& now : nows) {
        check_retry_after_headers(headers, now);
        check_retry_after_headers(alone, now);
    }

    check_one_date(first_line);
    for (auto v : values) check_one_date(v);

    // Any whole second system_clock holds survives IMF-fixdate and asctime and back; any second
    // of 1970-2069 (what two-digit years reach) survives RFC 850 too.
    const std::int64_t max = system_clock_max_seconds();
    const std::int64_t any = static_cast<std::int64_t>(rng.next() % static_cast<std::uint64_t>(2 * max)) - max;
    const std::int64_t rfc850_end = 3155760000;  // 2070-01-01
    const std::int64_t recent = static_cast<std::int64_t>(rng.next() % static_cast<std::uint64_t>(rfc850_end));
    for (auto [t, form] : {std::pair{any, date_form::imf_fixdate}, std::pair{any, date_form::asctime},
                           std::pair{recent, date_form::rfc850}}) {
        const std::string formatted = format_http_date(t, form);
        const auto back = sturdy::parse_http_date(formatted);
        if (!back || seconds_of(*back) != t)
            require(false, "http date: any representable second survives formatting and back", escaped(formatted));
    }
}

}  // namespace sturdy_fuzz

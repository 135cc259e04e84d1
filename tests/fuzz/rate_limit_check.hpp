#pragma once
// Fuzz check for the x-ratelimit-* headers (rate_limiter.hpp): parse_reset_duration, and a
// rate_limiter with adapt_to_server following x-ratelimit-remaining-* / x-ratelimit-reset-*.
//
// The input is header lines; a first line starting with "429" makes the first reply a 429 (so
// its Retry-After holds the limiter too). Every header value, and the first line, is also read by
// parse_reset_duration on its own.
//
// Invariants (UBSan and ASan watch throughout):
//  1. parse_reset_duration gives nothing or a duration in [0, 1e18] ns, and what it gives is the
//     sum of the Go-style "<decimal><unit>" terms (h, m, s, ms, us, µs, ns) an independent reading
//     finds, within rounding.
//  2. A limiter (60 requests and 10,000 tokens a minute, a random max_wait) that saw those headers
//     stays sane: its levels are finite and never above capacity; every wait it sleeps is in
//     [0, max_wait]; a refusal is rate_limited with a retry_after in [0, 1e12] ms.
//  3. It follows the server: when a remaining header reads below 1 and its reset is readable (or a
//     429 asked for a positive Retry-After), the next call waits at least that long, or is
//     refused with a retry_after at least that long when it passes max_wait.

#include "fuzz_support.hpp"

#include <sturdy/detail/api_error.hpp>
#include <sturdy/policy.hpp>
#include <sturdy/rate_limiter.hpp>
#include <sturdy/result.hpp>
#include <sturdy/testing/fake_clock.hpp>

#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sturdy_fuzz {

/// Go's duration syntax, read here term by term: nanoseconds as a double.
inline std::optional<double> reset_duration_reference(std::string_view text) {
    text = sturdy::detail::trim(text);
    if (text == "0") return 0.0;
    if (text.empty()) return std::nullopt;
    double total = 0;
    while (!text.empty()) {
        std::size_t n = 0;
        while (n < text.size() && ((text[n] >= '0' && text[n] <= '9') || text[n] == '.')) ++n;
        const auto number = strict_decimal(text.substr(0, n));
        if (n == 0 || !number) return std::nullopt;
        text.remove_prefix(n);
        std::size_t u = 0;
        while (u < text.size() && !((text[u] >= '0' && text[u] <= '9') || text[u] == '.')) ++u;
        const std::string_view unit = text.substr(0, u);
        text.remove_prefix(u);
        double scale;
        if (unit == "h")
            scale = 3600e9;
        else if (unit == "m")
            scale = 60e9;
        else if (unit == "s")
            scale = 1e9;
        else if (unit == "ms")
            scale = 1e6;
        else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs")
            scale = 1e3;
        else if (unit == "ns")
            scale = 1;
        else
            return std::nullopt;
        total += *number * scale;
    }
    if (!(total <= 1e18)) return std::nullopt;
    return total;
}

inline void check_reset_duration(std::string_view text) {
    const auto got = sturdy::parse_reset_duration(text);
    if (got) {
        require(got->count() >= 0 && got->count() <= 1000000000000000000LL, "reset duration: in [0, 1e18] ns",
                escaped(text) + " gave " + std::to_string(got->count()));
    }
    const auto expected = reset_duration_reference(text);
    // Rounding at the 1e18 edge may tip either way; elsewhere the two readings agree.
    if (expected && std::fabs(*expected - 1e18) < 1e9) return;
    require(got.has_value() == expected.has_value(), "reset duration: read exactly when it is Go duration syntax",
            escaped(text) + (got ? " was read" : " was refused"));
    if (got)
        require(std::fabs(static_cast<double>(got->count()) - *expected) <= 1 + *expected * 1e-9,
                "reset duration: the sum of its terms", escaped(text) + " gave " + std::to_string(got->count()));
}

inline void check_rate_limit(const std::uint8_t* data, std::size_t size) {
    using namespace std::chrono;
    const std::string_view text = as_text(data, size);
    input_rng rng(text);

    sturdy::response_headers headers;
    for (std::string_view rest = text; !rest.empty();) {
        const auto end = rest.find('\n');
        const std::string_view line = rest.substr(0, end);
        headers.add_line(line);
        if (auto colon = line.find(':'); colon != std::string_view::npos) check_reset_duration(line.substr(colon + 1));
        rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 1);
    }
    const std::string_view first_line = text.substr(0, text.find('\n'));
    check_reset_duration(first_line);
    const bool too_many = first_line.substr(0, 3) == "429";

    // 2. A limiter that saw the headers.
    sturdy::testing::fake_clock fake;
    sturdy::rate_limiter_options o;
    o.requests = 60;
    o.tokens = 10000;
    o.adapt_to_server = true;
    o.max_wait = milliseconds(1 + static_cast<std::int64_t>(rng.below(3600000)));
    sturdy::rate_limiter limiter(o, fake.timing());

    auto call = [&](bool first) {
        sturdy::call_state state;
        sturdy::call_context ctx(sturdy::operation::chat, "m", state);
        ctx.estimated_prompt_tokens = 10;  // a call that needs tokens: a token hold applies to it
        ctx.max_output_tokens = 0;
        return limiter.execute(ctx, [&](sturdy::call_context&) -> sturdy::result<int> {
            if (!first) return 42;
            auto seen = std::make_shared<sturdy::reply_observation>();
            seen->headers = headers;
            sturdy::result<int> out = 42;
            if (too_many) {
                seen->status = 429;
                out = sturdy::detail::status_error(429, headers, "", "", fake.wall_now());
            }
            out.set_observation(std::move(seen));
            return out;
        });
    };
    auto require_sane = [&](const sturdy::result<int>& r, const char* which) {
        for (auto kind : {sturdy::rate_limit_kind::requests, sturdy::rate_limit_kind::tokens}) {
            const double level = limiter.available(kind);
            require(std::isfinite(level) && level <= (kind == sturdy::rate_limit_kind::requests ? 60 : 10000),
                    "rate limiter: levels stay finite and within capacity",
                    std::string(which) + ": " + std::to_string(level));
        }
        for (auto d : fake.sleeps())
            require(d >= nanoseconds::zero() && d <= o.max_wait, "rate limiter: every wait is in [0, max_wait]",
                    std::string(which) + ": " + std::to_string(d.count()) + " ns");
        if (!r && r.error().kind() == sturdy::error_kind::rate_limited) {
            const auto after = r.error().retry_after();
            require(!after || (after->count() >= 0 && after->count() <= 1000000000000LL),
                    "rate limiter: a refusal's retry_after is in [0, 1e12] ms", which);
        }
    };

    const auto first = call(true);
    require_sane(first, "first call");

    // 3. What the server asked for, read by this check.
    nanoseconds hold{0};
    for (auto [remaining_name, reset_name] : {std::pair{"x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"},
                                              std::pair{"x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"}}) {
        const auto remaining = headers.find(remaining_name);
        const auto value = remaining ? strict_decimal(*remaining) : std::nullopt;
        if (!value || *value < 0 || *value >= 1) continue;
        if (const auto reset = reset_duration_reference(headers.get(reset_name)); reset && *reset < 1e18 - 1e9)
            hold = std::max(hold, nanoseconds(static_cast<std::int64_t>(*reset)));
    }
    if (too_many && !first && first.error().retry_after() && *first.error().retry_after() > milliseconds::zero())
        hold = std::max(hold, duration_cast<nanoseconds>(*first.error().retry_after()));
    // Microsecond slack: the reference sums in doubles, the limiter rounds.
    hold = hold > microseconds(1) ? hold - microseconds(1) : nanoseconds(0);

    const auto slept_before = fake.sleeps().size();
    const auto second = call(false);
    require_sane(second, "second call");
    if (hold > nanoseconds::zero()) {
        if (second) {
            const auto sleeps = fake.sleeps();
            require(sleeps.size() > slept_before && sleeps.back() >= hold,
                    "rate limiter: the next call waits out the server's hold",
                    "hold " + std::to_string(hold.count()) + " ns");
        } else {
            require(second.error().kind() == sturdy::error_kind::rate_limited && second.error().retry_after() &&
                        *second.error().retry_after() >= duration_cast<milliseconds>(hold),
                    "rate limiter: a hold past max_wait is refused with the hold as retry_after",
                    std::string(sturdy::to_string(second.error().kind())));
        }
    }
    require_sane(call(false), "third call");
}

}  // namespace sturdy_fuzz

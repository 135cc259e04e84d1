#include <sturdy/retry_after.hpp>

#include "support/catch.hpp"

using namespace std::chrono;

namespace {
const auto now = system_clock::time_point(seconds(784111777));  // Sun, 06 Nov 1994 08:49:37 GMT

std::optional<milliseconds> parse(std::initializer_list<std::pair<const char*, const char*>> headers) {
    sturdy::response_headers h;
    for (auto& [name, value] : headers) h.add(name, value);
    return sturdy::parse_retry_after(h, now);
}
}  // namespace

TEST_CASE("retry-after: retry-after-ms wins over retry-after", "[retry_after]") {
    CHECK(parse({{"retry-after-ms", "1500"}, {"retry-after", "9"}}) == milliseconds(1500));
    CHECK(parse({{"Retry-After-Ms", "250.6"}}) == milliseconds(251));
}

TEST_CASE("retry-after: seconds, whole or fractional", "[retry_after]") {
    CHECK(parse({{"retry-after", "20"}}) == milliseconds(20000));
    CHECK(parse({{"Retry-After", " 0.5 "}}) == milliseconds(500));
    CHECK(parse({{"retry-after", "-3"}}) == milliseconds(-3000));
}

TEST_CASE("retry-after: the three HTTP date forms", "[retry_after]") {
    CHECK(parse({{"retry-after", "Sun, 06 Nov 1994 08:50:07 GMT"}}) == milliseconds(30000));
    CHECK(parse({{"retry-after", "Sunday, 06-Nov-94 08:50:07 GMT"}}) == milliseconds(30000));
    CHECK(parse({{"retry-after", "Sun Nov  6 08:50:07 1994"}}) == milliseconds(30000));
    // A date in the past gives a negative delay, which the retry policy does not honour.
    CHECK(parse({{"retry-after", "Sun, 06 Nov 1994 08:49:27 GMT"}}) == milliseconds(-10000));
}

TEST_CASE("retry-after: absent or unreadable values give nothing", "[retry_after]") {
    CHECK_FALSE(parse({}).has_value());
    CHECK_FALSE(parse({{"retry-after", "soon"}}).has_value());
    CHECK_FALSE(parse({{"retry-after", "Sun, 06 Foo 1994 08:49:37 GMT"}}).has_value());
    CHECK_FALSE(parse({{"retry-after", "1.2.3"}}).has_value());
    // An unreadable retry-after-ms falls through to retry-after.
    CHECK(parse({{"retry-after-ms", "x"}, {"retry-after", "2"}}) == milliseconds(2000));
}

TEST_CASE("retry-after: absurd values stay representable", "[retry_after]") {
    auto huge = parse({{"retry-after", "99999999999999999999"}});
    REQUIRE(huge.has_value());
    CHECK(*huge > hours(24 * 365));
}

TEST_CASE("retry-after: http dates parse to the right instant", "[retry_after]") {
    auto t = sturdy::parse_http_date("Thu, 01 Jan 2026 00:00:00 GMT");
    REQUIRE(t.has_value());
    CHECK(duration_cast<seconds>(t->time_since_epoch()).count() == 1767225600);
    CHECK(sturdy::parse_http_date("Sat, 29 Feb 2020 12:00:00 GMT").has_value());
    CHECK_FALSE(sturdy::parse_http_date("29 Feb 2020").has_value());
}

TEST_CASE("retry-after: a date centuries ahead is a huge delay, without overflow", "[retry_after]") {
    // system_clock counts nanoseconds in libstdc++: the year 3000 is past what it can hold.
    auto far = parse({{"retry-after", "Wed, 01 Jan 3000 00:00:00 GMT"}});
    REQUIRE(far.has_value());
    CHECK(*far > hours(24 * 365 * 30));  // clamped, but "too long" all the same
    auto farther = parse({{"retry-after", "Fri, 31 Dec 999999999 23:59:59 GMT"}});
    REQUIRE(farther.has_value());
    CHECK(*farther >= *far);
    // The public parser says it cannot represent such a date rather than overflowing.
    CHECK_FALSE(sturdy::parse_http_date("Wed, 01 Jan 3000 00:00:00 GMT").has_value());
    CHECK(sturdy::parse_http_date("Fri, 01 Jan 2100 00:00:00 GMT").has_value());
}

#include <sturdy/sse.hpp>

#include "support/catch.hpp"

#include <random>
#include <string>
#include <vector>

namespace {

struct seen_event {
    std::string type, data, id, error;
    bool operator==(const seen_event& o) const { return type == o.type && data == o.data && id == o.id && error == o.error; }
};

std::ostream& operator<<(std::ostream& os, const seen_event& e) {
    return os << "{type=" << e.type << " data=" << e.data << " id=" << e.id << " error=" << e.error << "}";
}

// Feeds `stream` cut at the given offsets, then finishes.
std::vector<seen_event> parse_split(const std::string& stream, const std::vector<std::size_t>& cuts) {
    sturdy::sse_parser parser;
    std::vector<seen_event> out;
    auto collect = [&](const sturdy::sse_event& e) {
        out.push_back({std::string(e.type), std::string(e.data), std::string(e.id), std::string(e.error)});
    };
    std::size_t at = 0;
    for (std::size_t cut : cuts) {
        parser.feed(std::string_view(stream).substr(at, cut - at), collect);
        at = cut;
    }
    parser.feed(std::string_view(stream).substr(at), collect);
    parser.finish(collect);
    return out;
}

std::vector<seen_event> parse_whole(const std::string& stream) { return parse_split(stream, {}); }

std::vector<seen_event> parse_bytewise(const std::string& stream) {
    std::vector<std::size_t> cuts;
    for (std::size_t i = 1; i < stream.size(); ++i) cuts.push_back(i);
    return parse_split(stream, cuts);
}

std::vector<seen_event> parse_random(const std::string& stream, unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<std::size_t> cuts;
    for (std::size_t i = 1; i < stream.size(); ++i)
        if (rng() % 5 == 0) cuts.push_back(i);
    return parse_split(stream, cuts);
}

// Every way of feeding the same bytes must give the same events.
void check_all_splits(const std::string& stream, const std::vector<seen_event>& expected) {
    CHECK(parse_whole(stream) == expected);
    CHECK(parse_bytewise(stream) == expected);
    for (unsigned seed = 1; seed <= 50; ++seed) CHECK(parse_random(stream, seed) == expected);
}

}  // namespace

TEST_CASE("sse: data lines become message events", "[sse]") {
    check_all_splits("data: one\n\ndata: two\n\n", {{"message", "one", "", ""}, {"message", "two", "", ""}});
}

TEST_CASE("sse: LF, CR and CRLF line ends are all accepted", "[sse]") {
    const std::vector<seen_event> expected{{"message", "a", "", ""}, {"message", "b", "", ""}, {"message", "c", "", ""}};
    check_all_splits("data: a\n\ndata: b\r\rdata: c\r\n\r\n", expected);
}

TEST_CASE("sse: a CRLF split across two reads is one line end", "[sse]") {
    // Split exactly between CR and LF: the LF must not count as a second (blank) line.
    const std::string stream = "data: x\r\ndata: y\r\n\r\n";
    const std::vector<seen_event> expected{{"message", "x\ny", "", ""}};
    for (std::size_t cut = 1; cut < stream.size(); ++cut) CHECK(parse_split(stream, {cut}) == expected);
}

TEST_CASE("sse: only one space after the colon is removed", "[sse]") {
    check_all_splits("data:no space\n\ndata:  two spaces\n\n", {{"message", "no space", "", ""}, {"message", " two spaces", "", ""}});
}

TEST_CASE("sse: comment lines are ignored", "[sse]") {
    check_all_splits(": keep-alive\n: OPENROUTER PROCESSING\n\ndata: real\n\n", {{"message", "real", "", ""}});
}

TEST_CASE("sse: multi-line data is joined with newlines", "[sse]") {
    check_all_splits("data: first\ndata:\ndata: third\n\n", {{"message", "first\n\nthird", "", ""}});
}

TEST_CASE("sse: event, id and retry fields", "[sse]") {
    sturdy::sse_parser parser;
    std::vector<seen_event> out;
    auto collect = [&](const sturdy::sse_event& e) {
        out.push_back({std::string(e.type), std::string(e.data), std::string(e.id), std::string(e.error)});
    };
    parser.feed("event: update\nid: 42\nretry: 1500\ndata: payload\n\ndata: next\n\n", collect);
    REQUIRE(out.size() == 2);
    CHECK(out[0] == seen_event{"update", "payload", "42", ""});
    // The event type resets after dispatch; the last event ID persists.
    CHECK(out[1] == seen_event{"message", "next", "42", ""});
    REQUIRE(parser.retry().has_value());
    CHECK(parser.retry()->count() == 1500);
    CHECK(parser.last_event_id() == "42");
}

TEST_CASE("sse: a retry field that is not all digits is ignored", "[sse]") {
    sturdy::sse_parser parser;
    parser.feed("retry: 10s\ndata: x\n\n", [](const sturdy::sse_event&) {});
    CHECK_FALSE(parser.retry().has_value());
}

TEST_CASE("sse: a field without a colon has an empty value", "[sse]") {
    // "data" alone appends an empty line to the data buffer, which makes the event non-empty.
    check_all_splits("data\n\n", {{"message", "", "", ""}});
}

TEST_CASE("sse: a blank line with no data dispatches nothing", "[sse]") {
    check_all_splits("\n\nevent: lonely\n\n\ndata: after\n\n", {{"message", "after", "", ""}});
}

TEST_CASE("sse: [DONE] is an ordinary data event at this level", "[sse]") {
    check_all_splits("data: {\"a\":1}\n\ndata: [DONE]\n\n", {{"message", "{\"a\":1}", "", ""}, {"message", "[DONE]", "", ""}});
}

TEST_CASE("sse: a UTF-8 sequence split between reads arrives whole", "[sse]") {
    const std::string text = "h\xC3\xA9llo \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x98\x80";  // héllo 你好 😀
    check_all_splits("data: " + text + "\n\n", {{"message", text, "", ""}});
}

TEST_CASE("sse: a leading byte-order mark is skipped, even split", "[sse]") {
    check_all_splits("\xEF\xBB\xBF" "data: x\n\n", {{"message", "x", "", ""}});
    // A partial BOM-like prefix that is not a BOM stays in the text.
    check_all_splits("\xEF" "data\n\n", {});
}

TEST_CASE("sse: llama.cpp's error field is surfaced", "[sse]") {
    check_all_splits("error: {\"message\":\"boom\"}\n\n", {{"message", "", "", "{\"message\":\"boom\"}"}});
}

TEST_CASE("sse: an event cut off mid-line at the end is dropped, a complete last line is kept", "[sse]") {
    CHECK(parse_whole("data: complete\n") == std::vector<seen_event>{{"message", "complete", "", ""}});
    CHECK(parse_whole("data: first\n\ndata: cut off") == std::vector<seen_event>{{"message", "first", "", ""}, {"message", "cut off", "", ""}});
    sturdy::sse_parser parser;
    parser.feed("data: partial", [](const sturdy::sse_event&) {});
    CHECK(parser.mid_event());
}

TEST_CASE("sse: a callback returning false stops the parser", "[sse]") {
    sturdy::sse_parser parser;
    int seen = 0;
    const bool finished = parser.feed("data: 1\n\ndata: 2\n\ndata: 3\n\n", [&](const sturdy::sse_event&) { return ++seen < 2; });
    CHECK_FALSE(finished);
    CHECK(seen == 2);
}

TEST_CASE("sse: a long stream of events at random splits loses nothing", "[sse]") {
    std::string stream;
    std::vector<seen_event> expected;
    for (int i = 0; i < 300; ++i) {
        const std::string data = "{\"n\":" + std::to_string(i) + ",\"text\":\"\xE2\x82\xAC" + std::to_string(i * 7) + "\"}";
        const char* ends[] = {"\n", "\r\n", "\r"};
        const std::string eol = ends[i % 3];
        stream += (i % 10 == 0 ? ": ping" + eol : std::string()) + "data: " + data + eol + eol;
        expected.push_back({"message", data, "", ""});
    }
    check_all_splits(stream, expected);
}

TEST_CASE("sse: a line that never ends stops the parser at its limit", "[sse]") {
    sturdy::sse_parser parser(64);
    int events = 0;
    auto count = [&](const sturdy::sse_event&) { ++events; };
    CHECK(parser.feed("data: {\"ok\":1}\n\n", count));
    CHECK(events == 1);
    const std::string endless(40, 'x');
    CHECK(parser.feed("data: " + endless, count));  // 46 bytes held: within the limit
    CHECK_FALSE(parser.feed(endless, count));       // 86: past it
    CHECK(parser.overflowed());
    CHECK_FALSE(parser.mid_event());          // what was held is released
    CHECK_FALSE(parser.feed("\n\n", count));  // and the parser stays stopped
    CHECK(events == 1);
}

TEST_CASE("sse: an event's data lines count together against the limit", "[sse]") {
    sturdy::sse_parser parser(32);
    std::vector<std::string> data;
    auto collect = [&](const sturdy::sse_event& e) { data.emplace_back(e.data); };
    CHECK(parser.feed("data: 0123456789\ndata: 0123456789\n\n", collect));  // 21 bytes joined
    REQUIRE(data.size() == 1);
    CHECK_FALSE(parser.feed("data: 0123456789\ndata: 0123456789\ndata: 0123456789\ndata: 0123456789\n", collect));
    CHECK(parser.overflowed());
    CHECK(data.size() == 1);
}

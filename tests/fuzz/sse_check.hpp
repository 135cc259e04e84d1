#pragma once
// Fuzz check for sturdy::sse_parser (sse.hpp). The input is the raw bytes of an event stream.
//
// Invariants:
//  1. Read boundaries do not matter: the bytes fed whole, byte by byte, cut after every CR (so
//     each CRLF straddles two reads), cut inside a leading byte-order mark, and cut at points
//     drawn from the input (with empty reads between) give the same events (type, data, id,
//     error), in the same order, up to and including those finish() dispatches; and the same
//     last_event_id() and retry() afterwards.
//  2. The events are the ones an independent, line-at-a-time reading of the WHATWG rules gives
//     (plus sturdy's documented extensions: the `error:` field, and finish() honouring a last
//     line without its blank line), so the parser is not merely consistent but right.
//  3. A callback that returns false after k events stops the parser: exactly the first k events
//     are seen and feed() (or finish()) returns false.
//  4. With a size limit (where sse_parser has one), read boundaries still do not matter: same
//     events, same overflowed(); a limit not reached changes nothing (see check_sse_limit).

#include "fuzz_support.hpp"

#include <sturdy/sse.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace sturdy_fuzz {

struct sse_seen {
    std::string type, data, id, error;
    bool operator==(const sse_seen& o) const {
        return type == o.type && data == o.data && id == o.id && error == o.error;
    }
    bool operator!=(const sse_seen& o) const { return !(*this == o); }
};

struct sse_outcome {
    std::vector<sse_seen> events;
    std::string last_id;
    std::optional<long long> retry_ms;
};

inline std::string describe(const sse_seen& e) {
    return "{type=" + escaped(e.type, 40) + " data=" + escaped(e.data, 60) + " id=" + escaped(e.id, 40) +
           " error=" + escaped(e.error, 40) + "}";
}

/// Feeds `stream` to a fresh parser in the pieces `cuts` (ascending offsets) make, then finishes.
/// With `empty_reads`, an empty read goes before every piece.
inline sse_outcome sse_parse_split(std::string_view stream, const std::vector<std::size_t>& cuts,
                                   bool empty_reads = false) {
    sturdy::sse_parser parser;
    sse_outcome out;
    auto collect = [&](const sturdy::sse_event& e) {
        out.events.push_back({std::string(e.type), std::string(e.data), std::string(e.id), std::string(e.error)});
    };
    std::size_t at = 0;
    auto feed_to = [&](std::size_t end) {
        if (empty_reads) parser.feed(std::string_view{}, collect);
        parser.feed(stream.substr(at, end - at), collect);
        at = end;
    };
    for (std::size_t cut : cuts)
        if (cut > at && cut < stream.size()) feed_to(cut);
    feed_to(stream.size());
    parser.finish(collect);
    out.last_id = parser.last_event_id();
    if (auto r = parser.retry()) out.retry_ms = r->count();
    return out;
}

/// An independent reading of the event-stream rules, one whole line at a time.
inline sse_outcome sse_reference(std::string_view s) {
    sse_outcome out;
    if (s.substr(0, 3) == "\xEF\xBB\xBF") s.remove_prefix(3);
    std::string data, type, error;
    bool has_data = false, has_error = false;
    auto dispatch = [&] {
        if (has_data || has_error) out.events.push_back({type.empty() ? "message" : type, data, out.last_id, error});
        data.clear(), type.clear(), error.clear();
        has_data = has_error = false;
    };
    auto line = [&](std::string_view l) {
        if (l.empty()) return dispatch();
        if (l[0] == ':') return;
        std::string_view field = l, value;
        if (auto colon = l.find(':'); colon != std::string_view::npos) {
            field = l.substr(0, colon);
            value = l.substr(colon + 1);
            if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
        }
        if (field == "data") {
            if (has_data) data += '\n';
            data += value;
            has_data = true;
        } else if (field == "event") {
            type = std::string(value);
        } else if (field == "id") {
            if (value.find('\0') == std::string_view::npos) out.last_id = std::string(value);
        } else if (field == "retry") {
            // All digits, at most 18 of them (more could overflow, and are ignored).
            bool digits = !value.empty() && value.size() <= 18;
            long long n = 0;
            for (std::size_t i = 0; digits && i < value.size(); ++i) {
                if (value[i] < '0' || value[i] > '9')
                    digits = false;
                else
                    n = n * 10 + (value[i] - '0');
            }
            if (digits) out.retry_ms = n;
        } else if (field == "error") {
            error = std::string(value);
            has_error = true;
        }
    };
    std::size_t start = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '\r' && s[i] != '\n') continue;
        line(s.substr(start, i - start));
        if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
        start = i + 1;
    }
    if (start < s.size()) line(s.substr(start));  // finish(): a last line without its end
    dispatch();                                   // finish(): an event without its blank line
    return out;
}

inline void require_same(const sse_outcome& expected, const sse_outcome& got, std::string_view how) {
    const std::string label = "sse: events do not depend on read boundaries (" + std::string(how) + ")";
    require(expected.events.size() == got.events.size(), label,
            std::to_string(expected.events.size()) + " events vs " + std::to_string(got.events.size()));
    for (std::size_t i = 0; i < expected.events.size(); ++i)
        if (expected.events[i] != got.events[i])
            require(
                false, label,
                "event " + std::to_string(i) + ": " + describe(expected.events[i]) + " vs " + describe(got.events[i]));
    if (expected.last_id != got.last_id)
        require(false, label, "last_event_id " + escaped(expected.last_id) + " vs " + escaped(got.last_id));
    require(expected.retry_ms == got.retry_ms, label, "retry differs");
}

/// Events and overflowed() of a parser limited to `limit` bytes a line or event, fed in the pieces
/// `cuts` make. Only for a Parser that has the limit (sse_parser(max_event_bytes)).
template <class Parser>
std::pair<std::vector<sse_seen>, bool> sse_parse_limited(std::string_view stream, const std::vector<std::size_t>& cuts,
                                                         std::size_t limit) {
    Parser parser(limit);
    std::vector<sse_seen> events;
    auto collect = [&](const sturdy::sse_event& e) {
        events.push_back({std::string(e.type), std::string(e.data), std::string(e.id), std::string(e.error)});
    };
    bool going = true;
    std::size_t at = 0;
    for (std::size_t cut : cuts) {
        if (!going || cut <= at || cut >= stream.size()) continue;
        going = parser.feed(stream.substr(at, cut - at), collect);
        at = cut;
    }
    if (going) going = parser.feed(stream.substr(at), collect);
    if (going) parser.finish(collect);
    return {events, parser.overflowed()};
}

/// 4. With a size limit (sse_parser(max_event_bytes), where the parser has one), read boundaries
/// still do not matter: the same events, and overflowed() alike; without an overflow, the events
/// are the unlimited parser's. The limit is N when the stream starts with ":limit N" (a comment),
/// else drawn from the input.
template <class Parser>
void check_sse_limit(std::string_view stream, const sse_outcome& unlimited, input_rng& rng,
                     const std::vector<std::size_t>& bytewise, const std::vector<std::size_t>& drawn) {
    if constexpr (std::is_constructible_v<Parser, std::size_t>) {
        std::size_t limit = 1 + rng.below(4 * stream.size() + 4);
        if (stream.rfind(":limit ", 0) == 0) {
            limit = 0;
            for (std::size_t i = 7; i < stream.size() && i < 16 && stream[i] >= '0' && stream[i] <= '9'; ++i)
                limit = limit * 10 + static_cast<std::size_t>(stream[i] - '0');
            if (limit == 0) limit = 1;
        }
        const auto whole = sse_parse_limited<Parser>(stream, {}, limit);
        const std::string label = "sse: with a " + std::to_string(limit) + "-byte limit, read boundaries do not matter";
        for (const auto* cuts : {&bytewise, &drawn}) {
            const auto split = sse_parse_limited<Parser>(stream, *cuts, limit);
            if (split.second != whole.second)
                require(false, label,
                        std::string("overflowed() is ") + (whole.second ? "true" : "false") + " fed whole, " +
                            (split.second ? "true" : "false") + " fed " +
                            (cuts == &bytewise ? "byte by byte" : "in pieces"));
            if (split.first != whole.first)
                require(false, label,
                        std::to_string(whole.first.size()) + " events fed whole, " +
                            std::to_string(split.first.size()) + " split");
        }
        if (!whole.second && whole.first != unlimited.events)
            require(false, "sse: a limit that is not reached changes nothing", std::to_string(limit) + " bytes");
    } else {
        (void)stream, (void)unlimited, (void)rng, (void)bytewise, (void)drawn;
    }
}

inline void check_sse(const std::uint8_t* data, std::size_t size) {
    const std::string_view stream = as_text(data, size);
    const sse_outcome whole = sse_parse_split(stream, {});

    // 2. Right, not only consistent.
    const sse_outcome reference = sse_reference(stream);
    require(
        reference.events.size() == whole.events.size(), "sse: events are the ones the event-stream rules give",
        "expected " + std::to_string(reference.events.size()) + " events, got " + std::to_string(whole.events.size()));
    for (std::size_t i = 0; i < reference.events.size(); ++i)
        if (reference.events[i] != whole.events[i])
            require(false, "sse: events are the ones the event-stream rules give",
                    "event " + std::to_string(i) + ": expected " + describe(reference.events[i]) + ", got " +
                        describe(whole.events[i]));
    require(reference.last_id == whole.last_id, "sse: last_event_id() is the last id field without NUL");
    require(reference.retry_ms == whole.retry_ms, "sse: retry() is the last all-digit retry field");

    // 1. Read boundaries.
    std::vector<std::size_t> bytewise, after_cr, in_bom = {1, 2, 3, 4}, drawn;
    for (std::size_t i = 1; i < size; ++i) bytewise.push_back(i);
    for (std::size_t i = 0; i + 1 < size; ++i)
        if (stream[i] == '\r') after_cr.push_back(i + 1);
    input_rng rng(stream);
    for (std::size_t at = 0; size > 1;) {
        at += 1 + rng.below(size < 16 ? size : 16);
        if (at >= size) break;
        drawn.push_back(at);
    }
    require_same(whole, sse_parse_split(stream, bytewise), "byte by byte");
    require_same(whole, sse_parse_split(stream, after_cr), "cut after every CR");
    require_same(whole, sse_parse_split(stream, in_bom), "cut in the first bytes");
    require_same(whole, sse_parse_split(stream, drawn, /*empty_reads=*/true), "cut at points drawn from the input");

    check_sse_limit<sturdy::sse_parser>(stream, whole, rng, bytewise, drawn);

    // 3. Stopping after k events.
    if (!whole.events.empty()) {
        const std::size_t k = 1 + rng.below(whole.events.size());
        sturdy::sse_parser parser;
        std::vector<sse_seen> seen;
        auto stop_at_k = [&](const sturdy::sse_event& e) {
            seen.push_back({std::string(e.type), std::string(e.data), std::string(e.id), std::string(e.error)});
            return seen.size() < k;
        };
        bool going = true;
        std::size_t at = 0;
        for (std::size_t cut : drawn) {
            if (!going) break;
            going = parser.feed(stream.substr(at, cut - at), stop_at_k);
            at = cut;
        }
        if (going) going = parser.feed(stream.substr(at), stop_at_k);
        if (going) going = parser.finish(stop_at_k);
        require(!going, "sse: a callback returning false stops the parser", "feed/finish kept returning true");
        require(seen.size() == k, "sse: nothing is delivered after a callback returned false",
                std::to_string(seen.size()) + " events seen, stopped at " + std::to_string(k));
        for (std::size_t i = 0; i < k; ++i)
            require(seen[i] == whole.events[i], "sse: the events before a stop are the stream's first ones");
    }
}

}  // namespace sturdy_fuzz

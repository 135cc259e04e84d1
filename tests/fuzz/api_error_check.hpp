#pragma once
// Fuzz check for the error-reply parsers (detail/api_error.hpp): status_error, for a reply with an
// error status, and stream_error, for an error a stream carries.
//
// The input reads like an HTTP reply: a status line, header lines, a blank line, the body
// ("429\nretry-after: 2\n\n{\"error\":...}"). Without a blank line it is all body, and the status
// is drawn from the input. Before splitting, "@@" becomes the API key and "@0".."@9" become
// 8-character pieces of it, so the fuzzer can echo the key anywhere.
//
// Invariants, for status_error(status, headers, body, key) and stream_error(body, key):
//  1. No string of the error (what(), message, type, code, param, request_id, body) contains the
//     key, nor any run of 8 of its characters (what redact() promises).
//  2. The body is cut to error_body_limit bytes plus "...", never more; without the key in it,
//     it is the reply's body itself, or a prefix of it that does not end inside a UTF-8 sequence.
//  3. The kind is the status's kind (kind_for_status), or context_length_exceeded for a
//     400/413/422; status() is the status; retry_after() is parse_retry_after(headers, now);
//     the message is never empty.
//  4. stream_error: status() is 0; the message starts with "stream error: "; the kind is one a
//     server can cause; for {"error":{"message":"...","code":N}} it is N's kind when N is an
//     HTTP error status (400..599, or context_length_exceeded), and otherwise not derived from N.

#include "fuzz_support.hpp"

#include <sturdy/detail/api_error.hpp>
#include <sturdy/error.hpp>
#include <sturdy/http.hpp>
#include <sturdy/retry_after.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sturdy_fuzz {

/// The key every fuzz check hides: letters and digits only, so no run of 8 of its characters can
/// be made from the text sturdy adds around a server's words ("[redacted]", "HTTP 401: ", "...").
inline constexpr std::string_view fuzz_secret = "sk-FUZZ-0123456789-abcdefghijklmnopqrst";

/// `text` with "@@" replaced by the key and "@<digit>" by 8 characters of it.
inline std::string splice_secret(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '@' && i + 1 < text.size()) {
            const char next = text[i + 1];
            if (next == '@') {
                out += fuzz_secret;
                ++i;
                continue;
            }
            if (next >= '0' && next <= '9') {
                out += fuzz_secret.substr(static_cast<std::size_t>(next - '0') * 3, 8);
                ++i;
                continue;
            }
        }
        out += text[i];
    }
    return out;
}

/// Where in `text` a run of 8 characters of the key starts, or npos. Fast, since it runs over
/// every string of every error: a position is looked at only once 8 key characters end there.
inline std::size_t find_secret_run(std::string_view text) {
    constexpr std::size_t run = 8;
    struct table {
        bool member[256] = {};
        std::vector<std::string_view> pieces;  // sorted
    };
    static const table t = [] {
        table init;
        for (char c : fuzz_secret) init.member[static_cast<unsigned char>(c)] = true;
        for (std::size_t j = 0; j + run <= fuzz_secret.size(); ++j) init.pieces.push_back(fuzz_secret.substr(j, run));
        std::sort(init.pieces.begin(), init.pieces.end());
        return init;
    }();
    std::size_t streak = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        streak = t.member[static_cast<unsigned char>(text[i])] ? streak + 1 : 0;
        if (streak < run) continue;
        const std::size_t start = i + 1 - run;
        if (std::binary_search(t.pieces.begin(), t.pieces.end(), text.substr(start, run))) return start;
    }
    return std::string_view::npos;
}

inline void require_no_secret(const sturdy::error& e, std::string_view who) {
    const auto& d = e.details();
    const std::pair<const char*, std::string_view> fields[] = {
        {"what()", e.what()}, {"message", d.message},       {"type", d.type}, {"code", d.code},
        {"param", d.param},   {"request_id", d.request_id}, {"body", d.body}, {"partial_content", e.partial_content()}};
    for (const auto& [name, text] : fields) {
        const auto at = find_secret_run(text);
        if (at == std::string_view::npos) continue;
        require(false, std::string(who) + ": no run of 8 characters of the key survives",
                std::string(name) + " = " + escaped(text.substr(at >= 40 ? at - 40 : 0, 120)));
    }
}

inline void require_body_kept(const sturdy::error& e, std::string_view raw, std::string_view who) {
    const std::string& body = e.body();
    constexpr std::size_t limit = sturdy::detail::error_body_limit;
    require(body.size() <= limit + 3, std::string(who) + ": the body is cut to error_body_limit (+ \"...\")",
            std::to_string(body.size()) + " bytes kept of " + std::to_string(raw.size()));
    if (find_secret_run(raw) != std::string_view::npos) return;  // redacted: not a plain prefix
    if (raw.size() <= limit) {
        require(body == raw, std::string(who) + ": a body within the limit is kept whole");
        return;
    }
    require(body.size() >= 3 && body.compare(body.size() - 3, 3, "...") == 0,
            std::string(who) + ": a cut body ends with \"...\"");
    const std::string_view kept = std::string_view(body).substr(0, body.size() - 3);
    require(kept.size() <= limit && raw.substr(0, kept.size()) == kept,
            std::string(who) + ": a cut body is a prefix of the body");
    require((static_cast<unsigned char>(raw[kept.size()]) & 0xC0) != 0x80,
            std::string(who) + ": a cut body does not end inside a UTF-8 sequence");
}

inline bool is_server_kind(sturdy::error_kind k) {
    using K = sturdy::error_kind;
    switch (k) {
        case K::bad_request:
        case K::authentication:
        case K::permission_denied:
        case K::not_found:
        case K::conflict:
        case K::unprocessable_entity:
        case K::rate_limit:
        case K::internal_server:
        case K::api_status:
        case K::context_length_exceeded: return true;
        default: return false;
    }
}

inline bool kind_fits_status(sturdy::error_kind kind, long long status) {
    if (status >= 400 && status <= 599 && kind == sturdy::kind_for_status(static_cast<int>(status))) return true;
    const bool may_be_context = status == 400 || status == 413 || status == 422;
    return may_be_context && kind == sturdy::error_kind::context_length_exceeded;
}

/// Status, headers and body of an api_error fuzz input (after the key is spliced in).
struct error_reply {
    int status = 0;
    sturdy::response_headers headers;
    std::string body;
};

inline error_reply split_error_reply(std::string_view text) {
    static constexpr int statuses[] = {400, 401, 403, 404, 409, 413, 422, 429,  500,
                                       502, 503, 529, 302, 418, 0,   -1,  99999};
    error_reply r;
    const auto blank = text.find("\n\n");
    if (blank == std::string_view::npos) {
        input_rng rng(text);
        r.status = statuses[rng.below(sizeof statuses / sizeof statuses[0])];
        r.body = std::string(text);
        return r;
    }
    std::string_view head = text.substr(0, blank);
    r.body = std::string(text.substr(blank + 2));
    const auto eol = head.find('\n');
    std::string_view status_line = sturdy::detail::trim(head.substr(0, eol));
    bool negative = !status_line.empty() && status_line[0] == '-';
    if (negative) status_line.remove_prefix(1);
    long long n = 0;
    for (std::size_t i = 0; i < status_line.size() && i < 9 && status_line[i] >= '0' && status_line[i] <= '9'; ++i)
        n = n * 10 + (status_line[i] - '0');
    r.status = static_cast<int>(negative ? -n : n);
    for (std::string_view rest = eol == std::string_view::npos ? std::string_view{} : head.substr(eol + 1);
         !rest.empty();) {
        const auto end = rest.find('\n');
        r.headers.add_line(rest.substr(0, end));
        rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 1);
    }
    return r;
}

/// For {"error":{"message":"<text>","code":N}} (those two keys only, N an integer): N.
inline std::optional<long long> lone_error_code(std::string_view body) {
    const auto j = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
    if (!j.is_object() || !j.contains("error")) return std::nullopt;
    const auto& inner = j["error"];
    if (!inner.is_object() || inner.size() != 2 || !inner.contains("message") || !inner.contains("code"))
        return std::nullopt;
    if (!inner["message"].is_string() || inner["message"].get<std::string>().empty()) return std::nullopt;
    const auto& code = inner["code"];
    if (code.is_number_unsigned()) {
        const auto u = code.get<std::uint64_t>();
        return u > 0x7fffffffffffffffULL ? 0x7fffffffffffffffLL : static_cast<long long>(u);
    }
    if (code.is_number_integer()) return code.get<std::int64_t>();
    return std::nullopt;
}

inline void check_api_error(const std::uint8_t* data, std::size_t size) {
    const std::string text = splice_secret(as_text(data, size));
    const error_reply reply = split_error_reply(text);
    const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1767225600));  // 2026-01-01

    const sturdy::error e = sturdy::detail::status_error(reply.status, reply.headers, reply.body, fuzz_secret, now);
    require_no_secret(e, "status_error");
    require_body_kept(e, reply.body, "status_error");
    require(e.status() == reply.status, "status_error: status() is the reply's status");
    const bool fits = e.kind() == sturdy::kind_for_status(reply.status) || kind_fits_status(e.kind(), reply.status);
    require(fits, "status_error: the kind is the status's kind, or context_length_exceeded for 400/413/422",
            std::string(sturdy::to_string(e.kind())) + " for " + std::to_string(reply.status));
    require(!e.message().empty(), "status_error: the message is never empty");
    require(e.retry_after() == sturdy::parse_retry_after(reply.headers, now),
            "status_error: retry_after() is parse_retry_after()");

    const sturdy::error s = sturdy::detail::stream_error(reply.body, fuzz_secret);
    require_no_secret(s, "stream_error");
    require_body_kept(s, reply.body, "stream_error");
    require(s.status() == 0, "stream_error: no HTTP status");
    require(s.message().rfind("stream error: ", 0) == 0, "stream_error: the message starts with \"stream error: \"",
            escaped(s.message()));
    require(is_server_kind(s.kind()), "stream_error: the kind is one a server can cause",
            std::string(sturdy::to_string(s.kind())));
    if (const auto code = lone_error_code(reply.body)) {
        const bool http = *code >= 400 && *code <= 599;
        const bool ok = http ? kind_fits_status(s.kind(), *code)
                             : (s.kind() == sturdy::error_kind::api_status ||
                                s.kind() == sturdy::error_kind::context_length_exceeded);
        require(ok, "stream_error: an error code is the kind's status only when it is an HTTP error status",
                std::string(sturdy::to_string(s.kind())) + " for code " + std::to_string(*code));
    }
}

}  // namespace sturdy_fuzz

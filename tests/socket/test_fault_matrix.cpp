// The fault matrix: servers that misbehave in every way we know of, over real sockets, each with
// the exact outcome the client owes the caller. One table, one loop: every row runs in its own
// section (named after the row), against fresh servers and a fresh client, with small timeouts so
// a regression fails in a second instead of hanging.
//
// What every row checks, besides its own expectations:
//   * the outcome: success, or the error's kind, status and code;
//   * the call ended within its limits (the per-attempt and total timeouts set below);
//   * a stream's caller saw exactly the text the result carries (content, or partial_content);
//   * the API key is nowhere in the error, nor in the errors of the call's report;
//   * how many requests the server received (retries, and a redirect target that got none).
#include <sturdy/sturdy.hpp>

#include "support/catch.hpp"
#include "support/script_server.hpp"

#include <zlib.h>

#include <chrono>
#include <cstdint>
#include <ctime>
#include <functional>
#include <optional>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using sturdy::error_kind;
using sturdy_test::reply;
using steady = std::chrono::steady_clock;

namespace {

const std::string key = "sk-fault-matrix-0123456789abcdef";

// ---- reply bodies ----

const std::string chat_ok = R"({"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m",
    "choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"finish_reason":"stop"}]})";
const std::string models_ok = R"({"object":"list","data":[{"id":"m","object":"model","created":1,"owned_by":"x"}]})";

std::string chat_with_choices(const std::string& choices) {
    return R"({"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":)" + choices + "}";
}

std::string chunk(const std::string& delta, const char* finish = nullptr) {
    return R"({"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":)" +
           delta + R"(,"finish_reason":)" + (finish ? "\"" + std::string(finish) + "\"" : std::string("null")) + "}]}";
}
std::string text(const std::string& t) { return chunk(nlohmann::json{{"content", t}}.dump()); }
const std::string role = chunk(R"({"role":"assistant","content":""})");
const std::string stop = chunk("{}", "stop");

// role, "Hello", " world", "!", stop, [DONE]
reply good_stream() {
    return reply::sse().data(role).data(text("Hello")).data(text(" world")).data(text("!")).data(stop).data("[DONE]");
}

std::string error_json(const std::string& message) {
    return nlohmann::json{{"error", {{"message", message}, {"type", "server_error"}}}}.dump();
}

// ---- bytes a test builds itself ----

// `pieces` copies of `piece`, compressed as gzip (windowBits 31) or zlib "deflate" (15), without
// ever holding the uncompressed whole: a 64 MiB bomb costs 1 MiB here and ~64 KiB on the wire.
std::string compressed(const std::string& piece, int pieces, bool gzip) {
    z_stream zs{};
    REQUIRE(deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, gzip ? 31 : 15, 9, Z_DEFAULT_STRATEGY) == Z_OK);
    std::string out;
    char buffer[65536];
    for (int i = 0; i < pieces; ++i) {
        zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(piece.data()));
        zs.avail_in = static_cast<uInt>(piece.size());
        const int flush = i + 1 == pieces ? Z_FINISH : Z_NO_FLUSH;
        int rc;
        do {
            zs.next_out = reinterpret_cast<Bytef*>(buffer);
            zs.avail_out = sizeof buffer;
            rc = deflate(&zs, flush);
            out.append(buffer, sizeof buffer - zs.avail_out);
        } while (zs.avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
    }
    deflateEnd(&zs);
    return out;
}
std::string gzipped(const std::string& s) { return compressed(s, 1, true); }
std::string deflated(const std::string& s) { return compressed(s, 1, false); }

// An HTTP date `offset` from now, in one of the three forms (strftime formats).
std::string http_date(std::chrono::seconds offset, const char* format) {
    const std::time_t t = std::time(nullptr) + static_cast<std::time_t>(offset.count());
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, format, &tm);
    return buf;
}
constexpr const char* imf_fixdate = "%a, %d %b %Y %H:%M:%S GMT";
constexpr const char* rfc850_date = "%A, %d-%b-%y %H:%M:%S GMT";
constexpr const char* asctime_date = "%a %b %e %H:%M:%S %Y";

constexpr std::size_t MiB = std::size_t{1} << 20;

// ---- the table ----

enum class call_kind { chat, stream, models };

// What the call must end with: success (kind unset), or an error of this kind, status and code.
struct expectation {
    std::optional<error_kind> kind;
    int status = 0;
    std::string code;
    // Success: the reply's content (models: the first id). Failure: partial_content. Unset: not checked.
    std::optional<std::string> text;
    std::size_t requests = 1;  // what the server received
};

expectation success(std::string content, std::size_t requests = 1) {
    return {std::nullopt, 0, "", std::move(content), requests};
}
expectation failure(error_kind kind, int status = 0, std::string code = "",
                    std::optional<std::string> partial = std::nullopt) {
    return {kind, status, std::move(code), std::move(partial), 1};
}

// The servers of one row: `main` is the API; `other` is where a redirect points.
struct servers {
    sturdy_test::script_server main, other;
};

// What a row may change about the client and the call.
struct knobs {
    sturdy::client_options options;
    sturdy::request_options call;
    int retries = 0;
    steady::duration must_end_within = 3500ms;
};

struct outcome {
    std::optional<sturdy::chat_response> reply;
    std::optional<sturdy::model_list> models;
    std::optional<sturdy::error> error;
    std::string delivered;  // the text a stream's callback saw, in order
    steady::duration took{};
    servers* srv = nullptr;
};

struct row {
    std::string name;
    call_kind call;
    std::function<void(servers&)> script;
    expectation expect;
    std::function<void(knobs&)> tune = {};
    std::function<void(const outcome&)> check = {};
};

// ---- extra checks ----

std::function<void(const outcome&)> retry_after_is(std::optional<std::chrono::milliseconds> expected) {
    return [expected](const outcome& o) { CHECK(o.error->retry_after() == expected); };
}
std::function<void(const outcome&)> retry_after_between(std::chrono::milliseconds low, std::chrono::milliseconds high) {
    return [low, high](const outcome& o) {
        REQUIRE(o.error->retry_after().has_value());
        CHECK(*o.error->retry_after() >= low);
        CHECK(*o.error->retry_after() <= high);
    };
}
std::function<void(const outcome&)> message_has(std::string part) {
    return [part](const outcome& o) {
        INFO(o.error->message());
        CHECK(o.error->message().find(part) != std::string::npos);
    };
}
std::function<void(const outcome&)> ends_within(steady::duration limit) {
    return [limit](const outcome& o) { CHECK(o.took < limit); };
}
std::function<void(const outcome&)> all_of(std::vector<std::function<void(const outcome&)>> checks) {
    return [checks](const outcome& o) {
        for (const auto& c : checks) c(o);
    };
}
// A redirect: named in the message, and the host it points to never hears from the client.
std::function<void(const outcome&)> redirect_not_followed() {
    return [](const outcome& o) {
        CHECK(o.error->message().find(o.srv->other.url("/v1/")) != std::string::npos);
        CHECK(o.srv->other.request_count() == 0);
    };
}
std::function<void(knobs&)> max_response(std::size_t bytes) {
    return [bytes](knobs& k) { k.options.max_response_bytes = bytes; };
}
std::function<void(knobs&)> attempt_timeout(std::chrono::milliseconds t) {
    return [t](knobs& k) {
        k.call.timeout = t;
        k.must_end_within = t + 1s;
    };
}
std::function<void(knobs&)> retries(int n) {
    return [n](knobs& k) { k.retries = n; };
}
std::function<void(knobs&)> with_key(std::string secret) {
    return [secret](knobs& k) { k.options.api_key = secret; };
}

// Retry-After rows: a 429 carrying these headers.
std::function<void(servers&)> rate_limited(std::vector<std::pair<std::string, std::string>> headers) {
    return [headers](servers& s) {
        auto r = reply::json(429, error_json("Rate limit reached"));
        for (const auto& [n, v] : headers) r.header(n, v);
        s.main.enqueue(r);
    };
}
std::function<void(servers&)> rate_limited_at(std::chrono::seconds offset, const char* format) {
    return [offset, format](servers& s) {
        s.main.enqueue(
            reply::json(429, error_json("Rate limit reached")).header("Retry-After", http_date(offset, format)));
    };
}

// A redirect to the other server.
std::function<void(servers&)> redirect(int status) {
    return [status](servers& s) {
        s.main.enqueue(reply::status(status).header("Location", s.other.url("/v1/chat/completions")).body("moved"));
        s.other.set_default(reply::json(200, chat_ok));
    };
}

std::function<void(servers&)> serve(reply r) {
    return [r](servers& s) { s.main.enqueue(r); };
}
std::function<void(servers&)> serve(std::vector<reply> rs) {
    return [rs](servers& s) {
        for (const auto& r : rs) s.main.enqueue(r);
    };
}

std::vector<row> fault_matrix() {
    using ms = std::chrono::milliseconds;
    const auto rate = error_kind::rate_limit;
    const auto server = error_kind::internal_server;
    const auto invalid = error_kind::invalid_response;
    const auto truncated = error_kind::stream_truncated;
    const auto connection = error_kind::connection;
    const auto timeout = error_kind::timeout;
    const std::string too_large(sturdy::error_codes::response_too_large);
    const std::string event_too_large(sturdy::error_codes::event_too_large);
    const std::string redirected(sturdy::error_codes::redirect);

    return {
        // ---- Retry-After, in every form servers send ----
        {"429 retry-after-ms",
         call_kind::chat,
         rate_limited({{"retry-after-ms", "1500"}}),
         failure(rate, 429),
         {},
         retry_after_is(ms(1500))},
        {"429 retry-after-ms wins over retry-after",
         call_kind::chat,
         rate_limited({{"retry-after-ms", "250"}, {"Retry-After", "9"}}),
         failure(rate, 429),
         {},
         retry_after_is(ms(250))},
        {"429 retry-after in seconds",
         call_kind::chat,
         rate_limited({{"Retry-After", "7"}}),
         failure(rate, 429),
         {},
         retry_after_is(ms(7000))},
        {"429 retry-after fractional seconds",
         call_kind::chat,
         rate_limited({{"Retry-After", "1.5"}}),
         failure(rate, 429),
         {},
         retry_after_is(ms(1500))},
        {"429 retry-after IMF-fixdate 30 s ahead",
         call_kind::chat,
         rate_limited_at(30s, imf_fixdate),
         failure(rate, 429),
         {},
         retry_after_between(ms(28000), ms(30000))},
        {"429 retry-after RFC 850 date 30 s ahead",
         call_kind::chat,
         rate_limited_at(30s, rfc850_date),
         failure(rate, 429),
         {},
         retry_after_between(ms(28000), ms(30000))},
        {"429 retry-after asctime date 30 s ahead",
         call_kind::chat,
         rate_limited_at(30s, asctime_date),
         failure(rate, 429),
         {},
         retry_after_between(ms(28000), ms(30000))},
        {"429 retry-after a date in the past",
         call_kind::chat,
         rate_limited_at(-3600s, imf_fixdate),
         failure(rate, 429),
         {},
         retry_after_between(ms(-3602000), ms(-3599000))},
        // Year 3000 overflowed a nanosecond time_point; now it is a huge delay, clamped to 1e12 ms.
        {"429 retry-after in the year 3000",
         call_kind::chat,
         rate_limited({{"Retry-After", "Wed, 01 Jan 3000 00:00:00 GMT"}}),
         failure(rate, 429),
         {},
         retry_after_is(ms(1'000'000'000'000))},
        {"429 retry-after negative",
         call_kind::chat,
         rate_limited({{"Retry-After", "-5"}}),
         failure(rate, 429),
         {},
         retry_after_is(ms(-5000))},
        {"429 retry-after garbage",
         call_kind::chat,
         rate_limited({{"Retry-After", "soon"}}),
         failure(rate, 429),
         {},
         retry_after_is(std::nullopt)},
        {"429 with x-should-retry false is not retried", call_kind::chat,
         serve(reply::json(429, error_json("slow down")).header("x-should-retry", "false")), failure(rate, 429),
         retries(2), [](const outcome& o) { CHECK(o.error->details().should_retry == false); }},
        {"429 with x-should-retry true and retry-after-ms is retried after it", call_kind::chat,
         serve(
             {reply::json(429, error_json("slow down")).header("x-should-retry", "true").header("retry-after-ms", "30"),
              reply::json(200, chat_ok)}),
         success("Hello there", 2), retries(2), [](const outcome& o) { CHECK(o.reply->call.attempts == 2); }},

        // ---- what proxies and gateways answer ----
        {"502 HTML page from a proxy",
         call_kind::chat,
         serve(reply::status(502)
                   .header("Content-Type", "text/html")
                   .body("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n"
                         "<body><center><h1>502 Bad Gateway</h1></center><hr>"
                         "<center>nginx</center></body></html>\r\n")),
         failure(server, 502),
         {},
         [](const outcome& o) {
             CHECK(o.error->message().rfind("HTTP 502: <html>", 0) == 0);
             CHECK(o.error->message().find('\n') == std::string::npos);  // one line
             CHECK(o.error->body().find("502 Bad Gateway") != std::string::npos);
         }},
        {"503 plain text from Envoy",
         call_kind::chat,
         serve(reply::text(503, "upstream connect error or disconnect/reset before headers. reset reason: overflow")),
         failure(server, 503),
         {},
         [](const outcome& o) {
             CHECK(o.error->message() ==
                   "HTTP 503: upstream connect error or disconnect/reset before headers. reset reason: overflow");
         }},
        {"stream: 502 HTML page from a proxy",
         call_kind::stream,
         serve(reply::status(502).header("Content-Type", "text/html").body("<html><h1>502 Bad Gateway</h1></html>")),
         failure(server, 502, "", ""),
         {},
         message_has("Bad Gateway")},
        {"200 text/html login page",
         call_kind::chat,
         serve(reply::status(200)
                   .header("Content-Type", "text/html")
                   .body("<html><form>Sign in to the Wi-Fi</form></html>")),
         failure(invalid, 200),
         {},
         message_has("Sign in")},
        {"stream: 200 text/html login page",
         call_kind::stream,
         serve(reply::status(200)
                   .header("Content-Type", "text/html")
                   .body("<html><form>Sign in to the Wi-Fi</form></html>")),
         failure(invalid, 0, "", ""),
         {},
         message_has("expected an event stream")},

        // ---- connections cut: before the head, mid-body, mid-stream ----
        {"reset before the head", call_kind::chat, serve(reply::raw().reset()), failure(connection)},
        {"closed before the head (empty reply)", call_kind::chat, serve(reply::disconnect()), failure(connection)},
        {"reset mid-body", call_kind::chat,
         serve(reply::json(200, "").content_length(5000).body(chat_ok.substr(0, 40)).delay(50ms).reset()),
         failure(connection)},
        {"Content-Length longer than the body, then close", call_kind::chat,
         serve(reply::json(200, chat_ok).content_length(chat_ok.size() + 100).drop()), failure(connection)},
        {"Content-Length shorter than the body", call_kind::chat, serve(reply::json(200, chat_ok).content_length(40)),
         failure(invalid, 200)},
        {"stream: reset before the head", call_kind::stream, serve(reply::raw().reset()),
         failure(connection, 0, "", "")},
        {"stream: cut before the first token", call_kind::stream, serve(reply::sse().data(role).drop()),
         failure(truncated, 0, "", "")},
        {"stream: cut before the first token, retries on: retried", call_kind::stream,
         serve({reply::sse().data(role).drop(), good_stream()}), success("Hello world!", 2), retries(2)},
        {"stream: reset mid-stream after content", call_kind::stream,
         serve(reply::sse().data(role).data(text("Hello")).delay(50ms).reset()), failure(truncated, 0, "", "Hello")},
        {"stream: cut mid-stream after content, retries on: never replayed", call_kind::stream,
         serve({reply::sse().data(role).data(text("Hello")).drop(), good_stream()}), failure(truncated, 0, "", "Hello"),
         retries(2)},

        // ---- broken framing ----
        {"chunked: a size line that is not hex", call_kind::chat,
         serve(reply::json(200, "").chunked().body(chat_ok.substr(0, 20)).write_raw("zz\r\nxx\r\n")),
         failure(connection)},
        {"chunked: a chunk longer than its data, then close", call_kind::chat,
         serve(reply::json(200, "").chunked().write_raw("400\r\n" + chat_ok.substr(0, 30)).drop()),
         failure(connection)},
        {"stream: chunked framing broken after content", call_kind::stream,
         serve(reply::sse().data(role).data(text("Hello")).delay(20ms).write_raw("zz\r\n")),
         failure(truncated, 0, "", "Hello")},

        // ---- slow servers: slowloris heads, stalls ----
        {"slowloris: the head one byte every 40 ms", call_kind::chat,
         serve(reply::json(200, chat_ok).split_writes(1, 40ms)), failure(timeout), attempt_timeout(400ms)},
        {"stall before the head", call_kind::chat, serve(reply::json(200, chat_ok).delay_headers(30s)),
         failure(timeout), attempt_timeout(400ms)},
        {"stall mid-body", call_kind::chat,
         serve(reply::json(200, "").content_length(2000).body(chat_ok.substr(0, 40)).stall()), failure(timeout),
         attempt_timeout(400ms)},
        {"stream: slowloris head within the total timeout", call_kind::stream,
         serve(reply::sse().data(role).split_writes(1, 40ms)), failure(timeout, 0, "", ""),
         [](knobs& k) {
             k.call.total_timeout = 400ms;
             k.must_end_within = 1400ms;
         }},
        {"stream: stall mid-stream past the idle timeout", call_kind::stream,
         serve(reply::sse().data(role).data(text("Hello")).stall()), failure(timeout, 0, "", "Hello"),
         [](knobs& k) {
             k.call.idle_timeout = 300ms;
             k.must_end_within = 1300ms;
         },
         [](const outcome& o) { CHECK(o.error->message() == "no chunk within 300 ms"); }},
        {"stream: keep-alive comments but no token past the first-token timeout", call_kind::stream,
         [](servers& s) {
             auto r = reply::sse().data(role);
             for (int i = 0; i < 100; ++i) r.event(": keep-alive\n\n").delay(50ms);
             s.main.enqueue(r);
         },
         failure(timeout, 0, "", ""),
         [](knobs& k) {
             k.call.first_token_timeout = 300ms;
             k.must_end_within = 1300ms;
         },
         [](const outcome& o) { CHECK(o.error->message() == "no first token within 300 ms"); }},

        // ---- malformed JSON and SSE ----
        {"200 with truncated JSON", call_kind::chat, serve(reply::json(200, chat_ok.substr(0, 60))),
         failure(invalid, 200)},
        {"stream: a data line that is not JSON", call_kind::stream,
         serve(reply::sse().data(role).data(text("Hello")).data("{\"choices\": [tru")),
         failure(invalid, 0, "", "Hello"), retries(2), message_has("not a JSON object")},
        {"stream: multi-byte characters split between chunks", call_kind::stream,
         [](servers& s) {
             // "café 你好": the é split after its first byte, the 你 after its second.
             const std::string event = "data: " + text("caf\xC3\xA9 \xE4\xBD\xA0\xE5\xA5\xBD") + "\n\n";
             const auto e_at = event.find("\xC3\xA9") + 1, ni_at = event.find("\xE4\xBD\xA0") + 2;
             s.main.enqueue(reply::sse()
                                .data(role)
                                .body(event.substr(0, e_at))
                                .delay(20ms)
                                .body(event.substr(e_at, ni_at - e_at))
                                .delay(20ms)
                                .body(event.substr(ni_at))
                                .data(stop)
                                .data("[DONE]"));
         },
         success("caf\xC3\xA9 \xE4\xBD\xA0\xE5\xA5\xBD")},
        {"stream: invalid UTF-8 in a chunk", call_kind::stream,
         serve(reply::sse().data(role).data(text("Hello")).data(chunk("{\"content\":\"bad \xFF\xFE byte\"}"))),
         failure(invalid, 0, "", "Hello")},
        {"200 with \"choices\": \"oops\"", call_kind::chat, serve(reply::json(200, chat_with_choices(R"("oops")"))),
         failure(invalid, 200)},
        {"200 with \"choices\": null", call_kind::chat, serve(reply::json(200, chat_with_choices("null"))),
         failure(invalid, 200)},
        {"200 without choices", call_kind::chat, serve(reply::json(200, R"({"id":"x","object":"chat.completion"})")),
         failure(invalid, 200)},
        // An empty list is a reply with no choice: valid (OpenAI's own SDKs accept it), empty content.
        {"200 with \"choices\": []",
         call_kind::chat,
         serve(reply::json(200, chat_with_choices("[]"))),
         success(""),
         {},
         [](const outcome& o) { CHECK(o.reply->choices.empty()); }},
        {"models: 200 with \"data\": \"oops\"", call_kind::models,
         serve(reply::json(200, R"({"object":"list","data":"oops"})")), failure(invalid, 200)},

        // ---- huge bodies: the call fails at the limit, having read no more than it ----
        {"2xx body over max_response_bytes, 64 MiB announced by Content-Length", call_kind::chat,
         serve(reply::json(200, std::string(MiB, ' ')).content_length(64 * MiB)), failure(invalid, 0, too_large),
         max_response(MiB), all_of({message_has("limit of 1048576 bytes"), ends_within(1s)})},
        {"2xx chunked body over max_response_bytes, 16 MiB sent", call_kind::chat,
         [](servers& s) {
             auto r = reply::json(200, "{\"choices\":[],\"pad\":\"").chunked();
             const std::string mib(MiB, 'x');
             for (int i = 0; i < 16; ++i) r.body(mib);
             s.main.enqueue(r.body("\"}"));
         },
         failure(invalid, 0, too_large), max_response(MiB),
         all_of({message_has("limit of 1048576 bytes"), ends_within(2s)})},
        {"gzip bomb: 64 MiB inflated from a few KiB", call_kind::chat,
         serve(reply::json(200, compressed(std::string(MiB, ' '), 64, true)).header("Content-Encoding", "gzip")),
         failure(invalid, 0, too_large), max_response(MiB),
         all_of({message_has("limit of 1048576 bytes"), ends_within(2s)})},
        {"stream: a 2xx JSON body over max_response_bytes", call_kind::stream,
         [](servers& s) {
             auto r = reply::json(200, "{\"pad\":\"").chunked();
             const std::string mib(MiB, 'x');
             for (int i = 0; i < 4; ++i) r.body(mib);
             s.main.enqueue(r.body("\"}"));
         },
         failure(invalid, 0, too_large), max_response(MiB), message_has("limit of 1048576 bytes")},
        // max_response_bytes bounds a stream too: its text is kept in memory until the call returns.
        {"stream: more text than max_response_bytes, in small valid chunks", call_kind::stream,
         [](servers& s) {
             std::string block;
             const std::string event = "data: " + text(std::string(16000, 'x')) + "\n\n";
             while (block.size() < MiB) block += event;
             s.main.enqueue(reply::sse().data(role).body(block).stall());  // 4 times the limit
         },
         // A small limit: the text kept (and redacted) in partial_content stays small under sanitizers too.
         failure(invalid, 0, too_large), max_response(256 * 1024), message_has("limit of 262144 bytes")},
        {"500 with a 1 MiB message: read up to the limit, message and body cut",
         call_kind::chat,
         serve(reply::json(500, error_json(std::string(MiB, 'm')))),
         failure(server, 500),
         {},
         [](const outcome& o) {
             CHECK(o.error->message().size() <= sturdy::detail::error_message_limit + 3);
             CHECK(o.error->message().find("mmmm") != std::string::npos);
             CHECK(o.error->body().size() <= sturdy::detail::error_body_limit + 3);
         }},
        {"500 with a 60 KiB message: cut to 1 KiB and marked",
         call_kind::chat,
         serve(reply::json(500, error_json(std::string(60 * 1024, 'm')))),
         failure(server, 500),
         {},
         [](const outcome& o) {
             CHECK(o.error->message() == std::string(sturdy::detail::error_message_limit, 'm') + "...");
             CHECK(o.error->body().size() == sturdy::detail::error_body_limit + 3);
         }},
        {"500 with a 64 MiB body: the read stops early",
         call_kind::chat,
         serve(reply::text(500, std::string(MiB, 'e')).content_length(64 * MiB)),
         failure(server, 500),
         {},
         all_of({ends_within(1s),
                 [](const outcome& o) { CHECK(o.error->body().size() <= sturdy::detail::error_body_limit + 3); }})},
        {"stream: 500 with a 1 MiB message",
         call_kind::stream,
         serve(reply::json(500, error_json(std::string(MiB, 'm')))),
         failure(server, 500, "", ""),
         {},
         [](const outcome& o) { CHECK(o.error->message().size() <= sturdy::detail::error_message_limit + 3); }},
        {"stream: an SSE line that never ends", call_kind::stream,
         serve(reply::sse().data(role).data(text("Hello")).body("data: " + std::string(2 * MiB, 'x')).stall()),
         failure(invalid, 0, event_too_large, "Hello"), [](knobs& k) { k.options.max_event_bytes = 64 * 1024; },
         all_of({message_has("limit of 65536 bytes"), ends_within(1s)})},
        {"stream: one event of many data lines over max_event_bytes", call_kind::stream,
         [](servers& s) {
             std::string lines;
             for (int i = 0; i < 2048; ++i) lines += "data: " + std::string(100, 'x') + "\n";
             s.main.enqueue(reply::sse().data(role).data(text("Hello")).body(lines).stall());
         },
         failure(invalid, 0, event_too_large, "Hello"), [](knobs& k) { k.options.max_event_bytes = 64 * 1024; }},

        // ---- compression ----
        {"gzip-encoded JSON",
         call_kind::chat,
         serve(reply::json(200, gzipped(chat_ok)).header("Content-Encoding", "gzip")),
         success("Hello there"),
         {},
         [](const outcome& o) {
             CHECK(o.srv->main.requests().at(0).header("accept-encoding").find("gzip") != std::string::npos);
         }},
        {"models: gzip-encoded list", call_kind::models,
         serve(reply::json(200, gzipped(models_ok)).header("Content-Encoding", "gzip")), success("m")},
        {"deflate-encoded JSON", call_kind::chat,
         serve(reply::json(200, deflated(chat_ok)).header("Content-Encoding", "deflate")), success("Hello there")},
        {"stream: gzip-encoded events", call_kind::stream,
         [](servers& s) {
             std::string events;
             for (const auto& d : {role, text("Hello"), text(" world"), text("!"), stop, std::string("[DONE]")})
                 events += "data: " + d + "\n\n";
             const std::string packed = gzipped(events);
             const auto half = packed.size() / 2;
             s.main.enqueue(reply::sse()
                                .header("Content-Encoding", "gzip")
                                .body(packed.substr(0, half))
                                .delay(20ms)
                                .body(packed.substr(half)));
         },
         success("Hello world!")},
        {"corrupt gzip", call_kind::chat,
         serve(reply::json(200, "this is not gzip at all").header("Content-Encoding", "gzip")), failure(connection)},

        // ---- redirects: never followed, the key stays home ----
        {"301 to another host", call_kind::chat, redirect(301), failure(error_kind::api_status, 301, redirected),
         retries(2), redirect_not_followed()},
        {"302 to another host",
         call_kind::models,
         redirect(302),
         failure(error_kind::api_status, 302, redirected),
         {},
         redirect_not_followed()},
        {"307 to another host",
         call_kind::chat,
         redirect(307),
         failure(error_kind::api_status, 307, redirected),
         {},
         redirect_not_followed()},
        {"stream: 308 to another host",
         call_kind::stream,
         redirect(308),
         failure(error_kind::api_status, 308, redirected, ""),
         {},
         redirect_not_followed()},
        {"302 whose Location carries the key",
         call_kind::chat,
         serve(reply::status(302).header("Location", "https://evil.example/steal?key=" + key)),
         failure(error_kind::api_status, 302, redirected),
         {},
         message_has("https://evil.example/steal?key=[redacted]")},

        // ---- not HTTP at all ----
        {"an SSH banner",
         call_kind::chat,
         serve(reply::raw("SSH-2.0-OpenSSH_9.2p1\r\n")),
         failure(invalid),
         {},
         message_has("did not answer in HTTP")},
        {"stream: an SSH banner",
         call_kind::stream,
         serve(reply::raw("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")),
         failure(invalid, 0, "", ""),
         {},
         message_has("did not answer in HTTP")},
        {"an interim 100 Continue before the reply", call_kind::chat,
         serve(reply::raw(
             "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
             std::to_string(chat_ok.size()) + "\r\n\r\n" + chat_ok)),
         success("Hello there")},

        // ---- the key echoed back in a 200 ----
        {"stream: 200 JSON echoing the key",
         call_kind::stream,
         serve(reply::json(200, R"({"code": 401, "msg": "invalid api key: )" + key + R"("})")),
         failure(invalid, 0, "", ""),
         {},
         message_has("[redacted]")},
        {"stream: 200 JSON echoing a short key", call_kind::stream,
         serve(reply::json(200, R"({"code": 401, "msg": "invalid api key: sk-1"})")), failure(invalid, 0, "", ""),
         with_key("sk-1"), message_has("invalid api key: [redacted]")},
        {"chat: 200 JSON echoing the key",
         call_kind::chat,
         serve(reply::json(200, R"({"code": 401, "msg": "invalid api key: )" + key + R"("})")),
         failure(invalid, 200),
         {},
         message_has("[redacted]")},

        // ---- empty replies ----
        {"empty 200", call_kind::chat, serve(reply::json(200, "")), failure(invalid, 200)},
        {"204 No Content", call_kind::chat, serve(reply::status(204)), failure(invalid, 204)},
        {"stream: an event stream with no events", call_kind::stream, serve(reply::sse()),
         failure(truncated, 0, "", "")},
        {"stream: an empty 200 JSON", call_kind::stream, serve(reply::json(200, "")), failure(invalid, 0, "", "")},

        // ---- how a stream ends ----
        {"stream: data after [DONE] is neither delivered nor kept", call_kind::stream,
         serve(reply::sse()
                   .data(role)
                   .data(text("Hello"))
                   .data(stop)
                   .data("[DONE]")
                   .data(text(" EXTRA"))
                   .data("{not json")),
         success("Hello")},
        {"stream: a finish reason and no [DONE]", call_kind::stream,
         serve(reply::sse().data(role).data(text("Hello")).data(stop)), success("Hello")},
        {"stream: an error event after [DONE] is ignored", call_kind::stream,
         serve(reply::sse()
                   .data(role)
                   .data(text("Hello"))
                   .data(stop)
                   .data("[DONE]")
                   .event("event: error\ndata: " + error_json("late") + "\n\n")),
         success("Hello")},
        // A reply is complete at [DONE] (or once every choice has its finish reason): how the
        // connection ends after it is no failure of the call.
        {"stream: a finish reason, then the connection is reset", call_kind::stream,
         serve(reply::sse().data(role).data(text("Hello")).data(stop).delay(50ms).reset()), success("Hello")},
        {"stream: [DONE] then the connection is reset", call_kind::stream,
         serve(reply::sse().data(role).data(text("Hello")).data(stop).data("[DONE]").delay(50ms).reset()),
         success("Hello")},
        {"stream: [DONE] then the server never ends the body", call_kind::stream,
         serve(reply::sse().data(role).data(text("Hello")).data(stop).data("[DONE]").stall()), success("Hello"),
         [](knobs& k) {
             k.call.timeout = 1s;
             k.must_end_within = 900ms;
         }},
    };
}

// Runs one row against fresh servers and a fresh client.
void run_row(const row& r) {
    servers srv;
    knobs k;
    k.options.base_url = srv.main.base_url();
    k.options.api_key = key;
    k.options.connect_timeout = 2s;
    k.call.timeout = 2s;
    k.call.total_timeout = 3s;
    if (r.tune) r.tune(k);
    r.script(srv);

    sturdy::retry_options ro;
    ro.max_retries = k.retries;
    ro.backoff = sturdy::backoff::constant(1ms);
    const sturdy::client client(k.options, sturdy::retry_policy(ro));
    const sturdy::chat_request hello{"m", {sturdy::chat_message::user("Hi")}};

    outcome o;
    o.srv = &srv;
    const auto t0 = steady::now();
    switch (r.call) {
        case call_kind::chat: {
            auto res = client.try_chat(hello, k.call);
            if (res)
                o.reply = std::move(*res);
            else
                o.error = res.error();
            break;
        }
        case call_kind::stream: {
            auto res = client.try_stream(
                hello, [&](const sturdy::chat_chunk& c) { o.delivered += c.content(); }, k.call);
            if (res)
                o.reply = std::move(*res);
            else
                o.error = res.error();
            break;
        }
        case call_kind::models: {
            auto res = client.try_models(k.call);
            if (res)
                o.models = std::move(*res);
            else
                o.error = res.error();
            break;
        }
    }
    o.took = steady::now() - t0;

    const expectation& e = r.expect;
    const auto took_ms = std::chrono::duration_cast<std::chrono::milliseconds>(o.took).count();
    const std::string what = o.error ? o.error->what() : "success";
    INFO("took " << took_ms << " ms; outcome: " << what);
    CHECK(o.took < k.must_end_within);
    if (!e.kind) {
        REQUIRE_FALSE(o.error.has_value());
        if (e.text) CHECK((o.models ? o.models->data.at(0).id : o.reply->content()) == *e.text);
    } else {
        REQUIRE(o.error.has_value());
        CHECK(o.error->kind() == *e.kind);
        CHECK(o.error->status() == e.status);
        CHECK(o.error->code() == e.code);
        if (e.text) CHECK(o.error->partial_content() == *e.text);
    }
    CHECK(srv.main.request_count() == e.requests);
    if (r.call == call_kind::stream) {
        // Nothing lost, nothing twice: the caller saw exactly the text the result carries.
        CHECK(o.delivered == (o.error ? o.error->partial_content() : o.reply->content()));
    }
    if (o.error) {
        // The key is nowhere: not in the error, nor in any error of the call's report.
        const std::string& secret = k.options.api_key;
        auto clean = [&](const sturdy::error& err) {
            for (const std::string& s : {std::string(err.what()), err.message(), err.body(), err.partial_content(),
                                         err.request_id(), err.type(), err.code(), err.param()})
                CHECK(s.find(secret) == std::string::npos);
        };
        clean(*o.error);
        REQUIRE(o.error->call() != nullptr);
        CHECK(o.error->call()->errors.size() == static_cast<std::size_t>(o.error->call()->attempts));
        for (const auto& met : o.error->call()->errors) clean(met);
    }
    if (r.check) r.check(o);
}

}  // namespace

TEST_CASE("fault matrix: every misbehaviour has its exact outcome, in time, with nothing lost",
          "[socket][fault_matrix]") {
    static const auto rows = fault_matrix();  // built once: some rows hold megabytes
    for (const auto& r : rows) {
        DYNAMIC_SECTION(r.name) { run_row(r); }
    }
}

TEST_CASE("fault matrix: a kept-alive connection the server closed is replaced without the caller noticing",
          "[socket][fault_matrix]") {
    sturdy_test::script_server srv;
    // The first reply keeps the connection alive by its headers, then the server closes it idle.
    srv.enqueue(reply::json(200, chat_ok).drop());
    srv.enqueue(reply::json(200, chat_ok));
    sturdy::client_options o;
    o.base_url = srv.base_url();
    o.api_key = key;
    o.timeout = 2s;
    const sturdy::client client(o, sturdy::retry_policy(0));
    const sturdy::chat_request hello{"m", {sturdy::chat_message::user("Hi")}};
    auto first = client.try_chat(hello);
    REQUIRE(first);
    auto second = client.try_chat(hello);
    REQUIRE(second);
    CHECK(second->content() == "Hello there");
    CHECK(second->call.attempts == 1);  // not a retry of ours: libcurl took a fresh connection
    CHECK(srv.connection_count() == 2);
}

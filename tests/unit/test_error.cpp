#include <sturdy/detail/api_error.hpp>
#include <sturdy/error.hpp>

#include "support/catch.hpp"

#include <algorithm>
#include <chrono>
#include <random>

using sturdy::error_kind;

namespace {
const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1767225600));  // 2026-01-01

sturdy::error from_reply(int status, std::string_view body, std::string_view secret = "",
                         std::initializer_list<std::pair<const char*, const char*>> headers = {}) {
    sturdy::response_headers h;
    for (auto& [name, value] : headers) h.add(name, value);
    return sturdy::detail::status_error(status, h, body, secret, now);
}
}  // namespace

TEST_CASE("errors: statuses map to the official SDKs' kinds", "[error]") {
    CHECK(sturdy::kind_for_status(400) == error_kind::bad_request);
    CHECK(sturdy::kind_for_status(401) == error_kind::authentication);
    CHECK(sturdy::kind_for_status(403) == error_kind::permission_denied);
    CHECK(sturdy::kind_for_status(404) == error_kind::not_found);
    CHECK(sturdy::kind_for_status(409) == error_kind::conflict);
    CHECK(sturdy::kind_for_status(422) == error_kind::unprocessable_entity);
    CHECK(sturdy::kind_for_status(429) == error_kind::rate_limit);
    CHECK(sturdy::kind_for_status(500) == error_kind::internal_server);
    CHECK(sturdy::kind_for_status(503) == error_kind::internal_server);
    CHECK(sturdy::kind_for_status(529) == error_kind::internal_server);
    CHECK(sturdy::kind_for_status(402) == error_kind::api_status);
    CHECK(sturdy::kind_for_status(408) == error_kind::api_status);
    CHECK(sturdy::kind_for_status(302) == error_kind::api_status);
}

TEST_CASE("errors: what() reads KIND [STATUS]: MESSAGE", "[error]") {
    CHECK(std::string(sturdy::error(error_kind::rate_limit, "slow down", 429).what()) == "rate_limit [429]: slow down");
    CHECK(std::string(sturdy::error(error_kind::timeout, "too slow").what()) == "timeout: too slow");
}

TEST_CASE("errors: OpenAI's error body fills every field", "[error]") {
    auto e = from_reply(429, R"({"error":{"message":"You exceeded your current quota","type":"insufficient_quota",
        "param":null,"code":"insufficient_quota"}})", "", {{"x-request-id", "req_abc"}, {"retry-after", "20"}});
    CHECK(e.kind() == error_kind::rate_limit);
    CHECK(e.status() == 429);
    CHECK(e.message() == "You exceeded your current quota");
    CHECK(e.type() == "insufficient_quota");
    CHECK(e.code() == "insufficient_quota");
    CHECK(e.param().empty());
    CHECK(e.request_id() == "req_abc");
    REQUIRE(e.retry_after().has_value());
    CHECK(*e.retry_after() == std::chrono::seconds(20));
    CHECK(e.body().find("insufficient_quota") != std::string::npos);
}

TEST_CASE("errors: Gemini's list form parses", "[error]") {
    auto e = from_reply(429, R"([{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED"}}])");
    CHECK(e.kind() == error_kind::rate_limit);
    CHECK(e.message() == "Resource has been exhausted");
    CHECK(e.type() == "RESOURCE_EXHAUSTED");
    CHECK(e.code() == "429");
}

TEST_CASE("errors: other body shapes", "[error]") {
    CHECK(from_reply(400, R"({"error":"model is required"})").message() == "model is required");
    auto vllm = from_reply(400, R"({"object":"error","message":"bad temperature","type":"BadRequestError","param":null,"code":400})");
    CHECK(vllm.message() == "bad temperature");
    CHECK(vllm.type() == "BadRequestError");
    CHECK(from_reply(422, R"({"detail":"field required"})").message() == "field required");
}

TEST_CASE("errors: a non-JSON error body is classified by its status", "[error]") {
    auto e = from_reply(502, "<html><body><h1>502 Bad Gateway</h1></body></html>\n");
    CHECK(e.kind() == error_kind::internal_server);
    CHECK(e.status() == 502);
    CHECK(e.message().rfind("HTTP 502", 0) == 0);
    CHECK(e.body().find("Bad Gateway") != std::string::npos);
    CHECK(from_reply(404, "").message() == "HTTP 404");
}

TEST_CASE("errors: context_length_exceeded is recognised across servers", "[error]") {
    auto openai = from_reply(400, R"({"error":{"message":"This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}})");
    CHECK(openai.kind() == error_kind::context_length_exceeded);
    CHECK(openai.is(error_kind::bad_request));

    auto llama = from_reply(400, R"({"error":{"code":400,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error","n_prompt_tokens":1500,"n_ctx":1024}})");
    CHECK(llama.kind() == error_kind::context_length_exceeded);

    auto vllm = from_reply(400, R"({"object":"error","message":"This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.","type":"BadRequestError","code":400})");
    CHECK(vllm.kind() == error_kind::context_length_exceeded);

    auto gemini = from_reply(400, R"([{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}])");
    CHECK(gemini.kind() == error_kind::context_length_exceeded);

    // The same words under a 429 are a rate limit, not a context error.
    auto tpm = from_reply(429, R"({"error":{"message":"Rate limit reached: too many tokens; reduce the length of the messages","code":"rate_limit_exceeded"}})");
    CHECK(tpm.kind() == error_kind::rate_limit);
    CHECK_FALSE(from_reply(400, R"({"error":{"message":"temperature must be at most 2"}})").is(error_kind::context_length_exceeded));
}

TEST_CASE("errors: x-should-retry is read", "[error]") {
    CHECK(from_reply(500, "{}", "", {{"x-should-retry", "false"}}).details().should_retry == false);
    CHECK(from_reply(400, "{}", "", {{"x-should-retry", "true"}}).details().should_retry == true);
    CHECK_FALSE(from_reply(400, "{}").details().should_retry.has_value());
}

TEST_CASE("errors: the API key never appears, even when the server echoes it", "[error][secrets]") {
    const std::string key = "sk-proj-0123456789abcdefghijklmnopqrstuvwxyz";
    auto full = from_reply(401, R"({"error":{"message":"Incorrect API key provided: )" + key + R"(","code":"invalid_api_key"}})", key);
    CHECK(full.kind() == error_kind::authentication);
    CHECK(std::string(full.what()).find(key) == std::string::npos);
    CHECK(full.body().find(key) == std::string::npos);
    CHECK(full.message().find("[redacted]") != std::string::npos);

    // Cut short, or only its tail: still no run of 8 characters of the key survives.
    auto partial = from_reply(401, R"({"error":{"message":"bad key sk-proj-0123456789ab..."}})", key);
    CHECK(partial.message().find("0123456789") == std::string::npos);
    auto tail = from_reply(401, R"({"error":{"message":"key ending qrstuvwxyz is revoked"}})", key);
    CHECK(tail.message().find("qrstuvwxyz") == std::string::npos);
    // Text that merely shares a short prefix with the key is left alone.
    CHECK(from_reply(400, R"({"error":{"message":"use sk- keys"}})", key).message() == "use sk- keys");
}

TEST_CASE("errors: the raw body is truncated without splitting UTF-8", "[error]") {
    std::string body = "{\"error\":{\"message\":\"" + std::string(5000, 'x') + "\"}}";
    auto e = from_reply(500, body);
    CHECK(e.body().size() <= sturdy::detail::error_body_limit + 3);
    std::string utf8(sturdy::detail::error_body_limit - 1, 'a');
    utf8 += "\xE2\x82\xAC\xE2\x82\xAC";
    auto cut = sturdy::detail::truncate_utf8(utf8, sturdy::detail::error_body_limit);
    CHECK(cut == std::string(sturdy::detail::error_body_limit - 1, 'a') + "...");
}

TEST_CASE("errors: errors carried inside a stream", "[error]") {
    using sturdy::detail::stream_error;
    auto openai = stream_error(R"({"error":{"message":"The server had an error","type":"server_error","code":null}})", "");
    CHECK(openai.kind() == error_kind::internal_server);
    CHECK(openai.message() == "stream error: The server had an error");
    auto llama = stream_error(R"({"error":{"code":500,"message":"slot unavailable","type":"server_error"}})", "");
    CHECK(llama.kind() == error_kind::internal_server);
    auto limited = stream_error(R"({"error":{"message":"slow down","type":"rate_limit_exceeded"}})", "");
    CHECK(limited.kind() == error_kind::rate_limit);
    auto context = stream_error(R"({"error":{"message":"context length exceeded","code":"context_length_exceeded"}})", "");
    CHECK(context.kind() == error_kind::context_length_exceeded);
    auto text = stream_error("upstream went away", "");
    CHECK(text.kind() == error_kind::api_status);
    CHECK(text.message() == "stream error: upstream went away");
}

TEST_CASE("errors: copies are cheap and share details", "[error]") {
    sturdy::error a(error_kind::connection, "refused");
    sturdy::error b = a;
    CHECK(&a.details() == &b.details());
    CHECK(b.kind() == error_kind::connection);
}

TEST_CASE("errors: what() neutralises terminal controls, the details keep the raw text", "[error][secrets]") {
    const std::string hostile =
        "bad\x1b]0;owned\x07 and \x1b[2J cleared \xc2\x9b"
        "31m";
    auto e = from_reply(500, R"({"error":{"message":")" +
                                 std::string("bad\\u001b]0;owned\\u0007 and \\u001b[2J cleared \\u009b31m") + R"("}})");
    CHECK(e.message() == hostile);
    const std::string what = e.what();
    CHECK(what.find('\x1b') == std::string::npos);
    CHECK(what.find('\x07') == std::string::npos);
    CHECK(what.find("\xc2\x9b") == std::string::npos);
    CHECK(what == "internal_server [500]: bad\\x{1B}]0;owned\\x{07} and \\x{1B}[2J cleared \\u{9B}31m");
    // Text a program shows by itself goes through the same function; line feeds, tabs and UTF-8 stay.
    CHECK(sturdy::printable("caf\xc3\xa9\tok\n\x7f") == "caf\xc3\xa9\tok\n\\x{7F}");
}

TEST_CASE("errors: a huge message is cut, a redirect names where it points", "[error]") {
    const std::string long_message(100000, 'm');
    auto e = from_reply(500, R"({"error":{"message":")" + long_message + R"("}})");
    CHECK(e.message().size() <= sturdy::detail::error_message_limit + 3);
    CHECK(e.body().size() <= sturdy::detail::error_body_limit + 3);

    auto moved =
        from_reply(301, "<html>moved</html>", "", {{"location", "https://elsewhere.example/v1/chat/completions"}});
    CHECK(moved.kind() == error_kind::api_status);
    CHECK(moved.code() == sturdy::error_codes::redirect);
    CHECK(moved.message().find("https://elsewhere.example/v1/chat/completions") != std::string::npos);
}

TEST_CASE("errors: a short key, as a local server's --api-key, is redacted too", "[error][secrets]") {
    const std::string key = "sk-1";
    auto e = from_reply(401, R"({"error":{"message":"invalid api key: sk-1"}})", key);
    CHECK(std::string(e.what()).find(key) == std::string::npos);
    CHECK(e.body().find(key) == std::string::npos);
    auto streamed = sturdy::detail::stream_error(R"({"code":401,"msg":"invalid api key: sk-1"})", key);
    CHECK(std::string(streamed.what()).find(key) == std::string::npos);
    CHECK(streamed.body().find(key) == std::string::npos);
}

namespace {

// The rule redact() implements, written the obvious way (quadratic): at each position, the
// longest run of the key that starts there, if at least 8 characters long (or the whole key).
std::string redact_by_definition(const std::string& text, const std::string& key) {
    const std::size_t min_run = std::min<std::size_t>(8, key.size());
    std::string out;
    for (std::size_t i = 0; i < text.size();) {
        std::size_t longest = 0;
        for (std::size_t j = 0; j < key.size(); ++j) {
            std::size_t n = 0;
            while (i + n < text.size() && j + n < key.size() && text[i + n] == key[j + n]) ++n;
            longest = std::max(longest, n);
        }
        if (longest >= min_run) {
            out += "[redacted]";
            i += longest;
        } else {
            out += text[i++];
        }
    }
    return out;
}

}  // namespace

TEST_CASE("errors: redact agrees with its definition on random text made of pieces of the key", "[error][secrets]") {
    std::mt19937 rng(20261202);
    for (const std::string key :
         {"sk-1", "abcdefg", "sk-proj-0123456789abcdef", "aaaaaaaaaaaaaaaa", "abababababab-ab"}) {
        for (int round = 0; round < 300; ++round) {
            std::string text;
            const int pieces = std::uniform_int_distribution<int>(0, 8)(rng);
            for (int p = 0; p < pieces; ++p) {
                const std::size_t from = std::uniform_int_distribution<std::size_t>(0, key.size() - 1)(rng);
                const std::size_t len = std::uniform_int_distribution<std::size_t>(1, key.size() - from)(rng);
                text += key.substr(from, len);
                text += std::string(std::uniform_int_distribution<std::size_t>(0, 3)(rng), "xa-b"[p % 4]);
            }
            INFO("key " << key << ", text " << text);
            CHECK(sturdy::redact(text, key) == redact_by_definition(text, key));
        }
    }
}

TEST_CASE("errors: redact handles megabytes in one pass, with the key at the edges and in the middle",
          "[error][secrets]") {
    const std::string key = "sk-proj-5f0c2a9e71d84b36a0e9c4d2b7f15e68a3c9d0e4";
    const std::string filler((4u << 20) - 3, 'z');
    const std::string text = key.substr(30) + filler + key + "tail" + filler + key.substr(0, 9);
    CHECK(sturdy::redact(text, key) == "[redacted]" + filler + "[redacted]tail" + filler + "[redacted]");
    // Nothing to redact: the text comes back whole.
    CHECK(sturdy::redact(filler, key) == filler);
}

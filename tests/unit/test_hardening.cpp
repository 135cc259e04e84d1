// Behaviours a hostile or broken server leans on, each pinned by a test that fails when the code
// that provides it is taken out: redaction at every layer, stream parsing edge cases, the cap of
// a jittered backoff, and base64 embeddings.
#include <sturdy/backoff.hpp>
#include <sturdy/chat_accumulator.hpp>
#include <sturdy/detail/api_error.hpp>
#include <sturdy/detail/base64.hpp>
#include <sturdy/detail/chat_stream_sink.hpp>
#include <sturdy/sse.hpp>
#include <sturdy/testing/fake_clock.hpp>

#include "support/catch.hpp"

#include <chrono>
#include <string>
#include <vector>

using namespace std::chrono;
using sturdy::error_kind;

namespace {

// Every string of an error a caller may print or log.
std::vector<std::string> texts_of(const sturdy::error& e) {
    return {e.what(), e.message(), e.body(), e.type(), e.code(), e.param(), e.request_id(), e.partial_content()};
}

void check_redacted(const sturdy::error& e, const std::string& key) {
    for (const auto& text : texts_of(e)) {
        INFO(text);
        CHECK(text.find(key) == std::string::npos);
    }
}

sturdy::error from_reply(int status, const std::string& body, const std::string& key) {
    return sturdy::detail::status_error(status, sturdy::response_headers{}, body, key, system_clock::now());
}

}  // namespace

// ---- redaction ----

TEST_CASE("hardening: an error carried in a stream is redacted by stream_error itself", "[hardening][secrets]") {
    // The client redacts every error again, so only a test at this level sees stream_error's own.
    const std::string key = "sk-proj-hardening-0123456789abcdef";
    auto json = sturdy::detail::stream_error(R"({"error":{"message":"Incorrect API key provided: )" + key +
                                                 R"(","type":"invalid_request_error","code":"invalid_api_key"}})",
                                             key);
    CHECK(json.kind() == error_kind::bad_request);
    check_redacted(json, key);
    CHECK(json.message() == "stream error: Incorrect API key provided: [redacted]");
    CHECK(json.body().find("[redacted]") != std::string::npos);

    // llama.cpp's `error:` field carries plain text.
    auto plain = sturdy::detail::stream_error("invalid key " + key, key);
    check_redacted(plain, key);
    CHECK(plain.message() == "stream error: invalid key [redacted]");
}

TEST_CASE("hardening: a 4-character key is redacted in what(), the message and the body", "[hardening][secrets]") {
    const std::string key = "sk-1";
    auto e = from_reply(401, R"({"error":{"message":"invalid api key: sk-1","type":"invalid_request_error"}})", key);
    CHECK(e.kind() == error_kind::authentication);
    check_redacted(e, key);
    CHECK(e.message() == "invalid api key: [redacted]");
    CHECK(std::string(e.what()) == "authentication [401]: invalid api key: [redacted]");
    CHECK(e.body() == R"({"error":{"message":"invalid api key: [redacted]","type":"invalid_request_error"}})");
    // Text that only shares a prefix with the key is not touched.
    CHECK(sturdy::redact("sk-2 and sk- are fine", key) == "sk-2 and sk- are fine");
}

// ---- streams ----

TEST_CASE("hardening: tool-call deltas without an index take their position in the delta", "[hardening][accumulator]") {
    // Some servers (older vLLM, some gateways) leave out "index": two calls in one delta are two calls.
    sturdy::chat_accumulator acc;
    acc.add(nlohmann::json::parse(R"({"choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[
        {"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\":"}},
        {"id":"call_b","type":"function","function":{"name":"get_time","arguments":"{\"tz\":"}}]}}]})")
                .get<sturdy::chat_chunk>());
    acc.add(nlohmann::json::parse(R"({"choices":[{"index":0,"delta":{"tool_calls":[
        {"function":{"arguments":"\"Paris\"}"}},{"function":{"arguments":"\"CET\"}"}}]},"finish_reason":"tool_calls"}]})")
                .get<sturdy::chat_chunk>());
    const auto& calls = acc.response().choices.at(0).message.tool_calls;
    REQUIRE(calls.size() == 2);
    CHECK(calls[0].index == 0);
    CHECK(calls[1].index == 1);
    auto reply = acc.take();
    const auto& done = reply.choices.at(0).message.tool_calls;
    REQUIRE(done.size() == 2);
    CHECK(done[0].id == "call_a");
    CHECK(done[0].function.name == "get_weather");
    CHECK(done[0].function.arguments == R"({"city":"Paris"})");
    CHECK(done[1].id == "call_b");
    CHECK(done[1].function.name == "get_time");
    CHECK(done[1].function.arguments == R"({"tz":"CET"})");
}

TEST_CASE("hardening: an SSE id containing NUL is ignored, as WHATWG says", "[hardening][sse]") {
    sturdy::sse_parser parser;
    std::vector<std::string> ids;
    auto collect = [&](const sturdy::sse_event& e) { ids.emplace_back(e.id); };
    parser.feed("id: 7\ndata: a\n\n", collect);
    parser.feed(std::string("id: 8\0evil\ndata: b\n\n", 20), collect);
    parser.feed("id\ndata: c\n\n", collect);  // an empty id is legal: it resets
    CHECK(ids == std::vector<std::string>{"7", "7", ""});
    CHECK(parser.last_event_id().empty());
    parser.feed(std::string("id: \0\ndata: d\n\n", 15), collect);
    CHECK(ids.back().empty());
    CHECK(parser.last_event_id().empty());
}

namespace {

// One streamed attempt through the client's stream sink, fed `wire` as one piece of body.
struct sink_run {
    sturdy::result<sturdy::chat_response> out = sturdy::error(error_kind::cancelled, "not run");
    std::vector<std::string> delivered;
};

// The sink over `wire`; the callback returns false at its `stop_at`-th chunk (1-based; 0: never).
sink_run run_sink(const std::string& wire, std::size_t stop_at = 0) {
    sturdy::call_state state;
    sturdy::call_context ctx(sturdy::operation::chat_stream, "m", state);
    sink_run run;
    auto deliver = [&](const sturdy::chat_chunk& c) {
        run.delivered.emplace_back(c.content());
        return run.delivered.size() != stop_at;
    };
    sturdy::reply_observation seen;
    sturdy::detail::chat_stream_sink sink(ctx, state.begin_attempt(), seen, deliver, "", steady_clock::now(),
                                          *sturdy::real_clock(), {std::size_t{1} << 20, std::size_t{1} << 16});
    sturdy::http_head head;
    head.status = 200;
    head.headers.add("Content-Type", "text/event-stream");
    REQUIRE(sink.on_head(head));
    sink.on_data(wire);
    run.out = sink.finish(std::move(head));
    return run;
}

std::string event(const std::string& content, const char* finish = nullptr) {
    nlohmann::json chunk = {
        {"id", "c1"},
        {"object", "chat.completion.chunk"},
        {"choices", {{{"index", 0}, {"delta", {{"content", content}}}, {"finish_reason", nullptr}}}}};
    if (finish) chunk["choices"][0]["finish_reason"] = finish;
    return "data: " + chunk.dump() + "\n\n";
}

}  // namespace

TEST_CASE("hardening: data after [DONE] is neither delivered nor accumulated", "[hardening][stream]") {
    auto run = run_sink(event("Hello") + event(" world", "stop") + "data: [DONE]\n\n" + event(" EXTRA") +
                        "data: {\"choices\":\"not even a chunk\"}\n\ndata: {broken\n\n");
    REQUIRE(run.out);
    CHECK(run.out->content() == "Hello world");
    CHECK(run.out->finish_reason() == "stop");
    CHECK(run.delivered == std::vector<std::string>{"Hello", " world"});

    // Without a finish reason, [DONE] still ends the reply: what follows must not extend it.
    auto unfinished = run_sink(event("Hi") + "data: [DONE]\n\n" + event(" there"));
    REQUIRE(unfinished.out);
    CHECK(unfinished.out->content() == "Hi");
    CHECK(unfinished.delivered == std::vector<std::string>{"Hi"});
}

TEST_CASE("hardening: a caller that stops at a held chunk gets a reply without the content behind it",
          "[hardening][stream]") {
    // The role chunk waits for the first content; the caller stops when it is delivered, just
    // before "Hel" would be: the reply must not hold text the caller never saw (fuzz finding).
    const std::string role = R"(data: {"id":"c1","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]})";
    auto run = run_sink(role + "\n\n" + event("Hel") + event("lo", "stop") + "data: [DONE]\n\n", 1);
    REQUIRE(run.out);
    CHECK(run.out->call.stopped_early);
    CHECK(run.delivered == std::vector<std::string>{""});
    CHECK(run.out->content().empty());
    REQUIRE(run.out->choices.size() == 1);
    CHECK(run.out->choices[0].message.role == "assistant");  // what was delivered is kept

    // Stopping at the content itself keeps that content: the caller saw it.
    auto at_content = run_sink(role + "\n\n" + event("Hel") + event("lo", "stop") + "data: [DONE]\n\n", 2);
    REQUIRE(at_content.out);
    CHECK(at_content.out->content() == "Hel");
}

// ---- backoff ----

TEST_CASE("hardening: decorrelated jitter never exceeds its cap over a long schedule", "[hardening][backoff]") {
    const milliseconds initial(100), cap(5000);
    auto b = sturdy::backoff::decorrelated_jitter(initial, cap);

    // The fake clock's seeded random source: 1000 draws of one call's schedule.
    sturdy::testing::fake_clock fake(2024);
    sturdy::backoff_state s;
    bool reached_cap = false;
    for (int i = 0; i < 1000; ++i) {
        const auto d = b.next(s, fake);
        INFO("retry " << i << ": " << duration_cast<microseconds>(d).count() << " us");
        REQUIRE(d <= cap);
        REQUIRE(d >= initial);
        reached_cap = reached_cap || d == cap;
    }
    CHECK(reached_cap);  // it grows into the cap, not just stays low

    // Draws just under 1 are the worst case: 3x the previous delay every time.
    struct almost_one : sturdy::random_source {
        double next_unit() override { return 0.999999; }
    } high;
    sturdy::backoff_state t;
    for (int i = 0; i < 1000; ++i) REQUIRE(b.next(t, high) <= cap);
}

// ---- base64 embeddings ----

TEST_CASE("hardening: base64 float32 vectors decode exactly", "[hardening][base64]") {
    using sturdy::detail::decode_base64_floats;
    std::vector<float> v;
    // Three floats: 12 bytes, 16 characters, no padding.
    REQUIRE(decode_base64_floats("AACAPwAAAEAAAAC/", v));
    CHECK(v == std::vector<float>{1.0f, 2.0f, -0.5f});
    // One float: 4 bytes, padded to 8 characters; the same without padding.
    REQUIRE(decode_base64_floats("AACAPw==", v));
    CHECK(v == std::vector<float>{1.0f});
    REQUIRE(decode_base64_floats("AACAPw", v));
    CHECK(v == std::vector<float>{1.0f});
    // Two floats, one padding character.
    REQUIRE(decode_base64_floats("AAAAPwAAoL8=", v));
    CHECK(v == std::vector<float>{0.5f, -1.25f});
    // Five, with values whose every byte matters.
    REQUIRE(decode_base64_floats("AABQQAAA4MAAAAAAbxKDOgDgf0c=", v));
    CHECK(v == std::vector<float>{3.25f, -7.0f, 0.0f, 1e-3f, 65504.0f});
    // Nothing.
    REQUIRE(decode_base64_floats("", v));
    CHECK(v.empty());
}

TEST_CASE("hardening: base64 that is not whole float32 values, or not base64, is refused", "[hardening][base64]") {
    using sturdy::detail::decode_base64_floats;
    std::vector<float> v;
    CHECK_FALSE(decode_base64_floats("AAAAAAA=", v));        // 5 bytes
    CHECK_FALSE(decode_base64_floats("AAAAAAAA", v));        // 6 bytes
    CHECK_FALSE(decode_base64_floats("AACAPwA", v));         // 5 bytes, unpadded
    CHECK_FALSE(decode_base64_floats("AACAP", v));           // a dangling character
    CHECK_FALSE(decode_base64_floats("AAC@Pw==", v));        // outside the alphabet
    CHECK_FALSE(decode_base64_floats("AAC\xC3\xA9w==", v));  // UTF-8 is not base64
    CHECK_FALSE(decode_base64_floats("AAAA-wAAoL8=", v));    // base64url is another alphabet
    CHECK_FALSE(decode_base64_floats("AAAA_wAAoL8=", v));
    CHECK_FALSE(decode_base64_floats("AAC Pw==", v));          // no whitespace inside
    CHECK_FALSE(decode_base64_floats("AACAPwAAAEAAAAC!", v));  // every whole group is checked
    CHECK_FALSE(decode_base64_floats("AACA!w==", v));          // and the short group at the end
}

// Streamed chat over real sockets: SSE as servers send it, cut off, stalled, or carrying errors.
#include <sturdy/sturdy.hpp>

#include "support/catch.hpp"
#include "support/script_server.hpp"

#include <chrono>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using sturdy::error_kind;
using sturdy_test::reply;

namespace {

std::string chunk(const std::string& delta, const char* finish = nullptr) {
    return R"({"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":)" + delta +
           R"(,"finish_reason":)" + (finish ? "\"" + std::string(finish) + "\"" : std::string("null")) + "}]}";
}
std::string text(const std::string& t) { return chunk(nlohmann::json{{"content", t}}.dump()); }
const std::string role = chunk(R"({"role":"assistant","content":""})");
const std::string stop = chunk("{}", "stop");
const std::string usage = R"({"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":4,"completion_tokens":3,"total_tokens":7}})";

// role, "Hello", " world", "!", stop, [DONE]
reply good_stream() {
    return reply::sse().data(role).data(text("Hello")).data(text(" world")).data(text("!")).data(stop).data("[DONE]");
}

sturdy::client make_client(const sturdy_test::script_server& srv, int retries = 2) {
    sturdy::client_options o;
    o.base_url = srv.base_url();
    o.api_key = "sk-stream-test-key";
    o.timeout = 5s;
    sturdy::retry_options r;
    r.max_retries = retries;
    r.backoff = sturdy::backoff::constant(5ms);
    return sturdy::client(o, sturdy::retry_policy(r));
}

const sturdy::chat_request hello{"m", {sturdy::chat_message::user("Hi")}};

// Collects what the caller's callback saw.
struct recorder {
    std::vector<std::string> contents;
    int chunks = 0;
    bool operator()(const sturdy::chat_chunk& c) {
        ++chunks;
        contents.emplace_back(c.content());
        return true;
    }
    std::string joined() const {
        std::string s;
        for (auto& c : contents) s += c;
        return s;
    }
};

}  // namespace

TEST_CASE("stream: chunks arrive in order and assemble into the reply", "[socket][stream]") {
    sturdy_test::script_server srv;
    srv.enqueue(good_stream().header("x-request-id", "req_s"));
    recorder seen;
    auto r = make_client(srv).stream(hello, std::ref(seen));
    CHECK(seen.joined() == "Hello world!");
    CHECK(seen.chunks == 5);
    CHECK(r.content() == "Hello world!");
    CHECK(r.finish_reason() == "stop");
    CHECK(r.object == "chat.completion");
    CHECK(r.choices[0].message.role == "assistant");
    CHECK(r.call.request_id == "req_s");
    CHECK(r.call.attempts == 1);
    REQUIRE(r.call.time_to_first_token.has_value());
    CHECK(*r.call.time_to_first_token <= r.call.latency);

    auto req = srv.requests().at(0);
    CHECK(req.header("accept") == "text/event-stream");
    auto body = nlohmann::json::parse(req.body);
    CHECK(body["stream"] == true);
    CHECK_FALSE(body.contains("stream_options"));
}

TEST_CASE("stream: usage is asked for and read when the caller wants it", "[socket][stream]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::sse().data(role).data(text("ok")).data(stop).data(usage).data("[DONE]"));
    sturdy::chat_request req = hello;
    req.stream_options = sturdy::chat_stream_options{true, {}};
    auto r = make_client(srv).stream(req, [](const sturdy::chat_chunk&) {});
    REQUIRE(r.usage.has_value());
    CHECK(r.usage->total_tokens == 7);
    CHECK(nlohmann::json::parse(srv.requests().at(0).body)["stream_options"]["include_usage"] == true);
}

TEST_CASE("stream: an unstreamed call never sends stream fields", "[socket][stream]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::json(200, R"({"choices":[{"message":{"content":"x"},"finish_reason":"stop"}]})"));
    sturdy::chat_request req = hello;
    req.stream = true;
    req.stream_options = sturdy::chat_stream_options{true, {}};
    make_client(srv).chat(req);
    auto body = nlohmann::json::parse(srv.requests().at(0).body);
    CHECK_FALSE(body.contains("stream"));
    CHECK_FALSE(body.contains("stream_options"));
}

TEST_CASE("stream: bytes split anywhere, CRLF line ends, comments: same reply", "[socket][stream]") {
    sturdy_test::script_server srv;
    std::string wire;
    for (const auto& d : {role, text("h\xC3\xA9llo"), text(" \xE4\xBD\xA0\xE5\xA5\xBD"), stop})
        wire += ": keep-alive\r\ndata: " + d + "\r\n\r\n";
    wire += "data: [DONE]\r\n\r\n";
    srv.enqueue(reply::sse().body(wire).split_writes(3, 0ms));
    recorder seen;
    auto r = make_client(srv).stream(hello, std::ref(seen));
    CHECK(r.content() == "h\xC3\xA9llo \xE4\xBD\xA0\xE5\xA5\xBD");
    CHECK(seen.joined() == r.content());
}

TEST_CASE("stream: events spaced in time arrive as they come", "[socket][stream]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::sse().data(role).data(text("a")).delay(100ms).data(text("b")).data(stop).data("[DONE]"));
    std::vector<std::chrono::steady_clock::time_point> at;
    auto r = make_client(srv).stream(hello, [&](const sturdy::chat_chunk&) { at.push_back(std::chrono::steady_clock::now()); });
    REQUIRE(at.size() == 4);
    CHECK(at[2] - at[1] >= 90ms);  // "b" was not buffered with "a"
    CHECK(*r.call.time_to_first_token < 90ms);
}

TEST_CASE("stream: tool calls are assembled from streamed deltas", "[socket][stream]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::sse()
                    .data(chunk(R"({"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]})"))
                    .data(chunk(R"({"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]})"))
                    .data(chunk(R"({"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]})"))
                    .data(chunk("{}", "tool_calls"))
                    .data("[DONE]"));
    auto r = make_client(srv).stream(hello, [](const sturdy::chat_chunk&) {});
    REQUIRE(r.choices[0].message.tool_calls.size() == 1);
    CHECK(r.choices[0].message.tool_calls[0].function.arguments == R"({"city":"Paris"})");
    CHECK(r.finish_reason() == "tool_calls");
}

TEST_CASE("stream: a finish reason without [DONE] is a complete reply", "[socket][stream]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::sse().data(role).data(text("done")).data(stop));
    CHECK(make_client(srv).stream(hello, [](const sturdy::chat_chunk&) {}).content() == "done");
}

TEST_CASE("stream: ended without [DONE] or a finish reason is stream_truncated, with the partial text", "[socket][stream]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::sse().data(role).data(text("Hello")).data(text(" wor")));
    recorder seen;
    auto r = make_client(srv).try_stream(hello, std::ref(seen));
    REQUIRE_FALSE(r);
    CHECK(r.error().kind() == error_kind::stream_truncated);
    CHECK(r.error().partial_content() == "Hello wor");
    CHECK(seen.joined() == "Hello wor");
    // The text is the partial reply's own, held once (it may be near max_response_bytes).
    REQUIRE(r.error().partial_response() != nullptr);
    CHECK(&r.error().partial_content() == &r.error().partial_response()->content());
    CHECK(srv.request_count() == 1);  // content was delivered: never replayed
}

TEST_CASE("stream: a connection cut after content is reported, never replayed", "[socket][stream]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::sse().data(role).data(text("Hel")).drop());
    srv.enqueue(good_stream());
    recorder seen;
    auto r = make_client(srv).try_stream(hello, std::ref(seen));
    REQUIRE_FALSE(r);
    CHECK(r.error().kind() == error_kind::stream_truncated);
    CHECK(r.error().partial_content() == "Hel");
    CHECK(seen.joined() == "Hel");
    CHECK(srv.request_count() == 1);
}

TEST_CASE("stream: a failure before the first content is retried, and the caller sees everything once", "[socket][stream]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::sse().data(role).drop());  // cut after the role chunk: nothing delivered yet
    srv.enqueue(reply::json(503, R"({"error":{"message":"busy"}})"));
    srv.enqueue(good_stream());
    recorder seen;
    auto r = make_client(srv).stream(hello, std::ref(seen));
    CHECK(r.content() == "Hello world!");
    CHECK(r.call.attempts == 3);
    CHECK(seen.chunks == 5);  // one role chunk, not two
    CHECK(seen.joined() == "Hello world!");
}

TEST_CASE("stream: an error status before the stream is a typed error", "[socket][stream]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::json(400, R"({"error":{"message":"This model's maximum context length is 8192 tokens.","code":"context_length_exceeded"}})"));
    auto r = make_client(srv).try_stream(hello, [](const sturdy::chat_chunk&) {});
    CHECK(r.error().kind() == error_kind::context_length_exceeded);
    CHECK(r.error().status() == 400);
}

TEST_CASE("stream: errors carried inside the stream, in each server's form, are typed errors", "[socket][stream]") {
    struct form {
        const char* name;
        reply wire;
        error_kind kind;
    };
    const std::string error_json = R"({"error":{"message":"The server had an error","type":"server_error"}})";
    std::vector<form> forms = {
        {"OpenAI data error", reply::sse().data(role).data(text("par")).data(error_json), error_kind::internal_server},
        {"event: error", reply::sse().data(role).data(text("par")).event("event: error\ndata: " + error_json + "\n\n"), error_kind::internal_server},
        {"llama.cpp error field", reply::sse().data(role).data(text("par")).event("error: {\"code\":429,\"message\":\"busy\",\"type\":\"unavailable_error\"}\n\n"), error_kind::rate_limit},
        {"vLLM error object", reply::sse().data(role).data(text("par")).data(R"({"object":"error","message":"engine dead","type":"InternalServerError","code":500})"), error_kind::internal_server},
    };
    for (auto& f : forms) {
        INFO(f.name);
        sturdy_test::script_server srv;
        srv.enqueue(f.wire);
        auto r = make_client(srv).try_stream(hello, [](const sturdy::chat_chunk&) {});
        REQUIRE_FALSE(r);
        CHECK(r.error().kind() == f.kind);
        CHECK(r.error().partial_content() == "par");
        CHECK(srv.request_count() == 1);
    }
}

TEST_CASE("stream: an in-stream error before any content is retried", "[socket][stream]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::sse().data(role).data(R"({"error":{"message":"overloaded","type":"server_error"}})"));
    srv.enqueue(good_stream());
    auto r = make_client(srv).stream(hello, [](const sturdy::chat_chunk&) {});
    CHECK(r.content() == "Hello world!");
    CHECK(r.call.attempts == 2);
}

TEST_CASE("stream: a JSON error with status 200 instead of a stream is a typed error", "[socket][stream]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::json(200, R"({"error":{"message":"model is loading","type":"server_error","code":503}})"));
    auto r = make_client(srv, 0).try_stream(hello, [](const sturdy::chat_chunk&) {});
    CHECK(r.error().kind() == error_kind::internal_server);
}

TEST_CASE("stream: a server that ignores stream:true and answers whole still works", "[socket][stream]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::json(200, R"({"id":"x","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"whole"},"finish_reason":"stop"}]})"));
    recorder seen;
    auto r = make_client(srv).stream(hello, std::ref(seen));
    CHECK(r.content() == "whole");
    CHECK(seen.joined() == "whole");
}

TEST_CASE("stream: garbage in an event is invalid_response", "[socket][stream]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::sse().data(role).data("{not json"));
    CHECK(make_client(srv).try_stream(hello, [](const sturdy::chat_chunk&) {}).error().kind() == error_kind::invalid_response);
    CHECK(srv.request_count() == 1);
}

TEST_CASE("stream: an idle gap longer than the idle timeout fails fast with the partial text", "[socket][stream]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::sse().data(role).data(text("partial")).stall());
    sturdy::request_options call;
    call.idle_timeout = 200ms;
    const auto t0 = std::chrono::steady_clock::now();
    auto r = make_client(srv).try_stream(hello, [](const sturdy::chat_chunk&) {}, call);
    CHECK(std::chrono::steady_clock::now() - t0 < 1500ms);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind() == error_kind::timeout);
    CHECK(r.error().message() == "no chunk within 200 ms");
    CHECK(r.error().partial_content() == "partial");
}

TEST_CASE("stream: keep-alive comments do not count as chunks for the idle timeout", "[socket][stream]") {
    sturdy_test::script_server srv;
    auto wire = reply::sse().data(role).data(text("a"));
    for (int i = 0; i < 6; ++i) wire.event(": ping\n\n").delay(60ms);
    srv.enqueue(wire.stall());
    sturdy::request_options call;
    call.idle_timeout = 250ms;
    auto r = make_client(srv, 0).try_stream(hello, [](const sturdy::chat_chunk&) {}, call);
    CHECK(r.error().kind() == error_kind::timeout);
}

TEST_CASE("stream: no first token in time is a timeout, retried before anything was delivered", "[socket][stream]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::sse().data(role).stall());
    srv.enqueue(good_stream());
    sturdy::request_options call;
    call.first_token_timeout = 150ms;
    recorder seen;
    const auto t0 = std::chrono::steady_clock::now();
    auto r = make_client(srv).stream(hello, std::ref(seen), call);
    CHECK(std::chrono::steady_clock::now() - t0 < 1500ms);
    CHECK(r.content() == "Hello world!");
    CHECK(r.call.attempts == 2);
    CHECK(seen.chunks == 5);

    sturdy_test::script_server srv2;
    srv2.enqueue(reply::sse().data(role).stall());
    auto failed = make_client(srv2, 0).try_stream(hello, [](const sturdy::chat_chunk&) {}, call);
    CHECK(failed.error().kind() == error_kind::timeout);
    CHECK(failed.error().message() == "no first token within 150 ms");
}

TEST_CASE("stream: the caller can stop early and keep what arrived", "[socket][stream]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::sse().data(role).data(text("one")).data(text("two")).stall());
    int seen = 0;
    const auto t0 = std::chrono::steady_clock::now();
    auto r = make_client(srv).stream(hello, [&](const sturdy::chat_chunk& c) { return ++seen < 2 || c.content() != "one"; });
    CHECK(std::chrono::steady_clock::now() - t0 < 1s);
    CHECK(r.call.stopped_early);
    CHECK(r.content() == "one");
    CHECK(srv.request_count() == 1);
}

TEST_CASE("stream: cancelling from another thread ends a stalled stream at once", "[socket][stream]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::sse().data(role).data(text("x")).stall());
    sturdy::cancellation_source caller_stop;
    sturdy::request_options call;
    call.cancel = caller_stop.token();
    std::thread canceller([&] {
        std::this_thread::sleep_for(100ms);
        caller_stop.cancel();
    });
    const auto t0 = std::chrono::steady_clock::now();
    auto r = make_client(srv).try_stream(hello, [](const sturdy::chat_chunk&) {}, call);
    canceller.join();
    CHECK(std::chrono::steady_clock::now() - t0 < 1s);
    CHECK(r.error().kind() == error_kind::cancelled);
    CHECK(srv.request_count() == 1);
}

TEST_CASE("stream: an exception from the callback propagates, and the client stays usable", "[socket][stream]") {
    sturdy_test::script_server srv;
    srv.enqueue(good_stream());
    srv.enqueue(good_stream());
    auto c = make_client(srv);
    CHECK_THROWS_WITH(c.stream(hello, [](const sturdy::chat_chunk& ch) {
        if (!ch.content().empty()) throw std::runtime_error("caller failed");
    }), "caller failed");
    CHECK(c.stream(hello, [](const sturdy::chat_chunk&) {}).content() == "Hello world!");
}

TEST_CASE("stream: reasoning tokens count as the first content", "[socket][stream]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::sse().data(role).data(chunk(R"({"reasoning_content":"Think"})")).data(text("Answer")).data(stop).data("[DONE]"));
    auto r = make_client(srv).stream(hello, [](const sturdy::chat_chunk&) {});
    CHECK(r.choices[0].message.extra["reasoning_content"] == "Think");
    CHECK(r.content() == "Answer");
}

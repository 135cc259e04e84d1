#include <sturdy/chat_accumulator.hpp>

#include "support/catch.hpp"

using nlohmann::json;

namespace {
sturdy::chat_chunk chunk(const char* text) { return json::parse(text).get<sturdy::chat_chunk>(); }
}  // namespace

TEST_CASE("accumulator: text, role, finish reason and usage", "[accumulator]") {
    sturdy::chat_accumulator acc;
    acc.add(chunk(R"({"id":"c1","model":"m","created":5,"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]})"));
    CHECK_FALSE(acc.finished());
    acc.add(chunk(R"({"id":"c1","choices":[{"index":0,"delta":{"content":"Hel"}}]})"));
    acc.add(chunk(R"({"id":"c1","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}]})"));
    acc.add(chunk(R"({"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})"));
    CHECK(acc.finished());
    acc.add(chunk(R"({"id":"c1","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}})"));
    auto r = acc.take();
    CHECK(r.id == "c1");
    CHECK(r.object == "chat.completion");
    CHECK(r.model == "m");
    CHECK(r.created == 5);
    CHECK(r.content() == "Hello");
    CHECK(r.choices[0].message.role == "assistant");
    CHECK(r.finish_reason() == "stop");
    REQUIRE(r.usage.has_value());
    CHECK(r.usage->total_tokens == 5);
}

TEST_CASE("accumulator: tool calls are assembled from their deltas by index", "[accumulator]") {
    sturdy::chat_accumulator acc;
    acc.add(chunk(R"({"choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[
        {"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}]}}]})"));
    acc.add(chunk(R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}}]})"));
    acc.add(chunk(R"({"choices":[{"index":0,"delta":{"tool_calls":[
        {"index":1,"id":"call_b","type":"function","function":{"name":"get_time","arguments":"{}"}}]}}]})"));
    acc.add(chunk(R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}}]})"));
    acc.add(chunk(R"({"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]})"));
    auto r = acc.take();
    const auto& calls = r.choices[0].message.tool_calls;
    REQUIRE(calls.size() == 2);
    CHECK(calls[0].id == "call_a");
    CHECK(calls[0].type == "function");
    CHECK(calls[0].function.name == "get_weather");
    CHECK(calls[0].function.arguments == R"({"city":"Paris"})");
    CHECK(calls[1].function.name == "get_time");
    CHECK_FALSE(calls[0].index.has_value());  // the stream index is gone, as in an unstreamed reply
    CHECK(r.finish_reason() == "tool_calls");
}

TEST_CASE("accumulator: a server that repeats the tool name in every delta", "[accumulator]") {
    sturdy::chat_accumulator acc;
    acc.add(chunk(R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","function":{"name":"f","arguments":"{\"a\""}}]}}]})"));
    acc.add(chunk(R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","function":{"name":"f","arguments":":1}"}}]}}]})"));
    auto r = acc.take();
    CHECK(r.choices[0].message.tool_calls[0].function.name == "f");
    CHECK(r.choices[0].message.tool_calls[0].function.arguments == R"({"a":1})");
}

TEST_CASE("accumulator: reasoning text is concatenated; several choices stay apart", "[accumulator]") {
    sturdy::chat_accumulator acc;
    acc.add(chunk(R"({"choices":[{"index":1,"delta":{"content":"B"}},{"index":0,"delta":{"reasoning_content":"Let me "}}]})"));
    acc.add(chunk(R"({"choices":[{"index":0,"delta":{"reasoning_content":"think."}}]})"));
    acc.add(chunk(R"({"choices":[{"index":0,"delta":{"content":"A"},"finish_reason":"stop"}]})"));
    CHECK_FALSE(acc.finished());  // choice 1 has no finish reason yet
    acc.add(chunk(R"({"choices":[{"index":1,"delta":{},"finish_reason":"length"}]})"));
    CHECK(acc.finished());
    auto r = acc.take();
    REQUIRE(r.choices.size() == 2);
    CHECK(r.choices[0].index == 0);
    CHECK(r.choices[0].message.content == "A");
    CHECK(r.choices[0].message.extra["reasoning_content"] == "Let me think.");
    CHECK(r.choices[1].message.content == "B");
    CHECK(r.choices[1].finish_reason == "length");
}

TEST_CASE("accumulator: logprobs arrays are concatenated; OpenAI's obfuscation padding is dropped", "[accumulator]") {
    sturdy::chat_accumulator acc;
    acc.add(chunk(R"({"obfuscation":"xx","choices":[{"index":0,"delta":{"content":"a"},"logprobs":{"content":[{"token":"a","logprob":-0.1}]}}]})"));
    acc.add(chunk(R"({"obfuscation":"yyy","choices":[{"index":0,"delta":{"content":"b"},"logprobs":{"content":[{"token":"b","logprob":-0.2}]}}],
                     "timings":{"predicted_n":2}})"));
    auto r = acc.take();
    REQUIRE(r.choices[0].logprobs["content"].size() == 2);
    CHECK(r.choices[0].logprobs["content"][1]["token"] == "b");
    CHECK_FALSE(r.extra.contains("obfuscation"));
    CHECK(r.extra["timings"]["predicted_n"] == 2);
}

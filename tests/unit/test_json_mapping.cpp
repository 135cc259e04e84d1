#include <sturdy/chat.hpp>
#include <sturdy/embeddings.hpp>
#include <sturdy/models.hpp>

#include "support/catch.hpp"

using nlohmann::json;

TEST_CASE("json: a chat request sends only what was set", "[json]") {
    sturdy::chat_request req{"gpt-4o-mini", {sturdy::chat_message::system("Be brief."), sturdy::chat_message::user("Hi")}};
    json j = req;
    CHECK(j == json::parse(R"({"model":"gpt-4o-mini","messages":[
        {"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}]})"));

    req.temperature = 0.5;
    req.max_tokens = 10;
    req.seed = 7;
    req.stop = "END";
    j = req;
    CHECK(j["temperature"] == 0.5);
    CHECK(j["max_tokens"] == 10);
    CHECK(j["seed"] == 7);
    CHECK(j["stop"] == "END");
    CHECK_FALSE(j.contains("top_p"));
    CHECK_FALSE(j.contains("tools"));
}

TEST_CASE("json: extra request fields are sent and override known ones", "[json]") {
    sturdy::chat_request req{"m", {sturdy::chat_message::user("Hi")}};
    req.extra["reasoning_effort"] = "low";
    req.extra["model"] = "overridden";
    req.messages[0].extra["content"] = json::array({{{"type", "text"}, {"text", "Hi"}}});
    json j = req;
    CHECK(j["reasoning_effort"] == "low");
    CHECK(j["model"] == "overridden");
    CHECK(j["messages"][0]["content"].is_array());
}

TEST_CASE("json: a message's content is always sent, even empty, except beside tool calls", "[json]") {
    CHECK(json(sturdy::chat_message::user("")).contains("content"));
    sturdy::chat_message m = sturdy::chat_message::assistant("");
    sturdy::tool_call call;
    call.id = "call_1";
    call.function.name = "get_weather";
    call.function.arguments = R"({"city":"Paris"})";
    m.tool_calls.push_back(call);
    json j = m;
    CHECK_FALSE(j.contains("content"));
    CHECK(j["tool_calls"][0]["function"]["name"] == "get_weather");
    m.content = "Let me check.";
    CHECK(json(m)["content"] == "Let me check.");
    CHECK(j["tool_calls"][0]["type"] == "function");
    CHECK_FALSE(j["tool_calls"][0].contains("index"));
}

TEST_CASE("json: unknown reply fields are kept, at every level", "[json]") {
    auto j = json::parse(R"({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "deepseek-reasoner",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "42", "reasoning_content": "thinking..."}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6,
                  "prompt_tokens_details": {"cached_tokens": 0}},
        "timings": {"predicted_ms": 12.5}
    })");
    auto r = j.get<sturdy::chat_response>();
    CHECK(r.content() == "42");
    CHECK(r.finish_reason() == "stop");
    CHECK(r.choices[0].message.extra["reasoning_content"] == "thinking...");
    CHECK(r.extra["timings"]["predicted_ms"] == 12.5);
    REQUIRE(r.usage.has_value());
    CHECK(r.usage->total_tokens == 6);
    CHECK(r.usage->extra["prompt_tokens_details"]["cached_tokens"] == 0);
    // And they go back out unchanged.
    json back = r;
    CHECK(back == j);
}

TEST_CASE("json: a reply that omits optional fields still parses", "[json]") {
    auto r = json::parse(R"({"choices":[{"message":{"content":"hi"}}]})").get<sturdy::chat_response>();
    CHECK(r.content() == "hi");
    CHECK(r.id.empty());
    CHECK(r.created == 0);
    CHECK_FALSE(r.usage.has_value());
    CHECK(r.choices[0].finish_reason.empty());
}

TEST_CASE("json: null where a value is optional reads as empty", "[json]") {
    auto r = json::parse(R"({"choices":[{"index":0,"message":{"role":"assistant","content":null,
        "tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
        "finish_reason":"tool_calls","logprobs":null}],"usage":null})").get<sturdy::chat_response>();
    CHECK(r.content().empty());
    REQUIRE(r.choices[0].message.tool_calls.size() == 1);
    CHECK(r.choices[0].message.tool_calls[0].function.name == "f");
    CHECK_FALSE(r.usage.has_value());
}

TEST_CASE("json: a known field of an unexpected type is kept in extra, not lost", "[json]") {
    auto r = json::parse(R"({"created":"yesterday","choices":[]})").get<sturdy::chat_response>();
    CHECK(r.created == 0);
    CHECK(r.extra["created"] == "yesterday");
}

TEST_CASE("json: a non-object is refused with nlohmann's type_error", "[json]") {
    CHECK_THROWS_AS(json::parse("[1,2]").get<sturdy::chat_response>(), json::type_error);
}

TEST_CASE("json: stream chunks with tool call deltas", "[json]") {
    auto c = json::parse(R"({"id":"x","object":"chat.completion.chunk","choices":[{"index":0,
        "delta":{"tool_calls":[{"index":1,"function":{"arguments":"{\"ci"}}]},"finish_reason":null}],
        "obfuscation":"abc"})").get<sturdy::chat_chunk>();
    REQUIRE(c.choices.size() == 1);
    REQUIRE(c.choices[0].delta.tool_calls.size() == 1);
    CHECK(c.choices[0].delta.tool_calls[0].index == 1);
    CHECK(c.choices[0].delta.tool_calls[0].function.arguments == "{\"ci");
    CHECK(c.extra["obfuscation"] == "abc");
    CHECK(c.content().empty());
}

TEST_CASE("json: embeddings read floats or base64 into the matching member", "[json]") {
    auto floats = json::parse(R"({"object":"list","model":"e","data":[{"object":"embedding","index":0,"embedding":[0.5,-1.25]}],
        "usage":{"prompt_tokens":2,"total_tokens":2}})").get<sturdy::embedding_response>();
    REQUIRE(floats.data.size() == 1);
    CHECK(floats.data[0].values == std::vector<float>{0.5f, -1.25f});
    CHECK(floats.data[0].base64.empty());

    auto b64 = json::parse(R"({"data":[{"index":0,"embedding":"AAAAPwAAoL8="}]})").get<sturdy::embedding_response>();
    CHECK(b64.data[0].base64 == "AAAAPwAAoL8=");
    CHECK(b64.data[0].values.empty());
    json back = b64;
    CHECK(back["data"][0]["embedding"] == "AAAAPwAAoL8=");
}

TEST_CASE("json: an embedding request", "[json]") {
    sturdy::embedding_request req{"text-embedding-3-small", {"a", "b"}};
    req.dimensions = 256;
    json j = req;
    CHECK(j == json::parse(R"({"model":"text-embedding-3-small","input":["a","b"],"dimensions":256})"));
}

TEST_CASE("json: model lists keep server extras", "[json]") {
    auto list = json::parse(R"({"object":"list","data":[{"id":"tiny","object":"model","created":1,"owned_by":"llamacpp",
        "meta":{"n_ctx_train":2048}}],"models":[{"name":"tiny"}]})").get<sturdy::model_list>();
    REQUIRE(list.data.size() == 1);
    CHECK(list.data[0].id == "tiny");
    CHECK(list.data[0].extra["meta"]["n_ctx_train"] == 2048);
    CHECK(list.extra["models"][0]["name"] == "tiny");
}

TEST_CASE("json: a required field of the wrong type or null is no reply", "[json]") {
    sturdy::chat_response reply;
    CHECK_FALSE(sturdy::detail::read_json(R"({"id":"x","choices":"oops"})", reply, "choices"));
    reply = {};
    CHECK_FALSE(sturdy::detail::read_json(R"({"id":"x","choices":null})", reply, "choices"));
    reply = {};
    CHECK_FALSE(sturdy::detail::read_json(R"({"id":"x","choices":{}})", reply, "choices"));
    reply = {};
    CHECK_FALSE(sturdy::detail::read_json(R"({"id":"x","object":{"choices":[]}})", reply, "choices"));
    reply = {};
    CHECK(sturdy::detail::read_json(R"({"id":"x","choices":[]})", reply, "choices"));
    sturdy::model_info model;
    CHECK_FALSE(sturdy::detail::read_json(R"({"id":7})", model, "id"));
    model = {};
    CHECK(sturdy::detail::read_json(R"({"id":"m"})", model, "id"));
}

// Chat completions against llama.cpp's llama-server (a tiny random-weight model: gibberish text,
// real protocol).

#include "conformance/llama_server.hpp"

#include "support/catch.hpp"

#include <string>

using namespace sturdy_conformance;

TEST_CASE("conformance chat: a reply has content, the model's name, a finish reason and consistent usage",
          "[conformance][chat]") {
    auto client = chat_client();
    auto reply = client.chat(user_request("Say hello."));

    CHECK_FALSE(reply.id.empty());
    CHECK(reply.object == "chat.completion");
    CHECK(reply.model == chat_model);
    REQUIRE(reply.choices.size() == 1);
    CHECK(reply.choices[0].message.role == "assistant");
    CHECK_FALSE(reply.content().empty());
    CAPTURE(reply.finish_reason());
    const bool known_reason = reply.finish_reason() == "stop" || reply.finish_reason() == "length";
    CHECK(known_reason);
    REQUIRE(reply.usage.has_value());
    CHECK(reply.usage->prompt_tokens > 0);
    CHECK(reply.usage->completion_tokens > 0);
    CHECK(reply.usage->total_tokens == reply.usage->prompt_tokens + reply.usage->completion_tokens);
    CHECK(reply.call.attempts == 1);
}

TEST_CASE("conformance chat: max_tokens bounds the reply, which ends with finish_reason length", "[conformance][chat]") {
    auto client = chat_client();
    auto req = user_request("Tell me a long story about a lighthouse keeper.", 5);
    SECTION("max_tokens") {}
    SECTION("max_completion_tokens, its newer name") {
        req.max_tokens.reset();
        req.max_completion_tokens = 5;
    }
    auto reply = client.chat(req);

    REQUIRE(reply.usage.has_value());
    CHECK(reply.usage->completion_tokens > 0);
    CHECK(reply.usage->completion_tokens <= 5);
    CHECK(reply.finish_reason() == "length");
}

TEST_CASE("conformance chat: fields the server adds to a reply (llama.cpp's timings) are kept in extra",
          "[conformance][chat]") {
    auto client = chat_client();
    SECTION("unstreamed") {
        auto reply = client.chat(user_request("Say hello."));
        REQUIRE(reply.extra.contains("timings"));
        CHECK(reply.extra["timings"].is_object());
        CHECK(reply.extra["timings"].contains("predicted_n"));
    }
    SECTION("streamed: kept from the chunk that carried them") {
        auto reply = client.stream(user_request("Say hello."), [](const sturdy::chat_chunk&) {});
        REQUIRE(reply.extra.contains("timings"));
        CHECK(reply.extra["timings"].contains("predicted_n"));
    }
}

namespace {

nlohmann::json weather_tool() {
    return nlohmann::json::parse(R"([{"type": "function", "function": {
        "name": "get_weather", "description": "The current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])");
}

}  // namespace

// llama-server parses `tools` and `tool_choice` and rejects malformed ones (500 "Failed to parse
// tools", 400 "Invalid tool_choice"), so a success shows the client sent them in the API's shape.
// The random-weight model calls a tool only by chance: when it does, the call must be well formed.
TEST_CASE("conformance chat: a request with tools and tool_choice is accepted", "[conformance][chat][tools]") {
    auto client = chat_client();
    auto req = user_request("What is the weather in Paris?");
    req.tools = weather_tool();
    SECTION("tool_choice auto") { req.tool_choice = "auto"; }
    SECTION("tool_choice naming the function") {
        req.tool_choice = {{"type", "function"}, {"function", {{"name", "get_weather"}}}};
    }
    auto reply = client.try_chat(req);

    REQUIRE(reply);
    REQUIRE(reply->choices.size() == 1);
    for (const auto& call : reply->choices[0].message.tool_calls) {
        CHECK(call.function.name == "get_weather");
        CHECK(nlohmann::json::accept(call.function.arguments));
    }
}

TEST_CASE("conformance chat: a conversation with an assistant tool call and the tool's answer is accepted",
          "[conformance][chat][tools]") {
    auto client = chat_client();
    auto asked = sturdy::chat_message::assistant("");
    sturdy::tool_call call;
    call.id = "call_1";
    call.function.name = "get_weather";
    call.function.arguments = R"({"city":"Paris"})";
    asked.tool_calls.push_back(call);
    sturdy::chat_request req{chat_model,
                             {sturdy::chat_message::system("You answer about the weather."),
                              sturdy::chat_message::user("What is the weather in Paris?"), asked,
                              sturdy::chat_message::tool("call_1", R"({"sky":"sunny","celsius":21})")}};
    req.tools = weather_tool();
    req.max_tokens = 8;

    auto reply = client.try_chat(req);

    REQUIRE(reply);
    CHECK_FALSE(reply->choices.empty());
    REQUIRE(reply->usage.has_value());
    CHECK(reply->usage->prompt_tokens > 0);
}

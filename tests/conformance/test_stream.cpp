// Streamed chat completions (SSE) against llama.cpp's llama-server.

#include "conformance/llama_server.hpp"

#include "support/catch.hpp"

#include <chrono>
#include <string>
#include <vector>

using namespace sturdy_conformance;

TEST_CASE("conformance stream: chunks arrive one by one and add up to the returned reply", "[conformance][stream]") {
    auto client = chat_client();
    std::vector<std::string> pieces;
    std::string finish_reason_seen;
    auto reply = client.stream(user_request("Say hello.", 12), [&](const sturdy::chat_chunk& chunk) {
        pieces.emplace_back(chunk.content());
        for (const auto& choice : chunk.choices)
            if (!choice.finish_reason.empty()) finish_reason_seen = choice.finish_reason;
    });

    CHECK(pieces.size() > 1);
    std::string joined;
    for (const auto& piece : pieces) joined += piece;
    CHECK_FALSE(reply.content().empty());
    CHECK(reply.content() == joined);
    CHECK(reply.model == chat_model);
    CHECK(reply.object == "chat.completion");
    REQUIRE(reply.choices.size() == 1);
    CHECK(reply.choices[0].message.role == "assistant");
    CHECK_FALSE(reply.finish_reason().empty());
    CHECK(reply.finish_reason() == finish_reason_seen);
    CHECK_FALSE(reply.call.stopped_early);
    REQUIRE(reply.call.time_to_first_token.has_value());
    CHECK(reply.call.time_to_first_token->count() > 0);
    CHECK(*reply.call.time_to_first_token <= reply.call.latency);
}

TEST_CASE("conformance stream: usage arrives when include_usage asks for it, and only then", "[conformance][stream]") {
    auto client = chat_client();
    auto req = user_request("Say hello.", 8);
    bool chunk_with_usage = false;
    auto watch = [&](const sturdy::chat_chunk& chunk) { chunk_with_usage = chunk_with_usage || chunk.usage.has_value(); };

    SECTION("asked") {
        req.stream_options = sturdy::chat_stream_options{true, {}};
        auto reply = client.stream(req, watch);

        CHECK(chunk_with_usage);
        REQUIRE(reply.usage.has_value());
        CHECK(reply.usage->prompt_tokens > 0);
        CHECK(reply.usage->completion_tokens > 0);
        CHECK(reply.usage->completion_tokens <= 8);
        CHECK(reply.usage->total_tokens == reply.usage->prompt_tokens + reply.usage->completion_tokens);
    }
    SECTION("not asked") {
        auto reply = client.stream(req, watch);

        CHECK_FALSE(chunk_with_usage);
        CHECK_FALSE(reply.usage.has_value());
    }
}

TEST_CASE("conformance stream: at temperature 0 a streamed reply equals the unstreamed one", "[conformance][stream]") {
    auto client = chat_client();
    auto req = user_request("Tell me a long story about a lighthouse keeper.", 48);
    req.stream_options = sturdy::chat_stream_options{true, {}};  // sent by the stream only

    auto whole = client.chat(req);
    auto streamed = client.stream(req, [](const sturdy::chat_chunk&) {});

    CHECK_FALSE(whole.content().empty());
    CHECK(streamed.content() == whole.content());
    CHECK(streamed.finish_reason() == whole.finish_reason());
    REQUIRE(whole.usage.has_value());
    REQUIRE(streamed.usage.has_value());
    CHECK(streamed.usage->completion_tokens == whole.usage->completion_tokens);
    CHECK(streamed.usage->prompt_tokens == whole.usage->prompt_tokens);
}

TEST_CASE("conformance stream: a callback returning false ends the call at once, with the partial reply",
          "[conformance][stream]") {
    using steady = std::chrono::steady_clock;
    auto client = chat_client();
    // The whole reply, 450 tokens (the slot holds 512), takes the server hundreds of milliseconds or
    // more; the same reply stopped after two chunks must come back in a fraction of that, not after
    // the client has read the rest of the stream.
    auto req = user_request("Tell me a long story about a lighthouse keeper.", 450);

    const auto full_started = steady::now();
    auto full = client.stream(req, [](const sturdy::chat_chunk&) {});
    const auto full_time = steady::now() - full_started;
    REQUIRE(full.finish_reason() == "length");

    std::vector<std::string> seen;
    const auto stopped_started = steady::now();
    auto partial = client.stream(req, [&](const sturdy::chat_chunk& chunk) {
        seen.emplace_back(chunk.content());
        return seen.size() < 2;
    });
    const auto stopped_time = steady::now() - stopped_started;

    CHECK(partial.call.stopped_early);
    REQUIRE(seen.size() == 2);
    CHECK(partial.content() == seen[0] + seen[1]);
    CHECK_FALSE(partial.content().empty());
    CHECK(full.content().compare(0, partial.content().size(), partial.content()) == 0);
    CHECK(partial.content().size() < full.content().size());
    CHECK(partial.finish_reason().empty());
    CAPTURE(std::chrono::duration_cast<std::chrono::milliseconds>(full_time).count(),
            std::chrono::duration_cast<std::chrono::milliseconds>(stopped_time).count());
    CHECK(stopped_time * 2 < full_time);

    // The connection the stopped call abandoned does not disturb the next call.
    auto next = client.chat(user_request("Say hello.", 4));
    CHECK_FALSE(next.content().empty());
}

// Real error replies of llama.cpp's llama-server, classified and kept free of the API key.

#include "conformance/llama_server.hpp"

#include "support/catch.hpp"

#include <string>

using namespace sturdy_conformance;

namespace {

// About 3000 tokens, for a server whose chat slots hold 512.
std::string oversized_prompt() {
    std::string text;
    for (int i = 0; i < 3000; ++i) text += "word ";
    return text;
}

}  // namespace

TEST_CASE("conformance errors: a prompt larger than the context is context_length_exceeded, status 400, chat and stream",
          "[conformance][errors]") {
    auto client = chat_client();
    const auto req = user_request(oversized_prompt());
    int chunks = 0;

    const bool streamed = GENERATE(false, true);
    auto reply = streamed ? client.try_stream(req, [&](const sturdy::chat_chunk&) { ++chunks; }) : client.try_chat(req);

    CAPTURE(streamed);
    REQUIRE_FALSE(reply);
    const auto& e = reply.error();
    CAPTURE(e.what());
    CHECK(e.kind() == sturdy::error_kind::context_length_exceeded);
    CHECK(e.is(sturdy::error_kind::bad_request));
    CHECK(e.status() == 400);
    CHECK(e.type() == "exceed_context_size_error");
    CHECK_FALSE(e.message().empty());
    CHECK(chunks == 0);
}

TEST_CASE("conformance errors: a wrong API key is an authentication error, status 401, that never shows the key, chat and stream",
          "[conformance][errors]") {
    const std::string wrong_key = "sk-wrong-0123456789abcdef";
    auto client = chat_client(wrong_key);
    const auto req = user_request("Say hello.");

    const bool streamed = GENERATE(false, true);
    auto reply = streamed ? client.try_stream(req, [](const sturdy::chat_chunk&) {}) : client.try_chat(req);

    CAPTURE(streamed);
    REQUIRE_FALSE(reply);
    const auto& e = reply.error();
    CAPTURE(e.what());
    CHECK(e.kind() == sturdy::error_kind::authentication);
    CHECK(e.status() == 401);
    CHECK_FALSE(e.message().empty());
    CHECK(std::string(e.what()).find(wrong_key) == std::string::npos);
    CHECK(e.body().find(wrong_key) == std::string::npos);
    CHECK(e.message().find(wrong_key) == std::string::npos);
}

// GET /models against llama.cpp's llama-server, which lists its model but serves no
// GET /models/{id}.

#include "conformance/llama_server.hpp"

#include "support/catch.hpp"

#include <algorithm>

using namespace sturdy_conformance;

TEST_CASE("conformance models: the list names the served model", "[conformance][models]") {
    auto client = chat_client();
    auto list = client.models();

    CHECK(list.object == "list");
    const auto served = std::find_if(list.data.begin(), list.data.end(),
                                     [](const sturdy::model_info& m) { return m.id == chat_model; });
    REQUIRE(served != list.data.end());
    CHECK(served->object == "model");
    CHECK(served->created > 0);
}

TEST_CASE("conformance models: llama.cpp's own fields (a second models array, meta) are kept in extra",
          "[conformance][models]") {
    auto client = chat_client();
    auto list = client.models();

    REQUIRE(list.extra.contains("models"));
    CHECK(list.extra["models"].is_array());
    REQUIRE_FALSE(list.data.empty());
    REQUIRE(list.data[0].extra.contains("meta"));
    CHECK(list.data[0].extra["meta"].contains("n_ctx"));
}

TEST_CASE("conformance models: retrieving a model, which llama.cpp does not serve, is a clean not_found",
          "[conformance][models]") {
    auto client = chat_client();
    auto reply = client.try_model(chat_model);

    REQUIRE_FALSE(reply);
    const auto& e = reply.error();
    CAPTURE(e.what());
    CHECK(e.kind() == sturdy::error_kind::not_found);
    CHECK(e.status() == 404);
    CHECK(e.type() == "not_found_error");
    CHECK_FALSE(e.message().empty());
}

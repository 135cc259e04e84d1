// Embeddings against llama.cpp's llama-server (model tiny-embed, 64 dimensions), in both encodings.

#include "conformance/llama_server.hpp"

#include "support/catch.hpp"

#include <cstddef>
#include <string>
#include <vector>

using namespace sturdy_conformance;

namespace {

const std::vector<std::string> texts = {"The quick brown fox", "jumps over", "the lazy dog"};

}  // namespace

TEST_CASE("conformance embeddings: the default base64 transfer decodes to exactly the floats sent as JSON",
          "[conformance][embeddings]") {
    auto client = embed_client();
    sturdy::embedding_request req{embed_model, texts};
    auto as_base64 = client.embed(req);  // no encoding_format: the client asks for base64 and decodes it
    req.encoding_format = "float";
    auto as_float = client.embed(req);

    REQUIRE(as_base64.data.size() == texts.size());
    REQUIRE(as_float.data.size() == texts.size());
    for (std::size_t i = 0; i < texts.size(); ++i) {
        CAPTURE(i);
        CHECK(as_base64.data[i].base64.empty());
        CHECK(as_base64.data[i].values.size() == embed_dimensions);
        CHECK(as_base64.data[i].values == as_float.data[i].values);  // float ==, element by element
    }
}

TEST_CASE("conformance embeddings: a batch of three texts gives three 64-dimension vectors, indexed 0..2 in input order",
          "[conformance][embeddings]") {
    auto client = embed_client();
    auto batch = client.embed({embed_model, texts});

    CHECK(batch.model == embed_model);
    REQUIRE(batch.data.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
        CAPTURE(i);
        CHECK(batch.data[i].index == static_cast<int>(i));
        REQUIRE(batch.data[i].values.size() == embed_dimensions);
        auto alone = client.embed({embed_model, {texts[i]}});
        REQUIRE(alone.data.size() == 1);
        REQUIRE(alone.data[0].values.size() == embed_dimensions);
        for (std::size_t d = 0; d < embed_dimensions; ++d)
            CHECK(batch.data[i].values[d] == Approx(alone.data[0].values[d]).margin(1e-5));
    }
    CHECK(batch.data[0].values != batch.data[1].values);
    CHECK(batch.data[1].values != batch.data[2].values);
    REQUIRE(batch.usage.has_value());
    CHECK(batch.usage->prompt_tokens > 0);
}

TEST_CASE("conformance embeddings: asking for base64 explicitly returns the server's base64 undecoded",
          "[conformance][embeddings]") {
    auto client = embed_client();
    sturdy::embedding_request req{embed_model, {texts[0]}};
    req.encoding_format = "base64";
    auto reply = client.embed(req);

    REQUIRE(reply.data.size() == 1);
    CHECK(reply.data[0].values.empty());
    // 64 float32 = 256 bytes = 344 base64 characters, padding included.
    CHECK(reply.data[0].base64.size() == 344);
}

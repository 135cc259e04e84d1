// Quickstart: embed a batch of texts and compare them by cosine similarity.
#include <sturdy/sturdy.hpp>

#include "example_backend.hpp"

#include <iostream>

int main() {
    example_backend backend;
    const sturdy::client client(backend.options());

    sturdy::embedding_request request{backend.embedding_model(),
                                      {"The cat sat on the mat.", "A cat was sitting on a rug.", "Quarterly revenue grew 8%."}};
    request.dimensions = 256;  // OpenAI's text-embedding-3 models can shorten their vectors

    try {
        // The client asks for base64 (smaller and exact, as the official SDKs do) and decodes it.
        const auto reply = client.embed(request);
        for (const auto& e : reply.data) std::cout << "text " << e.index << ": " << e.values.size() << " dimensions\n";
        std::cout << "similarity(0,1)=" << sturdy::cosine_similarity(reply.data[0].values, reply.data[1].values)
                  << " similarity(0,2)=" << sturdy::cosine_similarity(reply.data[0].values, reply.data[2].values)
                  << "\n";
    } catch (const sturdy::error& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
}

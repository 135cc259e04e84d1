// Quickstart: list the models, describe one, and handle one that does not exist.
#include <sturdy/sturdy.hpp>

#include "example_backend.hpp"

#include <iostream>

int main() {
    example_backend backend;
    const sturdy::client client(backend.options());

    try {
        const sturdy::model_list models = client.models();
        std::cout << models.data.size() << " models:\n";
        for (const auto& m : models.data) std::cout << "  " << m.id << " (" << m.owned_by << ")\n";
    } catch (const sturdy::error& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }

    // Not every server implements GET /models/{id} (llama.cpp answers 404): the non-throwing form
    // makes "not there" an ordinary branch.
    auto missing = client.try_model("no-such-model");
    if (missing) {
        std::cout << "unexpectedly found " << missing->id << "\n";
        return 1;
    }
    if (missing.error().kind() != sturdy::error_kind::not_found) {
        std::cerr << "error: " << missing.error().what() << "\n";
        return 1;
    }
    std::cout << "no-such-model: " << sturdy::to_string(missing.error().kind()) << " [" << missing.error().status() << "]\n";
}

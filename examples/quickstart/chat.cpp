// Quickstart: one chat completion, and what the call went through.
#include <sturdy/sturdy.hpp>

#include "example_backend.hpp"

#include <iostream>

int main() {
    example_backend backend;
    const sturdy::client client(backend.options());

    sturdy::chat_request request{backend.chat_model(),
                                 {sturdy::chat_message::system("You are a concise assistant."),
                                  sturdy::chat_message::user("Name three uses of a paperclip.")}};
    request.max_tokens = 100;

    try {
        const sturdy::chat_response reply = client.chat(request);
        std::cout << reply.content() << "\n";
        std::cout << "finish_reason=" << reply.finish_reason() << " attempts=" << reply.call.attempts
                  << " latency=" << ms(reply.call.latency) << "ms";
        if (reply.usage) std::cout << " tokens=" << reply.usage->total_tokens;
        std::cout << "\n";
    } catch (const sturdy::error& e) {
        // e.what() reads "KIND [STATUS]: MESSAGE"; e.kind(), e.status(), e.request_id()... have the parts.
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
}

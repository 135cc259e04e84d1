// Quickstart: a streamed reply, printed as it arrives, with usage and time to first token.
#include <sturdy/sturdy.hpp>

#include "example_backend.hpp"

#include <iostream>

int main() {
    example_backend backend;
    const sturdy::client client(backend.options());

    sturdy::chat_request request{backend.chat_model(), {sturdy::chat_message::user("Write a haiku about resilient software.")}};
    request.stream_options = sturdy::chat_stream_options{/*include_usage=*/true, {}};

    // The callback sees each chunk as it arrives; returning false would stop the stream early.
    // Retries happen only before the first content reaches it, so it never sees a chunk twice.
    auto print = [](const sturdy::chat_chunk& chunk) {
        std::cout << chunk.content() << std::flush;
        return true;
    };

    // The non-throwing form: a result<chat_response> that tests false on failure.
    auto reply = client.try_stream(request, print);
    std::cout << "\n";
    if (!reply) {
        // Text already printed stays printed; the error carries it too, as partial_content().
        std::cerr << "error: " << reply.error().what() << "\n";
        return 1;
    }
    // The same reply an unstreamed call would have returned, assembled from the chunks.
    std::cout << "finish_reason=" << reply->finish_reason();
    if (reply->call.time_to_first_token) std::cout << " ttft=" << ms(*reply->call.time_to_first_token) << "ms";
    if (reply->usage) std::cout << " tokens=" << reply->usage->total_tokens;
    std::cout << "\n";
}

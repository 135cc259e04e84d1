// Quickstart: the default retry policy (the official SDKs' contract) riding out a 429 that asks
// for a wait with Retry-After, then a 503, and succeeding on the third attempt.
#include <sturdy/sturdy.hpp>

#include "example_backend.hpp"

#include <chrono>
#include <iostream>

int main() {
    using namespace std::chrono_literals;
    example_backend backend;

    if (auto* demo = backend.demo()) {
        // Make the local server misbehave the way providers do under load.
        demo->inject(sturdy_demo::fault::status(429).retry_after(1s));
        demo->inject(sturdy_demo::fault::status(503));
        std::cout << "the demo server will answer 429 (Retry-After: 1), then 503, then succeed\n";
    }

    // The official contract: 2 retries; 408/409/429/5xx, connection errors and timeouts; the
    // server's Retry-After when it is at most 60 s, else min(0.5 s * 2^n, 8 s) with jitter.
    // The hook shows each decision; wire it to your logging.
    sturdy::retry_options retry;
    retry.on_retry = [](const sturdy::retry_event& e) {
        std::cout << "  retry " << e.retry << " after " << sturdy::to_string(e.cause.kind()) << " [" << e.cause.status()
                  << "], waiting " << ms(e.delay) << "ms"
                  << (e.from_retry_after ? " (the server's Retry-After)" : " (backoff)") << "\n";
    };
    const sturdy::client client(backend.options(), sturdy::retry_policy(retry));

    try {
        const auto reply = client.chat({backend.chat_model(), {sturdy::chat_message::user("Are you there?")}});
        std::cout << reply.content() << "\n";
        std::cout << "succeeded after " << reply.call.attempts << " attempt(s) in " << ms(reply.call.latency) << "ms\n";
    } catch (const sturdy::error& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
}

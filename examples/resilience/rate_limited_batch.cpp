// Client-side rate limiting of a batch: concurrency plus requests per minute, against the local
// demo server. Thirty prompts, eight worker threads, one shared client whose policy holds
//   - a bulkhead: at most 4 requests on the wire at once, the other callers wait in order;
//   - a rate limiter: at most 10 requests start in any second (600 a minute, spread out), so the
//     batch goes out 10 at a time, under the provider's limit instead of into its 429s.
// The limits' own hooks print every wait as it happens; the program checks at the end that the
// server never saw more than 4 requests at once, nor faster than the rate allowed.
#include <sturdy/sturdy.hpp>

#include <demo_server.hpp>

#include <atomic>
#include <chrono>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

long long ms(std::chrono::steady_clock::duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

}  // namespace

int main() {
    sturdy_demo::server demo;
    demo.start();
    demo.set_model_latency("demo-mini", 50ms);  // a slow model, so that calls overlap
    std::mutex print_mutex;                     // the hooks run on the worker threads

    // Share one limiter among everything that spends the same provider limit; keep a copy to
    // watch it (copies share their windows). Set `tokens` too for a TPM limit: each call is then
    // charged its prompt estimate plus max_tokens, and corrected by the reply's usage.
    sturdy::rate_limiter_options rpm;
    rpm.name = "demo-rpm";
    // At most 10 starts in any second: 600 a minute, but never 600 at once.
    rpm.requests = 10;
    rpm.period = 1s;
    rpm.max_wait = 30s;      // a batch may wait; an interactive call would rather fail fast
    rpm.on_rate_limited = [&](const sturdy::rate_limited_event& e) {
        std::lock_guard<std::mutex> lock(print_mutex);
        std::cout << "  [" << e.limiter << "] " << (e.rejected ? "refused, would wait " : "waits ") << ms(e.wait) << " ms for "
                  << sturdy::to_string(e.limit) << "\n";
    };
    const sturdy::rate_limiter limiter(rpm);

    sturdy::bulkhead_options pool;
    pool.name = "demo-pool";
    pool.max_concurrent = 4;
    pool.max_queue = 16;  // more than the 8 workers: nobody is turned away in this batch
    pool.on_event = [&](const sturdy::bulkhead_event& e) {
        if (e.action != sturdy::bulkhead_action::queued) return;
        std::lock_guard<std::mutex> lock(print_mutex);
        std::cout << "  [" << e.bulkhead << "] " << e.in_flight << " in flight: a call queues, " << e.queued << " waiting\n";
    };
    const sturdy::bulkhead concurrency(pool);

    // Outermost the bulkhead: it bounds everything inside it, limiter waits included. The retry
    // sits outside the limiter, so each attempt, retries too, is counted against the rate.
    const auto policy = sturdy::compose(concurrency, sturdy::retry_policy(), limiter);
    sturdy::client_options options;
    options.base_url = demo.base_url();
    options.api_key = "sk-demo";
    const sturdy::basic_client<sturdy::curl_transport, decltype(policy)> client(options, policy);

    constexpr int prompts = 30, workers = 8;
    std::atomic<int> next{0}, done{0}, failed{0};
    const auto started = std::chrono::steady_clock::now();
    std::vector<std::thread> threads;
    for (int w = 0; w < workers; ++w) {
        threads.emplace_back([&] {
            for (int i = next++; i < prompts; i = next++) {
                auto reply = client.try_chat({"demo-mini", {sturdy::chat_message::user("Summarise document " + std::to_string(i))}});
                const int finished = ++done;
                std::lock_guard<std::mutex> lock(print_mutex);
                if (!reply) {
                    ++failed;
                    std::cout << "prompt " << i << " failed: " << reply.error().what() << "\n";
                } else if (finished % 10 == 0) {
                    std::cout << finished << "/" << prompts << " done after " << ms(std::chrono::steady_clock::now() - started) << " ms\n";
                }
            }
        });
    }
    for (auto& t : threads) t.join();
    const auto elapsed = std::chrono::steady_clock::now() - started;

    // 10 go at once, 10 more when they leave the window a second later, and the last 10 a second after.
    const auto fastest_allowed = (prompts / 10 - 1) * 1s;
    std::cout << "total: " << prompts - failed << "/" << prompts << " succeeded in " << ms(elapsed) << " ms (the rate allows no less than "
              << ms(fastest_allowed) << " ms)\n";
    std::cout << "server: " << demo.requests() << " requests, at most " << demo.max_in_flight() << " at once (bulkhead: "
              << pool.max_concurrent << ")\n";

    const bool as_expected = failed == 0 && demo.requests() == prompts && demo.max_in_flight() <= 4 &&
                             elapsed >= fastest_allowed - 50ms && concurrency.in_flight() == 0;
    std::cout << (as_expected ? "the batch kept both limits\n" : "UNEXPECTED: the batch broke a limit\n");
    return as_expected ? 0 : 1;
}

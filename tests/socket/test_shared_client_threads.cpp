// Sixteen threads share one client whose policy holds shared state (a retry budget, a circuit
// breaker, a rate limiter, a bulkhead) while the server fails now and then. Run under
// ThreadSanitizer in CI: any unsynchronised access in the policies or the transport shows there.
#include <sturdy/sturdy.hpp>

#include "demo_server.hpp"
#include "support/catch.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

TEST_CASE("threads: 16 threads share one client with a budget, a breaker, a limiter and a bulkhead", "[socket][threads]") {
    sturdy_demo::server demo;
    demo.start();
    // The first 40 requests fail: retries, breaker counts and the budget all move.
    demo.inject(sturdy_demo::fault::status(503).times(40));

    auto budget = std::make_shared<sturdy::retry_budget>(sturdy::retry_budget_options{0.5, 20, 10s});
    sturdy::retry_options retry;
    retry.budget = budget;
    retry.backoff = sturdy::backoff::constant(1ms);

    sturdy::circuit_breaker_options breaker_options;
    breaker_options.name = "demo";
    breaker_options.failure_threshold = 1000;  // counts, but stays closed: every call must reach the server
    const sturdy::circuit_breaker breaker(breaker_options);

    sturdy::rate_limiter_options limits;
    limits.requests = 100000;
    limits.tokens = 100000000;
    const sturdy::rate_limiter limiter(limits);
    const sturdy::bulkhead concurrency(8);

    sturdy::client_options options;
    options.base_url = demo.base_url();
    options.api_key = "sk-demo";
    const auto policy = sturdy::compose(sturdy::retry_policy(retry), breaker, limiter, concurrency);
    const sturdy::basic_client<sturdy::curl_transport, decltype(policy)> client(options, policy);

    constexpr int threads = 16, calls_each = 15;
    std::atomic<int> succeeded{0}, failed{0}, attempts{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            for (int i = 0; i < calls_each; ++i) {
                sturdy::chat_request req{"demo-mini", {sturdy::chat_message::user("thread " + std::to_string(t))}};
                auto reply = (i % 3 == 0) ? client.try_stream(req, [](const sturdy::chat_chunk&) {}) : client.try_chat(req);
                if (reply) {
                    ++succeeded;
                    attempts += reply->call.attempts;
                } else {
                    ++failed;
                }
            }
        });
    }
    for (auto& th : pool) th.join();

    CHECK(succeeded + failed == threads * calls_each);
    CHECK(succeeded >= threads * calls_each - 40);  // at worst, one failure per injected fault
    const auto stats = breaker.stats();
    // Every attempt that reached the server was counted by the breaker, once.
    CHECK(stats.successes + stats.failures == demo.requests());
    CHECK(stats.failures == 40);
    CHECK(stats.rejections == 0);
    CHECK(demo.max_in_flight() <= 8);
    CHECK(concurrency.in_flight() == 0);
    CHECK(budget->refused() + static_cast<std::uint64_t>(attempts - succeeded) <= 40);
}

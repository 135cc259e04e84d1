// Retry patterns, each against the local demo server's fault injection:
//   1. the official defaults riding out 503s;
//   2. a custom backoff (decorrelated jitter) with more retries;
//   3. a server's Retry-After: honoured, capped, or refused when it asks for too long;
//   4. a retry budget shared by many calls, so an outage is not multiplied by retries.
#include <sturdy/sturdy.hpp>

#include <demo_server.hpp>

#include <chrono>
#include <iostream>
#include <memory>

using namespace std::chrono_literals;

namespace {

sturdy::client_options demo_options(const sturdy_demo::server& demo) {
    sturdy::client_options o;
    o.base_url = demo.base_url();
    o.api_key = "sk-demo";
    return o;
}

// Wire the retry hook to your logging: every retry says why and how long it waits.
void log_retry(const sturdy::retry_event& e) {
    std::cout << "    retry " << e.retry << " after " << e.cause.what() << ": waiting "
              << std::chrono::duration<double, std::milli>(e.delay).count() << " ms"
              << (e.from_retry_after ? " (Retry-After)" : "") << "\n";
}

const sturdy::chat_request hello{"demo-mini", {sturdy::chat_message::user("ping")}};

}  // namespace

int main() {
    sturdy_demo::server demo;
    demo.start();
    bool as_expected = true;

    std::cout << "1. Official defaults: 2 retries, exponential backoff with jitter\n";
    {
        demo.inject({sturdy_demo::fault::status(503), sturdy_demo::fault::status(503)});
        sturdy::retry_options opts;  // the defaults are the official SDKs' contract
        opts.on_retry = log_retry;
        const sturdy::client client(demo_options(demo), sturdy::retry_policy(opts));
        auto reply = client.try_chat(hello);
        std::cout << "    " << (reply ? "ok after " + std::to_string(reply->call.attempts) + " attempts" : reply.error().what()) << "\n";
        as_expected &= reply && reply->call.attempts == 3;
    }

    std::cout << "2. Custom backoff: decorrelated jitter between 50 ms and 2 s, up to 4 retries\n";
    {
        demo.inject(std::vector<sturdy_demo::fault>(4, sturdy_demo::fault::status(500)));
        sturdy::retry_options opts;
        opts.max_retries = 4;
        opts.backoff = sturdy::backoff::decorrelated_jitter(50ms, 2s);
        opts.on_retry = log_retry;
        const sturdy::client client(demo_options(demo), sturdy::retry_policy(opts));
        auto reply = client.try_chat(hello);
        as_expected &= reply && reply->call.attempts == 5;
    }

    std::cout << "3. Retry-After: honoured up to a limit; beyond it, capped or refused\n";
    {
        demo.inject(sturdy_demo::fault::status(429).retry_after_ms(300ms));
        sturdy::retry_options honour;
        honour.on_retry = log_retry;
        auto reply = sturdy::client(demo_options(demo), sturdy::retry_policy(honour)).try_chat(hello);
        as_expected &= reply && reply->call.attempts == 2;

        // A server asking for 2 minutes: wait at most 1 s instead...
        demo.inject(sturdy_demo::fault::status(429).retry_after(120s));
        sturdy::retry_options cap;
        cap.retry_after_limit = 1s;
        cap.beyond_limit = sturdy::long_retry_after::wait_limit;
        cap.on_retry = log_retry;
        reply = sturdy::client(demo_options(demo), sturdy::retry_policy(cap)).try_chat(hello);
        as_expected &= reply && reply->call.attempts == 2;

        // ...or give up at once and let the caller (or a fallback chain) decide.
        demo.inject(sturdy_demo::fault::status(429).retry_after(120s));
        sturdy::retry_options refuse;
        refuse.beyond_limit = sturdy::long_retry_after::give_up;
        reply = sturdy::client(demo_options(demo), sturdy::retry_policy(refuse)).try_chat(hello);
        std::cout << "    refused to wait 120 s: " << (reply ? "unexpected success" : reply.error().what()) << "\n";
        as_expected &= !reply && reply.error().retry_after() == std::chrono::milliseconds(120000);
    }

    std::cout << "4. A retry budget during an outage: retries stay within 20% of the calls\n";
    {
        demo.set_model_down("demo-mini", true, 503);
        // One budget shared by every call (and every client) that talks to this backend.
        auto budget = std::make_shared<sturdy::retry_budget>(sturdy::retry_budget_options{0.2, 2, 10s});
        sturdy::retry_options opts;
        opts.budget = budget;
        opts.backoff = sturdy::backoff::constant(1ms);
        const sturdy::client client(demo_options(demo), sturdy::retry_policy(opts));
        demo.reset_stats();
        const int calls = 20;
        for (int i = 0; i < calls; ++i) (void)client.try_chat(hello);
        const auto sent = demo.requests();
        std::cout << "    " << calls << " failing calls sent " << sent << " requests (without a budget: " << calls * 3
                  << "); retries refused by the budget: " << budget->refused() << "\n";
        as_expected &= sent <= static_cast<std::size_t>(calls + 2 + calls / 5);
        demo.set_model_down("demo-mini", false);
    }

    std::cout << (as_expected ? "all patterns behaved as described\n" : "UNEXPECTED: a pattern did not behave as described\n");
    return as_expected ? 0 : 1;
}

// A circuit breaker per target inside a fallback chain. When the primary model keeps failing, its
// breaker opens: later calls skip it at once (no request, no timeout to wait out) and go straight
// to the secondary. After the break a probe finds the primary healthy again and traffic returns.
// Every state change is logged as it happens. Runs against the local demo server.
#include <sturdy/sturdy.hpp>

#include <demo_server.hpp>

#include <chrono>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

int main() {
    sturdy_demo::server demo;
    demo.start();

    // One breaker per target: a failing primary must not take the healthy secondary down with it.
    // `per_route` makes one for each target the first time a call goes there, named after it.
    // Wire the hooks to your logging; here they print, and the sequence is checked at the end.
    std::vector<std::string> changes;
    auto breaker_for = [&changes](const std::string& name) {
        sturdy::circuit_breaker_options o;
        o.name = name;
        o.failure_threshold = 2;
        o.break_duration = 300ms;
        o.on_state_change = [&changes](const sturdy::circuit_state_event& e) {
            std::cout << "  [breaker " << e.name << "] " << sturdy::to_string(e.from) << " -> " << sturdy::to_string(e.to)
                      << " (" << e.reason << ")\n";
            changes.push_back(std::string(e.name) + ":" + std::string(sturdy::to_string(e.to)));
        };
        return sturdy::circuit_breaker(o);
    };
    const auto breakers = sturdy::per_route(breaker_for);

    // Inside each target: a retry (once, quickly), then that target's breaker; one line for both.
    sturdy::retry_options quick;
    quick.max_retries = 1;
    quick.backoff = sturdy::backoff::constant(10ms);
    const auto each_target = sturdy::compose(sturdy::retry_policy(quick), breakers);
    std::vector<sturdy::fallback_target> chain;
    chain.push_back(sturdy::fallback_target("demo-large", "demo-large").with_policy(each_target));
    chain.push_back(sturdy::fallback_target("demo-mini", "demo-mini").with_policy(each_target));
    sturdy::fallback_options fo;
    fo.on_fallback = [](const sturdy::fallback_event& e) {
        std::cout << "  [fallback] " << e.from.name << " -> " << e.to.name << " after " << sturdy::to_string(e.cause.kind()) << "\n";
    };

    sturdy::client_options options;
    options.base_url = demo.base_url();
    options.api_key = "sk-demo";
    const sturdy::basic_client<sturdy::curl_transport, sturdy::fallback_policy> client(options, sturdy::fallback_policy(chain, fo));

    auto ask = [&](int n) {
        const auto before = demo.requests_for("demo-large");
        auto reply = client.try_chat({"demo-large", {sturdy::chat_message::user("call " + std::to_string(n))}});
        std::cout << "call " << n << ": " << (reply ? "answered by " + reply->call.route : std::string(reply.error().what()))
                  << ", primary requests: " << demo.requests_for("demo-large") - before << "\n";
        return reply && reply->call.route == "demo-mini" ? demo.requests_for("demo-large") - before : 99;
    };

    std::cout << "The primary goes down:\n";
    demo.set_model_down("demo-large", true, 503);
    const auto first = ask(1);   // 2 failed attempts open its breaker, the secondary answers
    const auto second = ask(2);  // the breaker is open: the primary is skipped without a request
    const auto third = ask(3);

    std::cout << "The primary recovers; after the break a probe goes through:\n";
    demo.set_model_down("demo-large", false);
    std::this_thread::sleep_for(350ms);
    auto recovered = client.try_chat({"demo-large", {sturdy::chat_message::user("call 4")}});
    std::cout << "call 4: " << (recovered ? "answered by " + recovered->call.route : std::string(recovered.error().what())) << "\n";

    const bool as_expected =
        first == 2 && second == 0 && third == 0 && recovered && recovered->call.route == "demo-large" &&
        breakers.get("demo-large").state() == sturdy::circuit_state::closed &&
        breakers.get("demo-mini").state() == sturdy::circuit_state::closed &&
        changes == std::vector<std::string>{"demo-large:open", "demo-large:half_open", "demo-large:closed"};
    std::cout << (as_expected ? "the open breaker kept calls off the failing primary until it recovered\n"
                              : "UNEXPECTED: the breaker did not behave as described\n");
    return as_expected ? 0 : 1;
}

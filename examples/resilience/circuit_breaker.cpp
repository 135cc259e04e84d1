// A circuit breaker in front of a model that goes down, against the local demo server:
//   1. three failing calls in a row open the circuit;
//   2. while it is open, calls fail at once with circuit_open and never reach the server;
//   3. after the break, one probe call goes through; the model has recovered, so the circuit closes.
// Every state change is logged as it happens, from the breaker's own hook.
#include <sturdy/circuit_breaker.hpp>
#include <sturdy/sturdy.hpp>

#include <demo_server.hpp>

#include <chrono>
#include <iostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

namespace {

double ms(std::chrono::steady_clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

}  // namespace

int main() {
    sturdy_demo::server demo;
    demo.start();
    const std::string model = "demo-mini";

    // Wire the hook to your logging and metrics: it is the one place that sees every change.
    std::vector<std::pair<sturdy::circuit_state, sturdy::circuit_state>> changes;
    sturdy::circuit_breaker_options opts;
    opts.name = model;           // one breaker per backend; the name shows up in errors and events
    opts.break_duration = 500ms; // 30 s by default; short here so the example finishes quickly
    opts.on_state_change = [&](const sturdy::circuit_state_event& e) {
        std::cout << "  [breaker " << e.name << "] " << sturdy::to_string(e.from) << " -> " << sturdy::to_string(e.to) << ": " << e.reason;
        if (e.cause) std::cout << " (last: " << e.cause->what() << ")";
        if (e.to == sturdy::circuit_state::open) std::cout << "; break of " << ms(e.break_duration) << " ms";
        std::cout << "\n";
        changes.emplace_back(e.from, e.to);
    };
    // Keep this copy: it shares its state with the one inside the client, to watch or steer it.
    const sturdy::circuit_breaker breaker(opts);

    // The breaker alone, so each call is one attempt. In production put a retry outside it,
    // sturdy::compose(sturdy::retry_policy(), breaker): each attempt then counts, and once the
    // circuit opens the remaining retries fail fast instead of hammering a backend that is down.
    sturdy::client_options client_opts;
    client_opts.base_url = demo.base_url();
    client_opts.api_key = "sk-demo";
    const sturdy::basic_client<sturdy::curl_transport, sturdy::circuit_breaker> client(client_opts, breaker);
    const sturdy::chat_request hello{model, {sturdy::chat_message::user("ping")}};

    std::cout << "1. The model goes down: every request gets 503\n";
    demo.set_model_down(model, true, 503);
    for (int i = 1; i <= 3; ++i) {
        auto reply = client.try_chat(hello);
        std::cout << "  call " << i << ": " << (reply ? "ok" : reply.error().what()) << "\n";
    }

    std::cout << "2. While the circuit is open, calls fail fast without touching the server\n";
    const auto sent_before = demo.requests_for(model);
    std::chrono::milliseconds wait{0};
    for (int i = 4; i <= 6; ++i) {
        const auto started = std::chrono::steady_clock::now();
        auto reply = client.try_chat(hello);
        const auto took = std::chrono::steady_clock::now() - started;
        if (reply) continue;
        std::cout << "  call " << i << " (" << ms(took) << " ms): " << reply.error().what() << "\n";
        // The refusal says when to come back: the time left in the break.
        if (reply.error().kind() == sturdy::error_kind::circuit_open) wait = reply.error().retry_after().value_or(wait);
    }
    const auto sent_while_open = demo.requests_for(model) - sent_before;
    std::cout << "  requests the server saw meanwhile: " << sent_while_open << "\n";

    std::cout << "3. The model recovers; after the break one probe call closes the circuit\n";
    demo.set_model_down(model, false);
    std::this_thread::sleep_for(wait);
    auto probe = client.try_chat(hello);
    std::cout << "  call 7: " << (probe ? "ok: " + probe->content() : std::string(probe.error().what())) << "\n";

    const auto s = breaker.stats();
    std::cout << "stats: " << s.successes << " successes, " << s.failures << " failures, " << s.rejections << " refused, opened " << s.times_opened
              << " time(s); now " << sturdy::to_string(breaker.state()) << "\n";

    using S = sturdy::circuit_state;
    const decltype(changes) expected{{S::closed, S::open}, {S::open, S::half_open}, {S::half_open, S::closed}};
    const bool as_expected = changes == expected && sent_while_open == 0 && s.rejections == 3 && probe.has_value();
    std::cout << (as_expected ? "the breaker behaved as described\n" : "UNEXPECTED: the breaker did not behave as described\n");
    return as_expected ? 0 : 1;
}

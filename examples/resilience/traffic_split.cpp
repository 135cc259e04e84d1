// A migration traffic split from 10% to 100%, with automatic rollback: the candidate model takes
// 10%, 25%, 50% and then all of the calls; when it starts failing, its guard takes it out and
// the traffic goes back to the stable model. Runs against a local demo server.
#include <sturdy/sturdy.hpp>

#include <demo_server.hpp>

#include <chrono>
#include <cmath>
#include <iostream>

using namespace std::chrono_literals;

int main() {
    sturdy_demo::server demo;
    demo.start();
    bool as_expected = true;

    // The guard judges the candidate over the last minute, from 10 calls on: more than 20% errors
    // or a p99 above 5 s, and its weight drops to 0.
    sturdy::rollback_guard guard;
    guard.window = 1min;
    guard.min_samples = 10;
    guard.max_error_rate = 0.2;
    guard.max_latency = 5s;

    sturdy::traffic_split_options opts;
    opts.on_rollback = [](const sturdy::rollback_event& e) {
        std::cout << "  ROLLBACK of " << e.arm.name << ": ";
        if (e.reason == sturdy::rollback_reason::error_rate) std::cout << "error rate " << std::round(e.error_rate * 1000) / 10 << "%";
        else std::cout << "p99 latency " << e.latency->count() / 1000 << " ms";
        std::cout << " over the window's " << e.samples << " calls; its weight is now 0\n";
    };
    // The first arm is the stable one: when every weight is 0, it takes the calls.
    const sturdy::traffic_split split({sturdy::split_arm("stable", "demo-mini").with_weight(100),
                                       sturdy::split_arm("candidate", "demo-large").with_weight(0).with_guard(guard)},
                                      opts);

    sturdy::client_options options;
    options.base_url = demo.base_url();
    options.api_key = "sk-demo";
    // The client holds a copy of the split; `split` steers the same weights.
    const sturdy::basic_client<sturdy::curl_transport, sturdy::traffic_split> client(options, split);
    const sturdy::chat_request request{"demo-mini", {sturdy::chat_message::user("ping")}};

    constexpr int calls_per_step = 100;
    for (const int percent : {10, 25, 50, 100}) {
        split.set_weight("candidate", percent);
        split.set_weight("stable", 100 - percent);
        int to_candidate = 0;
        for (int i = 0; i < calls_per_step; ++i) {
            auto reply = client.try_chat(request);
            as_expected &= reply.has_value();
            if (reply && reply->call.route == "candidate") ++to_candidate;
        }
        const double share = 100.0 * to_candidate / calls_per_step;
        std::cout << "step " << percent << "%: the candidate answered " << to_candidate << " of " << calls_per_step << " calls ("
                  << share << "%)\n";
        as_expected &= to_candidate > 0 && std::abs(share - percent) <= 20;  // a random draw per call: close, not exact
    }

    std::cout << "the candidate starts failing (500s)\n";
    demo.inject(sturdy_demo::fault::status(500).for_model("demo-large").times(-1));
    // The split does not fall back: a call the candidate fails, fails (put a retry or a fallback
    // chain around the split to hide these). The window still holds the ramp's successes, so the
    // error rate passes 20% only after a quarter as many failures: size the window to your traffic.
    int failed = 0;
    for (int i = 0; i < 1000 && !split.stats_for("candidate")->rolled_back; ++i)
        if (!client.try_chat(request)) ++failed;
    int to_stable = 0;
    for (int i = 0; i < 50; ++i) {
        auto reply = client.try_chat(request);
        if (reply && reply->call.route == "stable") ++to_stable;
    }
    std::cout << "after " << failed << " failed calls the guard acted; then " << to_stable
              << " of 50 calls went to the stable model (candidate weight " << *split.weight("candidate") << ")\n";
    as_expected &= split.stats_for("candidate")->rolled_back && to_stable == 50;

    std::cout << (as_expected ? "the ramp and the rollback went as described\n" : "UNEXPECTED: the split did not behave as described\n");
    return as_expected ? 0 : 1;
}

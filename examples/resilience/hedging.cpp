// Hedging against a slow tail, against the local demo server: one request in ten takes a second,
// the others answer at once. The same calls run twice:
//   1. without hedging: each slow request costs its caller the full second;
//   2. with one hedge after 150 ms: a call still waiting then gets a second attempt, which answers
//      at once; the slow attempt is cancelled.
// It prints the median and worst latency of both runs, and what hedging cost in extra requests.
#include <sturdy/hedging.hpp>
#include <sturdy/sturdy.hpp>

#include <demo_server.hpp>

#include <algorithm>
#include <chrono>
#include <iomanip>
#include <iostream>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

double ms(std::chrono::steady_clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

struct summary {
    double p50 = 0, max = 0;
    int hedges = 0;
};

// Makes `calls` calls, one in ten of them slow on the server, and measures each.
template <class Client>
summary measure(const Client& client, sturdy_demo::server& demo, const std::string& model, int calls) {
    std::vector<double> latencies;
    summary s;
    for (int i = 0; i < calls; ++i) {
        // The next request for the model is answered a second late: the slow tail. With hedging,
        // the first attempt takes it; the hedge finds the server fast again.
        if (i % 10 == 3) demo.inject(sturdy_demo::fault::latency(1s).for_model(model));
        const auto started = std::chrono::steady_clock::now();
        const auto reply = client.chat({model, {sturdy::chat_message::user("ping")}});
        latencies.push_back(ms(std::chrono::steady_clock::now() - started));
        s.hedges += reply.call.hedges;
    }
    std::sort(latencies.begin(), latencies.end());
    s.p50 = latencies[latencies.size() / 2];
    s.max = latencies.back();
    return s;
}

}  // namespace

int main() {
    sturdy_demo::server demo;
    demo.start();
    const std::string model = "demo-mini";
    sturdy::client_options options;
    options.base_url = demo.base_url();
    options.api_key = "sk-demo";
    constexpr int calls = 20;
    std::cout << std::fixed << std::setprecision(0);

    try {
        std::cout << "1. Without hedging\n";
        const sturdy::client plain(options);
        const summary before = measure(plain, demo, model, calls);
        std::cout << "  p50 " << before.p50 << " ms, max " << before.max << " ms\n";

        std::cout << "2. With a hedge after 150 ms\n";
        sturdy::hedging_options opts;
        // Fixed here. In production, opts.percentile = 0.95 hedges the calls slower than 95% of
        // recent ones, whatever the model's usual latency; the delay below serves until it is known.
        opts.delay = 150ms;
        opts.on_hedge = [](const sturdy::hedge_event& e) {
            std::cout << "  no answer from " << e.model << " after " << ms(e.waited) << " ms: hedge " << e.hedge << " started\n";
        };
        // The hedge goes to the same server here; opts.routes can send it to another endpoint or model.
        const sturdy::basic_client<sturdy::curl_transport, sturdy::hedging_policy> hedged(options, sturdy::hedging_policy(opts));
        const auto sent_before = demo.requests_for(model);
        const summary after = measure(hedged, demo, model, calls);
        const auto sent = demo.requests_for(model) - sent_before;
        std::cout << "  p50 " << after.p50 << " ms, max " << after.max << " ms\n";
        std::cout << "  " << after.hedges << " hedge(s): " << sent << " requests for " << calls << " calls\n";

        // Hedging pays off when the worst call gets much faster for a few extra requests.
        if (after.hedges == 0 || after.max * 2 > before.max) {
            std::cerr << "hedging did not cut the tail\n";
            return 1;
        }
    } catch (const sturdy::error& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
}

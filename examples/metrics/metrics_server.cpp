// Metrics per route and model, served at /metrics for Prometheus, against the local demo server:
//   1. a client whose events feed a sturdy::metrics (and a log sink of its own, through a fan-out);
//   2. calls of every kind: plain, streamed, a 429 retried, a model that is down behind a breaker;
//   3. GET /metrics from a small cpp-httplib server, scraped here once over HTTP and printed.
// It exits non-zero if the scraped numbers are not the calls it made. With --serve it keeps
// serving until Ctrl-C, for a Prometheus to scrape: metrics_server --serve [--port 9464].
#include <sturdy/metrics.hpp>
#include <sturdy/sturdy.hpp>

#include <demo_server.hpp>

#include "metrics_endpoint.hpp"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

std::atomic<bool> interrupted{false};

/// Your own sink beside the metrics: here, one line per failed attempt.
struct failure_log : sturdy::event_sink {
    void on_attempt(const sturdy::event_source& from, const sturdy::attempt_record& a) override {
        if (a.failure)
            std::cout << "  [attempt] " << a.model << " @" << (from.route.empty() ? "default" : from.route) << ": "
                      << a.failure->what() << "\n";
    }
};

}  // namespace

int main(int argc, char** argv) {
    bool serve = false;
    int port = 0;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--serve")
            serve = true;
        else if (arg == "--port" && i + 1 < argc)
            port = std::atoi(argv[++i]);
        else {
            std::cerr << "usage: " << argv[0] << " [--serve] [--port N]\n";
            return 2;
        }
    }

    sturdy_demo::server demo;
    demo.start();

    // 1. The metrics sink, and a log sink of our own: the client takes one sink, a fan-out of both.
    auto stats = std::make_shared<sturdy::metrics>();
    sturdy::client_options options;
    options.base_url = demo.base_url();
    options.api_key = "sk-demo";
    options.events = std::make_shared<sturdy::event_fanout>(
        std::vector<std::shared_ptr<sturdy::event_sink>>{stats, std::make_shared<failure_log>()});
    // The demo models' prices, so the metrics have a cost to show (US dollars per million tokens).
    auto prices = std::make_shared<sturdy::price_table>();
    prices->set("demo-mini", {0.15, std::nullopt, std::nullopt, 0.6});
    options.prices = prices;

    sturdy::retry_options retry;
    retry.max_retries = 1;
    retry.backoff = sturdy::backoff::constant(10ms);
    sturdy::circuit_breaker_options breaker;
    breaker.name = "demo-large";
    breaker.failure_threshold = 2;
    using policy = sturdy::pipeline<sturdy::retry_policy, sturdy::circuit_breaker>;
    const sturdy::basic_client<sturdy::curl_transport, policy> client(
        options, sturdy::compose(sturdy::retry_policy(retry), sturdy::circuit_breaker(breaker)));

    // 2. Calls of every kind.
    std::cout << "1. Five chats, two streams and a 429 retried, on demo-mini\n";
    const sturdy::chat_request hello{"demo-mini", {sturdy::chat_message::user("Tell me about metrics")}};
    for (int i = 0; i < 5; ++i) client.chat(hello);
    sturdy::chat_request streamed = hello;
    streamed.stream_options = sturdy::chat_stream_options{/*include_usage=*/true};
    for (int i = 0; i < 2; ++i) client.stream(streamed, [](const sturdy::chat_chunk&) {});
    demo.inject(sturdy_demo::fault::status(429).for_model("demo-mini"));
    client.chat(hello);

    std::cout << "2. demo-large is down: its breaker opens after two failed attempts\n";
    demo.set_model_down("demo-large", true, 503);
    const sturdy::chat_request large{"demo-large", {sturdy::chat_message::user("hi")}};
    for (int i = 0; i < 2; ++i) {
        auto r = client.try_chat(large);
        std::cout << "  call " << i + 1 << ": " << (r ? "ok" : r.error().what()) << "\n";
    }

    // 3. Serve and scrape /metrics.
    metrics_endpoint endpoint(stats, port);
    std::cout << "3. GET " << endpoint.url() << "\n";
    httplib::Client scraper("127.0.0.1", endpoint.port());
    const auto got = scraper.Get("/metrics");
    if (!got || got->status != 200) {
        std::cerr << "FAILED: could not scrape " << endpoint.url() << "\n";
        return 1;
    }
    const std::string& page = got->body;
    std::cout << "  Content-Type: " << got->get_header_value("Content-Type") << "\n";
    std::istringstream lines(page);
    for (std::string line; std::getline(lines, line);)
        if (line.rfind("sturdy_", 0) == 0 && line.find("demo") != std::string::npos &&
            line.find("quantile=\"0.95") == std::string::npos && line.find("quantile=\"0.99") == std::string::npos)
            std::cout << "  " << line << "\n";

    // The numbers are the calls made: 8 on demo-mini (9 attempts, one a 429), 2 on demo-large.
    const std::string mini = R"({route="",model="demo-mini")";
    const std::string big = R"({route="",model="demo-large")";
    const bool ok = prometheus_sample(page, "sturdy_requests_total" + mini + "}") == 8 &&
                    prometheus_sample(page, "sturdy_attempts_total" + mini + "}") == 9 &&
                    prometheus_sample(page, "sturdy_http_responses_total" + mini + ",status=\"429\"}") == 1 &&
                    prometheus_sample(page, "sturdy_time_to_first_token_seconds_count" + mini + "}") == 2 &&
                    prometheus_sample(page, "sturdy_cost_usd_total" + mini + "}") > 0 &&
                    prometheus_sample(page, "sturdy_request_failures_total" + big + ",kind=\"circuit_open\"}") >= 1 &&
                    prometheus_sample(page, "sturdy_circuit_state{policy=\"demo-large\"}") == 2;
    if (!ok) {
        std::cerr << "FAILED: /metrics does not show the calls made:\n" << page;
        return 1;
    }
    std::cout << "OK: /metrics counts every call, attempt, error, token and the open breaker\n";

    if (serve) {
        std::signal(SIGINT, [](int) { interrupted = true; });
        std::signal(SIGTERM, [](int) { interrupted = true; });
        std::cout << "serving " << endpoint.url() << " until Ctrl-C\n" << std::flush;
        while (!interrupted) std::this_thread::sleep_for(200ms);
    }
    return 0;
}

#pragma once
// A /metrics endpoint for a sturdy::metrics over cpp-httplib: what Prometheus scrapes. sturdy
// itself depends on no HTTP server; this is the few lines a program adds to serve its metrics.

#include <sturdy/metrics.hpp>

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

/// The content type of the Prometheus text exposition format 0.0.4.
inline constexpr const char* prometheus_content_type = "text/plain; version=0.0.4; charset=utf-8";

/// The value of the sample `line_start` (its name and labels, exactly) in a Prometheus page; -1
/// when the page has none. What a program checking its own page, or a test scraping it, reads back.
inline double prometheus_sample(const std::string& page, const std::string& line_start) {
    std::istringstream lines(page);
    for (std::string line; std::getline(lines, line);)
        if (line.rfind(line_start + " ", 0) == 0) return std::stod(line.substr(line_start.size() + 1));
    return -1;
}

/// Adds `GET /metrics` to `server`, answering with `stats` in the Prometheus text format.
inline void serve_metrics(httplib::Server& server, std::shared_ptr<const sturdy::metrics> stats) {
    server.Get("/metrics", [stats = std::move(stats)](const httplib::Request&, httplib::Response& res) {
        res.set_content(stats->to_prometheus(), prometheus_content_type);
    });
}

/// An HTTP server on its own thread that serves only `GET /metrics`, from construction until it
/// is destroyed.
class metrics_endpoint {
public:
    /// Listens on `host`:`port` (0: a free port, see `port()`); throws std::runtime_error if it
    /// cannot bind.
    explicit metrics_endpoint(std::shared_ptr<const sturdy::metrics> stats, int port = 0,
                              const std::string& host = "127.0.0.1") {
        serve_metrics(server_, std::move(stats));
        port_ = port == 0 ? server_.bind_to_any_port(host) : (server_.bind_to_port(host, port) ? port : -1);
        if (port_ <= 0) throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port));
        // A scraper that keeps its connection open must not hold up the destructor for long.
        server_.set_keep_alive_timeout(1);
        thread_ = std::thread([this] {
            server_.listen_after_bind();
            finished_ = true;
        });
        // The socket listens already; but httplib's stop() works only once the accept loop runs.
        while (!server_.is_running() && !finished_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ~metrics_endpoint() {
        server_.stop();
        if (thread_.joinable()) thread_.join();
    }
    metrics_endpoint(const metrics_endpoint&) = delete;
    metrics_endpoint& operator=(const metrics_endpoint&) = delete;

    int port() const { return port_; }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/metrics"; }

private:
    httplib::Server server_;
    int port_ = 0;
    std::atomic<bool> finished_{false};
    std::thread thread_;
};

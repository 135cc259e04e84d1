// Metrics per route and model from the client's events: what each event adds, percentiles within
// 1 % of the exact nearest-rank value, the JSON and Prometheus exports, the listener, many threads
// at once, and the fan-out sink that lets a user's own sink hear the same events.
#include <sturdy/metrics.hpp>
#include <sturdy/sturdy.hpp>

#include "support/catch.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using std::chrono::microseconds;

namespace {

const sturdy::event_source client_source{"client", ""};

sturdy::attempt_record attempt(std::string route, std::string model, int status, microseconds latency) {
    sturdy::attempt_record a;
    a.number = 1;
    a.route = std::move(route);
    a.model = std::move(model);
    a.status = status;
    a.latency = latency;
    return a;
}

sturdy::token_usage usage(std::int64_t prompt, std::int64_t completion, std::int64_t cached = 0,
                          std::int64_t reasoning = 0) {
    sturdy::token_usage u;
    u.prompt_tokens = prompt;
    u.completion_tokens = completion;
    u.total_tokens = prompt + completion;
    if (cached) u.extra["prompt_tokens_details"]["cached_tokens"] = cached;
    if (reasoning) u.extra["completion_tokens_details"]["reasoning_tokens"] = reasoning;
    return u;
}

// One attempt, start and end, as the client reports it.
void run_attempt(sturdy::event_sink& m, const sturdy::attempt_record& a) {
    m.on_attempt_start({"client", a.route}, sturdy::attempt_start{a.number, a.route, a.model});
    m.on_attempt({"client", a.route}, a);
}

// The nearest-rank percentile of `values`: the ceil(p * n)-th smallest.
double exact_percentile(std::vector<double> values, double p) {
    std::sort(values.begin(), values.end());
    return values[sturdy::detail::latency_histogram::nearest_rank(p, values.size()) - 1];
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

struct recorded_update {
    std::string name, route, model, label, label_value;
    sturdy::metric_type type;
    double value;
};

class recording_listener : public sturdy::metrics_listener {
public:
    void on_update(const sturdy::metric_update& u) override {
        std::lock_guard<std::mutex> lock(mutex_);
        updates_.push_back({std::string(u.name), std::string(u.route), std::string(u.model), std::string(u.label),
                            std::string(u.label_value), u.type, u.value});
    }
    std::vector<recorded_update> updates() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return updates_;
    }

private:
    mutable std::mutex mutex_;
    std::vector<recorded_update> updates_;
};

}  // namespace

TEST_CASE("metrics: attempts and calls are counted per route and model", "[metrics]") {
    sturdy::metrics m;
    // The client's own endpoint: a 429, then a 200.
    auto limited = attempt("", "gpt-4o-mini", 429, 30ms);
    limited.failure = sturdy::error(sturdy::error_kind::rate_limit, "slow down");
    run_attempt(m, limited);
    run_attempt(m, attempt("", "gpt-4o-mini", 200, 120ms));
    sturdy::call_info ok;
    ok.model = "gpt-4o-mini";
    ok.latency = 1200ms;
    ok.usage = usage(100, 40, 60, 10);
    ok.cost_usd = 0.25;
    m.on_call(client_source, ok);
    // A route "backup" with its own model: a connection error, and a failed call without a price.
    auto refused = attempt("backup", "deepseek-chat", 0, 5ms);
    refused.failure = sturdy::error(sturdy::error_kind::connection, "refused");
    run_attempt(m, refused);
    sturdy::call_info failed;
    failed.route = "backup";
    failed.model = "deepseek-chat";
    failed.failed = true;
    failed.errors.push_back(*refused.failure);
    failed.usage = usage(7, 0);
    m.on_call({"client", "backup"}, failed);
    // An attempt still under way.
    m.on_attempt_start({"client", "backup"}, sturdy::attempt_start{2, "backup", "deepseek-chat"});

    const auto snap = m.snapshot();
    REQUIRE(snap.series.size() == 2);
    CHECK(snap.series[0].route.empty());  // ordered by route, then model
    const auto* own = snap.find("", "gpt-4o-mini");
    REQUIRE(own != nullptr);
    CHECK(own->requests == 1);
    CHECK(own->request_failures.empty());
    CHECK(own->attempts == 2);
    CHECK(own->attempt_errors == std::map<std::string, std::uint64_t>{{"rate_limit", 1}});
    CHECK(own->http_responses == std::map<std::string, std::uint64_t>{{"200", 1}, {"429", 1}});
    CHECK(own->attempts_in_flight == 0);
    CHECK(own->attempt_latency.count == 2);
    CHECK(own->attempt_latency.sum == Approx(0.150));
    CHECK(own->request_latency.p50 == Approx(1.2).epsilon(0.01));
    CHECK(own->prompt_tokens == 100);
    CHECK(own->cached_tokens == 60);
    CHECK(own->completion_tokens == 40);
    CHECK(own->reasoning_tokens == 10);
    CHECK(own->cost_usd == Approx(0.25));
    CHECK(own->unpriced_requests == 0);
    CHECK(own->time_to_first_token.count == 0);
    CHECK_FALSE(own->time_to_first_token.p50.has_value());

    const auto* backup = snap.find("backup", "deepseek-chat");
    REQUIRE(backup != nullptr);
    CHECK(backup->requests == 1);
    CHECK(backup->request_failures == std::map<std::string, std::uint64_t>{{"connection", 1}});
    CHECK(backup->attempt_errors == std::map<std::string, std::uint64_t>{{"connection", 1}});
    CHECK(backup->http_responses.empty());  // no reply came: no status
    CHECK(backup->attempts_in_flight == 1);
    CHECK(backup->unpriced_requests == 1);
    CHECK(backup->cost_usd == 0);
    CHECK(snap.find("backup", "gpt-4o-mini") == nullptr);
}

TEST_CASE("metrics: p50, p95 and p99 within 1% above the exact nearest-rank value", "[metrics]") {
    sturdy::metrics m;
    std::mt19937_64 random(7);
    // Log-uniform latencies from 50 us to 100 s, and rates from 1 to 1000 tokens/s.
    std::uniform_real_distribution<double> exponent(std::log(50.0), std::log(1e8));
    std::uniform_real_distribution<double> rate_exponent(0, std::log(1000.0));
    std::vector<double> latencies, rates;
    for (int i = 0; i < 5000; ++i) {
        const auto us = static_cast<std::int64_t>(std::exp(exponent(random)));
        latencies.push_back(static_cast<double>(us) * 1e-6);
        run_attempt(m, attempt("", "m", 200, microseconds(us)));
        // One unstreamed call a second long whose completion tokens give the rate.
        const auto tokens = static_cast<std::int64_t>(std::exp(rate_exponent(random))) + 1;
        rates.push_back(static_cast<double>(tokens));
        sturdy::call_info info;
        info.model = "m";
        info.usage = usage(1, tokens);
        info.attempt_log.push_back(attempt("", "m", 200, 1s));
        m.on_call(client_source, info);
    }
    const auto snap = m.snapshot();
    const auto& s = snap.series.at(0);
    for (const auto& [summary, exact] :
         {std::pair(&s.attempt_latency, &latencies), std::pair(&s.tokens_per_second, &rates)}) {
        REQUIRE(summary->count == 5000);
        const std::pair<double, std::optional<double>> quantiles[] = {
            {0.5, summary->p50}, {0.95, summary->p95}, {0.99, summary->p99}};
        for (const auto& [p, got] : quantiles) {
            INFO("p = " << p);
            const double want = exact_percentile(*exact, p);
            REQUIRE(got.has_value());
            CHECK(*got >= want * (1 - 1e-9));
            CHECK(*got <= want * 1.01);
        }
    }
    double total = 0;
    for (double l : latencies) total += l;
    CHECK(s.attempt_latency.sum == Approx(total));
}

TEST_CASE("metrics: a stream's chunks give inter-token latency, its tokens a rate", "[metrics]") {
    sturdy::metrics m;
    // 11 content chunks over 500 ms after the first: a 50 ms gap; 100 tokens in 500 ms: 200/s.
    auto streamed = attempt("", "m", 200, 300ms);
    streamed.time_to_first_token = 300ms;
    streamed.content_chunks = 11;
    streamed.generation_time = 500ms;
    run_attempt(m, streamed);
    sturdy::call_info info;
    info.model = "m";
    info.usage = usage(10, 100);
    info.attempt_log.push_back(streamed);
    m.on_call(client_source, info);
    // A stream of one chunk has no gap and no rate; a failed call has no rate either.
    auto single = attempt("", "m", 200, 80ms);
    single.time_to_first_token = 80ms;
    single.content_chunks = 1;
    single.generation_time = 0ms;
    run_attempt(m, single);
    sturdy::call_info one = info;
    one.attempt_log = {single};
    m.on_call(client_source, one);
    sturdy::call_info failed = info;
    failed.failed = true;
    failed.errors.push_back(sturdy::error(sturdy::error_kind::stream_truncated, "cut"));
    m.on_call(client_source, failed);

    const auto s = m.snapshot().series.at(0);
    CHECK(s.time_to_first_token.count == 2);
    CHECK(s.inter_token_latency.count == 1);
    CHECK(*s.inter_token_latency.p50 == Approx(0.050).epsilon(0.01));
    CHECK(s.tokens_per_second.count == 1);
    CHECK(*s.tokens_per_second.p99 == Approx(200).epsilon(0.01));
    CHECK(s.request_failures == std::map<std::string, std::uint64_t>{{"stream_truncated", 1}});
}

TEST_CASE("metrics: the Prometheus text format, labels escaped", "[metrics]") {
    sturdy::metrics m;
    // A route name with each character the format escapes.
    const std::string route = "a\\b\"c\nd";
    auto failed = attempt(route, "m", 503, 2ms);
    failed.failure = sturdy::error(sturdy::error_kind::internal_server, "down");
    run_attempt(m, failed);
    sturdy::call_info info;
    info.route = route;
    info.model = "m";
    info.failed = true;
    info.errors.push_back(*failed.failure);
    info.latency = 2ms;
    m.on_call({"client", route}, info);
    sturdy::circuit_state_event change{};
    change.name = "openai";
    change.from = sturdy::circuit_state::closed;
    change.to = sturdy::circuit_state::open;
    m.on_circuit_state({"openai", route}, change);

    const std::string text = m.to_prometheus();
    const std::string labels = R"({route="a\\b\"c\nd",model="m")";
    CHECK(contains(text, "# HELP sturdy_requests_total "));
    CHECK(contains(text, "# TYPE sturdy_requests_total counter\n"));
    CHECK(contains(text, "sturdy_requests_total" + labels + "} 1\n"));
    CHECK(contains(text, "sturdy_request_failures_total" + labels + ",kind=\"internal_server\"} 1\n"));
    CHECK(contains(text, "sturdy_attempt_errors_total" + labels + ",kind=\"internal_server\"} 1\n"));
    CHECK(contains(text, "sturdy_http_responses_total" + labels + ",status=\"503\"} 1\n"));
    CHECK(contains(text, "# TYPE sturdy_attempt_latency_seconds summary\n"));
    CHECK(contains(text, "sturdy_attempt_latency_seconds" + labels + ",quantile=\"0.99\"} 0.002\n"));
    CHECK(contains(text, "sturdy_attempt_latency_seconds_sum" + labels + "} 0.002\n"));
    CHECK(contains(text, "sturdy_attempt_latency_seconds_count" + labels + "} 1\n"));
    // A distribution with no observation: NaN quantiles, zero count.
    CHECK(contains(text, "sturdy_time_to_first_token_seconds" + labels + ",quantile=\"0.5\"} NaN\n"));
    CHECK(contains(text, "sturdy_time_to_first_token_seconds_count" + labels + "} 0\n"));
    CHECK(contains(text, "# TYPE sturdy_attempts_in_flight gauge\n"));
    CHECK(contains(text, "sturdy_attempts_in_flight" + labels + "} 0\n"));
    CHECK(contains(text, "sturdy_circuit_state{policy=\"openai\"} 2\n"));
    // Every line is a comment or a sample named sturdy_*, and no raw line feed hides in a label.
    std::size_t start = 0;
    while (start < text.size()) {
        const auto end = text.find('\n', start);
        REQUIRE(end != std::string::npos);
        const std::string line = text.substr(start, end - start);
        INFO(line);
        CHECK((line.rfind("# HELP sturdy_", 0) == 0 || line.rfind("# TYPE sturdy_", 0) == 0 ||
               line.rfind("sturdy_", 0) == 0));
        start = end + 1;
    }
}

TEST_CASE("metrics: the JSON snapshot names what the Prometheus text does", "[metrics]") {
    sturdy::metrics m;
    run_attempt(m, attempt("", "m", 200, 10ms));
    sturdy::call_info info;
    info.model = "m";
    info.usage = usage(3, 4);
    info.cost_usd = 0.5;
    m.on_call(client_source, info);
    sturdy::circuit_state_event change{};
    change.name = "b";
    change.to = sturdy::circuit_state::half_open;
    m.on_circuit_state(client_source, change);

    const auto j = m.to_json();
    REQUIRE(j.at("series").size() == 1);
    const auto& s = j.at("series").at(0);
    CHECK(s.at("route") == "");
    CHECK(s.at("model") == "m");
    CHECK(s.at("requests") == 1);
    CHECK(s.at("attempts") == 1);
    CHECK(s.at("http_responses").at("200") == 1);
    CHECK(s.at("prompt_tokens") == 3);
    CHECK(s.at("completion_tokens") == 4);
    CHECK(s.at("cost_usd") == 0.5);
    CHECK(s.at("attempts_in_flight") == 0);
    CHECK(s.at("attempt_latency_seconds").at("count") == 1);
    CHECK(s.at("attempt_latency_seconds").at("p95").get<double>() == Approx(0.010));
    CHECK(s.at("time_to_first_token_seconds").at("p50").is_null());
    CHECK(s.at("tokens_per_second").at("count") == 0);  // no attempt answered in the report
    CHECK(j.at("circuits").at("b") == "half_open");
}

TEST_CASE("metrics: a listener hears each update, with its labels, outside the locks", "[metrics]") {
    auto listener = std::make_shared<recording_listener>();
    sturdy::metrics m(listener);
    auto failed = attempt("r", "m", 429, 20ms);
    failed.failure = sturdy::error(sturdy::error_kind::rate_limit, "slow down");
    run_attempt(m, failed);
    sturdy::call_info info;
    info.route = "r";
    info.model = "m";
    info.usage = usage(5, 6);
    info.cost_usd = 0.01;
    m.on_call({"client", "r"}, info);

    const auto updates = listener->updates();
    auto find = [&](const std::string& name, const std::string& label_value = {}) -> const recorded_update* {
        for (const auto& u : updates)
            if (u.name == name && u.label_value == label_value) return &u;
        return nullptr;
    };
    REQUIRE(updates.size() >= 8);
    const auto* start = find("sturdy_attempts_in_flight");
    REQUIRE(start != nullptr);
    CHECK(start->type == sturdy::metric_type::gauge);
    CHECK(start->value == 1);  // the first update: the attempt went out
    CHECK(updates.front().name == "sturdy_attempts_in_flight");
    const auto* latency = find("sturdy_attempt_latency_seconds");
    REQUIRE(latency != nullptr);
    CHECK(latency->type == sturdy::metric_type::summary);
    CHECK(latency->value == Approx(0.020));
    CHECK(latency->route == "r");
    CHECK(latency->model == "m");
    const auto* error = find("sturdy_attempt_errors_total", "rate_limit");
    REQUIRE(error != nullptr);
    CHECK(error->label == "kind");
    CHECK(error->value == 1);
    const auto* status = find("sturdy_http_responses_total", "429");
    REQUIRE(status != nullptr);
    CHECK(status->label == "status");
    const auto* cost = find("sturdy_cost_usd_total");
    REQUIRE(cost != nullptr);
    CHECK(cost->value == Approx(0.01));
    const auto* completion = find("sturdy_completion_tokens_total");
    REQUIRE(completion != nullptr);
    CHECK(completion->value == 6);

    // A listener may read the metrics back: no lock is held while it runs.
    struct reader : sturdy::metrics_listener {
        sturdy::metrics* owner = nullptr;
        std::uint64_t seen = 0;
        void on_update(const sturdy::metric_update&) override { seen = owner->snapshot().series.size(); }
    };
    auto r = std::make_shared<reader>();
    sturdy::metrics reentrant(r);
    r->owner = &reentrant;
    run_attempt(reentrant, attempt("", "m", 200, 1ms));
    CHECK(r->seen == 1);
}

TEST_CASE("metrics: events from many threads at once are all counted", "[metrics]") {
    auto listener = std::make_shared<recording_listener>();
    sturdy::metrics m(listener);
    constexpr int threads = 8, per_thread = 500;
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&m, t] {
            const std::string route = t % 2 ? "odd" : "even";
            for (int i = 0; i < per_thread; ++i) {
                run_attempt(m, attempt(route, "m", 200, microseconds(100 + i)));
                sturdy::call_info info;
                info.route = route;
                info.model = "m";
                info.usage = usage(1, 1);
                m.on_call({"client", route}, info);
                if (i % 50 == 0) (void)m.to_prometheus();  // readers meanwhile
            }
        });
    }
    for (auto& th : pool) th.join();
    const auto snap = m.snapshot();
    REQUIRE(snap.series.size() == 2);
    for (const auto& s : snap.series) {
        CHECK(s.attempts == threads / 2 * per_thread);
        CHECK(s.requests == threads / 2 * per_thread);
        CHECK(s.attempt_latency.count == threads / 2 * per_thread);
        CHECK(s.prompt_tokens == threads / 2 * per_thread);
        CHECK(s.attempts_in_flight == 0);
    }
    std::size_t attempts_heard = 0;
    for (const auto& u : listener->updates()) attempts_heard += u.name == "sturdy_attempts_total";
    CHECK(attempts_heard == threads * per_thread);
}

TEST_CASE("metrics: event_fanout gives every event to each sink, in order", "[metrics][events]") {
    struct names : sturdy::event_sink {
        std::vector<std::string>* log;
        std::string me;
        names(std::vector<std::string>* l, std::string n) : log(l), me(std::move(n)) {}
        void on_attempt_start(const sturdy::event_source&, const sturdy::attempt_start&) override {
            log->push_back(me + " start");
        }
        void on_attempt(const sturdy::event_source&, const sturdy::attempt_record&) override {
            log->push_back(me + " attempt");
        }
        void on_call(const sturdy::event_source&, const sturdy::call_info&) override { log->push_back(me + " call"); }
    };
    std::vector<std::string> log;
    auto stats = std::make_shared<sturdy::metrics>();
    sturdy::event_fanout both({stats, std::make_shared<names>(&log, "a"), nullptr, std::make_shared<names>(&log, "b")});
    run_attempt(both, attempt("", "m", 200, 1ms));
    sturdy::call_info info;
    info.model = "m";
    both.on_call(client_source, info);
    CHECK(log == std::vector<std::string>{"a start", "b start", "a attempt", "b attempt", "a call", "b call"});
    CHECK(stats->snapshot().series.at(0).requests == 1);
}

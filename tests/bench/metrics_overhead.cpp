// What sturdy::metrics costs per event, without any I/O: an attempt's start and end, a call's end,
// from one thread and from several at once (on one series, and each thread on its own route).
// Google Benchmark; run: build/tests/bench/metrics_overhead
#include <sturdy/metrics.hpp>
#include <sturdy/sturdy.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <string>

namespace {

sturdy::metrics shared_metrics;

sturdy::attempt_record streamed_attempt(std::string route) {
    sturdy::attempt_record a;
    a.number = 1;
    a.route = std::move(route);
    a.model = "gpt-4o-mini";
    a.status = 200;
    a.latency = std::chrono::milliseconds(420);
    a.time_to_first_token = a.latency;
    a.content_chunks = 120;
    a.generation_time = std::chrono::milliseconds(2400);
    return a;
}

sturdy::call_info call_report(const sturdy::attempt_record& a) {
    sturdy::call_info info;
    info.route = a.route;
    info.model = a.model;
    info.attempts = 1;
    info.latency = std::chrono::milliseconds(2900);
    info.usage = sturdy::token_usage{};
    info.usage->prompt_tokens = 1200;
    info.usage->completion_tokens = 118;
    info.cost_usd = 0.0003;
    info.attempt_log.push_back(a);
    return info;
}

// One attempt: its start and its end (two events).
void attempt_events(benchmark::State& state, bool own_route) {
    const auto a = streamed_attempt(own_route ? "route-" + std::to_string(state.thread_index()) : "");
    const sturdy::event_source from{"client", a.route};
    const sturdy::attempt_start start{1, a.route, a.model};
    for (auto _ : state) {
        shared_metrics.on_attempt_start(from, start);
        shared_metrics.on_attempt(from, a);
    }
    state.SetItemsProcessed(state.iterations() * 2);
}

void call_event(benchmark::State& state) {
    const auto info = call_report(streamed_attempt(""));
    const sturdy::event_source from{"client", ""};
    for (auto _ : state) shared_metrics.on_call(from, info);
    state.SetItemsProcessed(state.iterations());
}

void attempt_one_series(benchmark::State& state) { attempt_events(state, false); }
void attempt_own_series(benchmark::State& state) { attempt_events(state, true); }

}  // namespace

BENCHMARK(attempt_one_series)->Threads(1)->Threads(4);
BENCHMARK(attempt_own_series)->Threads(4);
BENCHMARK(call_event);

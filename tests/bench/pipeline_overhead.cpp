// What the resilience policies cost on the success path, per call, without any I/O: the attempt
// answers at once, so everything measured is the policies' own work (clock reads, locks,
// bookkeeping). Google Benchmark; run: build/tests/bench/pipeline_overhead
// Goal (issue 3): retry ∘ breaker ∘ limiter ∘ fallback at most 1 µs per call over the bare attempt.
#include <sturdy/sturdy.hpp>

#include <benchmark/benchmark.h>

#include <memory>

namespace {

struct reply {
    int value = 0;
};

sturdy::result<reply> answer(sturdy::call_context&) { return reply{42}; }

// Each iteration is one call, as the client makes it: a fresh call state and context.
template <class Policy>
void run_calls(benchmark::State& state, const Policy& policy) {
    for (auto _ : state) {
        sturdy::call_state call;
        sturdy::call_context ctx(sturdy::operation::chat, "model", call);
        ctx.estimated_prompt_tokens = 20;
        auto outcome = policy.execute(ctx, answer);
        benchmark::DoNotOptimize(outcome);
    }
}

sturdy::retry_policy retry_with_budget() {
    sturdy::retry_options o;
    o.budget = std::make_shared<sturdy::retry_budget>();
    return sturdy::retry_policy(o);
}

sturdy::rate_limiter roomy_limiter() {
    // Limits far above the benchmark's rate: the success path without waiting.
    sturdy::rate_limiter_options o;
    o.requests = 1'000'000'000;
    o.tokens = 1'000'000'000'000;
    return sturdy::rate_limiter(o);
}

sturdy::fallback_policy two_targets() {
    return sturdy::fallback_policy({sturdy::fallback_target("primary", "model"), sturdy::fallback_target("secondary", "model-b")});
}

void bare_attempt(benchmark::State& state) { run_calls(state, sturdy::no_policy{}); }
void retry(benchmark::State& state) { run_calls(state, retry_with_budget()); }
void breaker(benchmark::State& state) { run_calls(state, sturdy::circuit_breaker()); }
void limiter(benchmark::State& state) { run_calls(state, roomy_limiter()); }
void fallback(benchmark::State& state) { run_calls(state, two_targets()); }

// The pipeline: retry (with a budget) around a breaker around a limiter around a fallback chain.
void composed(benchmark::State& state) {
    run_calls(state, sturdy::compose(retry_with_budget(), sturdy::circuit_breaker(), roomy_limiter(), two_targets()));
}

// The same pipeline chosen at run time.
void composed_dynamic(benchmark::State& state) {
    run_calls(state, sturdy::dynamic_pipeline{retry_with_budget(), sturdy::circuit_breaker(), roomy_limiter(), two_targets()});
}

// The same pipeline, shared by every benchmark thread (contention on the shared state).
void composed_shared(benchmark::State& state) {
    static const auto shared = sturdy::compose(retry_with_budget(), sturdy::circuit_breaker(), roomy_limiter(), two_targets());
    run_calls(state, shared);
}

}  // namespace

BENCHMARK(bare_attempt);
BENCHMARK(retry);
BENCHMARK(breaker);
BENCHMARK(limiter);
BENCHMARK(fallback);
BENCHMARK(composed);
BENCHMARK(composed_dynamic);
BENCHMARK(composed_shared)->Threads(1)->Threads(2)->Threads(4);

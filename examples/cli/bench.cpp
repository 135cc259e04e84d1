#include "bench.hpp"

#include "bench_stats.hpp"
#include "client_setup.hpp"

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <iomanip>
#include <iostream>
#include <locale>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace sturdy_cli {

namespace {

using namespace std::chrono_literals;
using ordered_json = nlohmann::ordered_json;

/// What one measured call gave.
struct call_outcome {
    /// The error's kind ("rate_limit", "timeout"...), or "unexpected" for an exception that is not
    /// a sturdy::error; empty for a call that succeeded. Always a string literal.
    std::string_view failure;
    std::chrono::microseconds latency{0};
    std::optional<std::chrono::microseconds> ttft;  ///< streams: the time to first token
    std::optional<sturdy::token_usage> usage;
    std::optional<double> cost_usd;

    bool succeeded() const { return failure.empty(); }
};

/// One call, timed by the client (`call_info`): its retries and waits are in it, the tool's own
/// work is not. A failure is an outcome, never an exception: the other calls go on.
call_outcome measure(const cli_client& client, const sturdy::chat_request& request,
                     const sturdy::request_options& limits, const arguments& args) {
    call_outcome outcome;
    try {
        const auto ignore_chunk = [](const sturdy::chat_chunk&) {};
        const auto reply =
            args.stream ? client.try_stream(request, ignore_chunk, limits) : client.try_chat(request, limits);
        if (!reply) {
            outcome.failure = sturdy::to_string(reply.error().kind());
            return outcome;
        }
        outcome.latency = reply->call.latency;
        outcome.ttft = reply->call.time_to_first_token;
        outcome.usage = reply->usage;
        outcome.cost_usd = cost_of(args, reply->call, reply->usage);
    } catch (const std::exception&) {
        outcome.failure = "unexpected";
    }
    return outcome;
}

/// Redraws a bar on stderr until `finished` reaches `total`, then erases it.
void show_progress(const std::atomic<std::size_t>& finished, std::size_t total, const std::string& label) {
    constexpr std::size_t width = 30;
    std::size_t drawn = 0;  // the length of the line drawn, to erase it
    for (;;) {
        const std::size_t done = finished.load();
        const std::size_t filled = width * done / total;
        std::ostringstream bar;
        bar << sturdy::printable(label) << " [" << std::string(filled, '#') << std::string(width - filled, '.') << "] "
            << done << '/' << total;
        drawn = std::max(drawn, bar.str().size());
        std::cerr << '\r' << bar.str() << std::flush;
        if (done == total) break;
        std::this_thread::sleep_for(100ms);
    }
    std::cerr << '\r' << std::string(drawn, ' ') << '\r' << std::flush;
}

/// Makes `total` calls (`call()`) on `concurrency` threads, each taking the next call's number
/// until none is left; the outcomes are in that order. With a `progress_label`, a progress bar
/// shows on stderr meanwhile.
template <class Call>
std::vector<call_outcome> run_concurrently(std::size_t total, std::size_t concurrency,
                                           const std::optional<std::string>& progress_label, const Call& call) {
    std::vector<call_outcome> outcomes(total);
    std::atomic<std::size_t> next{0};
    std::atomic<std::size_t> finished{0};
    const auto work = [&] {
        for (std::size_t i = next++; i < total; i = next++) {
            outcomes[i] = call();
            ++finished;
        }
    };
    std::vector<std::thread> workers;
    try {
        for (std::size_t w = 0; w < std::min(total, concurrency); ++w) workers.emplace_back(work);
    } catch (...) {
        next = total;  // the workers started stop after their current call
        for (auto& w : workers) w.join();
        throw;
    }
    if (progress_label) show_progress(finished, total, *progress_label);
    for (auto& w : workers) w.join();
    return outcomes;
}

/// What a target's calls add up to: one table, one element of --json's "targets".
struct target_report {
    std::string name;
    std::string base_url;
    std::string model;
    std::size_t requests = 0;
    std::size_t error_count = 0;
    std::map<std::string, std::size_t> errors;  ///< by kind, in the order of their names
    /// Over the calls that succeeded, as every value below: a failed call's time says how fast
    /// it failed, which the error counts already tell.
    std::optional<duration_summary> latency;
    std::optional<duration_summary> ttft;  ///< streams
    std::optional<double> tokens_per_s;
    std::int64_t prompt_tokens = 0;
    std::int64_t completion_tokens = 0;
    std::optional<double> cost_usd;  ///< unknown when any reply's is

    double error_rate() const {
        return requests == 0 ? 0 : static_cast<double>(error_count) / static_cast<double>(requests);
    }
};

double to_seconds(std::chrono::microseconds d) { return static_cast<double>(d.count()) / 1e6; }

target_report report_on(const bench_target& target, const std::string& model,
                        const std::vector<call_outcome>& outcomes) {
    target_report report;
    report.name = target.name;
    report.base_url = target.base_url;
    report.model = model;
    report.requests = outcomes.size();
    std::vector<double> latencies;
    std::vector<double> ttfts;
    std::int64_t generated_tokens = 0;
    double generating_seconds = 0;
    double cost = 0;
    bool every_cost_known = true;
    for (const auto& outcome : outcomes) {
        if (!outcome.succeeded()) {
            ++report.error_count;
            ++report.errors[std::string(outcome.failure)];
            continue;
        }
        latencies.push_back(to_ms(outcome.latency));
        if (outcome.ttft) ttfts.push_back(to_ms(*outcome.ttft));
        if (outcome.usage) {
            report.prompt_tokens += outcome.usage->prompt_tokens;
            report.completion_tokens += outcome.usage->completion_tokens;
            // The time the tokens took to come: for a stream, from the first one on (the wait
            // before it is the TTFT); otherwise the whole call.
            const auto generating = outcome.latency - outcome.ttft.value_or(0us);
            if (generating > 0us) {
                generated_tokens += outcome.usage->completion_tokens;
                generating_seconds += to_seconds(generating);
            }
        }
        if (outcome.cost_usd)
            cost += *outcome.cost_usd;
        else
            every_cost_known = false;
    }
    report.latency = summarise(latencies);
    report.ttft = summarise(ttfts);
    if (generating_seconds > 0) report.tokens_per_s = static_cast<double>(generated_tokens) / generating_seconds;
    if (!latencies.empty() && every_cost_known) report.cost_usd = cost;
    return report;
}

/// Makes the target's calls and reports on them.
target_report run_target(const bench_target& target, const arguments& args, sturdy::client_options options,
                         bool show_progress_bar) {
    const std::string model = target.model.value_or(model_for(args, default_chat_model));
    options.base_url = target.base_url;
    const cli_client client(std::move(options), policy_for(args, model));
    sturdy::chat_request request = chat_request_for(args, model);
    if (args.stream) {
        // A stream reports its usage only when asked, and tokens/s and cost need it.
        sturdy::chat_stream_options stream_options;
        stream_options.include_usage = true;
        request.stream_options = stream_options;
    }
    const sturdy::request_options limits = call_options(args);
    const auto outcomes =
        run_concurrently(static_cast<std::size_t>(args.requests), static_cast<std::size_t>(args.concurrency),
                         show_progress_bar ? std::optional<std::string>(target.name) : std::nullopt,
                         [&] { return measure(client, request, limits, args); });
    return report_on(target, model, outcomes);
}

template <class T>
ordered_json or_null(const std::optional<T>& value) {
    return value ? ordered_json(*value) : ordered_json(nullptr);
}

/// {"p50", "p95", "p99", "mean"}, each null when nothing was measured.
ordered_json summary_json(const std::optional<duration_summary>& summary) {
    const auto field = [&](double duration_summary::*member) {
        return summary ? ordered_json((*summary).*member) : ordered_json(nullptr);
    };
    ordered_json j;
    j["p50"] = field(&duration_summary::p50);
    j["p95"] = field(&duration_summary::p95);
    j["p99"] = field(&duration_summary::p99);
    j["mean"] = field(&duration_summary::mean);
    return j;
}

ordered_json report_json(const target_report& report, bool streamed) {
    ordered_json j;
    j["name"] = report.name;
    j["base_url"] = report.base_url;
    j["model"] = report.model;
    j["requests"] = report.requests;
    j["errors"] = ordered_json::object();
    for (const auto& [kind, count] : report.errors) j["errors"][kind] = count;
    j["error_rate"] = report.error_rate();
    j["latency_ms"] = summary_json(report.latency);
    j["ttft_ms"] = streamed ? summary_json(report.ttft) : ordered_json(nullptr);
    j["tokens_per_s"] = or_null(report.tokens_per_s);
    j["prompt_tokens"] = report.prompt_tokens;
    j["completion_tokens"] = report.completion_tokens;
    j["cost_usd"] = or_null(report.cost_usd);
    return j;
}

std::string fixed(double value, int decimals) {
    std::ostringstream text;
    text.imbue(std::locale::classic());
    text << std::fixed << std::setprecision(decimals) << value;
    return text.str();
}

std::string summary_text(const std::optional<duration_summary>& summary) {
    if (!summary) return "-";
    return "p50 " + fixed(summary->p50, 1) + "  p95 " + fixed(summary->p95, 1) + "  p99 " + fixed(summary->p99, 1) +
           "  mean " + fixed(summary->mean, 1);
}

/// "0", or "3: internal_server 2, rate_limit 1".
std::string errors_text(const target_report& report) {
    std::string text = std::to_string(report.error_count);
    const char* separator = ": ";
    for (const auto& [kind, count] : report.errors) {
        text += separator + kind + ' ' + std::to_string(count);
        separator = ", ";
    }
    return text;
}

/// The report as rows of a label (the JSON key) and a value.
void print_table(const target_report& report, bool streamed, output& out) {
    const auto row = [&](const std::string& label, const std::string& value) {
        constexpr std::size_t label_width = 14;
        out.line(label + std::string(label_width - label.size(), ' ') + value);
    };
    row("target", report.name);
    row("base_url", report.base_url);
    row("model", report.model);
    row("requests", std::to_string(report.requests));
    row("errors", errors_text(report));
    row("error_rate", fixed(100 * report.error_rate(), 1) + "%");
    row("latency_ms", summary_text(report.latency));
    if (streamed) row("ttft_ms", summary_text(report.ttft));
    row("tokens_per_s", report.tokens_per_s ? fixed(*report.tokens_per_s, 1) : "-");
    row("tokens",
        std::to_string(report.prompt_tokens) + " prompt, " + std::to_string(report.completion_tokens) + " completion");
    row("cost_usd", report.cost_usd ? fixed(*report.cost_usd, 6) : "unknown");
}

}  // namespace

void bench(const arguments& args, const sturdy::client_options& options, output& out) {
    std::vector<bench_target> targets = args.targets;
    if (targets.empty()) targets.push_back({"default", options.base_url, std::nullopt});
    const bool show_progress_bar = isatty(STDERR_FILENO) == 1;
    ordered_json reports = ordered_json::array();
    for (std::size_t i = 0; i < targets.size(); ++i) {
        // One target at a time, so that none slows another down.
        const target_report report = run_target(targets[i], args, options, show_progress_bar);
        if (args.json) {
            reports.push_back(report_json(report, args.stream));
            continue;
        }
        if (i > 0) out.line("");
        print_table(report, args.stream, out);  // each as soon as it is known
    }
    if (!args.json) return;
    ordered_json j;
    j["targets"] = std::move(reports);
    out.line(dump(j));
}

}  // namespace sturdy_cli

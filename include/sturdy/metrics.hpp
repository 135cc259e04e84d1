#pragma once
/// @file
/// Metrics per route and model, fed by the client's and the policies' events: calls, attempts,
/// errors by kind, latency, time to first token, inter-token latency and tokens per second as
/// p50/p95/p99 within 1 %, tokens, cost, attempts in flight and circuit breaker states. Read them as
/// a snapshot, as JSON, in the Prometheus text format, or as each update happens (a listener).
///
///     auto stats = std::make_shared<sturdy::metrics>();
///     opts.events = stats;                                 // client_options: every call of this client
///     sturdy::client client(opts);
///     ...
///     std::string page = stats->to_prometheus();           // serve it at /metrics
///
/// To hear the events yourself as well, give the client an `event_fanout` of both (events.hpp).
///
/// Series are keyed by the route an attempt went to (empty for the client's own endpoint) and the
/// model it asked for (a route's own model where it has one). Labels hold only the route, the
/// model, an error kind, an HTTP status and a policy's name: never a key, a URL or a header.

#include <sturdy/call_info.hpp>
#include <sturdy/circuit_breaker.hpp>
#include <sturdy/error.hpp>
#include <sturdy/events.hpp>
#include <sturdy/detail/latency_histogram.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sturdy {

/// A distribution's nearest-rank percentiles, read within 1 % above the exact value (never below
/// it), with the count and sum of its observations (exact for durations, whole microseconds). Durations are in seconds.
struct metric_summary {
    std::uint64_t count = 0;  ///< observations
    double sum = 0;           ///< their sum
    /// Unset when there are no observations.
    std::optional<double> p50{}, p95{}, p99{};
};

/// Everything counted for one (route, model).
struct series_metrics {
    std::string route;  ///< empty: the client's own endpoint
    std::string model;  ///< the model the attempts asked for

    /// Calls that ended (`on_call`), and of those the failed ones by the kind of their error
    /// (`to_string(error_kind)`: "rate_limit", "timeout"...).
    std::uint64_t requests = 0;
    std::map<std::string, std::uint64_t> request_failures;
    /// Attempts that ended, the failed ones by kind, and the replies by HTTP status ("200", "429").
    std::uint64_t attempts = 0;
    std::map<std::string, std::uint64_t> attempt_errors;
    std::map<std::string, std::uint64_t> http_responses;
    /// Attempts sent and not yet ended (requests on the wire): the calls in flight on this route.
    std::int64_t attempts_in_flight = 0;

    /// A call from its start to its result, retries and waits included.
    metric_summary request_latency;
    /// An attempt from its start to its reply (a stream: to its first content).
    metric_summary attempt_latency;
    /// Streams: an attempt's start to its first content.
    metric_summary time_to_first_token;
    /// Streams: per attempt of two content chunks or more, the mean gap between its chunks (the
    /// time from the first to the last over their number less one). Servers send about a token a chunk.
    metric_summary inter_token_latency;
    /// Per successful call that reported completion tokens: those tokens over the time spent
    /// producing them by the answering attempt: a stream's time from its first content chunk to its
    /// last (one chunk alone gives no rate); an unstreamed reply's whole attempt. (`sturdy bench`
    /// reports one rate over all its calls, each timed from its first token to the call's end.)
    metric_summary tokens_per_second;

    /// Tokens the calls' replies used (a failed stream: what it received), as the server counted.
    std::int64_t prompt_tokens = 0, cached_tokens = 0, completion_tokens = 0, reasoning_tokens = 0;
    /// The sum of the calls' `call_info::cost_usd`, in US dollars, and the calls that reported
    /// tokens but had no known price (their cost is not in the sum).
    double cost_usd = 0;
    std::uint64_t unpriced_requests = 0;
};

/// What a `metrics` holds at one moment.
struct metrics_snapshot {
    /// One per (route, model) seen, ordered by route, then model.
    std::vector<series_metrics> series;
    /// Each circuit breaker's last state reported to this sink, by breaker name.
    std::map<std::string, circuit_state> circuits;

    /// The series of (route, model); null if nothing was counted for it.
    const series_metrics* find(std::string_view route, std::string_view model) const {
        for (const auto& s : series)
            if (s.route == route && s.model == model) return &s;
        return nullptr;
    }
};

/// A circuit state as the `sturdy_circuit_state` gauge reports it: 0 closed, 1 half-open, 2 open,
/// 3 isolated (held open by hand), so "> 0" is "not fully closed" and "> 1" is "refusing calls".
constexpr int gauge_value(circuit_state s) noexcept {
    switch (s) {
        case circuit_state::closed: return 0;
        case circuit_state::half_open: return 1;
        case circuit_state::open: return 2;
        case circuit_state::isolated: return 3;
    }
    return -1;
}

/// What kind of Prometheus metric an update belongs to.
enum class metric_type {
    counter,  ///< only grows; an update carries what was added
    gauge,    ///< goes up and down; an update carries the new value
    summary,  ///< a distribution; an update carries one observed value
};

/// One change a `metrics` made, as a `metrics_listener` receives it.
struct metric_update {
    /// The Prometheus metric name: "sturdy_attempts_total", "sturdy_attempt_latency_seconds"...
    std::string_view name;
    metric_type type = metric_type::counter;
    /// The series' labels; both empty for `sturdy_circuit_state`.
    std::string_view route{}, model{};
    /// The one further label, when the metric has one: "kind", "status" or "policy"; else empty.
    std::string_view label{}, label_value{};
    /// A counter: what was added. A gauge: its new value. A summary: the value observed (seconds,
    /// or tokens per second).
    double value = 0;
};

/// Receives every update a `metrics` makes, right after it is counted, on the thread of the event
/// that caused it (so possibly on several threads at once), with no lock of the metrics held: feed
/// OpenTelemetry instruments, spdlog or your own log from here. The strings are valid only during
/// the call.
class metrics_listener {
public:
    virtual ~metrics_listener() = default;
    /// One update, just counted.
    virtual void on_update(const metric_update& update) = 0;
};

namespace detail {

/// A distribution in whole units, `units_per_value` to the value it reports (1e6: microseconds
/// read as seconds), over the latency histogram's 1 %-wide buckets, with the sum kept in units
/// (exact for durations).
class metric_distribution {
public:
    explicit metric_distribution(double units_per_value) : units_per_value_(units_per_value) {}

    void add(double value) {
        const double units = std::round(value * units_per_value_);
        const std::int64_t whole = units > 0 ? static_cast<std::int64_t>(units) : 0;
        histogram_.add(std::chrono::microseconds(whole));
        sum_ += whole;
    }

    metric_summary summary() const {
        metric_summary out;
        out.count = histogram_.count();
        out.sum = value_of(sum_);
        auto at = [&](double p) -> std::optional<double> {
            const auto v = histogram_.percentile(p);
            if (!v) return std::nullopt;
            return value_of(v->count());
        };
        out.p50 = at(0.5);
        out.p95 = at(0.95);
        out.p99 = at(0.99);
        return out;
    }

private:
    // Divided, not multiplied by 1e-6: 1453 us reads 0.001453, not 0.0014529999999999999.
    double value_of(std::int64_t units) const { return static_cast<double>(units) / units_per_value_; }

    double units_per_value_;
    latency_histogram histogram_;
    std::int64_t sum_ = 0;
};

inline constexpr double microseconds_per_second = 1e6;
inline constexpr double thousandths = 1e3;  // tokens per second, to 0.001

inline double seconds(std::chrono::microseconds d) { return static_cast<double>(d.count()) / microseconds_per_second; }

/// One (route, model)'s counts, behind a lock of its own so that series do not contend.
struct metric_series {
    std::mutex mutex;
    std::atomic<std::int64_t> in_flight{0};
    std::uint64_t requests = 0, attempts = 0;
    std::array<std::uint64_t, error_kind_count> request_failures{}, attempt_errors{};
    std::map<int, std::uint64_t> http_responses;
    metric_distribution request_latency{microseconds_per_second}, attempt_latency{microseconds_per_second},
        time_to_first_token{microseconds_per_second}, inter_token_latency{microseconds_per_second},
        tokens_per_second{thousandths};
    std::int64_t prompt_tokens = 0, cached_tokens = 0, completion_tokens = 0, reasoning_tokens = 0;
    double cost_usd = 0;
    std::uint64_t unpriced_requests = 0;
};

/// Orders (route, model) pairs of strings or string views alike, so lookups need no copy.
struct series_key_less {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
        return std::pair<std::string_view, std::string_view>(a.first, a.second) <
               std::pair<std::string_view, std::string_view>(b.first, b.second);
    }
};

/// The updates one event makes, held until the series' lock is released, then given to the
/// listener. Only filled when there is a listener.
class update_batch {
public:
    update_batch(metrics_listener* listener, std::string_view route, std::string_view model)
        : listener_(listener), route_(route), model_(model) {}

    explicit operator bool() const noexcept { return listener_ != nullptr; }

    void add(std::string_view name, metric_type type, double value, std::string_view label = {},
             std::string_view label_value = {}) {
        if (listener_ && size_ < items_.size())
            items_[size_++] = metric_update{name, type, route_, model_, label, label_value, value};
    }
    /// A status label's text, kept for as long as the batch.
    std::string_view status_text(int status) {
        status_ = std::to_string(status);
        return status_;
    }
    void deliver() const {
        for (std::size_t i = 0; i < size_; ++i) listener_->on_update(items_[i]);
    }

private:
    metrics_listener* listener_;
    std::string_view route_, model_;
    std::array<metric_update, 12> items_{};
    std::size_t size_ = 0;
    std::string status_;
};

/// The label values' escapes of the Prometheus text format: backslash, double quote, line feed.
inline void append_label_value(std::string& out, std::string_view value) {
    for (char c : value) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
}

/// A sample value as the text format takes it: NaN, +Inf, -Inf, else the shortest decimal that
/// reads back the same (nlohmann's, independent of the C locale).
inline std::string prometheus_number(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    // Counts read as counts ("3", not "3.0") wherever a double holds them exactly.
    if (v == std::trunc(v) && std::fabs(v) < 9007199254740992.0) return std::to_string(static_cast<std::int64_t>(v));
    return nlohmann::json(v).dump();
}

/// The metrics' names, each written once: the exports and the listener's updates use these.
namespace metric_names {
inline constexpr const char* requests = "sturdy_requests_total";
inline constexpr const char* attempts = "sturdy_attempts_total";
inline constexpr const char* prompt_tokens = "sturdy_prompt_tokens_total";
inline constexpr const char* cached_tokens = "sturdy_cached_tokens_total";
inline constexpr const char* completion_tokens = "sturdy_completion_tokens_total";
inline constexpr const char* reasoning_tokens = "sturdy_reasoning_tokens_total";
inline constexpr const char* cost_usd = "sturdy_cost_usd_total";
inline constexpr const char* unpriced_requests = "sturdy_unpriced_requests_total";
inline constexpr const char* request_failures = "sturdy_request_failures_total";
inline constexpr const char* attempt_errors = "sturdy_attempt_errors_total";
inline constexpr const char* http_responses = "sturdy_http_responses_total";
inline constexpr const char* request_latency = "sturdy_request_latency_seconds";
inline constexpr const char* attempt_latency = "sturdy_attempt_latency_seconds";
inline constexpr const char* time_to_first_token = "sturdy_time_to_first_token_seconds";
inline constexpr const char* inter_token_latency = "sturdy_inter_token_latency_seconds";
inline constexpr const char* tokens_per_second = "sturdy_tokens_per_second";
inline constexpr const char* attempts_in_flight = "sturdy_attempts_in_flight";
inline constexpr const char* circuit_state = "sturdy_circuit_state";
}  // namespace metric_names

// The metric families of a series, each named once and read by both exports.
struct counter_family {
    const char* name;
    const char* help;
    double (*value)(const series_metrics&);
};
struct labelled_family {
    const char* name;
    const char* help;
    const char* label;
    const std::map<std::string, std::uint64_t>& (*values)(const series_metrics&);
};
struct summary_family {
    const char* name;
    const char* help;
    const metric_summary& (*value)(const series_metrics&);
};

inline const std::array<counter_family, 8>& counter_families() {
    static const std::array<counter_family, 8> families{{
        {metric_names::requests, "Calls that ended.", [](const series_metrics& s) { return double(s.requests); }},
        {metric_names::attempts, "Attempts that ended.", [](const series_metrics& s) { return double(s.attempts); }},
        {metric_names::prompt_tokens, "Prompt tokens the replies reported, cached ones included.",
         [](const series_metrics& s) { return double(s.prompt_tokens); }},
        {metric_names::cached_tokens, "Prompt tokens read from the provider's cache.",
         [](const series_metrics& s) { return double(s.cached_tokens); }},
        {metric_names::completion_tokens, "Completion tokens the replies reported, reasoning included.",
         [](const series_metrics& s) { return double(s.completion_tokens); }},
        {metric_names::reasoning_tokens, "Completion tokens spent reasoning.",
         [](const series_metrics& s) { return double(s.reasoning_tokens); }},
        {metric_names::cost_usd, "What the replies' tokens cost, in US dollars, where a price was known.",
         [](const series_metrics& s) { return s.cost_usd; }},
        {metric_names::unpriced_requests, "Calls that reported tokens but had no known price.",
         [](const series_metrics& s) { return double(s.unpriced_requests); }},
    }};
    return families;
}

inline const std::array<labelled_family, 3>& labelled_families() {
    static const std::array<labelled_family, 3> families{{
        {metric_names::request_failures, "Calls that failed, by the kind of their error.", "kind",
         [](const series_metrics& s) -> const std::map<std::string, std::uint64_t>& { return s.request_failures; }},
        {metric_names::attempt_errors, "Attempts that failed, by the kind of their error.", "kind",
         [](const series_metrics& s) -> const std::map<std::string, std::uint64_t>& { return s.attempt_errors; }},
        {metric_names::http_responses, "Replies the attempts received, by HTTP status.", "status",
         [](const series_metrics& s) -> const std::map<std::string, std::uint64_t>& { return s.http_responses; }},
    }};
    return families;
}

inline const std::array<summary_family, 5>& summary_families() {
    static const std::array<summary_family, 5> families{{
        {metric_names::request_latency, "A call from its start to its result, retries and waits included.",
         [](const series_metrics& s) -> const metric_summary& { return s.request_latency; }},
        {metric_names::attempt_latency, "An attempt from its start to its reply (a stream: to its first content).",
         [](const series_metrics& s) -> const metric_summary& { return s.attempt_latency; }},
        {metric_names::time_to_first_token, "A streamed attempt from its start to its first content.",
         [](const series_metrics& s) -> const metric_summary& { return s.time_to_first_token; }},
        {metric_names::inter_token_latency, "A streamed attempt's mean gap between content chunks.",
         [](const series_metrics& s) -> const metric_summary& { return s.inter_token_latency; }},
        {metric_names::tokens_per_second, "Completion tokens over the time spent producing them, per call.",
         [](const series_metrics& s) -> const metric_summary& { return s.tokens_per_second; }},
    }};
    return families;
}

/// The JSON key of a family: its name without the prefix and without a counter's `_total`.
inline std::string json_key(std::string_view name) {
    name.remove_prefix(std::string_view("sturdy_").size());
    constexpr std::string_view total = "_total";
    if (name.size() > total.size() && name.substr(name.size() - total.size()) == total)
        name.remove_suffix(total.size());
    return std::string(name);
}

}  // namespace detail

nlohmann::json to_json(const metrics_snapshot& snap);
std::string to_prometheus(const metrics_snapshot& snap);

/// An `event_sink` that counts what the client and its policies report, per (route, model).
/// Safe to call from many threads: each series has a lock of its own, and finding a series takes
/// a shared lock (an exclusive one only the first time a (route, model) is seen).
///
/// Attempts in flight come from the client's `on_attempt_start` and `on_attempt`, which it always
/// pairs; a call waiting for a retry, a limiter or a bulkhead has no attempt in flight. A breaker's
/// state is the last one reported by a call through this sink: a change made by hand (`isolate()`,
/// `reset()`) reaches no sink, so it shows here only once a call changes the state again.
class metrics : public event_sink {
public:
    /// Metrics that tell `listener` (if any) of each update as it is counted.
    explicit metrics(std::shared_ptr<metrics_listener> listener = nullptr) : listener_(std::move(listener)) {}

    /// Everything counted so far, copied out under the locks, consistent per series.
    metrics_snapshot snapshot() const {
        metrics_snapshot out;
        {
            std::shared_lock<std::shared_mutex> lock(series_mutex_);
            out.series.reserve(series_.size());
            for (const auto& [key, s] : series_) out.series.push_back(read(key.first, key.second, *s));
        }
        std::lock_guard<std::mutex> lock(circuits_mutex_);
        out.circuits = circuits_;
        return out;
    }
    /// `sturdy::to_json(snapshot())`.
    nlohmann::json to_json() const { return sturdy::to_json(snapshot()); }
    /// `sturdy::to_prometheus(snapshot())`.
    std::string to_prometheus() const { return sturdy::to_prometheus(snapshot()); }

    // ---- events ----

    void on_attempt_start(const event_source&, const attempt_start& a) override {
        auto& s = series(a.route, a.model);
        const auto now = ++s.in_flight;
        detail::update_batch updates(listener_.get(), a.route, a.model);
        updates.add(detail::metric_names::attempts_in_flight, metric_type::gauge, static_cast<double>(now));
        if (updates) updates.deliver();
    }

    void on_attempt(const event_source&, const attempt_record& a) override {
        auto& s = series(a.route, a.model);
        detail::update_batch updates(listener_.get(), a.route, a.model);
        updates.add(detail::metric_names::attempts, metric_type::counter, 1);
        {
            std::lock_guard<std::mutex> lock(s.mutex);
            ++s.attempts;
            s.attempt_latency.add(detail::seconds(a.latency));
            if (a.time_to_first_token) s.time_to_first_token.add(detail::seconds(*a.time_to_first_token));
            if (a.failure) ++s.attempt_errors[static_cast<std::size_t>(a.failure->kind())];
            if (a.status > 0) ++s.http_responses[a.status];
            if (auto gap = inter_token_gap(a)) s.inter_token_latency.add(*gap);
        }
        const auto now = --s.in_flight;
        if (!updates) return;
        updates.add(detail::metric_names::attempt_latency, metric_type::summary, detail::seconds(a.latency));
        if (a.time_to_first_token)
            updates.add(detail::metric_names::time_to_first_token, metric_type::summary,
                        detail::seconds(*a.time_to_first_token));
        if (auto gap = inter_token_gap(a))
            updates.add(detail::metric_names::inter_token_latency, metric_type::summary, *gap);
        if (a.failure)
            updates.add(detail::metric_names::attempt_errors, metric_type::counter, 1, "kind",
                        to_string(a.failure->kind()));
        if (a.status > 0)
            updates.add(detail::metric_names::http_responses, metric_type::counter, 1, "status",
                        updates.status_text(a.status));
        updates.add(detail::metric_names::attempts_in_flight, metric_type::gauge, static_cast<double>(now));
        updates.deliver();
    }

    void on_call(const event_source&, const call_info& info) override {
        auto& s = series(info.route, info.model);
        const error* failure = info.failed && !info.errors.empty() ? &info.errors.back() : nullptr;
        const std::optional<double> rate = tokens_per_second(info);
        const bool unpriced =
            !info.cost_usd && info.usage && (info.usage->prompt_tokens > 0 || info.usage->completion_tokens > 0);
        std::int64_t cached = 0, reasoning = 0;
        if (info.usage) {
            cached = info.usage->cached_prompt_tokens();
            reasoning = info.usage->reasoning_tokens();
        }
        {
            std::lock_guard<std::mutex> lock(s.mutex);
            ++s.requests;
            s.request_latency.add(detail::seconds(info.latency));
            if (failure) ++s.request_failures[static_cast<std::size_t>(failure->kind())];
            if (info.usage) {
                s.prompt_tokens += info.usage->prompt_tokens;
                s.completion_tokens += info.usage->completion_tokens;
                s.cached_tokens += cached;
                s.reasoning_tokens += reasoning;
            }
            if (info.cost_usd) s.cost_usd += *info.cost_usd;
            if (unpriced) ++s.unpriced_requests;
            if (rate) s.tokens_per_second.add(*rate);
        }
        detail::update_batch updates(listener_.get(), info.route, info.model);
        if (!updates) return;
        updates.add(detail::metric_names::requests, metric_type::counter, 1);
        updates.add(detail::metric_names::request_latency, metric_type::summary, detail::seconds(info.latency));
        if (failure)
            updates.add(detail::metric_names::request_failures, metric_type::counter, 1, "kind",
                        to_string(failure->kind()));
        if (info.usage) {
            updates.add(detail::metric_names::prompt_tokens, metric_type::counter,
                        static_cast<double>(info.usage->prompt_tokens));
            updates.add(detail::metric_names::cached_tokens, metric_type::counter, static_cast<double>(cached));
            updates.add(detail::metric_names::completion_tokens, metric_type::counter,
                        static_cast<double>(info.usage->completion_tokens));
            updates.add(detail::metric_names::reasoning_tokens, metric_type::counter, static_cast<double>(reasoning));
        }
        if (info.cost_usd) updates.add(detail::metric_names::cost_usd, metric_type::counter, *info.cost_usd);
        if (unpriced) updates.add(detail::metric_names::unpriced_requests, metric_type::counter, 1);
        if (rate) updates.add(detail::metric_names::tokens_per_second, metric_type::summary, *rate);
        updates.deliver();
    }

    void on_circuit_state(const event_source&, const circuit_state_event& e) override {
        {
            std::lock_guard<std::mutex> lock(circuits_mutex_);
            circuits_[std::string(e.name)] = e.to;
        }
        detail::update_batch updates(listener_.get(), {}, {});
        updates.add(detail::metric_names::circuit_state, metric_type::gauge, gauge_value(e.to), "policy", e.name);
        if (updates) updates.deliver();
    }

private:
    using series_map =
        std::map<std::pair<std::string, std::string>, std::unique_ptr<detail::metric_series>, detail::series_key_less>;

    detail::metric_series& series(std::string_view route, std::string_view model) {
        const std::pair<std::string_view, std::string_view> key(route, model);
        {
            std::shared_lock<std::shared_mutex> lock(series_mutex_);
            if (auto it = series_.find(key); it != series_.end()) return *it->second;
        }
        std::unique_lock<std::shared_mutex> lock(series_mutex_);
        auto it = series_.find(key);
        if (it == series_.end())
            it = series_
                     .emplace(std::pair(std::string(route), std::string(model)),
                              std::make_unique<detail::metric_series>())
                     .first;
        return *it->second;
    }

    /// A stream attempt's mean gap between content chunks, in seconds.
    static std::optional<double> inter_token_gap(const attempt_record& a) {
        if (!a.generation_time || a.content_chunks < 2) return std::nullopt;
        return detail::seconds(*a.generation_time) / (a.content_chunks - 1);
    }

    /// Completion tokens over the answering attempt's time producing them (see series_metrics).
    static std::optional<double> tokens_per_second(const call_info& info) {
        if (info.failed || !info.usage || info.usage->completion_tokens <= 0) return std::nullopt;
        for (auto it = info.attempt_log.rbegin(); it != info.attempt_log.rend(); ++it) {
            if (it->failure) continue;
            const auto took =
                it->time_to_first_token ? it->generation_time.value_or(std::chrono::microseconds(0)) : it->latency;
            if (took.count() <= 0) return std::nullopt;
            return static_cast<double>(info.usage->completion_tokens) / detail::seconds(took);
        }
        return std::nullopt;
    }

    static series_metrics read(const std::string& route, const std::string& model, detail::metric_series& s) {
        series_metrics out;
        out.route = route;
        out.model = model;
        out.attempts_in_flight = s.in_flight.load();
        std::lock_guard<std::mutex> lock(s.mutex);
        out.requests = s.requests;
        out.attempts = s.attempts;
        for (std::size_t k = 0; k < error_kind_count; ++k) {
            const std::string kind(to_string(static_cast<error_kind>(k)));
            if (s.request_failures[k] > 0) out.request_failures[kind] = s.request_failures[k];
            if (s.attempt_errors[k] > 0) out.attempt_errors[kind] = s.attempt_errors[k];
        }
        for (const auto& [status, n] : s.http_responses) out.http_responses[std::to_string(status)] = n;
        out.request_latency = s.request_latency.summary();
        out.attempt_latency = s.attempt_latency.summary();
        out.time_to_first_token = s.time_to_first_token.summary();
        out.inter_token_latency = s.inter_token_latency.summary();
        out.tokens_per_second = s.tokens_per_second.summary();
        out.prompt_tokens = s.prompt_tokens;
        out.cached_tokens = s.cached_tokens;
        out.completion_tokens = s.completion_tokens;
        out.reasoning_tokens = s.reasoning_tokens;
        out.cost_usd = s.cost_usd;
        out.unpriced_requests = s.unpriced_requests;
        return out;
    }

    std::shared_ptr<metrics_listener> listener_;
    mutable std::shared_mutex series_mutex_;
    series_map series_;
    mutable std::mutex circuits_mutex_;
    std::map<std::string, circuit_state> circuits_;
};

/// The snapshot as JSON: {"series": [{"route", "model", "requests", "request_failures": {KIND: N},
/// "attempts", "attempt_errors": {...}, "http_responses": {"200": N}, "attempts_in_flight",
/// "<name>_seconds" / "tokens_per_second": {"count", "sum", "p50", "p95", "p99"} (null when empty),
/// "prompt_tokens", "cached_tokens", "completion_tokens", "reasoning_tokens", "cost_usd",
/// "unpriced_requests"}], "circuits": {NAME: "open"}}: the Prometheus names without `sturdy_` and
/// `_total`.
inline nlohmann::json to_json(const metrics_snapshot& snap) {
    auto optional_number = [](const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); };
    nlohmann::json series = nlohmann::json::array();
    for (const auto& s : snap.series) {
        nlohmann::json j{{"route", s.route}, {"model", s.model}};
        for (const auto& f : detail::counter_families()) j[detail::json_key(f.name)] = f.value(s);
        for (const auto& f : detail::labelled_families()) j[detail::json_key(f.name)] = f.values(s);
        j[detail::json_key(detail::metric_names::attempts_in_flight)] = s.attempts_in_flight;
        for (const auto& f : detail::summary_families()) {
            const metric_summary& m = f.value(s);
            j[detail::json_key(f.name)] = {{"count", m.count},
                                           {"sum", m.sum},
                                           {"p50", optional_number(m.p50)},
                                           {"p95", optional_number(m.p95)},
                                           {"p99", optional_number(m.p99)}};
        }
        series.push_back(std::move(j));
    }
    nlohmann::json circuits = nlohmann::json::object();
    for (const auto& [name, state] : snap.circuits) circuits[name] = std::string(to_string(state));
    return {{"series", std::move(series)}, {"circuits", std::move(circuits)}};
}

/// The snapshot in the Prometheus text exposition format 0.0.4 (serve it as
/// `text/plain; version=0.0.4`): counters end in `_total`; distributions are summaries with
/// quantiles 0.5, 0.95 and 0.99 (NaN when empty) and `_sum`/`_count`; every series is labelled
/// `route` and `model`, errors `kind`, replies `status`, circuit states `policy` (the breaker's name).
inline std::string to_prometheus(const metrics_snapshot& snap) {
    std::string out;
    auto family = [&](const char* name, const char* help, const char* type) {
        out.append("# HELP ").append(name).append(" ").append(help).append("\n");
        out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
    };
    // name{route="..",model="..",extra="..."} value
    auto sample = [&](std::string_view name, const series_metrics* s, std::string_view label, std::string_view value,
                      double number) {
        out.append(name);
        const char* sep = "{";
        if (s) {
            out.append("{route=\"");
            detail::append_label_value(out, s->route);
            out.append("\",model=\"");
            detail::append_label_value(out, s->model);
            out.append("\"");
            sep = ",";
        }
        if (!label.empty()) {
            out.append(sep).append(label).append("=\"");
            detail::append_label_value(out, value);
            out.append("\"");
            sep = ",";
        }
        if (*sep == ',') out.append("}");
        out.append(" ").append(detail::prometheus_number(number)).append("\n");
    };

    for (const auto& f : detail::counter_families()) {
        family(f.name, f.help, "counter");
        for (const auto& s : snap.series) sample(f.name, &s, {}, {}, f.value(s));
    }
    for (const auto& f : detail::labelled_families()) {
        family(f.name, f.help, "counter");
        for (const auto& s : snap.series)
            for (const auto& [value, n] : f.values(s)) sample(f.name, &s, f.label, value, static_cast<double>(n));
    }
    for (const auto& f : detail::summary_families()) {
        family(f.name, f.help, "summary");
        const std::string name(f.name);
        for (const auto& s : snap.series) {
            const metric_summary& m = f.value(s);
            const double nan = std::nan("");
            sample(name, &s, "quantile", "0.5", m.p50.value_or(nan));
            sample(name, &s, "quantile", "0.95", m.p95.value_or(nan));
            sample(name, &s, "quantile", "0.99", m.p99.value_or(nan));
            sample(name + "_sum", &s, {}, {}, m.sum);
            sample(name + "_count", &s, {}, {}, static_cast<double>(m.count));
        }
    }
    family(detail::metric_names::attempts_in_flight, "Attempts sent and not yet ended.", "gauge");
    for (const auto& s : snap.series)
        sample(detail::metric_names::attempts_in_flight, &s, {}, {}, static_cast<double>(s.attempts_in_flight));
    family(detail::metric_names::circuit_state, "A circuit breaker's state: 0 closed, 1 half-open, 2 open, 3 isolated.",
           "gauge");
    for (const auto& [name, state] : snap.circuits)
        sample(detail::metric_names::circuit_state, nullptr, "policy", name, gauge_value(state));
    return out;
}

}  // namespace sturdy

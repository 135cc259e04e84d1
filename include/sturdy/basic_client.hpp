#pragma once
/// @file
/// The client over any Transport: chat, streamed chat, models and embeddings, through a Policy.
/// It needs no libcurl, so a program on `sturdy::core` with a Transport of its own uses it;
/// `client.hpp` adds libcurl's transport and `sturdy::client`.

#include <sturdy/call_info.hpp>
#include <sturdy/chat.hpp>
#include <sturdy/clock.hpp>
#include <sturdy/embeddings.hpp>
#include <sturdy/error.hpp>
#include <sturdy/executor.hpp>
#include <sturdy/models.hpp>
#include <sturdy/options.hpp>
#include <sturdy/policy.hpp>
#include <sturdy/pricing.hpp>
#include <sturdy/result.hpp>
#include <sturdy/retry.hpp>
#include <sturdy/transport.hpp>
#include <sturdy/detail/api_error.hpp>
#include <sturdy/detail/chat_stream_sink.hpp>
#include <sturdy/detail/json_mapping.hpp>
#include <sturdy/detail/json_reader.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace sturdy {

/// An OpenAI-compatible client over `Transport`, running every call through `Policy`.
/// `Transport` defaults to `curl_transport` where `client.hpp` is included.
///
///     sturdy::client client;                                      // OPENAI_* from the environment
///     auto reply = client.chat({"gpt-4o-mini", {sturdy::chat_message::user("Hello")}});
///     std::cout << reply.content() << "\n";
///
/// Every call has a throwing form (`chat`) and one that returns `result<T>` (`try_chat`).
/// One client may be used from many threads at once.
template <class Transport, class Policy = retry_policy>
class basic_client {
    static_assert(is_transport_v<Transport>, "Transport must model the Transport concept (sturdy/transport.hpp)");

public:
    using transport_type = Transport;
    using policy_type = Policy;

    /// A client configured from the environment (client_options::from_env).
    basic_client() : basic_client(client_options::from_env()) {}

    explicit basic_client(client_options options, Policy policy = Policy(), Transport transport = Transport(),
                          sturdy::timing timing = {})
        : options_(std::move(options)), policy_(std::move(policy)), transport_(std::move(transport)),
          timing_(std::move(timing)), json_headers_(headers_for(options_, "application/json")),
          stream_headers_(headers_for(options_, "text/event-stream")) {}

    // ---- chat ----

    result<chat_response> try_chat(const chat_request& request, const request_options& call = {}) const {
        auto body = chat_body(request, false);
        return run<chat_response>(operation::chat, request, call, [&](call_context& ctx) {
            return unary<chat_response>(ctx, http_method::post, "/chat/completions", body, "choices");
        });
    }
    chat_response chat(const chat_request& request, const request_options& call = {}) const {
        return try_chat(request, call).value();
    }

    /// Streams a chat completion: `on_chunk(const chat_chunk&)` sees each chunk as it arrives and may
    /// return false to stop. Returns the reply assembled from the chunks. Retries and fallbacks
    /// happen only before the first content reaches `on_chunk`, so it never sees anything twice.
    template <class OnChunk>
    result<chat_response> try_stream(const chat_request& request, OnChunk&& on_chunk,
                                     const request_options& call = {}) const {
        auto body = chat_body(request, true);
        auto deliver = [&](const chat_chunk& chunk) -> bool {
            if constexpr (std::is_convertible_v<std::invoke_result_t<OnChunk&, const chat_chunk&>, bool>) {
                return static_cast<bool>(on_chunk(chunk));
            } else {
                on_chunk(chunk);
                return true;
            }
        };
        const auto started = timing_.clock->now();
        return run<chat_response>(operation::chat_stream, request, call,
                                  [&](call_context& ctx) { return streamed(ctx, body, deliver, started); });
    }
    template <class OnChunk>
    chat_response stream(const chat_request& request, OnChunk&& on_chunk, const request_options& call = {}) const {
        return try_stream(request, std::forward<OnChunk>(on_chunk), call).value();
    }

    // ---- models ----

    result<model_list> try_models(const request_options& call = {}) const {
        return run_named<model_list>(operation::list_models, std::string_view{}, call, [&](call_context& ctx) {
            return unary<model_list>(ctx, http_method::get, "/models", prepared_body{}, "data");
        });
    }
    model_list models(const request_options& call = {}) const { return try_models(call).value(); }

    result<model_info> try_model(std::string_view id, const request_options& call = {}) const {
        const std::string path = "/models/" + escape_path(id);
        return run_named<model_info>(operation::retrieve_model, id, call, [&](call_context& ctx) {
            return unary<model_info>(ctx, http_method::get, path, prepared_body{}, "id");
        });
    }
    model_info model(std::string_view id, const request_options& call = {}) const {
        return try_model(id, call).value();
    }

    // ---- embeddings ----

    result<embedding_response> try_embed(const embedding_request& request, const request_options& call = {}) const {
        prepared_body body;
        detail::write_object(body.json, request);
        const bool decode = !request.encoding_format.has_value();
        if (decode) body.json["encoding_format"] = "base64";
        body.text = body.json.dump();
        body.model = request.model;
        return run<embedding_response>(
            operation::embeddings, request, call, [&](call_context& ctx) -> result<embedding_response> {
                auto out = unary<embedding_response>(ctx, http_method::post, "/embeddings", body, "data");
                if (out && decode) {
                    for (auto& item : out->data) {
                        if (item.base64.empty()) continue;
                        if (!detail::decode_base64_floats(item.base64, item.values))
                            return note(
                                ctx, error(error_kind::invalid_response, "an embedding is not valid base64 float32"));
                        item.base64.clear();
                    }
                }
                return out;
            });
    }
    embedding_response embed(const embedding_request& request, const request_options& call = {}) const {
        return try_embed(request, call).value();
    }

    // ---- parts ----

    const client_options& options() const noexcept { return options_; }
    const Policy& policy() const noexcept { return policy_; }
    const Transport& transport() const noexcept { return transport_; }

private:
    /// A request body, serialized once per call and again only for an attempt routed to another model.
    struct prepared_body {
        nlohmann::json json;
        std::string text;
        std::string model;

        std::string for_model(std::string_view m) const {
            if (json.is_null() || m == model) return text;
            auto copy = json;
            copy["model"] = std::string(m);
            return copy.dump();
        }
    };

    static prepared_body chat_body(const chat_request& request, bool streamed) {
        prepared_body body;
        detail::write_object(body.json, request);
        if (streamed) {
            body.json["stream"] = true;
        } else {
            // Servers reject stream_options without stream: an unstreamed call sends neither.
            body.json.erase("stream");
            body.json.erase("stream_options");
        }
        body.text = body.json.dump();
        body.model = request.model;
        return body;
    }

    static header_list headers_for(const endpoint& ep, std::string_view accept,
                                   std::string_view user_agent = "sturdy/" STURDY_VERSION) {
        header_list h;
        if (!ep.api_key.empty()) h.emplace_back("Authorization", "Bearer " + ep.api_key);
        h.emplace_back("Content-Type", "application/json");
        h.emplace_back("Accept", std::string(accept));
        h.emplace_back("User-Agent", std::string(user_agent));
        if (!ep.organization.empty()) h.emplace_back("OpenAI-Organization", ep.organization);
        if (!ep.project.empty()) h.emplace_back("OpenAI-Project", ep.project);
        merge_headers(h, ep.default_headers);
        return h;
    }
    header_list headers_for(const client_options& o, std::string_view accept) const {
        return headers_for(static_cast<const endpoint&>(o), accept, o.user_agent);
    }

    /// Adds `extra` to `h`, a header of the same name replacing the earlier one.
    static void merge_headers(header_list& h, const header_list& extra) {
        for (const auto& header : extra) {
            auto same = [&](const auto& kv) { return detail::iequals(kv.first, header.first); };
            h.erase(std::remove_if(h.begin(), h.end(), same), h.end());
            h.push_back(header);
        }
    }

    static std::string escape_path(std::string_view s) {
        static constexpr char hex[] = "0123456789ABCDEF";
        std::string out;
        for (char ch : s) {
            const auto c = static_cast<unsigned char>(ch);
            // Unreserved characters and "/" pass, as the official SDKs send model ids like "org/model".
            if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/' || c == ':') {
                out += static_cast<char>(c);
            } else {
                out += '%';
                out += hex[c >> 4];
                out += hex[c & 15];
            }
        }
        return out;
    }

    template <class T, class Request, class Attempt>
    result<T> run(operation op, const Request& request, const request_options& call, Attempt&& attempt) const {
        call_state state;
        call_context ctx(op, request.model, state);
        ctx.estimated_prompt_tokens = options_.tokens.prompt(request);
        if constexpr (std::is_same_v<Request, chat_request>) {
            if (auto cap = request.max_completion_tokens ? request.max_completion_tokens : request.max_tokens)
                ctx.max_output_tokens = *cap;
        }
        return run_with<T>(ctx, state, call, attempt);
    }

    template <class T, class Attempt>
    result<T> run_named(operation op, std::string_view model, const request_options& call, Attempt&& attempt) const {
        call_state state;
        call_context ctx(op, model, state);
        return run_with<T>(ctx, state, call, attempt);
    }

    template <class T, class Attempt>
    result<T> run_with(call_context& ctx, call_state& state, const request_options& call, Attempt& attempt) const {
        const auto started = timing_.clock->now();
        // The call's options become its context once; no attempt reads request_options again.
        ctx.cancel = call.cancel;
        // An explicit bound on the whole call replaces the client's default per-attempt timeout.
        ctx.attempt_timeout = call.timeout         ? call.timeout
                              : call.total_timeout ? std::nullopt
                                                   : std::optional(options_.timeout);
        ctx.headers = call.headers;
        ctx.events = options_.events.get();
        ctx.first_token_timeout = call.first_token_timeout;
        ctx.idle_timeout = call.idle_timeout;
        ctx.route_order = call.route_order;
        ctx.pinned_route = call.pinned_route;
        ctx.properties = call.properties;
        if (call.total_timeout) ctx.deadline = deadline::after(timing_.clock, *call.total_timeout);
        result<T> outcome = sturdy::execute(policy_, ctx, attempt);
        if (!outcome) {
            sturdy::error& failure = outcome.error();  // in place: the outcome keeps its observation
            state.note_outcome(failure);  // the call's own error is the last of its report, whoever made it
            auto report = std::make_shared<call_info>();
            report->request_id = failure.request_id();
            report->failed = true;
            fill_report(*report, state, started, ctx.model);
            if (const chat_response* partial = failure.partial_response()) {
                report->usage = partial->usage;
                add_cost(*report, partial->usage, partial->model, ctx.model, partial);
            }
            report_call(ctx, *report);
            failure.set_call(std::move(report));
            return outcome;
        }
        fill_report(outcome->call, state, started, ctx.model);
        if constexpr (std::is_same_v<T, chat_response> || std::is_same_v<T, embedding_response>) {
            outcome->call.usage = outcome->usage;
            add_cost(outcome->call, outcome->usage, outcome->model, ctx.model, nullptr);
        }
        report_call(ctx, outcome->call);
        return outcome;
    }

    /// Prices what a call's reply used (for a failed stream, what it received) into its report,
    /// by `client_options::prices`; the one place the client computes a cost. The model priced is
    /// the one that answered: the reply's own `model`, else the model its attempt asked for (a
    /// route's), else the request's. `partial` is a failed call's partial reply, null otherwise.
    void add_cost(call_info& info, const std::optional<token_usage>& usage, std::string_view reply_model,
                  std::string_view requested_model, const chat_response* partial) const {
        if (!options_.prices || !usage) return;
        std::string_view model = reply_model;
        for (auto it = info.attempt_log.rbegin(); model.empty() && it != info.attempt_log.rend(); ++it) {
            // The attempt that answered; for a failed call, the one whose error holds the partial reply.
            const bool answered = partial ? it->failure && it->failure->partial_response() == partial : !it->failure;
            if (answered) model = it->model;
        }
        if (model.empty()) model = requested_model;
        const auto entry = options_.prices->find(model);
        if (!entry) return;
        info.cost_usd = cost_usd(*usage, entry->price);
        info.priced_model = entry->model;
    }

    /// The call-level part of a report; the answering attempt filled in its own (request id, ttft).
    /// Reads `info.failed`, which the caller sets first.
    void fill_report(call_info& info, const call_state& state, clock::time_point started,
                     std::string_view requested_model) const {
        info.attempts = state.attempts();
        info.latency = std::chrono::duration_cast<std::chrono::microseconds>(timing_.clock->now() - started);
        info.route = state.route_name();
        info.fallbacks = state.fallbacks();
        info.hedges = state.hedges();
        info.errors = state.errors();
        info.attempt_log = state.attempt_log();
        info.model = std::string(requested_model);
        for (auto it = info.attempt_log.rbegin(); it != info.attempt_log.rend(); ++it) {
            // The answering attempt; for a failed call, the last one on the call's last route.
            if (it->route == info.route && (info.failed || !it->failure)) {
                info.model = it->model;
                break;
            }
        }
    }

    static void report_call(const call_context& ctx, const call_info& info) {
        if (ctx.events) ctx.events->on_call(event_source{"client", info.route}, info);
    }

    /// Records a failed attempt's error for the call's report, and passes it on.
    static error note(call_context& ctx, error e) {
        ctx.state->note_error(e);
        return e;
    }

    /// Every error an attempt ends with passes here, whatever made it: the key is taken out of
    /// every string in it, then the call's report records it.
    static error failed(call_context& ctx, const error& e, std::string_view secret) {
        return note(ctx, redacted(e, secret));
    }

    /// The HTTP request for one attempt: its route's endpoint and model, the time it may take.
    std::optional<http_request> prepare(call_context& ctx, http_method method, std::string_view path,
                                        const prepared_body& body, bool streamed) const {
        const endpoint& ep = ctx.route && ctx.route->endpoint ? *ctx.route->endpoint : options_;
        http_request req;
        req.method = method;
        std::string_view base = ep.base_url;
        while (!base.empty() && base.back() == '/') base.remove_suffix(1);
        req.url.reserve(base.size() + path.size());
        req.url.append(base).append(path);
        if (&ep == &options_) {
            req.headers = streamed ? stream_headers_ : json_headers_;
        } else {
            req.headers = headers_for(ep, streamed ? "text/event-stream" : "application/json", options_.user_agent);
        }
        if (!ctx.headers.empty()) merge_headers(req.headers, ctx.headers);
        if (method == http_method::post) req.body = body.for_model(ctx.effective_model());
        req.connect_timeout = options_.connect_timeout;
        std::optional<clock::duration> timeout = ctx.attempt_timeout;
        if (ctx.deadline.is_set()) {
            const auto left = ctx.deadline.remaining();
            if (left <= clock::duration::zero()) return std::nullopt;
            timeout = timeout ? std::min(*timeout, left) : left;
        }
        if (!timeout) timeout = options_.timeout;
        // Round up, so a deadline a fraction of a millisecond away is not a zero ("no limit") timeout.
        req.timeout = std::chrono::ceil<std::chrono::milliseconds>(*timeout);
        req.cancel = ctx.cancel;
        return req;
    }

    const std::string& secret_for(const call_context& ctx) const {
        return ctx.route && ctx.route->endpoint ? ctx.route->endpoint->api_key : options_.api_key;
    }

    static error deadline_passed() {
        error_details d;
        d.message = "the call's deadline passed before this attempt";
        d.code = std::string(error_codes::deadline_exceeded);
        return error(error_kind::timeout, std::move(d));
    }

    /// One attempt, whatever its kind (the executor has checked that it may start): made by
    /// `send(ctx, number)` and recorded in the call's report.
    template <class T, class Send>
    result<T> attempt(call_context& ctx, Send&& send) const {
        const int number = ctx.state->begin_attempt();
        auto seen = std::make_shared<reply_observation>();
        const auto started = timing_.clock->now();
        if (ctx.events) {
            const event_source from = detail::source(ctx, "client");
            ctx.events->on_attempt_start(from, attempt_start{number, from.route, ctx.effective_model()});
        }
        std::optional<result<T>> out;
        try {
            out.emplace(send(ctx, number, *seen));
        } catch (...) {
            // An exception (a stream callback's, say) still ends the attempt for the report and the
            // sink, which pairs it with its start (metrics count what is in flight); then it goes on.
            end_attempt(ctx, number, *seen, started, error(error_kind::cancelled, "an exception left the attempt"));
            throw;
        }
        end_attempt(ctx, number, *seen, started, *out ? std::nullopt : std::optional<error>(out->error()));
        out->set_observation(std::move(seen));
        return std::move(*out);
    }

    /// Records an ended attempt in the call's report and tells the call's sink.
    void end_attempt(call_context& ctx, int number, const reply_observation& seen, clock::time_point started,
                     std::optional<error> failure) const {
        attempt_record record;
        record.number = number;
        if (ctx.route) record.route = ctx.route->name;
        record.model = std::string(ctx.effective_model());
        record.status = seen.status;
        record.latency = seen.latency.count() > 0
                             ? seen.latency
                             : std::chrono::duration_cast<std::chrono::microseconds>(timing_.clock->now() - started);
        if (seen.delivered) {
            record.time_to_first_token = seen.latency;
            record.generation_time = seen.generation_time;
        }
        record.content_chunks = seen.content_chunks;
        record.failure = std::move(failure);
        if (ctx.events) ctx.events->on_attempt(detail::source(ctx, "client"), record);
        ctx.state->note_attempt(std::move(record));
    }

    template <class T>
    result<T> unary(call_context& ctx, http_method method, std::string_view path, const prepared_body& body,
                    const char* required_field) const {
        return attempt<T>(ctx, [&](call_context& at, int, reply_observation& seen) {
            return unary_attempt<T>(at, seen, method, path, body, required_field);
        });
    }

    template <class T>
    result<T> unary_attempt(call_context& ctx, reply_observation& seen, http_method method, std::string_view path,
                            const prepared_body& body, const char* required_field) const {
        auto req = prepare(ctx, method, path, body, false);
        if (!req) return note(ctx, deadline_passed());
        const auto& secret = secret_for(ctx);
        body_collector sink(options_.max_response_bytes, detail::error_read_limit);
        const auto started = timing_.clock->now();
        auto head = transport_.send(*req, sink);
        seen.latency = std::chrono::duration_cast<std::chrono::microseconds>(timing_.clock->now() - started);
        if (sink.overflowed()) {
            if (sink.status() >= 200 && sink.status() < 300)
                return failed(ctx, detail::size_limit_error(error_codes::response_too_large, "the reply", sink.limit()),
                              secret);
            head = sink.error_head();  // an error reply, read as far as it is kept
        }
        if (!head) return failed(ctx, head.error(), secret);
        seen.status = head->status;
        seen.headers = std::move(head->headers);
        const auto& headers = seen.headers;
        if (head->status < 200 || head->status >= 300)
            return failed(
                ctx, detail::status_error(head->status, headers, sink.body, secret, timing_.clock->wall_now()), secret);

        T value;
        if (!detail::read_json(sink.body, value, required_field)) {
            error_details d;
            d.status = head->status;
            d.message = "the reply is not the JSON expected (no \"" + std::string(required_field) +
                        "\"): " + detail::truncate_utf8(sink.body, 200);
            d.body = detail::truncate_utf8(sink.body, detail::error_body_limit);
            d.request_id = std::string(headers.get("x-request-id"));
            return failed(ctx, error(error_kind::invalid_response, std::move(d)), secret);
        }
        value.call.request_id = std::string(headers.get("x-request-id"));
        if constexpr (std::is_same_v<T, chat_response> || std::is_same_v<T, embedding_response>)
            seen.usage = value.usage;
        return value;
    }

    template <class Deliver>
    result<chat_response> streamed(call_context& ctx, const prepared_body& body, Deliver& deliver,
                                   clock::time_point call_started) const {
        return attempt<chat_response>(
            ctx, [&](call_context& at, int id, reply_observation& seen) -> result<chat_response> {
                auto req = prepare(at, http_method::post, "/chat/completions", body, true);
                if (!req) return note(at, deadline_passed());
                const auto& secret = secret_for(at);
                detail::chat_stream_sink sink(at, id, seen, deliver, secret, call_started, *timing_.clock,
                                              {options_.max_response_bytes, options_.max_event_bytes});
                auto out = sink.finish(transport_.send(*req, sink));
                if (!out) return failed(at, out.error(), secret);
                return out;
            });
    }

    static error redacted(const error& e, std::string_view secret) {
        error_details d = e.details();
        if (d.message.empty()) d.message = e.what();
        detail::redact_details(d, secret);
        return error(e.kind(), std::move(d));
    }

    client_options options_;
    Policy policy_;
    Transport transport_;
    sturdy::timing timing_;
    header_list json_headers_, stream_headers_;
};

}  // namespace sturdy

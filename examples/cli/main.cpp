// sturdy: a command-line client for OpenAI-compatible APIs, and an example of the library.
//
//   sturdy chat   [options] PROMPT
//   sturdy models [options]
//   sturdy embed  [options] TEXT...
//
// `sturdy --help` (arguments.cpp) documents the options and output formats. The output is a
// contract for scripts: results on stdout; on failure, exit status 1 and exactly one line
//
//   error: KIND [STATUS]: MESSAGE
//
// on stderr (sturdy::error::what() has that form); exit status 2 for a usage error.
#include "arguments.hpp"

#include <sturdy/sturdy.hpp>

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using sturdy_cli::arguments;
using sturdy_cli::command;

// JSON we print keeps its keys in the order written, as --help lists them.
using ordered_json = nlohmann::ordered_json;
// Embedding vectors are float32. A JSON type whose numbers are floats prints each one in its
// shortest exact form ("0.1"), where converting to double would print "0.10000000149011612".
using float_json = nlohmann::basic_json<nlohmann::ordered_map, std::vector, std::string, bool, std::int64_t,
                                        std::uint64_t, float>;

/// stdout, remembering whether a line was left open, so that an error after streamed text can
/// finish that line first. Everything printed has the API key taken out (a server or a model may
/// echo it), and on a terminal, a reply's control characters are written out rather than obeyed.
class output {
public:
    explicit output(std::string secret = {}) : secret_(std::move(secret)), terminal_(isatty(STDOUT_FILENO) == 1) {}

    /// Writes `text` at once (a streamed chunk).
    void write(std::string_view text) {
        if (text.empty()) return;
        std::cout << shown(text) << std::flush;
        open_line_ = text.back() != '\n';
    }
    void line(std::string_view text) {
        std::cout << shown(text) << '\n';
        open_line_ = false;
    }
    void end_open_line() {
        if (open_line_) line("");
    }

private:
    std::string shown(std::string_view text) const {
        std::string safe = sturdy::redact(text, secret_);
        return terminal_ ? sturdy::printable(safe) : safe;
    }

    std::string secret_;
    bool terminal_;
    bool open_line_ = false;
};

/// One line of JSON. Invalid UTF-8 (a model may produce it) is replaced rather than thrown on.
template <class Json>
std::string dump(const Json& j) {
    return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

/// `text` with its line breaks turned into spaces: an error is one line on stderr.
std::string one_line(std::string text) {
    for (char& c : text)
        if (c == '\n' || c == '\r') c = ' ';
    return text;
}

double to_ms(std::chrono::microseconds d) { return static_cast<double>(d.count()) / 1000.0; }

/// A string field, or null when the server left it out.
template <class Json>
Json string_or_null(const std::string& s) {
    return s.empty() ? Json(nullptr) : Json(s);
}

template <class Json>
Json usage_json(const std::optional<sturdy::token_usage>& usage, bool with_completion) {
    if (!usage) return nullptr;
    Json j;
    j["prompt_tokens"] = usage->prompt_tokens;
    if (with_completion) j["completion_tokens"] = usage->completion_tokens;  // embeddings have none
    j["total_tokens"] = usage->total_tokens;
    return j;
}

/// --model, else $OPENAI_MODEL, else the command's default.
std::string model_for(const arguments& args, const char* fallback) {
    if (args.model) return *args.model;
    const char* env = std::getenv("OPENAI_MODEL");
    return env && *env ? env : fallback;
}

// The policy is chosen at run time (a fallback chain or not), so the client holds any policy.
using cli_client = sturdy::basic_client<sturdy::curl_transport, sturdy::any_policy>;

sturdy::backoff backoff_for(sturdy_cli::jitter j) {
    using namespace std::chrono_literals;
    switch (j) {
        case sturdy_cli::jitter::full: return sturdy::backoff::full_jitter(500ms, 8s);
        case sturdy_cli::jitter::equal: return sturdy::backoff::equal_jitter(500ms, 8s);
        case sturdy_cli::jitter::decorrelated: return sturdy::backoff::decorrelated_jitter(500ms, 8s);
        case sturdy_cli::jitter::official: break;
    }
    return sturdy::backoff::official();
}

/// Retries for each model; with --fallback, a chain of models on the same base URL, each with
/// its own retries, moving on when a model's retries are spent.
sturdy::any_policy policy_for(const arguments& args, const std::string& model) {
    sturdy::retry_options retry;
    retry.max_retries = args.max_retries;
    retry.backoff = backoff_for(args.retry_jitter);
    const sturdy::retry_policy retries(retry);
    if (args.fallback_models.empty()) return retries;
    std::vector<sturdy::fallback_target> chain;
    chain.push_back(sturdy::fallback_target(model, model).with_policy(retries));
    for (const auto& fallback : args.fallback_models) chain.push_back(sturdy::fallback_target(fallback, fallback).with_policy(retries));
    return sturdy::fallback_policy(std::move(chain));
}

/// The environment's settings (OPENAI_BASE_URL, OPENAI_API_KEY...), then the command line's.
sturdy::client_options options_for(const arguments& args) {
    auto options = sturdy::client_options::from_env();
    if (args.base_url) options.base_url = *args.base_url;
    if (args.api_key) options.api_key = *args.api_key;
    return options;
}

sturdy::request_options call_options(const arguments& args) {
    sturdy::request_options call;
    // A bound on the whole call: every attempt, retry wait and stream (it also replaces the
    // client's default per-attempt limit of 600 s).
    if (args.timeout) call.total_timeout = *args.timeout;
    call.idle_timeout = args.idle_timeout;
    call.first_token_timeout = args.first_token_timeout;
    return call;
}

void chat(const cli_client& client, const arguments& args, output& out) {
    sturdy::chat_request request(model_for(args, "gpt-4o-mini"), {});
    if (args.system) request.messages.push_back(sturdy::chat_message::system(*args.system));
    request.messages.push_back(sturdy::chat_message::user(args.inputs.front()));
    request.max_tokens = args.max_tokens;
    request.temperature = args.temperature;
    request.seed = args.seed;

    sturdy::chat_response reply;
    if (args.stream) {
        // Usage comes in a last chunk, only when asked for; only --json prints it.
        if (args.json) {
            sturdy::chat_stream_options stream_options;
            stream_options.include_usage = true;
            request.stream_options = stream_options;
        }
        // The client retries a stream only until its first content reaches this callback, so
        // nothing is printed twice. With --json, the object at the end is the only output.
        reply = client.stream(
            request,
            [&](const sturdy::chat_chunk& chunk) {
                if (!args.json) out.write(chunk.content());
            },
            call_options(args));
    } else {
        reply = client.chat(request, call_options(args));
    }

    if (!args.json) {
        if (args.stream) out.line("");  // the text is out already
        else out.line(reply.content());
        return;
    }
    ordered_json j;
    j["content"] = reply.content();
    // The model that answered: the server's word for it, else the fallback target's name.
    j["model"] = string_or_null<ordered_json>(reply.model.empty() ? reply.call.route : reply.model);
    j["finish_reason"] = string_or_null<ordered_json>(reply.finish_reason());
    j["usage"] = usage_json<ordered_json>(reply.usage, true);
    j["latency_ms"] = to_ms(reply.call.latency);
    j["attempts"] = reply.call.attempts;
    j["fallbacks"] = reply.call.fallbacks;
    if (args.stream) {
        const auto& ttft = reply.call.time_to_first_token;
        j["ttft_ms"] = ttft ? ordered_json(to_ms(*ttft)) : ordered_json(nullptr);
    }
    out.line(dump(j));
}

void models(const cli_client& client, const arguments& args, output& out) {
    const sturdy::model_list list = client.models(call_options(args));
    if (args.json) {
        const nlohmann::json j = list;  // sturdy's types convert to and from nlohmann::json
        out.line(dump(j));
        return;
    }
    for (const auto& model : list.data) out.line(model.id);
}

void embed(const cli_client& client, const arguments& args, output& out) {
    sturdy::embedding_request request(model_for(args, "text-embedding-3-small"), args.inputs);
    request.dimensions = args.dimensions;
    const sturdy::embedding_response reply = client.embed(request, call_options(args));

    if (args.json) {
        float_json data = float_json::array();
        for (const auto& e : reply.data) data.push_back({{"index", e.index}, {"embedding", e.values}});
        float_json j;
        j["model"] = string_or_null<float_json>(reply.model);
        j["data"] = std::move(data);
        j["usage"] = usage_json<float_json>(reply.usage, false);
        out.line(dump(j));
        return;
    }
    // INDEX DIMENSIONS V0 V1 V2 V3 ...
    constexpr std::size_t shown = 4;
    for (const auto& e : reply.data) {
        std::ostringstream line;
        line << e.index << ' ' << e.values.size() << std::fixed << std::setprecision(4);
        for (std::size_t i = 0; i < e.values.size() && i < shown; ++i) line << ' ' << e.values[i];
        if (e.values.size() > shown) line << " ...";
        out.line(line.str());
    }
}

}  // namespace

int main(int argc, char** argv) {
    arguments args;
    try {
        args = sturdy_cli::parse_arguments(argc, argv);
    } catch (const sturdy_cli::usage_error& e) {
        std::cerr << "error: usage: " << one_line(e.what()) << " (see sturdy --help)\n";
        return 2;
    }
    if (args.help) {
        std::cout << sturdy_cli::help_text << std::flush;
        return 0;
    }

    auto options = options_for(args);
    output out(options.api_key);
    try {
        const std::string model = model_for(args, args.what == command::embed ? "text-embedding-3-small" : "gpt-4o-mini");
        const cli_client client(std::move(options), policy_for(args, model));
        switch (args.what) {
            case command::chat: chat(client, args, out); break;
            case command::models: models(client, args, out); break;
            case command::embed: embed(client, args, out); break;
        }
    } catch (const sturdy::error& e) {
        // Streamed text stays printed; the error goes on a line of its own.
        out.end_open_line();
        std::cout.flush();
        // what() reads "KIND [STATUS]: MESSAGE"; the library keeps the API key out of it.
        std::cerr << "error: " << one_line(e.what()) << '\n';
        return 1;
    } catch (const std::exception& e) {
        out.end_open_line();
        std::cout.flush();
        std::cerr << "error: unexpected: " << one_line(sturdy::printable(e.what())) << '\n';
        return 1;
    }
    if (!std::cout.flush()) {
        std::cerr << "error: output: cannot write to stdout\n";
        return 1;
    }
    return 0;
}

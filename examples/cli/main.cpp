// sturdy: a command-line client for OpenAI-compatible APIs, and an example of the library.
//
//   sturdy chat   [options] PROMPT
//   sturdy models [options]
//   sturdy embed  [options] TEXT...
//   sturdy bench  [options] PROMPT
//
// `sturdy --help` (arguments.cpp) documents the options and output formats. The output is a
// contract for scripts: results on stdout; on failure, exit status 1 and exactly one line
//
//   error: KIND [STATUS]: MESSAGE
//
// on stderr (sturdy::error::what() has that form); exit status 2 for a usage error.
#include "arguments.hpp"
#include "bench.hpp"
#include "client_setup.hpp"
#include "output.hpp"

#include <sturdy/sturdy.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <exception>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace {

using sturdy_cli::arguments;
using sturdy_cli::call_options;
using sturdy_cli::chat_request_for;
using sturdy_cli::cli_client;
using sturdy_cli::command;
using sturdy_cli::cost_of;
using sturdy_cli::dump;
using sturdy_cli::model_for;
using sturdy_cli::one_line;
using sturdy_cli::options_for;
using sturdy_cli::output;
using sturdy_cli::policy_for;
using sturdy_cli::to_ms;

// JSON we print keeps its keys in the order written, as --help lists them.
using ordered_json = nlohmann::ordered_json;
// Embedding vectors are float32. A JSON type whose numbers are floats prints each one in its
// shortest exact form ("0.1"), where converting to double would print "0.10000000149011612".
using float_json = nlohmann::basic_json<nlohmann::ordered_map, std::vector, std::string, bool, std::int64_t,
                                        std::uint64_t, float>;

/// A string field, or null when the server left it out.
template <class Json>
Json string_or_null(const std::string& s) {
    return s.empty() ? Json(nullptr) : Json(s);
}

/// The usage, with the cached and reasoning tokens when the server reported some (in whichever
/// provider's form: token_usage reads them all).
template <class Json>
Json usage_json(const std::optional<sturdy::token_usage>& usage, bool with_completion) {
    if (!usage) return nullptr;
    Json j;
    j["prompt_tokens"] = usage->prompt_tokens;
    if (with_completion) j["completion_tokens"] = usage->completion_tokens;  // embeddings have none
    j["total_tokens"] = usage->total_tokens;
    if (const auto cached = usage->cached_prompt_tokens(); cached > 0) j["cached_tokens"] = cached;
    if (const auto reasoning = usage->reasoning_tokens(); reasoning > 0) j["reasoning_tokens"] = reasoning;
    return j;
}

template <class Json>
Json cost_json(const arguments& args, const sturdy::call_info& call, const std::optional<sturdy::token_usage>& usage) {
    const auto cost = cost_of(args, call, usage);
    return cost ? Json(*cost) : Json(nullptr);
}

/// The client of chat, models or embed, for --model or the command's default model.
cli_client client_for(const arguments& args, sturdy::client_options options) {
    const char* default_model =
        args.what == command::embed ? sturdy_cli::default_embedding_model : sturdy_cli::default_chat_model;
    return cli_client(std::move(options), policy_for(args, model_for(args, default_model)));
}

void chat(const cli_client& client, const arguments& args, output& out) {
    sturdy::chat_request request = chat_request_for(args, model_for(args, sturdy_cli::default_chat_model));

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
    j["cost_usd"] = cost_json<ordered_json>(args, reply.call, reply.usage);
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
    sturdy::embedding_request request(model_for(args, sturdy_cli::default_embedding_model), args.inputs);
    request.dimensions = args.dimensions;
    const sturdy::embedding_response reply = client.embed(request, call_options(args));

    if (args.json) {
        float_json data = float_json::array();
        for (const auto& e : reply.data) data.push_back({{"index", e.index}, {"embedding", e.values}});
        float_json j;
        j["model"] = string_or_null<float_json>(reply.model);
        j["data"] = std::move(data);
        j["usage"] = usage_json<float_json>(reply.usage, false);
        // As a float, like every number here: 7 significant digits, plenty for a cost.
        j["cost_usd"] = cost_json<float_json>(args, reply.call, reply.usage);
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
    sturdy::client_options options;
    try {
        args = sturdy_cli::parse_arguments(argc, argv);
        if (args.help) {
            std::cout << sturdy_cli::help_text << std::flush;
            return 0;
        }
        options = options_for(args);  // reads --prices FILE
    } catch (const sturdy_cli::usage_error& e) {
        std::cerr << "error: usage: " << one_line(e.what()) << " (see sturdy --help)\n";
        return 2;
    }

    output out(options.api_key);
    try {
        switch (args.what) {
            case command::chat: chat(client_for(args, std::move(options)), args, out); break;
            case command::models: models(client_for(args, std::move(options)), args, out); break;
            case command::embed: embed(client_for(args, std::move(options)), args, out); break;
            case command::bench: sturdy_cli::bench(args, options, out); break;  // a client per target
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

#include "arguments.hpp"

#include <charconv>
#include <cmath>
#include <ios>
#include <limits>
#include <locale>
#include <sstream>
#include <string_view>
#include <system_error>

namespace sturdy_cli {

const char* const help_text = R"(Usage:
  sturdy chat   [options] PROMPT
  sturdy models [options]
  sturdy embed  [options] TEXT...
  sturdy bench  [options] PROMPT

A command-line client for OpenAI-compatible APIs, built on the sturdy library.

Commands:
  chat     send PROMPT as a user message; print the reply, then a newline
  models   print the id of each model the server offers, one per line
  embed    embed each TEXT; print one line per TEXT:
             INDEX DIMENSIONS V0 V1 V2 V3 ...
           the first four values with 4 decimals, "..." if there are more
  bench    send PROMPT --requests times to each target, --concurrency calls
           at a time; print a table per target: requests, errors by kind,
           error rate, latency (and with --stream, time to first token)
           p50/p95/p99 and mean in ms, tokens/s, tokens and cost

Options go anywhere after `sturdy`, as --opt VALUE or --opt=VALUE; the last
one given wins, and those that do not apply to the command are ignored.
  --base-url URL     base URL of the API (default: $OPENAI_BASE_URL,
                     else https://api.openai.com/v1)
  --api-key KEY      the API key (default: $OPENAI_API_KEY)
  --model NAME       the model (default: $OPENAI_MODEL, else gpt-4o-mini for
                     chat and bench, text-embedding-3-small for embed)
  --system TEXT      chat, bench: a system message sent before PROMPT
  --stream           chat: print the reply as it arrives; bench: measure
                     streamed calls (adds the time to first token)
  --max-tokens N     chat, bench: the most tokens in the reply (N >= 1)
  --temperature X    chat, bench: the sampling temperature
  --seed N           chat, bench: the sampling seed
  --dimensions N     embed: the dimensions of each vector (N >= 1)
  --max-retries N    retries of a failed attempt (default 2), for 408, 409,
                     429, 5xx, connection errors and timeouts; a server's
                     Retry-After is honoured
  --retry-jitter J   how retries wait: official (default: 0.5 s doubling to
                     8 s, less up to 25%), full, equal or decorrelated (AWS's
                     jitters on the same scale)
  --fallback M1,M2   chat, bench: models tried in order, on the same base
                     URL, when --model fails with 429, 5xx, a timeout or a
                     connection error (each with its own retries)
  --timeout SECONDS  a limit on the whole call, retries and stream included
                     (fractions allowed: 0.5)
  --idle-timeout SECONDS
                     with --stream: the longest gap between two chunks
  --first-token-timeout SECONDS
                     with --stream: the longest wait for the first content
  --price-in USD     chat, embed, bench: US dollars per million prompt tokens.
                     Given, the --price-* options price every reply, whatever
                     its model; else the --prices table does, else sturdy's
                     built-in one. chat and bench need --price-out with it
  --price-cached-in USD
                     per million prompt tokens read from a cache (default:
                     --price-in)
  --price-out USD    per million completion tokens, reasoning included
  --prices FILE      a JSON price table: {"models": {"MODEL": {"input": USD,
                     "cached_input": USD, "output": USD}, ...}}
  --requests N       bench: calls per target (default 20, at most 1000000)
  --concurrency C    bench: calls in flight (default 4, at most 256)
  --target NAME=BASE_URL[,MODEL]
                     bench: a server to measure, MODEL defaulting as --model
                     does; repeatable, in order. Without it, one target,
                     "default": --base-url and --model
  --json             print the result as one JSON object on one line
  -h, --help         print this help and exit
  --                 end of options: what follows is PROMPT or TEXT, even "-x"

JSON output (--json):
  chat    {"content", "model", "finish_reason", "usage", "latency_ms",
          "attempts", "fallbacks", "cost_usd"}, and "ttft_ms" (time to
          first token) with --stream, which then prints nothing before the
          object. usage is {"prompt_tokens", "completion_tokens",
          "total_tokens"}, plus "cached_tokens" and "reasoning_tokens" when
          the server reported some, or null; model is the model that
          answered; fallbacks, how many times the call moved on to a
          --fallback model; cost_usd, in US dollars, null when no price is
          known.
  models  the server's list: {"data": [{"id", "object", "created",
          "owned_by"}, ...], "object"}
  embed   {"model", "data": [{"index", "embedding": [...]}, ...], "usage",
          "cost_usd"}
  bench   {"targets": [{"name", "base_url", "model", "requests",
          "errors": {KIND: COUNT}, "error_rate", "latency_ms": {"p50", "p95",
          "p99", "mean"}, "ttft_ms": {...} with --stream else null,
          "tokens_per_s", "prompt_tokens", "completion_tokens", "cost_usd"}]}

bench statistics are over the calls that succeeded; a value is null when
none did (cost_usd: when a reply's price or tokens are unknown). pN is the
nearest rank: the ceil(N/100 * n)-th smallest of n latencies (p95 of 50
calls is the 48th). tokens_per_s: completion tokens divided by the time
spent producing them (with --stream, from the first token on), summed over
the calls. Latency and TTFT include retries.

Environment: OPENAI_BASE_URL, OPENAI_API_KEY, OPENAI_ORG_ID, OPENAI_PROJECT_ID,
OPENAI_MODEL (see the options above).

Exit status:
  0  success; for bench, the calls were made, whatever their errors
  1  the call failed; stderr has one line:  error: KIND [STATUS]: MESSAGE
     KIND: rate_limit, authentication, timeout, connection, stream_truncated...
     [STATUS]: the HTTP status, when there was one. Streamed text stays.
  2  a usage error; stderr has one line:  error: usage: ...
)";

namespace {

[[noreturn]] void fail(std::string_view option, std::string_view problem) {
    throw usage_error(std::string(option) + " " + std::string(problem));
}

template <class Int>
Int to_integer(std::string_view option, const std::string& text, Int min, const char* expected,
               Int max = std::numeric_limits<Int>::max()) {
    Int value{};
    const char* end = text.data() + text.size();
    const auto parsed = std::from_chars(text.data(), end, value);
    if (parsed.ec != std::errc() || parsed.ptr != end || value < min || value > max) fail(option, expected);
    return value;
}

// std::from_chars for double is missing from older standard libraries (libc++ before 20), and
// strtod follows the C locale and accepts hex, "inf" and leading spaces: a classic-locale stream
// read that must consume everything is portable and strict.
double to_number(std::string_view option, const std::string& text) {
    std::istringstream in(text);
    in.imbue(std::locale::classic());
    double value = 0;
    in >> std::noskipws >> value;
    if (text.empty() || in.fail() || !in.eof() || !std::isfinite(value)) fail(option, "needs a number");
    return value;
}

std::string not_empty(std::string_view option, const std::string& text) {
    if (text.empty()) fail(option, "needs a non-empty value");
    return text;
}

double to_price(std::string_view option, const std::string& text) {
    const double usd = to_number(option, text);
    if (usd < 0) fail(option, "needs a price in US dollars >= 0");
    return usd;
}

std::chrono::milliseconds to_timeout(std::string_view option, const std::string& text) {
    const double seconds = to_number(option, text);
    constexpr double most = 1e6;  // 11 days: far beyond any call, far from overflowing a clock
    if (!(seconds > 0) || seconds > most) fail(option, "needs a number of seconds > 0 and <= 1000000");
    // Rounded up, so that a tiny timeout is not a zero one.
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(seconds * 1000)));
}

jitter to_jitter(std::string_view option, const std::string& text) {
    if (text == "official") return jitter::official;
    if (text == "full") return jitter::full;
    if (text == "equal") return jitter::equal;
    if (text == "decorrelated") return jitter::decorrelated;
    fail(option, "needs one of: official, full, equal, decorrelated");
}

// "a,b,c": one or more model names, none empty.
std::vector<std::string> to_models(std::string_view option, const std::string& text) {
    std::vector<std::string> models;
    std::string_view rest = text;
    for (;;) {
        const auto comma = rest.find(',');
        const std::string_view name = rest.substr(0, comma);
        if (name.empty()) fail(option, "needs model names separated by commas, none empty");
        models.emplace_back(name);
        if (comma == std::string_view::npos) return models;
        rest.remove_prefix(comma + 1);
    }
}

// "NAME=BASE_URL[,MODEL]", none empty. Names are unique: they label the results.
bench_target to_target(std::string_view option, const std::string& text, const std::vector<bench_target>& earlier) {
    const auto equals = text.find('=');
    const auto comma = text.find(',', equals == std::string::npos ? 0 : equals);
    bench_target target;
    target.name = text.substr(0, equals);
    if (equals != std::string::npos) target.base_url = text.substr(equals + 1, comma - equals - 1);
    if (comma != std::string::npos) target.model = text.substr(comma + 1);
    if (target.name.empty() || target.base_url.empty() || (target.model && target.model->empty()))
        fail(option, "needs NAME=BASE_URL or NAME=BASE_URL,MODEL, none empty");
    for (const auto& other : earlier)
        if (other.name == target.name) fail(option, "needs a NAME of its own for each target");
    return target;
}

struct option {
    std::string_view name;
    bool takes_value;
    void (*apply)(arguments&, std::string_view name, const std::string& value);
};

// One option a line, wrapped by hand where long.
// clang-format off
const option options[] = {
    {"--base-url", true, [](arguments& a, std::string_view n, const std::string& v) { a.base_url = not_empty(n, v); }},
    {"--api-key", true, [](arguments& a, std::string_view, const std::string& v) { a.api_key = v; }},
    {"--model", true, [](arguments& a, std::string_view n, const std::string& v) { a.model = not_empty(n, v); }},
    {"--system", true, [](arguments& a, std::string_view, const std::string& v) { a.system = v; }},
    {"--stream", false, [](arguments& a, std::string_view, const std::string&) { a.stream = true; }},
    {"--max-tokens", true, [](arguments& a, std::string_view n, const std::string& v) {
        a.max_tokens = to_integer(n, v, 1, "needs a whole number >= 1"); }},
    {"--temperature", true, [](arguments& a, std::string_view n, const std::string& v) { a.temperature = to_number(n, v); }},
    {"--seed", true, [](arguments& a, std::string_view n, const std::string& v) {
        a.seed = to_integer(n, v, std::numeric_limits<std::int64_t>::min(), "needs a whole number"); }},
    {"--dimensions", true, [](arguments& a, std::string_view n, const std::string& v) {
        a.dimensions = to_integer(n, v, 1, "needs a whole number >= 1"); }},
    {"--max-retries", true, [](arguments& a, std::string_view n, const std::string& v) {
        a.max_retries = to_integer(n, v, 0, "needs a whole number >= 0"); }},
    {"--timeout", true, [](arguments& a, std::string_view n, const std::string& v) { a.timeout = to_timeout(n, v); }},
    {"--idle-timeout", true, [](arguments& a, std::string_view n, const std::string& v) { a.idle_timeout = to_timeout(n, v); }},
    {"--first-token-timeout", true, [](arguments& a, std::string_view n, const std::string& v) {
        a.first_token_timeout = to_timeout(n, v); }},
    {"--retry-jitter", true, [](arguments& a, std::string_view n, const std::string& v) { a.retry_jitter = to_jitter(n, v); }},
    {"--fallback", true, [](arguments& a, std::string_view n, const std::string& v) { a.fallback_models = to_models(n, v); }},
    {"--price-in", true, [](arguments& a, std::string_view n, const std::string& v) {
        a.price_input = to_price(n, v); }},
    {"--price-cached-in", true, [](arguments& a, std::string_view n, const std::string& v) {
        a.price_cached_input = to_price(n, v); }},
    {"--price-out", true, [](arguments& a, std::string_view n, const std::string& v) {
        a.price_output = to_price(n, v); }},
    {"--prices", true, [](arguments& a, std::string_view n, const std::string& v) { a.prices_file = not_empty(n, v); }},
    {"--requests", true, [](arguments& a, std::string_view n, const std::string& v) {
        a.requests = to_integer(n, v, 1, "needs a whole number from 1 to 1000000", 1'000'000); }},
    {"--concurrency", true, [](arguments& a, std::string_view n, const std::string& v) {
        a.concurrency = to_integer(n, v, 1, "needs a whole number from 1 to 256", 256); }},
    {"--target", true, [](arguments& a, std::string_view n, const std::string& v) {
        a.targets.push_back(to_target(n, v, a.targets)); }},
    {"--json", false, [](arguments& a, std::string_view, const std::string&) { a.json = true; }},
};
// clang-format on

const option* find_option(std::string_view name) {
    for (const auto& o : options)
        if (o.name == name) return &o;
    return nullptr;
}

// A price needs its prompt price, and where replies have completions, their price too: a price
// left out would silently count those tokens as free.
void check_price(const arguments& args) {
    const bool priced = args.price_input || args.price_cached_input || args.price_output;
    if (!priced) return;
    if (!args.price_input) fail("--price-cached-in and --price-out", "need --price-in");
    if (args.what != command::embed && !args.price_output) fail("--price-in", "needs --price-out for chat and bench");
}

}  // namespace

arguments parse_arguments(int argc, const char* const* argv) {
    arguments args;
    // --help wins over everything else on the line, even over mistakes.
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--") break;
        if (arg == "--help" || arg == "-h") {
            args.help = true;
            return args;
        }
    }

    std::vector<std::string> words;  // the command, then its PROMPT or TEXTs
    bool options_ended = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        // "-" alone is a word, as is everything after "--".
        if (options_ended || arg.size() < 2 || arg[0] != '-') {
            words.emplace_back(arg);
            continue;
        }
        if (arg == "--") {
            options_ended = true;
            continue;
        }
        const auto equals = arg.find('=');
        const std::string_view name = arg.substr(0, equals);
        const option* opt = find_option(name);
        if (!opt) fail("unknown option", name);
        std::string value;
        if (!opt->takes_value) {
            if (equals != std::string_view::npos) fail(name, "takes no value");
        } else if (equals != std::string_view::npos) {
            value = std::string(arg.substr(equals + 1));
        } else if (i + 1 < argc) {
            value = argv[++i];  // the next argument, whatever it looks like (as getopt does)
        } else {
            fail(name, "needs a value");
        }
        opt->apply(args, name, value);
    }

    if (words.empty()) throw usage_error("missing command: chat, models, embed or bench");
    const std::string& name = words.front();
    args.inputs.assign(words.begin() + 1, words.end());
    if (name == "chat" || name == "bench") {
        args.what = name == "chat" ? command::chat : command::bench;
        if (args.inputs.empty()) throw usage_error(name + " needs a PROMPT");
        if (args.inputs.size() > 1) throw usage_error(name + " takes one PROMPT: quote it if it has spaces");
    } else if (name == "models") {
        args.what = command::models;
        if (!args.inputs.empty()) throw usage_error("models takes no arguments");
    } else if (name == "embed") {
        args.what = command::embed;
        if (args.inputs.empty()) throw usage_error("embed needs at least one TEXT");
    } else {
        throw usage_error("unknown command '" + name + "': expected chat, models, embed or bench");
    }
    if (args.what != command::models) check_price(args);
    return args;
}

}  // namespace sturdy_cli

#pragma once
// The command line of the `sturdy` tool: what it accepts, and its --help text.
//
// Deliberately small and strict: a fixed table of long options, `--opt VALUE` or `--opt=VALUE`,
// options anywhere after the program name, `--` to end them. Anything else is a usage_error.

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace sturdy_cli {

enum class command { chat, models, embed, bench };

/// How retries wait (--retry-jitter): the official SDKs' schedule, or AWS's jitter variants on
/// the same scale (0.5 s doubling to at most 8 s).
enum class jitter { official, full, equal, decorrelated };

/// A server `bench` measures (--target NAME=BASE_URL[,MODEL]).
struct bench_target {
    std::string name;
    std::string base_url;
    std::optional<std::string> model;  ///< not given: --model's default
};

/// What the command line asked for. An empty optional means "not given": a default applies.
struct arguments {
    command what = command::chat;
    std::vector<std::string> inputs;  ///< chat, bench: the PROMPT; embed: the TEXTs; models: none

    std::optional<std::string> base_url;
    std::optional<std::string> api_key;
    std::optional<std::string> model;
    std::optional<std::string> system;
    bool stream = false;
    std::optional<int> max_tokens;
    std::optional<double> temperature;
    std::optional<std::int64_t> seed;
    std::optional<int> dimensions;
    int max_retries = 2;
    jitter retry_jitter = jitter::official;
    std::optional<std::chrono::milliseconds> timeout;
    std::optional<std::chrono::milliseconds> idle_timeout;
    std::optional<std::chrono::milliseconds> first_token_timeout;
    std::vector<std::string> fallback_models;  ///< --fallback A,B: tried in order after --model
    /// US dollars per million tokens (--price-in, --price-cached-in, --price-out): one price for
    /// every reply, whatever its model. --price-in is required with the others, and for chat and
    /// bench --price-out too (checked by parse_arguments).
    std::optional<double> price_input;
    std::optional<double> price_cached_input;
    std::optional<double> price_output;
    std::optional<std::string> prices_file;  ///< --prices FILE: a JSON price table
    int requests = 20;                       ///< bench: calls per target
    int concurrency = 4;                     ///< bench: calls in flight
    std::vector<bench_target> targets;       ///< bench: --target, repeatable; none: --base-url, --model
    bool json = false;
    bool help = false;  ///< --help / -h: nothing else was checked
};

/// A command line that cannot be run. `what()` is one line, and never repeats an option's value
/// (it could be the API key).
class usage_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Parses `argv`; throws usage_error. With --help or -h anywhere before `--`, returns at once
/// with `help` set.
arguments parse_arguments(int argc, const char* const* argv);

/// The --help text.
extern const char* const help_text;

}  // namespace sturdy_cli

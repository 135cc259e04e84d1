#pragma once
// What the `sturdy` commands build from their arguments, the same way for each: the client, its
// policy, a call's options, the chat request, and what a reply cost.

#include "arguments.hpp"

#include <sturdy/sturdy.hpp>

#include <optional>
#include <string>

namespace sturdy_cli {

// The policy is chosen at run time (a fallback chain or not), so the client holds any policy.
using cli_client = sturdy::basic_client<sturdy::curl_transport, sturdy::any_policy>;

inline constexpr const char* default_chat_model = "gpt-4o-mini";
inline constexpr const char* default_embedding_model = "text-embedding-3-small";

/// --model, else $OPENAI_MODEL, else the command's default.
std::string model_for(const arguments& args, const char* fallback);

/// Retries for each model; with --fallback, a chain of models on the same base URL, each with
/// its own retries, moving on when a model's retries are spent.
sturdy::any_policy policy_for(const arguments& args, const std::string& model);

/// The environment's settings (OPENAI_BASE_URL, OPENAI_API_KEY...), then the command line's,
/// and for the commands that price replies, the --prices table. Throws usage_error when that
/// file cannot be read or is not a price table.
sturdy::client_options options_for(const arguments& args);

/// A call's limits: --timeout, --idle-timeout, --first-token-timeout.
sturdy::request_options call_options(const arguments& args);

/// PROMPT as a user message to `model`, after --system, with --max-tokens, --temperature, --seed.
sturdy::chat_request chat_request_for(const arguments& args, const std::string& model);

/// What a reply cost in US dollars: by the --price-* options when given, whatever the model
/// that answered; else as the client priced it (`call.cost_usd`, by the --prices table or the
/// built-in one). nullopt when the tokens or the price are unknown.
std::optional<double> cost_of(const arguments& args, const sturdy::call_info& call,
                              const std::optional<sturdy::token_usage>& usage);

}  // namespace sturdy_cli

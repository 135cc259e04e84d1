#include "client_setup.hpp"

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <utility>
#include <vector>

namespace sturdy_cli {

namespace {

sturdy::backoff backoff_for(jitter j) {
    using namespace std::chrono_literals;
    switch (j) {
        case jitter::full: return sturdy::backoff::full_jitter(500ms, 8s);
        case jitter::equal: return sturdy::backoff::equal_jitter(500ms, 8s);
        case jitter::decorrelated: return sturdy::backoff::decorrelated_jitter(500ms, 8s);
        case jitter::official: break;
    }
    return sturdy::backoff::official();
}

// The messages name the option, never the file: like every usage error, they repeat no value.
std::shared_ptr<const sturdy::price_table> read_prices(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    if (!file) throw usage_error("--prices cannot open its FILE");
    std::ostringstream text;
    text << file.rdbuf();  // an empty or unreadable file is then not JSON, and said so below
    try {
        return std::make_shared<const sturdy::price_table>(sturdy::price_table::parse(text.str()));
    } catch (const std::invalid_argument& e) {
        throw usage_error(std::string("--prices FILE is not a price table: ") + e.what());
    }
}

/// The --price-* options as one price; nullopt when not given.
std::optional<sturdy::model_price> price_option(const arguments& args) {
    if (!args.price_input) return std::nullopt;  // parse_arguments made sure the others come with it
    sturdy::model_price price;
    price.input = *args.price_input;
    price.cached_input = args.price_cached_input;
    price.output = args.price_output.value_or(0);  // embeddings have no completion tokens
    return price;
}

}  // namespace

std::string model_for(const arguments& args, const char* fallback) {
    if (args.model) return *args.model;
    const char* env = std::getenv("OPENAI_MODEL");
    return env && *env ? env : fallback;
}

sturdy::any_policy policy_for(const arguments& args, const std::string& model) {
    sturdy::retry_options retry;
    retry.max_retries = args.max_retries;
    retry.backoff = backoff_for(args.retry_jitter);
    const sturdy::retry_policy retries(retry);
    if (args.fallback_models.empty()) return retries;
    std::vector<sturdy::fallback_target> chain;
    chain.push_back(sturdy::fallback_target(model, model).with_policy(retries));
    for (const auto& fallback : args.fallback_models)
        chain.push_back(sturdy::fallback_target(fallback, fallback).with_policy(retries));
    return sturdy::fallback_policy(std::move(chain));
}

sturdy::client_options options_for(const arguments& args) {
    auto options = sturdy::client_options::from_env();
    if (args.base_url) options.base_url = *args.base_url;
    if (args.api_key) options.api_key = *args.api_key;
    if (args.prices_file && args.what != command::models) options.prices = read_prices(*args.prices_file);
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

sturdy::chat_request chat_request_for(const arguments& args, const std::string& model) {
    sturdy::chat_request request(model, {});
    if (args.system) request.messages.push_back(sturdy::chat_message::system(*args.system));
    request.messages.push_back(sturdy::chat_message::user(args.inputs.front()));
    request.max_tokens = args.max_tokens;
    request.temperature = args.temperature;
    request.seed = args.seed;
    return request;
}

std::optional<double> cost_of(const arguments& args, const sturdy::call_info& call,
                              const std::optional<sturdy::token_usage>& usage) {
    const auto price = price_option(args);
    if (!price) return call.cost_usd;
    if (!usage) return std::nullopt;
    return sturdy::cost_usd(*usage, *price);
}

}  // namespace sturdy_cli

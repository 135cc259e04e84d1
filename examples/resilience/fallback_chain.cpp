// A fallback chain across providers: primary, secondary and tertiary, each with its own base URL,
// key and model from the environment:
//   PRIMARY_BASE_URL   PRIMARY_API_KEY   PRIMARY_MODEL
//   SECONDARY_BASE_URL SECONDARY_API_KEY SECONDARY_MODEL
//   TERTIARY_BASE_URL  TERTIARY_API_KEY  TERTIARY_MODEL
// A provider whose BASE_URL is unset is left out. With none set, three local demo servers stand
// in: the primary is down, the secondary is rate-limited, and the tertiary answers.
#include <sturdy/sturdy.hpp>

#include <demo_server.hpp>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

namespace {

std::string env_or(const std::string& name, const std::string& fallback = {}) {
    const char* v = std::getenv(name.c_str());
    return v && *v ? v : fallback;
}

struct provider {
    std::string name;
    sturdy::endpoint endpoint;
    std::string model;
};

// PREFIX_BASE_URL, PREFIX_API_KEY, PREFIX_MODEL.
std::vector<provider> providers_from_env() {
    std::vector<provider> out;
    const std::pair<const char*, std::string> names[] = {{"primary", "PRIMARY"}, {"secondary", "SECONDARY"}, {"tertiary", "TERTIARY"}};
    for (const auto& [name, prefix] : names) {
        const std::string base_url = env_or(prefix + "_BASE_URL");
        if (base_url.empty()) continue;
        provider p{name, {}, env_or(prefix + "_MODEL", "gpt-4o-mini")};
        p.endpoint.base_url = base_url;
        p.endpoint.api_key = env_or(prefix + "_API_KEY");
        out.push_back(std::move(p));
    }
    return out;
}

}  // namespace

int main() {
    std::vector<provider> providers = providers_from_env();
    std::vector<std::unique_ptr<sturdy_demo::server>> demos;
    const bool demo_mode = providers.empty();
    if (demo_mode) {
        for (const char* name : {"primary", "secondary", "tertiary"}) {
            sturdy_demo::options o;
            o.api_key = std::string("sk-") + name;  // each server takes only its own key
            demos.push_back(std::make_unique<sturdy_demo::server>(o));
            demos.back()->start();
            provider p{name, {}, "demo-mini"};
            p.endpoint.base_url = demos.back()->base_url();
            p.endpoint.api_key = o.api_key;
            providers.push_back(std::move(p));
        }
        demos[0]->set_model_down("demo-mini", true, 503);
        demos[1]->inject(sturdy_demo::fault::status(429).retry_after(30s).times(-1));
        std::cout << "[PRIMARY_BASE_URL is not set: three local demo servers; the primary is down (503), the secondary\n"
                     " is rate-limited (429, Retry-After: 30 s), the tertiary answers]\n";
    }

    // Each provider retries on its own, once, and never sits out a long Retry-After: with another
    // provider to go to, moving on beats waiting 30 s.
    sturdy::retry_options per_provider;
    per_provider.max_retries = 1;
    per_provider.retry_after_limit = 2s;
    per_provider.beyond_limit = sturdy::long_retry_after::give_up;

    std::vector<sturdy::fallback_target> targets;
    for (const auto& p : providers)
        targets.push_back(sturdy::fallback_target(p.name, p.model, p.endpoint).with_policy(sturdy::retry_policy(per_provider)));

    sturdy::fallback_options chain;
    chain.on_fallback = [](const sturdy::fallback_event& e) {
        std::cout << "  " << e.from.name << " -> " << e.to.name << " after " << e.cause.what() << "\n";
    };
    const sturdy::fallback_policy fallback(std::move(targets), chain);

    // The client's own endpoint is not used: every target names its own. Its timeouts apply.
    sturdy::client_options options;
    options.timeout = 30s;
    const sturdy::basic_client<sturdy::curl_transport, sturdy::fallback_policy> client(options, fallback);

    auto reply = client.try_chat({providers.front().model, {sturdy::chat_message::user("Which provider answered?")}});
    if (!reply) {
        std::cerr << "every provider failed; the last error: " << reply.error().what() << "\n";
        return 1;
    }
    std::cout << reply->content() << "\n";
    std::cout << "answered by " << reply->call.route << " (" << reply->model << ") after " << reply->call.fallbacks
              << " fallback(s) and " << reply->call.attempts << " attempt(s); errors on the way:\n";
    for (const auto& e : reply->call.errors) std::cout << "  " << e.what() << "\n";
    for (const auto& s : fallback.stats())
        std::cout << "  stats " << s.name << ": calls " << s.calls << ", requests sent " << s.attempts << ", answered "
                  << s.successes << ", failed " << s.failures << ", refused " << s.refusals << ", moved on "
                  << s.fallbacks << "\n";

    if (!demo_mode) return 0;
    const bool as_expected = reply->call.route == "tertiary" && reply->call.fallbacks == 2 && reply->call.errors.size() == 3 &&
                             reply->call.errors.front().kind() == sturdy::error_kind::internal_server &&
                             reply->call.errors.back().kind() == sturdy::error_kind::rate_limit;
    std::cout << (as_expected ? "the tertiary answered, as expected\n" : "UNEXPECTED: the chain did not go as described\n");
    return as_expected ? 0 : 1;
}

// Routing policies with a real client over real sockets: a fallback chain across endpoints (each
// with its own key and model), context-window fallback, and a traffic split with a streamed shadow.
#include <sturdy/sturdy.hpp>

#include "support/catch.hpp"
#include "support/endpoints.hpp"
#include "support/script_server.hpp"

#include <demo_server.hpp>

#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using sturdy::error_kind;
using sturdy::fallback_target;
using sturdy_test::reply;

namespace {

using chain_client = sturdy::basic_client<sturdy::curl_transport, sturdy::fallback_policy>;
using split_client = sturdy::basic_client<sturdy::curl_transport, sturdy::traffic_split>;

const char* const backup_reply = R"({"id":"chatcmpl-b","object":"chat.completion","created":1,"model":"backup-model",
    "choices":[{"index":0,"message":{"role":"assistant","content":"from the backup"},"finish_reason":"stop"}]})";

using sturdy_test::endpoint_for;
using sturdy_test::options_for;

sturdy_demo::options demo_with_key(std::string key, int context_window = 4096) {
    sturdy_demo::options o;
    o.api_key = std::move(key);
    o.context_window = context_window;
    return o;
}

const sturdy::chat_request hello{"demo-mini", {sturdy::chat_message::user("Hi")}};

}  // namespace

TEST_CASE("routing: a model that is down falls back to another endpoint, which gets its own key and model", "[socket][fallback]") {
    sturdy_demo::server primary(demo_with_key("sk-primary-0123456789"));
    primary.start();
    primary.set_model_down("demo-mini", true, 503);
    sturdy_test::script_server backup;
    backup.enqueue(reply::json(200, backup_reply));

    const chain_client client(options_for(primary.base_url(), "sk-primary-0123456789"),
                              sturdy::fallback_policy({fallback_target("primary", "demo-mini"),
                                                       fallback_target("backup", "backup-model",
                                                                       endpoint_for(backup.base_url(), "sk-backup-9876543210"))}));
    auto answer = client.chat(hello);
    CHECK(answer.content() == "from the backup");
    CHECK(answer.call.route == "backup");
    CHECK(answer.call.fallbacks == 1);
    CHECK(answer.call.attempts == 2);
    REQUIRE(answer.call.errors.size() == 1);
    CHECK(answer.call.errors[0].status() == 503);
    CHECK(primary.requests_for("demo-mini") == 1);

    const auto sent = backup.requests();
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].header("authorization") == "Bearer sk-backup-9876543210");
    CHECK(nlohmann::json::parse(sent[0].body)["model"] == "backup-model");
    CHECK(sent[0].body.find("sk-primary") == std::string::npos);
}

TEST_CASE("routing: a fallback model on the same endpoint is asked for in the request body", "[socket][fallback]") {
    sturdy_demo::server demo(demo_with_key("sk-demo"));
    demo.start();
    demo.inject(sturdy_demo::fault::status(429).for_model("demo-mini").times(-1));
    const chain_client client(options_for(demo.base_url(), "sk-demo"),
                              sturdy::fallback_policy({fallback_target("mini", "demo-mini"), fallback_target("large", "demo-large")}));
    auto answer = client.chat(hello);
    CHECK(answer.model == "demo-large");  // the server saw "demo-large" in the body
    CHECK(answer.call.route == "large");
    CHECK(demo.requests_for("demo-mini") == 1);
    CHECK(demo.requests_for("demo-large") == 1);
    REQUIRE(answer.call.errors.size() == 1);
    CHECK(answer.call.errors[0].kind() == error_kind::rate_limit);
}

TEST_CASE("routing: a 400 does not fall back", "[socket][fallback]") {
    sturdy_demo::server demo;
    demo.start();
    demo.inject(sturdy_demo::fault::status(400).message("bad temperature"));
    sturdy_test::script_server backup;
    const chain_client client(options_for(demo.base_url(), "sk-demo"),
                              sturdy::fallback_policy({fallback_target("primary", "demo-mini"),
                                                       fallback_target("backup", "m", endpoint_for(backup.base_url(), "sk-b"))}));
    auto answer = client.try_chat(hello);
    REQUIRE_FALSE(answer.has_value());
    CHECK(answer.error().kind() == error_kind::bad_request);
    CHECK(backup.requests().empty());
}

TEST_CASE("routing: when every target fails, the error lists each target's error", "[socket][fallback]") {
    sturdy_demo::server demo(demo_with_key("sk-demo"));
    demo.start();
    demo.set_model_down("demo-mini", true, 503);
    demo.inject(sturdy_demo::fault::status(429).for_model("demo-large").times(-1));
    const chain_client client(options_for(demo.base_url(), "sk-demo"),
                              sturdy::fallback_policy({fallback_target("mini", "demo-mini"), fallback_target("large", "demo-large")}));
    auto answer = client.try_chat(hello);
    REQUIRE_FALSE(answer.has_value());
    CHECK(answer.error().kind() == error_kind::rate_limit);  // the last error met
    const sturdy::call_info* report = answer.error().call();
    REQUIRE(report != nullptr);
    CHECK(report->route == "large");
    CHECK(report->fallbacks == 1);
    CHECK(report->attempts == 2);
    REQUIRE(report->errors.size() == 2);
    CHECK(report->errors[0].status() == 503);
    CHECK(report->errors[1].status() == 429);
}

TEST_CASE("routing: context_length_exceeded goes on to the target with a larger window", "[socket][fallback]") {
    sturdy_demo::server small(demo_with_key("", 5));  // prompts over 5 words are too long here
    small.start();
    sturdy_demo::server large;
    large.start();
    const auto large_endpoint = std::make_shared<const sturdy::endpoint>(endpoint_for(large.base_url(), "sk-large"));
    std::vector<std::string> skipped;
    sturdy::fallback_options opts;
    opts.on_skip = [&](const sturdy::fallback_skip_event& e) { skipped.push_back(e.target.name); };
    // Declared windows in tokens; the client estimates this prompt at 16.
    const chain_client client(options_for(small.base_url(), "sk-small"),
                              sturdy::fallback_policy({fallback_target("small", "demo-mini").with_window(32),
                                                       fallback_target("same-size", "demo-mid", large_endpoint).with_window(32),
                                                       fallback_target("large", "demo-large", large_endpoint).with_window(4096)},
                                                      opts));
    const sturdy::chat_request long_prompt{"demo-mini",
                                           {sturdy::chat_message::user("one two three four five six seven eight nine ten")}};
    auto answer = client.chat(long_prompt);
    CHECK(answer.call.route == "large");
    CHECK(answer.model == "demo-large");
    REQUIRE(answer.call.errors.size() == 1);
    CHECK(answer.call.errors[0].kind() == error_kind::context_length_exceeded);
    CHECK(skipped == std::vector<std::string>{"same-size"});
    CHECK(large.requests_for("demo-mid") == 0);
    CHECK(large.requests_for("demo-large") == 1);
}

TEST_CASE("routing: a stream falls back before its first content; the callback sees one reply", "[socket][fallback]") {
    sturdy_demo::server demo;
    demo.start();
    demo.set_model_down("demo-mini", true, 502);
    const chain_client client(options_for(demo.base_url(), "sk-demo"),
                              sturdy::fallback_policy({fallback_target("mini", "demo-mini"), fallback_target("large", "demo-large")}));
    std::string seen;
    std::set<std::string> models;
    auto answer = client.stream(hello, [&](const sturdy::chat_chunk& c) {
        seen += c.content();
        models.insert(c.model);
    });
    CHECK(seen == answer.content());
    CHECK(models == std::set<std::string>{"demo-large"});
    CHECK(answer.call.fallbacks == 1);
}

TEST_CASE("routing: a split sends the call to the arm it draws, with that arm's model", "[socket][split]") {
    sturdy_demo::server demo;
    demo.start();
    sturdy::traffic_split split({sturdy::split_arm("stable", "demo-mini").with_weight(0),
                                 sturdy::split_arm("candidate", "demo-large").with_weight(1)});
    const split_client client(options_for(demo.base_url(), "sk-demo"), split);
    auto answer = client.chat(hello);
    CHECK(answer.call.route == "candidate");
    CHECK(answer.model == "demo-large");
    split.set_weight("candidate", 0);  // the client's copy shares the weights
    split.set_weight("stable", 1);
    CHECK(client.chat(hello).call.route == "stable");
}

TEST_CASE("routing: a streamed shadow never reaches the caller's callback nor takes its commit", "[socket][split][shadow]") {
    sturdy_demo::server demo;
    demo.start();
    // The live arm is the slower one, so the shadow's stream has content first: it must not win
    // the live call's commit gate.
    demo.set_model_latency("demo-mini", 150ms);
    std::mutex mutex;
    std::vector<sturdy::shadow_event> events;
    sturdy::traffic_split_options opts;
    opts.on_shadow = [&](const sturdy::shadow_event& e) {
        std::lock_guard<std::mutex> lock(mutex);
        events.push_back(e);
    };
    sturdy::traffic_split split({sturdy::split_arm("stable", "demo-mini").with_weight(1),
                                 sturdy::split_arm("candidate", "demo-large").with_shadow(1.0)},
                                opts);
    const split_client client(options_for(demo.base_url(), "sk-demo"), split);

    std::string seen;
    std::set<std::string> models;
    int chunks = 0;
    auto answer = client.stream(hello, [&](const sturdy::chat_chunk& c) {
        ++chunks;
        seen += c.content();
        models.insert(c.model);
    });
    CHECK(answer.content() == seen);
    CHECK(seen.find("Hello from the sturdy demo server!") == 0);
    CHECK(models == std::set<std::string>{"demo-mini"});
    CHECK(chunks > 2);
    CHECK(answer.call.route == "stable");
    CHECK(answer.call.attempts == 1);
    CHECK(answer.call.errors.empty());
    CHECK(demo.requests_for("demo-large") == 1);

    REQUIRE(events.size() == 1);
    CHECK(events[0].live.ok());
    CHECK(events[0].shadow.ok());
    CHECK(events[0].shadow.arm.name == "candidate");
    CHECK(events[0].live.latency >= 150ms);
    const auto stats = split.stats();
    CHECK(stats[0].calls == 1);
    CHECK(stats[1].shadow_calls == 1);
    CHECK(stats[1].shadow_failures == 0);
}

TEST_CASE("routing: the client's event sink hears a split's rollback and shadow, named after the split and the arm",
          "[socket][split][events]") {
    sturdy_demo::server demo;
    demo.start();
    demo.set_model_down("demo-large", true, 503);
    struct split_journal final : sturdy::event_sink {
        std::mutex mutex;
        std::vector<std::string> lines;
        void on_rollback(const sturdy::event_source& from, const sturdy::rollback_event& e) override {
            add("rollback " + std::string(from.policy) + "@" + std::string(from.route) + " " + e.arm.name);
        }
        void on_shadow(const sturdy::event_source& from, const sturdy::shadow_event& e) override {
            add("shadow " + std::string(from.policy) + "@" + std::string(from.route) + " " +
                std::to_string(e.shadow.failure ? e.shadow.failure->status() : 200));
        }
        void add(std::string line) {
            std::lock_guard<std::mutex> lock(mutex);
            lines.push_back(std::move(line));
        }
    };
    auto sink = std::make_shared<split_journal>();
    auto options = options_for(demo.base_url(), "sk-demo");
    options.events = sink;
    sturdy::rollback_guard guard;
    guard.min_samples = 1;
    guard.max_error_rate = 0.5;
    sturdy::traffic_split_options opts;
    opts.name = "migration";
    const split_client client(
        options,
        sturdy::traffic_split({sturdy::split_arm("stable", "demo-mini").with_weight(1),
                               sturdy::split_arm("candidate", "demo-large").with_shadow(1.0).with_guard(guard)},
                              opts));
    auto answer = client.chat(hello);
    CHECK(answer.call.route == "stable");
    // A synchronous call's shadow has ended, and been reported, before the call returns.
    std::lock_guard<std::mutex> lock(sink->mutex);
    CHECK(sink->lines ==
          std::vector<std::string>{"rollback migration@candidate candidate", "shadow migration@candidate 503"});
}

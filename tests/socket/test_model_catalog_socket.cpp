// The model catalog with a real client over real sockets: GET /models cached with its TTL in
// virtual time, suggestions naming the endpoint, per-route lists through a fallback chain (each
// route's endpoint and key), stale-if-error when the server goes away, and one request for a
// burst of callers.
#include <sturdy/sturdy.hpp>
#include <sturdy/model_catalog.hpp>
#include <sturdy/testing/fake_clock.hpp>

#include "support/catch.hpp"
#include "support/endpoints.hpp"
#include "support/script_server.hpp"

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using sturdy::error_kind;
using sturdy::fallback_target;
using sturdy::model_catalog;
using sturdy_test::reply;

namespace {

using plain_client = sturdy::basic_client<sturdy::curl_transport, sturdy::no_policy>;
using chain_client = sturdy::basic_client<sturdy::curl_transport, sturdy::fallback_policy>;

std::string models_json(const std::vector<std::string>& ids) {
    std::string out = R"({"object":"list","data":[)";
    for (std::size_t i = 0; i < ids.size(); ++i)
        out += (i ? "," : "") + std::string(R"({"id":")") + ids[i] +
               R"(","object":"model","created":1,"owned_by":"system"})";
    return out + "]}";
}

// Answers GET /v1/models with the ids it holds (changeable while it serves), anything else 404.
struct models_server {
    sturdy_test::script_server server;
    std::mutex mutex;
    std::vector<std::string> ids;
    std::chrono::milliseconds delay{0};

    explicit models_server(std::vector<std::string> served) : ids(std::move(served)) {
        server.set_handler([this](const sturdy_test::recorded_request& req) {
            std::lock_guard<std::mutex> lock(mutex);
            if (req.method != "GET" || req.path() != "/v1/models")
                return reply::json(404, R"({"error":{"message":"no such path","type":"invalid_request_error"}})");
            auto r = reply::json(200, models_json(ids));
            if (delay.count() > 0) r.delay_headers(delay);
            return r;
        });
    }
    void serve(std::vector<std::string> served) {
        std::lock_guard<std::mutex> lock(mutex);
        ids = std::move(served);
    }
    std::size_t requests() const { return server.request_count(); }
};

using sturdy_test::endpoint_for;
using sturdy_test::options_for;

}  // namespace

TEST_CASE(
    "model catalog socket: GET /models is sent once per TTL, and a typo names the endpoint and the closest models",
    "[socket][model_catalog]") {
    models_server openai({"gpt-4o", "gpt-4o-mini", "gpt-4.1-mini", "o3", "text-embedding-3-small"});
    const sturdy::client client(options_for(openai.server.base_url(), "sk-test-0123456789"));
    sturdy::testing::fake_clock fake;
    sturdy::model_catalog_options o;
    o.ttl = 5min;
    const model_catalog catalog(client, o, fake.timing());

    auto found = catalog.validate("gpt-4o-mini");
    REQUIRE(found.has_value());
    CHECK(found->owned_by == "system");
    auto typo = catalog.validate("gpt-4o-mnii");
    REQUIRE_FALSE(typo.has_value());
    CHECK(typo.error().kind() == error_kind::not_found);
    CHECK(typo.error().code() == "model_not_found");
    CHECK(typo.error().message() ==
          "model \"gpt-4o-mnii\" is not served by 127.0.0.1:" + std::to_string(openai.server.port()) +
              "; did you mean: gpt-4o-mini, gpt-4o, gpt-4.1-mini?");
    CHECK(openai.requests() == 1);
    const auto sent = openai.server.requests();
    CHECK(sent[0].method == "GET");
    CHECK(sent[0].header("authorization") == "Bearer sk-test-0123456789");

    // After the TTL the list is read again, and a model deployed since is served.
    openai.serve({"gpt-4o", "gpt-5"});
    fake.advance(5min);
    CHECK(catalog.validate("gpt-5").has_value());
    CHECK(openai.requests() == 2);
    CHECK(catalog.validate("gpt-4o").has_value());
    CHECK(openai.requests() == 2);
}

TEST_CASE(
    "model catalog socket: per route through a fallback chain, each route's list comes from its own endpoint and key",
    "[socket][model_catalog][fallback]") {
    models_server primary({"gpt-4o", "gpt-4o-mini"});
    models_server backup({"llama-3.1-70b-instruct", "llama-3.1-8b-instruct"});
    const std::vector<fallback_target> targets{
        fallback_target("primary", "gpt-4o-mini"),
        fallback_target("backup", "llama-3.1-70b-instruct",
                        endpoint_for(backup.server.base_url(), "sk-backup-9876543210")),
        fallback_target("small", "llama-3.1-8b-instrcut",
                        endpoint_for(backup.server.base_url(), "sk-backup-9876543210")),
    };
    const chain_client client(options_for(primary.server.base_url(), "sk-primary-0123456789"),
                              sturdy::fallback_policy(targets));
    const model_catalog catalog(client);

    CHECK(catalog.validate("llama-3.1-70b-instruct", "backup").has_value());
    auto not_there = catalog.validate("llama-3.1-70b-instruct", "primary");
    REQUIRE_FALSE(not_there.has_value());
    CHECK(not_there.error().message() ==
          "model \"llama-3.1-70b-instruct\" is not served by route \"primary\"; it serves: gpt-4o, gpt-4o-mini");

    const auto problems = catalog.validate_routes(targets);
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].message() ==
          "model \"llama-3.1-8b-instrcut\" is not served by route \"small\"; did you mean: llama-3.1-8b-instruct, "
          "llama-3.1-70b-instruct?");

    // One request per route: primary's, and backup's for "backup" and "small".
    CHECK(primary.requests() == 1);
    CHECK(backup.requests() == 2);
    for (const auto& req : backup.server.requests()) {
        CHECK(req.path() == "/v1/models");
        CHECK(req.header("authorization") == "Bearer sk-backup-9876543210");
    }
    CHECK(primary.server.requests()[0].header("authorization") == "Bearer sk-primary-0123456789");
}

TEST_CASE(
    "model catalog socket: when the server goes away, the last list answers until max_stale, then the connection error",
    "[socket][model_catalog]") {
    auto server = std::make_unique<models_server>(std::vector<std::string>{"qwen2.5-7b-instruct"});
    const std::string host = "127.0.0.1:" + std::to_string(server->server.port());
    const plain_client client(options_for(server->server.base_url(), ""));
    sturdy::testing::fake_clock fake;
    sturdy::model_catalog_options o;
    o.ttl = 1min;
    o.max_stale = 10min;
    const model_catalog catalog(client, o, fake.timing());
    REQUIRE(catalog.validate("qwen2.5-7b-instruct").has_value());
    server.reset();  // connections are refused from now on

    fake.advance(5min);
    CHECK(catalog.validate("qwen2.5-7b-instruct").has_value());  // stale, within 1 + 10 minutes
    auto miss = catalog.validate("llama3");                      // a miss on the stale list: the refetch fails too
    REQUIRE_FALSE(miss.has_value());
    CHECK(miss.error().message() == "model \"llama3\" is not served by " + host + "; it serves: qwen2.5-7b-instruct");

    fake.advance(6min);
    auto gone = catalog.validate("qwen2.5-7b-instruct");
    REQUIRE_FALSE(gone.has_value());
    CHECK(gone.error().kind() == error_kind::connection);
}

TEST_CASE("model catalog socket: a burst of callers with no list makes one request", "[socket][model_catalog]") {
    models_server openai({"gpt-4o", "o3"});
    openai.delay = 200ms;  // the burst arrives while the first request is answered
    const sturdy::client client(options_for(openai.server.base_url(), "sk-test"));
    const model_catalog catalog(client);
    constexpr int callers = 6;
    std::vector<int> ok(callers, 0);
    std::vector<std::thread> threads;
    for (int i = 0; i < callers; ++i)
        threads.emplace_back([&, i] { ok[static_cast<std::size_t>(i)] = catalog.validate("o3").has_value() ? 1 : 0; });
    for (auto& t : threads) t.join();
    CHECK(ok == std::vector<int>(callers, 1));
    CHECK(openai.requests() == 1);
}

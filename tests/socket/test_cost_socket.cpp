// What a call cost, through the real client: a reply's report carries it, priced as the model that
// answered, and so does the error of a stream cut after its usage arrived. Prices are the test's own.
#include <sturdy/sturdy.hpp>

#include "support/catch.hpp"
#include "support/script_server.hpp"

#include <chrono>
#include <memory>
#include <string>

using namespace std::chrono_literals;
using sturdy_test::reply;

namespace {

std::shared_ptr<const sturdy::price_table> test_prices() {
    sturdy::price_table t("2026-01-01");
    t.set("gpt-4o-mini", sturdy::model_price{2.00, 0.50, std::nullopt, 8.00});
    t.set("emb", sturdy::model_price{0.10, std::nullopt, std::nullopt, 0});
    return std::make_shared<const sturdy::price_table>(std::move(t));
}

sturdy::client_options options_for(const sturdy_test::script_server& srv) {
    sturdy::client_options o;
    o.base_url = srv.base_url();
    o.api_key = "sk-cost-test-key";
    o.timeout = 5s;
    o.prices = test_prices();
    return o;
}

// 120,000 prompt tokens, 100,000 of them cached, and 1,000 completion tokens: at 2.00 / 0.50 / 8.00,
// 20,000 × 2.00 + 100,000 × 0.50 + 1,000 × 8.00 = 98,000 per million.
constexpr const char* cached_usage =
    R"({"prompt_tokens":120000,"completion_tokens":1000,"total_tokens":121000,"prompt_tokens_details":{"cached_tokens":100000}})";
constexpr double cached_usage_cost = 0.098;

std::string completion(const std::string& model) {
    return R"({"id":"c1","object":"chat.completion","model":")" + model +
           R"(","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":)" +
           cached_usage + "}";
}

std::string chunk(const std::string& fields) {
    return R"({"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-mini-2024-07-18",)" + fields + "}";
}

const sturdy::chat_request hello{"gpt-4o-mini", {sturdy::chat_message::user("Hi")}};

}  // namespace

TEST_CASE("cost socket: a reply's report carries its cost, priced as the model that answered", "[socket][cost]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::json(200, completion("gpt-4o-mini-2024-07-18")));
    sturdy::client client(options_for(srv));
    const auto r = client.chat(hello);
    REQUIRE(r.call.cost_usd.has_value());
    CHECK(*r.call.cost_usd == Approx(cached_usage_cost));
    CHECK(r.call.priced_model == "gpt-4o-mini");
}

TEST_CASE("cost socket: no price, no cost: an unknown model, or no table", "[socket][cost]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::json(200, completion("some-local-model")));
    srv.enqueue(reply::json(200, completion("gpt-4o-mini")));
    auto opts = options_for(srv);
    {
        sturdy::client client(opts);
        const auto r = client.chat(hello);  // asked for a listed model, answered by another
        CHECK_FALSE(r.call.cost_usd.has_value());
        CHECK(r.call.priced_model.empty());
    }
    opts.prices = nullptr;
    sturdy::client client(opts);
    CHECK_FALSE(client.chat(hello).call.cost_usd.has_value());
}

TEST_CASE("cost socket: a reply without a model is priced as the model asked for", "[socket][cost]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::json(200, completion("")));
    sturdy::client client(options_for(srv));
    const auto r = client.chat(hello);
    REQUIRE(r.call.cost_usd.has_value());
    CHECK(*r.call.cost_usd == Approx(cached_usage_cost));
}

TEST_CASE("cost socket: a reply without a model is priced as the model its route asked for", "[socket][cost]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::json(200, completion("")));
    sturdy::fallback_policy chain({sturdy::fallback_target("primary", "gpt-4o-mini")});
    sturdy::basic_client<sturdy::curl_transport, sturdy::fallback_policy> client(options_for(srv), chain);
    const auto r = client.chat({"not-priced", {sturdy::chat_message::user("Hi")}});
    CHECK(r.call.route == "primary");
    REQUIRE(r.call.cost_usd.has_value());
    CHECK(*r.call.cost_usd == Approx(cached_usage_cost));
    CHECK(r.call.priced_model == "gpt-4o-mini");
}

TEST_CASE("cost socket: a streamed reply's cost comes from its usage chunk", "[socket][cost]") {
    sturdy_test::script_server srv;
    srv.enqueue(
        reply::sse()
            .data(chunk(R"("choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":null}])"))
            .data(chunk(R"("choices":[{"index":0,"delta":{},"finish_reason":"stop"}])"))
            .data(chunk(std::string(R"("choices":[],"usage":)") + cached_usage))
            .data("[DONE]"));
    sturdy::client client(options_for(srv));
    auto req = hello;
    req.stream_options = sturdy::chat_stream_options{true};
    const auto r = client.stream(req, [](const sturdy::chat_chunk&) {});
    REQUIRE(r.call.cost_usd.has_value());
    CHECK(*r.call.cost_usd == Approx(cached_usage_cost));
    CHECK(r.call.priced_model == "gpt-4o-mini");
}

TEST_CASE("cost socket: a stream cut after its usage arrived carries the cost in its error's report",
          "[socket][cost]") {
    sturdy_test::script_server srv;
    // A server that reports usage with every chunk (vLLM's continuous usage stats), cut mid-reply.
    srv.enqueue(
        reply::sse()
            .data(chunk(
                std::string(
                    R"("choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}],"usage":)") +
                cached_usage))
            .drop());
    sturdy::client client(options_for(srv));
    auto out = client.try_stream(hello, [](const sturdy::chat_chunk&) {});
    REQUIRE_FALSE(out.has_value());
    CHECK(out.error().kind() == sturdy::error_kind::stream_truncated);
    REQUIRE(out.error().partial_response() != nullptr);
    REQUIRE(out.error().call() != nullptr);
    const auto& report = *out.error().call();
    REQUIRE(report.cost_usd.has_value());
    CHECK(*report.cost_usd == Approx(cached_usage_cost));
    CHECK(report.priced_model == "gpt-4o-mini");
}

TEST_CASE("cost socket: a failed call without usage has no cost", "[socket][cost]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::status(400).body(R"({"error":{"message":"bad"}})"));
    sturdy::client client(options_for(srv));
    auto out = client.try_chat(hello);
    REQUIRE_FALSE(out.has_value());
    REQUIRE(out.error().call() != nullptr);
    CHECK_FALSE(out.error().call()->cost_usd.has_value());
}

TEST_CASE("cost socket: an embeddings reply's prompt tokens at the input price", "[socket][cost]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::json(
        200,
        R"({"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5]}],"model":"emb","usage":{"prompt_tokens":5000,"total_tokens":5000}})"));
    sturdy::client client(options_for(srv));
    sturdy::embedding_request req{"emb", {"text"}};
    req.encoding_format = "float";
    const auto r = client.embed(req);
    REQUIRE(r.call.cost_usd.has_value());
    CHECK(*r.call.cost_usd == Approx(0.0005));  // 5,000 × 0.10 per million
}

// The client end to end over real sockets: requests on the wire, replies, errors, retries, timeouts.
#include <sturdy/sturdy.hpp>

#include "support/catch.hpp"
#include "support/script_server.hpp"

#include <atomic>
#include <chrono>
#include <thread>

using namespace std::chrono_literals;
using sturdy::error_kind;
using sturdy_test::reply;

namespace {

const char* const chat_ok = R"({"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m",
    "choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"finish_reason":"stop"}],
    "usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}})";

// Retries without the official half-second waits, so the tests stay fast.
sturdy::retry_policy quick_retry(int retries) {
    sturdy::retry_options o;
    o.max_retries = retries;
    o.backoff = sturdy::backoff::constant(5ms);
    return sturdy::retry_policy(o);
}

sturdy::client make_client(const sturdy_test::script_server& srv, int retries = 2, std::string key = "sk-test-key-0123456789") {
    sturdy::client_options o;
    o.base_url = srv.base_url();
    o.api_key = std::move(key);
    o.connect_timeout = 2s;
    o.timeout = 5s;
    return sturdy::client(o, quick_retry(retries));
}

const sturdy::chat_request hello{"m", {sturdy::chat_message::user("Hi")}};

}  // namespace

TEST_CASE("http: a chat call sends the documented request and reads the reply", "[socket]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::json(200, chat_ok).header("x-request-id", "req_42"));
    auto reply_ = make_client(srv).chat(hello);
    CHECK(reply_.content() == "Hello there");
    CHECK(reply_.finish_reason() == "stop");
    CHECK(reply_.usage->total_tokens == 5);
    CHECK(reply_.call.attempts == 1);
    CHECK(reply_.call.request_id == "req_42");
    CHECK(reply_.call.latency > 0us);

    auto reqs = srv.requests();
    REQUIRE(reqs.size() == 1);
    CHECK(reqs[0].method == "POST");
    CHECK(reqs[0].target == "/v1/chat/completions");
    CHECK(reqs[0].header("authorization") == "Bearer sk-test-key-0123456789");
    CHECK(reqs[0].header("content-type") == "application/json");
    CHECK(reqs[0].header("accept") == "application/json");
    CHECK(reqs[0].header("user-agent") == "sturdy/" STURDY_VERSION);
    auto body = nlohmann::json::parse(reqs[0].body);
    CHECK(body == nlohmann::json::parse(R"({"model":"m","messages":[{"role":"user","content":"Hi"}]})"));
}

TEST_CASE("http: organization, project, default and per-call headers", "[socket]") {
    sturdy_test::script_server srv;
    srv.set_default(reply::json(200, chat_ok));
    sturdy::client_options o;
    o.base_url = srv.base_url() + "/";  // a trailing slash is tolerated
    o.api_key = "k";
    o.organization = "org-1";
    o.project = "proj-1";
    o.default_headers = {{"X-Team", "search"}, {"User-Agent", "my-app/2"}};
    sturdy::client c(o);
    sturdy::request_options call;
    call.headers = {{"X-Trace", "abc"}, {"x-team", "ranking"}};
    c.chat(hello, call);
    auto r = srv.requests().at(0);
    CHECK(r.target == "/v1/chat/completions");
    CHECK(r.header("openai-organization") == "org-1");
    CHECK(r.header("openai-project") == "proj-1");
    CHECK(r.header("user-agent") == "my-app/2");
    CHECK(r.header("x-trace") == "abc");
    CHECK(r.header("x-team") == "ranking");
}

TEST_CASE("http: no key, no Authorization header", "[socket]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::json(200, chat_ok));
    make_client(srv, 0, "").chat(hello);
    CHECK(srv.requests().at(0).header("authorization").empty());
}

TEST_CASE("http: an error status becomes a typed error with the provider's details", "[socket]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::json(404, R"({"error":{"message":"The model 'nope' does not exist","type":"invalid_request_error","param":"model","code":"model_not_found"}})")
                    .header("x-request-id", "req_7"));
    auto r = make_client(srv).try_chat(hello);
    REQUIRE_FALSE(r);
    const auto& e = r.error();
    CHECK(e.kind() == error_kind::not_found);
    CHECK(e.status() == 404);
    CHECK(e.message() == "The model 'nope' does not exist");
    CHECK(e.code() == "model_not_found");
    CHECK(e.param() == "model");
    CHECK(e.request_id() == "req_7");
    CHECK(srv.request_count() == 1);  // 404 is not retried
    CHECK_THROWS_AS(make_client(srv).chat(hello), sturdy::error);
}

TEST_CASE("http: a 429 with retry-after-ms is waited out and retried", "[socket]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::json(429, R"({"error":{"message":"Rate limit reached","code":"rate_limit_exceeded"}})").header("retry-after-ms", "120"));
    srv.enqueue(reply::json(200, chat_ok));
    const auto t0 = std::chrono::steady_clock::now();
    auto r = make_client(srv).chat(hello);
    const auto waited = std::chrono::steady_clock::now() - t0;
    CHECK(r.content() == "Hello there");
    CHECK(r.call.attempts == 2);
    CHECK(waited >= 120ms);  // the server's delay, not the 5 ms backoff
    CHECK(srv.request_count() == 2);
}

TEST_CASE("http: 5xx are retried up to the limit, then reported", "[socket]") {
    sturdy_test::script_server srv;
    srv.set_default(reply::json(503, R"({"error":{"message":"overloaded"}})"));
    auto r = make_client(srv, 2).try_chat(hello);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind() == error_kind::internal_server);
    CHECK(r.error().status() == 503);
    CHECK(srv.request_count() == 3);
}

TEST_CASE("http: a failed call's error says what the call went through", "[socket]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::json(500, R"({"error":{"message":"first"}})"));
    srv.enqueue(reply::json(502, R"({"error":{"message":"second"}})").header("x-request-id", "req-second"));
    srv.enqueue(reply::json(401, R"({"error":{"message":"bad key"}})").header("x-request-id", "req-last"));
    auto r = make_client(srv, 2).try_chat(hello);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind() == error_kind::authentication);
    const sturdy::call_info* report = r.error().call();
    REQUIRE(report != nullptr);
    CHECK(report->attempts == 3);
    CHECK(report->request_id == "req-last");
    CHECK(report->latency > std::chrono::microseconds(0));
    REQUIRE(report->errors.size() == 3);
    CHECK(report->errors[0].status() == 500);
    CHECK(report->errors[1].request_id() == "req-second");
    CHECK(report->errors[2].status() == 401);
    CHECK(report->errors[2].call() == nullptr);  // the report holds no report of itself

    // The throwing form carries the same report.
    srv.enqueue(reply::json(400, R"({"error":{"message":"no"}})"));
    try {
        (void)make_client(srv, 2).chat(hello);
        FAIL("a 400 must throw");
    } catch (const sturdy::error& e) {
        REQUIRE(e.call() != nullptr);
        CHECK(e.call()->attempts == 1);
        CHECK(e.call()->errors.size() == 1);
    }
}

TEST_CASE("http: x-should-retry false stops a retry the status would allow", "[socket]") {
    sturdy_test::script_server srv;
    srv.set_default(reply::json(500, "{}").header("x-should-retry", "false"));
    CHECK_FALSE(make_client(srv).try_chat(hello));
    CHECK(srv.request_count() == 1);
}

TEST_CASE("http: insufficient_quota is not retried", "[socket]") {
    sturdy_test::script_server srv;
    srv.set_default(reply::json(429, R"({"error":{"message":"quota","type":"insufficient_quota","code":"insufficient_quota"}})"));
    auto r = make_client(srv).try_chat(hello);
    CHECK(r.error().kind() == error_kind::rate_limit);
    CHECK(srv.request_count() == 1);
}

TEST_CASE("http: a proxy's HTML error page is classified by its status", "[socket]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::text(502, "<html><h1>502 Bad Gateway</h1></html>").header("Content-Type", "text/html"));
    auto r = make_client(srv, 0).try_chat(hello);
    CHECK(r.error().kind() == error_kind::internal_server);
    CHECK(r.error().status() == 502);
    CHECK(r.error().body().find("Bad Gateway") != std::string::npos);
}

TEST_CASE("http: a 200 whose body is not the JSON expected is invalid_response, not retried", "[socket]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::text(200, "not json at all"));
    srv.enqueue(reply::json(200, R"({"object":"list"})"));
    auto c = make_client(srv);
    auto garbage = c.try_chat(hello);
    CHECK(garbage.error().kind() == error_kind::invalid_response);
    CHECK(garbage.error().status() == 200);
    auto wrong_shape = c.try_chat(hello);
    CHECK(wrong_shape.error().kind() == error_kind::invalid_response);
    CHECK(srv.request_count() == 2);
}

TEST_CASE("http: a refused connection is a connection error, retried", "[socket]") {
    sturdy::client_options o;
    o.base_url = "http://127.0.0.1:" + std::to_string(sturdy_test::refused_port()) + "/v1";
    std::atomic<int> retries{0};
    sturdy::retry_options ro;
    ro.backoff = sturdy::backoff::constant(1ms);
    ro.on_retry = [&](const sturdy::retry_event&) { ++retries; };
    sturdy::client c(o, sturdy::retry_policy(ro));
    auto r = c.try_models();
    REQUIRE_FALSE(r);
    CHECK(r.error().kind() == error_kind::connection);
    CHECK(r.error().status() == 0);
    CHECK(retries == 2);
}

TEST_CASE("http: a server that accepts and never answers times out", "[socket]") {
    sturdy_test::silent_server silent;
    sturdy::client_options o;
    o.base_url = "http://127.0.0.1:" + std::to_string(silent.port()) + "/v1";
    o.timeout = 200ms;
    sturdy::client c(o, quick_retry(0));
    const auto t0 = std::chrono::steady_clock::now();
    auto r = c.try_models();
    CHECK(r.error().kind() == error_kind::timeout);
    CHECK(std::chrono::steady_clock::now() - t0 < 2s);
}

TEST_CASE("http: a stalled reply hits the per-call timeout", "[socket]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::json(200, chat_ok).delay_headers(3s));
    sturdy::request_options call;
    call.timeout = 150ms;
    const auto t0 = std::chrono::steady_clock::now();
    auto r = make_client(srv, 0).try_chat(hello, call);
    CHECK(r.error().kind() == error_kind::timeout);
    CHECK(std::chrono::steady_clock::now() - t0 < 1500ms);
}

TEST_CASE("http: a total timeout bounds the call, retries included, without sleeping past it", "[socket]") {
    sturdy_test::script_server srv;
    srv.set_default(reply::json(503, R"({"error":{"message":"busy"}})").header("retry-after", "2"));
    sturdy::request_options call;
    call.total_timeout = 300ms;
    const auto t0 = std::chrono::steady_clock::now();
    auto r = sturdy::client([&] {
                 sturdy::client_options o;
                 o.base_url = srv.base_url();
                 return o;
             }()).try_chat(hello, call);
    const auto took = std::chrono::steady_clock::now() - t0;
    REQUIRE_FALSE(r);
    CHECK(r.error().status() == 503);  // the last error: the 2 s wait would pass the deadline
    CHECK(took < 1s);
    CHECK(srv.request_count() == 1);
}

namespace {
// A policy that records the status each attempt made through it saw.
struct status_observer {
    std::vector<int>* statuses;
    template <class Attempt>
    auto execute(sturdy::call_context& ctx, Attempt&& attempt) const -> decltype(attempt(ctx)) {
        auto r = attempt(ctx);
        statuses->push_back(r.observation() ? r.observation()->status : -1);
        return r;
    }
};
}  // namespace

TEST_CASE("http: each attempt's outcome carries its own observation, never an earlier one's", "[socket]") {
    // The second attempt, which got no reply at all, must not show the first one's status.
    std::vector<int> statuses;
    sturdy_test::script_server srv;
    srv.enqueue(reply::json(500, "{}").header("x-ratelimit-remaining-requests", "7").close_connection());
    srv.enqueue(reply::disconnect());
    sturdy::client_options o;
    o.base_url = srv.base_url();
    auto policy = sturdy::compose(quick_retry(1), status_observer{&statuses});
    sturdy::basic_client<sturdy::curl_transport, decltype(policy)> c(o, policy);
    CHECK_FALSE(c.try_models());
    CHECK(statuses == std::vector<int>{500, 0});
}

TEST_CASE("http: an attempt with no time left is not sent, and says why", "[socket]") {
    sturdy_test::script_server srv;
    srv.set_default(reply::json(200, chat_ok));
    sturdy::request_options call;
    call.total_timeout = 0ms;
    auto r = make_client(srv).try_chat(hello, call);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind() == error_kind::timeout);
    CHECK(r.error().code() == sturdy::error_codes::deadline_exceeded);
    CHECK(srv.request_count() == 0);
}

TEST_CASE("http: a connection cut mid-body is a connection error", "[socket]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::json(200, chat_ok).content_length(2000).drop());
    auto r = make_client(srv, 0).try_chat(hello);
    CHECK(r.error().kind() == error_kind::connection);
}

TEST_CASE("http: the API key never reaches an error, even when the server echoes it", "[socket][secrets]") {
    const std::string key = "sk-live-abcdefghijklmnopqrstuvwxyz0123456789";
    sturdy_test::script_server srv;
    srv.enqueue(reply::json(401, R"({"error":{"message":"Invalid key )" + key + R"(","code":"invalid_api_key"}})")
                    .header("x-request-id", key));
    auto r = make_client(srv, 0, key).try_chat(hello);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind() == error_kind::authentication);
    for (const std::string& text : {std::string(r.error().what()), r.error().body(), r.error().message(), r.error().request_id()})
        CHECK(text.find(key) == std::string::npos);
}

TEST_CASE("http: models and one model, with a clean 404", "[socket]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::json(200, R"({"object":"list","data":[{"id":"a","object":"model","created":1,"owned_by":"x"},{"id":"b"}]})"));
    srv.enqueue(reply::json(200, R"({"id":"org/model v2","object":"model","created":2,"owned_by":"y"})"));
    srv.enqueue(reply::json(404, R"({"error":{"message":"File Not Found","type":"not_found_error","code":404}})"));
    auto c = make_client(srv);
    auto list = c.models();
    REQUIRE(list.data.size() == 2);
    CHECK(list.data[1].id == "b");
    CHECK(c.model("org/model v2").owned_by == "y");
    auto missing = c.try_model("nope");
    CHECK(missing.error().kind() == error_kind::not_found);
    auto reqs = srv.requests();
    CHECK(reqs[0].method == "GET");
    CHECK(reqs[0].target == "/v1/models");
    CHECK(reqs[1].target == "/v1/models/org/model%20v2");
    CHECK(reqs[1].body.empty());
}

TEST_CASE("http: embeddings ask for base64 by default and decode it", "[socket]") {
    sturdy_test::script_server srv;
    // [0.5, -1.25] and [2.0, 0.0] as little-endian float32.
    srv.enqueue(reply::json(200, R"({"object":"list","model":"e","data":[{"object":"embedding","index":0,"embedding":"AAAAPwAAoL8="},
        {"object":"embedding","index":1,"embedding":"AAAAQAAAAAA="}],"usage":{"prompt_tokens":2,"total_tokens":2}})"));
    auto r = make_client(srv).embed({"e", {"a", "b"}});
    REQUIRE(r.data.size() == 2);
    CHECK(r.data[0].values == std::vector<float>{0.5f, -1.25f});
    CHECK(r.data[1].values == std::vector<float>{2.0f, 0.0f});
    CHECK(r.data[0].base64.empty());
    CHECK(r.usage->prompt_tokens == 2);
    auto body = nlohmann::json::parse(srv.requests().at(0).body);
    CHECK(body["encoding_format"] == "base64");
    CHECK(body["input"] == nlohmann::json::array({"a", "b"}));
    CHECK(srv.requests().at(0).target == "/v1/embeddings");
}

TEST_CASE("http: embeddings in the format the caller chose are returned as sent", "[socket]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::json(200, R"({"data":[{"index":0,"embedding":[0.25,0.5]}]})"));
    srv.enqueue(reply::json(200, R"({"data":[{"index":0,"embedding":"AAAAPwAAoL8="}]})"));
    auto c = make_client(srv);
    sturdy::embedding_request floats{"e", {"x"}};
    floats.encoding_format = "float";
    floats.dimensions = 2;
    CHECK(c.embed(floats).data[0].values == std::vector<float>{0.25f, 0.5f});
    sturdy::embedding_request raw{"e", {"x"}};
    raw.encoding_format = "base64";
    auto r = c.embed(raw);
    CHECK(r.data[0].base64 == "AAAAPwAAoL8=");
    CHECK(r.data[0].values.empty());
    auto first = nlohmann::json::parse(srv.requests().at(0).body);
    CHECK(first["encoding_format"] == "float");
    CHECK(first["dimensions"] == 2);
}

TEST_CASE("http: malformed base64 in an embedding is invalid_response", "[socket]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::json(200, R"({"data":[{"index":0,"embedding":"@@@@"}]})"));
    CHECK(make_client(srv, 0).try_embed({"e", {"x"}}).error().kind() == error_kind::invalid_response);
}

TEST_CASE("http: calls reuse one connection", "[socket]") {
    sturdy_test::script_server srv;
    srv.set_default(reply::json(200, chat_ok));
    auto c = make_client(srv);
    for (int i = 0; i < 5; ++i) c.chat(hello);
    auto reqs = srv.requests();
    REQUIRE(reqs.size() == 5);
    for (const auto& r : reqs) CHECK(r.connection_id == reqs[0].connection_id);
}

TEST_CASE("http: one client serves many threads at once", "[socket][threads]") {
    sturdy_test::script_server srv;
    srv.set_default(reply::json(200, chat_ok));
    const auto c = make_client(srv);
    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 10; ++i)
                if (c.try_chat(hello)) ++ok;
        });
    for (auto& t : threads) t.join();
    CHECK(ok == 80);
    CHECK(srv.request_count() == 80);
}

TEST_CASE("http: a malformed URL is invalid_argument", "[socket]") {
    sturdy::client_options o;
    o.base_url = "ftp://example.invalid/v1";
    auto r = sturdy::client(o, quick_retry(2)).try_models();
    CHECK(r.error().kind() == error_kind::invalid_argument);
}

// The model catalog: suggestions for a name a server does not serve (edit distance, ranking),
// the cache per route with its TTL in virtual time, one fetch at a time, stale-if-error, and
// per-route validation through a routing policy over a scripted transport.
#include <sturdy/basic_client.hpp>
#include <sturdy/fallback.hpp>
#include <sturdy/model_catalog.hpp>
#include <sturdy/traffic_split.hpp>
#include <sturdy/detail/edit_distance.hpp>
#include <sturdy/testing/fake_clock.hpp>

#include "support/catch.hpp"
#include "support/gate.hpp"

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using sturdy::closest_model_names;
using sturdy::error;
using sturdy::error_kind;
using sturdy::model_catalog;
using sturdy::model_list;
using sturdy::request_options;
using sturdy::result;
using sturdy::testing::fake_clock;

namespace {

model_list list_of(const std::vector<std::string>& ids) {
    model_list list;
    list.object = "list";
    for (const auto& id : ids) {
        sturdy::model_info m;
        m.id = id;
        m.object = "model";
        m.owned_by = "tests";
        list.data.push_back(m);
    }
    return list;
}

// Answers each fetch from `lists` by the route it is pinned to ("" when none), or with the next
// queued error; records every fetch's route.
struct scripted_fetch {
    std::mutex mutex;
    std::map<std::string, std::vector<std::string>> lists{{"", {"gpt-4o", "gpt-4o-mini", "gpt-4.1-mini", "o3"}}};
    std::vector<error> failures;
    std::vector<std::string> routes;

    result<model_list> operator()(const request_options& call) {
        std::lock_guard<std::mutex> lock(mutex);
        routes.push_back(call.pinned_route);
        if (!failures.empty()) {
            auto e = failures.front();
            failures.erase(failures.begin());
            return e;
        }
        return list_of(lists[call.pinned_route]);
    }
    std::size_t fetches() {
        std::lock_guard<std::mutex> lock(mutex);
        return routes.size();
    }
};

model_catalog::fetch_function through(scripted_fetch& fetch) {
    return [&fetch](const request_options& call) { return fetch(call); };
}

sturdy::model_catalog_options named(std::string name) {
    sturdy::model_catalog_options o;
    o.name = std::move(name);
    return o;
}

}  // namespace

// ---- edit distance ----

TEST_CASE("model catalog: edit distance counts insertions, deletions, substitutions and adjacent swaps",
          "[model_catalog][suggestions]") {
    using sturdy::detail::edit_distance;
    CHECK(edit_distance("", "") == 0);
    CHECK(edit_distance("abc", "") == 3);
    CHECK(edit_distance("", "abc") == 3);
    CHECK(edit_distance("kitten", "sitting") == 3);
    CHECK(edit_distance("gpt-4o-mnii", "gpt-4o-mini") == 1);  // one swap, not two substitutions
    CHECK(edit_distance("ca", "abc") == 3);                   // optimal string alignment: no edit of a swapped pair
    CHECK(edit_distance("GPT-4o", "gpt-4O") == 0);            // ASCII case is ignored
    CHECK(edit_distance("gpt-4o", "gpt-4o-mini") == 5);
    CHECK(edit_distance("gpt-4o-mini", "gpt-4o") == 5);  // symmetric
}

TEST_CASE("model catalog: a bounded edit distance stops past its limit, never below the true distance",
          "[model_catalog][suggestions]") {
    using sturdy::detail::edit_distance;
    CHECK(edit_distance("kitten", "sitting", 3) == 3);
    CHECK(edit_distance("kitten", "sitting", 2) == 3);  // limit + 1
    CHECK(edit_distance("a", "abcdefgh", 2) == 3);      // the lengths alone say so
    CHECK(edit_distance("abcdef", "badcfe", 3) == 3);   // three swaps, each within reach of the last row
    CHECK(edit_distance("abcdef", "badcfe", 2) == 3);
    CHECK(edit_distance("abcdefgh", "zzzzzzzz", 0) == 1);
}

// ---- suggestions ----

TEST_CASE("model catalog: suggestions put a one-edit typo first, then a name it extends, then further edits",
          "[model_catalog][suggestions]") {
    const std::vector<std::string> served{"o3", "gpt-4.1-mini", "text-embedding-3-small", "gpt-4o", "gpt-4o-mini"};
    CHECK(closest_model_names("gpt-4o-mnii", served) ==
          std::vector<std::string>{"gpt-4o-mini", "gpt-4o", "gpt-4.1-mini"});
    CHECK(closest_model_names("gpt-4o-mnii", served, 2) == std::vector<std::string>{"gpt-4o-mini", "gpt-4o"});
    CHECK(closest_model_names("gpt-4o-mnii", served, 0).empty());
}

TEST_CASE("model catalog: the same model under another case, gateway prefix or snapshot tag comes first",
          "[model_catalog][suggestions]") {
    CHECK(closest_model_names("GPT-4o", {"gpt-4", "gpt-4o"}) == std::vector<std::string>{"gpt-4o", "gpt-4"});
    CHECK(closest_model_names("gpt-4o", {"gpt-4", "openai/gpt-4o"}).front() == "openai/gpt-4o");
    CHECK(closest_model_names("openai/gpt-4o", {"gpt-4", "gpt-4o"}).front() == "gpt-4o");
    CHECK(closest_model_names("gpt-4o", {"gpt-4", "gpt-4o-2024-08-06"}).front() == "gpt-4o-2024-08-06");
    CHECK(closest_model_names("gpt-4o-2024-08-06", {"gpt-4", "gpt-4o"}).front() == "gpt-4o");
    // Gemini's "models/" prefix, and a typo behind a gateway's: compared after the '/'.
    CHECK(closest_model_names("gemini-2.5-flsh", {"models/gemini-2.5-flash", "models/gemini-2.5-pro"}).front() ==
          "models/gemini-2.5-flash");
}

TEST_CASE("model catalog: a name contained in another is suggested, the shorter extension first",
          "[model_catalog][suggestions]") {
    CHECK(closest_model_names("deepseek", {"deepseek-reasoner", "qwen-max", "deepseek-chat"}) ==
          std::vector<std::string>{"deepseek-chat", "deepseek-reasoner"});
    // Too short to count as contained: "o" is in almost every name.
    CHECK(closest_model_names("o", {"gpt-4o-mini", "text-embedding-3-small"}).empty());
}

TEST_CASE("model catalog: names nothing like the one asked for are not suggested", "[model_catalog][suggestions]") {
    CHECK(closest_model_names("claude-3-opus", {"gpt-4o", "o3", "text-embedding-3-small"}).empty());
    CHECK(closest_model_names("gpt-4o", {}).empty());
    CHECK(closest_model_names("", {"gpt-4o"}).empty());
    CHECK(closest_model_names("x", {""}).empty());
    // Up to half the characters may change: o1 for o3, but not "ab" for "o3".
    CHECK(closest_model_names("o3", {"ab", "o1"}) == std::vector<std::string>{"o1"});
    // A name far too long to be a model id is not compared at all.
    CHECK(closest_model_names(std::string(10000, 'a'), {"aaa", std::string(10000, 'a')}).empty());
}

TEST_CASE("model catalog: suggestions are deterministic: ties go by whole-name distance, then byte order",
          "[model_catalog][suggestions]") {
    const std::vector<std::string> served{"model-c", "model-b", "model-a", "model-a"};
    const auto first = closest_model_names("model-x", served);
    CHECK(first == std::vector<std::string>{"model-a", "model-b", "model-c"});  // duplicates once
    std::vector<std::string> reversed(served.rbegin(), served.rend());
    CHECK(closest_model_names("model-x", reversed) == first);
}

// ---- validate ----

TEST_CASE("model catalog: validate returns the entry of a served model", "[model_catalog]") {
    scripted_fetch fetch;
    const model_catalog catalog(through(fetch), named("openai"));
    auto found = catalog.validate("gpt-4o-mini");
    REQUIRE(found.has_value());
    CHECK(found->id == "gpt-4o-mini");
    CHECK(found->owned_by == "tests");
    CHECK(catalog.validate("o3").has_value());
    CHECK(fetch.fetches() == 1);
}

TEST_CASE("model catalog: an unserved model is not_found, named, with the closest served names suggested",
          "[model_catalog][suggestions]") {
    scripted_fetch fetch;
    const model_catalog catalog(through(fetch), named("openai"));
    auto missing = catalog.validate("gpt-4o-mnii");
    REQUIRE_FALSE(missing.has_value());
    const error& e = missing.error();
    CHECK(e.kind() == error_kind::not_found);
    CHECK(e.code() == "model_not_found");
    CHECK(e.param() == "model");
    CHECK(e.status() == 0);
    CHECK(e.message() ==
          "model \"gpt-4o-mnii\" is not served by openai; did you mean: gpt-4o-mini, gpt-4o, gpt-4.1-mini?");
    CHECK(std::string(e.what()) == "not_found: " + e.message());

    // Ids match exactly, as servers match them: another case is a miss, with the right name first.
    auto upper = catalog.validate("GPT-4o");
    REQUIRE_FALSE(upper.has_value());
    CHECK_THAT(upper.error().message(), Catch::Matchers::EndsWith("did you mean: gpt-4o, gpt-4o-mini?"));
}

TEST_CASE("model catalog: with nothing close, a short list is given whole and a long one counted",
          "[model_catalog][suggestions]") {
    scripted_fetch fetch;
    fetch.lists[""] = {"qwen2.5-7b-instruct"};
    fetch.lists["big"] = {"a1", "a2", "a3", "a4", "a5", "a6"};
    fetch.lists["empty"] = {};
    const model_catalog catalog(through(fetch));  // a fetch function: "the server"
    CHECK(catalog.validate("llama3").error().message() ==
          "model \"llama3\" is not served by the server; it serves: qwen2.5-7b-instruct");
    CHECK(catalog.validate("llama3", "big").error().message() ==
          "model \"llama3\" is not served by route \"big\" (none of its 6 models has a similar name)");
    CHECK(catalog.validate("llama3", "empty").error().message() ==
          "model \"llama3\" is not served by route \"empty\", which lists no models");
}

TEST_CASE("model catalog: an empty model name is invalid_argument, without a fetch", "[model_catalog]") {
    scripted_fetch fetch;
    const model_catalog catalog(through(fetch));
    auto checked = catalog.validate("");
    REQUIRE_FALSE(checked.has_value());
    CHECK(checked.error().kind() == error_kind::invalid_argument);
    CHECK(fetch.fetches() == 0);
    CHECK_THROWS_AS(model_catalog(model_catalog::fetch_function{}), std::invalid_argument);
}

TEST_CASE("model catalog: suggest and ids read the cached list", "[model_catalog][suggestions]") {
    scripted_fetch fetch;
    const model_catalog catalog(through(fetch));
    CHECK(*catalog.suggest("gpt-4o-mnii", 1) == std::vector<std::string>{"gpt-4o-mini"});
    CHECK(*catalog.ids() == std::vector<std::string>{"gpt-4o", "gpt-4o-mini", "gpt-4.1-mini", "o3"});
    CHECK(catalog.models()->data.size() == 4);
    CHECK(fetch.fetches() == 1);
}

// ---- the cache ----

TEST_CASE("model catalog: a list is fetched once per TTL, on the injected clock", "[model_catalog][cache]") {
    fake_clock fake;
    scripted_fetch fetch;
    sturdy::model_catalog_options o;
    o.ttl = 10min;
    const model_catalog catalog(through(fetch), o, fake.timing());
    REQUIRE(catalog.models().has_value());
    fake.advance(10min - 1ns);
    REQUIRE(catalog.validate("o3").has_value());
    CHECK(fetch.fetches() == 1);
    fake.advance(1ns);  // the TTL is over
    fetch.lists[""] = {"o3", "o4-mini"};
    CHECK(*catalog.ids() == std::vector<std::string>{"o3", "o4-mini"});
    CHECK(fetch.fetches() == 2);
    CHECK(catalog.validate("o4-mini").has_value());
    CHECK(fetch.fetches() == 2);
}

TEST_CASE("model catalog: a TTL of zero fetches on every use", "[model_catalog][cache]") {
    fake_clock fake;
    scripted_fetch fetch;
    sturdy::model_catalog_options o;
    o.ttl = 0s;
    const model_catalog catalog(through(fetch), o, fake.timing());
    for (int i = 0; i < 3; ++i) REQUIRE(catalog.models().has_value());
    CHECK(fetch.fetches() == 3);
}

TEST_CASE("model catalog: each route has its own list, fetched by a call pinned to it", "[model_catalog][cache]") {
    fake_clock fake;
    scripted_fetch fetch;
    fetch.lists["backup"] = {"llama-3.1-70b"};
    const model_catalog catalog(through(fetch), {}, fake.timing());
    CHECK(catalog.validate("gpt-4o").has_value());
    CHECK(catalog.validate("llama-3.1-70b", "backup").has_value());
    auto elsewhere = catalog.validate("gpt-4o", "backup");
    REQUIRE_FALSE(elsewhere.has_value());
    CHECK(elsewhere.error().message() ==
          "model \"gpt-4o\" is not served by route \"backup\"; it serves: llama-3.1-70b");
    CHECK(catalog.validate("llama-3.1-70b", "backup").has_value());
    CHECK(fetch.routes == std::vector<std::string>{"", "backup"});
}

TEST_CASE("model catalog: the catalog's request options go with every fetch", "[model_catalog][cache]") {
    std::vector<request_options> seen;
    sturdy::model_catalog_options o;
    o.request.timeout = 2s;
    o.request.headers.emplace_back("X-Trace", "catalog");
    o.request.route_order = {"backup"};
    const model_catalog catalog(
        [&](const request_options& call) -> result<model_list> {
            seen.push_back(call);
            return list_of({"m"});
        },
        o);
    REQUIRE(catalog.models("arm").has_value());
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].timeout == 2s);
    REQUIRE(seen[0].headers.size() == 1);
    CHECK(seen[0].headers[0].second == "catalog");
    CHECK(seen[0].pinned_route == "arm");
}

TEST_CASE("model catalog: invalidate and clear make the next use fetch again; copies share the cache",
          "[model_catalog][cache]") {
    scripted_fetch fetch;
    fetch.lists["b"] = {"x"};
    const model_catalog catalog(through(fetch));
    const model_catalog copy = catalog;
    REQUIRE(catalog.models().has_value());
    REQUIRE(catalog.models("b").has_value());
    REQUIRE(copy.models().has_value());
    CHECK(fetch.fetches() == 2);
    copy.invalidate();
    REQUIRE(catalog.models().has_value());
    REQUIRE(catalog.models("b").has_value());
    CHECK(fetch.fetches() == 3);
    catalog.invalidate("never-used");  // nothing to forget
    catalog.clear();
    REQUIRE(catalog.models().has_value());
    REQUIRE(catalog.models("b").has_value());
    CHECK(fetch.fetches() == 5);
}

TEST_CASE("model catalog: a miss on a list older than recheck_miss_after fetches it again first",
          "[model_catalog][cache]") {
    fake_clock fake;
    scripted_fetch fetch;
    sturdy::model_catalog_options o;
    o.recheck_miss_after = 30s;
    const model_catalog catalog(through(fetch), o, fake.timing());
    REQUIRE(catalog.models().has_value());

    // A fresh list answers a miss on its own.
    fake.advance(29s);
    CHECK_FALSE(catalog.validate("gpt-5").has_value());
    CHECK(fetch.fetches() == 1);

    // An older one is fetched again: the model was deployed since.
    fake.advance(1s);
    fetch.lists[""].push_back("gpt-5");
    auto found = catalog.validate("gpt-5");
    CHECK(found.has_value());
    CHECK(fetch.fetches() == 2);

    // Still missing after the refetch: the miss is reported from the new list, one fetch only.
    fake.advance(1min);
    CHECK(catalog.validate("gpt-6").error().code() == "model_not_found");
    CHECK(fetch.fetches() == 3);
    CHECK(catalog.validate("gpt-6").error().code() == "model_not_found");
    CHECK(fetch.fetches() == 3);
}

TEST_CASE("model catalog: recheck_miss_after max() never refetches for a miss", "[model_catalog][cache]") {
    fake_clock fake;
    scripted_fetch fetch;
    sturdy::model_catalog_options o;
    o.recheck_miss_after = sturdy::clock::duration::max();
    const model_catalog catalog(through(fetch), o, fake.timing());
    fake.advance(9min);
    CHECK_FALSE(catalog.validate("gpt-5").has_value());
    fake.advance(9min);  // within the TTL of the list fetched at 9 min
    CHECK_FALSE(catalog.validate("gpt-5").has_value());
    CHECK(fetch.fetches() == 1);
}

// ---- failures ----

TEST_CASE("model catalog: a failed fetch is the answer when nothing was fetched before, and is not cached",
          "[model_catalog][failure]") {
    fake_clock fake;
    scripted_fetch fetch;
    fetch.failures.push_back(error(error_kind::connection, "refused"));
    const model_catalog catalog(through(fetch), {}, fake.timing());
    auto checked = catalog.validate("gpt-4o");
    REQUIRE_FALSE(checked.has_value());
    CHECK(checked.error().kind() == error_kind::connection);
    CHECK(checked.error().message() == "refused");
    CHECK(catalog.validate("gpt-4o").has_value());  // fetched again at once
    CHECK(fetch.fetches() == 2);
}

TEST_CASE("model catalog: a failed refresh answers from the last list until max_stale past its TTL",
          "[model_catalog][failure]") {
    fake_clock fake;
    scripted_fetch fetch;
    sturdy::model_catalog_options o;
    o.ttl = 10min;
    o.max_stale = 1h;
    const model_catalog catalog(through(fetch), o, fake.timing());
    REQUIRE(catalog.models().has_value());

    fake.advance(10min + 1h - 1ns);
    fetch.failures.push_back(error(error_kind::internal_server, "down", 503));
    auto stale = catalog.validate("gpt-4o");
    CHECK(stale.has_value());  // from the old list
    CHECK(fetch.fetches() == 2);

    fake.advance(1ns);
    fetch.failures.push_back(error(error_kind::internal_server, "down", 503));
    auto gone = catalog.validate("gpt-4o");
    REQUIRE_FALSE(gone.has_value());
    CHECK(gone.error().status() == 503);
    CHECK(fetch.fetches() == 3);

    // A success afterwards caches again.
    CHECK(catalog.validate("gpt-4o").has_value());
    CHECK(catalog.validate("gpt-4o").has_value());
    CHECK(fetch.fetches() == 4);
}

TEST_CASE("model catalog: with max_stale zero a failed refresh is the answer", "[model_catalog][failure]") {
    fake_clock fake;
    scripted_fetch fetch;
    sturdy::model_catalog_options o;
    o.max_stale = 0s;
    const model_catalog catalog(through(fetch), o, fake.timing());
    REQUIRE(catalog.models().has_value());
    fake.advance(o.ttl);
    fetch.failures.push_back(error(error_kind::authentication, "bad key", 401));
    CHECK(catalog.models().error().kind() == error_kind::authentication);
}

TEST_CASE("model catalog: a fetch that throws lets the exception out and caches nothing", "[model_catalog][failure]") {
    int calls = 0;
    const model_catalog catalog([&](const request_options&) -> result<model_list> {
        if (++calls == 1) throw std::runtime_error("fetcher broke");
        return list_of({"m"});
    });
    CHECK_THROWS_WITH(catalog.models(), "fetcher broke");
    CHECK(catalog.validate("m").has_value());
    CHECK(calls == 2);
}

// ---- threads ----

TEST_CASE("model catalog: calls that find the list missing while it is fetched wait for that one fetch",
          "[model_catalog][threads]") {
    sturdy_test::gate release;
    std::atomic<int> fetches{0};
    const model_catalog catalog([&](const request_options&) -> result<model_list> {
        ++fetches;
        release.pass();
        return list_of({"gpt-4o", "o3"});
    });
    constexpr int callers = 8;
    std::vector<std::thread> threads;
    std::vector<int> served(callers, 0);
    for (int i = 0; i < callers; ++i)
        threads.emplace_back(
            [&, i] { served[static_cast<std::size_t>(i)] = catalog.validate("o3").has_value() ? 1 : 0; });
    release.wait_for_arrivals(1);
    // Give the other callers time to queue behind the fetch (they would each fetch otherwise).
    std::this_thread::sleep_for(50ms);
    release.open();
    for (auto& t : threads) t.join();
    CHECK(fetches.load() == 1);
    CHECK(served == std::vector<int>(callers, 1));
}

TEST_CASE("model catalog: callers waiting on a fetch that fails share its error", "[model_catalog][threads]") {
    sturdy_test::gate release;
    std::atomic<int> fetches{0};
    const model_catalog catalog([&](const request_options&) -> result<model_list> {
        ++fetches;
        release.pass();
        return error(error_kind::timeout, "slow");
    });
    constexpr int callers = 4;
    std::vector<std::thread> threads;
    std::vector<int> timed_out(callers, 0);
    for (int i = 0; i < callers; ++i)
        threads.emplace_back([&, i] {
            auto r = catalog.models();
            timed_out[static_cast<std::size_t>(i)] = !r && r.error().kind() == error_kind::timeout ? 1 : 0;
        });
    release.wait_for_arrivals(1);
    std::this_thread::sleep_for(50ms);
    release.open();
    for (auto& t : threads) t.join();
    CHECK(timed_out == std::vector<int>(callers, 1));
    CHECK(fetches.load() >= 1);
    CHECK(fetches.load() <= callers);  // one for all that queued in time; a latecomer fetches anew
}

TEST_CASE("model catalog: different routes are fetched at the same time", "[model_catalog][threads]") {
    sturdy_test::gate release;
    const model_catalog catalog([&](const request_options&) -> result<model_list> {
        release.pass();
        return list_of({"m"});
    });
    bool a_ok = false, b_ok = false;  // Catch's assertions are for the test's own thread
    std::thread a([&] { a_ok = catalog.models("a").has_value(); });
    std::thread b([&] { b_ok = catalog.models("b").has_value(); });
    release.wait_for_arrivals(2);  // both fetches under way at once
    release.open();
    a.join();
    b.join();
    CHECK(a_ok);
    CHECK(b_ok);
}

// ---- through a client and its routing policy ----

namespace {

// Serves GET <base>/models per base URL, as the endpoints of a fallback chain would; records each URL asked.
struct models_transport {
    std::shared_ptr<std::map<std::string, std::string>> bodies = std::make_shared<std::map<std::string, std::string>>();
    std::shared_ptr<std::vector<std::string>> asked = std::make_shared<std::vector<std::string>>();

    result<sturdy::http_head> send(const sturdy::http_request& request, sturdy::response_sink& sink) const {
        asked->push_back(request.url);
        sturdy::http_head head;
        auto it = bodies->find(request.url);
        head.status = it == bodies->end() ? 404 : 200;
        const std::string body = it == bodies->end() ? R"({"error":{"message":"no such path"}})" : it->second;
        if (!sink.on_head(head) || !sink.on_data(body)) return error(error_kind::cancelled, "stopped");
        return head;
    }
};

std::string models_json(const std::vector<std::string>& ids) {
    std::string out = R"({"object":"list","data":[)";
    for (std::size_t i = 0; i < ids.size(); ++i)
        out += (i ? "," : "") + std::string(R"({"id":")") + ids[i] + R"(","object":"model","owned_by":"x"})";
    return out + "]}";
}

sturdy::client_options client_at(std::string base_url) {
    sturdy::client_options o;
    o.base_url = std::move(base_url);
    o.api_key = "sk-test";
    return o;
}

}  // namespace

TEST_CASE("model catalog: through a fallback chain, each route's list comes from that route's endpoint",
          "[model_catalog][routing]") {
    models_transport transport;
    (*transport.bodies)["https://user:pw@primary.example/v1/models"] = models_json({"gpt-4o", "gpt-4o-mini"});
    (*transport.bodies)["https://backup.example/v1/models"] = models_json({"llama-3.1-70b", "llama-3.1-8b"});
    sturdy::endpoint backup;
    backup.base_url = "https://backup.example/v1";
    const std::vector<sturdy::fallback_target> targets{
        sturdy::fallback_target("primary", "gpt-4o-mini"),
        sturdy::fallback_target("backup", "llama-3.1-70b", backup),
        sturdy::fallback_target("long", "llama-3.1-405b", backup),
    };
    const sturdy::basic_client<models_transport, sturdy::fallback_policy> client(
        client_at("https://user:pw@primary.example/v1"), sturdy::fallback_policy(targets), transport);
    const model_catalog catalog(client);
    CHECK(catalog.options().name == "primary.example");  // the host, without user information

    CHECK(catalog.validate("gpt-4o").has_value());
    CHECK(catalog.validate("llama-3.1-70b", "backup").has_value());
    CHECK(transport.asked->back() == "https://backup.example/v1/models");

    const auto problems = catalog.validate_routes(targets);
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].message() ==
          "model \"llama-3.1-405b\" is not served by route \"long\"; did you mean: llama-3.1-70b, llama-3.1-8b?");
    // One fetch per key: "" (the chain as it is), backup (cached since), primary, long.
    CHECK(transport.asked->size() == 4);

    // A route the chain does not have: the chain's own error, as a failed fetch.
    auto unknown = catalog.validate("gpt-4o", "nowhere");
    REQUIRE_FALSE(unknown.has_value());
    CHECK(unknown.error().kind() == error_kind::invalid_argument);
    CHECK(transport.asked->size() == 4);
}

TEST_CASE("model catalog: validate_routes takes a traffic split's arms or plain routes", "[model_catalog][routing]") {
    scripted_fetch fetch;
    fetch.lists["candidate"] = {"m-new"};
    fetch.lists["control"] = {"m-old"};
    const model_catalog catalog(through(fetch));
    const std::vector<sturdy::split_arm> arms{sturdy::split_arm("control", "m-old"),
                                              sturdy::split_arm("candidate", "m-newer"),
                                              sturdy::split_arm("any", "")};  // the request's model: skipped
    const auto problems = catalog.validate_routes(arms);
    REQUIRE(problems.size() == 1);
    CHECK_THAT(problems[0].message(),
               Catch::Matchers::StartsWith("model \"m-newer\" is not served by route \"candidate\""));
    const std::vector<sturdy::route> routes{sturdy::route{"control", nullptr, "m-old"}};
    CHECK(catalog.validate_routes(routes).empty());
}

TEST_CASE("model catalog: a server without /models gives its 404, not a model_not_found", "[model_catalog][routing]") {
    models_transport transport;
    const sturdy::basic_client<models_transport, sturdy::no_policy> client(client_at("http://127.0.0.1:9/v1"),
                                                                           sturdy::no_policy{}, transport);
    const model_catalog catalog(client);
    auto checked = catalog.validate("gpt-4o");
    REQUIRE_FALSE(checked.has_value());
    CHECK(checked.error().kind() == error_kind::not_found);
    CHECK(checked.error().status() == 404);
    CHECK(checked.error().code() != "model_not_found");
}

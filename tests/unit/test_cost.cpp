// What a reply cost: golden cases for each provider's usage form, computed by hand at prices each
// test states itself (never the built-in table's, which change), the lookup rule, the JSON form.
#include <sturdy/chat.hpp>
#include <sturdy/embeddings.hpp>
#include <sturdy/options.hpp>
#include <sturdy/pricing.hpp>

#include "support/catch.hpp"

#include <cstdint>
#include <limits>
#include <regex>
#include <stdexcept>
#include <string>

using nlohmann::json;
using sturdy::billed_tokens;
using sturdy::model_price;
using sturdy::price_table;
using sturdy::token_usage;

namespace {

/// A usage as a reply carries it, read by the same reader the client uses.
token_usage usage_of(const char* usage_json) {
    const std::string reply =
        std::string(R"({"id":"r","object":"chat.completion","model":"m","choices":[],"usage":)") + usage_json + "}";
    sturdy::chat_response r;
    REQUIRE(sturdy::detail::read_json(reply, r, "choices"));
    REQUIRE(r.usage.has_value());
    return *r.usage;
}

model_price price(double input, std::optional<double> cached, double output,
                  std::optional<double> cache_write = std::nullopt) {
    return model_price{input, cached, cache_write, output};
}

}  // namespace

TEST_CASE("cost: OpenAI's form, a long prompt mostly read from the cache", "[cost]") {
    // 120,000 prompt tokens of which 100,000 cached; prices 2.00 / 0.50 cached / 8.00 output.
    const auto u = usage_of(R"({"prompt_tokens":120000,"completion_tokens":1000,"total_tokens":121000,
        "prompt_tokens_details":{"cached_tokens":100000,"audio_tokens":0},
        "completion_tokens_details":{"reasoning_tokens":0}})");
    CHECK(u.cached_prompt_tokens() == 100000);
    const auto t = billed_tokens::of(u);
    CHECK(t.input == 20000);
    CHECK(t.cached_input == 100000);
    CHECK(t.cache_write == 0);
    CHECK(t.output == 1000);
    // 20,000 × 2.00 + 100,000 × 0.50 + 1,000 × 8.00 = 40,000 + 50,000 + 8,000 = 98,000 per million
    CHECK(sturdy::cost_usd(u, price(2.00, 0.50, 8.00)) == Approx(0.098));
}

TEST_CASE("cost: reasoning tokens are inside the completion tokens, billed once", "[cost]") {
    const auto u = usage_of(R"({"prompt_tokens":1000,"completion_tokens":5000,"total_tokens":6000,
        "completion_tokens_details":{"reasoning_tokens":4200}})");
    CHECK(u.reasoning_tokens() == 4200);
    CHECK(billed_tokens::of(u).output == 5000);
    // 1,000 × 1.10 + 5,000 × 4.40 = 1,100 + 22,000 = 23,100 per million
    CHECK(sturdy::cost_usd(u, price(1.10, 0.275, 4.40)) == Approx(0.0231));
}

TEST_CASE("cost: a gateway that leaves thinking tokens out of completion_tokens, as its total shows", "[cost]") {
    // Gemini's thoughts mapped to reasoning_tokens only: 20 + 198 + 405 = 623 = total_tokens.
    const auto u = usage_of(R"({"prompt_tokens":20,"completion_tokens":198,"total_tokens":623,
        "completion_tokens_details":{"reasoning_tokens":405}})");
    CHECK(billed_tokens::of(u).output == 603);
    // 20 × 0.30 + 603 × 2.50 = 6 + 1,507.5 per million
    CHECK(sturdy::cost_usd(u, price(0.30, 0.03, 2.50)) == Approx(0.0015135));

    // Without a total that proves it, the reasoning stays inside the completion.
    const auto inside = usage_of(R"({"prompt_tokens":20,"completion_tokens":603,"total_tokens":623,
        "completion_tokens_details":{"reasoning_tokens":405}})");
    CHECK(billed_tokens::of(inside).output == 603);
}

TEST_CASE("cost: DeepSeek's cache hit and miss counts", "[cost]") {
    const auto u = usage_of(R"({"prompt_tokens":10000,"completion_tokens":500,"total_tokens":10500,
        "prompt_cache_hit_tokens":8000,"prompt_cache_miss_tokens":2000})");
    CHECK(u.cached_prompt_tokens() == 8000);
    const auto t = billed_tokens::of(u);
    CHECK(t.input == 2000);  // the miss count
    CHECK(t.cached_input == 8000);
    // 2,000 × 0.28 + 8,000 × 0.028 + 500 × 0.42 = 560 + 224 + 210 = 994 per million
    CHECK(sturdy::cost_usd(u, price(0.28, 0.028, 0.42)) == Approx(0.000994));
}

TEST_CASE("cost: a reply that sends the cached count in two forms counts it once", "[cost]") {
    const auto u = usage_of(R"({"prompt_tokens":10000,"completion_tokens":0,"total_tokens":10000,
        "prompt_tokens_details":{"cached_tokens":8000},
        "prompt_cache_hit_tokens":8000,"prompt_cache_miss_tokens":2000})");
    CHECK(u.cached_prompt_tokens() == 8000);
    CHECK(billed_tokens::of(u).input == 2000);
}

TEST_CASE("cost: Kimi's cached_tokens at the top level of usage", "[cost]") {
    const auto u =
        usage_of(R"({"prompt_tokens":5000,"completion_tokens":200,"total_tokens":5200,"cached_tokens":3000})");
    CHECK(u.cached_prompt_tokens() == 3000);
    // 2,000 × 0.60 + 3,000 × 0.15 + 200 × 2.50 = 1,200 + 450 + 500 = 2,150 per million
    CHECK(sturdy::cost_usd(u, price(0.60, 0.15, 2.50)) == Approx(0.00215));
}

TEST_CASE("cost: cache writes, in OpenAI's and Qwen's forms, at the cache-write price", "[cost]") {
    SECTION("prompt_tokens_details.cache_write_tokens, as the OpenAI API defines it") {
        // The split of OpenAI's usage example: 1,000 input = 400 cached + 100 written + 500 uncached.
        const auto u = usage_of(R"({"prompt_tokens":1000,"completion_tokens":500,"total_tokens":1500,
            "prompt_tokens_details":{"cached_tokens":400,"cache_write_tokens":100}})");
        CHECK(u.cache_write_tokens() == 100);
        const auto t = billed_tokens::of(u);
        CHECK(t.input == 500);
        CHECK(t.cached_input == 400);
        CHECK(t.cache_write == 100);
        // 500 × 2.00 + 400 × 0.50 + 100 × 2.50 + 500 × 8.00 = 1,000 + 200 + 250 + 4,000 = 5,450 per million
        CHECK(sturdy::cost_usd(u, price(2.00, 0.50, 8.00, 2.50)) == Approx(0.00545));
    }
    SECTION("Qwen's explicit cache: prompt_tokens_details.cache_creation_input_tokens") {
        const auto u = usage_of(R"({"prompt_tokens":1500,"completion_tokens":100,"total_tokens":1600,
            "prompt_tokens_details":{"cached_tokens":0,"cache_creation_input_tokens":1307,"cache_type":"ephemeral"}})");
        CHECK(u.cache_write_tokens() == 1307);
        // 193 × 0.40 + 1,307 × 0.50 + 100 × 1.20 = 77.2 + 653.5 + 120 = 850.7 per million
        CHECK(sturdy::cost_usd(u, price(0.40, 0.08, 1.20, 0.50)) == Approx(0.0008507));
    }
    SECTION("an Anthropic-style gateway's top-level counts") {
        const auto u = usage_of(R"({"prompt_tokens":3000,"completion_tokens":10,"total_tokens":3010,
            "cache_read_input_tokens":1000,"cache_creation_input_tokens":1500})");
        const auto t = billed_tokens::of(u);
        CHECK(t.cached_input == 1000);
        CHECK(t.cache_write == 1500);
        CHECK(t.input == 500);
    }
    SECTION("without a cache-write price, written tokens bill at the input price") {
        const auto u = usage_of(R"({"prompt_tokens":1000,"completion_tokens":0,"total_tokens":1000,
            "prompt_tokens_details":{"cache_write_tokens":1000}})");
        CHECK(sturdy::cost_usd(u, price(2.00, 0.50, 8.00)) == Approx(0.002));
    }
}

TEST_CASE("cost: without a cached price, cached tokens bill at the input price", "[cost]") {
    const auto u = usage_of(R"({"prompt_tokens":1000,"completion_tokens":0,"total_tokens":1000,
        "prompt_tokens_details":{"cached_tokens":600}})");
    CHECK(sturdy::cost_usd(u, price(1.00, std::nullopt, 0)) == Approx(0.001));
}

TEST_CASE("cost: an embeddings reply's prompt tokens at the input price", "[cost]") {
    sturdy::embedding_response r;
    REQUIRE(sturdy::detail::read_json(
        R"({"object":"list","data":[],"model":"text-embedding-3-small","usage":{"prompt_tokens":1000,"total_tokens":1000}})",
        r, "data"));
    REQUIRE(r.usage);
    // 1,000 × 0.02 = 20 per million
    CHECK(sturdy::cost_usd(*r.usage, price(0.02, std::nullopt, 0)) == Approx(0.00002));
}

TEST_CASE("cost: counts a server gets wrong never make a cost negative or throw", "[cost]") {
    SECTION("more cached than prompt tokens") {
        const auto u = usage_of(R"({"prompt_tokens":10,"completion_tokens":0,"total_tokens":10,
            "prompt_tokens_details":{"cached_tokens":1000}})");
        const auto t = billed_tokens::of(u);
        CHECK(t.input == 0);
        CHECK(t.cached_input == 1000);  // billed as reported
    }
    SECTION("negative, fractional, textual and huge counts") {
        const auto u = usage_of(R"({"prompt_tokens":-5,"completion_tokens":-1,"total_tokens":0,
            "prompt_tokens_details":{"cached_tokens":"12","cache_write_tokens":-3},
            "completion_tokens_details":{"reasoning_tokens":1e300},
            "prompt_cache_hit_tokens":2.5,"cached_tokens":null})");
        CHECK(u.cached_prompt_tokens() == 2);
        CHECK(u.cache_write_tokens() == 0);
        CHECK(u.reasoning_tokens() == std::numeric_limits<std::int64_t>::max());
        const auto t = billed_tokens::of(u);
        CHECK(t.input == 0);
        CHECK(t.output == 0);
        CHECK(sturdy::cost_usd(u, price(1, 1, 1)) >= 0);
    }
    SECTION("details that are not objects") {
        const auto u = usage_of(R"({"prompt_tokens":10,"completion_tokens":1,"total_tokens":11,
            "prompt_tokens_details":[1,2],"completion_tokens_details":"x"})");
        CHECK(u.cached_prompt_tokens() == 0);
        CHECK(u.reasoning_tokens() == 0);
        CHECK(billed_tokens::of(u).input == 10);
    }
}

TEST_CASE("cost: a model is found by its id, or by its id without a snapshot tag; never guessed", "[cost]") {
    price_table t("2026-01-01");
    t.set("gpt-4o-mini", price(1, 0.5, 2));
    t.set("gpt-4o", price(3, 1.5, 4));
    t.set("gpt-4o-2024-05-13", price(5, std::nullopt, 6));
    t.set("gpt-4.1", price(7, 1, 8));
    t.set("gemini-2.0-flash", price(9, 1, 10));
    t.set("qwen-plus", price(11, 1, 12));

    auto priced_as = [&](const char* model) -> std::string {
        const auto e = t.find(model);
        return e ? e->model : std::string("(none)");
    };
    CHECK(priced_as("gpt-4o-mini") == "gpt-4o-mini");
    CHECK(priced_as("gpt-4o-mini-2024-07-18") == "gpt-4o-mini");
    CHECK(priced_as("gpt-4o-2024-08-06") == "gpt-4o");
    CHECK(priced_as("gpt-4o-2024-05-13") == "gpt-4o-2024-05-13");  // listed apart: the exact id wins
    CHECK(t.find("gpt-4o-2024-05-13")->price.input == 5);
    CHECK(priced_as("gemini-2.0-flash-001") == "gemini-2.0-flash");
    CHECK(priced_as("models/gemini-2.0-flash") == "gemini-2.0-flash");
    CHECK(priced_as("openai/gpt-4o-mini") == "gpt-4o-mini");  // a gateway's name for the same model
    CHECK(priced_as("qwen-plus-2025-01-25") == "qwen-plus");
    CHECK(priced_as("qwen-plus-20250125") == "qwen-plus");
    CHECK(priced_as("qwen-plus-0919") == "qwen-plus");

    // Not a snapshot of a listed model: no price.
    CHECK(priced_as("gpt-4.1-nano") == "(none)");
    CHECK(priced_as("gpt-4o-mini-audio-preview") == "(none)");
    CHECK(priced_as("gpt-4o-realtime-preview-2024-12-17") == "(none)");
    CHECK(priced_as("GPT-4O-MINI") == "(none)");
    CHECK(priced_as("qwen-plus-latest") == "(none)");
    CHECK(priced_as("gpt-4o-12") == "(none)");
    CHECK(priced_as("") == "(none)");
    CHECK(priced_as("-2024-07-18") == "(none)");

    const auto u = usage_of(R"({"prompt_tokens":1000000,"completion_tokens":0,"total_tokens":1000000})");
    CHECK(t.cost_usd("gpt-4o-mini-2024-07-18", u) == Approx(1.0));
    CHECK_FALSE(t.cost_usd("llama3:8b", u).has_value());
}

TEST_CASE("cost: a table reads and writes its JSON form", "[cost]") {
    const auto t = price_table::parse(R"({
        "prices_read": "2026-11-30",
        "note": "our negotiated prices",
        "models": {
            "gpt-4o-mini": {"input": 0.15, "cached_input": 0.075, "output": 0.6},
            "qwen-plus": {"input": 0.4, "cached_input": 0.08, "cache_write": 0.5, "output": 1.2},
            "text-embedding-3-small": {"input": 0.02, "output": 0}
        }})");
    CHECK(t.prices_read() == "2026-11-30");
    CHECK(t.note() == "our negotiated prices");
    CHECK(t.models().size() == 3);
    CHECK(t.find("gpt-4o-mini")->price == price(0.15, 0.075, 0.6));
    CHECK(t.find("qwen-plus")->price == price(0.4, 0.08, 1.2, 0.5));
    CHECK_FALSE(t.find("text-embedding-3-small")->price.cached_input.has_value());

    const auto back = price_table::from_json(t.to_json());
    CHECK(back == t);
    CHECK(price_table::parse(t.to_json().dump()) == t);

    price_table built("2026-11-30");
    built.set_note("our negotiated prices");
    built.set("gpt-4o-mini", price(0.15, 0.075, 0.6))
        .set("qwen-plus", price(0.4, 0.08, 1.2, 0.5))
        .set("text-embedding-3-small", price(0.02, std::nullopt, 0));
    CHECK(built == t);
    CHECK(built.erase("qwen-plus"));
    CHECK_FALSE(built.erase("qwen-plus"));
    CHECK(built != t);

    CHECK(price_table::parse(R"({"models":{}})").models().empty());
}

TEST_CASE("cost: a table's JSON errors name the model and the field", "[cost]") {
    auto refused = [](const char* text) -> std::string {
        try {
            price_table::parse(text);
        } catch (const std::invalid_argument& e) {
            return e.what();
        }
        return "(accepted)";
    };
    CHECK(refused(R"({"models":{"gpt-4o":{"input":-1,"output":10}}})") ==
          "sturdy::price_table: models.gpt-4o.input must be a number >= 0");
    CHECK(refused(R"({"models":{"gpt-4o":{"input":"2.5","output":10}}})") ==
          "sturdy::price_table: models.gpt-4o.input must be a number >= 0");
    CHECK(refused(R"({"models":{"gpt-4o":{"input":2.5}}})") == "sturdy::price_table: models.gpt-4o.output is required");
    CHECK(refused(R"({"models":{"gpt-4o":{"output":10}}})") == "sturdy::price_table: models.gpt-4o.input is required");
    CHECK(refused(R"({"models":{"gpt-4o":{"input":2.5,"cached":1.25,"output":10}}})") ==
          "sturdy::price_table: models.gpt-4o.cached is not a price (input, cached_input, cache_write, output)");
    CHECK(refused(R"({"models":{"gpt-4o":{"input":2.5,"cache_write":null,"output":10}}})") ==
          "sturdy::price_table: models.gpt-4o.cache_write must be a number >= 0");
    CHECK(refused(R"({"models":{"gpt-4o":[2.5,10]}})") ==
          "sturdy::price_table: models.gpt-4o must be an object of prices");
    CHECK(refused(R"({"models":{"":{"input":1,"output":1}}})") == "sturdy::price_table: a model id must not be empty");
    CHECK(refused(R"({"models":[]})") == "sturdy::price_table: models must be an object of model ids");
    CHECK(refused(R"({"prices_read":"2026-01-01"})") == "sturdy::price_table: models is required");
    CHECK(refused(R"({"prices_read":20260101,"models":{}})") == "sturdy::price_table: prices_read must be a string");
    CHECK(refused(R"({"model":{},"models":{}})") ==
          "sturdy::price_table: model is not a field of a price table (prices_read, note, models)");
    CHECK(refused(R"([1])") == "sturdy::price_table: the table must be a JSON object");
    CHECK(refused(R"({"models":{)") == "sturdy::price_table: the table is not valid JSON");

    price_table t;
    CHECK_THROWS_AS(t.set("m", price(std::numeric_limits<double>::infinity(), std::nullopt, 1)), std::invalid_argument);
    CHECK_THROWS_AS(t.set("m", price(1, -0.5, 1)), std::invalid_argument);
    CHECK_THROWS_AS(t.set("", price(1, std::nullopt, 1)), std::invalid_argument);
    CHECK(t.models().empty());
}

TEST_CASE("cost: the built-in table is dated, sourced and used by default", "[cost]") {
    const auto builtin = price_table::builtin();
    REQUIRE(builtin);
    CHECK(std::regex_match(builtin->prices_read(), std::regex(R"(\d{4}-\d{2}-\d{2})")));
    CHECK(builtin->note().find("verify") != std::string::npos);
    CHECK(price_table::builtin() == builtin);  // one shared table
    CHECK(sturdy::client_options{}.prices == builtin);

    // The models of the providers sturdy has presets for (prices are not asserted: they change).
    for (const char* model :
         {"gpt-4o", "gpt-4o-mini-2024-07-18", "gpt-4.1", "gpt-4.1-mini", "o3", "o4-mini", "text-embedding-3-small",
          "text-embedding-3-large", "deepseek-chat", "deepseek-reasoner", "qwen-plus", "qwen-max", "qwen-turbo",
          "moonshot-v1-8k", "kimi-k2-0905-preview", "gemini-2.0-flash", "gemini-2.5-flash", "gemini-2.5-pro"}) {
        INFO(model);
        CHECK(builtin->find(model).has_value());
    }
    for (const auto& [model, p] : builtin->models()) {
        INFO(model);
        CHECK(p.input > 0);
        if (p.cached_input) CHECK(*p.cached_input <= p.input);
    }
    CHECK(price_table::from_json(builtin->to_json()) == *builtin);
}

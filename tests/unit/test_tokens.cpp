// Counting tokens before a call, context windows per model, fitting a conversation into one, and
// cosine similarity of embeddings.
#include <sturdy/context_window.hpp>
#include <sturdy/fallback.hpp>
#include <sturdy/similarity.hpp>
#include <sturdy/tokens.hpp>

#include "support/catch.hpp"

#include <cmath>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

using sturdy::chat_message;
using sturdy::estimate_tokens;

// ---- the estimate ----

TEST_CASE("tokens: ASCII is a token per 4 characters, rounded up", "[tokens]") {
    CHECK(estimate_tokens("") == 0);
    CHECK(estimate_tokens("a") == 1);
    CHECK(estimate_tokens("abcd") == 1);
    CHECK(estimate_tokens("abcde") == 2);
    CHECK(estimate_tokens(std::string(4000, 'x')) == 1000);
}

TEST_CASE("tokens: CJK is a token per character, not per 4 bytes", "[tokens]") {
    // Six ideographs: 18 bytes of UTF-8, which a bytes/4 rule would call 4 or 5 tokens.
    CHECK(estimate_tokens("\xE4\xBD\xA0\xE5\xA5\xBD\xE4\xB8\x96\xE7\x95\x8C\xE6\x9C\x8B\xE5\x8F\x8B") ==
          6);                                                                                     // 你好世界朋友
    CHECK(estimate_tokens("\xE3\x81\x93\xE3\x82\x93\xE3\x81\xAB\xE3\x81\xA1\xE3\x81\xAF") == 5);  // こんにちは
    CHECK(estimate_tokens("\xEC\x95\x88\xEB\x85\x95") == 2);                                      // 안녕
    CHECK(estimate_tokens("\xF0\xA0\x80\x80") == 1);  // U+20000, a supplementary ideograph
    // Mixed: "Hi " (1) + two ideographs (2).
    CHECK(estimate_tokens("Hi \xE4\xBD\xA0\xE5\xA5\xBD") == 3);
}

TEST_CASE("tokens: other scripts are a token per 2 characters; broken UTF-8 still counts", "[tokens]") {
    CHECK(estimate_tokens("\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82") == 3);  // Привет: 6 letters
    CHECK(estimate_tokens("\xF0\x9F\x98\x80") == 1);                                  // one emoji
    CHECK(estimate_tokens("\xE4\xBD") == 1);      // a cut sequence: two stray bytes, one token
    CHECK(estimate_tokens("\xFF\xFE\xFD") == 2);  // never valid UTF-8: three others
}

TEST_CASE("tokens: a message pays for its framing, a request for its tools too", "[tokens]") {
    const sturdy::token_counter count;
    CHECK(count.message(chat_message::user("abcd")) == sturdy::token_counter::per_message + 1);
    chat_message call = chat_message::assistant("");
    call.tool_calls.push_back({"call_1", "function", {"weather", R"({"city":"Paris"})"}, {}, {}});
    CHECK(count.message(call) ==
          sturdy::token_counter::per_message + estimate_tokens("weather") + estimate_tokens(R"({"city":"Paris"})"));

    sturdy::chat_request r{"m", {chat_message::system("be brief"), chat_message::user("hello there")}};
    const auto without_tools = count.prompt(r);
    CHECK(without_tools ==
          2 * sturdy::token_counter::per_message + estimate_tokens("be brief") + estimate_tokens("hello there"));
    r.tools = nlohmann::json::array({{{"type", "function"}, {"function", {{"name", "weather"}}}}});
    CHECK(count.prompt(r) == without_tools + estimate_tokens(r.tools.dump()));

    CHECK(count.prompt(sturdy::embedding_request{"e", {"abcd", "abcdefgh"}}) == 3);
}

TEST_CASE("tokens: an exact tokenizer replaces the estimate everywhere the counter counts", "[tokens]") {
    std::vector<std::string> seen;
    const sturdy::token_counter exact([&](std::string_view text) {
        seen.emplace_back(text);
        return static_cast<std::int64_t>(text.size());  // a byte-level "tokenizer"
    });
    CHECK(exact.exact());
    CHECK_FALSE(sturdy::token_counter().exact());
    CHECK(exact.text("hello") == 5);
    CHECK(exact.prompt(sturdy::chat_request{"m", {chat_message::user("12345678")}}) ==
          sturdy::token_counter::per_message + 8);
    CHECK(std::find(seen.begin(), seen.end(), "12345678") != seen.end());
}

// ---- context windows ----

TEST_CASE("context windows: snapshots and gateway prefixes find their model, never a sibling", "[tokens][windows]") {
    sturdy::context_window_table t;
    t.set("gpt-4o", 128000).set("gpt-4o-mini", 64000).set("gpt-4.1", 1047576).set("gemini-2.0-flash", 1048576);
    CHECK(t.find("gpt-4o") == 128000);
    CHECK(t.find("gpt-4o-2024-08-06") == 128000);
    CHECK(t.find("gpt-4o-mini-2024-07-18") == 64000);
    CHECK(t.find("openai/gpt-4o-mini") == 64000);
    CHECK(t.find("models/gemini-2.0-flash-001") == 1048576);
    CHECK_FALSE(t.find("gpt-4.1-nano").has_value());  // a sibling, not a snapshot
    CHECK_FALSE(t.find("gpt-4").has_value());
    CHECK_FALSE(t.find("gpt-4o-realtime-preview").has_value());
    CHECK_FALSE(t.find("").has_value());
    CHECK_THROWS_AS(t.set("bad", 0), std::invalid_argument);
}

TEST_CASE("context windows: the defaults know the README's providers, and users extend them", "[tokens][windows]") {
    auto t = sturdy::context_window_table::with_defaults();
    for (const char* model : {"gpt-4o-mini", "deepseek-chat", "qwen-plus", "moonshot-v1-8k", "gemini-2.5-flash"}) {
        INFO(model);
        REQUIRE(t.find(model).has_value());
        CHECK(*t.find(model) >= 8192);
    }
    CHECK_FALSE(t.find("my-finetune").has_value());
    t.set("my-finetune", 32768);
    CHECK(t.find("my-finetune") == 32768);
    CHECK(sturdy::context_window_table().empty());
}

TEST_CASE("context windows: a fallback target without a declared window takes the table's",
          "[tokens][windows][fallback]") {
    std::vector<sturdy::fallback_skip_event> skips;
    sturdy::fallback_options opts;
    opts.context_windows.set("small-model", 1000).set("large-model", 100000);
    opts.on_skip = [&](const sturdy::fallback_skip_event& e) { skips.push_back(e); };
    sturdy::fallback_policy chain({sturdy::fallback_target("small", "small-model-2025-01-01"),
                                   sturdy::fallback_target("declared", "small-model").with_window(3000),
                                   sturdy::fallback_target("large", "large-model")},
                                  opts);
    sturdy::call_state state;
    sturdy::call_context ctx(sturdy::operation::chat, "m", state);
    ctx.estimated_prompt_tokens = 5000;
    std::vector<std::string> asked;
    auto out = chain.execute(ctx, [&](sturdy::call_context& at) -> sturdy::result<std::string> {
        asked.emplace_back(at.effective_model());
        return std::string("ok");
    });
    REQUIRE(out.has_value());
    CHECK(asked == std::vector<std::string>{"large-model"});
    REQUIRE(skips.size() == 2);
    CHECK(skips[0].context_window == 1000);  // from the table, through the dated id
    CHECK(skips[1].context_window == 3000);  // declared wins over the table
}

// ---- fitting a conversation ----

namespace {

// A tokenizer that makes budgets easy to reason about: one token per character.
const sturdy::token_counter per_char([](std::string_view text) { return static_cast<std::int64_t>(text.size()); });
constexpr std::int64_t frame = sturdy::token_counter::per_message;

std::vector<std::string> contents(const sturdy::chat_request& r) {
    std::vector<std::string> out;
    for (const auto& m : r.messages) out.push_back(m.role + ":" + m.content);
    return out;
}

}  // namespace

TEST_CASE("fit: the system message and the newest turns are kept, the oldest go first", "[tokens][fit]") {
    sturdy::chat_request r{"m",
                           {chat_message::system("sys"), chat_message::user("u1"), chat_message::assistant("a1"),
                            chat_message::user("u2"), chat_message::assistant("a2"), chat_message::user("u3")}};
    // Each message costs frame + its length: system 3, the others 2.
    const std::int64_t sys = frame + 3, turn = frame + 2;
    SECTION("everything fits") {
        auto f = sturdy::fit_to_window(r, sys + 5 * turn, 0, per_char);
        CHECK(f.dropped == 0);
        CHECK(f.fits);
        CHECK(f.tokens == sys + 5 * turn);
        CHECK(f.request.messages.size() == 6);
    }
    SECTION("room for three turns, with a reserve for the reply") {
        auto f = sturdy::fit_to_window(r, sys + 3 * turn + 100, 100, per_char);
        CHECK(contents(f.request) == std::vector<std::string>{"system:sys", "user:u2", "assistant:a2", "user:u3"});
        CHECK(f.dropped == 2);
        CHECK(f.fits);
        CHECK(f.tokens == sys + 3 * turn);
    }
    SECTION("a system message in the middle stays where it was") {
        r.messages.insert(r.messages.begin() + 3, chat_message::system("mid"));
        auto f = sturdy::fit_to_window(r, 2 * sys + 3 * turn, 0, per_char);
        CHECK(contents(f.request) ==
              std::vector<std::string>{"system:sys", "system:mid", "user:u2", "assistant:a2", "user:u3"});
    }
    SECTION("room for a turn and a half: a turn is never cut, so only the last is kept") {
        auto f = sturdy::fit_to_window(r, sys + 2 * turn, 0, per_char);
        CHECK(contents(f.request) == std::vector<std::string>{"system:sys", "user:u3"});
        CHECK(f.dropped == 4);
        CHECK(f.fits);
    }
    SECTION("no room even for the last turn: it is kept, and fits says so") {
        auto f = sturdy::fit_to_window(r, sys, 0, per_char);
        CHECK(contents(f.request) == std::vector<std::string>{"system:sys", "user:u3"});
        CHECK_FALSE(f.fits);
    }
}

TEST_CASE("fit: turns are kept or left out whole, so a tool result never loses its call", "[tokens][fit]") {
    chat_message call = chat_message::assistant("");
    call.tool_calls.push_back({"c1", "function", {"f", "{}"}, {}, {}});
    call.tool_calls.push_back({"c2", "function", {"g", "{}"}, {}, {}});
    sturdy::chat_request r{"m",
                           {chat_message::assistant("Hello, how can I help?"), chat_message::user("question"), call,
                            chat_message::tool("c1", "result one"), chat_message::tool("c2", "result two"),
                            chat_message::assistant("done"), chat_message::user("and?")}};
    const std::int64_t last = frame + 4;
    const std::int64_t tool_turn =
        (frame + 8) + per_char.message(call) + 2 * (frame + 10) + (frame + 4);  // question .. done
    SECTION("the tool turn fits: all of it is kept, the greeting before the first question is not") {
        auto f = sturdy::fit_to_window(r, last + tool_turn, 0, per_char);
        REQUIRE(f.request.messages.size() == 6);
        CHECK(f.request.messages[0].content == "question");
        CHECK(f.request.messages[1].tool_calls.size() == 2);
        CHECK(f.request.messages[3].tool_call_id == "c2");
        CHECK(f.dropped == 1);
        CHECK(f.tokens == last + tool_turn);
    }
    SECTION("one token short of the tool turn: none of it is kept") {
        auto f = sturdy::fit_to_window(r, last + tool_turn - 1, 0, per_char);
        CHECK(contents(f.request) == std::vector<std::string>{"user:and?"});
        CHECK(f.dropped == 6);
    }
}

TEST_CASE("fit: tools' definitions count against the budget", "[tokens][fit]") {
    sturdy::chat_request r{"m", {chat_message::user("old"), chat_message::user("new")}};
    const std::int64_t each = frame + 3;
    CHECK(sturdy::fit_to_window(r, 2 * each, 0, per_char).dropped == 0);
    r.tools = nlohmann::json::array({"x"});
    auto f = sturdy::fit_to_window(r, 2 * each, 0, per_char);
    CHECK(f.dropped == 1);
    CHECK(f.tokens == each + static_cast<std::int64_t>(r.tools.dump().size()));
}

// ---- similarity ----

TEST_CASE("similarity: cosine of known vectors", "[similarity]") {
    using sturdy::cosine_similarity;
    const std::vector<float> x{1, 0, 0}, y{0, 1, 0}, neg{-2, 0, 0}, zero{0, 0, 0}, diag{1, 1, 0};
    CHECK(cosine_similarity(x, x) == Approx(1.0));
    CHECK(cosine_similarity(x, y) == Approx(0.0).margin(1e-12));
    CHECK(cosine_similarity(x, neg) == Approx(-1.0));
    CHECK(cosine_similarity(x, diag) == Approx(1 / std::sqrt(2.0)));
    CHECK(cosine_similarity(x, zero) == 0.0);
    CHECK_THROWS_AS(cosine_similarity(x, std::vector<float>{1, 0}), std::invalid_argument);
}

TEST_CASE("similarity: agrees with a double-precision reference at every size, tails included", "[similarity]") {
    std::mt19937 rng(7);
    std::normal_distribution<float> value(0.0f, 1.0f);
    for (std::size_t size : {1u, 7u, 8u, 9u, 255u, 1536u, 3072u}) {
        std::vector<float> a(size), b(size);
        for (std::size_t i = 0; i < size; ++i) {
            a[i] = value(rng);
            b[i] = 0.6f * a[i] + value(rng);  // correlated, so the cosine is far from 0
        }
        double dot = 0, na = 0, nb = 0;
        for (std::size_t i = 0; i < size; ++i) {
            dot += double(a[i]) * b[i];
            na += double(a[i]) * a[i];
            nb += double(b[i]) * b[i];
        }
        INFO("size " << size);
        CHECK(sturdy::cosine_similarity(a, b) == Approx(dot / std::sqrt(na * nb)).margin(1e-5));
    }
}

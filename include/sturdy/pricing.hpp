#pragma once
/// @file
/// What a call cost: a price per model, a table of them (built in, set in code or read from
/// JSON), and the arithmetic that turns a reply's token usage into US dollars.
///
/// The arithmetic is a pure function of a usage and a price (`cost_usd`), so whatever aggregates
/// cost later (per route, per model) computes it the same way the client does for each reply.

#include <sturdy/detail/model_names.hpp>
#include <sturdy/usage.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace sturdy {

/// One model's prices, in US dollars per million tokens.
struct model_price {
    /// Prompt tokens neither read from nor written to a cache.
    double input = 0;
    /// Prompt tokens read from the provider's prompt cache. Unset: billed at `input`.
    std::optional<double> cached_input{};
    /// Prompt tokens written to the cache, where a provider bills the write apart (Qwen's explicit
    /// cache, Anthropic-style caching). Unset: billed at `input`.
    std::optional<double> cache_write{};
    /// Completion tokens, reasoning tokens included. An embedding model's is 0.
    double output = 0;

    /// Equal when every price is.
    friend bool operator==(const model_price& a, const model_price& b) noexcept {
        return a.input == b.input && a.cached_input == b.cached_input && a.cache_write == b.cache_write &&
               a.output == b.output;
    }
    /// Not equal when any price differs.
    friend bool operator!=(const model_price& a, const model_price& b) noexcept { return !(a == b); }
};

/// A usage's tokens, split by the price each is billed at. Every token is in exactly one part.
struct billed_tokens {
    /// Prompt tokens neither read from nor written to a cache: prompt − cached − cache writes,
    /// never below 0.
    std::int64_t input = 0;
    /// Prompt tokens read from the cache (`token_usage::cached_prompt_tokens`).
    std::int64_t cached_input = 0;
    /// Prompt tokens written to the cache (`token_usage::cache_write_tokens`).
    std::int64_t cache_write = 0;
    /// Completion tokens, reasoning included.
    std::int64_t output = 0;

    /// Splits `usage`. Cached and cache-write tokens are a part of `prompt_tokens` and reasoning
    /// tokens a part of `completion_tokens`, as OpenAI defines them, so none is counted twice.
    /// One exception, proven by the usage's own total: when `total_tokens` equals prompt +
    /// completion + reasoning (a gateway that maps Gemini's thinking tokens outside
    /// `completion_tokens`), the reasoning tokens are added to the output. Counts below 0 are 0.
    static billed_tokens of(const token_usage& usage) {
        const std::int64_t prompt = std::max<std::int64_t>(usage.prompt_tokens, 0);
        const std::int64_t completion = std::max<std::int64_t>(usage.completion_tokens, 0);
        const std::int64_t total = std::max<std::int64_t>(usage.total_tokens, 0);
        const std::int64_t reasoning = usage.reasoning_tokens();
        billed_tokens out;
        out.cached_input = usage.cached_prompt_tokens();
        out.cache_write = usage.cache_write_tokens();
        // Step by step, so that no count a server sends can overflow.
        std::int64_t uncached = prompt > out.cached_input ? prompt - out.cached_input : 0;
        out.input = uncached > out.cache_write ? uncached - out.cache_write : 0;
        out.output = completion;
        const bool reasoning_left_out = reasoning > 0 && total >= prompt && total - prompt >= completion &&
                                        total - prompt - completion == reasoning;
        if (reasoning_left_out) out.output = completion + reasoning;
        return out;
    }
};

/// The cost of `tokens` at `price`, in US dollars:
///
///     (input · price.input + cached_input · price.cached_input
///      + cache_write · price.cache_write + output · price.output) / 1,000,000
///
/// with an unset cached or cache-write price taken as `price.input`.
inline double cost_usd(const billed_tokens& tokens, const model_price& price) noexcept {
    const double cached_price = price.cached_input.value_or(price.input);
    const double write_price = price.cache_write.value_or(price.input);
    return (static_cast<double>(tokens.input) * price.input + static_cast<double>(tokens.cached_input) * cached_price +
            static_cast<double>(tokens.cache_write) * write_price + static_cast<double>(tokens.output) * price.output) /
           1e6;
}

/// The cost of `usage` at `price`, in US dollars: `cost_usd(billed_tokens::of(usage), price)`.
/// An embeddings reply's usage has prompt tokens only, billed at the input price.
inline double cost_usd(const token_usage& usage, const model_price& price) {
    return cost_usd(billed_tokens::of(usage), price);
}

/// Prices by model id, and the date they were read.
///
/// A model is looked up by its exact id first. Failing that, by the id without a prefix up to
/// its last '/' (a gateway's "openai/gpt-4o", Gemini's resource name "models/...") and without
/// one trailing snapshot tag: a date (`-2024-07-18`, `-20240718`, `-0718`) or a three-digit
/// version (`-001`). So "gpt-4o-mini-2024-07-18" is priced as "gpt-4o-mini" and
/// "gemini-2.0-flash-001" as "gemini-2.0-flash"; a snapshot priced apart from its alias is listed
/// under its own id, which wins. Nothing else is stripped or guessed: "gpt-4.1-nano" is not
/// "gpt-4.1", and a model the table does not list has no price. Context windows
/// (`context_window_table`) use the same rule.
///
/// As JSON (`from_json`, `parse`, `to_json`), in US dollars per million tokens:
///
///     {"prices_read": "2026-12-02",
///      "models": {"gpt-4o-mini": {"input": 0.15, "cached_input": 0.075, "output": 0.6},
///                 "qwen-plus": {"input": 0.4, "cached_input": 0.08, "cache_write": 0.5, "output": 1.2},
///                 "text-embedding-3-small": {"input": 0.02, "output": 0}}}
///
/// `input` and `output` are required, `cached_input` and `cache_write` optional (unset: the input
/// price); `prices_read` and `note` (free text, e.g. the sources) are optional strings. Anything
/// else is refused, so a misspelt field never silently bills at the wrong price.
///
/// Set on `client_options::prices`, a table prices every reply (`call_info::cost_usd`). Once
/// shared as `std::shared_ptr<const price_table>` it is read from many threads at once.
class price_table {
public:
    /// An empty table.
    price_table() = default;
    /// An empty table whose prices were read on `prices_read` (a date, "YYYY-MM-DD").
    explicit price_table(std::string prices_read) : prices_read_(std::move(prices_read)) {}

    /// Sets the prices of `model` (an exact id), replacing any it had. Throws
    /// std::invalid_argument for an empty id or a price that is negative or not finite.
    price_table& set(std::string model, model_price price) {
        check_entry(model, price);
        models_[std::move(model)] = price;
        return *this;
    }
    /// Removes `model` (an exact id); false when it was not listed.
    bool erase(std::string_view model) {
        const auto it = models_.find(model);
        if (it == models_.end()) return false;
        models_.erase(it);
        return true;
    }

    /// A model as the table prices it: the entry's id (after the lookup rule) and its prices.
    struct entry {
        /// The id the table lists, e.g. "gpt-4o-mini" for "gpt-4o-mini-2024-07-18".
        std::string model;
        /// Its prices.
        model_price price;
    };
    /// The entry that prices `model`, by the lookup rule above; nullopt when none does.
    std::optional<entry> find(std::string_view model) const {
        const auto it = detail::find_model(models_, model);
        if (it == models_.end()) return std::nullopt;
        return entry{it->first, it->second};
    }
    /// The cost of `usage` from `model`, in US dollars; nullopt when the table has no price for it.
    std::optional<double> cost_usd(std::string_view model, const token_usage& usage) const {
        const auto found = find(model);
        if (!found) return std::nullopt;
        return sturdy::cost_usd(usage, found->price);
    }

    /// When the prices were read ("YYYY-MM-DD"); empty when not said.
    const std::string& prices_read() const noexcept { return prices_read_; }
    /// Sets the date the prices were read.
    void set_prices_read(std::string date) { prices_read_ = std::move(date); }
    /// Free text kept with the table, e.g. where its prices come from.
    const std::string& note() const noexcept { return note_; }
    /// Sets the note.
    void set_note(std::string text) { note_ = std::move(text); }
    /// Every listed model and its prices, by exact id.
    const std::map<std::string, model_price, std::less<>>& models() const noexcept { return models_; }

    /// Reads a table from its JSON form (see above). Throws std::invalid_argument naming the
    /// model and the field at fault: "sturdy::price_table: models.gpt-4o.input must be a number >= 0".
    static price_table from_json(const nlohmann::json& j) {
        if (!j.is_object()) fail("the table", "must be a JSON object");
        price_table table;
        bool has_models = false;
        for (const auto& [key, value] : j.items()) {
            if (key == "prices_read" || key == "note") {
                if (!value.is_string()) fail(key, "must be a string");
                (key == "note" ? table.note_ : table.prices_read_) = value.get<std::string>();
            } else if (key == "models") {
                if (!value.is_object()) fail("models", "must be an object of model ids");
                has_models = true;
                for (const auto& [model, fields] : value.items()) table.set(model, read_price(model, fields));
            } else {
                fail(key, "is not a field of a price table (prices_read, note, models)");
            }
        }
        if (!has_models) fail("models", "is required");
        return table;
    }
    /// Reads a table from JSON text; text that is not JSON throws std::invalid_argument too.
    static price_table parse(std::string_view text) {
        auto j = nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
        if (j.is_discarded()) fail("the table", "is not valid JSON");
        return from_json(j);
    }
    /// The table's JSON form, which `from_json` reads back to an equal table.
    nlohmann::json to_json() const {
        nlohmann::json models = nlohmann::json::object();
        for (const auto& [model, price] : models_) {
            nlohmann::json p{{"input", price.input}, {"output", price.output}};
            if (price.cached_input) p["cached_input"] = *price.cached_input;
            if (price.cache_write) p["cache_write"] = *price.cache_write;
            models[model] = std::move(p);
        }
        nlohmann::json j{{"models", std::move(models)}};
        if (!prices_read_.empty()) j["prices_read"] = prices_read_;
        if (!note_.empty()) j["note"] = note_;
        return j;
    }

    /// The table sturdy ships, for the models of the providers it has presets for, with the date
    /// its prices were read (`prices_read()`) and their sources (`note()`). Providers change
    /// prices: verify them before relying on them, and set your own table where they differ.
    static std::shared_ptr<const price_table> builtin();

    /// Equal when the dates, notes and every model's prices are.
    friend bool operator==(const price_table& a, const price_table& b) {
        return a.prices_read_ == b.prices_read_ && a.note_ == b.note_ && a.models_ == b.models_;
    }
    /// Not equal when anything differs.
    friend bool operator!=(const price_table& a, const price_table& b) { return !(a == b); }

private:
    [[noreturn]] static void fail(std::string_view field, std::string_view rule) {
        std::string message = "sturdy::price_table: ";
        message.append(field).append(" ").append(rule);
        throw std::invalid_argument(message);
    }
    static void check_entry(const std::string& model, const model_price& price) {
        if (model.empty()) fail("a model id", "must not be empty");
        auto check = [&](const char* field, double value) {
            if (!std::isfinite(value) || value < 0) fail("models." + model + "." + field, "must be a number >= 0");
        };
        check("input", price.input);
        check("output", price.output);
        if (price.cached_input) check("cached_input", *price.cached_input);
        if (price.cache_write) check("cache_write", *price.cache_write);
    }
    static model_price read_price(const std::string& model, const nlohmann::json& fields) {
        const std::string where = "models." + model;
        if (!fields.is_object()) fail(where, "must be an object of prices");
        auto number = [&](const char* field) -> std::optional<double> {
            const auto it = fields.find(field);
            if (it == fields.end()) return std::nullopt;
            if (!it->is_number() || !std::isfinite(it->get<double>()) || it->get<double>() < 0)
                fail(where + "." + field, "must be a number >= 0");
            return it->get<double>();
        };
        for (const auto& item : fields.items()) {
            const std::string& key = item.key();
            if (key != "input" && key != "cached_input" && key != "cache_write" && key != "output")
                fail(where + "." + key, "is not a price (input, cached_input, cache_write, output)");
        }
        model_price price;
        const auto input = number("input");
        const auto output = number("output");
        if (!input) fail(where + ".input", "is required");
        if (!output) fail(where + ".output", "is required");
        price.input = *input;
        price.output = *output;
        price.cached_input = number("cached_input");
        price.cache_write = number("cache_write");
        return price;
    }

    std::string prices_read_;
    std::string note_;
    std::map<std::string, model_price, std::less<>> models_;
};

inline std::shared_ptr<const price_table> price_table::builtin() {
    // Made once, on first use, and shared by every client that keeps the default.
    static const std::shared_ptr<const price_table> table = [] {
        // US dollars per million tokens, each provider's standard (pay-as-you-go, international)
        // rate for prompts in its base tier. Not modelled: long-prompt tiers (Gemini 2.5 Pro above
        // 200K prompt tokens, Qwen's tiers), thinking-mode output rates (Qwen), batch and
        // off-peak discounts, cache storage fees.
        auto t = std::make_shared<price_table>("2026-12-02");
        t->set_note(
            "Read 2026-12-02 from stored copies of the providers' pricing pages and pricing summaries, not live; "
            "verify before relying on it. OpenAI: developers.openai.com/api/docs/pricing. DeepSeek: "
            "api-docs.deepseek.com/quick_start/pricing. Gemini: ai.google.dev/gemini-api/docs/pricing. Qwen: "
            "alibabacloud.com/help/en/model-studio/model-pricing (international). Kimi: "
            "platform.moonshot.ai/docs/pricing/chat.");
        auto p = [](double input, std::optional<double> cached, double output,
                    std::optional<double> cache_write = std::nullopt) {
            return model_price{input, cached, cache_write, output};
        };
        // OpenAI
        t->set("gpt-4o", p(2.50, 1.25, 10.00));
        t->set("gpt-4o-2024-05-13", p(5.00, std::nullopt, 15.00));  // the first snapshot, priced apart
        t->set("gpt-4o-mini", p(0.15, 0.075, 0.60));
        t->set("gpt-4.1", p(2.00, 0.50, 8.00));
        t->set("gpt-4.1-mini", p(0.40, 0.10, 1.60));
        t->set("gpt-4.1-nano", p(0.10, 0.025, 0.40));
        t->set("o3", p(2.00, 0.50, 8.00));
        t->set("o4-mini", p(1.10, 0.275, 4.40));
        t->set("text-embedding-3-small", p(0.02, std::nullopt, 0));
        t->set("text-embedding-3-large", p(0.13, std::nullopt, 0));
        // DeepSeek: both names serve the same model at one price; cache hits at a tenth.
        t->set("deepseek-chat", p(0.28, 0.028, 0.42));
        t->set("deepseek-reasoner", p(0.28, 0.028, 0.42));
        // Gemini (prompts up to 200K tokens)
        t->set("gemini-2.0-flash", p(0.10, 0.025, 0.40));
        t->set("gemini-2.5-flash", p(0.30, 0.03, 2.50));
        t->set("gemini-2.5-pro", p(1.25, 0.125, 10.00));
        // Qwen, international (non-thinking output; implicit cache hits at 20%, explicit cache writes at 125%)
        t->set("qwen-turbo", p(0.05, 0.01, 0.20, 0.0625));
        t->set("qwen-plus", p(0.40, 0.08, 1.20, 0.50));
        t->set("qwen-max", p(1.60, 0.32, 6.40, 2.00));
        // Kimi / Moonshot
        t->set("kimi-k2-0711-preview", p(0.60, 0.15, 2.50));
        t->set("kimi-k2-0905-preview", p(0.60, 0.15, 2.50));
        t->set("kimi-k2.5", p(0.60, 0.10, 3.00));
        t->set("moonshot-v1-8k", p(0.20, std::nullopt, 2.00));
        t->set("moonshot-v1-32k", p(1.00, std::nullopt, 3.00));
        t->set("moonshot-v1-128k", p(2.00, std::nullopt, 5.00));
        return std::shared_ptr<const price_table>(std::move(t));
    }();
    return table;
}

}  // namespace sturdy

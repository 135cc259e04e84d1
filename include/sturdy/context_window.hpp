#pragma once
/// @file
/// Context windows: how many tokens each model takes, and fitting a conversation into one.
///
///     auto windows = sturdy::context_window_table::with_defaults();
///     windows.set("my-finetune", 32768);                          // your own models
///     auto fitted = sturdy::fit_to_window(request, *windows.find(request.model), 1024);
///     client.chat(fitted.request);                                 // the oldest turns left out

#include <sturdy/chat.hpp>
#include <sturdy/detail/model_names.hpp>
#include <sturdy/tokens.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sturdy {

/// Context windows per model, in tokens (prompt and reply together).
///
/// `find` takes the id a server or a gateway uses, by the rule prices use (`price_table`): the
/// exact id, else without a gateway prefix ("openai/gpt-4o") and without one snapshot tag
/// ("gpt-4o-2024-08-06" finds "gpt-4o"); never a shorter sibling ("gpt-4.1-nano" is not "gpt-4.1").
class context_window_table {
public:
    /// When the built-in windows were read from the providers' model documentation. Providers
    /// change them; check yours and `set` what differs.
    static constexpr std::string_view defaults_read_on = "2026-12-02";

    /// An empty table.
    context_window_table() = default;

    /// The windows of the models the README's providers serve, as of `defaults_read_on`.
    static context_window_table with_defaults() {
        context_window_table t;
        constexpr std::int64_t k = 1024;
        for (const auto& [model, tokens] : std::initializer_list<std::pair<const char*, std::int64_t>>{
                 // OpenAI
                 {"gpt-4o", 128000},
                 {"gpt-4o-mini", 128000},
                 {"gpt-4.1", 1047576},
                 {"gpt-4.1-mini", 1047576},
                 {"gpt-4.1-nano", 1047576},
                 {"o3", 200000},
                 {"o4-mini", 200000},
                 // DeepSeek (V3.2 behind both names)
                 {"deepseek-chat", 128 * k},
                 {"deepseek-reasoner", 128 * k},
                 // Qwen (DashScope)
                 {"qwen-max", 32 * k},
                 {"qwen-plus", 128 * k},
                 {"qwen-turbo", 1000000},
                 // Kimi (Moonshot)
                 {"moonshot-v1-8k", 8 * k},
                 {"moonshot-v1-32k", 32 * k},
                 {"moonshot-v1-128k", 128 * k},
                 {"kimi-k2.5", 256 * k},
                 {"kimi-k2.6", 256 * k},
                 // Gemini (OpenAI-compatible endpoint)
                 {"gemini-2.0-flash", 1048576},
                 {"gemini-2.5-flash", 1048576},
                 {"gemini-2.5-pro", 1048576},
             })
            t.set(model, tokens);
        return t;
    }

    /// Sets `model`'s window; replaces what was there. Throws std::invalid_argument unless
    /// `tokens` is positive.
    context_window_table& set(std::string model, std::int64_t tokens) {
        if (tokens <= 0)
            throw std::invalid_argument("context_window_table::set: the window of " + model + " must be positive");
        windows_[std::move(model)] = tokens;
        return *this;
    }

    /// `model`'s window, when the table knows it.
    std::optional<std::int64_t> find(std::string_view model) const {
        auto it = detail::find_model(windows_, model);
        if (it == windows_.end()) return std::nullopt;
        return it->second;
    }

    /// True when the table knows no model (a fallback chain then reads only declared windows).
    bool empty() const noexcept { return windows_.empty(); }

private:
    std::map<std::string, std::int64_t, std::less<>> windows_;
};

/// What `fit_to_window` kept.
struct fitted_request {
    chat_request request;     ///< the request with the messages that fit
    std::size_t dropped = 0;  ///< messages left out, the oldest first
    std::int64_t tokens = 0;  ///< the kept prompt's tokens, as the counter counts them
    /// False when even the system messages and the latest turn exceed the budget: they are kept
    /// anyway (leaving them out would ask a different question), and the call will likely fail
    /// with context_length_exceeded.
    bool fits = true;
};

/// Keeps a conversation within `window - reserve_for_reply` tokens: every system (or developer)
/// message, and the most recent turns that fit, oldest left out first.
///
/// - A turn is a user message and everything after it up to the next user message: the
///   assistant's replies, its tool calls and their results. Turns are kept or left out whole, so
///   a tool result is never sent without its call, and the conversation still starts with the
///   user (strict chat templates of local servers reject one that starts with the assistant).
/// - The latest turn is always kept; `fits` says whether it fit.
/// - Tools' definitions count against the budget, as they do against the model's window.
inline fitted_request fit_to_window(const chat_request& request, std::int64_t window, std::int64_t reserve_for_reply,
                                    const token_counter& counter = {}) {
    const auto& messages = request.messages;
    auto pinned = [](const chat_message& m) { return m.role == "system" || m.role == "developer"; };

    // Turns, each from its first message: a user message, or (before the first one) whatever
    // opened the conversation; system messages aside. Every message is counted once, here.
    struct turn {
        std::size_t first;
        std::int64_t tokens;
    };
    std::vector<turn> turns;
    std::int64_t fixed = counter.tools(request);  // sent whatever is dropped
    for (std::size_t i = 0; i < messages.size(); ++i) {
        const auto& m = messages[i];
        if (pinned(m)) {
            fixed += counter.message(m);
            continue;
        }
        if (turns.empty() || m.role == "user") turns.push_back({i, 0});
        turns.back().tokens += counter.message(m);
    }
    const std::int64_t budget = window - reserve_for_reply - fixed;

    // The newest turns that fit; the latest always.
    std::size_t kept_from = turns.size();
    std::int64_t used = 0;
    while (kept_from > 0) {
        const auto& t = turns[kept_from - 1];
        if (kept_from < turns.size() && used + t.tokens > budget) break;
        used += t.tokens;
        --kept_from;
    }

    fitted_request out;
    out.request = request;
    out.request.messages.clear();
    const std::size_t first_kept = kept_from < turns.size() ? turns[kept_from].first : messages.size();
    for (std::size_t i = 0; i < messages.size(); ++i) {
        if (pinned(messages[i]) || i >= first_kept)
            out.request.messages.push_back(messages[i]);
        else
            ++out.dropped;
    }
    out.tokens = fixed + used;
    out.fits = out.tokens <= window - reserve_for_reply;
    return out;
}

}  // namespace sturdy

#pragma once
/// @file
/// Token counts a reply reports.

#include <sturdy/detail/json_mapping.hpp>
#include <sturdy/detail/json_reader.hpp>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <limits>

namespace sturdy {

namespace detail {
/// A token count a server sent under `key` of `object`: a non-negative whole number, 0 for
/// anything else (absent, null, negative, a string), so a malformed reply never throws here.
inline std::int64_t token_count(const nlohmann::json& object, const char* key) {
    if (!object.is_object()) return 0;
    const auto it = object.find(key);
    if (it == object.end()) return 0;
    constexpr auto most = std::numeric_limits<std::int64_t>::max();
    if (it->is_number_unsigned()) {
        const auto n = it->get<std::uint64_t>();
        return n > static_cast<std::uint64_t>(most) ? most : static_cast<std::int64_t>(n);
    }
    if (it->is_number_integer()) return std::max<std::int64_t>(it->get<std::int64_t>(), 0);
    if (it->is_number_float()) {
        const double d = it->get<double>();
        if (!(d > 0)) return 0;  // negative, zero or NaN
        // 2^63 is exact as a double; from there on the cast would be undefined.
        return d >= 9223372036854775808.0 ? most : static_cast<std::int64_t>(d);
    }
    return 0;
}
/// The same count under `object[outer][key]` (a `*_tokens_details` member).
inline std::int64_t token_count(const nlohmann::json& object, const char* outer, const char* key) {
    if (!object.is_object()) return 0;
    const auto it = object.find(outer);
    return it == object.end() ? 0 : token_count(*it, key);
}
/// The largest of counts that name the same tokens in different providers' words: never their sum.
inline std::int64_t largest(std::initializer_list<std::int64_t> counts) { return std::max(counts); }
}  // namespace detail

/// Tokens a call consumed, as the server counted them.
///
/// The three counts are the API's own. What providers report beyond them stays in `extra`, as
/// sent; the accessors below read it in each provider's form. Cached and cache-write tokens are a
/// part of `prompt_tokens`, reasoning tokens a part of `completion_tokens`.
struct token_usage {
    /// Tokens of the prompt, cached ones included.
    std::int64_t prompt_tokens = 0;
    /// Tokens of the reply, reasoning included.
    std::int64_t completion_tokens = 0;
    /// Everything the call counted; normally prompt_tokens + completion_tokens.
    std::int64_t total_tokens = 0;
    nlohmann::json extra{};  ///< e.g. prompt_tokens_details, completion_tokens_details

    /// Prompt tokens read from the provider's prompt cache, a part of `prompt_tokens`; 0 when none
    /// were reported. Read from `prompt_tokens_details.cached_tokens` (OpenAI, Qwen, Gemini),
    /// `prompt_cache_hit_tokens` (DeepSeek), a top-level `cached_tokens` (Kimi/Moonshot) or
    /// `cache_read_input_tokens` (Anthropic-style gateways). These name the same tokens: a reply
    /// that sends several forms counts the largest, never their sum.
    std::int64_t cached_prompt_tokens() const {
        return detail::largest({detail::token_count(extra, "prompt_tokens_details", "cached_tokens"),
                                detail::token_count(extra, "prompt_cache_hit_tokens"),
                                detail::token_count(extra, "cached_tokens"),
                                detail::token_count(extra, "cache_read_input_tokens")});
    }
    /// Prompt tokens written to the provider's prompt cache, a part of `prompt_tokens`; 0 when none
    /// were reported. Read from `prompt_tokens_details.cache_write_tokens` (OpenAI's API
    /// definition), `prompt_tokens_details.cache_creation_input_tokens` (Qwen's explicit cache) or
    /// a top-level `cache_creation_input_tokens` (Anthropic-style gateways); the largest, as above.
    std::int64_t cache_write_tokens() const {
        return detail::largest({detail::token_count(extra, "prompt_tokens_details", "cache_write_tokens"),
                                detail::token_count(extra, "prompt_tokens_details", "cache_creation_input_tokens"),
                                detail::token_count(extra, "cache_creation_input_tokens")});
    }
    /// Tokens the model spent reasoning, `completion_tokens_details.reasoning_tokens`; 0 when not
    /// reported. Normally a part of `completion_tokens` (see `billed_tokens` in pricing.hpp for a
    /// gateway's form that leaves them out).
    std::int64_t reasoning_tokens() const {
        return detail::token_count(extra, "completion_tokens_details", "reasoning_tokens");
    }

    template <class Self, class F>
    static void visit(Self& self, F&& field) {
        field("prompt_tokens", self.prompt_tokens);
        field("completion_tokens", self.completion_tokens);
        field("total_tokens", self.total_tokens);
    }
};

}  // namespace sturdy

#pragma once
/// @file
/// Counting tokens before a call: an estimate that needs no tokenizer, or your exact tokenizer.
///
///     sturdy::token_counter count;                       // the estimate
///     std::int64_t n = count.prompt(request);           // what the request's messages cost
///
///     sturdy::token_counter exact([&](std::string_view text) { return my_bpe.count(text); });
///
/// The client counts every request's prompt with `client_options::tokens`, and the policies that
/// need a count (the fallback chain's context-window check, the rate limiter's token budget) read
/// that one number, so an exact tokenizer set there serves all of them.

#include <sturdy/chat.hpp>
#include <sturdy/embeddings.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>
#include <utility>

namespace sturdy {

/// Estimates the tokens of `text` without a tokenizer, for the BPE vocabularies of today's models
/// (OpenAI's o200k and cl100k, DeepSeek's, Qwen's):
/// - ASCII: one token per 4 characters (English prose and code average 3.5 to 4.5);
/// - CJK ideographs, kana and hangul: one token per character (most are 1 token, common ones
///   less, rare ones 2 or 3);
/// - any other character (accented Latin, Cyrillic, Greek, Arabic, emoji...): one token per
///   2 characters.
///
/// Each class is rounded up on its own, so any non-empty text is at least one token. Bytes that
/// are not valid UTF-8 count as other characters. Expect ±25 % on prose; use an exact tokenizer
/// (`token_counter`) where that matters.
inline std::int64_t estimate_tokens(std::string_view text) noexcept {
    std::int64_t ascii = 0, cjk = 0, other = 0;
    for (std::size_t i = 0; i < text.size();) {
        const auto lead = static_cast<unsigned char>(text[i]);
        if (lead < 0x80) {
            ++ascii;
            ++i;
            continue;
        }
        const std::size_t length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
        if (length == 1 || i + length > text.size()) {
            ++other;
            ++i;
            continue;
        }
        char32_t code = lead & (0x7F >> length);
        for (std::size_t k = 1; k < length; ++k) code = (code << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
        const bool is_cjk = (code >= 0x2E80 && code <= 0x9FFF)        // radicals, kana, CJK ideographs
                            || (code >= 0xAC00 && code <= 0xD7AF)     // hangul syllables
                            || (code >= 0xF900 && code <= 0xFAFF)     // compatibility ideographs
                            || (code >= 0xFF00 && code <= 0xFFEF)     // full-width forms
                            || (code >= 0x20000 && code <= 0x3FFFF);  // supplementary ideographs
        ++(is_cjk ? cjk : other);
        i += length;
    }
    return (ascii + 3) / 4 + cjk + (other + 1) / 2;
}

/// Counts the tokens of requests: with the estimate above, or with an exact tokenizer.
///
/// A chat message costs its text (content, name, tool calls' names and arguments) plus
/// `per_message` tokens of framing (role and separators, 3 to 4 in OpenAI's chat format); a
/// request also pays for its tools' definitions, counted as their JSON text.
class token_counter {
public:
    /// Tokens of one piece of text, exactly as the model's tokenizer counts them.
    using tokenizer = std::function<std::int64_t(std::string_view)>;

    /// The framing tokens of one chat message.
    static constexpr std::int64_t per_message = 4;

    /// Counts with `estimate_tokens`.
    token_counter() = default;
    /// Counts with `exact`; an empty function means the estimate.
    explicit token_counter(tokenizer exact) : exact_(std::move(exact)) {}

    /// True when an exact tokenizer counts.
    bool exact() const noexcept { return static_cast<bool>(exact_); }

    /// Tokens of `text`.
    std::int64_t text(std::string_view piece) const { return exact_ ? exact_(piece) : estimate_tokens(piece); }

    /// Tokens of one message, framing included.
    std::int64_t message(const chat_message& m) const {
        std::int64_t n = per_message + text(m.content) + text(m.name) + text(m.refusal);
        for (const auto& call : m.tool_calls) n += text(call.function.name) + text(call.function.arguments);
        return n;
    }

    /// Tokens of a chat request's tools' definitions, counted as their JSON text.
    std::int64_t tools(const chat_request& r) const { return r.tools.is_null() ? 0 : text(r.tools.dump()); }

    /// Tokens of a chat request's prompt: its messages and its tools.
    std::int64_t prompt(const chat_request& r) const {
        std::int64_t n = tools(r);
        for (const auto& m : r.messages) n += message(m);
        return n;
    }

    /// Tokens of an embeddings request's inputs.
    std::int64_t prompt(const embedding_request& r) const {
        std::int64_t n = 0;
        for (const auto& s : r.input) n += text(s);
        return n;
    }

private:
    tokenizer exact_;
};

}  // namespace sturdy

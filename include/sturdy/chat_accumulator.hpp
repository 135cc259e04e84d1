#pragma once
/// @file
/// Assembling a streamed chat completion into the reply an unstreamed call returns.

#include <sturdy/chat.hpp>

#include <algorithm>
#include <string>
#include <utility>

namespace sturdy {

/// Folds chunks into a `chat_response`: text, refusals and string extras (reasoning_content...)
/// are concatenated, tool calls are assembled from their deltas by index, and the finish reason,
/// usage and logprobs are kept.
///
///     sturdy::chat_accumulator acc;
///     for (auto& chunk : chunks) acc.add(chunk);
///     sturdy::chat_response reply = acc.take();
class chat_accumulator {
public:
    void add(const chat_chunk& chunk) {
        set_if_empty(response_.id, chunk.id);
        set_if_empty(response_.model, chunk.model);
        set_if_empty(response_.system_fingerprint, chunk.system_fingerprint);
        if (response_.created == 0) response_.created = chunk.created;
        if (chunk.usage) response_.usage = chunk.usage;
        merge_extra(response_.extra, chunk.extra);
        for (const auto& piece : chunk.choices) add_choice(piece);
    }

    /// True once at least one choice arrived and every choice has a finish reason.
    bool finished() const noexcept {
        return !response_.choices.empty() &&
               std::all_of(response_.choices.begin(), response_.choices.end(),
                           [](const chat_choice& c) { return !c.finish_reason.empty(); });
    }

    /// The reply so far. Tool calls still carry their stream `index` until `take()`.
    const chat_response& response() const noexcept { return response_; }

    /// The reply so far, moved out as `response()` shows it: tool calls keep their stream `index`
    /// (for a stream that failed part way; its fragments may be incomplete).
    chat_response take_partial() { return std::exchange(response_, chat_response{}); }

    /// The assembled reply, shaped like an unstreamed one.
    chat_response take() {
        response_.object = "chat.completion";
        for (auto& choice : response_.choices)
            for (auto& call : choice.message.tool_calls) call.index.reset();
        return std::exchange(response_, chat_response{});
    }

private:
    static void set_if_empty(std::string& target, const std::string& value) {
        if (target.empty() && !value.empty()) target = value;
    }

    // Strings are pieces of one text (reasoning_content arrives token by token); others replace.
    static void merge_extra(nlohmann::json& target, const nlohmann::json& delta) {
        if (!delta.is_object()) return;
        for (const auto& [key, value] : delta.items()) {
            if (key == "obfuscation") continue;  // OpenAI's per-chunk padding, not part of the reply
            auto& slot = target[key];
            if (value.is_string() && slot.is_string()) slot.get_ref<std::string&>() += value.get_ref<const std::string&>();
            else if (!value.is_null()) slot = value;
        }
    }

    chat_choice& choice_at(int index) {
        auto& choices = response_.choices;
        auto it = std::lower_bound(choices.begin(), choices.end(), index,
                                   [](const chat_choice& c, int i) { return c.index < i; });
        if (it == choices.end() || it->index != index) {
            chat_choice fresh;
            fresh.index = index;
            it = choices.insert(it, std::move(fresh));
        }
        return *it;
    }

    void add_choice(const chat_chunk_choice& piece) {
        chat_choice& choice = choice_at(piece.index);
        chat_message& message = choice.message;
        const chat_message& delta = piece.delta;
        set_if_empty(message.role, delta.role);
        message.content += delta.content;
        message.refusal += delta.refusal;
        for (std::size_t i = 0; i < delta.tool_calls.size(); ++i) add_tool_call(message, delta.tool_calls[i], static_cast<int>(i));
        merge_extra(message.extra, delta.extra);
        if (!piece.finish_reason.empty()) choice.finish_reason = piece.finish_reason;
        append_logprobs(choice.logprobs, piece.logprobs);
        merge_extra(choice.extra, piece.extra);
    }

    static void add_tool_call(chat_message& message, const tool_call& delta, int position) {
        const int index = delta.index.value_or(position);
        auto& calls = message.tool_calls;
        auto it = std::find_if(calls.begin(), calls.end(), [&](const tool_call& c) { return c.index == index; });
        if (it == calls.end()) {
            tool_call fresh;
            fresh.type.clear();
            fresh.index = index;
            calls.push_back(std::move(fresh));
            it = calls.end() - 1;
        }
        set_if_empty(it->id, delta.id);
        set_if_empty(it->type, delta.type);
        // Some servers repeat the name in every delta; arguments always arrive in pieces.
        set_if_empty(it->function.name, delta.function.name);
        it->function.arguments += delta.function.arguments;
        merge_extra(it->extra, delta.extra);
    }

    // logprobs arrive per chunk as {"content": [...], "refusal": [...]}: the arrays are concatenated.
    static void append_logprobs(nlohmann::json& target, const nlohmann::json& delta) {
        if (!delta.is_object()) return;
        for (const auto& [key, value] : delta.items()) {
            if (!value.is_array()) continue;
            auto& slot = target[key];
            if (!slot.is_array()) slot = nlohmann::json::array();
            slot.insert(slot.end(), value.begin(), value.end());
        }
    }

    chat_response response_;
};

}  // namespace sturdy

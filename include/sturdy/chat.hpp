#pragma once
/// @file
/// Chat completions: the request, the reply, and the chunks of a streamed reply.

#include <sturdy/call_info.hpp>
#include <sturdy/detail/json_mapping.hpp>
#include <sturdy/detail/json_reader.hpp>
#include <sturdy/usage.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace sturdy {

/// The function a tool call names, with its arguments as a JSON string.
struct function_call {
    std::string name{};
    std::string arguments{};
    nlohmann::json extra{};

    template <class Self, class F>
    static void visit(Self& self, F&& field) {
        field("name", self.name);
        field("arguments", self.arguments);
    }
};

/// A tool call the model made. In a streamed delta, `index` says which call a piece belongs to.
struct tool_call {
    std::string id{};
    std::string type = "function";
    function_call function;
    std::optional<int> index{};
    nlohmann::json extra{};

    template <class Self, class F>
    static void visit(Self& self, F&& field) {
        field("index", self.index);
        field("id", self.id);
        if constexpr (std::is_const_v<Self>) {
            // The API requires it: a call read without one (null, "", or a stream that never
            // named it) is written as a function call, so a reply also reads back as it was.
            field("type", self.type.empty() ? std::string("function") : self.type, detail::keep_empty);
        } else {
            field("type", self.type);
        }
        field("function", self.function);
    }
};

/// One message of a conversation; also the delta of a streamed chunk.
///
/// Fields a server adds (reasoning_content, say) are kept in `extra`; content other than text
/// (image parts) is sent by setting `extra["content"]` to the array of parts.
struct chat_message {
    std::string role{};
    std::string content{};
    std::string name{};                ///< an optional participant name
    std::vector<tool_call> tool_calls{};
    std::string tool_call_id{};        ///< for role "tool": the call this message answers
    std::string refusal{};
    nlohmann::json extra{};

    static chat_message system(std::string text) { return {"system", std::move(text), {}, {}, {}, {}, {}}; }
    static chat_message user(std::string text) { return {"user", std::move(text), {}, {}, {}, {}, {}}; }
    static chat_message assistant(std::string text) { return {"assistant", std::move(text), {}, {}, {}, {}, {}}; }
    static chat_message tool(std::string call_id, std::string text) {
        return {"tool", std::move(text), {}, {}, std::move(call_id), {}, {}};
    }

    template <class Self, class F>
    static void visit(Self& self, F&& field) {
        field("role", self.role);
        // Content is required, even empty, except beside tool calls (as the official SDKs send it).
        if (self.tool_calls.empty()) field("content", self.content, detail::keep_empty);
        else field("content", self.content);
        field("name", self.name);
        field("tool_calls", self.tool_calls);
        field("tool_call_id", self.tool_call_id);
        field("refusal", self.refusal);
    }
};

/// Options of a streamed request.
struct chat_stream_options {
    /// Ask for a final chunk with the token usage.
    bool include_usage = false;
    nlohmann::json extra{};

    template <class Self, class F>
    static void visit(Self& self, F&& field) {
        field("include_usage", self.include_usage);
    }
};

/// A chat completion request. Unset optional parameters are not sent; `extra` carries any other
/// parameter (reasoning_effort, a provider's own settings...) and overrides the fields above.
///
///     sturdy::chat_request req{"gpt-4o-mini", {sturdy::chat_message::user("Hello")}};
///     req.temperature = 0.2;
///     req.extra["reasoning_effort"] = "low";
struct chat_request {
    chat_request() = default;
    chat_request(std::string model_name, std::vector<chat_message> conversation)
        : model(std::move(model_name)), messages(std::move(conversation)) {}

    std::string model{};
    std::vector<chat_message> messages{};
    std::optional<double> temperature{};
    std::optional<double> top_p{};
    std::optional<int> max_tokens{};
    std::optional<int> max_completion_tokens{};
    std::optional<int> n{};
    std::optional<std::int64_t> seed{};
    std::optional<double> presence_penalty{};
    std::optional<double> frequency_penalty{};
    nlohmann::json stop{};             ///< a string or an array of strings
    nlohmann::json tools{};            ///< the tools array, as the API defines it
    nlohmann::json tool_choice{};
    std::optional<bool> parallel_tool_calls{};
    nlohmann::json response_format{};
    std::optional<bool> logprobs{};
    std::optional<int> top_logprobs{};
    std::string user{};
    /// Set by the client: streamed calls send `true`.
    std::optional<bool> stream{};
    /// For streamed calls; `include_usage` asks for token usage at the end.
    std::optional<chat_stream_options> stream_options{};
    nlohmann::json extra{};

    template <class Self, class F>
    static void visit(Self& self, F&& field) {
        field("model", self.model);
        field("messages", self.messages);
        field("temperature", self.temperature);
        field("top_p", self.top_p);
        field("max_tokens", self.max_tokens);
        field("max_completion_tokens", self.max_completion_tokens);
        field("n", self.n);
        field("seed", self.seed);
        field("presence_penalty", self.presence_penalty);
        field("frequency_penalty", self.frequency_penalty);
        field("stop", self.stop);
        field("tools", self.tools);
        field("tool_choice", self.tool_choice);
        field("parallel_tool_calls", self.parallel_tool_calls);
        field("response_format", self.response_format);
        field("logprobs", self.logprobs);
        field("top_logprobs", self.top_logprobs);
        field("user", self.user);
        field("stream", self.stream);
        field("stream_options", self.stream_options);
    }
};

/// One choice of a chat completion.
struct chat_choice {
    int index = 0;
    chat_message message{};
    std::string finish_reason{};  ///< "stop", "length", "tool_calls", "content_filter"...
    nlohmann::json logprobs{};
    nlohmann::json extra{};

    template <class Self, class F>
    static void visit(Self& self, F&& field) {
        field("index", self.index);
        field("message", self.message);
        field("finish_reason", self.finish_reason);
        field("logprobs", self.logprobs);
    }
};

/// The fields a chat completion and each of its streamed chunks share; `Choice` is a whole
/// choice (`chat_choice`) or a chunk's part of one (`chat_chunk_choice`).
template <class Choice>
struct basic_chat_completion {
    std::string id{};
    std::string object{};
    std::int64_t created = 0;
    std::string model{};
    std::string system_fingerprint{};
    std::vector<Choice> choices{};
    std::optional<token_usage> usage{};  ///< on a stream, only in the last chunk, when asked for
    nlohmann::json extra{};

    template <class Self, class F>
    static void visit(Self& self, F&& field) {
        field("id", self.id);
        field("object", self.object);
        field("created", self.created);
        field("model", self.model);
        field("system_fingerprint", self.system_fingerprint);
        field("choices", self.choices);
        field("usage", self.usage);
    }
};

/// A chat completion. A streamed call returns the same shape, assembled from its chunks.
struct chat_response : basic_chat_completion<chat_choice> {
    /// How the call went (not part of the JSON).
    call_info call{};

    /// The first choice's text, or an empty string.
    const std::string& content() const noexcept {
        static const std::string none;
        return choices.empty() ? none : choices.front().message.content;
    }
    /// The first choice's finish reason, or an empty string.
    const std::string& finish_reason() const noexcept {
        static const std::string none;
        return choices.empty() ? none : choices.front().finish_reason;
    }
};

/// One choice's part of a streamed chunk.
struct chat_chunk_choice {
    int index = 0;
    chat_message delta{};
    std::string finish_reason{};
    nlohmann::json logprobs{};
    nlohmann::json extra{};

    template <class Self, class F>
    static void visit(Self& self, F&& field) {
        field("index", self.index);
        field("delta", self.delta);
        field("finish_reason", self.finish_reason);
        field("logprobs", self.logprobs);
    }
};

/// One chunk of a streamed chat completion.
struct chat_chunk : basic_chat_completion<chat_chunk_choice> {
    /// The first choice's new text, or an empty view.
    std::string_view content() const noexcept {
        return choices.empty() ? std::string_view{} : std::string_view(choices.front().delta.content);
    }
};

}  // namespace sturdy

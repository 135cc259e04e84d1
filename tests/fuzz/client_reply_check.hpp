#pragma once
// Fuzz check for a whole reply as the client reads it: basic_client over a transport that answers
// with the fuzz input, for chat, streamed chat, models, one model and embeddings. It reaches the
// parsers together (body collection, error replies, SSE, stream chunks, the accumulator, base64)
// and the paths between them.
//
// The input reads as in api_error_check.hpp: "STATUS\nheader: value\n...\n\nBODY", "@@" and
// "@0".."@9" standing for the API key and pieces of it. Without a blank line it is the body of a
// 200 reply, as an event stream when it starts with "data:", "event:", ":" or "error:". The body
// arrives in pieces cut at points drawn from the input.
//
// Invariants:
//  1. No call throws or crashes; each returns a value or an error.
//  2. No string of an error holds the API key or a run of 8 of its characters.
//  3. An error status gives an error of the status's kind (or context_length_exceeded).
//  4. A streamed reply's text is exactly the text of the chunks delivered to the callback, for its
//     first choice; a stopped stream delivers nothing after the stop.
//  5. Embeddings asked for without an encoding come back decoded: no base64 text left.

#include "api_error_check.hpp"
#include "fuzz_support.hpp"

#include <sturdy/client.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace sturdy_fuzz {

/// A transport that answers every request with the same head and body pieces.
class replay_transport {
public:
    replay_transport(int status, sturdy::response_headers headers, std::vector<std::string> pieces)
        : status_(status), headers_(std::move(headers)), pieces_(std::move(pieces)) {}

    sturdy::result<sturdy::http_head> send(const sturdy::http_request&, sturdy::response_sink& sink) const {
        sturdy::http_head head;
        head.status = status_;
        head.headers = headers_;
        if (!sink.on_head(head)) return sturdy::error(sturdy::error_kind::cancelled, "the sink stopped the transfer");
        for (const auto& piece : pieces_)
            if (!sink.on_data(piece))
                return sturdy::error(sturdy::error_kind::cancelled, "the sink stopped the transfer");
        return head;
    }

private:
    int status_;
    sturdy::response_headers headers_;
    std::vector<std::string> pieces_;
};

inline void check_client_reply(const std::uint8_t* data, std::size_t size) {
    const std::string text = splice_secret(as_text(data, size));
    input_rng rng(text);
    error_reply reply;
    if (text.find("\n\n") == std::string::npos) {
        reply.status = 200;
        reply.body = text;
        const std::string_view b = text;
        const bool sse =
            b.rfind("data:", 0) == 0 || b.rfind("event:", 0) == 0 || b.rfind(":", 0) == 0 || b.rfind("error:", 0) == 0;
        reply.headers.add("content-type", sse ? "text/event-stream" : "application/json");
    } else {
        reply = split_error_reply(text);
    }
    std::vector<std::string> pieces;
    for (std::size_t at = 0; at < reply.body.size();) {
        const std::size_t n = 1 + rng.below(64);
        pieces.push_back(reply.body.substr(at, n));
        at += n;
    }

    sturdy::client_options options;
    options.base_url = "http://fuzz.invalid/v1";
    options.api_key = std::string(fuzz_secret);
    const sturdy::basic_client<replay_transport, sturdy::no_policy> client(
        options, sturdy::no_policy{}, replay_transport(reply.status, reply.headers, pieces));

    auto require_error_ok = [&](const sturdy::error& e, const char* call) {
        require_no_secret(e, call);
        if (reply.status >= 400 && reply.status <= 599)
            require(kind_fits_status(e.kind(), reply.status), std::string(call) + ": an error status gives its kind",
                    std::string(sturdy::to_string(e.kind())) + " for " + std::to_string(reply.status));
    };

    const sturdy::chat_request request{"m", {sturdy::chat_message::user("hi")}};
    if (auto r = client.try_chat(request); !r) require_error_ok(r.error(), "chat");

    std::vector<sturdy::chat_chunk> delivered;
    const std::size_t stop_after = rng.below(8) == 0 ? 1 + rng.below(4) : static_cast<std::size_t>(-1);
    auto streamed = client.try_stream(request, [&](const sturdy::chat_chunk& c) {
        delivered.push_back(c);
        return delivered.size() < stop_after;
    });
    require(delivered.size() <= stop_after, "stream: nothing is delivered after the callback returned false");
    if (!streamed) {
        require_error_ok(streamed.error(), "stream");
    } else if (!streamed->choices.empty()) {
        const int first = streamed->choices.front().index;
        std::string text_seen;
        for (const auto& c : delivered)
            for (const auto& choice : c.choices)
                if (choice.index == first) text_seen += choice.delta.content;
        require(text_seen == streamed->content(), "stream: the reply's text is the text the callback saw",
                escaped(text_seen) + " vs " + escaped(streamed->content()));
    }

    if (auto r = client.try_models(); !r) require_error_ok(r.error(), "models");
    if (auto r = client.try_model("m"); !r) require_error_ok(r.error(), "model");
    const sturdy::embedding_request embed{"e", {"a"}};
    if (auto r = client.try_embed(embed); !r) {
        require_error_ok(r.error(), "embed");
    } else {
        for (const auto& item : r->data)
            require(item.base64.empty(), "embed: base64 vectors come back decoded", escaped(item.base64));
    }
}

}  // namespace sturdy_fuzz

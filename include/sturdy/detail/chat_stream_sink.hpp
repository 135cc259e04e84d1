#pragma once
// One streamed chat attempt: SSE events become chunks, chunks are assembled, and content reaches
// the caller only through the call's commit point.

#include <sturdy/chat.hpp>
#include <sturdy/chat_accumulator.hpp>
#include <sturdy/clock.hpp>
#include <sturdy/error.hpp>
#include <sturdy/http.hpp>
#include <sturdy/policy.hpp>
#include <sturdy/result.hpp>
#include <sturdy/sse.hpp>
#include <sturdy/detail/api_error.hpp>
#include <sturdy/detail/function_ref.hpp>
#include <sturdy/detail/json_reader.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sturdy::detail {

using chunk_callback = function_ref<bool(const chat_chunk&)>;

/// Whether a chunk carries something the caller must see: text, a tool call, a refusal,
/// reasoning, or a finish reason. A bare role chunk does not, so it can wait for the commit.
inline bool carries_content(const chat_chunk& chunk) {
    for (const auto& choice : chunk.choices) {
        const auto& d = choice.delta;
        if (!d.content.empty() || !d.refusal.empty() || !d.tool_calls.empty() || !choice.finish_reason.empty()) return true;
        if (d.extra.is_object())
            for (const auto& [key, value] : d.extra.items())
                if (!value.is_null() && !(value.is_string() && value.get_ref<const std::string&>().empty())) return true;
    }
    return false;
}

class chat_stream_sink final : public response_sink {
public:
    using steady = std::chrono::steady_clock;

    /// Limits on what the server may make this attempt hold in memory.
    struct limits {
        std::size_t max_body_bytes;   ///< a reply that is not a stream
        std::size_t max_event_bytes;  ///< one line or event of a stream
    };

    chat_stream_sink(call_context& ctx, int attempt_id, reply_observation& seen, chunk_callback deliver,
                     std::string_view secret, clock::time_point call_started, const sturdy::clock& clock, limits bounds)
        : ctx_(ctx), seen_(seen), attempt_id_(attempt_id), deliver_(deliver), secret_(secret), clock_(clock),
          call_started_(call_started), attempt_started_(steady::now()), last_event_(attempt_started_),
          measured_start_(clock.now()), max_stream_bytes_(bounds.max_body_bytes),
          body_(bounds.max_body_bytes, error_read_limit), parser_(bounds.max_event_bytes) {}

    bool on_head(const http_head& head) override {
        status_ = head.status;
        request_id_ = std::string(head.headers.get("x-request-id"));
        const auto type = head.headers.get("content-type");
        event_stream_ = type.find("text/event-stream") != std::string_view::npos;
        collecting_ = status_ < 200 || status_ >= 300 || !event_stream_;
        if (!collecting_) head_ = head;  // for a reply complete before the transfer ended
        return !collecting_ || body_.on_head(head);
    }

    bool on_data(std::string_view bytes) override {
        if (collecting_) return body_.on_data(bytes);
        // A stream's text is held until the call returns: the whole stream counts against the limit.
        if (bytes.size() > max_stream_bytes_ - std::min(max_stream_bytes_, streamed_bytes_))
            return fail(size_limit_error(error_codes::response_too_large, "the stream", max_stream_bytes_));
        streamed_bytes_ += bytes.size();
        if (parser_.feed(bytes, [this](const sse_event& e) { return on_event(e); })) return true;
        if (parser_.overflowed())
            fail(size_limit_error(error_codes::event_too_large, "a stream line or event", parser_.max_event_bytes()));
        return false;
    }

    steady::time_point progress_deadline() const override {
        // After [DONE] only the end of the body is missing: a server that never sends it must not
        // hold a complete reply for the rest of the timeout.
        if (done_) return last_event_ + after_done_grace;
        if (!first_content_ && ctx_.first_token_timeout) return attempt_started_ + *ctx_.first_token_timeout;
        if (ctx_.idle_timeout) return last_event_ + *ctx_.idle_timeout;
        return steady::time_point::max();
    }

    /// The attempt's outcome once the transport returned.
    result<chat_response> finish(result<http_head> sent) {
        if (sent && !collecting_ && !stopped()) parser_.finish([this](const sse_event& e) { return on_event(e); });
        if (user_stopped_) return succeed(true);
        if (lost_race_) return error(error_kind::cancelled, "another attempt of this call delivered first");
        if (stream_error_) return with_partial(*stream_error_);
        if (body_.overflowed()) {
            if (!error_status()) return size_limit_error(error_codes::response_too_large, "the reply", body_.limit());
            sent = body_.error_head();  // an error reply, read as far as it is kept
        }
        // A reply that was complete ([DONE], or every choice finished) is the outcome, however the
        // connection ended after it: reset, or cut at the grace period after [DONE].
        if (!sent && !collecting_ && (done_ || accumulator_.finished())) sent = std::move(head_);
        if (!sent) return transport_failure(sent.error());
        seen_.status = sent->status;
        seen_.headers = std::move(sent->headers);
        if (error_status()) return status_error(status_, seen_.headers, body_.body, secret_, clock_.wall_now());
        if (!event_stream_) return from_plain_body();
        if (done_ || accumulator_.finished()) return succeed(false);
        return with_partial(error(error_kind::stream_truncated, "the stream ended before [DONE] and before a finish reason"));
    }

private:
    bool stopped() const { return user_stopped_ || lost_race_ || stream_error_.has_value(); }
    bool error_status() const { return status_ < 200 || status_ >= 300; }

    bool on_event(const sse_event& e) {
        if (done_) return true;  // after [DONE], nothing counts: not even an error
        last_event_ = steady::now();
        if (!e.error.empty()) return fail(stream_error(e.error, secret_));
        if (e.type == "error") return fail(stream_error(e.data, secret_));
        if (e.data == "[DONE]") {
            done_ = true;
            return true;
        }
        chunk_ = chat_chunk{};
        if (!read_json(e.data, chunk_))
            return fail(error(error_kind::invalid_response, "a stream event is not a JSON object: " + truncate_utf8(e.data, 200)));
        if (is_error_object(chunk_)) return fail(stream_error(e.data, secret_));
        return offer(std::move(chunk_));
    }

    // vLLM sends {"object": "error", ...}; most servers {"error": {...}} without choices.
    template <class Reply>
    static bool is_error_object(const Reply& r) {
        return r.choices.empty() && (r.object == "error" || (r.extra.is_object() && r.extra.contains("error")));
    }

    // Chunks before the first content wait, so an attempt that fails before committing can be
    // retried without the caller seeing anything twice. A chunk joins the reply when it is
    // received if it waits (a failed attempt's partial reply keeps it), else just before it is
    // delivered: when the caller stops at a waiting chunk, the content behind it is neither
    // delivered nor in the reply.
    bool offer(chat_chunk chunk) {
        const bool content = carries_content(chunk);
        if (!first_content_) {
            if (!content) {
                accumulator_.add(chunk);
                held_.push_back(std::move(chunk));
                return true;
            }
            if (!commit()) return false;
        }
        if (content) note_content();
        accumulator_.add(chunk);
        return deliver(chunk);
    }

    // The stream's pace, for inter-token latency and tokens per second: how many content chunks
    // came, and when the last did after the first (on the injected clock, as the first token).
    void note_content() {
        if (seen_.content_chunks++ > 0)
            seen_.generation_time =
                std::chrono::duration_cast<std::chrono::microseconds>(clock_.now() - measured_first_);
    }

    bool commit() {
        if (!ctx_.state->try_commit(attempt_id_)) {
            lost_race_ = true;
            return false;
        }
        first_content_ = steady::now();
        measured_first_ = clock_.now();
        seen_.delivered = true;
        seen_.latency = std::chrono::duration_cast<std::chrono::microseconds>(measured_first_ - measured_start_);
        for (const auto& held : held_)
            if (!deliver(held)) return false;
        held_.clear();
        return true;
    }

    bool deliver(const chat_chunk& chunk) {
        if (ctx_.silent) return true;  // a shadow attempt: recorded, never shown to the caller
        if (!deliver_(chunk)) user_stopped_ = true;
        return !user_stopped_;
    }

    bool fail(error e) {
        stream_error_ = std::move(e);
        return false;
    }

    result<chat_response> succeed(bool stopped_early) {
        if (!first_content_ && !stopped_early && !commit()) return error(error_kind::cancelled, "another attempt of this call delivered first");
        chat_response out = accumulator_.take();
        out.call.request_id = request_id_;
        out.call.stopped_early = stopped_early;
        if (first_content_) {
            out.call.time_to_first_token =
                std::chrono::duration_cast<std::chrono::microseconds>(measured_first_ - call_started_);
            out.call.attempt_time_to_first_token =
                std::chrono::duration_cast<std::chrono::microseconds>(measured_first_ - measured_start_);
        }
        seen_.usage = out.usage;
        return out;
    }

    // Called once, at the attempt's end: the reply so far moves into the error, never copied, as it
    // may be near max_response_bytes.
    error with_partial(const error& e) {
        error_details d = e.details();
        if (!accumulator_.response().choices.empty() || accumulator_.response().usage) {
            d.partial_response = std::make_shared<const chat_response>(accumulator_.take_partial());
            d.partial_content = std::shared_ptr<const std::string>(d.partial_response, &d.partial_response->content());
        }
        if (d.request_id.empty()) d.request_id = request_id_;
        redact_details(d, secret_);
        return error(e.kind(), std::move(d));
    }

    // Timeouts name the limit that passed; a cut connection after a good head is a truncated stream.
    error transport_failure(const error& e) {
        if (e.kind() == error_kind::timeout && steady::now() >= progress_deadline()) {
            const bool waiting_first = !first_content_ && ctx_.first_token_timeout;
            const auto limit = waiting_first ? *ctx_.first_token_timeout : ctx_.idle_timeout.value_or(std::chrono::milliseconds(0));
            return with_partial(error(error_kind::timeout, std::string(waiting_first ? "no first token within " : "no chunk within ") +
                                                               std::to_string(limit.count()) + " ms"));
        }
        if (e.kind() == error_kind::connection && status_ >= 200 && status_ < 300 && event_stream_)
            return with_partial(error(error_kind::stream_truncated, "the stream was cut off: " + e.message()));
        return with_partial(e);
    }

    // A 2xx reply that is not an event stream: an error object, or a server that ignored
    // "stream": true and answered with a whole completion, which is delivered as one chunk.
    result<chat_response> from_plain_body() {
        const std::string& body = body_.body;
        chat_response whole;
        const bool parsed = read_json(body, whole);
        if (parsed && is_error_object(whole)) return stream_error(body, secret_);
        if (!parsed || whole.choices.empty())
            return error(error_kind::invalid_response, "expected an event stream, got: " + truncate_utf8(body, 200));
        chat_chunk chunk;
        chunk.id = whole.id;
        chunk.model = whole.model;
        chunk.created = whole.created;
        chunk.system_fingerprint = whole.system_fingerprint;
        chunk.usage = whole.usage;
        for (auto& c : whole.choices) {
            chat_chunk_choice piece;
            piece.index = c.index;
            piece.delta = std::move(c.message);
            piece.finish_reason = std::move(c.finish_reason);
            chunk.choices.push_back(std::move(piece));
        }
        if (!offer(std::move(chunk)) && !user_stopped_) return error(error_kind::cancelled, "another attempt of this call delivered first");
        return succeed(user_stopped_);
    }

    call_context& ctx_;
    reply_observation& seen_;
    int attempt_id_;
    chunk_callback deliver_;
    std::string_view secret_;
    const sturdy::clock& clock_;
    // What is reported (latency, time to first token) is measured on the injected clock, as every
    // other time of the call; the limits are enforced by the transport in real time (steady).
    clock::time_point call_started_;
    steady::time_point attempt_started_, last_event_;
    std::optional<steady::time_point> first_content_;
    clock::time_point measured_start_, measured_first_{};

    int status_ = 0;
    std::string request_id_;
    bool event_stream_ = false, collecting_ = false;
    std::size_t max_stream_bytes_, streamed_bytes_ = 0;
    http_head head_;  // an event stream's head
    static constexpr std::chrono::milliseconds after_done_grace{250};
    body_collector body_;  // a reply that is not a stream: an error, or a whole completion

    sse_parser parser_;
    chat_chunk chunk_;
    chat_accumulator accumulator_;
    std::vector<chat_chunk> held_;
    bool done_ = false, user_stopped_ = false, lost_race_ = false;
    std::optional<error> stream_error_;
};

}  // namespace sturdy::detail

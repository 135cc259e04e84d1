#pragma once
/// @file
/// A small local OpenAI-compatible server for sturdy's examples and tests, with fault injection.
///
/// It answers chat completions (plain, streamed, tool calls), model listings and embeddings with
/// deterministic replies, so examples run without an API key and tests can check exact output.
/// Faults (HTTP errors, latency, stalled or cut streams, dropped connections) are queued
/// programmatically or over HTTP and make the server misbehave on purpose, the way real
/// providers sometimes do.
///
/// @code
/// sturdy_demo::server demo;
/// demo.start();                                            // ephemeral port, background threads
/// demo.inject(sturdy_demo::fault::status(429).retry_after(std::chrono::seconds(1)));
/// // point a client at demo.base_url(): its first request gets a 429, the retry succeeds
/// @endcode
///
/// The server is independent of the sturdy client library: it only needs cpp-httplib and
/// nlohmann/json, and this header includes neither.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sturdy_demo {

/// One injected misbehaviour. Build one with a factory, refine it with the setters:
/// `fault::status(503).retry_after(2s).for_model("demo-large").times(3)`.
///
/// Queued faults are consumed FIFO, one per matching request (see `server::inject`).
struct fault {
  /// What the server does instead of (or while) answering normally.
  enum class kind {
    status,        ///< reply `http_status` with an OpenAI-style error body (or `raw_body`)
    latency,       ///< answer normally, `delay` late
    stall,         ///< stream: send `after_chunks` events, then go silent for `delay`, then go on;
                   ///< non-stream: wait `delay`, then answer
    cut,           ///< stream: send `after_chunks` events, then close the connection (no [DONE]);
                   ///< non-stream: close the connection halfway through the body
    stream_error,  ///< stream: after `after_chunks` events send `data: {"error": ...}` and end;
                   ///< non-stream: a 500 `server_error` with the same message
    malformed,     ///< stream: after `after_chunks` events send a `data:` line that is not JSON,
                   ///< then go on; non-stream: 200 with a body cut to invalid JSON
    drop,          ///< close the connection without sending any response
  };

  /// `delay` value for a stall that lasts until `server::stop()`.
  static constexpr std::chrono::milliseconds until_stopped = std::chrono::milliseconds::max();

  /// The error object of a `kind::status` reply; an empty field takes OpenAI's usual value for
  /// the status and code (e.g. 429 -> type `requests`, code `rate_limit_exceeded`).
  struct error_fields {
    std::string type;
    std::string code;
    std::string message;
  };

  /// Headers sent with a `kind::status` reply (and whatever `header()` adds).
  struct header_fields {
    std::optional<std::chrono::seconds> retry_after;  ///< `retry-after`
    bool retry_after_as_http_date = false;            ///< send it as an HTTP-date, now + value
    std::optional<std::chrono::milliseconds> retry_after_ms;  ///< `retry-after-ms`
    std::optional<bool> should_retry;                         ///< `x-should-retry: true|false`
    std::vector<std::pair<std::string, std::string>> extra;   ///< any other headers
  };

  kind what = kind::status;
  int http_status = 500;
  error_fields error;
  header_fields headers;
  std::string raw_body;          ///< if set, replaces the JSON error body (a proxy's HTML page)
  std::string raw_content_type;  ///< content type of `raw_body`
  std::chrono::milliseconds delay{0};  ///< for `latency` and `stall`
  int after_chunks = 0;  ///< for `stall`, `cut`, `stream_error`, `malformed` on streams
  std::string model;     ///< empty: any request; else only requests for this model
  int times_left = 1;    ///< matching requests it still applies to; negative: until cleared

  /// An HTTP error reply, e.g. `status(500)`, `status(429)`.
  static fault status(int http_status);
  /// 429 `insufficient_quota`: OpenAI's "you exceeded your current quota" (not worth retrying).
  static fault insufficient_quota();
  /// 400 `context_length_exceeded`, as if the prompt were too long for the model.
  static fault context_length_exceeded();
  /// Answer normally after `delay`.
  static fault latency(std::chrono::milliseconds delay);
  /// Send `chunks` stream events, then nothing for `how_long` (default: until the server stops).
  static fault stall_after(int chunks, std::chrono::milliseconds how_long = until_stopped);
  /// Send `chunks` stream events, then close the connection.
  static fault cut_after(int chunks);
  /// Send `chunks` stream events, then an in-stream error event, then end the stream. An empty
  /// message stands for OpenAI's usual one for a 500.
  static fault error_after(int chunks, std::string message = {});
  /// A 200 whose body is not valid JSON (for streams: one bad `data:` line after `chunks` events).
  static fault malformed(int chunks = 0);
  /// Close the connection without a response.
  static fault drop();

  fault& retry_after(std::chrono::seconds value);               ///< `retry-after: <seconds>`
  fault& retry_after_http_date(std::chrono::seconds from_now);  ///< `retry-after: <HTTP-date>`
  fault& retry_after_ms(std::chrono::milliseconds value);       ///< `retry-after-ms: <ms>`
  fault& should_retry(bool value);                              ///< `x-should-retry`
  fault& header(std::string name, std::string value);           ///< any other header
  fault& code(std::string value);     ///< error code, e.g. "insufficient_quota"
  fault& type(std::string value);     ///< error type, e.g. "server_error"
  fault& message(std::string value);  ///< error message
  fault& body(std::string raw, std::string content_type = "text/html; charset=utf-8");
  fault& for_model(std::string name);  ///< apply only to requests for this model
  fault& times(int n);  ///< apply to the next n matching requests; negative: until cleared
};

/// How the server behaves when no fault applies.
struct options {
  std::string host = "127.0.0.1";
  /// If set, requests need `Authorization: Bearer <api_key>` (else 401); if empty, anything goes.
  std::string api_key;
  /// Listed by `GET /v1/models`. Chat and embeddings accept any model name unless `strict_models`.
  std::vector<std::string> models{"demo-mini", "demo-large", "demo-embed"};
  bool strict_models = false;                ///< 404 `model_not_found` for models not in `models`
  std::chrono::milliseconds chunk_delay{0};  ///< pause between stream events
  /// Prompts of more words than this get 400 `context_length_exceeded`. Words count as tokens.
  int context_window = 4096;
  int embedding_dimensions = 16;  ///< default when the request has no `dimensions`
  int threads = 16;               ///< concurrent connections served (a stalled stream holds one)
  /// Called once per request with a line like `POST /v1/chat/completions 200 req_3`; may be empty.
  std::function<void(const std::string&)> log;
};

/// The demo server. Serves on background threads between `start()` and `stop()`; every member
/// function is thread-safe.
///
/// HTTP endpoints, besides the OpenAI ones under /v1:
///   POST   /demo/faults   queue faults: a fault object or an array of them (see README.md)
///   GET    /demo/faults   the queued faults
///   DELETE /demo/faults   `clear_faults()`
///   PUT    /demo/models/{id}  {"down": true, "down_status": 503, "latency_ms": 300,
///                              "rate_limit": {"requests": 5, "window_ms": 1000}}  (all optional)
///   GET    /demo/stats    request counts (total, per model), in-flight peak, pending faults
///   DELETE /demo/stats    `reset_stats()`
class server {
 public:
  explicit server(options opts = {});
  ~server();  ///< stops the server
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Listens on `port` (0: an ephemeral port) and serves on background threads. Returns the port.
  /// Connections are accepted as soon as it returns. Throws std::runtime_error if it cannot bind.
  /// After `stop()` it may be started again; faults and settings are kept.
  ///
  /// Ignores SIGPIPE process-wide if it has its default action: cpp-httplib writes to sockets
  /// without MSG_NOSIGNAL, so a client hanging up mid-stream would otherwise kill the process.
  int start(int port = 0);
  /// Stops serving and returns promptly, also while streams are stalled. Idempotent.
  void stop();
  bool running() const;
  int port() const;              ///< 0 when not running
  std::string base_url() const;  ///< `http://127.0.0.1:PORT/v1`

  /// Queues faults. Each request to /v1 takes the first queued fault that matches its model (an
  /// unscoped fault matches any request), which then counts down `times_left`.
  void inject(fault f);
  void inject(std::vector<fault> faults);
  /// Removes queued faults and resets every model's down, latency and rate-limit setting.
  void clear_faults();
  std::size_t pending_faults() const;

  /// While down, every request for `model` gets `http_status` (checked before queued faults).
  void set_model_down(const std::string& model, bool down, int http_status = 503);
  /// Adds `delay` before every answer for `model` (zero removes it). For hedging demos.
  void set_model_latency(const std::string& model, std::chrono::milliseconds delay);
  /// Allows `requests` per fixed `window` for `model`; beyond it, 429 with `retry-after-ms`.
  /// Replies carry `x-ratelimit-*-requests` headers while a limit is set; `requests <= 0`
  /// removes the limit.
  void set_rate_limit(const std::string& model, int requests, std::chrono::milliseconds window);

  std::size_t requests() const;  ///< requests to /v1 since reset_stats()
  std::size_t requests_for(const std::string& model) const;  ///< of those, for `model`
  std::size_t max_in_flight() const;  ///< most /v1 requests being answered at the same time
  void reset_stats();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace sturdy_demo

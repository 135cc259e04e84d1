// The demo server's implementation: cpp-httplib and nlohmann/json stay in this file, so programs
// that start a demo server do not compile them.
#include "demo_server.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#ifdef __linux__
#include <dirent.h>
#include <netdb.h>
#include <sys/socket.h>
#endif

namespace sturdy_demo {

namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;

// ---------------------------------------------------------------------------------------------
// Text: the server counts words as tokens, which keeps usage numbers predictable for tests.

std::vector<std::string> words_of(const std::string& text) {
  std::vector<std::string> words;
  std::string word;
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
    } else {
      word += c;
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  return words;
}

std::string join(const std::vector<std::string>& parts, const std::string& separator = "") {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) out += (i ? separator : "") + parts[i];
  return out;
}

/// The text of a message's `content`: a string, or an array of parts whose text parts count.
std::string content_text(const json& message) {
  auto content = message.find("content");
  if (content == message.end()) return "";
  if (content->is_string()) return content->get<std::string>();
  std::vector<std::string> texts;
  if (content->is_array()) {
    for (const json& part : *content) {
      if (part.is_object() && part.value("type", "") == "text" && part.contains("text") &&
          part["text"].is_string()) {
        texts.push_back(part["text"].get<std::string>());
      }
    }
  }
  return join(texts, " ");
}

/// Words in all messages; never throws, because error replies (context length) need it too.
int prompt_tokens_of(const json& body) {
  std::size_t words = 0;
  if (body.is_object() && body.contains("messages") && body["messages"].is_array()) {
    for (const json& m : body["messages"]) {
      if (m.is_object()) words += words_of(content_text(m)).size();
    }
  }
  return static_cast<int>(words);
}

std::string lowercase(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// ---------------------------------------------------------------------------------------------
// Errors: every error reply, whether injected or real, is an api_error rendered the same way.

struct api_error {
  int status = 500;
  std::string type;
  json code;  // a string, or null like many of OpenAI's errors
  std::string message;
  json param = nullptr;
};

/// JSON as sent. Strings from a request path (a model id) may not be UTF-8, which dump() would
/// throw on; those bytes become U+FFFD instead.
std::string json_text(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

json error_json(const api_error& e) {
  return {
      {"error", {{"message", e.message}, {"type", e.type}, {"param", e.param}, {"code", e.code}}}};
}

api_error invalid_request(std::string message, json param = nullptr) {
  return {400, "invalid_request_error", nullptr, std::move(message), std::move(param)};
}

/// OpenAI's usual type, code and message for a status or an error code. A null `message` is
/// computed from the request (see server::impl::error_for).
struct error_default {
  int status;
  const char* code;  // nullptr: JSON null
  const char* type;
  const char* message;
};

constexpr const char* server_error_message =
    "The server had an error while processing your request. Sorry about that!";

constexpr std::array<error_default, 12> status_defaults{{
    {400, nullptr, "invalid_request_error", "Bad request."},
    {401, "invalid_api_key", "invalid_request_error", "Incorrect API key provided."},
    {403, nullptr, "invalid_request_error", "You are not allowed to access this resource."},
    {404, nullptr, "invalid_request_error", "Not found."},
    {408, nullptr, "invalid_request_error", "Request timed out."},
    {409, nullptr, "invalid_request_error", "Conflict."},
    {422, nullptr, "invalid_request_error", "Unprocessable entity."},
    {429, "rate_limit_exceeded", "requests", nullptr},
    {500, "server_error", "server_error", server_error_message},
    {502, "bad_gateway", "server_error", "Bad gateway."},
    {503, "service_unavailable", "server_error", "The server is overloaded or not ready yet."},
    {504, "gateway_timeout", "server_error", "Gateway timeout."},
}};

// Codes whose type or message differ from their status's defaults.
constexpr std::array<error_default, 3> code_defaults{{
    {429, "insufficient_quota", "insufficient_quota",
     "You exceeded your current quota, please check your plan and billing details. For more "
     "information on this error, read the docs: "
     "https://platform.openai.com/docs/guides/error-codes/api-errors."},
    {400, "context_length_exceeded", "invalid_request_error", nullptr},
    {404, "model_not_found", "invalid_request_error", nullptr},
}};

const error_default* find_default(const std::string& code, int status) {
  for (const auto& d : code_defaults) {
    if (!code.empty() && code == d.code) return &d;
  }
  for (const auto& d : status_defaults) {
    if (code.empty() && status == d.status) return &d;
  }
  for (const auto& d : status_defaults) {
    if (status == d.status) return &d;  // a code of the user's own: keep the status's type
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Encodings.

/// IMF-fixdate (RFC 9110), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`, independent of the locale.
std::string http_date(std::chrono::system_clock::time_point when) {
  static const char* const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::time_t t = std::chrono::system_clock::to_time_t(when);
  std::tm tm{};
#ifdef _WIN32
  gmtime_s(&tm, &t);
#else
  gmtime_r(&t, &tm);
#endif
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
                tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

std::string base64(const std::string& bytes) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const std::size_t n = std::min<std::size_t>(3, bytes.size() - i);
    std::uint32_t group = 0;
    for (std::size_t k = 0; k < 3; ++k) {
      const auto byte = k < n ? static_cast<unsigned char>(bytes[i + k]) : 0u;
      group = (group << 8) | byte;
    }
    for (std::size_t k = 0; k < 4; ++k) {
      out += k <= n ? alphabet[(group >> (18 - 6 * k)) & 0x3f] : '=';
    }
  }
  return out;
}

/// Little-endian float32s, as OpenAI's `encoding_format: "base64"` sends them, on any host.
std::string float32_le_bytes(const std::vector<float>& values) {
  std::string bytes;
  bytes.reserve(values.size() * 4);
  for (float v : values) {
    std::uint32_t bits = 0;
    std::memcpy(&bits, &v, sizeof bits);
    for (int shift = 0; shift < 32; shift += 8) bytes += static_cast<char>((bits >> shift) & 0xff);
  }
  return bytes;
}

/// A deterministic unit vector for `text`: FNV-1a seeds a splitmix64 sequence.
std::vector<float> embedding_of(const std::string& text, std::size_t dimensions) {
  std::uint64_t state = 14695981039346656037ull;
  for (char c : text) state = (state ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  std::vector<double> raw(dimensions);
  double norm = 0;
  for (double& x : raw) {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    x = static_cast<double>(z >> 11) * 0x1.0p-53 * 2.0 - 1.0;  // uniform in [-1, 1)
    norm += x * x;
  }
  norm = std::sqrt(norm);
  std::vector<float> unit(dimensions);
  std::transform(raw.begin(), raw.end(), unit.begin(),
                 [norm](double x) { return static_cast<float>(x / norm); });
  return unit;
}

// ---------------------------------------------------------------------------------------------
// Faults as JSON, for POST /demo/faults and GET /demo/faults.

constexpr std::array<std::pair<fault::kind, const char*>, 7> kind_names{{
    {fault::kind::status, "status"},
    {fault::kind::latency, "latency"},
    {fault::kind::stall, "stall"},
    {fault::kind::cut, "cut"},
    {fault::kind::stream_error, "stream_error"},
    {fault::kind::malformed, "malformed"},
    {fault::kind::drop, "drop"},
}};

const char* name_of(fault::kind k) {
  for (const auto& [kind, name] : kind_names) {
    if (kind == k) return name;
  }
  return "?";
}

/// The fields of a JSON object sent to a /demo endpoint. Errors name the field; a field that no
/// get() asked for is a typo, which finish() reports.
class json_fields {
 public:
  json_fields(const json& obj, std::string what) : obj_(obj), what_(std::move(what)) {
    if (!obj_.is_object()) throw invalid_request(what_ + " must be a JSON object");
  }

  /// The field as T; nullopt if absent; a 400 if of the wrong type.
  template <class T>
  std::optional<T> get(const std::string& key) {
    read_.insert(key);
    auto it = obj_.find(key);
    if (it == obj_.end()) return std::nullopt;
    try {
      return it->get<T>();
    } catch (const json::exception&) {
      throw invalid_request("'" + key + "' of " + what_ + " has the wrong type", key);
    }
  }

  void finish() const {
    for (const auto& item : obj_.items()) {
      if (!read_.count(item.key())) {
        throw invalid_request("unknown field '" + item.key() + "' in " + what_, item.key());
      }
    }
  }

 private:
  const json& obj_;
  std::string what_;
  std::set<std::string> read_;
};

fault fault_from_json(const json& j) {
  json_fields in(j, "a fault");
  fault f;
  if (const auto name = in.get<std::string>("kind")) {
    auto it = std::find_if(kind_names.begin(), kind_names.end(),
                           [&](const auto& entry) { return *name == entry.second; });
    if (it == kind_names.end()) {
      throw invalid_request("unknown fault kind '" + *name +
                                "' (status, latency, stall, cut, stream_error, malformed, drop)",
                            "kind");
    }
    f.what = it->first;
    if (f.what == fault::kind::stall) f.delay = fault::until_stopped;
  }
  if (const auto v = in.get<int>("status")) f.http_status = *v;
  if (const auto v = in.get<std::string>("code")) f.code(*v);
  if (const auto v = in.get<std::string>("type")) f.type(*v);
  if (const auto v = in.get<std::string>("message")) f.message(*v);
  if (const auto v = in.get<int>("retry_after")) f.retry_after(std::chrono::seconds(*v));
  if (const auto v = in.get<int>("retry_after_http_date")) {
    f.retry_after_http_date(std::chrono::seconds(*v));
  }
  if (const auto v = in.get<int>("retry_after_ms")) f.retry_after_ms(milliseconds(*v));
  if (const auto v = in.get<bool>("should_retry")) f.should_retry(*v);
  if (const auto v = in.get<std::map<std::string, std::string>>("headers")) {
    for (const auto& [name, value] : *v) f.header(name, value);
  }
  const auto content_type = in.get<std::string>("content_type");
  if (const auto v = in.get<std::string>("body")) {
    if (content_type) {
      f.body(*v, *content_type);
    } else {
      f.body(*v);
    }
  }
  if (const auto v = in.get<std::int64_t>("delay_ms")) f.delay = milliseconds(*v);
  if (const auto v = in.get<int>("after_chunks")) f.after_chunks = *v;
  if (const auto v = in.get<std::string>("model")) f.for_model(*v);
  if (const auto v = in.get<int>("times")) f.times(*v);
  in.finish();
  return f;
}

json fault_to_json(const fault& f) {
  json j{{"kind", name_of(f.what)}};
  if (f.what == fault::kind::status) j["status"] = f.http_status;
  if (!f.error.type.empty()) j["type"] = f.error.type;
  if (!f.error.code.empty()) j["code"] = f.error.code;
  if (!f.error.message.empty()) j["message"] = f.error.message;
  if (f.headers.retry_after) {
    j[f.headers.retry_after_as_http_date ? "retry_after_http_date" : "retry_after"] =
        f.headers.retry_after->count();
  }
  if (f.headers.retry_after_ms) j["retry_after_ms"] = f.headers.retry_after_ms->count();
  if (f.headers.should_retry) j["should_retry"] = *f.headers.should_retry;
  for (const auto& [name, value] : f.headers.extra) j["headers"][name] = value;
  if (!f.raw_body.empty()) {
    j["body"] = f.raw_body;
    j["content_type"] = f.raw_content_type;
  }
  if (f.delay.count() != 0 && f.delay != fault::until_stopped) j["delay_ms"] = f.delay.count();
  if (f.after_chunks != 0) j["after_chunks"] = f.after_chunks;
  if (!f.model.empty()) j["model"] = f.model;
  j["times"] = f.times_left;
  return j;
}

// ---------------------------------------------------------------------------------------------
// Closing connections behind httplib's back.
//
// cpp-httplib 0.11 gives handlers no access to their socket, and its stop() does not wake workers
// waiting on idle keep-alive connections (they wait out the keep-alive timeout, 5 s). So the
// server finds its connections itself: the sockets of this process whose local port is the
// server's. It shuts them down but never closes them: httplib owns the descriptors and closes
// them itself, and a closed descriptor could be reused under it.

/// An endpoint of a connected socket, as numeric host and port (httplib's Request format).
struct endpoint_address {
  std::string host;
  int port = -1;
};

/// Shuts down (SHUT_RDWR) each connection of this process with local port `local_port` whose
/// peer satisfies `is_target`; returns how many. Only on Linux (it reads /proc/self/fd);
/// elsewhere it does nothing and returns 0.
template <class Predicate>
int shutdown_connections(int local_port, Predicate is_target) {
  int count = 0;
#ifdef __linux__
  auto address_of = [](int sock, decltype(&getsockname) query) -> std::optional<endpoint_address> {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    char host[NI_MAXHOST];
    char service[NI_MAXSERV];
    if (query(sock, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
        getnameinfo(reinterpret_cast<const sockaddr*>(&addr), len, host, sizeof host, service,
                    sizeof service, NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
      return std::nullopt;  // not a socket, or not a connected one
    }
    return endpoint_address{host, std::atoi(service)};
  };
  DIR* fds = opendir("/proc/self/fd");
  if (!fds) return 0;
  while (const dirent* entry = readdir(fds)) {
    char* end = nullptr;
    const long fd = std::strtol(entry->d_name, &end, 10);
    if (*end != '\0' || end == entry->d_name) continue;  // "." and ".."
    const int sock = static_cast<int>(fd);
    const auto local = address_of(sock, &getsockname);
    if (!local || local->port != local_port) continue;
    const auto peer = address_of(sock, &getpeername);
    if (peer && is_target(*peer) && ::shutdown(sock, SHUT_RDWR) == 0) ++count;
  }
  closedir(fds);
#else
  (void)local_port;
  (void)is_target;
#endif
  return count;
}

/// Closes the connection `req` came on, so the client gets no response at all.
bool shutdown_connection_of(const httplib::Request& req) {
  return shutdown_connections(req.local_port, [&](const endpoint_address& peer) {
           return peer.port == req.remote_port && peer.host == req.remote_addr;
         }) > 0;
}

/// httplib::Server with a deeper accept queue. cpp-httplib 0.11 listens with a backlog of 5
/// (CPPHTTPLIB_LISTEN_BACKLOG, compiled into Debian's library), so a burst of concurrent
/// connections, as in a hedging or load demo, would see SYN retries: pauses of a second.
class http_server : public httplib::Server {
 public:
  void deepen_backlog() {
#ifndef _WIN32
    ::listen(svr_sock_, SOMAXCONN);  // listen() on a listening socket just updates its backlog
#endif
  }
};

/// cpp-httplib writes with send(..., 0); without this a client that hangs up mid-stream raises
/// SIGPIPE, whose default action kills the whole process (examples run the server in-process).
void ignore_sigpipe_by_default() {
#ifndef _WIN32
  struct sigaction current {};
  if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
    std::signal(SIGPIPE, SIG_IGN);
  }
#endif
}

// ---------------------------------------------------------------------------------------------
// Chat replies: composed once, then rendered as a completion or as stream events, so the two
// always agree.

struct tool_call {
  std::string id;
  std::string name;
  std::vector<std::string> arguments;  // streamed piece by piece; joined, valid JSON
};

struct chat_reply {
  std::string id;
  std::string model;
  std::int64_t created = 0;
  std::vector<std::string> text;  // one piece per word: "Hello", " from", ...
  std::optional<tool_call> call;  // instead of text
  std::string finish_reason;
  int prompt_tokens = 0;
  int completion_tokens = 0;
};

json usage_json(const chat_reply& r) {
  return {{"prompt_tokens", r.prompt_tokens},
          {"completion_tokens", r.completion_tokens},
          {"total_tokens", r.prompt_tokens + r.completion_tokens}};
}

json envelope(const chat_reply& r, const char* object) {
  return {{"id", r.id},
          {"object", object},
          {"created", r.created},
          {"model", r.model},
          {"system_fingerprint", "fp_sturdy_demo"}};
}

json completion_json(const chat_reply& r) {
  json message{{"role", "assistant"}, {"content", nullptr}, {"refusal", nullptr}};
  if (r.call) {
    message["tool_calls"] = json::array(
        {{{"id", r.call->id},
          {"type", "function"},
          {"function", {{"name", r.call->name}, {"arguments", join(r.call->arguments)}}}}});
  } else {
    message["content"] = join(r.text);
  }
  json out = envelope(r, "chat.completion");
  out["choices"] = json::array({{{"index", 0},
                                 {"message", std::move(message)},
                                 {"logprobs", nullptr},
                                 {"finish_reason", r.finish_reason}}});
  out["usage"] = usage_json(r);
  return out;
}

/// The deltas a stream sends, in order, before the final (empty) one.
std::vector<json> deltas_of(const chat_reply& r) {
  std::vector<json> deltas;
  if (r.call) {
    // Like OpenAI: the first delta names the call, later ones carry only argument pieces.
    deltas.push_back(
        {{"role", "assistant"},
         {"content", nullptr},
         {"tool_calls",
          json::array({{{"index", 0},
                        {"id", r.call->id},
                        {"type", "function"},
                        {"function", {{"name", r.call->name}, {"arguments", ""}}}}})}});
    for (const std::string& piece : r.call->arguments) {
      deltas.push_back(
          {{"tool_calls", json::array({{{"index", 0}, {"function", {{"arguments", piece}}}}})}});
    }
  } else {
    deltas.push_back({{"role", "assistant"}, {"content", ""}});
    for (const std::string& piece : r.text) deltas.push_back({{"content", piece}});
  }
  return deltas;
}

std::string sse(const json& data) { return "data: " + json_text(data) + "\n\n"; }

std::vector<std::string> stream_events(const chat_reply& r, bool include_usage) {
  auto chunk = [&](json delta, json finish_reason) {
    json out = envelope(r, "chat.completion.chunk");
    out["choices"] = json::array({{{"index", 0},
                                   {"delta", std::move(delta)},
                                   {"logprobs", nullptr},
                                   {"finish_reason", std::move(finish_reason)}}});
    if (include_usage) out["usage"] = nullptr;  // OpenAI sends usage only on the extra last chunk
    return out;
  };
  std::vector<std::string> events;
  for (json& delta : deltas_of(r)) events.push_back(sse(chunk(std::move(delta), nullptr)));
  events.push_back(sse(chunk(json::object(), r.finish_reason)));
  if (include_usage) {
    json last = envelope(r, "chat.completion.chunk");
    last["choices"] = json::array();
    last["usage"] = usage_json(r);
    events.push_back(sse(last));
  }
  events.push_back("data: [DONE]\n\n");
  return events;
}

/// What an endpoint answers: a JSON body, or (for streams) the SSE events to send.
struct outcome {
  json body;
  std::vector<std::string> events;
};

struct request_context {
  std::string id;     // the x-request-id
  std::string model;  // from the body or the path; may be empty
  json body;          // null for GET
};

/// `obj[key]` as an integer; nullopt when absent or null, a 400 when not an integer.
std::optional<std::int64_t> optional_integer(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (!it->is_number_integer())
    throw invalid_request("'" + std::string(key) + "' must be an integer", key);
  return it->get<std::int64_t>();
}

bool flag(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_boolean() && it->get<bool>();
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// =============================================================================================
// fault

fault fault::status(int http_status) {
  fault f;
  f.http_status = http_status;
  return f;
}
fault fault::insufficient_quota() { return status(429).code("insufficient_quota"); }
fault fault::context_length_exceeded() { return status(400).code("context_length_exceeded"); }

namespace {
fault of_kind(fault::kind what, int after_chunks = 0, milliseconds delay = {}) {
  fault f;
  f.what = what;
  f.after_chunks = after_chunks;
  f.delay = delay;
  return f;
}
}  // namespace

fault fault::latency(std::chrono::milliseconds delay) { return of_kind(kind::latency, 0, delay); }
fault fault::stall_after(int chunks, std::chrono::milliseconds how_long) {
  return of_kind(kind::stall, chunks, how_long);
}
fault fault::cut_after(int chunks) { return of_kind(kind::cut, chunks); }
fault fault::error_after(int chunks, std::string message) {
  return of_kind(kind::stream_error, chunks).message(std::move(message));
}
fault fault::malformed(int chunks) { return of_kind(kind::malformed, chunks); }
fault fault::drop() { return of_kind(kind::drop); }

fault& fault::retry_after(std::chrono::seconds value) {
  headers.retry_after = value;
  headers.retry_after_as_http_date = false;
  return *this;
}
fault& fault::retry_after_http_date(std::chrono::seconds from_now) {
  headers.retry_after = from_now;
  headers.retry_after_as_http_date = true;
  return *this;
}
fault& fault::retry_after_ms(std::chrono::milliseconds value) {
  headers.retry_after_ms = value;
  return *this;
}
fault& fault::should_retry(bool value) {
  headers.should_retry = value;
  return *this;
}
fault& fault::header(std::string name, std::string value) {
  headers.extra.emplace_back(std::move(name), std::move(value));
  return *this;
}
fault& fault::code(std::string value) {
  error.code = std::move(value);
  return *this;
}
fault& fault::type(std::string value) {
  error.type = std::move(value);
  return *this;
}
fault& fault::message(std::string value) {
  error.message = std::move(value);
  return *this;
}
fault& fault::body(std::string raw, std::string content_type) {
  raw_body = std::move(raw);
  raw_content_type = std::move(content_type);
  return *this;
}
fault& fault::for_model(std::string name) {
  model = std::move(name);
  return *this;
}
fault& fault::times(int n) {
  times_left = n;
  return *this;
}

// =============================================================================================
// server::impl

struct server::impl {
  explicit impl(options o) : opts(std::move(o)) {}

  const options opts;

  // Lifetime: guarded by life_mu. A fresh httplib::Server per start(), so stop/start works.
  std::mutex life_mu;
  std::unique_ptr<http_server> http;
  std::thread listener;
  std::atomic<int> bound_port{0};

  // Every wait (latency, stalls, chunk delays) waits on stop_cv, so stop() ends them at once.
  std::mutex stop_mu;
  std::condition_variable stop_cv;
  bool stopping = false;

  // Faults, per-model settings and statistics: guarded by mu.
  struct rate_limit {
    int requests = 0;
    milliseconds window{0};
    std::chrono::steady_clock::time_point window_start{};
    int used = 0;
  };
  struct model_settings {
    std::optional<int> down_status;
    milliseconds latency{0};
    std::optional<rate_limit> limit;
  };
  mutable std::mutex mu;
  std::deque<fault> queue;
  std::map<std::string, model_settings> settings;
  std::size_t total_requests = 0;
  std::map<std::string, std::size_t> requests_by_model;
  std::size_t in_flight = 0;
  std::size_t peak_in_flight = 0;

  std::atomic<std::uint64_t> request_counter{0};

  // --- waiting ------------------------------------------------------------------------------

  /// Waits `d` (fault::until_stopped: until stop()). Returns false if the server is stopping.
  bool pause(milliseconds d) {
    std::unique_lock<std::mutex> lock(stop_mu);
    if (d == fault::until_stopped) {
      stop_cv.wait(lock, [this] { return stopping; });
      return false;
    }
    return !stop_cv.wait_for(lock, d, [this] { return stopping; });
  }

  // --- bookkeeping --------------------------------------------------------------------------

  /// Counts a /v1 request as in flight until the returned token is destroyed: for streams that
  /// is when httplib drops the content provider holding it, after the last event.
  std::shared_ptr<void> enter(const std::string& model) {
    std::lock_guard<std::mutex> lock(mu);
    ++total_requests;
    if (!model.empty()) ++requests_by_model[model];
    peak_in_flight = std::max(peak_in_flight, ++in_flight);
    return std::shared_ptr<void>(nullptr, [this](void*) {
      std::lock_guard<std::mutex> exit_lock(mu);
      --in_flight;
    });
  }

  /// The fault this request meets, if any: a down model first, then the rate limit, then the
  /// first queued fault scoped to this model or to none. Sets the x-ratelimit headers.
  std::optional<fault> take_fault(const std::string& model, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mu);
    auto s = settings.find(model);
    if (s != settings.end() && s->second.down_status) {
      return fault::status(*s->second.down_status)
          .message("The model '" + model + "' is down (demo server).");
    }
    if (s != settings.end() && s->second.limit) {
      if (auto limited = count_against(*s->second.limit, model, res)) return limited;
    }
    auto match = std::find_if(queue.begin(), queue.end(),
                              [&](const fault& f) { return f.model.empty() || f.model == model; });
    if (match == queue.end()) return std::nullopt;
    fault taken = *match;
    if (match->times_left > 0 && --match->times_left == 0) queue.erase(match);  // < 0: forever
    return taken;
  }

  /// A fixed-window limiter; returns the 429 fault when the window is used up.
  static std::optional<fault> count_against(rate_limit& limit, const std::string& model,
                                            httplib::Response& res) {
    const auto now = std::chrono::steady_clock::now();
    if (now - limit.window_start >= limit.window) {
      limit.window_start = now;
      limit.used = 0;
    }
    const auto reset =
        std::chrono::duration_cast<milliseconds>(limit.window_start + limit.window - now);
    const bool allowed = limit.used < limit.requests;
    if (allowed) ++limit.used;
    res.set_header("x-ratelimit-limit-requests", std::to_string(limit.requests));
    res.set_header("x-ratelimit-remaining-requests", std::to_string(limit.requests - limit.used));
    res.set_header("x-ratelimit-reset-requests", std::to_string(reset.count()) + "ms");
    if (allowed) return std::nullopt;
    return fault::status(429).retry_after_ms(reset).message(
        "Rate limit reached for " + model + " on requests: Limit " +
        std::to_string(limit.requests) + ", Used " + std::to_string(limit.used) +
        ". Please try again in " + std::to_string(reset.count()) + "ms.");
  }

  milliseconds latency_of(const std::string& model) const {
    std::lock_guard<std::mutex> lock(mu);
    auto s = settings.find(model);
    return s == settings.end() ? milliseconds(0) : s->second.latency;
  }

  // --- errors -------------------------------------------------------------------------------

  /// The error a `kind::status` fault stands for, with OpenAI's defaults for what it leaves out.
  api_error error_for(const fault& f, const request_context& ctx) const {
    const error_default* d = find_default(f.error.code, f.http_status);
    api_error e;
    e.status = f.http_status;
    e.type = !f.error.type.empty()  ? f.error.type
             : d                    ? d->type
             : f.http_status >= 500 ? "server_error"
                                    : "invalid_request_error";
    e.code = !f.error.code.empty() ? json(f.error.code)
             : d && d->code        ? json(d->code)
                                   : json(nullptr);
    const std::string code = e.code.is_string() ? e.code.get<std::string>() : "";
    if (!f.error.message.empty()) {
      e.message = f.error.message;
    } else if (code == "context_length_exceeded") {
      e.message = "This model's maximum context length is " + std::to_string(opts.context_window) +
                  " tokens. However, your messages resulted in " +
                  std::to_string(prompt_tokens_of(ctx.body)) +
                  " tokens. Please reduce the length of the messages.";
      e.param = "messages";
    } else if (code == "model_not_found") {
      e.message = "The model '" + ctx.model + "' does not exist";
    } else if (d && d->message) {
      e.message = d->message;
    } else if (f.http_status == 429) {
      e.message = "Rate limit reached for " + (ctx.model.empty() ? "requests" : ctx.model) +
                  ". Please try again later.";
    } else {
      e.message = "HTTP " + std::to_string(f.http_status) + " (demo server)";
    }
    return e;
  }

  static void send_error(httplib::Response& res, const api_error& e) {
    res.status = e.status;
    res.set_content(json_text(error_json(e)), "application/json");
  }

  void send_fault_error(httplib::Response& res, const fault& f, const request_context& ctx) const {
    const auto& h = f.headers;
    if (h.retry_after) {
      res.set_header("retry-after",
                     h.retry_after_as_http_date
                         ? http_date(std::chrono::system_clock::now() + *h.retry_after)
                         : std::to_string(h.retry_after->count()));
    }
    if (h.retry_after_ms)
      res.set_header("retry-after-ms", std::to_string(h.retry_after_ms->count()));
    if (h.should_retry) res.set_header("x-should-retry", *h.should_retry ? "true" : "false");
    for (const auto& [name, value] : h.extra) res.set_header(name, value);
    if (f.raw_body.empty()) {
      send_error(res, error_for(f, ctx));
    } else {
      res.status = f.http_status;
      res.set_content(f.raw_body, f.raw_content_type);
    }
  }

  /// The error of a `stream_error` fault: type `server_error` and code null unless it says else.
  static api_error stream_error_of(const fault& f) {
    return {500, f.error.type.empty() ? "server_error" : f.error.type,
            f.error.code.empty() ? json(nullptr) : json(f.error.code),
            f.error.message.empty() ? server_error_message : f.error.message};
  }

  /// Runs `respond`, turning api_error and malformed-request exceptions into OpenAI-style replies.
  template <class F>
  static void guarded(httplib::Response& res, F&& respond) {
    try {
      respond();
    } catch (const api_error& e) {
      send_error(res, e);
    } catch (const json::exception& e) {
      send_error(res, invalid_request(std::string("Invalid request: ") + e.what()));
    }
  }

  // --- delivery -----------------------------------------------------------------------------

  /// A non-stream reply, changed by the stream faults' non-stream meaning (see fault::kind).
  void send_body(httplib::Response& res, const json& body, const std::optional<fault>& f) {
    auto text = std::make_shared<std::string>(json_text(body));
    if (f && f->what == fault::kind::stall) pause(f->delay);
    if (f && f->what == fault::kind::stream_error) return send_error(res, stream_error_of(*f));
    if (f && f->what == fault::kind::malformed) text->resize(text->size() / 2);
    if (f && f->what == fault::kind::cut) {
      // Promise the whole body, send half, then abort: the client sees a short read.
      res.set_content_provider(text->size(), "application/json",
                               [text](std::size_t, std::size_t, httplib::DataSink& sink) {
                                 sink.write(text->data(), text->size() / 2);
                                 return false;
                               });
      return;
    }
    res.set_content(*text, "application/json");
  }

  /// The state of one streamed reply, shared with httplib's content provider.
  struct stream_state {
    std::vector<std::string> events;
    std::size_t next = 0;
    std::optional<fault> fault_to_apply;  // stream faults fire when `next` reaches `fault_at`
    std::size_t fault_at = 0;
    std::shared_ptr<void> in_flight;
  };

  void send_stream(httplib::Response& res, std::vector<std::string> events,
                   const std::optional<fault>& f, std::shared_ptr<void> in_flight_token) {
    auto s = std::make_shared<stream_state>();
    s->events = std::move(events);
    s->in_flight = std::move(in_flight_token);
    if (f && f->what != fault::kind::latency) {
      s->fault_to_apply = f;
      // Never past the last event, so a cut or error stream really lacks its [DONE].
      s->fault_at =
          std::min(static_cast<std::size_t>(std::max(f->after_chunks, 0)), s->events.size() - 1);
    }
    res.set_header("Cache-Control", "no-cache");
    // httplib calls the provider until it calls sink.done() (end of stream) or returns false
    // (which aborts the connection); each call sends at most one event.
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, s](std::size_t, httplib::DataSink& sink) { return stream_step(*s, sink); });
  }

  bool stream_step(stream_state& s, httplib::DataSink& sink) {
    if (s.next > 0 && !pause(opts.chunk_delay)) return false;
    if (s.fault_to_apply && s.next == s.fault_at) {
      const fault f = *std::exchange(s.fault_to_apply, std::nullopt);
      switch (f.what) {
        case fault::kind::stall:
          if (!pause(f.delay)) return false;
          break;
        case fault::kind::cut:
          return false;
        case fault::kind::stream_error: {
          const std::string event = sse(error_json(stream_error_of(f)));
          sink.write(event.data(), event.size());
          sink.done();
          return true;
        }
        case fault::kind::malformed: {
          const std::string event = "data: {\"id\": \"chatcmpl-broken\", \"choices\": [{\n\n";
          if (!sink.write(event.data(), event.size())) return false;
          break;
        }
        default:
          break;
      }
    }
    const std::string& event = s.events[s.next++];
    if (!sink.write(event.data(), event.size())) return false;
    if (s.next == s.events.size()) sink.done();
    return true;
  }

  // --- the /v1 pipeline ---------------------------------------------------------------------

  using endpoint = outcome (impl::*)(const request_context&);

  /// Every /v1 request: count it, check the key, meet its fault, wait out latency, answer.
  void serve(const httplib::Request& req, httplib::Response& res, endpoint answer) {
    request_context ctx;
    ctx.id = res.get_header_value("x-request-id");
    const bool has_body = req.method == "POST";
    json parsed = has_body ? json::parse(req.body, nullptr, false) : json(nullptr);
    if (req.matches.size() > 1) {
      ctx.model = req.matches[1].str();
    } else if (parsed.is_object() && parsed.contains("model") && parsed["model"].is_string()) {
      ctx.model = parsed["model"].get<std::string>();
    }
    auto in_flight_token = enter(ctx.model);

    guarded(res, [&] {
      check_api_key(req, ctx);
      if (parsed.is_discarded()) {
        throw invalid_request(
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
            "but what was sent was not valid JSON.)");
      }
      ctx.body = std::move(parsed);

      std::optional<fault> f = take_fault(ctx.model, res);
      const bool waited = pause(latency_of(ctx.model)) &&
                          (!f || f->what != fault::kind::latency || pause(f->delay));
      if (!waited) throw api_error{503, "server_error", nullptr, "The demo server is stopping."};
      if (f && f->what == fault::kind::status) return send_fault_error(res, *f, ctx);
      if (f && f->what == fault::kind::drop) return drop(req, res);

      outcome out = (this->*answer)(ctx);
      if (out.events.empty()) {
        send_body(res, out.body, f);
      } else {
        send_stream(res, std::move(out.events), f, std::move(in_flight_token));
      }
    });
  }

  void check_api_key(const httplib::Request& req, const request_context& ctx) const {
    if (opts.api_key.empty() || req.get_header_value("Authorization") == "Bearer " + opts.api_key)
      return;
    throw error_for(fault::status(401), ctx);
  }

  static void drop(const httplib::Request& req, httplib::Response& res) {
    shutdown_connection_of(req);
    // Where the socket could not be found, the closest thing: the status line and headers go
    // out, then the connection closes before any body.
    res.set_chunked_content_provider("application/json",
                                     [](std::size_t, httplib::DataSink&) { return false; });
  }

  void require_model(const request_context& ctx) const {
    if (!ctx.body.contains("model") || !ctx.body["model"].is_string()) {
      throw invalid_request("you must provide a model parameter", "model");
    }
    if (opts.strict_models && !is_listed(ctx.model)) {
      throw error_for(fault::status(404).code("model_not_found"), ctx);
    }
  }

  bool is_listed(const std::string& model) const {
    return std::find(opts.models.begin(), opts.models.end(), model) != opts.models.end();
  }

  // --- endpoints ----------------------------------------------------------------------------

  outcome chat(const request_context& ctx) {
    const json& body = ctx.body;
    require_model(ctx);
    if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty()) {
      throw invalid_request("Missing required parameter: 'messages'.", "messages");
    }
    chat_reply r = compose(ctx);
    if (r.prompt_tokens > opts.context_window)
      throw error_for(fault::context_length_exceeded(), ctx);

    outcome out;
    if (flag(body, "stream")) {
      const bool include_usage = body.contains("stream_options") &&
                                 body["stream_options"].is_object() &&
                                 flag(body["stream_options"], "include_usage");
      out.events = stream_events(r, include_usage);
    } else {
      out.body = completion_json(r);
    }
    return out;
  }

  /// The deterministic reply: an echo of the last user message, a tool call when the request
  /// offers tools and asks about the weather, or a comment on a tool's result.
  chat_reply compose(const request_context& ctx) const {
    const json& body = ctx.body;
    const json& messages = body["messages"];
    chat_reply r;
    r.id = "chatcmpl-" + ctx.id;
    r.model = ctx.model;
    r.created = unix_now();
    r.prompt_tokens = prompt_tokens_of(body);

    const json& last = messages.back();
    const std::string role = last.is_object() ? last.value("role", "") : "";
    const std::string said = last.is_object() ? content_text(last) : "";

    if (const auto tool = tool_to_call(body);
        tool && role == "user" && lowercase(said).find("weather") != std::string::npos) {
      r.call = tool_call{"call_" + ctx.id, *tool, {R"({"city":)", R"("Par)", R"(is"})"}};
      r.finish_reason = "tool_calls";
      r.completion_tokens = static_cast<int>(r.call->arguments.size());
      return r;
    }

    // The last user message, or the tool result the client sent back after a tool call.
    std::string echoed = said;
    if (role != "user" && role != "tool") {
      auto user = std::find_if(messages.rbegin(), messages.rend(), [](const json& m) {
        return m.is_object() && m.value("role", "") == "user";
      });
      echoed = user == messages.rend() ? "" : content_text(*user);
    }
    std::vector<std::string> said_words = words_of(echoed);
    constexpr std::size_t echo_limit = 24;
    if (said_words.size() > echo_limit) {
      said_words.resize(echo_limit);
      said_words.back() += "...";
    }
    const std::string text = std::string("Hello from the sturdy demo server! ") +
                             (role == "tool" ? "The tool returned: " : "You said: ") +
                             (said_words.empty() ? "(nothing)" : join(said_words, " "));

    const std::vector<std::string> reply_words = words_of(text);
    std::size_t budget = reply_words.size();
    auto max_tokens = optional_integer(body, "max_completion_tokens");
    if (!max_tokens) max_tokens = optional_integer(body, "max_tokens");
    if (max_tokens && *max_tokens < 1)
      throw invalid_request("'max_tokens' must be at least 1", "max_tokens");
    if (max_tokens) budget = std::min(budget, static_cast<std::size_t>(*max_tokens));
    for (std::size_t i = 0; i < budget; ++i) r.text.push_back((i ? " " : "") + reply_words[i]);
    r.finish_reason = budget < reply_words.size() ? "length" : "stop";
    r.completion_tokens = static_cast<int>(budget);
    return r;
  }

  /// The function a tool call would name: the forced one, else the first tool; none if the
  /// request has no tools or says `tool_choice: "none"`.
  static std::optional<std::string> tool_to_call(const json& body) {
    if (!body.contains("tools") || !body["tools"].is_array() || body["tools"].empty())
      return std::nullopt;
    const json choice = body.value("tool_choice", json("auto"));
    if (choice == "none") return std::nullopt;
    if (choice.is_object() && choice.contains("function"))
      return choice["function"].value("name", "tool");
    const json& first = body["tools"][0];
    return first.contains("function") ? first["function"].value("name", "tool")
                                      : std::string("tool");
  }

  outcome embeddings(const request_context& ctx) {
    const json& body = ctx.body;
    require_model(ctx);

    // `input`: a string, strings, a token array, or token arrays. Token arrays are hashed as
    // their JSON text and count one token per element.
    std::vector<std::pair<std::string, std::size_t>> inputs;  // text to hash, tokens
    const json input = body.value("input", json());
    auto add = [&](const json& item) {
      if (item.is_string()) {
        inputs.emplace_back(item.get<std::string>(), words_of(item.get<std::string>()).size());
      } else if (item.is_array() && !item.empty() && item[0].is_number_integer()) {
        inputs.emplace_back(item.dump(), item.size());
      } else {
        throw invalid_request("'input' must be a string, an array of strings or of token arrays",
                              "input");
      }
    };
    if (input.is_array() && !input.empty() && !input[0].is_number_integer()) {
      for (const json& item : input) add(item);
    } else {
      add(input);
    }

    const auto dimensions =
        optional_integer(body, "dimensions").value_or(opts.embedding_dimensions);
    if (dimensions < 1 || dimensions > 65536) {
      throw invalid_request("'dimensions' must be between 1 and 65536", "dimensions");
    }
    const json format = body.value("encoding_format", json());
    if (!format.is_null() && format != "float" && format != "base64") {
      throw invalid_request("'encoding_format' must be 'float' or 'base64'", "encoding_format");
    }

    json data = json::array();
    std::size_t tokens = 0;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const auto vector = embedding_of(inputs[i].first, static_cast<std::size_t>(dimensions));
      tokens += inputs[i].second;
      data.push_back({{"object", "embedding"},
                      {"index", i},
                      {"embedding", format == "base64" ? json(base64(float32_le_bytes(vector)))
                                                       : json(vector)}});
    }
    return {{{"object", "list"},
             {"data", std::move(data)},
             {"model", ctx.model},
             {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}},
            {}};
  }

  static json model_json(const std::string& id) {
    return {{"id", id}, {"object", "model"}, {"created", 1700000000}, {"owned_by", "sturdy-demo"}};
  }

  outcome list_models(const request_context&) {
    json data = json::array();
    for (const auto& id : opts.models) data.push_back(model_json(id));
    return {{{"object", "list"}, {"data", std::move(data)}}, {}};
  }

  outcome get_model(const request_context& ctx) {
    if (!is_listed(ctx.model)) throw error_for(fault::status(404).code("model_not_found"), ctx);
    return {model_json(ctx.model), {}};
  }

  // --- /demo control endpoints --------------------------------------------------------------

  /// Queues faults; returns how many are pending. A fault for zero requests is left out.
  std::size_t enqueue(std::vector<fault> faults) {
    std::lock_guard<std::mutex> lock(mu);
    for (auto& f : faults) {
      if (f.times_left != 0) queue.push_back(std::move(f));
    }
    return queue.size();
  }

  void post_faults(const httplib::Request& req, httplib::Response& res) {
    const json body = json::parse(req.body, nullptr, false);
    if (body.is_discarded()) {
      throw invalid_request("the body must be a fault object or an array of them");
    }
    std::vector<fault> faults;
    for (const json& j : body.is_array() ? body : json::array({body})) {
      faults.push_back(fault_from_json(j));
    }
    const std::size_t queued = faults.size();
    const std::size_t pending = enqueue(std::move(faults));
    res.set_content(json_text({{"queued", queued}, {"pending", pending}}), "application/json");
  }

  json faults_json() const {
    std::lock_guard<std::mutex> lock(mu);
    json list = json::array();
    for (const fault& f : queue) list.push_back(fault_to_json(f));
    return {{"faults", std::move(list)}};
  }

  void put_model(const std::string& model, const httplib::Request& req) {
    const json body = json::parse(req.body);
    json_fields in(body, "a model setting");
    const auto down = in.get<bool>("down");
    const auto down_status = in.get<int>("down_status");
    const auto latency = in.get<std::int64_t>("latency_ms");
    const auto limit = in.get<json>("rate_limit");
    in.finish();
    if (down) set_down(model, *down, down_status.value_or(503));
    if (latency) set_latency(model, milliseconds(*latency));
    if (limit && limit->is_null()) set_limit(model, 0, {});
    if (limit && !limit->is_null()) {
      json_fields l(*limit, "rate_limit");
      const auto requests = l.get<int>("requests");
      const auto window = l.get<std::int64_t>("window_ms");
      l.finish();
      set_limit(model, requests.value_or(0), milliseconds(window.value_or(1000)));
    }
  }

  void set_down(const std::string& model, bool down, int http_status) {
    std::lock_guard<std::mutex> lock(mu);
    settings[model].down_status = down ? std::optional<int>(http_status) : std::nullopt;
  }

  void set_latency(const std::string& model, milliseconds delay) {
    std::lock_guard<std::mutex> lock(mu);
    settings[model].latency = delay;
  }

  void set_limit(const std::string& model, int requests, milliseconds window) {
    std::lock_guard<std::mutex> lock(mu);
    auto& limit = settings[model].limit;
    if (requests > 0) {
      limit = rate_limit{requests, window};
    } else {
      limit.reset();
    }
  }

  json stats_json() const {
    std::lock_guard<std::mutex> lock(mu);
    json models = json::object();
    for (const auto& [name, s] : settings) {
      json m{{"down", s.down_status.has_value()}, {"latency_ms", s.latency.count()}};
      if (s.down_status) m["down_status"] = *s.down_status;
      if (s.limit)
        m["rate_limit"] = {{"requests", s.limit->requests}, {"window_ms", s.limit->window.count()}};
      models[name] = std::move(m);
    }
    return {{"requests", total_requests},     {"by_model", requests_by_model},
            {"in_flight", in_flight},         {"max_in_flight", peak_in_flight},
            {"pending_faults", queue.size()}, {"models", std::move(models)}};
  }

  void clear() {
    std::lock_guard<std::mutex> lock(mu);
    queue.clear();
    settings.clear();
  }

  void reset_stats() {
    std::lock_guard<std::mutex> lock(mu);
    total_requests = 0;
    requests_by_model.clear();
    peak_in_flight = in_flight;
  }

  // --- routing ------------------------------------------------------------------------------

  void install_routes(httplib::Server& s) {
    using httplib::Request;
    using httplib::Response;
    auto v1 = [this](endpoint answer) {
      return [this, answer](const Request& req, Response& res) { serve(req, res, answer); };
    };
    auto reply = [](Response& res, const json& body) {
      res.set_content(json_text(body), "application/json");
    };

    s.Post("/v1/chat/completions", v1(&impl::chat));
    s.Post("/v1/embeddings", v1(&impl::embeddings));
    s.Get("/v1/models", v1(&impl::list_models));
    s.Get("/v1/models/(.+)", v1(&impl::get_model));

    s.Post("/demo/faults", [this](const Request& req, Response& res) {
      guarded(res, [&] { post_faults(req, res); });
    });
    s.Get("/demo/faults",
          [this, reply](const Request&, Response& res) { reply(res, faults_json()); });
    s.Delete("/demo/faults", [this, reply](const Request&, Response& res) {
      clear();
      reply(res, faults_json());
    });
    s.Put("/demo/models/(.+)", [this, reply](const Request& req, Response& res) {
      guarded(res, [&] {
        put_model(req.matches[1], req);
        reply(res, stats_json()["models"]);
      });
    });
    s.Get("/demo/stats",
          [this, reply](const Request&, Response& res) { reply(res, stats_json()); });
    s.Delete("/demo/stats", [this, reply](const Request&, Response& res) {
      reset_stats();
      reply(res, stats_json());
    });

    s.set_pre_routing_handler([this](const Request&, Response& res) {
      res.set_header("x-request-id", "req_" + std::to_string(++request_counter));
      return httplib::Server::HandlerResponse::Unhandled;
    });
    // Requests no route took (404, or 400 from httplib's parser) get a JSON error too. The
    // explicit type picks this overload: a lambda converts to both of httplib's handler types.
    s.set_error_handler(httplib::Server::HandlerWithResponse([](const Request& req, Response& res) {
      if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;  // ours already
      const std::string message = res.status == 404
                                      ? "Invalid URL (" + req.method + " " + req.path + ")"
                                      : "The request could not be read.";
      send_error(res, {res.status, "invalid_request_error", nullptr, message});
      return httplib::Server::HandlerResponse::Handled;
    }));
    s.set_logger([this](const Request& req, const Response& res) {
      if (opts.log) {
        opts.log(req.method + " " + req.path + " " + std::to_string(res.status) + " " +
                 res.get_header_value("x-request-id"));
      }
    });
    s.set_keep_alive_max_count(1000);
    // Without it, a reply written in two pieces waits out the client's delayed ACK: 40 ms per call.
    s.set_tcp_nodelay(true);
    const auto threads = static_cast<std::size_t>(std::max(opts.threads, 1));
    s.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  }
};

// =============================================================================================
// server

server::server(options opts) : impl_(std::make_unique<impl>(std::move(opts))) {}

server::~server() { stop(); }

int server::start(int port) {
  std::lock_guard<std::mutex> lock(impl_->life_mu);
  if (impl_->http) return impl_->bound_port;
  ignore_sigpipe_by_default();
  {
    std::lock_guard<std::mutex> stop_lock(impl_->stop_mu);
    impl_->stopping = false;
  }

  auto http = std::make_unique<http_server>();
  impl_->install_routes(*http);
  const std::string& host = impl_->opts.host;
  const int bound =
      port == 0 ? http->bind_to_any_port(host) : (http->bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    throw std::runtime_error("sturdy_demo::server: cannot listen on " + host + ":" +
                             std::to_string(port));
  }
  http->deepen_backlog();

  // The socket already listens, so clients may connect; but httplib's stop() only works once
  // the accept loop runs, so wait for that before returning (start(); stop(); must not hang).
  auto finished = std::make_shared<std::atomic<bool>>(false);
  impl_->listener = std::thread([h = http.get(), finished] {
    h->listen_after_bind();
    *finished = true;
  });
  while (!http->is_running() && !*finished) std::this_thread::sleep_for(milliseconds(1));
  if (*finished) {
    impl_->listener.join();
    throw std::runtime_error("sturdy_demo::server: the accept loop ended at once");
  }
  impl_->http = std::move(http);
  impl_->bound_port = bound;
  return bound;
}

void server::stop() {
  std::lock_guard<std::mutex> lock(impl_->life_mu);
  if (!impl_->http) return;
  {
    std::lock_guard<std::mutex> stop_lock(impl_->stop_mu);
    impl_->stopping = true;
  }
  impl_->stop_cv.notify_all();  // ends stalls and delays, so httplib's workers can be joined
  impl_->http->stop();
  // Wake the workers still waiting on idle keep-alive connections (see shutdown_connections).
  shutdown_connections(impl_->bound_port, [](const endpoint_address&) { return true; });
  impl_->listener.join();
  impl_->http.reset();
  impl_->bound_port = 0;
}

bool server::running() const { return impl_->bound_port != 0; }
int server::port() const { return impl_->bound_port; }

std::string server::base_url() const {
  const std::string& host = impl_->opts.host;
  const bool any = host == "0.0.0.0" || host == "::" || host.empty();
  return "http://" + (any ? std::string("127.0.0.1") : host) + ":" + std::to_string(port()) + "/v1";
}

void server::inject(fault f) { inject(std::vector<fault>{std::move(f)}); }

void server::inject(std::vector<fault> faults) { impl_->enqueue(std::move(faults)); }

void server::clear_faults() { impl_->clear(); }

std::size_t server::pending_faults() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->queue.size();
}

void server::set_model_down(const std::string& model, bool down, int http_status) {
  impl_->set_down(model, down, http_status);
}

void server::set_model_latency(const std::string& model, std::chrono::milliseconds delay) {
  impl_->set_latency(model, delay);
}

void server::set_rate_limit(const std::string& model, int requests,
                            std::chrono::milliseconds window) {
  impl_->set_limit(model, requests, window);
}

std::size_t server::requests() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->total_requests;
}

std::size_t server::requests_for(const std::string& model) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->requests_by_model.find(model);
  return it == impl_->requests_by_model.end() ? 0 : it->second;
}

std::size_t server::max_in_flight() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->peak_in_flight;
}

void server::reset_stats() { impl_->reset_stats(); }

}  // namespace sturdy_demo

// sturdy test support: a tiny scripted HTTP/1.1 server over real loopback TCP sockets.
//
// Header-only, C++17, POSIX + std only (Linux; uses accept4/MSG_NOSIGNAL/POLLRDHUP when present).
// Tests script the replies the server sends, including faults a real HTTP library cannot
// produce (dropped / reset connections, stalls, malformed bytes, writes split at awkward
// places), then check what the client sent via the recorded requests.
//
//   sturdy_test::script_server srv;                      // listens on 127.0.0.1:<ephemeral>
//   srv.enqueue(sturdy_test::reply::json(200, R"({"ok":true})").header("x-request-id", "req_1"));
//   srv.enqueue(sturdy_test::reply::status(429).header("retry-after", "1").body(R"({"error":{}})"));
//   srv.enqueue(sturdy_test::reply::sse().data(R"({"a":1})").delay(std::chrono::milliseconds(50))
//                   .data("[DONE]"));
//   ... point the client at srv.base_url()  ("http://127.0.0.1:PORT/v1") ...
//   auto reqs = srv.requests();                          // method/target/headers/body, in order
//
// Reply framing (how the body is delimited on the wire):
//   * reply::status/json/text : Content-Length. The advertised length is the sum of ALL body
//     steps of the reply (also those after a drop()/reset(), which are never sent), unless
//     overridden with content_length(n) or an explicit "Content-Length" header.
//   * reply::sse              : Transfer-Encoding: chunked; every body()/event()/data() step is
//     written as one chunk (empty ones are skipped: an empty chunk would end the body), and the
//     terminating "0\r\n\r\n" is written after the last step. close_delimited() switches to
//     "Connection: close", no length, body ends when the server closes the connection.
//     chunked()/close_delimited() are available on every non-raw reply.
//   * reply::raw              : the exact bytes given, no head and no framing. The connection is
//     closed (gracefully) after the last step unless keep_alive() is set.
//
// Steps run in order on the connection's thread:
//   * the status line + headers are written first (delay_headers(d) waits before them);
//   * delay(d) / stall(d) : write nothing for d, keeping the socket open; stall() waits until
//     the server is stopped or the client hangs up. Waits are poll()s on a self-pipe, so stop()
//     interrupts them at once; a client closing its end (FIN / RST) also ends them early and
//     the connection is dropped (so a client that half-closes with shutdown(SHUT_WR) would
//     abort a stalled reply -- HTTP clients such as libcurl do not do that).
//   * drop()  : close() the socket right there (FIN, after whatever was written); later steps
//     are ignored. reply::disconnect() = close right after reading the request, no response.
//     (status(200).drop() sends a complete "Content-Length: 0" reply, then closes: to cut a
//     body short, put body bytes after the drop() or use content_length(n).)
//   * reset() : abortive close (SO_LINGER 0 -> RST). Bytes written before may or may not reach
//     the client's application (the peer kernel may discard them when the RST arrives).
//   * split_writes(n, pause) : every write of this reply (head, chunk framing, body) goes out in
//     n-byte send()s with `pause` between them (TCP_NODELAY is set, so they leave as separate
//     segments). For a split at one exact place, use separate body()/write_raw() steps with a
//     delay() in between.
//   * write_raw(bytes) : unframed bytes in the middle of a framed reply (e.g. a malformed chunk).
//
// Connections: one thread per accepted connection, HTTP/1.1 keep-alive (several requests per
// connection, like libcurl's connection reuse) until the client closes, the request says
// "Connection: close", or the reply closes (drop/reset/close_delimited/close_connection/raw).
// Request bodies: Content-Length and Transfer-Encoding: chunked. "Expect: 100-continue" is
// answered with "100 Continue" (libcurl 7.x sends it for POST bodies > 1 KiB).
// Replies are taken FIFO from the queue, one per request; when it is empty the handler (if
// set) is asked, else the default reply (initially a 500 JSON error "no scripted reply ...").
// Beware: libcurl silently retries a request ONCE on a fresh connection when a REUSED
// connection is closed before any response byte arrives (disconnect(), or a drop before the
// head); such a retry consumes the next scripted reply and is recorded as a second request.
//
// stop() (also run by the destructor) is prompt: it sets a flag and writes to a self-pipe that
// every blocking point (accept, recv, send, stalls, lingering close) polls, then joins all
// threads and closes all sockets. No SIGPIPE: sends use MSG_NOSIGNAL.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace sturdy_test {

namespace detail {

inline char ascii_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

inline std::string to_lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = ascii_lower(c);
    return out;
}

inline bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    return true;
}

inline std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

// Case-insensitive search for `token` in a comma-separated header value.
inline bool has_token(std::string_view list, std::string_view token) {
    while (!list.empty()) {
        std::size_t comma = list.find(',');
        std::string_view item = trim(list.substr(0, comma));
        if (iequals(item, token)) return true;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return false;
}

inline const char* reason_phrase(int code) {
    switch (code) {
        case 100: return "Continue";
        case 200: return "OK";
        case 201: return "Created";
        case 202: return "Accepted";
        case 204: return "No Content";
        case 301: return "Moved Permanently";
        case 302: return "Found";
        case 304: return "Not Modified";
        case 307: return "Temporary Redirect";
        case 308: return "Permanent Redirect";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 409: return "Conflict";
        case 413: return "Payload Too Large";
        case 415: return "Unsupported Media Type";
        case 422: return "Unprocessable Entity";
        case 429: return "Too Many Requests";
        case 500: return "Internal Server Error";
        case 501: return "Not Implemented";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        case 504: return "Gateway Timeout";
        default: return "Unknown";
    }
}

inline std::string to_hex(std::size_t n) {
    char buf[2 * sizeof(std::size_t) + 1];
    auto res = std::to_chars(buf, buf + sizeof buf, n, 16);
    return std::string(buf, res.ptr);
}

[[noreturn]] inline void throw_errno(const char* what) {
    throw std::system_error(errno, std::generic_category(), std::string("sturdy_test: ") + what);
}

inline void close_fd(int& fd) noexcept {
    if (fd >= 0) {
        ::close(fd);
        fd = -1;
    }
}

// Binds a TCP socket to 127.0.0.1:0 (non-blocking, close-on-exec). listen()s if backlog >= 0.
// Returns the fd and stores the kernel-chosen port.
inline int make_loopback_socket(int backlog, int& port_out) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) throw_errno("socket()");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = 0;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        int e = errno;
        ::close(fd);
        errno = e;
        throw_errno("bind(127.0.0.1:0)");
    }
    if (backlog >= 0 && ::listen(fd, backlog) != 0) {
        int e = errno;
        ::close(fd);
        errno = e;
        throw_errno("listen()");
    }
    socklen_t len = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        int e = errno;
        ::close(fd);
        errno = e;
        throw_errno("getsockname()");
    }
    port_out = static_cast<int>(ntohs(addr.sin_port));
    return fd;
}

using clock = std::chrono::steady_clock;

// Milliseconds until `deadline`, rounded up, clamped to [0, INT_MAX].
inline int ms_until(clock::time_point deadline) {
    auto rem = deadline - clock::now();
    if (rem <= clock::duration::zero()) return 0;
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(rem).count();
    return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
}

enum class io { ok, closed, stopped };

#ifdef POLLRDHUP
constexpr short peer_hangup_events = POLLRDHUP;
#else
constexpr short peer_hangup_events = 0;
#endif

// Reads at least one byte into `buf`. `wake` is the server's self-pipe (readable once stopping).
inline io recv_some(int fd, int wake, std::string& buf) {
    for (;;) {
        pollfd p[2] = {{fd, POLLIN, 0}, {wake, POLLIN, 0}};
        int rc = ::poll(p, 2, -1);
        if (rc < 0) {
            if (errno == EINTR) continue;
            return io::closed;
        }
        if (p[1].revents != 0) return io::stopped;
        if (p[0].revents == 0) continue;
        char tmp[16384];
        ssize_t n = ::recv(fd, tmp, sizeof tmp, MSG_DONTWAIT);
        if (n > 0) {
            buf.append(tmp, static_cast<std::size_t>(n));
            return io::ok;
        }
        if (n == 0) return io::closed;
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
        return io::closed;
    }
}

inline io send_exact(int fd, int wake, const char* data, std::size_t len) {
    while (len > 0) {
        ssize_t n = ::send(fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n >= 0) {
            data += n;
            len -= static_cast<std::size_t>(n);
            continue;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return io::closed;
        pollfd p[2] = {{fd, POLLOUT, 0}, {wake, POLLIN, 0}};
        int rc = ::poll(p, 2, -1);
        if (rc < 0 && errno != EINTR) return io::closed;
        if (p[1].revents != 0) return io::stopped;
    }
    return io::ok;
}

// Waits for `d` (forever if nullopt) unless the server stops (-> stopped) or the peer hangs up
// or errors (-> closed).
inline io idle(int fd, int wake, std::optional<std::chrono::milliseconds> d) {
    clock::time_point deadline{};
    if (d) deadline = clock::now() + *d;
    for (;;) {
        int timeout = -1;
        if (d) {
            timeout = ms_until(deadline);
            if (timeout == 0) return io::ok;
        }
        pollfd p[2] = {{wake, POLLIN, 0}, {fd, peer_hangup_events, 0}};
        int rc = ::poll(p, 2, timeout);
        if (rc < 0) {
            if (errno == EINTR) continue;
            return io::closed;
        }
        if (p[0].revents != 0) return io::stopped;
        if ((p[1].revents & (peer_hangup_events | POLLHUP | POLLERR)) != 0) return io::closed;
    }
}

// Graceful close: send FIN, then read and discard until the client closes too (bounded), so
// unread client bytes cannot turn our close into an RST that would destroy the reply in flight.
inline void lingering_close(int& fd, int wake) {
    ::shutdown(fd, SHUT_WR);
    const auto deadline = clock::now() + std::chrono::milliseconds(500);
    for (;;) {
        int timeout = ms_until(deadline);
        if (timeout == 0) break;
        pollfd p[2] = {{fd, POLLIN, 0}, {wake, POLLIN, 0}};
        int rc = ::poll(p, 2, timeout);
        if (rc < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (rc == 0 || p[1].revents != 0) break;
        char tmp[4096];
        ssize_t n = ::recv(fd, tmp, sizeof tmp, MSG_DONTWAIT);
        if (n == 0) break;
        if (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) break;
    }
    close_fd(fd);
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// What the client sent.
struct recorded_request {
    std::string method;   // "POST"
    std::string target;   // path + query, e.g. "/v1/chat/completions?x=1"
    std::string version;  // "HTTP/1.1"
    std::vector<std::pair<std::string, std::string>> headers;  // names lowercased, values trimmed
    std::string body;     // de-chunked if it was sent chunked
    std::size_t connection_id = 0;  // 1-based number of the TCP connection it arrived on

    // Value of the first header with this name (case-insensitive); "" if absent.
    std::string header(std::string_view name) const {
        for (const auto& h : headers)
            if (detail::iequals(h.first, name)) return h.second;
        return std::string();
    }
    bool has_header(std::string_view name) const {
        for (const auto& h : headers)
            if (detail::iequals(h.first, name)) return true;
        return false;
    }
    // target without the query string.
    std::string path() const { return target.substr(0, target.find('?')); }
};

// ---------------------------------------------------------------------------------------------
// A scripted reply: a head (status + headers + framing) and a sequence of steps.
// Builder methods return *this; replies are copyable values.
class reply {
public:
    using duration = std::chrono::milliseconds;
    enum class framing { content_length, chunked, close_delimited, raw };

    // Status line + headers, no body yet (add with body()); Content-Length framing.
    static reply status(int code) {
        reply r;
        r.status_ = code;
        r.steps_.push_back(step{step::kind::head, {}, {}});
        return r;
    }
    // status + "Content-Type: application/json" + body.
    static reply json(int code, std::string body_bytes) {
        reply r = status(code);
        r.header("Content-Type", "application/json");
        r.body(std::move(body_bytes));
        return r;
    }
    // status + "Content-Type: text/plain; charset=utf-8" + body.
    static reply text(int code, std::string body_bytes) {
        reply r = status(code);
        r.header("Content-Type", "text/plain; charset=utf-8");
        r.body(std::move(body_bytes));
        return r;
    }
    // Server-sent events: status (200), "Content-Type: text/event-stream", chunked framing.
    static reply sse(int code = 200) {
        reply r = status(code);
        r.header("Content-Type", "text/event-stream");
        r.header("Cache-Control", "no-cache");
        r.framing_ = framing::chunked;
        return r;
    }
    // Exactly these bytes (no head, no framing); closes gracefully afterwards unless keep_alive().
    static reply raw(std::string bytes = {}) {
        reply r;
        r.framing_ = framing::raw;
        r.write_raw(std::move(bytes));
        return r;
    }
    // Read the request, then close the connection without writing anything.
    static reply disconnect() { return raw().drop(); }

    // ---- head ----
    reply& header(std::string name, std::string value) {
        headers_.emplace_back(std::move(name), std::move(value));
        return *this;
    }
    reply& reason(std::string phrase) {
        reason_ = std::move(phrase);
        return *this;
    }
    // Advertise this Content-Length instead of the sum of the body steps.
    reply& content_length(std::size_t n) {
        content_length_ = n;
        return *this;
    }
    reply& chunked() {
        if (framing_ != framing::raw) framing_ = framing::chunked;
        return *this;
    }
    reply& close_delimited() {
        if (framing_ != framing::raw) framing_ = framing::close_delimited;
        return *this;
    }
    // Send "Connection: close" and close the connection (gracefully) after the reply.
    reply& close_connection() {
        close_after_ = true;
        return *this;
    }
    // raw replies: keep the connection open for further requests after the last step.
    reply& keep_alive() {
        keep_alive_ = true;
        return *this;
    }
    // Wait before writing the status line.
    reply& delay_headers(duration d) {
        auto it = std::find_if(steps_.begin(), steps_.end(),
                               [](const step& s) { return s.k == step::kind::head; });
        steps_.insert(it, step{step::kind::wait, {}, d});
        return *this;
    }

    // ---- steps ----
    // Body bytes: one chunk when chunked; counted in the automatic Content-Length.
    reply& body(std::string bytes) {
        steps_.push_back(step{step::kind::body, std::move(bytes), {}});
        return *this;
    }
    // Same as body(); reads better for SSE ("data: ...\n\n" written as one chunk).
    reply& event(std::string bytes) { return body(std::move(bytes)); }
    // body("data: " + payload + "\n\n").
    reply& data(std::string_view payload) {
        std::string ev;
        ev.reserve(payload.size() + 8);
        ev.append("data: ").append(payload).append("\n\n");
        return body(std::move(ev));
    }
    // Bytes written verbatim, bypassing chunk framing and Content-Length accounting.
    reply& write_raw(std::string bytes) {
        if (!bytes.empty()) steps_.push_back(step{step::kind::raw, std::move(bytes), {}});
        return *this;
    }
    reply& delay(duration d) {
        steps_.push_back(step{step::kind::wait, {}, d});
        return *this;
    }
    reply& stall(duration d) { return delay(d); }
    // Write nothing until the server stops or the client hangs up.
    reply& stall() {
        steps_.push_back(step{step::kind::wait, {}, std::nullopt});
        return *this;
    }
    reply& drop() {
        steps_.push_back(step{step::kind::drop, {}, {}});
        return *this;
    }
    reply& reset() {
        steps_.push_back(step{step::kind::reset, {}, {}});
        return *this;
    }
    // Write everything in pieces of `piece` bytes (0 = whole writes) with `pause` in between.
    reply& split_writes(std::size_t piece, duration pause = duration(1)) {
        split_ = piece;
        split_pause_ = pause;
        return *this;
    }

    int status_code() const { return status_; }
    framing wire_framing() const { return framing_; }

private:
    friend class script_server;
    reply() = default;  // use the named constructors

    struct step {
        enum class kind { head, body, raw, wait, drop, reset } k;
        std::string bytes;
        std::optional<duration> wait;  // for kind::wait; nullopt = forever
    };

    bool has_header(std::string_view name) const {
        for (const auto& h : headers_)
            if (detail::iequals(h.first, name)) return true;
        return false;
    }
    bool header_has_token(std::string_view name, std::string_view token) const {
        for (const auto& h : headers_)
            if (detail::iequals(h.first, name) && detail::has_token(h.second, token)) return true;
        return false;
    }
    std::size_t body_size() const {
        std::size_t n = 0;
        for (const auto& s : steps_)
            if (s.k == step::kind::body) n += s.bytes.size();
        return n;
    }
    std::string render_head(bool close_requested) const {
        std::string h = "HTTP/1.1 " + std::to_string(status_) + " " +
                        (reason_ ? *reason_ : std::string(detail::reason_phrase(status_))) + "\r\n";
        for (const auto& kv : headers_) h.append(kv.first).append(": ").append(kv.second).append("\r\n");
        switch (framing_) {
            case framing::content_length:
                if (!has_header("content-length") && status_ != 204 && status_ != 304 &&
                    !(status_ >= 100 && status_ < 200))
                    h += "Content-Length: " + std::to_string(content_length_ ? *content_length_ : body_size()) + "\r\n";
                break;
            case framing::chunked:
                if (!has_header("transfer-encoding")) h += "Transfer-Encoding: chunked\r\n";
                break;
            case framing::close_delimited:
            case framing::raw:
                break;
        }
        if (!has_header("connection") &&
            (close_requested || close_after_ || framing_ == framing::close_delimited))
            h += "Connection: close\r\n";
        h += "\r\n";
        return h;
    }

    int status_ = 200;
    std::optional<std::string> reason_;
    framing framing_ = framing::content_length;
    std::vector<std::pair<std::string, std::string>> headers_;
    std::vector<step> steps_;
    std::optional<std::size_t> content_length_;
    bool close_after_ = false;
    bool keep_alive_ = false;
    std::size_t split_ = 0;
    duration split_pause_{1};
};

// ---------------------------------------------------------------------------------------------
class script_server {
public:
    using handler = std::function<reply(const recorded_request&)>;

    // Binds 127.0.0.1:0 and starts accepting. Throws std::system_error on failure.
    script_server() {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) detail::throw_errno("pipe2()");
        wake_rd_ = fds[0];
        wake_wr_ = fds[1];
        try {
            listen_fd_ = detail::make_loopback_socket(128, port_);
            acceptor_ = std::thread([this] { accept_loop(); });
        } catch (...) {
            detail::close_fd(listen_fd_);
            detail::close_fd(wake_rd_);
            detail::close_fd(wake_wr_);
            throw;
        }
    }
    ~script_server() { stop(); }
    script_server(const script_server&) = delete;
    script_server& operator=(const script_server&) = delete;

    int port() const { return port_; }
    // "http://127.0.0.1:PORT"
    std::string origin() const { return "http://127.0.0.1:" + std::to_string(port_); }
    // "http://127.0.0.1:PORT/v1"
    std::string base_url() const { return origin() + "/v1"; }
    // origin() + path, e.g. url("/v1/models").
    std::string url(std::string_view path) const { return origin() + std::string(path); }

    // Replies are served in FIFO order, one per request.
    void enqueue(reply r) {
        std::lock_guard<std::mutex> lk(mu_);
        queue_.push_back(std::move(r));
    }
    // Asked (on the connection's thread, without locks held) when the queue is empty.
    // The handler may enqueue() or inspect requests(), but must not call stop().
    void set_handler(handler h) {
        std::lock_guard<std::mutex> lk(mu_);
        handler_ = std::move(h);
    }
    // Served when the queue is empty and no handler is set.
    void set_default(reply r) {
        std::lock_guard<std::mutex> lk(mu_);
        default_ = std::move(r);
    }

    std::vector<recorded_request> requests() const {
        std::lock_guard<std::mutex> lk(mu_);
        return requests_;
    }
    std::size_t request_count() const {
        std::lock_guard<std::mutex> lk(mu_);
        return requests_.size();
    }
    void clear_requests() {
        std::lock_guard<std::mutex> lk(mu_);
        requests_.clear();
    }
    // Scripted replies not yet served.
    std::size_t pending_replies() const {
        std::lock_guard<std::mutex> lk(mu_);
        return queue_.size();
    }
    // TCP connections accepted so far.
    std::size_t connection_count() const {
        std::lock_guard<std::mutex> lk(mu_);
        return connections_;
    }
    // Blocks until at least n requests were recorded (true) or the timeout expires (false).
    bool wait_for_requests(std::size_t n, std::chrono::milliseconds timeout) const {
        std::unique_lock<std::mutex> lk(mu_);
        return cv_.wait_for(lk, timeout, [&] { return requests_.size() >= n; });
    }

    // Stops accepting, interrupts every connection (stalls included), joins all threads and
    // closes all sockets. Idempotent; called by the destructor.
    void stop() {
        std::lock_guard<std::mutex> lk(stop_mu_);
        if (stopped_) return;
        stopped_ = true;
        const char c = 1;
        ssize_t w;
        do {
            w = ::write(wake_wr_, &c, 1);
        } while (w < 0 && errno == EINTR);
        if (acceptor_.joinable()) acceptor_.join();
        // The acceptor is gone, so workers_ is ours now.
        for (auto& wk : workers_)
            if (wk->thread.joinable()) wk->thread.join();
        workers_.clear();
        detail::close_fd(listen_fd_);
        detail::close_fd(wake_rd_);
        detail::close_fd(wake_wr_);
    }

private:
    struct worker {
        std::thread thread;
        std::atomic<bool> done{false};
    };
    enum class outcome { keep_open, close_graceful, close_now, reset, stopped };

    void accept_loop() {
        for (;;) {
            pollfd p[2] = {{listen_fd_, POLLIN, 0}, {wake_rd_, POLLIN, 0}};
            int rc = ::poll(p, 2, -1);
            if (rc < 0) {
                if (errno == EINTR) continue;
                return;
            }
            if (p[1].revents != 0) return;
            if ((p[0].revents & POLLIN) == 0) continue;
            int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                    // Out of resources: back off a little instead of spinning.
                    pollfd w{wake_rd_, POLLIN, 0};
                    if (::poll(&w, 1, 10) > 0) return;
                }
                continue;
            }
            int one = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            reap_workers();
            std::size_t id;
            {
                std::lock_guard<std::mutex> lk(mu_);
                id = ++connections_;
            }
            auto wk = std::make_unique<worker>();
            worker* raw_wk = wk.get();
            try {
                wk->thread = std::thread([this, fd, id, raw_wk] {
                    int cfd = fd;
                    try {
                        serve(cfd, id);
                    } catch (...) {
                    }
                    detail::close_fd(cfd);
                    raw_wk->done.store(true, std::memory_order_release);
                });
                workers_.push_back(std::move(wk));
            } catch (...) {
                ::close(fd);
            }
        }
    }

    void reap_workers() {
        for (auto it = workers_.begin(); it != workers_.end();) {
            if ((*it)->done.load(std::memory_order_acquire)) {
                (*it)->thread.join();
                it = workers_.erase(it);
            } else {
                ++it;
            }
        }
    }

    // Serves requests on one connection until it closes. May close fd itself (sets it to -1).
    void serve(int& fd, std::size_t id) {
        std::string buf;
        for (;;) {
            recorded_request req;
            if (read_request(fd, buf, req) != detail::io::ok) return;
            req.connection_id = id;
            const bool client_close =
                detail::has_token(req.header("connection"), "close") ||
                (req.version == "HTTP/1.0" && !detail::has_token(req.header("connection"), "keep-alive"));
            reply r = next_reply(req);
            switch (run(fd, r, req, client_close)) {
                case outcome::keep_open:
                    if (client_close) {
                        detail::lingering_close(fd, wake_rd_);
                        return;
                    }
                    break;
                case outcome::close_graceful:
                    detail::lingering_close(fd, wake_rd_);
                    return;
                case outcome::close_now:
                    detail::close_fd(fd);
                    return;
                case outcome::reset: {
                    linger lg{};
                    lg.l_onoff = 1;
                    lg.l_linger = 0;
                    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
                    detail::close_fd(fd);
                    return;
                }
                case outcome::stopped:
                    return;
            }
        }
    }

    reply next_reply(const recorded_request& req) {
        handler h;
        {
            std::lock_guard<std::mutex> lk(mu_);
            requests_.push_back(req);
            cv_.notify_all();
            if (!queue_.empty()) {
                reply r = std::move(queue_.front());
                queue_.pop_front();
                return r;
            }
            if (!handler_) {
                if (default_) return *default_;
                return reply::json(500, R"({"error":{"message":"sturdy_test::script_server: no scripted reply for )" +
                                            json_escape(req.method + " " + req.target) +
                                            R"(","type":"script_server_error"}})");
            }
            h = handler_;
        }
        try {
            return h(req);
        } catch (const std::exception& e) {
            return reply::json(500, R"({"error":{"message":"sturdy_test::script_server: handler threw: )" +
                                        json_escape(e.what()) + R"(","type":"script_server_error"}})");
        } catch (...) {
            return reply::json(500, R"({"error":{"message":"sturdy_test::script_server: handler threw","type":"script_server_error"}})");
        }
    }

    static std::string json_escape(std::string_view s) {
        std::string out;
        for (char c : s) {
            if (c == '"' || c == '\\') {
                out += '\\';
                out += c;
            } else if (static_cast<unsigned char>(c) < 0x20) {
                out += ' ';
            } else {
                out += c;
            }
        }
        return out;
    }

    detail::io send_bytes(int fd, const reply& r, std::string_view bytes) {
        if (r.split_ == 0 || bytes.size() <= r.split_)
            return detail::send_exact(fd, wake_rd_, bytes.data(), bytes.size());
        for (std::size_t off = 0; off < bytes.size(); off += r.split_) {
            if (off > 0 && r.split_pause_.count() > 0) {
                detail::io st = detail::idle(fd, wake_rd_, r.split_pause_);
                if (st != detail::io::ok) return st;
            }
            std::size_t n = std::min(r.split_, bytes.size() - off);
            detail::io st = detail::send_exact(fd, wake_rd_, bytes.data() + off, n);
            if (st != detail::io::ok) return st;
        }
        return detail::io::ok;
    }

    outcome run(int fd, const reply& r, const recorded_request& req, bool client_close) {
        using kind = reply::step::kind;
        const bool no_body = req.method == "HEAD";
        bool head_sent = false;
        auto fail = [](detail::io st) { return st == detail::io::stopped ? outcome::stopped : outcome::close_now; };
        for (const auto& s : r.steps_) {
            detail::io st = detail::io::ok;
            switch (s.k) {
                case kind::head:
                    st = send_bytes(fd, r, r.render_head(client_close));
                    head_sent = true;
                    break;
                case kind::body:
                    if (no_body || s.bytes.empty()) break;
                    if (r.framing_ == reply::framing::chunked) {
                        std::string chunk = detail::to_hex(s.bytes.size());
                        chunk.append("\r\n").append(s.bytes).append("\r\n");
                        st = send_bytes(fd, r, chunk);
                    } else {
                        st = send_bytes(fd, r, s.bytes);
                    }
                    break;
                case kind::raw:
                    st = send_bytes(fd, r, s.bytes);
                    break;
                case kind::wait:
                    st = detail::idle(fd, wake_rd_, s.wait);
                    break;
                case kind::drop:
                    return outcome::close_now;
                case kind::reset:
                    return outcome::reset;
            }
            if (st != detail::io::ok) return fail(st);
        }
        if (head_sent && !no_body && r.framing_ == reply::framing::chunked) {
            detail::io st = send_bytes(fd, r, "0\r\n\r\n");
            if (st != detail::io::ok) return fail(st);
        }
        switch (r.framing_) {
            case reply::framing::close_delimited:
                return outcome::close_graceful;
            case reply::framing::raw:
                return r.keep_alive_ ? outcome::keep_open : outcome::close_graceful;
            case reply::framing::content_length:
            case reply::framing::chunked:
                break;
        }
        if (r.close_after_ || r.header_has_token("connection", "close")) return outcome::close_graceful;
        return outcome::keep_open;
    }

    // Reads one complete request (head + body) from fd, keeping surplus bytes in buf.
    detail::io read_request(int fd, std::string& buf, recorded_request& req) {
        constexpr std::size_t max_head = 1u << 20;
        std::size_t end;
        for (;;) {
            std::size_t skip = 0;  // tolerate stray CRLFs between requests
            while (skip + 1 < buf.size() && buf[skip] == '\r' && buf[skip + 1] == '\n') skip += 2;
            if (skip > 0) buf.erase(0, skip);
            end = buf.find("\r\n\r\n");
            if (end != std::string::npos) break;
            if (buf.size() > max_head) return detail::io::closed;
            detail::io st = detail::recv_some(fd, wake_rd_, buf);
            if (st != detail::io::ok) return st;
        }
        {
            std::string_view head(buf.data(), end);
            std::size_t eol = head.find("\r\n");
            std::string_view line = head.substr(0, eol);
            std::size_t sp1 = line.find(' ');
            if (sp1 == std::string_view::npos) return detail::io::closed;
            std::size_t sp2 = line.find(' ', sp1 + 1);
            if (sp2 == std::string_view::npos) return detail::io::closed;
            req.method = std::string(line.substr(0, sp1));
            req.target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
            req.version = std::string(detail::trim(line.substr(sp2 + 1)));
            std::string_view rest = eol == std::string_view::npos ? std::string_view() : head.substr(eol + 2);
            while (!rest.empty()) {
                std::size_t e = rest.find("\r\n");
                std::string_view hl = rest.substr(0, e);
                rest = e == std::string_view::npos ? std::string_view() : rest.substr(e + 2);
                std::size_t colon = hl.find(':');
                if (colon == std::string_view::npos) continue;
                req.headers.emplace_back(detail::to_lower(detail::trim(hl.substr(0, colon))),
                                         std::string(detail::trim(hl.substr(colon + 1))));
            }
        }
        buf.erase(0, end + 4);

        const bool chunked = detail::has_token(req.header("transfer-encoding"), "chunked");
        std::size_t length = 0;
        if (!chunked) {
            std::string cl = req.header("content-length");
            if (!cl.empty()) {
                auto res = std::from_chars(cl.data(), cl.data() + cl.size(), length);
                if (res.ec != std::errc() || res.ptr != cl.data() + cl.size()) return detail::io::closed;
            }
        }
        if ((chunked ? buf.empty() : buf.size() < length) &&
            detail::iequals(req.header("expect"), "100-continue")) {
            static constexpr std::string_view cont = "HTTP/1.1 100 Continue\r\n\r\n";
            detail::io st = detail::send_exact(fd, wake_rd_, cont.data(), cont.size());
            if (st != detail::io::ok) return st;
        }
        if (!chunked) {
            while (buf.size() < length) {
                detail::io st = detail::recv_some(fd, wake_rd_, buf);
                if (st != detail::io::ok) return st;
            }
            req.body.assign(buf, 0, length);
            buf.erase(0, length);
            return detail::io::ok;
        }
        // chunked: size[;ext] CRLF data CRLF ... 0 CRLF [trailers CRLF] CRLF
        auto need_line = [&](std::size_t& eol) -> detail::io {
            while ((eol = buf.find("\r\n")) == std::string::npos) {
                if (buf.size() > max_head) return detail::io::closed;
                detail::io st = detail::recv_some(fd, wake_rd_, buf);
                if (st != detail::io::ok) return st;
            }
            return detail::io::ok;
        };
        for (;;) {
            std::size_t eol;
            detail::io st = need_line(eol);
            if (st != detail::io::ok) return st;
            std::string_view size_line = detail::trim(std::string_view(buf.data(), eol));
            size_line = detail::trim(size_line.substr(0, size_line.find(';')));
            std::size_t size = 0;
            auto res = std::from_chars(size_line.data(), size_line.data() + size_line.size(), size, 16);
            if (size_line.empty() || res.ec != std::errc() || res.ptr != size_line.data() + size_line.size())
                return detail::io::closed;
            buf.erase(0, eol + 2);
            if (size == 0) {
                for (;;) {  // trailers, up to the empty line
                    st = need_line(eol);
                    if (st != detail::io::ok) return st;
                    buf.erase(0, eol + 2);
                    if (eol == 0) return detail::io::ok;
                }
            }
            while (buf.size() < size + 2) {
                st = detail::recv_some(fd, wake_rd_, buf);
                if (st != detail::io::ok) return st;
            }
            req.body.append(buf, 0, size);
            buf.erase(0, size + 2);
        }
    }

    int port_ = 0;
    int listen_fd_ = -1;
    int wake_rd_ = -1;  // self-pipe: readable once stop() has begun; polled everywhere
    int wake_wr_ = -1;
    std::thread acceptor_;
    std::list<std::unique_ptr<worker>> workers_;  // touched by the acceptor, then by stop()

    mutable std::mutex mu_;
    mutable std::condition_variable cv_;
    std::deque<reply> queue_;
    handler handler_;
    std::optional<reply> default_;
    std::vector<recorded_request> requests_;
    std::size_t connections_ = 0;

    std::mutex stop_mu_;
    bool stopped_ = false;
};

// ---------------------------------------------------------------------------------------------
// A port on 127.0.0.1 where connections are refused (-> ECONNREFUSED, CURLE_COULDNT_CONNECT).
// Binds a socket to port 0 without listening, reads the chosen port and closes the socket.
// Tiny race: another process may grab the port before the test connects; on a test machine
// that is vanishingly unlikely (ephemeral ports are handed out round-robin).
inline int refused_port() {
    int port = 0;
    int fd = detail::make_loopback_socket(-1, port);
    ::close(fd);
    return port;
}

// A listener that never accepts: the kernel completes the TCP handshake (the connection sits
// in the accept backlog), so the client's connect succeeds and its request is buffered by the
// kernel, but nothing is ever read or answered -> exercises "connected, no reply" timeouts.
// No threads. Destroying it closes the listener; queued connections then get an RST.
// Up to ~backlog (64) connections complete; more would hang in connect instead.
class silent_server {
public:
    silent_server() { fd_ = detail::make_loopback_socket(64, port_); }
    ~silent_server() { detail::close_fd(fd_); }
    silent_server(const silent_server&) = delete;
    silent_server& operator=(const silent_server&) = delete;

    int port() const { return port_; }
    std::string origin() const { return "http://127.0.0.1:" + std::to_string(port_); }
    std::string base_url() const { return origin() + "/v1"; }

private:
    int fd_ = -1;
    int port_ = 0;
};

}  // namespace sturdy_test

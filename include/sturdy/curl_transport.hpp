#pragma once
/// @file
/// The default Transport, over libcurl: connections reused across calls, TLS verified by default.

#include <sturdy/error.hpp>
#include <sturdy/http.hpp>
#include <sturdy/result.hpp>
#include <sturdy/transport.hpp>

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace sturdy {

/// Settings of the libcurl transport.
struct curl_options {
    /// Verify the server's certificate and host name. Turn off only for local test servers.
    bool verify_peer = true;
    bool verify_host = true;
    /// A CA bundle file, or a directory of CA certificates; empty means libcurl's default.
    std::string ca_bundle;
    std::string ca_path;
    /// Proxy URL ("http://proxy:3128"); empty means libcurl's default, which honours
    /// the http_proxy / https_proxy / no_proxy environment variables.
    std::string proxy;
    /// Hosts that bypass the proxy ("localhost,127.0.0.1").
    std::string no_proxy;
    /// Idle connections kept per transport, one per concurrent caller up to this bound.
    std::size_t max_idle_sessions = 16;
    /// Print libcurl's verbose trace to stderr. It includes request headers, so the API key: debug only.
    bool verbose = false;
};

namespace detail {

/// curl_global_init once per process, and its cleanup at exit.
inline void ensure_curl_global_init() {
    struct guard {
        guard() { curl_global_init(CURL_GLOBAL_DEFAULT); }
        ~guard() { curl_global_cleanup(); }
    };
    static guard instance;
}

/// One easy handle with a multi handle of its own. The multi handle lets a waiting transfer be
/// woken at once by a cancellation (curl_multi_wakeup), and holds the connections it keeps alive.
struct curl_session {
    CURL* easy = nullptr;
    CURLM* multi = nullptr;
    curl_slist* header_slist = nullptr;
    header_list slist_source;  // the headers header_slist was built from, to reuse it
    char error_buffer[CURL_ERROR_SIZE] = {};

    curl_session() : easy(curl_easy_init()), multi(curl_multi_init()) {}
    ~curl_session() {
        if (header_slist) curl_slist_free_all(header_slist);
        if (easy) curl_easy_cleanup(easy);
        if (multi) curl_multi_cleanup(multi);
    }
    curl_session(const curl_session&) = delete;
    curl_session& operator=(const curl_session&) = delete;

    /// Rebuilds the header list only when the headers differ from the last request's.
    curl_slist* headers_for(const header_list& headers) {
        if (header_slist && headers == slist_source) return header_slist;
        if (header_slist) curl_slist_free_all(header_slist);
        header_slist = nullptr;
        std::string line;
        for (const auto& [name, value] : headers) {
            line.assign(name);
            // "Name;" sends an empty header; "Name:" would remove it.
            line += value.empty() ? ";" : ": ";
            line += value;
            header_slist = curl_slist_append(header_slist, line.c_str());
        }
        // A POST over 1 MiB would otherwise wait a second for "100 Continue".
        header_slist = curl_slist_append(header_slist, "Expect:");
        slist_source = headers;
        return header_slist;
    }
};

/// Idle sessions, most recently used first, so a single caller keeps its warm connection.
class curl_session_pool {
public:
    explicit curl_session_pool(curl_options options) : options_(std::move(options)) {}

    std::unique_ptr<curl_session> acquire() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!idle_.empty()) {
                auto s = std::move(idle_.back());
                idle_.pop_back();
                return s;
            }
        }
        return open();
    }

    void release(std::unique_ptr<curl_session> s) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (idle_.size() < options_.max_idle_sessions) idle_.push_back(std::move(s));
    }

    const curl_options& options() const noexcept { return options_; }

private:
    std::unique_ptr<curl_session> open() const {
        auto s = std::make_unique<curl_session>();
        if (!s->easy || !s->multi) throw std::bad_alloc();
        CURL* h = s->easy;
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, s->error_buffer);
        // Redirects are not followed: one could carry the Authorization header to another host.
        // A 3xx reaches the client, whose error names the Location.
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
        // Every encoding this libcurl decodes (gzip and deflate at least), as the official SDKs
        // accept; the sinks see decoded bytes, so size limits bound what is decoded too.
        curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, options_.verify_peer ? 1L : 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, options_.verify_host ? 2L : 0L);
        if (!options_.ca_bundle.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, options_.ca_bundle.c_str());
        if (!options_.ca_path.empty()) curl_easy_setopt(h, CURLOPT_CAPATH, options_.ca_path.c_str());
        if (!options_.proxy.empty()) curl_easy_setopt(h, CURLOPT_PROXY, options_.proxy.c_str());
        if (!options_.no_proxy.empty()) curl_easy_setopt(h, CURLOPT_NOPROXY, options_.no_proxy.c_str());
#if LIBCURL_VERSION_NUM >= 0x075500
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
        curl_easy_setopt(h, CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
        curl_easy_setopt(h, CURLOPT_VERBOSE, options_.verbose ? 1L : 0L);
        return s;
    }

    curl_options options_;
    std::mutex mutex_;
    std::vector<std::unique_ptr<curl_session>> idle_;
};

/// The state of one exchange, shared with libcurl's callbacks.
struct curl_exchange {
    response_sink* sink = nullptr;
    http_head head;
    bool head_delivered = false;
    bool stopped_by_sink = false;
    std::exception_ptr failure;

    bool deliver_head() {
        head_delivered = true;
        if (!sink->on_head(head)) stopped_by_sink = true;
        return !stopped_by_sink;
    }

    // C callbacks: no exception may cross them, so a sink's exception is parked and rethrown later.
    static std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) noexcept {
        auto* x = static_cast<curl_exchange*>(user);
        const std::size_t n = size * count;
        if (x->head_delivered) return n;  // trailers
        std::string_view line(data, n);
        try {
            if (line.rfind("HTTP/", 0) == 0) {
                // A new status line: an interim 1xx reply's headers are discarded.
                x->head = http_head{};
                auto sp = line.find(' ');
                if (sp != std::string_view::npos) x->head.status = std::atoi(std::string(line.substr(sp + 1, 3)).c_str());
            } else if (detail::trim(line).empty()) {
                if (x->head.status >= 200 && !x->deliver_head()) return 0;
            } else {
                x->head.headers.add_line(line);
            }
        } catch (...) {
            x->failure = std::current_exception();
            return 0;
        }
        return n;
    }

    static std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) noexcept {
        auto* x = static_cast<curl_exchange*>(user);
        const std::size_t n = size * count;
        try {
            if (!x->head_delivered && !x->deliver_head()) return 0;
            if (!x->sink->on_data(std::string_view(data, n))) {
                x->stopped_by_sink = true;
                return 0;
            }
        } catch (...) {
            x->failure = std::current_exception();
            return 0;
        }
        return n;
    }
};

/// Whether a URL names a scheme the transport speaks, so that a protocol error is the server's.
inline bool is_http_url(std::string_view url) noexcept {
    return (url.size() >= 7 && iequals(url.substr(0, 7), "http://")) ||
           (url.size() >= 8 && iequals(url.substr(0, 8), "https://"));
}

inline error curl_failure(CURLcode code, const char* detail_text, std::string_view url) {
    std::string message = (detail_text && *detail_text) ? detail_text : curl_easy_strerror(code);
    switch (code) {
        case CURLE_OPERATION_TIMEDOUT: return error(error_kind::timeout, std::move(message));
        case CURLE_UNSUPPORTED_PROTOCOL:
            // For an http(s) URL this is a server that answered in something other than HTTP
            // (an SSH banner: "Received HTTP/0.9 when not allowed"): its fault, not the caller's.
            if (is_http_url(url))
                return error(error_kind::invalid_response, "the server did not answer in HTTP (" + message + ")");
            return error(error_kind::invalid_argument, std::move(message));
        case CURLE_URL_MALFORMAT: return error(error_kind::invalid_argument, std::move(message));
        case CURLE_ABORTED_BY_CALLBACK:
            return error(error_kind::cancelled, std::move(message));
        default:
            return error(error_kind::connection, std::move(message));
    }
}

}  // namespace detail

/// Sends requests with libcurl. Copies share one pool of connections; safe to use from many threads.
class curl_transport {
public:
    explicit curl_transport(curl_options options = {})
        : pool_((detail::ensure_curl_global_init(), std::make_shared<detail::curl_session_pool>(std::move(options)))) {}

    const curl_options& options() const noexcept { return pool_->options(); }

    result<http_head> send(const http_request& request, response_sink& sink) const {
        using steady = std::chrono::steady_clock;
        auto session = pool_->acquire();
        CURL* h = session->easy;
        session->error_buffer[0] = '\0';

        detail::curl_exchange exchange;
        exchange.sink = &sink;
        curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
        if (request.method == http_method::post) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.data());
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
        } else {
            curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        }
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, session->headers_for(request.headers));
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(request.connect_timeout.count()));
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &detail::curl_exchange::on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &exchange);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &detail::curl_exchange::on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &exchange);

        const auto hard_deadline =
            request.timeout.count() > 0 ? steady::now() + request.timeout : steady::time_point::max();
        CURLM* multi = session->multi;
        curl_multi_add_handle(multi, h);
        auto wake_on_cancel = request.cancel.on_cancel([multi] { curl_multi_wakeup(multi); });

        enum class ending { done, cancelled, progress_timeout, multi_failure } end = ending::done;
        CURLcode code = CURLE_OK;
        for (;;) {
            int running = 0;
            if (curl_multi_perform(multi, &running) != CURLM_OK) {
                end = ending::multi_failure;
                break;
            }
            bool finished = false;
            int queued = 0;
            while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
                if (msg->msg == CURLMSG_DONE) {
                    finished = true;
                    code = msg->data.result;
                }
            }
            if (finished) break;
            if (request.cancel.cancelled()) {
                end = ending::cancelled;
                break;
            }
            const auto now = steady::now();
            const auto limit = std::min(hard_deadline, sink.progress_deadline());
            if (now >= limit) {
                end = ending::progress_timeout;
                break;
            }
            // Wake at the nearest deadline; curl shortens the wait for its own timers.
            auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(limit - now) + std::chrono::milliseconds(1);
            int wait_ms = static_cast<int>(std::min<std::chrono::milliseconds::rep>(wait.count(), 1000));
            curl_multi_poll(multi, nullptr, 0, wait_ms, nullptr);
        }
        wake_on_cancel.reset();
        curl_multi_remove_handle(multi, h);
        const std::string detail_text = session->error_buffer;
        pool_->release(std::move(session));

        if (exchange.failure) std::rethrow_exception(exchange.failure);
        switch (end) {
            case ending::cancelled:
                return error(error_kind::cancelled, "the request was cancelled");
            case ending::progress_timeout:
                return error(error_kind::timeout, "no data arrived before the deadline");
            case ending::multi_failure:
                return error(error_kind::connection, "libcurl's transfer loop failed");
            case ending::done:
                break;
        }
        if (exchange.stopped_by_sink) return error(error_kind::cancelled, "stopped by the response sink");
        if (code != CURLE_OK) return detail::curl_failure(code, detail_text.c_str(), request.url);
        if (!exchange.head_delivered) {
            if (exchange.head.status == 0) return error(error_kind::connection, "the server sent no HTTP status");
            exchange.deliver_head();
        }
        return std::move(exchange.head);
    }

private:
    std::shared_ptr<detail::curl_session_pool> pool_;
};

static_assert(is_transport_v<curl_transport>, "curl_transport must model the Transport concept");

}  // namespace sturdy

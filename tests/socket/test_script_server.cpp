// Self-test for tests/support/script_server.hpp, driven by libcurl.
#include "support/catch.hpp"
#include "support/script_server.hpp"

#include <curl/curl.h>
#include <dirent.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using sturdy_test::reply;
using sturdy_test::script_server;
using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

struct curl_global_guard {
    curl_global_guard() { curl_global_init(CURL_GLOBAL_DEFAULT); }
    ~curl_global_guard() { curl_global_cleanup(); }
    curl_global_guard(const curl_global_guard&) = delete;
    curl_global_guard& operator=(const curl_global_guard&) = delete;
};
const curl_global_guard g_curl_global;

struct easy_handle {
    CURL* h = curl_easy_init();
    easy_handle() = default;
    ~easy_handle() { curl_easy_cleanup(h); }
    easy_handle(const easy_handle&) = delete;
    easy_handle& operator=(const easy_handle&) = delete;
};

struct write_piece {
    steady::time_point at;
    std::string bytes;
};

struct result {
    CURLcode code = CURLE_OK;
    long status = 0;
    long num_connects = -1;
    std::string body;
    std::vector<std::string> header_lines;
    std::vector<write_piece> pieces;
    milliseconds elapsed{0};

    // First response header with this name (case-insensitive), "" if absent.
    std::string header(const std::string& name) const {
        for (const auto& line : header_lines) {
            auto colon = line.find(':');
            if (colon == std::string::npos) continue;
            if (sturdy_test::detail::iequals(line.substr(0, colon), name))
                return std::string(sturdy_test::detail::trim(line.substr(colon + 1)));
        }
        return std::string();
    }
};

struct request_options {
    std::string method = "GET";
    std::string body;         // sent when method == "POST"
    bool chunked_upload = false;
    std::vector<std::string> headers;
    long timeout_ms = 3000;
};

extern "C" size_t on_write(char* data, size_t size, size_t nmemb, void* user) {
    auto* r = static_cast<result*>(user);
    r->body.append(data, size * nmemb);
    r->pieces.push_back(write_piece{steady::now(), std::string(data, size * nmemb)});
    return size * nmemb;
}

extern "C" size_t on_header(char* data, size_t size, size_t nmemb, void* user) {
    auto* r = static_cast<result*>(user);
    std::string line(data, size * nmemb);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    r->header_lines.push_back(line);
    return size * nmemb;
}

struct upload_state {
    const std::string* data;
    size_t offset;
};

extern "C" size_t on_read(char* buffer, size_t size, size_t nitems, void* user) {
    auto* u = static_cast<upload_state*>(user);
    size_t n = std::min(size * nitems, std::min<size_t>(u->data->size() - u->offset, 1000));
    std::copy_n(u->data->data() + u->offset, n, buffer);
    u->offset += n;
    return n;
}

// Performs one request on `h` (options are reset first; live connections are kept).
result perform(CURL* h, const std::string& url, const request_options& o = {}) {
    result r;
    upload_state up{&o.body, 0};
    curl_slist* hdrs = nullptr;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, o.timeout_ms);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &r);
    if (o.method == "POST") {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        if (o.chunked_upload) {
            curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(h, CURLOPT_READDATA, &up);
            hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
        } else {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, o.body.c_str());
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(o.body.size()));
        }
    } else if (o.method != "GET") {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, o.method.c_str());
    }
    for (const auto& hd : o.headers) hdrs = curl_slist_append(hdrs, hd.c_str());
    if (hdrs) curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    const auto t0 = steady::now();
    r.code = curl_easy_perform(h);
    r.elapsed = std::chrono::duration_cast<milliseconds>(steady::now() - t0);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &r.num_connects);
    curl_slist_free_all(hdrs);
    return r;
}

result fetch(const std::string& url, const request_options& o = {}) {
    easy_handle e;
    return perform(e.h, url, o);
}

// Index of the first write callback whose bytes contain `needle` (or pieces.size()).
size_t piece_with(const result& r, const std::string& needle) {
    for (size_t i = 0; i < r.pieces.size(); ++i)
        if (r.pieces[i].bytes.find(needle) != std::string::npos) return i;
    return r.pieces.size();
}

// Number of entries in a /proc/self directory ("fd" or "task"), minus "." and "..".
size_t count_entries(const char* dir) {
    size_t n = 0;
    if (DIR* d = ::opendir(dir)) {
        while (dirent* ent = ::readdir(d))
            if (ent->d_name[0] != '.') ++n;
        ::closedir(d);
    }
    return n;
}

// Polls until count_entries(dir) == want or ~1 s passes; returns the last count.
size_t settle_entries(const char* dir, size_t want) {
    size_t n = count_entries(dir);
    for (int i = 0; i < 100 && n != want; ++i) {
        std::this_thread::sleep_for(milliseconds(10));
        n = count_entries(dir);
    }
    return n;
}

}  // namespace

TEST_CASE("script_server: JSON reply with status, headers and body", "[script_server]") {
    script_server srv;
    REQUIRE(srv.port() > 0);
    CHECK(srv.base_url() == "http://127.0.0.1:" + std::to_string(srv.port()) + "/v1");
    srv.enqueue(reply::json(200, R"({"ok":true})").header("x-request-id", "req_123"));
    srv.enqueue(reply::status(429).header("retry-after", "1").body(R"({"error":{"message":"slow down"}})"));

    result a = fetch(srv.base_url() + "/models");
    REQUIRE(a.code == CURLE_OK);
    CHECK(a.status == 200);
    CHECK(a.body == R"({"ok":true})");
    CHECK(a.header("x-request-id") == "req_123");
    CHECK(a.header("content-type") == "application/json");
    CHECK(a.header("content-length") == "11");

    result b = fetch(srv.base_url() + "/models");
    REQUIRE(b.code == CURLE_OK);
    CHECK(b.status == 429);
    CHECK(b.header("retry-after") == "1");
    CHECK(b.body == R"({"error":{"message":"slow down"}})");
    CHECK(srv.pending_replies() == 0);
}

TEST_CASE("script_server: FIFO order, then the default reply", "[script_server]") {
    script_server srv;
    for (int i = 0; i < 3; ++i) srv.enqueue(reply::json(200, "{\"n\":" + std::to_string(i) + "}"));
    easy_handle e;
    for (int i = 0; i < 3; ++i) {
        result r = perform(e.h, srv.url("/n"));
        REQUIRE(r.code == CURLE_OK);
        CHECK(r.body == "{\"n\":" + std::to_string(i) + "}");
    }
    result dflt = perform(e.h, srv.url("/nothing?q=1"));
    REQUIRE(dflt.code == CURLE_OK);
    CHECK(dflt.status == 500);
    CHECK(dflt.body.find("no scripted reply for GET /nothing?q=1") != std::string::npos);
    CHECK(dflt.header("content-type") == "application/json");

    srv.set_default(reply::text(404, "nope"));
    result custom = perform(e.h, srv.url("/x"));
    CHECK(custom.status == 404);
    CHECK(custom.body == "nope");

    srv.set_handler([](const sturdy_test::recorded_request& req) {
        return reply::json(200, "{\"echo\":\"" + req.target + "\"}");
    });
    result echoed = perform(e.h, srv.url("/echo"));
    CHECK(echoed.body == R"({"echo":"/echo"})");
    srv.enqueue(reply::text(201, "queued wins"));
    CHECK(perform(e.h, srv.url("/q")).body == "queued wins");
    CHECK(srv.request_count() == 7);
}

TEST_CASE("script_server: records method, target, headers and body", "[script_server]") {
    script_server srv;
    srv.set_default(reply::json(200, "{}"));

    SECTION("Content-Length body") {
        request_options o;
        o.method = "POST";
        o.body = R"({"model":"m","messages":[]})";
        o.headers = {"Authorization: Bearer sk-test", "Content-Type: application/json", "X-Custom-Thing:   padded  "};
        result r = fetch(srv.base_url() + "/chat/completions?api-version=2", o);
        REQUIRE(r.code == CURLE_OK);
        auto reqs = srv.requests();
        REQUIRE(reqs.size() == 1);
        const auto& q = reqs[0];
        CHECK(q.method == "POST");
        CHECK(q.target == "/v1/chat/completions?api-version=2");
        CHECK(q.path() == "/v1/chat/completions");
        CHECK(q.version == "HTTP/1.1");
        CHECK(q.body == o.body);
        CHECK(q.header("authorization") == "Bearer sk-test");
        CHECK(q.header("AUTHORIZATION") == "Bearer sk-test");
        CHECK(q.header("x-custom-thing") == "padded");
        CHECK(q.header("content-length") == std::to_string(o.body.size()));
        CHECK(q.header("missing").empty());
        CHECK_FALSE(q.has_header("missing"));
        bool all_lower = std::all_of(q.headers.begin(), q.headers.end(), [](const auto& h) {
            return sturdy_test::detail::to_lower(h.first) == h.first;
        });
        CHECK(all_lower);
        CHECK(q.connection_id == 1);
    }
    SECTION("large body: Expect: 100-continue is answered at once") {
        request_options o;
        o.method = "POST";
        o.body = std::string(200000, 'x');
        o.headers = {"Expect: 100-continue"};  // libcurl 7.x adds it itself for bodies > 1 KiB, 8.x > 1 MiB
        result r = fetch(srv.url("/big"), o);
        REQUIRE(r.code == CURLE_OK);
        auto reqs = srv.requests();
        REQUIRE(reqs.size() == 1);
        CHECK(reqs[0].body == o.body);
        CHECK(reqs[0].header("expect") == "100-continue");
        CHECK(r.elapsed < milliseconds(900));  // without "100 Continue" libcurl waits 1 s
    }
    SECTION("chunked request body") {
        request_options o;
        o.method = "POST";
        o.chunked_upload = true;
        for (int i = 0; i < 500; ++i) o.body += "line " + std::to_string(i) + "\n";
        result r = fetch(srv.url("/chunked"), o);
        REQUIRE(r.code == CURLE_OK);
        auto reqs = srv.requests();
        REQUIRE(reqs.size() == 1);
        CHECK(reqs[0].header("transfer-encoding") == "chunked");
        CHECK(reqs[0].body == o.body);
    }
}

TEST_CASE("script_server: SSE events arrive in order, chunked, with delays", "[script_server]") {
    script_server srv;
    srv.enqueue(reply::sse()
                    .data(R"({"delta":"one"})")
                    .delay(milliseconds(60))
                    .event("data: {\"delta\":\"two\"}\n\n")
                    .delay(milliseconds(60))
                    .data("[DONE]"));
    result r = fetch(srv.base_url() + "/chat/completions");
    REQUIRE(r.code == CURLE_OK);
    CHECK(r.status == 200);
    CHECK(r.header("content-type") == "text/event-stream");
    CHECK(r.header("transfer-encoding") == "chunked");
    CHECK(r.header("content-length").empty());
    CHECK(r.body == "data: {\"delta\":\"one\"}\n\ndata: {\"delta\":\"two\"}\n\ndata: [DONE]\n\n");
    size_t one = piece_with(r, "one"), two = piece_with(r, "two"), done = piece_with(r, "[DONE]");
    REQUIRE(done < r.pieces.size());
    CHECK(one < two);
    CHECK(two < done);
    CHECK(r.pieces[two].at - r.pieces[one].at >= milliseconds(40));
    CHECK(r.pieces[done].at - r.pieces[two].at >= milliseconds(40));
}

TEST_CASE("script_server: close-delimited SSE", "[script_server]") {
    script_server srv;
    srv.enqueue(reply::sse().close_delimited().data("a").delay(milliseconds(20)).data("b"));
    srv.enqueue(reply::json(200, "{}"));
    easy_handle e;
    result r = perform(e.h, srv.url("/s"));
    REQUIRE(r.code == CURLE_OK);
    CHECK(r.header("transfer-encoding").empty());
    CHECK(r.header("connection") == "close");
    CHECK(r.body == "data: a\n\ndata: b\n\n");
    result next = perform(e.h, srv.url("/s"));  // needs a new connection
    REQUIRE(next.code == CURLE_OK);
    CHECK(next.num_connects == 1);
    CHECK(srv.connection_count() == 2);
}

TEST_CASE("script_server: dropped and reset connections are client errors", "[script_server]") {
    script_server srv;
    SECTION("drop in the middle of a Content-Length body") {
        srv.enqueue(reply::json(200, R"({"partial":)").drop().body(R"("never sent"})"));
        result r = fetch(srv.url("/x"));
        CHECK(r.code == CURLE_PARTIAL_FILE);
        CHECK(r.status == 200);
        CHECK(r.body == R"({"partial":)");
    }
    SECTION("content_length() override then drop") {
        srv.enqueue(reply::json(200, "{}").content_length(100).drop());
        result r = fetch(srv.url("/x"));
        CHECK(r.code == CURLE_PARTIAL_FILE);
        CHECK(r.header("content-length") == "100");
    }
    SECTION("drop in the middle of a chunked SSE stream") {
        srv.enqueue(reply::sse().data("one").delay(milliseconds(10)).drop());
        result r = fetch(srv.url("/x"));
        CHECK((r.code == CURLE_PARTIAL_FILE || r.code == CURLE_RECV_ERROR));
        CHECK(r.body == "data: one\n\n");
    }
    SECTION("disconnect without any response") {
        srv.enqueue(reply::disconnect());
        result r = fetch(srv.url("/x"));
        CHECK(r.code == CURLE_GOT_NOTHING);
        CHECK(srv.request_count() == 1);
    }
    SECTION("reset without any response") {
        srv.enqueue(reply::raw().reset());
        result r = fetch(srv.url("/x"));
        CHECK((r.code == CURLE_RECV_ERROR || r.code == CURLE_GOT_NOTHING));
    }
    SECTION("libcurl retries once when a reused connection dies before any byte") {
        srv.enqueue(reply::json(200, "first"));
        srv.enqueue(reply::disconnect());
        srv.enqueue(reply::json(200, "retried"));
        easy_handle e;
        REQUIRE(perform(e.h, srv.url("/a")).body == "first");
        result r = perform(e.h, srv.url("/b"));
        CHECK(r.code == CURLE_OK);
        CHECK(r.body == "retried");
        CHECK(srv.request_count() == 3);
    }
}

TEST_CASE("script_server: malformed and split replies", "[script_server]") {
    script_server srv;
    SECTION("every byte in its own write") {
        srv.enqueue(reply::json(200, R"({"text":"caf\u00e9 ☕"})").header("x-a", "b").split_writes(1, milliseconds(0)));
        result r = fetch(srv.url("/x"));
        REQUIRE(r.code == CURLE_OK);
        CHECK(r.body == R"({"text":"caf\u00e9 ☕"})");
        CHECK(r.header("x-a") == "b");
    }
    SECTION("chunked SSE written in 3-byte pieces with pauses") {
        srv.enqueue(reply::sse().data("hello").data("world").split_writes(3, milliseconds(1)));
        result r = fetch(srv.url("/x"));
        REQUIRE(r.code == CURLE_OK);
        CHECK(r.body == "data: hello\n\ndata: world\n\n");
    }
    SECTION("CRLF and a UTF-8 sequence split across writes") {
        srv.enqueue(reply::raw("HTTP/1.1 200 OK\r")
                        .delay(milliseconds(15))
                        .write_raw("\nContent-Length: 5\r\n\r\ncaf\xC3")
                        .delay(milliseconds(15))
                        .write_raw("\xA9"));
        result r = fetch(srv.url("/x"));
        REQUIRE(r.code == CURLE_OK);
        CHECK(r.body == "caf\xC3\xA9");
        REQUIRE(r.pieces.size() >= 2);
        CHECK(r.pieces.back().bytes == "\xA9");
    }
    SECTION("garbage status line") {
        srv.enqueue(reply::raw("HTTP/1.1 abc\r\n\r\n"));
        result r = fetch(srv.url("/x"));
        CHECK(r.code != CURLE_OK);
    }
    SECTION("malformed chunk") {
        srv.enqueue(reply::sse().data("ok").write_raw("zz\r\nnot hex\r\n"));
        result r = fetch(srv.url("/x"));
        CHECK(r.code != CURLE_OK);
        CHECK(r.body == "data: ok\n\n");
    }
}

TEST_CASE("script_server: a stall trips a short client timeout", "[script_server]") {
    script_server srv;
    SECTION("stall before the head") {
        srv.enqueue(reply::json(200, "{}").delay_headers(milliseconds(5000)));
    }
    SECTION("stall after the head (SSE)") {
        srv.enqueue(reply::sse().data("first").stall());
    }
    SECTION("timed stall") {
        srv.enqueue(reply::sse().stall(milliseconds(5000)));
    }
    request_options o;
    o.timeout_ms = 150;
    result r = fetch(srv.url("/x"), o);
    CHECK(r.code == CURLE_OPERATION_TIMEDOUT);
    CHECK(r.elapsed >= milliseconds(140));
    CHECK(r.elapsed < milliseconds(1000));
    const auto t0 = steady::now();
    srv.stop();
    CHECK(steady::now() - t0 < milliseconds(100));
}

TEST_CASE("script_server: refused_port refuses", "[script_server]") {
    int port = sturdy_test::refused_port();
    REQUIRE(port > 0);
    result r = fetch("http://127.0.0.1:" + std::to_string(port) + "/v1/models");
    CHECK(r.code == CURLE_COULDNT_CONNECT);
    CHECK(r.elapsed < milliseconds(1000));
}

TEST_CASE("script_server: silent_server connects but never answers", "[script_server]") {
    sturdy_test::silent_server silent;
    REQUIRE(silent.port() > 0);
    easy_handle e;
    request_options o;
    o.timeout_ms = 150;
    result r = perform(e.h, silent.base_url() + "/models", o);
    CHECK(r.code == CURLE_OPERATION_TIMEDOUT);
    curl_off_t connect_us = 0;
    curl_easy_getinfo(e.h, CURLINFO_CONNECT_TIME_T, &connect_us);
    CHECK(connect_us > 0);  // the TCP connection was established
    CHECK(r.elapsed < milliseconds(1000));
}

TEST_CASE("script_server: keep-alive connection reuse", "[script_server]") {
    script_server srv;
    srv.enqueue(reply::json(200, "one"));
    srv.enqueue(reply::sse().data("two"));
    srv.enqueue(reply::json(200, "three").close_connection());
    srv.enqueue(reply::json(200, "four"));
    easy_handle e;
    result a = perform(e.h, srv.url("/1"));
    result b = perform(e.h, srv.url("/2"));
    result c = perform(e.h, srv.url("/3"));
    result d = perform(e.h, srv.url("/4"));
    REQUIRE(a.code == CURLE_OK);
    REQUIRE(b.code == CURLE_OK);
    REQUIRE(c.code == CURLE_OK);
    REQUIRE(d.code == CURLE_OK);
    CHECK(a.num_connects == 1);
    CHECK(b.num_connects == 0);  // reused after a chunked reply
    CHECK(c.num_connects == 0);
    CHECK(c.header("connection") == "close");
    CHECK(d.num_connects == 1);  // close_connection() forced a new one
    CHECK(b.body == "data: two\n\n");
    CHECK(d.body == "four");
    auto reqs = srv.requests();
    REQUIRE(reqs.size() == 4);
    CHECK(reqs[0].connection_id == reqs[1].connection_id);
    CHECK(reqs[1].connection_id == reqs[2].connection_id);
    CHECK(reqs[3].connection_id != reqs[2].connection_id);
    CHECK(srv.connection_count() == 2);
}

TEST_CASE("script_server: concurrent requests from 8 threads", "[script_server]") {
    script_server srv;
    constexpr int n = 8;
    for (int i = 0; i < n; ++i)
        srv.enqueue(reply::json(200, std::to_string(i)).delay(milliseconds(20)).body(""));
    std::vector<result> results(n);
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i) {
        threads.emplace_back([&, i] {
            request_options o;
            o.method = "POST";
            o.body = "from thread " + std::to_string(i);
            results[static_cast<size_t>(i)] = fetch(srv.url("/c"), o);
        });
    }
    for (auto& t : threads) t.join();
    std::vector<std::string> bodies;
    for (const auto& r : results) {
        CHECK(r.code == CURLE_OK);
        CHECK(r.status == 200);
        bodies.push_back(r.body);
    }
    std::sort(bodies.begin(), bodies.end());
    CHECK(bodies == std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7"});
    CHECK(srv.request_count() == n);
    CHECK(srv.connection_count() == n);
    std::vector<std::string> sent;
    for (const auto& q : srv.requests()) sent.push_back(q.body);
    std::sort(sent.begin(), sent.end());
    CHECK(sent.front() == "from thread 0");
    CHECK(sent.back() == "from thread 7");
}

TEST_CASE("script_server: enqueue while the client is running", "[script_server]") {
    script_server srv;
    srv.enqueue(reply::json(200, "first").delay_headers(milliseconds(100)));
    result a, b;
    std::thread client([&] {
        easy_handle e;
        a = perform(e.h, srv.url("/1"));
        b = perform(e.h, srv.url("/2"));
    });
    REQUIRE(srv.wait_for_requests(1, milliseconds(2000)));
    srv.enqueue(reply::json(200, "second"));  // while the first reply is still pending
    client.join();
    CHECK(a.body == "first");
    CHECK(b.body == "second");
    CHECK(b.num_connects == 0);
}

TEST_CASE("script_server: stop() is prompt", "[script_server]") {
    SECTION("while a reply is stalling and the client waits") {
        script_server srv;
        srv.enqueue(reply::sse().data("x").stall());
        result r;
        std::thread client([&] {
            request_options o;
            o.timeout_ms = 5000;
            r = fetch(srv.url("/s"), o);
        });
        REQUIRE(srv.wait_for_requests(1, milliseconds(2000)));
        std::this_thread::sleep_for(milliseconds(20));
        const auto t0 = steady::now();
        srv.stop();
        const auto took = steady::now() - t0;
        client.join();
        CHECK(took < milliseconds(100));
        CHECK(r.code != CURLE_OK);
        CHECK(r.elapsed < milliseconds(2000));
        srv.stop();  // idempotent
    }
    SECTION("while a client holds an idle keep-alive connection") {
        easy_handle e;
        script_server srv;
        srv.enqueue(reply::json(200, "{}"));
        REQUIRE(perform(e.h, srv.url("/k")).code == CURLE_OK);
        const auto t0 = steady::now();
        srv.stop();
        CHECK(steady::now() - t0 < milliseconds(100));
    }
    SECTION("while a client is mid-request (headers sent, body pending)") {
        script_server srv;
        sturdy_test::silent_server unused;  // also exercises silent_server teardown
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd >= 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<uint16_t>(srv.port()));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
        const char partial[] = "POST /v1/x HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc";
        REQUIRE(::send(fd, partial, sizeof partial - 1, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof partial - 1));
        std::this_thread::sleep_for(milliseconds(20));
        const auto t0 = steady::now();
        srv.stop();
        CHECK(steady::now() - t0 < milliseconds(100));
        CHECK(srv.request_count() == 0);
        ::close(fd);
    }
}

TEST_CASE("script_server: no leaked fds or threads", "[script_server]") {
    // Sanitizer runtimes start a helper thread of their own at the first pthread_create; one
    // throwaway thread first keeps it out of the count (each Catch2 case runs in a process of
    // its own under ctest).
    std::thread([] {}).join();
    const size_t fds0 = count_entries("/proc/self/fd");
    const size_t threads0 = count_entries("/proc/self/task");
    {
        script_server srv;
        CHECK(settle_entries("/proc/self/task", threads0 + 1) == threads0 + 1);  // the acceptor
        srv.enqueue(reply::json(200, "{}"));
        srv.enqueue(reply::sse().data("a").drop());
        srv.enqueue(reply::disconnect());
        srv.enqueue(reply::raw().reset());
        srv.enqueue(reply::sse().stall());
        for (int i = 0; i < 4; ++i) fetch(srv.url("/x"));
        request_options o;
        o.timeout_ms = 100;
        CHECK(fetch(srv.url("/x"), o).code == CURLE_OPERATION_TIMEDOUT);
        // The stalled worker notices that the client hung up and exits without stop().
        CHECK(settle_entries("/proc/self/task", threads0 + 1) == threads0 + 1);
        srv.enqueue(reply::json(200, "{}"));
        CHECK(fetch(srv.url("/x")).code == CURLE_OK);  // reaps finished workers on accept
        sturdy_test::silent_server silent;
        request_options s;
        s.timeout_ms = 50;
        CHECK(fetch(silent.base_url(), s).code == CURLE_OPERATION_TIMEDOUT);
        CHECK(sturdy_test::refused_port() > 0);
    }
    CHECK(count_entries("/proc/self/task") == threads0);
    CHECK(settle_entries("/proc/self/fd", fds0) == fds0);
}

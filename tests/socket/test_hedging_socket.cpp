// Hedging over real sockets: a slow first attempt is overtaken by a hedge, then cancelled.
#include <sturdy/hedging.hpp>
#include <sturdy/sturdy.hpp>

#include "support/catch.hpp"
#include "support/script_server.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using sturdy_test::reply;
using steady = std::chrono::steady_clock;

namespace {

std::string chat_reply(const std::string& content) {
    return R"({"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":")" +
           content + R"("},"finish_reason":"stop"}]})";
}

std::string chunk(const std::string& delta, const char* finish = nullptr) {
    return R"({"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":)" + delta +
           R"(,"finish_reason":)" + (finish ? "\"" + std::string(finish) + "\"" : std::string("null")) + "}]}";
}
std::string text(const std::string& t) { return chunk(R"({"content":")" + t + R"("})"); }
const std::string role = chunk(R"({"role":"assistant","content":""})");

using hedged_client = sturdy::basic_client<sturdy::curl_transport, sturdy::hedging_policy>;

sturdy::client_options options_for(const std::string& base_url) {
    sturdy::client_options o;
    o.base_url = base_url;
    o.api_key = "sk-hedging-test";
    o.connect_timeout = 2s;
    o.timeout = 5s;
    return o;
}

sturdy::hedging_policy hedge_after(std::chrono::milliseconds delay, std::vector<sturdy::route> routes = {}) {
    sturdy::hedging_options o;
    o.delay = delay;
    o.routes = std::move(routes);
    return sturdy::hedging_policy(o);
}

const sturdy::chat_request hello{"m", {sturdy::chat_message::user("Hi")}};

// Takes one connection, reads the request, never answers, and notes when the client hangs up.
class hangup_watch {
public:
    hangup_watch() : listener_(sturdy_test::detail::make_loopback_socket(8, port_)), thread_([this] { run(); }) {}
    ~hangup_watch() {
        thread_.join();
        ::close(listener_);
    }
    hangup_watch(const hangup_watch&) = delete;
    hangup_watch& operator=(const hangup_watch&) = delete;

    std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }

    /// When the client closed its connection, waiting up to `timeout` for it.
    std::optional<steady::time_point> hung_up(std::chrono::milliseconds timeout) {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait_for(lock, timeout, [&] { return hung_up_.has_value() || gave_up_; });
        return hung_up_;
    }

private:
    void run() {
        const auto give_up = steady::now() + 3s;  // bounded, so a failing test still ends
        pollfd p{listener_, POLLIN, 0};
        if (::poll(&p, 1, sturdy_test::detail::ms_until(give_up)) > 0) {
            int fd = ::accept(listener_, nullptr, nullptr);
            if (fd >= 0) {
                watch(fd, give_up);
                ::close(fd);
            }
        }
        std::lock_guard<std::mutex> lock(mutex_);
        gave_up_ = true;
        cv_.notify_all();
    }

    void watch(int fd, steady::time_point give_up) {
        char buf[4096];
        for (;;) {
            pollfd q{fd, POLLIN, 0};
            if (::poll(&q, 1, sturdy_test::detail::ms_until(give_up)) <= 0) return;
            if (::recv(fd, buf, sizeof buf, 0) > 0) continue;
            std::lock_guard<std::mutex> lock(mutex_);
            hung_up_ = steady::now();
            cv_.notify_all();
            return;
        }
    }

    int port_ = 0;
    int listener_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::optional<steady::time_point> hung_up_;
    bool gave_up_ = false;
    std::thread thread_;
};

}  // namespace

TEST_CASE("hedging: a slow reply is overtaken by the hedge, on the same server", "[socket][hedging]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::json(200, chat_reply("slow")).delay_headers(2s));
    srv.enqueue(reply::json(200, chat_reply("fast")));
    const hedged_client client(options_for(srv.base_url()), hedge_after(100ms));

    const auto t0 = steady::now();
    auto r = client.chat(hello);
    const auto took = steady::now() - t0;
    CHECK(r.content() == "fast");
    CHECK(r.call.hedges == 1);
    CHECK(r.call.attempts == 2);
    CHECK(took >= 100ms);
    CHECK(took < 1s);  // the hedge delay and the fast reply, not the slow one
    CHECK(srv.request_count() == 2);
}

TEST_CASE("hedging: a hedge to the next route wins, and the slow attempt's connection is closed at once",
          "[socket][hedging]") {
    hangup_watch slow;  // the client's own endpoint: never answers
    sturdy_test::script_server fast;
    fast.enqueue(reply::json(200, chat_reply("from backup")));
    auto backup = std::make_shared<sturdy::endpoint>(options_for(fast.base_url()));
    const hedged_client client(options_for(slow.base_url()), hedge_after(100ms, {{"backup", backup, "m-backup"}}));

    const auto t0 = steady::now();
    auto r = client.chat(hello);
    const auto returned = steady::now();
    CHECK(r.content() == "from backup");
    CHECK(r.call.hedges == 1);
    CHECK(r.call.route == "backup");
    CHECK(returned - t0 < 1s);
    REQUIRE(fast.request_count() == 1);
    CHECK(fast.requests()[0].body.find("\"model\":\"m-backup\"") != std::string::npos);

    const auto hung_up = slow.hung_up(2s);
    REQUIRE(hung_up.has_value());
    CHECK(*hung_up - t0 < 1s);  // cancelled with the win, not left to run for its own timeout
}

TEST_CASE("hedging: a stream that stalls before its first token is overtaken; each chunk arrives once",
          "[socket][hedging][stream]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::sse().data(role).stall());  // headers and a role chunk, then nothing
    srv.enqueue(reply::sse().data(role).data(text("Hello")).data(text(" world")).data(chunk("{}", "stop")).data("[DONE]"));
    const hedged_client client(options_for(srv.base_url()), hedge_after(100ms));

    std::mutex m;
    std::vector<std::string> seen;
    const auto t0 = steady::now();
    auto r = client.stream(hello, [&](const sturdy::chat_chunk& c) {
        std::lock_guard<std::mutex> lock(m);  // it may run on the hedging thread
        seen.emplace_back(c.content());
    });
    const auto took = steady::now() - t0;
    CHECK(r.content() == "Hello world");
    CHECK(r.call.hedges == 1);
    CHECK(seen == std::vector<std::string>{"", "Hello", " world", ""});  // role, two texts, the stop
    CHECK(took < 1s);
    CHECK(srv.request_count() == 2);
}

TEST_CASE("hedging: a hedged client answers at once when the first attempt is quick", "[socket][hedging]") {
    sturdy_test::script_server srv;
    srv.enqueue(reply::json(200, chat_reply("quick")));
    const hedged_client client(options_for(srv.base_url()), hedge_after(2s));
    const auto t0 = steady::now();
    auto r = client.chat(hello);
    CHECK(steady::now() - t0 < 1s);
    CHECK(r.content() == "quick");
    CHECK(r.call.hedges == 0);
    CHECK(srv.request_count() == 1);
}

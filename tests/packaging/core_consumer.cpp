// A user's program that brings its own Transport and links sturdy::core alone, never libcurl.
// Built by the packaging test sturdy_packaging_core against an installed sturdy, and by the
// vcpkg port test from the port's usage file. It includes every public header that does not need
// libcurl (core_headers.hpp, listed by the consumer's CMakeLists.txt: all but curl_transport.hpp,
// client.hpp and sturdy.hpp), so a header that starts to include <curl/curl.h> fails this build.
// Its sturdy::basic_client runs over its own transport, with sturdy's retry policy: a 503, then
// a reply.
#include "core_headers.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#if defined(CURLINC_CURL_H) || defined(__CURL_CURL_H)
#  error "a header of sturdy::core includes <curl/curl.h>"
#endif
#ifndef STURDY_EXPECTED_VERSION
#  error "build with -DSTURDY_EXPECTED_VERSION=\"x.y.z\""
#endif

namespace {

/// Answers every request itself: 503 to the first, then a chat completion that echoes the last
/// message. Copies share the count, as a Transport's copies share their connections.
class scripted_transport {
public:
    sturdy::result<sturdy::http_head> send(const sturdy::http_request& request, sturdy::response_sink& sink) const {
        sturdy::http_head head;
        nlohmann::json body;
        if (calls_->fetch_add(1) == 0) {
            head.status = 503;
            body = {{"error", {{"message", "try again"}, {"type", "server_error"}}}};
        } else {
            const auto sent = nlohmann::json::parse(request.body).get<sturdy::chat_request>();
            head.status = 200;
            body = {{"id", "echo-1"},
                    {"object", "chat.completion"},
                    {"model", sent.model},
                    {"choices",
                     {{{"index", 0},
                       {"message", {{"role", "assistant"}, {"content", sent.messages.back().content}}},
                       {"finish_reason", "stop"}}}}};
        }
        if (!sink.on_head(head) || !sink.on_data(body.dump()))
            return sturdy::error(sturdy::error_kind::cancelled, "stopped");
        return head;
    }
    int calls() const { return calls_->load(); }

private:
    std::shared_ptr<std::atomic<int>> calls_ = std::make_shared<std::atomic<int>>(0);
};
static_assert(sturdy::is_transport_v<scripted_transport>, "scripted_transport models Transport");

}  // namespace

int main() {
    if (std::strcmp(STURDY_VERSION, STURDY_EXPECTED_VERSION) != 0) {
        std::printf("sturdy %s, expected %s\n", STURDY_VERSION, STURDY_EXPECTED_VERSION);
        return 1;
    }
    const scripted_transport transport;
    sturdy::retry_options retry;
    retry.max_retries = 2;
    retry.backoff = sturdy::backoff::constant(std::chrono::milliseconds(1));
    sturdy::client_options options;
    options.base_url = "scripted://echo/v1";
    const sturdy::basic_client<scripted_transport, sturdy::retry_policy> client(options, sturdy::retry_policy(retry),
                                                                                transport);

    const auto reply = client.try_chat({"echo", {sturdy::chat_message::user("ping")}});
    if (!reply) {
        std::printf("the call failed: %s\n", reply.error().what());
        return 1;
    }
    std::printf("sturdy %s core: \"%s\" after %d requests\n", STURDY_VERSION, reply->content().c_str(),
                transport.calls());
    return reply->content() == "ping" && transport.calls() == 2 && reply->call.attempts == 2 ? 0 : 1;
}

// sturdy::core: sturdy's types and policies without libcurl, for a program that brings its own
// Transport. Built against sturdy::core alone, it must not even see <curl/curl.h>.
#include <sturdy/chat.hpp>
#include <sturdy/retry.hpp>
#include <sturdy/transport.hpp>

#include <nlohmann/json.hpp>

#include <cstdio>

#if defined(CURLINC_CURL_H) || defined(__CURL_CURL_H)
#  error "sturdy::core's headers include <curl/curl.h>"
#endif

// A Transport that answers every request itself, with the user's words echoed back.
struct echo_transport {
    sturdy::result<sturdy::http_head> send(const sturdy::http_request& request, sturdy::response_sink& sink) const {
        const auto sent = nlohmann::json::parse(request.body).get<sturdy::chat_request>();
        nlohmann::json reply = {{"id", "echo-1"},
                                {"object", "chat.completion"},
                                {"model", sent.model},
                                {"choices",
                                 {{{"index", 0},
                                   {"message", {{"role", "assistant"}, {"content", sent.messages.back().content}}},
                                   {"finish_reason", "stop"}}}}};
        sturdy::http_head head;
        head.status = 200;
        if (!sink.on_head(head) || !sink.on_data(reply.dump()))
            return sturdy::error(sturdy::error_kind::cancelled, "stopped");
        return head;
    }
};
static_assert(sturdy::is_transport_v<echo_transport>, "echo_transport is a Transport");

struct collector : sturdy::response_sink {
    std::string body;
    bool on_head(const sturdy::http_head&) override { return true; }
    bool on_data(std::string_view bytes) override {
        body.append(bytes.data(), bytes.size());
        return true;
    }
};

int main() {
    sturdy::http_request request;
    request.method = sturdy::http_method::post;
    request.body = nlohmann::json(sturdy::chat_request{"echo", {sturdy::chat_message::user("ping")}}).dump();
    collector sink;
    const auto head = echo_transport{}.send(request, sink);
    const auto reply = nlohmann::json::parse(sink.body).get<sturdy::chat_response>();
    std::printf("sturdy::core: %d %s\n", head ? head->status : 0, reply.content().c_str());
    return head && head->status == 200 && reply.content() == "ping" ? 0 : 1;
}

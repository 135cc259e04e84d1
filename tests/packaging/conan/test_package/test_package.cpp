// The packaged sturdy works: its version is the package's, and a call to a port where nothing
// listens ends in a `connection` error from libcurl, not in a crash or a hang.
#include <sturdy/sturdy.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>

int main() {
    std::printf("sturdy %s\n", STURDY_VERSION);
    if (std::strcmp(STURDY_VERSION, STURDY_EXPECTED_VERSION) != 0) {
        std::printf("the package is version %s\n", STURDY_EXPECTED_VERSION);
        return 1;
    }
    sturdy::client_options options;
    options.base_url = "http://127.0.0.1:1/v1";  // nothing listens on port 1
    options.connect_timeout = std::chrono::milliseconds(500);
    const sturdy::client client(options, sturdy::retry_policy(0));
    const auto reply = client.try_chat({"model", {sturdy::chat_message::user("hi")}});
    if (reply || reply.error().kind() != sturdy::error_kind::connection) {
        std::printf("expected a connection error, got %s\n", reply ? "a reply" : reply.error().what());
        return 1;
    }
    std::printf("a call to a closed port: %s\n", reply.error().what());
    return 0;
}

// A user's translation unit: the umbrella header and one call through the default client.
#include <sturdy/sturdy.hpp>

int main() {
    sturdy::client_options options;
    options.base_url = "http://127.0.0.1:1/v1";
    const sturdy::client client(options);
    auto reply = client.try_chat({"m", {sturdy::chat_message::user("hi")}});
    return reply ? 0 : 1;
}

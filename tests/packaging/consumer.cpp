// A user's program: it includes sturdy's umbrella header and uses it. Built three ways by the
// packaging tests: against an installed sturdy (find_package/), through add_subdirectory()
// (add_subdirectory/), and directly in sturdy's build with strict warnings as errors in C++17
// and C++20 (sturdy_strict_cxx17, sturdy_strict_cxx20). It instantiates every call of the
// client, so the strict builds check the templates a user compiles, and it makes one real call
// to a closed port, so the link against libcurl is checked too.
// STURDY_EXPECTED_VERSION comes from CMake's PROJECT_VERSION, read from version.hpp.
#include <sturdy/sturdy.hpp>
#include <sturdy/testing/fake_clock.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>

#ifndef STURDY_EXPECTED_VERSION
#  error "build with -DSTURDY_EXPECTED_VERSION=\"x.y.z\""
#endif

int main() {
    std::printf("sturdy %s\n", STURDY_VERSION);
    if (std::strcmp(STURDY_VERSION, STURDY_EXPECTED_VERSION) != 0) {
        std::printf("expected version %s\n", STURDY_EXPECTED_VERSION);
        return 1;
    }

    sturdy::client_options options;
    options.base_url = "http://127.0.0.1:1/v1";  // nothing listens on port 1
    options.connect_timeout = std::chrono::milliseconds(500);
    const sturdy::client client(options, sturdy::retry_policy(0));

    sturdy::chat_request chat{"model", {sturdy::chat_message::user("hi")}};
    chat.stream_options = sturdy::chat_stream_options{true};
    const auto reply = client.try_chat(chat);
    const auto streamed = client.try_stream(chat, [](const sturdy::chat_chunk& c) { return !c.content().empty(); });
    const auto models = client.try_models();
    const auto model = client.try_model("model");
    const auto vectors = client.try_embed({"embed", {"text"}});
    for (bool ok : {bool(reply), bool(streamed), bool(models), bool(model), bool(vectors)}) {
        if (ok) {
            std::printf("a call to a closed port succeeded\n");
            return 1;
        }
    }
    if (reply.error().kind() != sturdy::error_kind::connection) {
        std::printf("expected a connection error, got %s\n", reply.error().what());
        return 1;
    }

    // Policies and virtual time compile for users too.
    sturdy::testing::fake_clock fake(1);
    sturdy::retry_options retry;
    retry.backoff = sturdy::backoff::decorrelated_jitter(std::chrono::milliseconds(100), std::chrono::seconds(5));
    const sturdy::basic_client<sturdy::curl_transport, sturdy::retry_policy> custom(options, sturdy::retry_policy(retry, fake.timing()));
    return custom.options().base_url == options.base_url ? 0 : 1;
}

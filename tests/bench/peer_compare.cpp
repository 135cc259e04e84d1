// sturdy's side of ../shared/bench/compare.sh: the same four calls as the raw libcurl baseline,
// made through sturdy's public API with its default client (libcurl, official retry policy).
//
// usage: peer_compare MODE N PORT     (MODE: chat | stream | embed | models)
// prints: MODE n=N total_ms=T per_call_us=U check=C
#include <sturdy/sturdy.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s chat|stream|embed|models N PORT\n", argv[0]);
        return 2;
    }
    const std::string mode = argv[1];
    const int n = std::atoi(argv[2]);
    const std::string port = argv[3];
    const std::string prefix = mode == "stream" ? "/stream/v1" : mode == "embed" ? "/b64/v1" : "/plain/v1";

    sturdy::client_options options;
    options.base_url = "http://127.0.0.1:" + port + prefix;
    options.api_key = "sk-bench";
    const sturdy::client client(options);

    const sturdy::chat_request chat{"bench-model", {sturdy::chat_message::user("hi")}};
    const sturdy::embedding_request embed{"bench-embed", std::vector<std::string>(64, "hello")};

    std::size_t check = 0;
    const auto start = std::chrono::steady_clock::now();
    try {
        for (int i = 0; i < n; ++i) {
            if (mode == "chat") {
                check += client.chat(chat).content().size();
            } else if (mode == "stream") {
                client.stream(chat, [&](const sturdy::chat_chunk& chunk) { check += chunk.content().size(); });
            } else if (mode == "embed") {
                for (const auto& item : client.embed(embed).data) check += item.values.size();
            } else if (mode == "models") {
                check += client.models().data.size();
            } else {
                std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
                return 2;
            }
        }
    } catch (const sturdy::error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::printf("%s n=%d total_ms=%.1f per_call_us=%.1f check=%zu\n", mode.c_str(), n, ms, ms * 1000 / n, check);
    return 0;
}

// dump_requests OUT_DIR: writes the exact request bodies sturdy's client sends, one file per
// request, for validation against the OpenAI OpenAPI spec (tests/spec/validate_requests.cmake).
//
// The client runs over a transport that records each request instead of sending it, so every file
// holds the bytes that would go on the wire. A file is named after the endpoint the request was
// for: chat_<case>.json (POST /chat/completions), embeddings_<case>.json (POST /embeddings).

#include <sturdy/client.hpp>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

/// A Transport that keeps every request and answers none (invalid_argument is never retried).
struct capturing_transport {
    std::shared_ptr<std::vector<sturdy::http_request>> sent = std::make_shared<std::vector<sturdy::http_request>>();

    sturdy::result<sturdy::http_head> send(const sturdy::http_request& request, sturdy::response_sink&) const {
        sent->push_back(request);
        return sturdy::error(sturdy::error_kind::invalid_argument, "captured by dump_requests, not sent");
    }
};

using capturing_client = sturdy::basic_client<capturing_transport, sturdy::no_policy>;

class dumper {
public:
    explicit dumper(std::filesystem::path dir) : dir_(std::move(dir)), client_(options()) {}

    void chat(std::string_view name, const sturdy::chat_request& request) {
        (void)client_.try_chat(request);
        write(name, "/chat/completions");
    }
    void stream(std::string_view name, const sturdy::chat_request& request) {
        (void)client_.try_stream(request, [](const sturdy::chat_chunk&) {});
        write(name, "/chat/completions");
    }
    void embed(std::string_view name, const sturdy::embedding_request& request) {
        (void)client_.try_embed(request);
        write(name, "/embeddings");
    }

private:
    static sturdy::client_options options() {
        sturdy::client_options o;
        o.base_url = "https://api.openai.com/v1";
        o.api_key = "sk-dump-requests";
        return o;
    }

    // Exactly one request per call, to the expected endpoint, written byte for byte.
    void write(std::string_view name, std::string_view path) {
        auto& sent = *client_.transport().sent;
        if (sent.size() != 1)
            throw std::runtime_error(std::string(name) + ": the client made " + std::to_string(sent.size()) + " requests, not 1");
        const sturdy::http_request request = sent.front();
        sent.clear();
        const std::string& url = request.url;
        if (request.method != sturdy::http_method::post || url.size() < path.size() ||
            url.compare(url.size() - path.size(), path.size(), path) != 0)
            throw std::runtime_error(std::string(name) + ": expected POST " + std::string(path) + ", got " + url);
        const std::string prefix = path == "/embeddings" ? "embeddings_" : "chat_";
        const auto file = dir_ / (prefix + std::string(name) + ".json");
        std::ofstream out(file, std::ios::binary);
        out << request.body;
        if (!out.flush()) throw std::runtime_error("cannot write " + file.string());
        std::cout << file.string() << "\n";
    }

    std::filesystem::path dir_;
    capturing_client client_;
};

nlohmann::json weather_tools() {
    return nlohmann::json::parse(R"([{"type": "function", "function": {
        "name": "get_weather", "description": "The current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"], "additionalProperties": false},
        "strict": true}}])");
}

sturdy::tool_call weather_call(std::string id, std::string city) {
    sturdy::tool_call call;
    call.id = std::move(id);
    call.function.name = "get_weather";
    call.function.arguments = nlohmann::json{{"city", std::move(city)}}.dump();
    return call;
}

void dump_all(dumper& d) {
    using sturdy::chat_message;
    const std::string model = "gpt-4o-mini";

    d.chat("basic", {model, {chat_message::user("Hello")}});

    {
        // A whole tool round trip: the assistant's call (no text), the tool's answer, a follow-up.
        auto asked = chat_message::assistant("");
        asked.tool_calls.push_back(weather_call("call_1", "Paris"));
        auto named_user = chat_message::user("And in Rome?");
        named_user.name = "alice";
        sturdy::chat_request req{model,
                                 {chat_message::system("You answer questions about the weather."),
                                  chat_message::user("What is the weather in Paris?"), asked,
                                  chat_message::tool("call_1", R"({"sky":"sunny","celsius":21})"),
                                  chat_message::assistant("It is sunny and 21 degrees in Paris."), named_user}};
        req.tools = weather_tools();
        req.tool_choice = "auto";
        req.parallel_tool_calls = false;
        d.chat("conversation_with_tools", req);

        req.tool_choice = {{"type", "function"}, {"function", {{"name", "get_weather"}}}};
        d.chat("tool_choice_named_function", req);
    }

    {
        sturdy::chat_request req{model, {chat_message::user("Name three colours as JSON.")}};
        req.temperature = 0.7;
        req.top_p = 0.9;
        req.max_tokens = 64;
        req.max_completion_tokens = 64;
        req.seed = 42;
        req.stop = nlohmann::json::array({"\n\n", "END"});
        req.n = 2;
        req.presence_penalty = 0.5;
        req.frequency_penalty = -0.25;
        req.response_format = nlohmann::json::parse(R"({"type": "json_schema", "json_schema": {
            "name": "colours", "strict": true,
            "schema": {"type": "object", "properties": {"colours": {"type": "array", "items": {"type": "string"}}},
                       "required": ["colours"], "additionalProperties": false}}})");
        req.logprobs = true;
        req.top_logprobs = 3;
        req.user = "user-1234";
        d.chat("all_sampling_parameters", req);
    }

    {
        sturdy::chat_request req{model, {chat_message::user("Hello")}};
        d.stream("streamed", req);
        req.stream_options = sturdy::chat_stream_options{true, {}};
        d.stream("streamed_with_usage", req);
        // The same request unstreamed: the client must drop stream_options.
        d.chat("unstreamed_with_stream_options_set", req);
    }

    {
        auto answer = chat_message::assistant("Let me check the weather in both cities.");
        answer.tool_calls.push_back(weather_call("call_1", "Paris"));
        answer.tool_calls.push_back(weather_call("call_2", "Rome"));
        sturdy::chat_request req{model,
                                 {chat_message::user("Weather in Paris and Rome?"), answer,
                                  chat_message::tool("call_1", "sunny"), chat_message::tool("call_2", "rainy")}};
        req.tools = weather_tools();
        d.chat("assistant_tool_calls_with_content", req);
    }

    {
        const std::string embed_model = "text-embedding-3-small";
        sturdy::embedding_request req{embed_model, {"The quick brown fox", "jumps over the lazy dog"}};
        d.embed("default", req);  // the client adds encoding_format "base64"
        req.dimensions = 256;
        d.embed("with_dimensions", req);
        req.dimensions.reset();
        req.encoding_format = "float";
        req.user = "user-1234";
        d.embed("explicit_float", req);
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: dump_requests OUT_DIR\n";
        return 2;
    }
    try {
        const std::filesystem::path dir = argv[1];
        std::filesystem::create_directories(dir);
        dumper d(dir);
        dump_all(d);
    } catch (const std::exception& e) {
        std::cerr << "dump_requests: " << e.what() << "\n";
        return 1;
    }
    return 0;
}

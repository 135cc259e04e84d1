// The yardstick: a translation unit using only what sturdy builds on (nlohmann/json, libcurl).
#include <curl/curl.h>
#include <nlohmann/json.hpp>

int main() {
    const auto reply = nlohmann::json::parse(R"({"choices":[{"message":{"content":"hi"}}]})");
    CURL* handle = curl_easy_init();
    curl_easy_cleanup(handle);
    return reply["choices"][0]["message"]["content"].get<std::string>().empty() ? 1 : 0;
}

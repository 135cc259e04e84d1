#pragma once
/// @file
/// Presets for well-known OpenAI-compatible providers: base URL and where the key comes from.

#include <sturdy/detail/env.hpp>
#include <sturdy/options.hpp>

#include <string>
#include <string_view>

namespace sturdy {

/// A provider's base URL and the environment variables of its key and URL override.
struct provider {
    std::string_view name;
    std::string_view base_url;
    std::string_view api_key_env;   ///< where its key usually lives; empty when none is needed
    std::string_view base_url_env;  ///< overrides base_url when set
    std::string_view default_key;   ///< sent when no key is set (Ollama wants any non-empty key)

    /// Client options for this provider, read from the environment.
    client_options options() const {
        client_options o;
        o.base_url = env_or(base_url_env, std::string(base_url));
        o.api_key = env_or(api_key_env, std::string(default_key));
        return o;
    }

private:
    static std::string env_or(std::string_view var, std::string fallback) {
        return var.empty() ? fallback : detail::env_or(std::string(var).c_str(), std::move(fallback));
    }
};

/// Any other OpenAI-compatible server (a relay, a gateway) works the same way: set `base_url`.
namespace providers {
inline constexpr provider openai{"openai", "https://api.openai.com/v1", "OPENAI_API_KEY", "OPENAI_BASE_URL", ""};
inline constexpr provider deepseek{"deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", "DEEPSEEK_BASE_URL", ""};
/// Moonshot's international endpoint; in mainland China use https://api.moonshot.cn/v1.
inline constexpr provider moonshot{"moonshot", "https://api.moonshot.ai/v1", "MOONSHOT_API_KEY", "MOONSHOT_BASE_URL", ""};
/// Alibaba Cloud Model Studio (Qwen) in OpenAI-compatible mode; international: dashscope-intl.aliyuncs.com.
inline constexpr provider dashscope{"dashscope", "https://dashscope.aliyuncs.com/compatible-mode/v1",
                                    "DASHSCOPE_API_KEY", "DASHSCOPE_BASE_URL", ""};
inline constexpr provider gemini{"gemini", "https://generativelanguage.googleapis.com/v1beta/openai",
                                 "GEMINI_API_KEY", "GEMINI_BASE_URL", ""};
inline constexpr provider openrouter{"openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY",
                                     "OPENROUTER_BASE_URL", ""};
/// llama.cpp's llama-server; a key only when it runs with --api-key.
inline constexpr provider llama_cpp{"llama.cpp", "http://127.0.0.1:8080/v1", "LLAMA_API_KEY", "LLAMA_BASE_URL", ""};
inline constexpr provider vllm{"vllm", "http://127.0.0.1:8000/v1", "VLLM_API_KEY", "VLLM_BASE_URL", ""};
inline constexpr provider ollama{"ollama", "http://127.0.0.1:11434/v1", "OLLAMA_API_KEY", "OLLAMA_BASE_URL", "ollama"};
}  // namespace providers

}  // namespace sturdy

#pragma once
// Where the examples' calls go: the real API when OPENAI_API_KEY is set (OPENAI_BASE_URL and
// OPENAI_MODEL are honoured), else a local demo server started in this process, so every
// example runs on a fresh machine with no network and no key.

#include <sturdy/options.hpp>

#include <demo_server.hpp>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

/// A duration in milliseconds, for printing.
template <class Rep, class Period>
double ms(std::chrono::duration<Rep, Period> d) {
    return std::chrono::duration<double, std::milli>(d).count();
}

class example_backend {
public:
    example_backend() {
        if (const char* key = std::getenv("OPENAI_API_KEY"); key && *key) {
            options_ = sturdy::client_options::from_env();
            chat_model_ = env_or("OPENAI_MODEL", "gpt-4o-mini");
            embedding_model_ = env_or("OPENAI_EMBEDDING_MODEL", "text-embedding-3-small");
            std::cout << "[using " << options_.base_url << ", model " << chat_model_ << "]\n";
        } else {
            demo_ = std::make_unique<sturdy_demo::server>();
            demo_->start();
            options_.base_url = demo_->base_url();
            options_.api_key = "sk-demo";
            chat_model_ = "demo-mini";
            embedding_model_ = "demo-embed";
            std::cout << "[OPENAI_API_KEY is not set: using the local demo server at " << options_.base_url << "]\n";
        }
    }

    const sturdy::client_options& options() const { return options_; }
    const std::string& chat_model() const { return chat_model_; }
    const std::string& embedding_model() const { return embedding_model_; }
    /// The demo server, to inject faults; null when talking to a real API.
    sturdy_demo::server* demo() const { return demo_.get(); }

private:
    static std::string env_or(const char* name, const char* fallback) {
        const char* v = std::getenv(name);
        return (v && *v) ? v : fallback;
    }

    std::unique_ptr<sturdy_demo::server> demo_;
    sturdy::client_options options_;
    std::string chat_model_, embedding_model_;
};

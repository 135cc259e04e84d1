#pragma once
// Clients and endpoints for tests with several local servers, each with its own key.

#include <sturdy/options.hpp>

#include <chrono>
#include <string>

namespace sturdy_test {

inline sturdy::client_options options_for(const std::string& base_url, std::string key) {
    sturdy::client_options o;
    o.base_url = base_url;
    o.api_key = std::move(key);
    o.connect_timeout = std::chrono::seconds(2);
    o.timeout = std::chrono::seconds(5);
    return o;
}

inline sturdy::endpoint endpoint_for(const std::string& base_url, std::string key) {
    sturdy::endpoint e;
    e.base_url = base_url;
    e.api_key = std::move(key);
    return e;
}

}  // namespace sturdy_test

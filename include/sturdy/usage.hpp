#pragma once
/// @file
/// Token counts a reply reports.

#include <sturdy/detail/json_mapping.hpp>
#include <sturdy/detail/json_reader.hpp>

#include <cstdint>

namespace sturdy {

/// Tokens a call consumed, as the server counted them.
struct token_usage {
    std::int64_t prompt_tokens = 0;
    std::int64_t completion_tokens = 0;
    std::int64_t total_tokens = 0;
    nlohmann::json extra{};  ///< e.g. prompt_tokens_details, completion_tokens_details

    template <class Self, class F>
    static void visit(Self& self, F&& field) {
        field("prompt_tokens", self.prompt_tokens);
        field("completion_tokens", self.completion_tokens);
        field("total_tokens", self.total_tokens);
    }
};

}  // namespace sturdy

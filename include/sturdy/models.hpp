#pragma once
/// @file
/// Models: the list a server offers, and one model's description.

#include <sturdy/call_info.hpp>
#include <sturdy/detail/json_mapping.hpp>
#include <sturdy/detail/json_reader.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace sturdy {

/// One model. Servers add fields (llama.cpp's `meta`...), kept in `extra`.
struct model_info {
    std::string id{};
    std::string object{};
    std::int64_t created = 0;
    std::string owned_by{};
    nlohmann::json extra{};
    /// How the call that fetched it went (model(id) only; not part of the JSON): through a routing
    /// policy, `call.route` says which route answered.
    call_info call;

    template <class Self, class F>
    static void visit(Self& self, F&& field) {
        field("id", self.id);
        field("object", self.object);
        field("created", self.created);
        field("owned_by", self.owned_by);
    }
};

/// The reply of GET /models.
struct model_list {
    std::string object{};
    std::vector<model_info> data{};
    nlohmann::json extra{};
    /// How the call went (not part of the JSON).
    call_info call;

    template <class Self, class F>
    static void visit(Self& self, F&& field) {
        field("object", self.object);
        field("data", self.data);
    }
};

}  // namespace sturdy

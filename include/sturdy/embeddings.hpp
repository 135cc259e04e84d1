#pragma once
/// @file
/// Embeddings: the request, and vectors decoded from whichever encoding the server used.

#include <sturdy/call_info.hpp>
#include <sturdy/detail/base64.hpp>
#include <sturdy/detail/json_mapping.hpp>
#include <sturdy/detail/json_reader.hpp>
#include <sturdy/usage.hpp>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sturdy {

/// An embeddings request: one vector per input text.
///
/// When `encoding_format` is unset, the client asks for base64 (as the official SDKs do, it is
/// smaller and exact) and decodes it into `embedding::values`. When it is set, the reply is returned
/// as the server sent it: "float" fills `values`, "base64" fills `embedding::base64`.
struct embedding_request {
    embedding_request() = default;
    embedding_request(std::string model_name, std::vector<std::string> texts)
        : model(std::move(model_name)), input(std::move(texts)) {}

    std::string model{};
    std::vector<std::string> input{};
    std::optional<int> dimensions{};
    std::optional<std::string> encoding_format{};
    std::string user{};
    nlohmann::json extra{};

    template <class Self, class F>
    static void visit(Self& self, F&& field) {
        field("model", self.model);
        field("input", self.input);
        field("dimensions", self.dimensions);
        field("encoding_format", self.encoding_format);
        field("user", self.user);
    }
};

namespace detail {
// The JSON "embedding" field is an array of numbers or a base64 string; it fills one of two members.
struct embedding_field {
    std::vector<float>& values;
    std::string& base64;

    slot as_slot() const { return {&values, &base64, &ops}; }
    static bool scalar(const slot& s, const json_scalar& v) {
        if (v.type == json_scalar::kind::null) return true;
        if (v.type != json_scalar::kind::string) return false;
        static_cast<std::string*>(s.b)->assign(*v.text);
        return true;
    }
    static bool begin_array(const slot& s, typed_reader& r) {
        return slot_traits<std::vector<float>>::ops.begin_array(slot{s.a, nullptr, &slot_traits<std::vector<float>>::ops}, r);
    }
    static constexpr slot::ops_table ops{&scalar, &reject_container, &begin_array};
};
struct const_embedding_field {
    const std::vector<float>& values;
    const std::string& base64;
};
inline bool is_empty_special(const const_embedding_field& f) { return f.values.empty() && f.base64.empty(); }
inline void write_special(json& j, const const_embedding_field& f) {
    if (f.base64.empty()) write_value(j, f.values);
    else j = f.base64;
}
}  // namespace detail

/// One input's vector.
struct embedding {
    int index = 0;
    std::vector<float> values{};  ///< the vector ("embedding" in the JSON)
    std::string base64{};         ///< the raw base64 vector, only when the caller asked for that format
    std::string object{};
    nlohmann::json extra{};

    template <class Self, class F>
    static void visit(Self& self, F&& field) {
        field("object", self.object);
        field("index", self.index);
        if constexpr (std::is_const_v<Self>) {
            field("embedding", detail::const_embedding_field{self.values, self.base64});
        } else {
            field("embedding", detail::embedding_field{self.values, self.base64});
        }
    }
};

/// The reply of POST /embeddings.
struct embedding_response {
    std::string object{};
    std::vector<embedding> data{};
    std::string model{};
    std::optional<token_usage> usage{};
    nlohmann::json extra{};
    /// How the call went (not part of the JSON).
    call_info call;

    template <class Self, class F>
    static void visit(Self& self, F&& field) {
        field("object", self.object);
        field("data", self.data);
        field("model", self.model);
        field("usage", self.usage);
    }
};

}  // namespace sturdy

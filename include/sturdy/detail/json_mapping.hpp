#pragma once
// One mapping between sturdy's plain structs and JSON, shared by every request and response type.
//
// A mapped type lists its fields once, in a static member template:
//
//     template <class Self, class F>
//     static void visit(Self& self, F&& field) {
//         field("role", self.role);
//         field("content", self.content, detail::keep_empty);
//     }
//
// and has a `nlohmann::json extra` member. Writing (here) omits empty members and then writes
// `extra` over the result, so callers can send any parameter the API grows. Reading
// (json_reader.hpp) keeps every unknown key, and every known key whose JSON type does not fit
// the member, in `extra`.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace sturdy::detail {

using json = nlohmann::json;

/// Write the field even when it is empty (a message's content must always be sent).
struct keep_empty_t {};
inline constexpr keep_empty_t keep_empty{};

struct probe_visitor {
    template <class M>
    void operator()(std::string_view, M&&) const {}
    template <class M>
    void operator()(std::string_view, M&&, keep_empty_t) const {}
};

template <class T, class = void>
struct is_mapped : std::false_type {};
template <class T>
struct is_mapped<T, std::void_t<decltype(T::visit(std::declval<T&>(), probe_visitor{})),
                                decltype(std::declval<T&>().extra)>> : std::true_type {};
template <class T>
inline constexpr bool is_mapped_v = is_mapped<T>::value;

// Declared up front: the templates below call each other, and their arguments' namespaces
// (std, nlohmann) would not let argument-dependent lookup find them here.
template <class T>
bool is_empty_special(const std::optional<T>& v);
template <class T>
bool is_empty_special(const std::vector<T>& v);
template <class T>
void write_value(json& j, const T& v);
template <class T>
void write_special(json& j, const std::optional<T>& v);
template <class T>
void write_special(json& j, const std::vector<T>& v);

// ---- writing ----

template <class T>
bool is_empty_value(const T& v) {
    if constexpr (std::is_same_v<T, json>) {
        return v.is_null();
    } else if constexpr (std::is_same_v<T, std::string>) {
        return v.empty();
    } else if constexpr (std::is_arithmetic_v<T> || is_mapped_v<T>) {
        return false;
    } else {
        return is_empty_special(v);
    }
}
template <class T>
bool is_empty_special(const std::optional<T>& v) { return !v.has_value(); }
template <class T>
bool is_empty_special(const std::vector<T>& v) { return v.empty(); }

template <class T>
void write_object(json& j, const T& v) {
    j = json::object();
    T::visit(v, [&](std::string_view name, const auto& member, auto... flags) {
        constexpr bool always = sizeof...(flags) > 0;
        if (always || !is_empty_value(member)) write_value(j[std::string(name)], member);
    });
    if (v.extra.is_object())
        for (const auto& [key, value] : v.extra.items()) j[key] = value;
}

template <class T>
void write_value(json& j, const T& v) {
    if constexpr (std::is_same_v<T, json> || std::is_same_v<T, std::string> || std::is_arithmetic_v<T>) {
        j = v;
    } else if constexpr (is_mapped_v<T>) {
        write_object(j, v);
    } else {
        write_special(j, v);
    }
}

template <class T>
void write_special(json& j, const std::optional<T>& v) {
    if (v) write_value(j, *v);
    else j = nullptr;
}

template <class T>
void write_special(json& j, const std::vector<T>& v) {
    j = json::array();
    for (const auto& element : v) {
        json item;
        write_value(item, element);
        j.push_back(std::move(item));
    }
}

}  // namespace sturdy::detail

namespace sturdy {

/// nlohmann::json conversion for every sturdy request and response type (from_json: json_reader.hpp).
template <class T, std::enable_if_t<detail::is_mapped_v<T>, int> = 0>
void to_json(nlohmann::json& j, const T& value) {
    detail::write_object(j, value);
}

}  // namespace sturdy

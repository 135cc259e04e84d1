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
// and has a `nlohmann::json extra` member. Reading keeps every unknown key (and every known key
// whose JSON type does not fit the member) in `extra`; writing omits empty members and then
// writes `extra` over the result, so callers can send any parameter the API grows.

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
bool read_value(json& j, T& out);
template <class T>
bool read_special(json& j, std::optional<T>& out);
template <class T>
bool read_special(json& j, std::vector<T>& out);
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

// ---- reading: each returns false when the JSON value does not fit, leaving it unread ----

template <class T>
void read_object(json& j, T& out) {
    for (auto it = j.begin(); it != j.end(); ++it) {
        const std::string& key = it.key();
        bool known = false, fitted = false;
        T::visit(out, [&](std::string_view name, auto&& member, auto...) {
            if (!known && key == name) {
                known = true;
                fitted = read_value(it.value(), member);
            }
        });
        if (!fitted) out.extra[key] = std::move(it.value());
    }
}

template <class T>
bool read_value(json& j, T& out) {
    if constexpr (std::is_same_v<T, json>) {
        out = std::move(j);
        return true;
    } else if constexpr (std::is_same_v<T, std::string>) {
        if (j.is_string()) {
            out = std::move(j.get_ref<std::string&>());
            return true;
        }
        if (j.is_null()) {
            out.clear();
            return true;
        }
        return false;
    } else if constexpr (std::is_same_v<T, bool>) {
        if (!j.is_boolean()) return j.is_null();
        out = j.get<bool>();
        return true;
    } else if constexpr (std::is_arithmetic_v<T>) {
        if (j.is_null()) return true;
        if (!j.is_number()) return false;
        if constexpr (std::is_integral_v<T>) {
            if (!j.is_number_integer()) return false;
        }
        out = j.get<T>();
        return true;
    } else if constexpr (is_mapped_v<T>) {
        if (!j.is_object()) return j.is_null();
        read_object(j, out);
        return true;
    } else {
        return read_special(j, out);  // optional, vector, and field proxies
    }
}

template <class T>
bool read_special(json& j, std::optional<T>& out) {
    if (j.is_null()) {
        out.reset();
        return true;
    }
    T value{};
    if (!read_value(j, value)) return false;
    out = std::move(value);
    return true;
}

template <class T>
bool read_special(json& j, std::vector<T>& out) {
    if (j.is_null()) {
        out.clear();
        return true;
    }
    if (!j.is_array()) return false;
    out.clear();
    out.reserve(j.size());
    for (auto& element : j) {
        T value{};
        if (!read_value(element, value)) return false;
        out.push_back(std::move(value));
    }
    return true;
}

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

/// nlohmann::json conversions for every sturdy request and response type.
template <class T, std::enable_if_t<detail::is_mapped_v<T>, int> = 0>
void to_json(nlohmann::json& j, const T& value) {
    detail::write_object(j, value);
}

template <class T, std::enable_if_t<detail::is_mapped_v<T>, int> = 0>
void from_json(const nlohmann::json& j, T& value) {
    // Let nlohmann raise its own type_error for a non-object, whatever its version's signatures.
    if (!j.is_object()) (void)j.get_ref<const nlohmann::json::object_t&>();
    nlohmann::json copy = j;
    value = T{};
    detail::read_object(copy, value);
}

}  // namespace sturdy

#pragma once
// Reading JSON straight into sturdy's mapped structs, without building a DOM first.
//
// nlohmann's SAX parser emits events; `typed_reader` routes each value to the member its key
// names (found through the type's `visit` table), to a vector element, or, for unknown keys and
// values of an unexpected type, into the struct's `extra` JSON. The same reader serves parsed
// text (replies, stream chunks) and existing JSON values (from_json), through `walk`.

#include <sturdy/detail/json_mapping.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <typeinfo>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace sturdy::detail {

/// The deepest nesting a reply may have (replies nest a handful of levels).
inline constexpr std::size_t max_reply_depth = 256;

/// One JSON scalar as the SAX parser delivers it.
struct json_scalar {
    enum class kind { null, boolean, integer, unsigned_integer, floating, string } type = kind::null;
    bool boolean = false;
    std::int64_t integer = 0;
    std::uint64_t unsigned_integer = 0;
    double floating = 0;
    std::string* text = nullptr;

    json to_json() const {
        switch (type) {
            case kind::null: return nullptr;
            case kind::boolean: return boolean;
            case kind::integer: return integer;
            case kind::unsigned_integer: return unsigned_integer;
            case kind::floating: return floating;
            case kind::string: return *text;
        }
        return nullptr;
    }
};

class typed_reader;

/// Where a value can go, and what it accepts. `b` is used by members that fill two fields.
struct slot {
    struct ops_table {
        bool (*scalar)(const slot&, const json_scalar&);
        bool (*begin_object)(const slot&, typed_reader&);
        bool (*begin_array)(const slot&, typed_reader&);
    };
    void* a = nullptr;
    void* b = nullptr;
    const ops_table* ops = nullptr;
};

template <class T>
slot slot_for(T& member);

/// Members that fill more than one field (an embedding's vector or base64 text) provide a slot.
template <class T, class = void>
struct has_slot_proxy : std::false_type {};
template <class T>
struct has_slot_proxy<T, std::void_t<decltype(std::declval<T&>().as_slot())>> : std::true_type {};

/// An open object or array: typed (a mapped struct, a vector) or captured as JSON.
struct reader_frame {
    enum class kind { record, sequence, captured };
    explicit reader_frame(kind k) : type(k) {}

    kind type;
    void* target = nullptr;
    slot (*member)(void* target, std::string_view key) = nullptr;  // records
    json* (*extra)(void* target) = nullptr;                        // records
    slot (*element)(void* target) = nullptr;                       // sequences
    json* node = nullptr;                                           // captured
    std::string key;                                                // records and captured objects
};

/// A nlohmann SAX handler that fills `Root` (a mapped struct).
class typed_reader {
public:
    using string_t = json::string_t;
    using binary_t = json::binary_t;

    template <class Root>
    explicit typed_reader(Root& root, std::string_view required_key = {}) : required_(required_key) {
        root_ = slot_for(root);
    }

    /// Whether the root object had the required key with a value of its member's type, not null
    /// (true when none was asked for): `"choices": "oops"` is no reply.
    bool saw_required() const noexcept { return required_.empty() || saw_required_; }

    // ---- nlohmann SAX interface ----
    bool null() { return scalar({}); }
    bool boolean(bool v) {
        json_scalar s;
        s.type = json_scalar::kind::boolean;
        s.boolean = v;
        return scalar(s);
    }
    bool number_integer(std::int64_t v) {
        json_scalar s;
        s.type = json_scalar::kind::integer;
        s.integer = v;
        return scalar(s);
    }
    bool number_unsigned(std::uint64_t v) {
        json_scalar s;
        s.type = json_scalar::kind::unsigned_integer;
        s.unsigned_integer = v;
        return scalar(s);
    }
    bool number_float(double v, const string_t&) {
        json_scalar s;
        s.type = json_scalar::kind::floating;
        s.floating = v;
        return scalar(s);
    }
    bool string(string_t& v) {
        json_scalar s;
        s.type = json_scalar::kind::string;
        s.text = &v;
        return scalar(s);
    }
    bool binary(binary_t&) { return false; }
    bool start_object(std::size_t = std::size_t(-1)) { return begin(true); }
    bool start_array(std::size_t = std::size_t(-1)) { return begin(false); }
    bool end_object() { return end(); }
    bool end_array() { return end(); }
    bool key(string_t& k) {
        auto& top = frames_.back();
        reading_required_ = frames_.size() == 1 && !required_.empty() && k == required_;
        top.key.assign(k);
        return true;
    }
    template <class Exception>
    bool parse_error(std::size_t, const std::string&, const Exception&) {
        return false;
    }

    // ---- used by slot operations ----
    void push_record(void* target, slot (*member)(void*, std::string_view), json* (*extra)(void*)) {
        reader_frame f(reader_frame::kind::record);
        f.target = target;
        f.member = member;
        f.extra = extra;
        frames_.push_back(std::move(f));
    }
    void push_sequence(void* target, slot (*element)(void*)) {
        reader_frame f(reader_frame::kind::sequence);
        f.target = target;
        f.element = element;
        frames_.push_back(std::move(f));
    }
    void push_captured(json* node) {
        reader_frame f(reader_frame::kind::captured);
        f.node = node;
        frames_.push_back(std::move(f));
    }

private:
    // Where the next value goes, and the JSON to put it in if the slot does not take it.
    struct destination {
        slot typed;
        json* fallback = nullptr;
    };

    destination next() {
        if (frames_.empty()) return {root_, nullptr};
        auto& top = frames_.back();
        switch (top.type) {
            case reader_frame::kind::record: {
                slot s = top.member(top.target, top.key);
                return {s, s.ops ? nullptr : &(*top.extra(top.target))[top.key]};
            }
            case reader_frame::kind::sequence:
                return {top.element(top.target), nullptr};
            case reader_frame::kind::captured:
                if (top.node->is_array()) {
                    top.node->push_back(nullptr);
                    return {{}, &top.node->back()};
                }
                return {{}, &(*top.node)[top.key]};
        }
        return {};
    }

    // A known member whose JSON type does not fit keeps the value in `extra`, under its key.
    json* misfit() {
        auto& top = frames_.back();
        if (top.type != reader_frame::kind::record) return nullptr;
        return &(*top.extra(top.target))[top.key];
    }

    bool scalar(const json_scalar& s) {
        destination d = next();
        const bool required = reading_required_;
        reading_required_ = false;
        if (d.typed.ops) {
            if (d.typed.ops->scalar(d.typed, s)) {
                if (required && s.type != json_scalar::kind::null) saw_required_ = true;
                return true;
            }
            d.fallback = misfit();
        }
        if (!d.fallback) return false;  // a misfit inside a typed array cannot be kept
        *d.fallback = s.to_json();
        return true;
    }

    bool begin(bool object) {
        // Copying, comparing or writing JSON recurses once per level: a text nested deeper than
        // any reply could crash its reader's stack later, so it is refused here.
        if (frames_.size() >= max_reply_depth) return false;
        destination d = next();
        const bool required = reading_required_;
        reading_required_ = false;
        if (d.typed.ops) {
            if (object ? d.typed.ops->begin_object(d.typed, *this) : d.typed.ops->begin_array(d.typed, *this)) {
                if (required) saw_required_ = true;
                return true;
            }
            d.fallback = misfit();
        }
        if (!d.fallback) return false;
        *d.fallback = object ? json::object() : json::array();
        push_captured(d.fallback);
        return true;
    }

    bool end() {
        frames_.pop_back();
        return true;
    }

    slot root_;
    std::vector<reader_frame> frames_;
    std::string_view required_;
    bool saw_required_ = false, reading_required_ = false;
};

// ---- slot operations per member type ----

inline bool reject_scalar(const slot&, const json_scalar&) { return false; }
inline bool reject_container(const slot&, typed_reader&) { return false; }

template <class T, class = void>
struct slot_traits;

// Strings: text or null. Assigned, not moved: the parser keeps its buffer, and the target keeps its capacity.
template <>
struct slot_traits<std::string> {
    static bool scalar(const slot& s, const json_scalar& v) {
        auto& out = *static_cast<std::string*>(s.a);
        if (v.type == json_scalar::kind::string) out.assign(*v.text);
        else if (v.type == json_scalar::kind::null) out.clear();
        else return false;
        return true;
    }
    static constexpr slot::ops_table ops{&scalar, &reject_container, &reject_container};
};

template <>
struct slot_traits<bool> {
    static bool scalar(const slot& s, const json_scalar& v) {
        if (v.type == json_scalar::kind::null) return true;
        if (v.type != json_scalar::kind::boolean) return false;
        *static_cast<bool*>(s.a) = v.boolean;
        return true;
    }
    static constexpr slot::ops_table ops{&scalar, &reject_container, &reject_container};
};

template <class N>
struct slot_traits<N, std::enable_if_t<std::is_arithmetic_v<N> && !std::is_same_v<N, bool>>> {
    static bool scalar(const slot& s, const json_scalar& v) {
        auto& out = *static_cast<N*>(s.a);
        switch (v.type) {
            case json_scalar::kind::null: return true;
            case json_scalar::kind::integer: out = static_cast<N>(v.integer); return true;
            case json_scalar::kind::unsigned_integer: out = static_cast<N>(v.unsigned_integer); return true;
            case json_scalar::kind::floating:
                if constexpr (std::is_floating_point_v<N>) {
                    // Past the member's range the conversion is undefined (infinity in practice,
                    // which to_json writes as null): such a number does not fit the member.
                    if (std::fabs(v.floating) > static_cast<double>(std::numeric_limits<N>::max())) return false;
                    out = static_cast<N>(v.floating);
                    return true;
                }
                return false;
            default: return false;
        }
    }
    static constexpr slot::ops_table ops{&scalar, &reject_container, &reject_container};
};

// Raw JSON members take anything.
template <>
struct slot_traits<json> {
    static bool scalar(const slot& s, const json_scalar& v) {
        *static_cast<json*>(s.a) = v.to_json();
        return true;
    }
    static bool begin_object(const slot& s, typed_reader& r) {
        auto* j = static_cast<json*>(s.a);
        *j = json::object();
        r.push_captured(j);
        return true;
    }
    static bool begin_array(const slot& s, typed_reader& r) {
        auto* j = static_cast<json*>(s.a);
        *j = json::array();
        r.push_captured(j);
        return true;
    }
    static constexpr slot::ops_table ops{&scalar, &begin_object, &begin_array};
};

template <class T>
struct slot_traits<std::optional<T>> {
    static T& engage(const slot& s) {
        auto& o = *static_cast<std::optional<T>*>(s.a);
        if (!o) o.emplace();
        return *o;
    }
    static bool scalar(const slot& s, const json_scalar& v) {
        auto& o = *static_cast<std::optional<T>*>(s.a);
        if (v.type == json_scalar::kind::null) {
            o.reset();
            return true;
        }
        std::optional<T> saved = o;
        slot inner = slot_for(engage(s));
        if (inner.ops->scalar(inner, v)) return true;
        o = std::move(saved);
        return false;
    }
    static bool begin_object(const slot& s, typed_reader& r) {
        if (slot_traits<T>::ops.begin_object == &reject_container) return false;
        slot inner = slot_for(engage(s));
        return inner.ops->begin_object(inner, r);
    }
    static bool begin_array(const slot& s, typed_reader& r) {
        if (slot_traits<T>::ops.begin_array == &reject_container) return false;
        slot inner = slot_for(engage(s));
        return inner.ops->begin_array(inner, r);
    }
    static constexpr slot::ops_table ops{&scalar, &begin_object, &begin_array};
};

template <class T>
struct slot_traits<std::vector<T>> {
    static slot element(void* target) {
        auto& v = *static_cast<std::vector<T>*>(target);
        v.emplace_back();
        return slot_for(v.back());
    }
    static bool scalar(const slot& s, const json_scalar& v) {
        if (v.type != json_scalar::kind::null) return false;
        static_cast<std::vector<T>*>(s.a)->clear();
        return true;
    }
    static bool begin_array(const slot& s, typed_reader& r) {
        static_cast<std::vector<T>*>(s.a)->clear();
        r.push_sequence(s.a, &element);
        return true;
    }
    static constexpr slot::ops_table ops{&scalar, &reject_container, &begin_array};
};

// Mapped structs: keys are matched against the visit table.
template <class T>
struct slot_traits<T, std::enable_if_t<is_mapped_v<T>>> {
    static slot member(void* target, std::string_view key) {
        slot found;
        T::visit(*static_cast<T*>(target), [&](std::string_view name, auto&& m, auto...) {
            if (!found.ops && name == key) found = slot_for(m);
        });
        return found;
    }
    static json* extra(void* target) { return &static_cast<T*>(target)->extra; }
    static bool scalar(const slot&, const json_scalar& v) { return v.type == json_scalar::kind::null; }
    static bool begin_object(const slot& s, typed_reader& r) {
        r.push_record(s.a, &member, &extra);
        return true;
    }
    static constexpr slot::ops_table ops{&scalar, &begin_object, &reject_container};
};

template <class T>
slot slot_for(T& member) {
    if constexpr (std::is_const_v<T>) {
        static_assert(!std::is_const_v<T>, "cannot read into a const member");
        return {};
    } else if constexpr (has_slot_proxy<T>::value) {
        return member.as_slot();
    } else {
        return {&member, nullptr, &slot_traits<T>::ops};
    }
}

// ---- entry points ----

/// Parses `text` into `out`. False on malformed JSON, a non-object, a misfit inside a typed array,
/// or a missing `required_key` at the top level.
template <class T>
bool read_json(std::string_view text, T& out, std::string_view required_key = {}) {
    typed_reader reader(out, required_key);
    // nlohmann's parser (and so from_json) skips a UTF-8 byte-order mark: so does this check.
    if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
    if (text.empty() || text.front() != '{') {
        // A top-level value that is not an object cannot be a mapped struct.
        auto first = text.find_first_not_of(" \t\r\n");
        if (first == std::string_view::npos || text[first] != '{') return false;
    }
    return json::sax_parse(text.begin(), text.end(), &reader) && reader.saw_required();
}

/// Replays a JSON value as SAX events, so a value already parsed reads the same way as text.
template <class Handler>
bool walk(const json& j, Handler& h) {
    switch (j.type()) {
        case json::value_t::null: return h.null();
        case json::value_t::boolean: return h.boolean(j.get<bool>());
        case json::value_t::number_integer: return h.number_integer(j.get<std::int64_t>());
        case json::value_t::number_unsigned: return h.number_unsigned(j.get<std::uint64_t>());
        case json::value_t::number_float: return h.number_float(j.get<double>(), std::string());
        case json::value_t::string: {
            std::string copy = j.get_ref<const std::string&>();
            return h.string(copy);
        }
        case json::value_t::object: {
            if (!h.start_object(j.size())) return false;
            for (const auto& [k, v] : j.items()) {
                std::string key = k;
                if (!h.key(key) || !walk(v, h)) return false;
            }
            return h.end_object();
        }
        case json::value_t::array: {
            if (!h.start_array(j.size())) return false;
            for (const auto& v : j)
                if (!walk(v, h)) return false;
            return h.end_array();
        }
        default: return false;
    }
}

template <class T>
bool read_json_value(const json& j, T& out) {
    if (!j.is_object()) return false;
    typed_reader reader(out);
    return walk(j, reader);
}

}  // namespace sturdy::detail

namespace sturdy {

/// nlohmann::json conversion for every sturdy response and request type (to_json: json_mapping.hpp).
template <class T, std::enable_if_t<detail::is_mapped_v<T>, int> = 0>
void from_json(const nlohmann::json& j, T& value) {
    // Let nlohmann raise its own type_error for a non-object, whatever its version's signatures.
    if (!j.is_object()) (void)j.get_ref<const nlohmann::json::object_t&>();
    value = T{};
    if (!detail::read_json_value(j, value)) throw std::invalid_argument("JSON does not fit " + std::string(typeid(T).name()));
}

}  // namespace sturdy

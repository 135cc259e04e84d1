#pragma once
// Fuzz check for the typed JSON reader (detail/json_reader.hpp) as the client uses it on replies
// and stream chunks: read_json into chat_response, chat_chunk, model_list, model_info and
// embedding_response. The input is the reply body.
//
// Invariants, for each type T:
//  1. read_json never throws and never crashes; it returns false or fills T.
//  2. Normalisation is idempotent: when read_json(text, t) succeeds, to_json(t) dumped and read
//     again gives a T whose to_json is the same JSON. Reading is lossless up to that first
//     normalisation (known fields of the wrong type go to `extra`, numbers take the member's type).
//     This is what holds rather than "to_json(t) equals the input": the input may have duplicate
//     keys, numbers of another type, or nulls where a member has a default.
//  3. Text and DOM agree: when the input has no duplicate keys, read_json(text) succeeds exactly
//     when nlohmann parses it and from_json (json.get<T>()) accepts it, and both give the same JSON.
//  4. Reading loses nothing: every non-empty value of the input (without duplicate keys) is in
//     to_json(t), strings and booleans unchanged, whether a member or `extra` holds it.
//  5. The required key the client passes ("choices", "data", "id") is only reported present when
//     the top-level object has it.

#include "fuzz_support.hpp"

#include <sturdy/chat.hpp>
#include <sturdy/embeddings.hpp>
#include <sturdy/models.hpp>

#include <nlohmann/json.hpp>

#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace sturdy_fuzz {

/// Whether some object in `text` (valid JSON) has the same key twice: then which value wins is
/// not defined by JSON, and the text and DOM readings may legitimately differ.
inline bool has_duplicate_keys(std::string_view text) {
    std::vector<std::set<std::string>> open;
    bool duplicate = false;
    nlohmann::json::parser_callback_t cb = [&](int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
        using ev = nlohmann::json::parse_event_t;
        if (event == ev::object_start)
            open.emplace_back();
        else if (event == ev::object_end)
            open.pop_back();
        else if (event == ev::key && !open.empty() && !open.back().insert(parsed.get<std::string>()).second)
            duplicate = true;
        return true;
    };
    const bool parsed = !nlohmann::json::parse(text.begin(), text.end(), cb, false).is_discarded();
    return parsed && duplicate;
}

/// Whether reading kept what the input said: every key of `in` whose value is not null, "" or []
/// is in `out`, with the same string or boolean, recursively through objects and equal-length
/// arrays. (Numbers may change type: an int member wraps, a float member rounds.) Returns the
/// path of the first value lost, or "".
inline std::string lost_in_reading(const nlohmann::json& in, const nlohmann::json& out, const std::string& path) {
    if (in.is_string() || in.is_boolean()) return in == out ? std::string() : path;
    if (in.is_object() && out.is_object()) {
        for (const auto& [key, value] : in.items()) {
            if (value.is_null() || (value.is_string() && value.get_ref<const std::string&>().empty()) ||
                (value.is_array() && value.empty()))
                continue;
            if (!out.contains(key)) return path + "/" + key;
            if (auto lost = lost_in_reading(value, out[key], path + "/" + key); !lost.empty()) return lost;
        }
        return {};
    }
    if (in.is_array() && out.is_array() && in.size() == out.size()) {
        for (std::size_t i = 0; i < in.size(); ++i)
            if (auto lost = lost_in_reading(in[i], out[i], path + "/" + std::to_string(i)); !lost.empty()) return lost;
        return {};
    }
    if (in.is_object() || in.is_array())
        return in.type() == out.type() ? std::string() : path + " (" + in.type_name() + ")";
    return {};
}

template <class T>
void check_typed_reader(std::string_view text, std::string_view type_name, std::string_view required_key) {
    const std::string label(type_name);
    T first;
    const bool read = sturdy::detail::read_json(text, first);

    if (read) {
        const nlohmann::json once = first;
        const std::string written = once.dump();
        T second;
        require(sturdy::detail::read_json(written, second), label + ": what to_json writes reads back",
                escaped(written));
        const nlohmann::json twice = second;
        if (once != twice)
            require(false, label + ": read(write(read(x))) == read(x)",
                    "first " + escaped(written, 400) + " then " + escaped(twice.dump(), 400));
    }

    // The client's call: with the key that makes a reply a reply.
    T with_key;
    const bool has_key = sturdy::detail::read_json(text, with_key, required_key);
    require(!has_key || read, label + ": a required key never turns a refused text into an accepted one");

    const auto dom = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
    if (has_key) {
        require(dom.is_object() && dom.contains(std::string(required_key)),
                label + ": read_json reports a required key only when the object has it", std::string(required_key));
    }
    if (dom.is_discarded() || has_duplicate_keys(text)) {
        require(!dom.is_discarded() || !read, label + ": read_json accepts only what nlohmann parses");
        return;
    }
    bool dom_read = false;
    nlohmann::json from_dom;
    try {
        from_dom = dom.get<T>();
        dom_read = true;
    } catch (const nlohmann::json::exception&) {
    } catch (const std::invalid_argument&) {}
    require(dom_read == read, label + ": text and DOM readings accept the same inputs",
            std::string("read_json ") + (read ? "accepted" : "refused") + ", from_json " +
                (dom_read ? "accepted" : "refused"));
    if (read) {
        const nlohmann::json from_text = first;
        if (auto lost = lost_in_reading(dom, from_text, ""); !lost.empty())
            require(false, label + ": reading keeps every value, known or not",
                    lost + " in " + escaped(from_text.dump(), 300));
        if (from_text != from_dom)
            require(false, label + ": text and DOM readings give the same value",
                    escaped(from_text.dump(), 300) + " vs " + escaped(from_dom.dump(), 300));
    }
}

inline void check_json_reader(const std::uint8_t* data, std::size_t size) {
    const std::string_view text = as_text(data, size);
    check_typed_reader<sturdy::chat_response>(text, "chat_response", "choices");
    check_typed_reader<sturdy::chat_chunk>(text, "chat_chunk", "choices");
    check_typed_reader<sturdy::model_list>(text, "model_list", "data");
    check_typed_reader<sturdy::model_info>(text, "model_info", "id");
    check_typed_reader<sturdy::embedding_response>(text, "embedding_response", "data");
}

}  // namespace sturdy_fuzz

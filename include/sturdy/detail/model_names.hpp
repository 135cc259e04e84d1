#pragma once
// How a table keyed by model id (context windows, prices) finds the entry for the id a server or
// a user gives, which is often more specific than the table's: a dated snapshot, a gateway or
// resource prefix. One rule for every table, so a model is known to all of them or to none.

#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace sturdy::detail {

/// `id` without one trailing snapshot tag, a date (`-2024-07-18`, `-20240718`, `-0718`) or a
/// three-digit version (`-001`); empty when it has none.
inline std::string_view without_snapshot(std::string_view id) {
    auto digits = [&](std::size_t from, std::size_t count) {
        if (from + count > id.size()) return false;
        for (std::size_t i = from; i < from + count; ++i)
            if (id[i] < '0' || id[i] > '9') return false;
        return true;
    };
    if (id.size() > 11) {  // -YYYY-MM-DD
        const std::size_t at = id.size() - 11;
        if (id[at] == '-' && digits(at + 1, 4) && id[at + 5] == '-' && digits(at + 6, 2) && id[at + 8] == '-' &&
            digits(at + 9, 2))
            return id.substr(0, at);
    }
    for (const std::size_t n : {std::size_t{8}, std::size_t{4}, std::size_t{3}}) {  // -YYYYMMDD, -MMDD, -NNN
        if (id.size() <= n + 1) continue;
        const std::size_t at = id.size() - n - 1;
        if (id[at] == '-' && digits(at + 1, n)) return id.substr(0, at);
    }
    return {};
}

/// The entry for `model` in `table`: the exact id first; else the id without its prefix up to
/// the last '/' (a gateway's "openai/gpt-4o", Gemini's "models/gemini-2.0-flash"), and either
/// without one trailing snapshot tag ("gpt-4o-mini-2024-07-18" finds "gpt-4o-mini"). Nothing else
/// is stripped or guessed: "gpt-4.1-nano" never finds "gpt-4.1". `table.end()` when none.
template <class Value>
typename std::map<std::string, Value, std::less<>>::const_iterator find_model(
    const std::map<std::string, Value, std::less<>>& table, std::string_view model) {
    std::string_view id = model;
    if (const auto slash = id.rfind('/'); slash != std::string_view::npos) id.remove_prefix(slash + 1);
    for (const std::string_view candidate : {model, id, without_snapshot(id)}) {
        if (candidate.empty()) continue;
        if (auto it = table.find(candidate); it != table.end()) return it;
    }
    return table.end();
}

}  // namespace sturdy::detail

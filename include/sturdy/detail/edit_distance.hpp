#pragma once
// Edit distance between two short names (model ids), for "did you mean" suggestions.

#include <algorithm>
#include <cstddef>
#include <string_view>
#include <vector>

namespace sturdy::detail {

/// `c` with ASCII letters folded to lower case.
constexpr char fold_ascii(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

/// The optimal-string-alignment distance between `a` and `b` (Damerau-Levenshtein without editing
/// a substring twice): the fewest insertions, deletions, substitutions and swaps of two adjacent
/// characters that turn one into the other. ASCII letters compare case-insensitively, every other
/// byte as itself. Counting stops past `limit`: a distance over it is returned as `limit + 1`,  so a
/// bounded call skips the rows it no longer needs.
inline std::size_t edit_distance(std::string_view a, std::string_view b,
                                 std::size_t limit = static_cast<std::size_t>(-1) - 1) {
    if (a.size() < b.size()) std::swap(a, b);  // b is the shorter: rows of |b| + 1
    if (a.size() - b.size() > limit) return limit + 1;
    if (b.empty()) return a.size();
    const std::size_t width = b.size() + 1;
    // Three rows: the one before last (for swaps), the last, and the one being filled.
    std::vector<std::size_t> rows(3 * width);
    std::size_t* before = rows.data();
    std::size_t* last = before + width;
    std::size_t* row = last + width;
    for (std::size_t j = 0; j < width; ++j) last[j] = j;
    std::size_t last_smallest = 0;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        row[0] = i;
        std::size_t smallest = row[0];
        const char ai = fold_ascii(a[i - 1]);
        for (std::size_t j = 1; j < width; ++j) {
            const char bj = fold_ascii(b[j - 1]);
            std::size_t d = std::min({last[j] + 1, row[j - 1] + 1, last[j - 1] + (ai == bj ? 0u : 1u)});
            if (i > 1 && j > 1 && ai == fold_ascii(b[j - 2]) && fold_ascii(a[i - 2]) == bj)
                d = std::min(d, before[j - 2] + 1);
            row[j] = d;
            smallest = std::min(smallest, d);
        }
        // A cell reads the row above it and (a swap) the one before: past the limit in both, every
        // later row is too.
        if (smallest > limit && last_smallest > limit) return limit + 1;
        last_smallest = smallest;
        std::swap(before, last);
        std::swap(last, row);
    }
    return std::min(last[b.size()], limit + 1);
}

}  // namespace sturdy::detail

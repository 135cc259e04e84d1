#pragma once
/// @file
/// Comparing embeddings: cosine similarity, as teams do before switching models ("does the cheaper
/// model answer like the one we have?": embed both answers, compare).
///
///     auto e = client.embed({"text-embedding-3-small", {answer_a, answer_b}});
///     double same = sturdy::cosine_similarity(e.data[0].values, e.data[1].values);

#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace sturdy {

/// The cosine of the angle between `a` and `b`: 1 for the same direction, 0 for orthogonal, -1
/// for opposite. 0 when either is all zeros (no direction to compare). Throws
/// std::invalid_argument when the sizes differ: vectors from two embedding models are not
/// comparable, and a silent answer would hide that.
///
/// Eight independent sums let the compiler use SIMD without -ffast-math (a single running sum
/// forces one addition after another); the result is within float rounding of the exact value.
inline double cosine_similarity(const float* a, const float* b, std::size_t size) {
    constexpr std::size_t lanes = 8;
    float dot[lanes] = {}, norm_a[lanes] = {}, norm_b[lanes] = {};
    std::size_t i = 0;
    for (; i + lanes <= size; i += lanes) {
        for (std::size_t l = 0; l < lanes; ++l) {
            dot[l] += a[i + l] * b[i + l];
            norm_a[l] += a[i + l] * a[i + l];
            norm_b[l] += b[i + l] * b[i + l];
        }
    }
    double d = 0, na = 0, nb = 0;
    for (std::size_t l = 0; l < lanes; ++l) {
        d += dot[l];
        na += norm_a[l];
        nb += norm_b[l];
    }
    for (; i < size; ++i) {
        d += static_cast<double>(a[i]) * b[i];
        na += static_cast<double>(a[i]) * a[i];
        nb += static_cast<double>(b[i]) * b[i];
    }
    if (na == 0 || nb == 0) return 0;
    const double cosine = d / (std::sqrt(na) * std::sqrt(nb));
    return cosine > 1 ? 1 : cosine < -1 ? -1 : cosine;  // rounding may step just outside
}

/// The same for two vectors of floats, as `embedding::values` holds them.
inline double cosine_similarity(const std::vector<float>& a, const std::vector<float>& b) {
    if (a.size() != b.size())
        throw std::invalid_argument("cosine_similarity: vectors of " + std::to_string(a.size()) + " and " +
                                    std::to_string(b.size()) + " dimensions");
    return cosine_similarity(a.data(), b.data(), a.size());
}

}  // namespace sturdy

#pragma once
// Fuzz check for the base64 embedding decoder (detail/base64.hpp, decode_base64_floats).
//
// Invariants:
//  1. Round trip: the input's bytes (whole float32s of it), base64-encoded here with and without
//     '=' padding, decode to exactly those bytes (compared as bytes, so NaNs count too).
//  2. The input itself as base64 text: decode_base64_floats never crashes; it succeeds exactly
//     when an independent decoder (standard alphabet, trailing '=' optional) reads the text into
//     a whole number n of bytes with n % 4 == 0, and then gives a vector of n / 4 floats holding
//     those bytes.

#include "fuzz_support.hpp"

#include <sturdy/detail/base64.hpp>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sturdy_fuzz {

inline std::string base64_encode(const unsigned char* p, std::size_t n, bool pad) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    for (std::size_t i = 0; i < n; i += 3) {
        const std::size_t left = n - i;
        const std::uint32_t v = (std::uint32_t{p[i]} << 16) | (left > 1 ? std::uint32_t{p[i + 1]} << 8 : 0u) |
                                (left > 2 ? std::uint32_t{p[i + 2]} : 0u);
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        if (left > 1)
            out += alphabet[(v >> 6) & 63];
        else if (pad)
            out += '=';
        if (left > 2)
            out += alphabet[v & 63];
        else if (pad)
            out += '=';
    }
    return out;
}

/// A plain bit-by-bit decoder: nullopt for a character outside the alphabet, or for a length
/// that leaves a lone character (6 bits, not a byte).
inline std::optional<std::vector<unsigned char>> base64_decode_reference(std::string_view in) {
    while (!in.empty() && in.back() == '=') in.remove_suffix(1);
    if (in.size() % 4 == 1) return std::nullopt;
    std::vector<unsigned char> out;
    std::uint32_t bits = 0;
    int count = 0;
    for (char c : in) {
        int v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '+')
            v = 62;
        else if (c == '/')
            v = 63;
        else
            return std::nullopt;
        bits = (bits << 6) | static_cast<std::uint32_t>(v);
        count += 6;
        if (count >= 8) {
            count -= 8;
            out.push_back(static_cast<unsigned char>(bits >> count));
            bits &= (1u << count) - 1;
        }
    }
    return out;
}

inline void check_base64(const std::uint8_t* data, std::size_t size) {
    // 1. Round trip of the bytes as float32s.
    const std::size_t whole = size / 4 * 4;
    for (bool pad : {true, false}) {
        const std::string text = base64_encode(data, whole, pad);
        std::vector<float> out;
        require(sturdy::detail::decode_base64_floats(text, out), "base64: the encoding of float bytes decodes",
                escaped(text));
        require(out.size() == whole / 4, "base64: one float per 4 bytes", std::to_string(out.size()));
        require(whole == 0 || std::memcmp(out.data(), data, whole) == 0,
                "base64: decoding gives back the bytes encoded", escaped(text));
    }

    // 2. The input as text.
    const std::string_view text = as_text(data, size);
    std::vector<float> out;
    const bool ok = sturdy::detail::decode_base64_floats(text, out);
    const auto expected = base64_decode_reference(text);
    const bool expected_ok = expected && expected->size() % 4 == 0;
    require(ok == expected_ok, "base64: accepted exactly when the text is base64 of whole float32s",
            std::string(ok ? "accepted " : "refused ") + escaped(text));
    if (ok) {
        require(out.size() * 4 == expected->size(), "base64: n bytes decode to n / 4 floats");
        require(expected->empty() || std::memcmp(out.data(), expected->data(), expected->size()) == 0,
                "base64: the floats hold the decoded bytes", escaped(text));
    }
}

}  // namespace sturdy_fuzz

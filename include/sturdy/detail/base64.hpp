#pragma once
// Base64 decoding of embedding vectors (little-endian float32), straight into the float storage.

#include <array>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace sturdy::detail {

inline constexpr std::array<std::uint8_t, 256> base64_table = [] {
    std::array<std::uint8_t, 256> t{};
    for (auto& v : t) v = 0xFF;
    constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (std::size_t i = 0; i < alphabet.size(); ++i) t[static_cast<unsigned char>(alphabet[i])] = static_cast<std::uint8_t>(i);
    return t;
}();

/// Decodes standard base64 (padding optional) into `out`. Returns false on a character outside the
/// alphabet or a length that is not a whole number of bytes.
inline bool decode_base64(std::string_view in, unsigned char* out, std::size_t out_size) {
    while (!in.empty() && in.back() == '=') in.remove_suffix(1);
    if (in.size() % 4 == 1 || in.size() / 4 * 3 + (in.size() % 4 ? in.size() % 4 - 1 : 0) != out_size) return false;
    const auto* p = reinterpret_cast<const unsigned char*>(in.data());
    const std::size_t whole = in.size() / 4;
    std::uint32_t bad = 0;
    for (std::size_t i = 0; i < whole; ++i, p += 4, out += 3) {
        const std::uint32_t a = base64_table[p[0]], b = base64_table[p[1]], c = base64_table[p[2]], d = base64_table[p[3]];
        bad |= a | b | c | d;
        const std::uint32_t v = (a << 18) | (b << 12) | (c << 6) | d;
        out[0] = static_cast<unsigned char>(v >> 16);
        out[1] = static_cast<unsigned char>(v >> 8);
        out[2] = static_cast<unsigned char>(v);
    }
    const std::size_t tail = in.size() % 4;
    if (tail) {
        std::uint32_t v = 0;
        for (std::size_t k = 0; k < tail; ++k) {
            bad |= base64_table[p[k]];
            v |= static_cast<std::uint32_t>(base64_table[p[k]]) << (18 - 6 * k);
        }
        out[0] = static_cast<unsigned char>(v >> 16);
        if (tail == 3) out[1] = static_cast<unsigned char>(v >> 8);
    }
    return (bad & 0x80u) == 0;  // 0xFF marks a character outside the alphabet
}

/// Decodes base64 of little-endian float32 values.
inline bool decode_base64_floats(std::string_view in, std::vector<float>& out) {
    std::string_view body = in;
    while (!body.empty() && body.back() == '=') body.remove_suffix(1);
    const std::size_t bytes = body.size() / 4 * 3 + (body.size() % 4 > 1 ? body.size() % 4 - 1 : 0);
    if (bytes % sizeof(float) != 0) return false;
    out.resize(bytes / sizeof(float));
    if (!decode_base64(body, reinterpret_cast<unsigned char*>(out.data()), bytes)) return false;
    const std::uint32_t probe = 1;
    unsigned char first_byte;
    std::memcpy(&first_byte, &probe, 1);
    if (first_byte == 0) {  // a big-endian host: the wire format is little-endian
        for (float& f : out) {
            unsigned char b[4];
            std::memcpy(b, &f, 4);
            std::swap(b[0], b[3]);
            std::swap(b[1], b[2]);
            std::memcpy(&f, b, 4);
        }
    }
    return true;
}

}  // namespace sturdy::detail

#pragma once
// What every fuzz check shares: how an invariant fails, and how to read a fuzz input.
//
// A check is `void check_<target>(const std::uint8_t* data, std::size_t size)`. It returns when
// every invariant holds and throws `check_failure`, naming the invariant, when one does not. The
// fuzz target (tests/fuzz/<target>_fuzz.cpp) turns a throw into an abort that libFuzzer reports;
// tests/unit/test_fuzz_regressions.cpp runs the same check over the saved inputs. Any other
// exception escaping a check is a finding too: these parsers read server bytes and must not throw.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace sturdy_fuzz {

/// An invariant that did not hold.
struct check_failure : std::logic_error {
    using std::logic_error::logic_error;
};

/// Throws check_failure("<invariant>: <detail>") unless `ok`.
inline void require(bool ok, std::string_view invariant, std::string_view detail = {}) {
    if (ok) return;
    std::string what(invariant);
    if (!detail.empty()) what.append(": ").append(detail);
    throw check_failure(what);
}

/// `text` as a C-style escaped literal, cut to `max` bytes: for failure messages.
inline std::string escaped(std::string_view text, std::size_t max = 160) {
    static const char hex[] = "0123456789abcdef";
    std::string out = "\"";
    for (std::size_t i = 0; i < text.size() && i < max; ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c == '\\' || c == '"')
            out += '\\', out += static_cast<char>(c);
        else if (c == '\n')
            out += "\\n";
        else if (c == '\r')
            out += "\\r";
        else if (c >= 0x20 && c < 0x7f)
            out += static_cast<char>(c);
        else
            out += "\\x", out += hex[c >> 4], out += hex[c & 15];
    }
    out += text.size() > max ? "\"..." : "\"";
    return out;
}

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
    return size == 0 ? std::string_view{} : std::string_view(reinterpret_cast<const char*>(data), size);
}

/// A small deterministic generator seeded from the input, for choices "derived from the input"
/// (split points, a clock) that stay reproducible from the saved file alone.
class input_rng {
public:
    explicit input_rng(std::string_view seed) {
        for (char c : seed) state_ = (state_ ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;  // FNV-1a
    }
    std::uint64_t next() {  // splitmix64
        std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    std::size_t below(std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(next() % n); }

private:
    std::uint64_t state_ = 0xcbf29ce484222325ULL;
};

/// A decimal as HTTP headers write it, "[+-]digits[.digits]" (either side may be empty, not both), read by strtod.
inline std::optional<double> strict_decimal(std::string_view s) {
    std::string_view body = s;
    if (!body.empty() && (body[0] == '+' || body[0] == '-')) body.remove_prefix(1);
    bool digit = false, dot = false;
    for (char c : body) {
        if (c >= '0' && c <= '9')
            digit = true;
        else if (c == '.' && !dot)
            dot = true;
        else
            return std::nullopt;
    }
    if (!digit) return std::nullopt;
    const double v = std::strtod(std::string(s).c_str(), nullptr);
    // Near DBL_MAX digit-by-digit reading may round to infinity where strtod does not: not a delay.
    if (!std::isfinite(v) || std::fabs(v) > 1e300) return std::nullopt;
    return v;
}

/// The body of LLVMFuzzerTestOneInput: run the check, and abort with its message on a finding.
template <class Check>
int run_fuzz_check(Check check, const std::uint8_t* data, std::size_t size) {
    try {
        check(data, size);
    } catch (const check_failure& e) {
        std::fprintf(stderr, "\n*** invariant broken: %s\n", e.what());
        std::abort();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "\n*** unexpected exception: %s\n", e.what());
        std::abort();
    }
    return 0;
}

}  // namespace sturdy_fuzz

// libFuzzer target: decode_base64_floats: round trip, and garbage refused or decoded exactly.
// The invariants are in base64_check.hpp, shared with tests/unit/test_fuzz_regressions.cpp.
#include "base64_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return sturdy_fuzz::run_fuzz_check(sturdy_fuzz::check_base64, data, size);
}

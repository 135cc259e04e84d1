// libFuzzer target: sturdy::sse_parser: the same events however the bytes are split.
// The invariants are in sse_check.hpp, shared with tests/unit/test_fuzz_regressions.cpp.
#include "sse_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return sturdy_fuzz::run_fuzz_check(sturdy_fuzz::check_sse, data, size);
}

// libFuzzer target: Retry-After in all its forms: bounded, exact, and HTTP dates that survive formatting.
// The invariants are in retry_after_check.hpp, shared with tests/unit/test_fuzz_regressions.cpp.
#include "retry_after_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return sturdy_fuzz::run_fuzz_check(sturdy_fuzz::check_retry_after, data, size);
}

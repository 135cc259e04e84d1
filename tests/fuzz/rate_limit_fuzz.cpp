// libFuzzer target: x-ratelimit-* headers: parse_reset_duration and a limiter that follows them.
// The invariants are in rate_limit_check.hpp, shared with tests/unit/test_fuzz_regressions.cpp.
#include "rate_limit_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return sturdy_fuzz::run_fuzz_check(sturdy_fuzz::check_rate_limit, data, size);
}

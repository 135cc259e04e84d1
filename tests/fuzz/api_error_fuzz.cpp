// libFuzzer target: status_error and stream_error: no key in any string, body within its limit, kind fits the status.
// The invariants are in api_error_check.hpp, shared with tests/unit/test_fuzz_regressions.cpp.
#include "api_error_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return sturdy_fuzz::run_fuzz_check(sturdy_fuzz::check_api_error, data, size);
}

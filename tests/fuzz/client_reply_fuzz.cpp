// libFuzzer target: a whole reply through basic_client: no key in errors, the streamed text is the text delivered.
// The invariants are in client_reply_check.hpp, shared with tests/unit/test_fuzz_regressions.cpp.
#include "client_reply_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return sturdy_fuzz::run_fuzz_check(sturdy_fuzz::check_client_reply, data, size);
}

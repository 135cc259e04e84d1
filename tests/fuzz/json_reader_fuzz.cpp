// libFuzzer target: read_json into the reply and chunk types: normalisation is idempotent; text and DOM agree.
// The invariants are in json_reader_check.hpp, shared with tests/unit/test_fuzz_regressions.cpp.
#include "json_reader_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return sturdy_fuzz::run_fuzz_check(sturdy_fuzz::check_json_reader, data, size);
}

// A user's program: it includes sturdy's umbrella header and uses it. Built three ways by the
// packaging tests: against an installed sturdy (find_package/), through add_subdirectory()
// (add_subdirectory/), and directly in sturdy's build with strict warnings as errors in C++17
// and C++20 (sturdy_strict_cxx17, sturdy_strict_cxx20).
// STURDY_EXPECTED_VERSION comes from CMake's PROJECT_VERSION, read from version.hpp.
#include <sturdy/sturdy.hpp>

#include <cstdio>
#include <cstring>

#ifndef STURDY_EXPECTED_VERSION
#  error "build with -DSTURDY_EXPECTED_VERSION=\"x.y.z\""
#endif

int main() {
  std::printf("sturdy %s\n", STURDY_VERSION);
  if (std::strcmp(STURDY_VERSION, STURDY_EXPECTED_VERSION) != 0) {
    std::printf("expected version %s\n", STURDY_EXPECTED_VERSION);
    return 1;
  }
  return 0;
}

#pragma once
/// @file
/// Include this (as "support/catch.hpp") instead of Catch2's own headers: it works with Catch2 v2
/// (Debian's single header) and Catch2 v3 (vcpkg, Conan, newer distributions).
///
/// Use only what both versions have: TEST_CASE, SECTION, REQUIRE/CHECK (_FALSE, _NOTHROW,
/// _THROWS, _THROWS_AS, _THROWS_WITH), INFO, CAPTURE, WARN, FAIL, SUCCEED, GENERATE(values(...)),
/// Approx, and REQUIRE_THAT/CHECK_THAT with Catch::Matchers::StartsWith, EndsWith, Equals.
/// (Catch::Matchers::Contains on strings became ContainsSubstring in v3: avoid it.)

#if defined(__has_include)
#  if __has_include(<catch2/catch_test_macros.hpp>)
#    define STURDY_CATCH2_V3 1
#  endif
#endif

#if defined(STURDY_CATCH2_V3)
#  include <catch2/catch_approx.hpp>
#  include <catch2/catch_test_macros.hpp>
#  include <catch2/generators/catch_generators.hpp>
#  include <catch2/matchers/catch_matchers_string.hpp>
using Catch::Approx;  // v2 has it at global scope
#else
#  include <catch2/catch.hpp>
#endif

# One ctest test per Catch2 v2 test case, for sturdy's test executables (tests/CMakeLists.txt).
#
#   sturdy_catch_discover_tests(<target> [PROPERTIES <ctest test properties...>])
#     After each build of <target>, lists its test cases (--list-test-names-only) and registers
#     each as a ctest test named as the case, with the given properties (LABELS, TIMEOUT...).
#     Before the first build, one failing test <target>_NOT_BUILT stands in, with the same
#     properties, so `ctest -L <label>` never passes on an executable that is not there.
#
# Why not Catch2 v2's own catch_discover_tests (Catch.cmake, CatchAddTests.cmake in 2.13): it
# splits the listing as a CMake list, so a case name with an unmatched '[' or ']' ("a
# Retry-After in (0, 60] s") swallows the names after it into one test; and it passes each name
# as it is, so a name that starts with '-' ("--max-retries N ...") is read as an option.
# sturdyCatchAddTests.cmake reads the listing line by line and escapes both.
include_guard(GLOBAL)

set(_STURDY_CATCH_ADD_TESTS_SCRIPT "${CMAKE_CURRENT_LIST_DIR}/sturdyCatchAddTests.cmake")

function(sturdy_catch_discover_tests target)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "" "PROPERTIES")
  set(_tests_file "${CMAKE_CURRENT_BINARY_DIR}/${target}_tests.cmake")
  set(_include_file "${CMAKE_CURRENT_BINARY_DIR}/${target}_include.cmake")
  add_custom_command(TARGET ${target} POST_BUILD
    BYPRODUCTS "${_tests_file}"
    COMMAND "${CMAKE_COMMAND}"
            "-DTEST_EXECUTABLE=$<TARGET_FILE:${target}>"
            "-DTEST_WORKING_DIR=${CMAKE_CURRENT_BINARY_DIR}"
            "-DTEST_PROPERTIES=${ARG_PROPERTIES}"
            "-DCTEST_FILE=${_tests_file}"
            -P "${_STURDY_CATCH_ADD_TESTS_SCRIPT}"
    VERBATIM)
  set(_properties "")
  foreach(_property IN LISTS ARG_PROPERTIES)
    string(APPEND _properties " [==[${_property}]==]")
  endforeach()
  file(WRITE "${_include_file}"
    "if(EXISTS [==[${_tests_file}]==])\n"
    "  include([==[${_tests_file}]==])\n"
    "else()\n"
    "  add_test(${target}_NOT_BUILT ${target}_NOT_BUILT)\n"
    "  set_tests_properties(${target}_NOT_BUILT PROPERTIES${_properties})\n"
    "endif()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${_include_file}")
endfunction()

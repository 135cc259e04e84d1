# Writes the ctest file of one Catch2 v2 test executable: one add_test per test case. Run after
# each build by sturdy_catch_discover_tests (sturdyCatchTests.cmake):
#   cmake -DTEST_EXECUTABLE=<exe> -DTEST_WORKING_DIR=<dir> -DTEST_PROPERTIES=<list>
#         -DCTEST_FILE=<file> -P sturdyCatchAddTests.cmake
# Names are read line by line, never as a CMake list (a name may hold '[', ']' or ';').
cmake_minimum_required(VERSION 3.14)

execute_process(COMMAND "${TEST_EXECUTABLE}" --list-test-names-only
                OUTPUT_VARIABLE _listing ERROR_VARIABLE _errors RESULT_VARIABLE _rc
                WORKING_DIRECTORY "${TEST_WORKING_DIR}")
# Catch2 v2 exits with the number of test cases here (modulo 256); a crash is not a number.
if(NOT _rc MATCHES "^[0-9]+$")
  message(FATAL_ERROR "${TEST_EXECUTABLE} --list-test-names-only failed (${_rc}):\n${_listing}${_errors}")
endif()

set(_properties "")
foreach(_property IN LISTS TEST_PROPERTIES)
  string(APPEND _properties " [==[${_property}]==]")
endforeach()

string(REPLACE "\r" "" _listing "${_listing}")
set(_script "")
set(_count 0)
string(LENGTH "${_listing}" _left)
while(_left GREATER 0)
  string(FIND "${_listing}" "\n" _end)
  if(_end EQUAL -1)
    set(_name "${_listing}")
    set(_listing "")
  else()
    string(SUBSTRING "${_listing}" 0 ${_end} _name)
    math(EXPR _next "${_end} + 1")
    string(SUBSTRING "${_listing}" ${_next} -1 _listing)
  endif()
  string(LENGTH "${_listing}" _left)
  if(_name STREQUAL "")
    continue()
  endif()
  # The test spec that selects exactly this case: Catch2's special characters escaped, and a
  # leading '-' or '~' (an option, an exclusion) turned into a leading wildcard.
  set(_spec "${_name}")
  foreach(_char "\\" "," "[" "]")
    string(REPLACE "${_char}" "\\${_char}" _spec "${_spec}")
  endforeach()
  if(_spec MATCHES "^[-~]")
    string(SUBSTRING "${_spec}" 1 -1 _spec)
    set(_spec "*${_spec}")
  endif()
  string(APPEND _script
    "add_test([==[${_name}]==] [==[${TEST_EXECUTABLE}]==] [==[${_spec}]==])\n"
    "set_tests_properties([==[${_name}]==] PROPERTIES WORKING_DIRECTORY [==[${TEST_WORKING_DIR}]==]${_properties})\n")
  math(EXPR _count "${_count} + 1")
endwhile()

if(_count EQUAL 0)
  message(FATAL_ERROR "${TEST_EXECUTABLE} lists no test cases")
endif()
file(WRITE "${CTEST_FILE}" "${_script}")

# Configure, build and run one consumer project of tests/packaging/, as a ctest test:
#   cmake -DPARAMS=<file> -DCONFIG=<config> -P run_consumer.cmake
# PARAMS is written by tests/packaging/CMakeLists.txt and sets:
#   MODE                 find_package | add_subdirectory
#   CONSUMER_SOURCE_DIR  the consumer project (tests/packaging/<MODE>)
#   WORK_DIR             scratch directory, wiped first: prefix/, build/ and init-cache.cmake
#   STURDY_SOURCE_DIR    sturdy's source tree
#   STURDY_BINARY_DIR    the sturdy build tree to install (find_package mode)
#   INCLUDEDIR           CMAKE_INSTALL_INCLUDEDIR of that build
#   EXPECTED_VERSION     sturdy's PROJECT_VERSION
#   GENERATOR, GENERATOR_PLATFORM, GENERATOR_TOOLSET   of the parent build
#   PASS_VARS, PASS_<var>  cache variables of the parent build to give the consumer
# Nothing is downloaded.
cmake_minimum_required(VERSION 3.14)

if(NOT PARAMS OR NOT EXISTS "${PARAMS}")
  message(FATAL_ERROR "run_consumer.cmake: -DPARAMS=<file> is required")
endif()
include("${PARAMS}")
if(NOT MODE STREQUAL "find_package" AND NOT MODE STREQUAL "add_subdirectory")
  message(FATAL_ERROR "run_consumer.cmake: unknown MODE '${MODE}'")
endif()

function(run_step name)
  string(REPLACE ";" " " _pretty "${ARGN}")
  message(STATUS "[${MODE}] ${name}: ${_pretty}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "[${MODE}] ${name} failed (${_rc})")
  endif()
endfunction()

set(_config_args "")
if(CONFIG)
  set(_config_args --config "${CONFIG}")
endif()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
set(_build "${WORK_DIR}/build")
set(_prefix "${WORK_DIR}/prefix")

# 1. find_package mode: install the sturdy build tree into a scratch prefix.
if(MODE STREQUAL "find_package")
  if(CMAKE_VERSION VERSION_LESS 3.15)
    run_step(install "${CMAKE_COMMAND}" "-DCMAKE_INSTALL_PREFIX=${_prefix}"
             "-DCMAKE_INSTALL_CONFIG_NAME=${CONFIG}" -P "${STURDY_BINARY_DIR}/cmake_install.cmake")
  else()
    run_step(install "${CMAKE_COMMAND}" --install "${STURDY_BINARY_DIR}" --prefix "${_prefix}" ${_config_args})
  endif()
  foreach(_file sturdyConfig.cmake sturdyConfigVersion.cmake sturdyTargets.cmake)
    file(GLOB_RECURSE _found "${_prefix}/*/${_file}")
    if(NOT _found)
      message(FATAL_ERROR "[${MODE}] the install has no ${_file}")
    endif()
  endforeach()
  if(NOT EXISTS "${_prefix}/${INCLUDEDIR}/sturdy/sturdy.hpp")
    message(FATAL_ERROR "[${MODE}] the install has no ${INCLUDEDIR}/sturdy/sturdy.hpp")
  endif()
  # The scratch prefix goes first, ahead of anything the parent build searched.
  set(PASS_CMAKE_PREFIX_PATH "${_prefix}" ${PASS_CMAKE_PREFIX_PATH})
  list(APPEND PASS_VARS CMAKE_PREFIX_PATH)
  list(REMOVE_DUPLICATES PASS_VARS)
endif()

# 2. The consumer's initial cache: the parent's compiler and search settings, and ours.
set(_init "${WORK_DIR}/init-cache.cmake")
file(WRITE "${_init}" "set(STURDY_EXPECTED_VERSION [==[${EXPECTED_VERSION}]==] CACHE STRING \"\")\n")
file(APPEND "${_init}" "set(STURDY_SOURCE_DIR [==[${STURDY_SOURCE_DIR}]==] CACHE PATH \"\")\n")
if(CONFIG)
  file(APPEND "${_init}" "set(CMAKE_BUILD_TYPE [==[${CONFIG}]==] CACHE STRING \"\")\n")
endif()
foreach(_var IN LISTS PASS_VARS)
  file(APPEND "${_init}" "set(${_var} [==[${PASS_${_var}}]==] CACHE STRING \"\")\n")
endforeach()

set(_generator_args "")
if(GENERATOR)
  list(APPEND _generator_args -G "${GENERATOR}")
endif()
if(GENERATOR_PLATFORM)
  list(APPEND _generator_args -A "${GENERATOR_PLATFORM}")
endif()
if(GENERATOR_TOOLSET)
  list(APPEND _generator_args -T "${GENERATOR_TOOLSET}")
endif()

# 3. Configure, build, run.
run_step(configure "${CMAKE_COMMAND}" -C "${_init}" ${_generator_args} -S "${CONSUMER_SOURCE_DIR}" -B "${_build}")
run_step(build "${CMAKE_COMMAND}" --build "${_build}" ${_config_args})

if(MODE STREQUAL "add_subdirectory" AND EXISTS "${_build}/sturdy-build/tests")
  message(FATAL_ERROR "[${MODE}] sturdy's tests were configured although sturdy is a subproject")
endif()

set(_exe "${_build}/bin/sturdy_consumer")
if(EXISTS "${_exe}.exe")
  set(_exe "${_exe}.exe")
endif()
run_step(run "${_exe}")

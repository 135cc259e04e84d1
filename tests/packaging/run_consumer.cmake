# Configure, build and run one consumer project of tests/packaging/, as a ctest test:
#   cmake -DPARAMS=<file> -DCONFIG=<config> -P run_consumer.cmake
# PARAMS is written by tests/packaging/CMakeLists.txt and sets, besides what
# consumer_support.cmake lists:
#   MODE                 find_package | add_subdirectory | fetchcontent | core
#   CONSUMER_SOURCE_DIR  the consumer project (tests/packaging/<MODE>)
#   WORK_DIR             scratch directory, wiped first: prefix/, build/, init-cache.cmake...
#   STURDY_SOURCE_DIR    sturdy's source tree
#   STURDY_BINARY_DIR    the sturdy build tree to install (find_package and core modes)
#   INCLUDEDIR           CMAKE_INSTALL_INCLUDEDIR of that build
#   GIT_EXECUTABLE       git (fetchcontent mode)
#   READELF              readelf (core mode)
# Nothing is downloaded.
cmake_minimum_required(VERSION 3.14)

if(NOT PARAMS OR NOT EXISTS "${PARAMS}")
  message(FATAL_ERROR "run_consumer.cmake: -DPARAMS=<file> is required")
endif()
include("${PARAMS}")
include("${CMAKE_CURRENT_LIST_DIR}/consumer_support.cmake")
if(NOT MODE MATCHES "^(find_package|add_subdirectory|fetchcontent|core)$")
  message(FATAL_ERROR "run_consumer.cmake: unknown MODE '${MODE}'")
endif()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
set(_build "${WORK_DIR}/build")
set(_prefix "${WORK_DIR}/prefix")
set(_cache_pairs STURDY_SOURCE_DIR "${STURDY_SOURCE_DIR}")

# 1. find_package and core: install the sturdy build tree into a scratch prefix.
if(MODE STREQUAL "find_package" OR MODE STREQUAL "core")
  sturdy_install("${STURDY_BINARY_DIR}" "${_prefix}")
  foreach(_file sturdyConfig.cmake sturdyConfigVersion.cmake sturdyCoreTargets.cmake sturdyTargets.cmake)
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

# 2. fetchcontent: a git repository holding exactly the files of sturdy's source tree as they
# are now (tracked and untracked, less what .gitignore ignores; all of it in a tree that is no
# git checkout), committed once. The consumer fetches that commit over file://, as a user's
# project fetches a release tag. Cloning sturdy's own repository instead would test its last
# commit, not the tree under test.
if(MODE STREQUAL "fetchcontent")
  if(NOT GIT_EXECUTABLE)
    message(FATAL_ERROR "[${MODE}] git was not found; it is needed to test FetchContent")
  endif()
  set(_repo "${WORK_DIR}/sturdy.git")
  execute_process(COMMAND "${GIT_EXECUTABLE}" -C "${STURDY_SOURCE_DIR}" rev-parse --show-toplevel
                  OUTPUT_VARIABLE _toplevel OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc ERROR_QUIET)
  if(_rc EQUAL 0)
    get_filename_component(_toplevel "${_toplevel}" REALPATH)
    get_filename_component(_source_real "${STURDY_SOURCE_DIR}" REALPATH)
  endif()
  if(_rc EQUAL 0 AND _toplevel STREQUAL _source_real)
    execute_process(COMMAND "${GIT_EXECUTABLE}" -C "${STURDY_SOURCE_DIR}" ls-files --cached --others --exclude-standard
                    OUTPUT_VARIABLE _files RESULT_VARIABLE _rc)
    if(NOT _rc EQUAL 0)
      message(FATAL_ERROR "[${MODE}] git ls-files failed in ${STURDY_SOURCE_DIR}")
    endif()
    string(REPLACE "\n" ";" _files "${_files}")
    foreach(_file IN LISTS _files)
      if(_file AND EXISTS "${STURDY_SOURCE_DIR}/${_file}" AND NOT IS_DIRECTORY "${STURDY_SOURCE_DIR}/${_file}")
        configure_file("${STURDY_SOURCE_DIR}/${_file}" "${_repo}/${_file}" COPYONLY)
      endif()
    endforeach()
  else()
    file(COPY "${STURDY_SOURCE_DIR}/" DESTINATION "${_repo}" PATTERN "build*" EXCLUDE PATTERN ".git" EXCLUDE)
  endif()
  if(NOT EXISTS "${_repo}/CMakeLists.txt" OR NOT EXISTS "${_repo}/include/sturdy/sturdy.hpp")
    message(FATAL_ERROR "[${MODE}] the snapshot of ${STURDY_SOURCE_DIR} has no CMakeLists.txt or headers")
  endif()
  set(_git "${GIT_EXECUTABLE}" -C "${_repo}" -c init.defaultBranch=main -c user.name=sturdy-tests
           -c user.email=sturdy-tests@localhost -c commit.gpgsign=false)
  sturdy_run_step(git-init ${_git} init -q)
  sturdy_run_step(git-add ${_git} add -A)
  sturdy_run_step(git-commit ${_git} commit -q -m "sturdy under test")
  execute_process(COMMAND ${_git} rev-parse HEAD OUTPUT_VARIABLE _commit OUTPUT_STRIP_TRAILING_WHITESPACE)
  list(APPEND _cache_pairs STURDY_GIT_REPOSITORY "file://${_repo}" STURDY_GIT_TAG "${_commit}")
endif()

# 3. Configure, build, run.
set(_init "${WORK_DIR}/init-cache.cmake")
sturdy_write_init_cache("${_init}" ${_cache_pairs})
sturdy_configure_build("${CONSUMER_SOURCE_DIR}" "${_build}" "${_init}")

if(MODE MATCHES "^(add_subdirectory|fetchcontent)$" AND EXISTS "${_build}/sturdy-build/tests")
  message(FATAL_ERROR "[${MODE}] sturdy's tests were configured although sturdy is a subproject")
endif()

sturdy_program(_exe "${_build}/bin" sturdy_consumer)
sturdy_run_step(run "${_exe}")

# 4. core: the program was linked without libcurl, on the link line and in the binary.
if(MODE STREQUAL "core")
  file(GLOB_RECURSE _link_files "${_build}/build.ninja" "${_build}/*/link.txt")
  if(NOT _link_files)
    message(FATAL_ERROR "[${MODE}] found no link line (build.ninja, link.txt) in ${_build}")
  endif()
  foreach(_file IN LISTS _link_files)
    file(STRINGS "${_file}" _curl_lines REGEX "libcurl|-lcurl")
    if(_curl_lines)
      message(FATAL_ERROR "[${MODE}] ${_file} links libcurl:\n${_curl_lines}")
    endif()
  endforeach()
  if(NOT READELF)
    message(FATAL_ERROR "[${MODE}] readelf was not found; it is needed to check the program's libraries")
  endif()
  execute_process(COMMAND "${READELF}" -d "${_exe}" OUTPUT_VARIABLE _dynamic RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0 OR NOT _dynamic MATCHES "\\(NEEDED\\)")
    message(FATAL_ERROR "[${MODE}] readelf -d ${_exe} failed or shows no NEEDED entry:\n${_dynamic}")
  endif()
  if(_dynamic MATCHES "libcurl")
    message(FATAL_ERROR "[${MODE}] ${_exe} needs libcurl:\n${_dynamic}")
  endif()
  message(STATUS "[${MODE}] no libcurl on the link line or among the program's NEEDED libraries")
endif()

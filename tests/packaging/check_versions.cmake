# sturdy's version is written once, in include/sturdy/version.hpp. This check fails when a
# packaging file says otherwise:
#   cmake -DSOURCE_DIR=<sturdy> [-DVERSION_HEADER=<version.hpp>] -P check_versions.cmake
# - cmake/vcpkg/ports/sturdy/vcpkg.json must carry the same version (a manifest cannot read it);
# - conanfile.py must not write a version of its own, but read version.hpp (set_version);
# - CHANGELOG.md must have a section for it, "## [x.y.z]".
# VERSION_HEADER replaces version.hpp (the test that this check catches a drift uses it).
cmake_minimum_required(VERSION 3.14)

if(NOT SOURCE_DIR)
  message(FATAL_ERROR "check_versions.cmake: -DSOURCE_DIR=<sturdy source tree> is required")
endif()
if(NOT VERSION_HEADER)
  set(VERSION_HEADER "${SOURCE_DIR}/include/sturdy/version.hpp")
endif()

file(STRINGS "${VERSION_HEADER}" _line REGEX "^#[ \t]*define[ \t]+STURDY_VERSION[ \t]+\"")
if(NOT _line MATCHES "\"([^\"]+)\"")
  message(FATAL_ERROR "${VERSION_HEADER} defines no STURDY_VERSION")
endif()
set(_version "${CMAKE_MATCH_1}")
message(STATUS "version.hpp: ${_version}")
set(_drift "")

file(READ "${SOURCE_DIR}/cmake/vcpkg/ports/sturdy/vcpkg.json" _manifest)
if(NOT _manifest MATCHES "\"version(-semver|-string)?\"[ \t\r\n]*:[ \t\r\n]*\"([^\"]+)\"")
  message(FATAL_ERROR "cmake/vcpkg/ports/sturdy/vcpkg.json has no version")
endif()
if(NOT CMAKE_MATCH_2 STREQUAL _version)
  string(APPEND _drift "\n  cmake/vcpkg/ports/sturdy/vcpkg.json has version ${CMAKE_MATCH_2}")
endif()

file(READ "${SOURCE_DIR}/conanfile.py" _recipe)
if(_recipe MATCHES "\n[ \t]+version[ \t]*=[ \t]*[\"']([^\"']*)")
  string(APPEND _drift "\n  conanfile.py sets version = \"${CMAKE_MATCH_1}\" instead of reading version.hpp")
elseif(NOT _recipe MATCHES "def set_version\\(" OR NOT _recipe MATCHES "version\\.hpp")
  string(APPEND _drift "\n  conanfile.py does not read its version from include/sturdy/version.hpp in set_version()")
endif()

file(STRINGS "${SOURCE_DIR}/CHANGELOG.md" _sections REGEX "^## \\[")
string(REPLACE "." "\\." _version_regex "${_version}")
if(NOT _sections MATCHES "## \\[${_version_regex}\\]")
  string(APPEND _drift "\n  CHANGELOG.md has no section \"## [${_version}]\"")
endif()

if(_drift)
  message(FATAL_ERROR "version drift: version.hpp says ${_version}, but${_drift}")
endif()
message(STATUS "vcpkg.json, conanfile.py and CHANGELOG.md agree with version.hpp: ${_version}")

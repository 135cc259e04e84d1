# The vcpkg overlay port (cmake/vcpkg/ports/sturdy), as far as it can be tested without vcpkg,
# which cannot be bootstrapped offline:
#   cmake -DPARAMS=<file> -DCONFIG=<config> -P vcpkg_port.cmake
# 1. vcpkg.json has the dependencies the portfile uses;
# 2. sturdy is configured with exactly the portfile's vcpkg_cmake_configure OPTIONS and installed
#    into a scratch packages directory, as vcpkg_cmake_install does;
# 3. the portfile's remaining steps are done on that tree (vcpkg_cmake_config_fixup's move to
#    share/sturdy, removing debug/, the usage file, vcpkg_install_copyright) and the tree is
#    checked as vcpkg's post-build checks would: CMake files only in share/sturdy, no absolute
#    paths of the build in them, headers present, no binaries (header-only), a copyright;
# 4. for each find_package/target_link_libraries pair of the port's usage file, a project made
#    of exactly those lines is built against the tree and run.
# PARAMS sets what consumer_support.cmake lists, and STURDY_SOURCE_DIR, PORT_DIR, WORK_DIR.
cmake_minimum_required(VERSION 3.14)

if(NOT PARAMS OR NOT EXISTS "${PARAMS}")
  message(FATAL_ERROR "vcpkg_port.cmake: -DPARAMS=<file> is required")
endif()
include("${PARAMS}")
include("${CMAKE_CURRENT_LIST_DIR}/consumer_support.cmake")
set(CONSUMER_CONFIG "${CONFIG}")   # the consumers are built as the parent build is
set(CONFIG Release)                # vcpkg builds sturdy in release (VCPKG_BUILD_TYPE release)

function(fail what)
  message(FATAL_ERROR "[${MODE}] ${what}")
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
set(_packages "${WORK_DIR}/packages")   # vcpkg's CURRENT_PACKAGES_DIR
set(_share "${_packages}/share/sturdy")

# ---- 1. the manifest -----------------------------------------------------------------------
file(READ "${PORT_DIR}/vcpkg.json" _manifest)
if(NOT _manifest MATCHES "\"name\"[ \t\r\n]*:[ \t\r\n]*\"sturdy\"")
  fail("vcpkg.json does not name the port sturdy")
endif()
foreach(_dep curl nlohmann-json)
  if(NOT _manifest MATCHES "\"${_dep}\"")
    fail("vcpkg.json does not depend on ${_dep}")
  endif()
endforeach()
foreach(_dep vcpkg-cmake vcpkg-cmake-config)
  if(NOT _manifest MATCHES "\"name\"[ \t\r\n]*:[ \t\r\n]*\"${_dep}\"[ \t\r\n]*,[ \t\r\n]*\"host\"[ \t\r\n]*:[ \t\r\n]*true")
    fail("vcpkg.json does not have ${_dep} as a host dependency ({\"name\": \"${_dep}\", \"host\": true})")
  endif()
endforeach()

# ---- 2. the portfile's configure OPTIONS, configure and install -------------------------------
file(READ "${PORT_DIR}/portfile.cmake" _portfile)
string(REGEX REPLACE "#[^\n]*" "" _portfile "${_portfile}")   # comments out
if(NOT _portfile MATCHES "vcpkg_cmake_configure\\(([^)]*)\\)")
  fail("portfile.cmake has no vcpkg_cmake_configure(...)")
endif()
string(REGEX REPLACE "[ \t\r\n]+" ";" _configure_args "${CMAKE_MATCH_1}")
set(_options "")
set(_in_options OFF)
foreach(_arg IN LISTS _configure_args)
  if(_arg MATCHES "^[A-Z_]+$")
    set(_in_options OFF)
    if(_arg STREQUAL "OPTIONS" OR _arg STREQUAL "OPTIONS_RELEASE")
      set(_in_options ON)
    endif()
  elseif(_in_options AND _arg)
    if(_arg MATCHES "\\$")
      fail("the portfile's OPTIONS use a variable (${_arg}); this test cannot stand in for vcpkg there")
    endif()
    list(APPEND _options "${_arg}")
  endif()
endforeach()
if(NOT _options)
  fail("portfile.cmake's vcpkg_cmake_configure has no OPTIONS")
endif()
message(STATUS "[${MODE}] the portfile's OPTIONS: ${_options}")

if(_portfile MATCHES "vcpkg_cmake_config_fixup\\(([^)]*)\\)")
  set(_fixup_args "${CMAKE_MATCH_1}")
else()
  fail("portfile.cmake has no vcpkg_cmake_config_fixup(...)")
endif()
set(_config_path "share/sturdy")   # vcpkg_cmake_config_fixup's default: share/${PORT}
if(_fixup_args MATCHES "CONFIG_PATH[ \t\r\n]+\"?([^ \t\r\n\")]+)")
  set(_config_path "${CMAKE_MATCH_1}")
endif()

sturdy_write_init_cache("${WORK_DIR}/init-cache.cmake")
sturdy_configure_build("${STURDY_SOURCE_DIR}" "${WORK_DIR}/build" "${WORK_DIR}/init-cache.cmake" ${_options})
sturdy_install("${WORK_DIR}/build" "${_packages}")

# ---- 3. the portfile's last steps, then vcpkg's checks ------------------------------------
if(NOT EXISTS "${_packages}/${_config_path}/sturdyConfig.cmake")
  fail("the install has no ${_config_path}/sturdyConfig.cmake, where vcpkg_cmake_config_fixup looks")
endif()
if(NOT _config_path STREQUAL "share/sturdy")
  # vcpkg_cmake_config_fixup moves the package's CMake files to share/<port>.
  file(GLOB _config_files "${_packages}/${_config_path}/*")
  file(MAKE_DIRECTORY "${_share}")
  file(COPY ${_config_files} DESTINATION "${_share}")
  file(REMOVE_RECURSE "${_packages}/${_config_path}")
endif()
file(REMOVE_RECURSE "${_packages}/debug")
if(NOT _portfile MATCHES "file\\(INSTALL[^)]*usage")
  fail("portfile.cmake does not install the usage file")
endif()
file(COPY "${PORT_DIR}/usage" DESTINATION "${_share}")
if(NOT _portfile MATCHES "vcpkg_install_copyright\\([^)]*FILE_LIST[ \t\r\n]+\"?\\\${SOURCE_PATH}/([^ \t\r\n\")]+)")
  fail("portfile.cmake has no vcpkg_install_copyright(FILE_LIST \"\${SOURCE_PATH}/...\")")
endif()
set(_license "${STURDY_SOURCE_DIR}/${CMAKE_MATCH_1}")
if(NOT EXISTS "${_license}")
  fail("vcpkg_install_copyright's ${CMAKE_MATCH_1} is not in sturdy's source tree")
endif()
configure_file("${_license}" "${_share}/copyright" COPYONLY)

foreach(_file sturdyConfig.cmake sturdyConfigVersion.cmake sturdyCoreTargets.cmake sturdyTargets.cmake usage copyright)
  if(NOT EXISTS "${_share}/${_file}")
    fail("the port's tree has no share/sturdy/${_file}")
  endif()
endforeach()
if(NOT EXISTS "${_packages}/include/sturdy/sturdy.hpp" OR NOT EXISTS "${_packages}/include/sturdy/version.hpp")
  fail("the port's tree has no include/sturdy/sturdy.hpp or version.hpp")
endif()
file(GLOB_RECURSE _cmake_files RELATIVE "${_packages}" "${_packages}/*.cmake")
foreach(_file IN LISTS _cmake_files)
  if(NOT _file MATCHES "^share/sturdy/")
    fail("${_file} is outside share/sturdy; vcpkg's post-build checks reject that")
  endif()
  file(READ "${_packages}/${_file}" _text)
  foreach(_path "${WORK_DIR}" "${STURDY_SOURCE_DIR}")
    string(FIND "${_text}" "${_path}" _at)
    if(NOT _at EQUAL -1)
      fail("${_file} has the absolute path ${_path}; the installed package would not be relocatable")
    endif()
  endforeach()
endforeach()
file(GLOB_RECURSE _binaries "${_packages}/lib/*" "${_packages}/bin/*")
if(_binaries)
  fail("a header-only port installs no binaries, but there are: ${_binaries}")
endif()

# ---- 4. what the usage file shows ---------------------------------------------------------
file(STRINGS "${PORT_DIR}/usage" _finds REGEX "^[ \t]*find_package\\(")
file(STRINGS "${PORT_DIR}/usage" _links REGEX "^[ \t]*target_link_libraries\\(")
list(LENGTH _finds _find_count)
list(LENGTH _links _link_count)
if(_find_count EQUAL 0 OR NOT _find_count EQUAL _link_count)
  fail("the usage file should show find_package and target_link_libraries lines in pairs")
endif()

set(PASS_CMAKE_PREFIX_PATH "${_packages}" ${PASS_CMAKE_PREFIX_PATH})
list(APPEND PASS_VARS CMAKE_PREFIX_PATH)
list(REMOVE_DUPLICATES PASS_VARS)
set(CONFIG "${CONSUMER_CONFIG}")

math(EXPR _last "${_find_count} - 1")
foreach(_i RANGE ${_last})
  list(GET _finds ${_i} _find)
  list(GET _links ${_i} _link)
  string(STRIP "${_find}" _find)
  string(STRIP "${_link}" _link)
  if(NOT _link MATCHES "^target_link_libraries\\(([A-Za-z0-9_]+)")
    fail("cannot read the target of: ${_link}")
  endif()
  set(_target "${CMAKE_MATCH_1}")
  set(_project "${WORK_DIR}/usage${_i}")
  # The core pair gets the program with its own transport (it includes only headers without
  # libcurl); the other, the program that uses the libcurl client.
  if(_link MATCHES "sturdy::core")
    set(_source "${CMAKE_CURRENT_LIST_DIR}/core_consumer.cpp")
    file(GLOB_RECURSE _headers RELATIVE "${_packages}/include" "${_packages}/include/sturdy/*.hpp")
    set(_includes "")
    foreach(_header IN LISTS _headers)
      if(NOT _header MATCHES "^sturdy/(detail/|curl_transport\\.hpp$|client\\.hpp$|sturdy\\.hpp$)")
        string(APPEND _includes "#include <${_header}>\n")
      endif()
    endforeach()
    file(WRITE "${_project}/core_headers.hpp" "${_includes}")
  else()
    set(_source "${CMAKE_CURRENT_LIST_DIR}/consumer.cpp")
  endif()
  file(WRITE "${_project}/CMakeLists.txt"
    "cmake_minimum_required(VERSION 3.14...3.28)\n"
    "project(sturdy_vcpkg_usage LANGUAGES CXX)\n"
    "set(STURDY_EXPECTED_VERSION \"\" CACHE STRING \"\")\n"
    "add_executable(${_target} [==[${_source}]==])\n"
    "target_include_directories(${_target} PRIVATE \"\${CMAKE_CURRENT_SOURCE_DIR}\")\n"
    "target_compile_definitions(${_target} PRIVATE \"STURDY_EXPECTED_VERSION=\\\"\${STURDY_EXPECTED_VERSION}\\\"\")\n"
    "set_target_properties(${_target} PROPERTIES RUNTIME_OUTPUT_DIRECTORY \"\${CMAKE_BINARY_DIR}/bin$<0:>\")\n"
    "# From the port's usage file:\n"
    "${_find}\n"
    "${_link}\n")
  message(STATUS "[${MODE}] usage: ${_find} / ${_link}")
  sturdy_write_init_cache("${_project}/init-cache.cmake")
  sturdy_configure_build("${_project}" "${_project}/build" "${_project}/init-cache.cmake")
  sturdy_program(_exe "${_project}/build/bin" "${_target}")
  sturdy_run_step(run "${_exe}")
endforeach()

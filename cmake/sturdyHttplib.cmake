# cpp-httplib for sturdy's tests and examples (never for the `sturdy` library itself).
#
# Provides the INTERFACE target `sturdy_httplib`. Link it to get cpp-httplib with the compile
# definitions the installed library was built with. Tried in this order:
#   1. find_package(httplib CONFIG)      vcpkg, Conan, upstream installs: httplib::httplib
#   2. pkg-config module cpp-httplib     Debian/Ubuntu libcpp-httplib-dev: a COMPILED library
#                                        whose Cflags carry -DCPPHTTPLIB_{OPENSSL,ZLIB,BROTLI}_SUPPORT,
#                                        which must match the build of libcpp-httplib.so
#   3. httplib.h + libcpp-httplib without pkg-config: the -D flags are read from the
#      cpp-httplib.pc file next to the library; with no library, httplib.h is used header-only
include_guard(GLOBAL)

if(TARGET sturdy_httplib)
  return()
endif()

find_package(Threads REQUIRED)
add_library(sturdy_httplib INTERFACE)

find_package(httplib CONFIG QUIET)
if(TARGET httplib::httplib)
  # sturdy_httplib is a normal (global) target: make what it links visible everywhere too.
  get_target_property(_sturdy_httplib_imported httplib::httplib IMPORTED)
  get_target_property(_sturdy_httplib_aliased httplib::httplib ALIASED_TARGET)
  if(_sturdy_httplib_imported AND NOT _sturdy_httplib_aliased)
    set_target_properties(httplib::httplib PROPERTIES IMPORTED_GLOBAL TRUE)
  endif()
  target_link_libraries(sturdy_httplib INTERFACE httplib::httplib)
  message(STATUS "sturdy: cpp-httplib from CMake package (${httplib_DIR})")
  return()
endif()

find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(STURDY_CPP_HTTPLIB QUIET IMPORTED_TARGET GLOBAL cpp-httplib)
endif()
if(TARGET PkgConfig::STURDY_CPP_HTTPLIB)
  target_link_libraries(sturdy_httplib INTERFACE PkgConfig::STURDY_CPP_HTTPLIB Threads::Threads)
  message(STATUS "sturdy: cpp-httplib ${STURDY_CPP_HTTPLIB_VERSION} from pkg-config")
  return()
endif()

find_path(STURDY_HTTPLIB_INCLUDE_DIR httplib.h)
find_library(STURDY_HTTPLIB_LIBRARY cpp-httplib)
mark_as_advanced(STURDY_HTTPLIB_INCLUDE_DIR STURDY_HTTPLIB_LIBRARY)
if(NOT STURDY_HTTPLIB_INCLUDE_DIR)
  message(FATAL_ERROR
    "sturdy: cpp-httplib not found (needed by sturdy's tests/examples only). Install it "
    "(Debian/Ubuntu: apt-get install libcpp-httplib-dev pkg-config; vcpkg/Conan: cpp-httplib), "
    "or configure with -DSTURDY_BUILD_TESTS=OFF -DSTURDY_BUILD_EXAMPLES=OFF.")
endif()
target_include_directories(sturdy_httplib SYSTEM INTERFACE "${STURDY_HTTPLIB_INCLUDE_DIR}")
target_link_libraries(sturdy_httplib INTERFACE Threads::Threads)

if(STURDY_HTTPLIB_LIBRARY)
  # A compiled cpp-httplib (Debian's split build). Its header must see the same CPPHTTPLIB_*
  # definitions as the library; they are only recorded in its .pc file, so read them there.
  get_filename_component(_sturdy_httplib_libdir "${STURDY_HTTPLIB_LIBRARY}" DIRECTORY)
  find_file(STURDY_HTTPLIB_PC cpp-httplib.pc
    PATHS "${_sturdy_httplib_libdir}/pkgconfig" "${STURDY_HTTPLIB_INCLUDE_DIR}/../share/pkgconfig"
    NO_DEFAULT_PATH)
  mark_as_advanced(STURDY_HTTPLIB_PC)
  set(_sturdy_httplib_defs "")
  if(STURDY_HTTPLIB_PC)
    file(STRINGS "${STURDY_HTTPLIB_PC}" _sturdy_httplib_cflags REGEX "^Cflags:")
    string(REGEX MATCHALL "-D[A-Za-z0-9_]+(=[^ \t]*)?" _sturdy_httplib_dflags "${_sturdy_httplib_cflags}")
    foreach(_flag IN LISTS _sturdy_httplib_dflags)
      string(SUBSTRING "${_flag}" 2 -1 _def)
      list(APPEND _sturdy_httplib_defs "${_def}")
    endforeach()
  else()
    message(WARNING "sturdy: found ${STURDY_HTTPLIB_LIBRARY} but no cpp-httplib.pc; assuming it "
                    "was built without CPPHTTPLIB_* options")
  endif()
  target_compile_definitions(sturdy_httplib INTERFACE ${_sturdy_httplib_defs})
  target_link_libraries(sturdy_httplib INTERFACE "${STURDY_HTTPLIB_LIBRARY}")
  message(STATUS "sturdy: cpp-httplib library ${STURDY_HTTPLIB_LIBRARY} (defines: ${_sturdy_httplib_defs})")
else()
  message(STATUS "sturdy: cpp-httplib header-only from ${STURDY_HTTPLIB_INCLUDE_DIR}")
endif()

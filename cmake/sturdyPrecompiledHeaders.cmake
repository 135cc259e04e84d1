# Precompiled headers for sturdy's OWN targets (tests, examples), never for the `sturdy` library
# target, so they never reach users. Every file of those targets includes <sturdy/sturdy.hpp>, and
# parsing it (with nlohmann/json and libcurl's headers) is about half of each file's compile time.
#
#   sturdy_target_precompile_headers(<target> <headers...>)
#     Precompiles <headers...> (e.g. <sturdy/sturdy.hpp>) for <target>; they are included before
#     each of its files.
#   sturdy_target_reuse_precompiled_headers(<target> <from>)
#     Compiles <target> with <from>'s precompiled headers. Clang insists that both targets are
#     compiled with the same flags and definitions; use it only for targets made alike.
#
# Both do nothing unless STURDY_PRECOMPILE_HEADERS is ON and CMake is 3.16 or newer.
include_guard(GLOBAL)

function(_sturdy_precompiled_headers_enabled out)
  if(STURDY_PRECOMPILE_HEADERS AND NOT CMAKE_VERSION VERSION_LESS 3.16)
    set(${out} ON PARENT_SCOPE)
  else()
    set(${out} OFF PARENT_SCOPE)
  endif()
endfunction()

function(sturdy_target_precompile_headers target)
  _sturdy_precompiled_headers_enabled(_enabled)
  if(_enabled AND ARGN)
    target_precompile_headers(${target} PRIVATE ${ARGN})
  endif()
endfunction()

function(sturdy_target_reuse_precompiled_headers target from)
  _sturdy_precompiled_headers_enabled(_enabled)
  if(_enabled)
    target_precompile_headers(${target} REUSE_FROM ${from})
  endif()
endfunction()

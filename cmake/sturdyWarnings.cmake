# Warning and sanitizer flags for sturdy's OWN targets (tests, examples, benchmarks).
# Never applied to the `sturdy` library target, so they never reach users.
#
#   sturdy_target_warnings(<target> [WERROR])
#     -Wall -Wextra -Wpedantic -Wshadow -Wconversion (MSVC: /W4 /permissive-),
#     plus -Werror when STURDY_WERROR is ON or WERROR is given,
#     plus the STURDY_SANITIZE sanitizers (see sturdy_target_sanitize).
#   sturdy_target_sanitize(<target>)
#     -fsanitize=${STURDY_SANITIZE} -fno-omit-frame-pointer on compile and link, if set.
include_guard(GLOBAL)

function(sturdy_target_sanitize target)
  if(NOT STURDY_SANITIZE)
    return()
  endif()
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    message(WARNING "sturdy: STURDY_SANITIZE is only supported with GCC and Clang; ignored for ${target}")
    return()
  endif()
  get_target_property(_type ${target} TYPE)
  target_compile_options(${target} PRIVATE -fsanitize=${STURDY_SANITIZE} -fno-omit-frame-pointer)
  if(NOT _type STREQUAL "OBJECT_LIBRARY" AND NOT _type STREQUAL "STATIC_LIBRARY")
    target_link_options(${target} PRIVATE -fsanitize=${STURDY_SANITIZE})
  endif()
endfunction()

function(sturdy_target_warnings target)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "WERROR" "" "")
  if(MSVC)
    target_compile_options(${target} PRIVATE /W4 /permissive-)
    if(STURDY_WERROR OR ARG_WERROR)
      target_compile_options(${target} PRIVATE /WX)
    endif()
  else()
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion)
    if(STURDY_WERROR OR ARG_WERROR)
      target_compile_options(${target} PRIVATE -Werror)
    endif()
  endif()
  sturdy_target_sanitize(${target})
endfunction()

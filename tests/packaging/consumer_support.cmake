# Helpers for the packaging test scripts (run_consumer.cmake, vcpkg_port.cmake), which run with
# cmake -P and first include the PARAMS file tests/packaging/CMakeLists.txt wrote:
#   MODE                 the test's name, for messages
#   GENERATOR, GENERATOR_PLATFORM, GENERATOR_TOOLSET   of the parent build
#   PASS_VARS, PASS_<var>  cache variables of the parent build to give every project configured
#   EXPECTED_VERSION     sturdy's PROJECT_VERSION
include_guard(GLOBAL)

# sturdy_run_step(<name> <command...>): runs the command; the test fails if it does.
function(sturdy_run_step name)
  string(REPLACE ";" " " _pretty "${ARGN}")
  message(STATUS "[${MODE}] ${name}: ${_pretty}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "[${MODE}] ${name} failed (${_rc})")
  endif()
endfunction()

# sturdy_write_init_cache(<file> [<name> <value>]...): an initial-cache file (cmake -C) with the
# parent's PASS_VARS, the build type CONFIG and the given pairs. Lists such as CMAKE_PREFIX_PATH
# survive intact that way, where -D on a command line would need quoting.
function(sturdy_write_init_cache file)
  file(WRITE "${file}" "set(STURDY_EXPECTED_VERSION [==[${EXPECTED_VERSION}]==] CACHE STRING \"\")\n")
  if(CONFIG)
    file(APPEND "${file}" "set(CMAKE_BUILD_TYPE [==[${CONFIG}]==] CACHE STRING \"\")\n")
  endif()
  foreach(_var IN LISTS PASS_VARS)
    file(APPEND "${file}" "set(${_var} [==[${PASS_${_var}}]==] CACHE STRING \"\")\n")
  endforeach()
  set(_args ${ARGN})
  list(LENGTH _args _count)
  if(_count GREATER 0)
    math(EXPR _last "${_count} - 1")
    foreach(_i RANGE 0 ${_last} 2)
      math(EXPR _j "${_i} + 1")
      list(GET _args ${_i} _name)
      list(GET _args ${_j} _value)
      file(APPEND "${file}" "set(${_name} [==[${_value}]==] CACHE STRING \"\")\n")
    endforeach()
  endif()
endfunction()

# sturdy_configure_build(<source> <build> <init-cache> [<cmake args>...]): configure and build a
# project with the parent's generator, in the parent's configuration.
function(sturdy_configure_build source build init)
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
  sturdy_run_step(configure "${CMAKE_COMMAND}" -C "${init}" ${_generator_args} ${ARGN} -S "${source}" -B "${build}")
  set(_config_args "")
  if(CONFIG)
    set(_config_args --config "${CONFIG}")
  endif()
  sturdy_run_step(build "${CMAKE_COMMAND}" --build "${build}" ${_config_args})
endfunction()

# sturdy_install(<build> <prefix>): cmake --install (cmake_install.cmake before CMake 3.15).
function(sturdy_install build prefix)
  if(CMAKE_VERSION VERSION_LESS 3.15)
    sturdy_run_step(install "${CMAKE_COMMAND}" "-DCMAKE_INSTALL_PREFIX=${prefix}"
                    "-DCMAKE_INSTALL_CONFIG_NAME=${CONFIG}" -P "${build}/cmake_install.cmake")
  else()
    set(_config_args "")
    if(CONFIG)
      set(_config_args --config "${CONFIG}")
    endif()
    sturdy_run_step(install "${CMAKE_COMMAND}" --install "${build}" --prefix "${prefix}" ${_config_args})
  endif()
endfunction()

# sturdy_program(<out> <dir> <name>): the path of program <name> built into <dir>.
function(sturdy_program out dir name)
  set(_exe "${dir}/${name}")
  if(EXISTS "${_exe}.exe")
    set(_exe "${_exe}.exe")
  endif()
  set(${out} "${_exe}" PARENT_SCOPE)
endfunction()

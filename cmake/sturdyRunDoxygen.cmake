# Runs Doxygen for the target sturdy_docs (cmake/sturdyDocs.cmake) and fails when it warns:
#   cmake -DDOXYGEN=<doxygen> -DDOXYFILE=<Doxyfile> -DWARNINGS=<its WARN_LOGFILE> -P sturdyRunDoxygen.cmake
# The Doxyfile sends warnings to WARNINGS; they are printed here, and any of them fails the run,
# whatever Doxygen's exit status.
cmake_minimum_required(VERSION 3.14)

file(REMOVE "${WARNINGS}")
# Doxygen makes its output directory only after it opens the warning log: make the log's first.
get_filename_component(_warnings_dir "${WARNINGS}" DIRECTORY)
file(MAKE_DIRECTORY "${_warnings_dir}")
execute_process(COMMAND "${DOXYGEN}" "${DOXYFILE}" RESULT_VARIABLE _rc)
set(_warnings "")
if(EXISTS "${WARNINGS}")
  file(READ "${WARNINGS}" _warnings)
endif()
if(_warnings OR NOT _rc EQUAL 0)
  message(FATAL_ERROR "Doxygen failed (exit status ${_rc}) or warned:\n${_warnings}")
endif()

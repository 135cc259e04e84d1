# The API documentation: target `sturdy_docs` runs Doxygen (cmake/Doxyfile.in) on the public
# headers and writes <build>/docs/html/index.html. Not part of `all`. A Doxygen warning fails
# the target, and the warnings are printed. Without Doxygen there is no target (a status
# message says so); CI installs it and builds the target.
include_guard(GLOBAL)

find_package(Doxygen QUIET)
if(NOT DOXYGEN_FOUND)
  message(STATUS "sturdy: Doxygen not found; no sturdy_docs target (apt-get install doxygen)")
  return()
endif()

set(STURDY_DOCS_OUTPUT_DIR "${PROJECT_BINARY_DIR}/docs")
configure_file("${CMAKE_CURRENT_LIST_DIR}/Doxyfile.in" "${PROJECT_BINARY_DIR}/Doxyfile" @ONLY)
add_custom_target(sturdy_docs
  COMMAND "${CMAKE_COMMAND}" "-DDOXYGEN=$<TARGET_FILE:Doxygen::doxygen>"
          "-DDOXYFILE=${PROJECT_BINARY_DIR}/Doxyfile"
          "-DWARNINGS=${STURDY_DOCS_OUTPUT_DIR}/warnings.log"
          -P "${CMAKE_CURRENT_LIST_DIR}/sturdyRunDoxygen.cmake"
  WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}"
  COMMENT "sturdy API documentation: ${STURDY_DOCS_OUTPUT_DIR}/html/index.html"
  VERBATIM)

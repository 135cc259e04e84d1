# cmake -DDUMP_REQUESTS=<exe> -DSPEC=<openai-openapi.yaml> -DVALIDATOR_DIR=<dir> -DWORK_DIR=<dir>
#       -P validate_requests.cmake
# Dumps the client's request bodies and validates each against its schema in the spec:
# chat_*.json against CreateChatCompletionRequest, embeddings_*.json against CreateEmbeddingRequest.
cmake_minimum_required(VERSION 3.14)

foreach(_var DUMP_REQUESTS SPEC VALIDATOR_DIR WORK_DIR)
  if(NOT DEFINED ${_var})
    message(FATAL_ERROR "validate_requests.cmake: -D${_var}=... is required")
  endif()
endforeach()

if(NOT EXISTS "${SPEC}")
  message(FATAL_ERROR "spec: no OpenAPI spec at ${SPEC} (set STURDY_OPENAI_SPEC to ../shared/spec/openai-openapi.yaml)")
endif()
foreach(_file package.json validate.mjs)
  if(NOT EXISTS "${VALIDATOR_DIR}/${_file}")
    message(FATAL_ERROR "spec: no ${_file} in ${VALIDATOR_DIR} (set STURDY_SPEC_VALIDATOR_DIR)")
  endif()
endforeach()
find_program(NODE node)
find_program(NPM npm)
if(NOT NODE OR NOT NPM)
  message(FATAL_ERROR "spec: the validator needs node and npm, not found on PATH (apt-get install -y nodejs npm)")
endif()

# The validator runs from the build tree: ../shared may be read-only.
set(_validator "${WORK_DIR}/validator")
file(MAKE_DIRECTORY "${_validator}")
foreach(_file package.json validate.mjs)
  file(READ "${VALIDATOR_DIR}/${_file}" _content)
  file(WRITE "${_validator}/${_file}" "${_content}")
endforeach()
# npm install once per package.json content.
file(READ "${_validator}/package.json" _package)
set(_stamp "${_validator}/node_modules/.sturdy-installed")
set(_installed "")
if(EXISTS "${_stamp}")
  file(READ "${_stamp}" _installed)
endif()
if(NOT _installed STREQUAL _package)
  message(STATUS "npm install in ${_validator}")
  execute_process(COMMAND "${NPM}" install --no-audit --no-fund --no-package-lock
                  WORKING_DIRECTORY "${_validator}" RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "spec: npm install failed (${_rc}) in ${_validator}")
  endif()
  file(WRITE "${_stamp}" "${_package}")
endif()

set(_bodies "${WORK_DIR}/bodies")
file(REMOVE_RECURSE "${_bodies}")
execute_process(COMMAND "${DUMP_REQUESTS}" "${_bodies}" RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "spec: dump_requests failed (${_rc})")
endif()

# Controls: a body the spec forbids, per schema. The validator must reject it, or its "ok" for
# the client's bodies would prove nothing.
set(_controls "${WORK_DIR}/controls")
file(REMOVE_RECURSE "${_controls}")
file(WRITE "${_controls}/chat_unknown_role.json"
  [=[{"model": "gpt-4o-mini", "messages": [{"role": "robot", "content": "Hello"}]}]=])
file(WRITE "${_controls}/embeddings_unknown_encoding.json"
  [=[{"model": "text-embedding-3-small", "input": ["Hello"], "encoding_format": "hex"}]=])

set(_failed "")
foreach(_pair "chat_;CreateChatCompletionRequest" "embeddings_;CreateEmbeddingRequest")
  list(GET _pair 0 _prefix)
  list(GET _pair 1 _schema)
  file(GLOB _files "${_bodies}/${_prefix}*.json")
  list(SORT _files)
  if(NOT _files)
    message(FATAL_ERROR "spec: dump_requests wrote no ${_prefix}*.json")
  endif()
  file(GLOB _control "${_controls}/${_prefix}*.json")
  # One run per schema (parsing the spec takes seconds): exits 1 because of the control, so each
  # file's verdict is read from its line: "ok FILE" or "INVALID FILE: errors".
  execute_process(COMMAND "${NODE}" "${_validator}/validate.mjs" "${SPEC}" "${_schema}" ${_files} ${_control}
                  WORKING_DIRECTORY "${_validator}" OUTPUT_VARIABLE _out ERROR_VARIABLE _err RESULT_VARIABLE _rc)
  message("${_schema}:\n${_out}${_err}")
  foreach(_file IN LISTS _files)
    string(FIND "${_out}" "ok ${_file}\n" _at)
    if(_at EQUAL -1)
      list(APPEND _failed "${_file}")
    endif()
  endforeach()
  string(FIND "${_out}" "INVALID ${_control}:" _at)
  if(_at EQUAL -1)
    message(FATAL_ERROR "spec: the validator did not reject ${_control}, which the spec forbids: it cannot be trusted")
  endif()
endforeach()
if(_failed)
  list(JOIN _failed "\n  " _list)
  message(FATAL_ERROR "spec: request bodies that do not validate against the spec (INVALID lines above):\n  ${_list}")
endif()

# cli_common.cmake - what the CLI test scripts (cli_smoke, cli_bench, cli_files, cli_tune)
# share: the argument check, a fresh scratch folder WORK, and the run-and-check helpers below.
#
# include()d at the top of each script, which is run by ctest as
#   cmake -DFP4=<path of fp4gemm> -DWORK=<scratch dir> -P tests/<script>.cmake
# Any failure stops with the command line, its exit code and its output.
#
# FP4_ENV_PREFIX (set by a script before it calls fp4_expect, empty by default): arguments of
# `cmake -E env` run before every command, e.g. --unset=NAME so that the caller's environment
# can not change what the test sees.
get_filename_component(_fp4_script "${CMAKE_SCRIPT_MODE_FILE}" NAME)
if(NOT FP4 OR NOT WORK)
  message(FATAL_ERROR "usage: cmake -DFP4=<fp4gemm binary> -DWORK=<scratch dir> -P ${_fp4_script}")
endif()
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")

# fp4_expect(<exit code> [ENV NAME=VALUE] args...): runs `fp4gemm args...` in WORK (with the
# variable set, if given, and FP4_ENV_PREFIX applied), requires that exit code, and leaves the
# output in OUT and ERR and the command line in LAST.
function(fp4_expect code)
  set(args ${ARGN})
  set(env ${FP4_ENV_PREFIX})
  list(LENGTH args n)
  if(n GREATER 1)
    list(GET args 0 first)
    if(first STREQUAL "ENV")
      list(GET args 1 assignment)
      list(REMOVE_AT args 0 1)
      list(APPEND env "${assignment}")
    endif()
  endif()
  set(prefix)
  list(LENGTH env n_env)
  if(n_env GREATER 0)
    set(prefix "${CMAKE_COMMAND}" -E env ${env})
  endif()
  execute_process(COMMAND ${prefix} "${FP4}" ${args} WORKING_DIRECTORY "${WORK}"
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  list(JOIN args " " cmdline)
  if(NOT rc STREQUAL "${code}")
    message(FATAL_ERROR "fp4gemm ${cmdline}: exit code ${rc}, expected ${code}\n"
                        "--- stdout:\n${out}--- stderr:\n${err}")
  endif()
  message(STATUS "exit ${rc} as expected: fp4gemm ${cmdline}")
  set(OUT "${out}" PARENT_SCOPE)
  set(ERR "${err}" PARENT_SCOPE)
  set(LAST "fp4gemm ${cmdline}" PARENT_SCOPE)
endfunction()

# fp4_require(<text> <regex> <what>): the text must match the regex.
function(fp4_require text regex what)
  if(NOT text MATCHES "${regex}")
    message(FATAL_ERROR "${LAST}: ${what} (no match for '${regex}') in:\n${text}")
  endif()
endfunction()

# A usage or run error is exactly one line on stderr, starting with "fp4gemm".
function(fp4_one_error_line regex)
  fp4_require("${ERR}" "^fp4gemm[^\n]*${regex}[^\n]*\n$" "expected one error line on stderr")
endfunction()

# fp4_same_file(<a> <b> [<what>]): files a and b in WORK hold identical bytes.
function(fp4_same_file a b)
  if(ARGC GREATER 2)
    set(what "${ARGV2}")
  else()
    set(what "the same input and global scale must give the same bytes")
  endif()
  file(SHA256 "${WORK}/${a}" ha)
  file(SHA256 "${WORK}/${b}" hb)
  if(NOT ha STREQUAL hb)
    message(FATAL_ERROR "${LAST}: ${a} and ${b} differ: ${what}")
  endif()
endfunction()

# fp4_size(<file> <bytes>): the file in WORK has exactly that size.
function(fp4_size name bytes)
  file(SIZE "${WORK}/${name}" size)
  if(NOT size EQUAL bytes)
    message(FATAL_ERROR "${LAST}: ${name}: ${size} bytes, expected ${bytes}")
  endif()
endfunction()

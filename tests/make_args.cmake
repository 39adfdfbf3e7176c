# make_args.cmake - `make build CMAKE_ARGS=...` honours CMAKE_ARGS even when the build folder
# exists (issue 7, point 9): the Makefile runs against a stand-in `cmake` that logs its
# arguments, in a scratch build folder that looks configured already.
#
# Run by ctest:  cmake -DSRC=<source dir> -DWORK=<scratch dir> -P tests/make_args.cmake
if(NOT SRC OR NOT WORK)
  message(FATAL_ERROR "usage: cmake -DSRC=<source dir> -DWORK=<scratch dir> -P make_args.cmake")
endif()
find_program(MAKE_PROGRAM NAMES make gmake)
if(NOT MAKE_PROGRAM)
  message("SKIP: no make program")
  return()
endif()
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}/bin" "${WORK}/b")
file(WRITE "${WORK}/b/CMakeCache.txt" "# configured before, without CMAKE_ARGS\n")
file(WRITE "${WORK}/bin/cmake" "#!/bin/sh\necho \"$*\" >> '${WORK}/log'\n")
file(CHMOD "${WORK}/bin/cmake" PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE)

# run_make(<args>...): make build with the stand-in cmake; LOG gets what cmake was asked.
function(run_make)
  file(REMOVE "${WORK}/log")
  execute_process(COMMAND ${CMAKE_COMMAND} -E env "PATH=${WORK}/bin:$ENV{PATH}"
                          "${MAKE_PROGRAM}" -C "${SRC}" build "BUILD=${WORK}/b" GENERATOR= ${ARGN}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "make build ${ARGN}: exit ${rc}\n${out}${err}")
  endif()
  file(READ "${WORK}/log" log)
  set(LOG "${log}" PARENT_SCOPE)
endfunction()

run_make("CMAKE_ARGS=-DFP4_PROBE=1 -DFP4_OTHER=x")
if(NOT LOG MATCHES "--fresh[^\n]*-DFP4_PROBE=1 -DFP4_OTHER=x")
  message(FATAL_ERROR "CMAKE_ARGS was ignored for an existing build folder; cmake got:\n${LOG}")
endif()
run_make("CMAKE_ARGS=-DFP4_PROBE=1 -DFP4_OTHER=x")
if(LOG MATCHES "--fresh")
  message(FATAL_ERROR "the same CMAKE_ARGS must not configure again; cmake got:\n${LOG}")
endif()
run_make("CMAKE_ARGS=-DFP4_PROBE=2")
if(NOT LOG MATCHES "--fresh[^\n]*-DFP4_PROBE=2")
  message(FATAL_ERROR "changed CMAKE_ARGS must configure afresh; cmake got:\n${LOG}")
endif()
run_make()
if(NOT LOG MATCHES "--fresh")
  message(FATAL_ERROR "dropping CMAKE_ARGS must configure afresh (back to the defaults); "
                      "cmake got:\n${LOG}")
endif()
message(STATUS "make_args: all passed")

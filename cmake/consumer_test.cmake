# consumer_test.cmake - the installed tree as a user sees it (cmake -P, run by ctest):
#   MODE=install       cmake --install into PREFIX (emptied first), check the files, run the
#                      installed tool (it must find its library with no LD_LIBRARY_PATH)
#   MODE=find_package  build examples/consumer (find_package(fp4gemm)) against PREFIX, run it
#   MODE=pkg-config    cc examples/gemm_example.c $(pkg-config --cflags --libs fp4gemm), run it
# Other variables: BUILD_DIR, SOURCE_DIR, WORK, PREFIX, LIBDIR (relative to PREFIX), LIBFILE and
# LINKFILE (libfp4gemm.so.X.Y.Z and libfp4gemm.so, or libfp4gemm.a), SHARED, C_COMPILER, GENERATOR,
# PKG_CONFIG (the program, or empty when none was found: the test then prints SKIP).

function(run_checked what)
  string(REPLACE ";" " " _line "${ARGN}")
  message(STATUS "${what}: ${_line}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out)
  message("${_out}")
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (exit ${_rc}): ${_line}")
  endif()
endfunction()

if(MODE STREQUAL "install")
  file(REMOVE_RECURSE "${PREFIX}")
  run_checked("install" "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${PREFIX}")
  foreach(_f include/fp4gemm.h bin/fp4gemm ${LIBDIR}/${LIBFILE} ${LIBDIR}/${LINKFILE}
             ${LIBDIR}/pkgconfig/fp4gemm.pc
             ${LIBDIR}/cmake/fp4gemm/fp4gemm-config.cmake
             ${LIBDIR}/cmake/fp4gemm/fp4gemm-config-version.cmake
             ${LIBDIR}/cmake/fp4gemm/fp4gemm-targets.cmake)
    if(NOT EXISTS "${PREFIX}/${_f}")
      message(FATAL_ERROR "not installed: ${PREFIX}/${_f}")
    endif()
  endforeach()
  unset(ENV{LD_LIBRARY_PATH})
  run_checked("installed tool" "${PREFIX}/bin/fp4gemm" --version)
  return()
endif()

set(_example "${SOURCE_DIR}/examples/gemm_example.c")
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")

if(MODE STREQUAL "find_package")
  run_checked("configure" "${CMAKE_COMMAND}" -S "${SOURCE_DIR}/examples/consumer" -B "${WORK}"
              -G "${GENERATOR}" "-DCMAKE_C_COMPILER=${C_COMPILER}" -DCMAKE_BUILD_TYPE=Release
              "-DCMAKE_PREFIX_PATH=${PREFIX}")
  run_checked("build" "${CMAKE_COMMAND}" --build "${WORK}" --config Release)
  set(_exe "${WORK}/gemm_example")
  if(NOT EXISTS "${_exe}")
    set(_exe "${WORK}/Release/gemm_example") # a multi-config generator
  endif()
  run_checked("run" "${_exe}")
elseif(MODE STREQUAL "pkg-config")
  if(NOT PKG_CONFIG)
    message("SKIP: pkg-config not found (apt-get install pkg-config)")
    return()
  endif()
  # Only the installed tree: PKG_CONFIG_LIBDIR replaces the default search path.
  set(ENV{PKG_CONFIG_LIBDIR} "${PREFIX}/${LIBDIR}/pkgconfig")
  unset(ENV{PKG_CONFIG_PATH})
  set(_static "")
  if(NOT SHARED)
    set(_static --static) # the static library's dependencies are in Libs.private
  endif()
  execute_process(COMMAND "${PKG_CONFIG}" --cflags --libs ${_static} fp4gemm
                  RESULT_VARIABLE _rc OUTPUT_VARIABLE _flags ERROR_VARIABLE _err
                  OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "pkg-config --cflags --libs ${_static} fp4gemm failed: ${_err}")
  endif()
  message(STATUS "pkg-config --cflags --libs ${_static} fp4gemm: ${_flags}")
  separate_arguments(_flags UNIX_COMMAND "${_flags}")
  # strict C11 as well: the public header must compile cleanly in a user's strict build
  run_checked("compile and link" "${C_COMPILER}" -std=c11 -Wall -Wextra -Wpedantic -Werror
              "${_example}" ${_flags} -o "${WORK}/gemm_example")
  # a prefix outside the loader's path: LD_LIBRARY_PATH, as the README says
  execute_process(COMMAND "${PKG_CONFIG}" --variable=libdir fp4gemm
                  OUTPUT_VARIABLE _libdir OUTPUT_STRIP_TRAILING_WHITESPACE)
  set(ENV{LD_LIBRARY_PATH} "${_libdir}")
  run_checked("run" "${WORK}/gemm_example")
else()
  message(FATAL_ERROR "MODE must be install, find_package or pkg-config, not '${MODE}'")
endif()

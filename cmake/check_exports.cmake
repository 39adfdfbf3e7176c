# check_exports.cmake - the shared library exports exactly the functions that
# include/fp4gemm.h declares (cmake -P, run by ctest as library_exports):
#   nothing else (no internal fp4_ref_*/fp4_cuda_* helper, no cuda* symbol of the static CUDA
#   runtime), and every declared function is there (declared but never defined fails too).
# Variables: NM (the nm program), LIBRARY (the .so), HEADER.
execute_process(COMMAND "${NM}" -D --defined-only "${LIBRARY}"
                RESULT_VARIABLE _rc OUTPUT_VARIABLE _nm ERROR_VARIABLE _err)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "${NM} -D --defined-only ${LIBRARY} failed: ${_err}")
endif()
string(REPLACE "\n" ";" _lines "${_nm}")
set(_exported "")
foreach(_line IN LISTS _lines)
  # "0000000000012345 T fp4_gemm"; absolute symbols (the version node) are not code or data
  if(_line MATCHES "^[0-9a-fA-F]* *([A-Za-z]) ([^ @]+)")
    if(NOT CMAKE_MATCH_1 STREQUAL "A")
      list(APPEND _exported "${CMAKE_MATCH_2}")
    endif()
  endif()
endforeach()
list(REMOVE_DUPLICATES _exported)

# every identifier fp4_xxx that is followed by '(' outside comments is a declared function
file(READ "${HEADER}" _h)
string(REGEX REPLACE "/\\*([^*]|\\*+[^*/])*\\*+/" "" _h "${_h}")
string(REGEX REPLACE "//[^\n]*" "" _h "${_h}")
string(REGEX MATCHALL "fp4_[A-Za-z0-9_]+\\(" _decl "${_h}")
string(REPLACE "(" "" _decl "${_decl}")
list(REMOVE_DUPLICATES _decl)

set(_extra "${_exported}")
list(REMOVE_ITEM _extra ${_decl})
set(_missing "${_decl}")
list(REMOVE_ITEM _missing ${_exported})
list(LENGTH _exported _n)
list(LENGTH _decl _nd)
message(STATUS "${LIBRARY}: ${_n} exported symbols, ${_nd} functions in ${HEADER}")
if(_extra OR _missing)
  string(REPLACE ";" " " _extra "${_extra}")
  string(REPLACE ";" " " _missing "${_missing}")
  message(FATAL_ERROR "exported but not in the header: ${_extra}\n"
                      "declared in the header but not exported: ${_missing}")
endif()
message(STATUS "exports = the header's functions: OK")

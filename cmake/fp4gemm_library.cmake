# fp4gemm_library.cmake - what makes libfp4gemm a library that others link: only the public
# API exported, a SONAME, and the CUDA and C++ runtimes kept as the library's own
# dependencies. Included by CMakeLists.txt once the fp4gemm target has its sources.

add_library(fp4gemm::fp4gemm ALIAS fp4gemm) # the name consumers use, in the tree as installed

# The include directory consumers get: the source tree's include/ in the build, the installed
# one after cmake --install (the plain `PUBLIC include` of CMakeLists.txt can't be exported).
set_property(TARGET fp4gemm PROPERTY INTERFACE_INCLUDE_DIRECTORIES
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include> $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)

# SONAME: while the major version is 0, a minor release may change the ABI, so the SONAME
# carries major.minor (libfp4gemm.so.0.1); from 1.0 on, the major alone.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(FP4GEMM_SOVERSION "${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR}")
else()
  set(FP4GEMM_SOVERSION "${PROJECT_VERSION_MAJOR}")
endif()

# Exported symbols = the public header. Everything is compiled with hidden visibility;
# include/fp4gemm.h gives what it declares default visibility (#pragma GCC visibility), so
# internal functions (fp4_ref_*, fp4_cuda_*, ...) stay inside. The version script is the net
# for what static archives bring in (cudart_static would otherwise export every cuda* symbol
# and clash with the application's own CUDA runtime). Test library_exports checks the result.
set_target_properties(fp4gemm PROPERTIES
  C_VISIBILITY_PRESET hidden
  CUDA_VISIBILITY_PRESET hidden
  VISIBILITY_INLINES_HIDDEN ON
  POSITION_INDEPENDENT_CODE ON # the static library can go into a consumer's shared object
  VERSION ${PROJECT_VERSION}
  SOVERSION ${FP4GEMM_SOVERSION})

if(FP4GEMM_SHARED AND NOT APPLE AND NOT WIN32)
  set(_fp4_map "${CMAKE_CURRENT_SOURCE_DIR}/cmake/fp4gemm.map")
  target_link_options(fp4gemm PRIVATE "LINKER:--version-script=${_fp4_map}")
  set_property(TARGET fp4gemm APPEND PROPERTY LINK_DEPENDS "${_fp4_map}")
  if(NOT FP4GEMM_SANITIZE AND NOT FP4GEMM_TSAN) # sanitizer runtimes: resolved by the executable
    target_link_options(fp4gemm PRIVATE "LINKER:--no-undefined")
  endif()
endif()

# Link dependencies. The shared library links the CUDA runtime statically (cudart_static,
# hidden by the version script) and the C++ runtime that nvcc's host code needs (the link
# runs through the C++ compiler), so a consumer links -lfp4gemm and nothing else. The static
# library cannot carry them: they go to its link interface (the CMake package's
# INTERFACE_LINK_LIBRARIES and the pkg-config file's Libs.private), and a C consumer's
# linker gets the C++ runtime named explicitly.
set(FP4GEMM_PC_LIBS_PRIVATE "-lpthread -lm") # pthreads: src/log.c
if(FP4GEMM_WITH_CUDA AND NOT FP4GEMM_SHARED)
  target_link_libraries(fp4gemm PRIVATE stdc++)
  set(FP4GEMM_PC_LIBS_PRIVATE
      "-L${CUDAToolkit_LIBRARY_DIR} -lcublasLt -lcudart_static -lrt -lpthread -ldl -lstdc++ -lm")
endif()
if(FP4GEMM_WITH_OPENMP AND NOT FP4GEMM_SHARED) # the cpu backend's OpenMP runtime (libgomp)
  string(APPEND FP4GEMM_PC_LIBS_PRIVATE " ${OpenMP_C_FLAGS}")
endif()

# A sanitized library needs the sanitizer runtime in whatever links it.
set(FP4GEMM_PC_LIBS_EXTRA "")
if(FP4GEMM_SANITIZE)
  target_link_options(fp4gemm INTERFACE -fsanitize=address,undefined)
  set(FP4GEMM_PC_LIBS_EXTRA " -fsanitize=address,undefined")
endif()

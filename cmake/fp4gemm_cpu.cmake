# fp4gemm_cpu.cmake - the `cpu` backend's build: its SIMD kernel files, each compiled for its
# instruction set (the backend checks at run time which ones the CPU can run: src/cpu/cpu_simd.c),
# and OpenMP for its threads (built without, single-threaded, when the compiler has none).
# Included by CMakeLists.txt once the fp4gemm target exists.

option(FP4GEMM_OPENMP "Thread the cpu backend with OpenMP when the compiler supports it" ON)

set(_fp4_cpu_arch "${CMAKE_SYSTEM_PROCESSOR}")
if(_fp4_cpu_arch MATCHES "^(x86_64|AMD64|amd64)$" AND CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
  target_sources(fp4gemm PRIVATE src/cpu/cpu_avx2.c src/cpu/cpu_avx512.c)
  set_source_files_properties(src/cpu/cpu_avx2.c PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-O3")
  set_source_files_properties(src/cpu/cpu_avx512.c PROPERTIES
    COMPILE_OPTIONS "-mavx512f;-mavx2;-mfma;-O3")
  set(FP4GEMM_CPU_SIMD "avx512, avx2, generic")
elseif(_fp4_cpu_arch MATCHES "^(aarch64|arm64|ARM64)$")
  target_sources(fp4gemm PRIVATE src/cpu/cpu_neon.c)
  set_source_files_properties(src/cpu/cpu_neon.c PROPERTIES COMPILE_OPTIONS "-O3")
  set(FP4GEMM_CPU_SIMD "neon, generic")
else()
  set(FP4GEMM_CPU_SIMD "generic")
endif()
set_source_files_properties(src/cpu/cpu_generic.c src/cpu/cpu_backend.c PROPERTIES
  COMPILE_OPTIONS "-O3")

set(FP4GEMM_WITH_OPENMP OFF)
if(FP4GEMM_OPENMP)
  find_package(OpenMP COMPONENTS C)
  if(OpenMP_C_FOUND)
    set(FP4GEMM_WITH_OPENMP ON)
    target_link_libraries(fp4gemm PRIVATE OpenMP::OpenMP_C)
  endif()
endif()
if(FP4GEMM_WITH_OPENMP)
  message(STATUS "fp4gemm: cpu backend: SIMD kernels ${FP4GEMM_CPU_SIMD}; OpenMP ${OpenMP_C_VERSION} threads")
else()
  message(STATUS "fp4gemm: cpu backend: SIMD kernels ${FP4GEMM_CPU_SIMD}; no OpenMP "
                 "(FP4GEMM_OPENMP=${FP4GEMM_OPENMP}, or the compiler has none): single-threaded")
endif()

/* cpu_simd.h - the run-time choice of the `cpu` backend's kernel set (src/cpu/cpu_simd.c). */
#ifndef FP4_CPU_SIMD_H
#define FP4_CPU_SIMD_H

#include "cpu_kernels.h"

/* The widest set this CPU can run, or the one FP4GEMM_CPU_SIMD names (auto, avx512, avx2,
 * neon, generic; any case) when the CPU can run it; otherwise a warning is logged and the
 * widest is used. */
const cpu_kernels *cpu_simd_pick(void);
/* The values FP4GEMM_CPU_SIMD takes in this build: "auto, avx512, avx2, generic". */
const char *cpu_simd_list(void);

#endif

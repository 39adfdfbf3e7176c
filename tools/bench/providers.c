/*
 * providers.c - the one table of `fp4gemm bench`'s providers. Everything the report, the
 * chart, the byte counts and the roofline need to know about a provider is in its row; what
 * a launch runs is chosen by its kind (run.c).
 */
#include "bench_internal.h"

#include <string.h>

#define NVFP4_BYTES (0.5 + 1.0 / 16.0) /* an E2M1 nibble + one E4M3 scale per 16 elements */

/* backends: solid; auto: dotted and wider, so it shows on top of the backend it ran;
 * baselines: dashed */
#define SOLID " stroke-width=\"2\""
#define DOTTED " stroke-width=\"3.5\" stroke-linecap=\"round\" stroke-dasharray=\"0.1,6\""
#define DASHED " stroke-width=\"2\" stroke-dasharray=\"7,4\""

static const bench_provider k_table[] = {
    {"cuda_simt", BENCH_KIND_FP4, FP4_BACKEND_CUDA_SIMT, -1,
     "fp4_gemm, backend cuda_simt: NVFP4 A and B", NVFP4_BYTES, BENCH_CEIL_BF16, SOLID, BENCH_WHERE_GPU},
    {"cuda_mma", BENCH_KIND_FP4, FP4_BACKEND_CUDA_MMA, -1,
     "fp4_gemm, backend cuda_mma: NVFP4 A and B", NVFP4_BYTES, BENCH_CEIL_BF16, SOLID, BENCH_WHERE_GPU},
    {"cuda_wgmma", BENCH_KIND_FP4, FP4_BACKEND_CUDA_WGMMA, -1,
     "fp4_gemm, backend cuda_wgmma: NVFP4 A and B", NVFP4_BYTES, BENCH_CEIL_BF16, SOLID, BENCH_WHERE_GPU},
    {"cublaslt", BENCH_KIND_FP4, FP4_BACKEND_CUBLASLT, -1,
     "fp4_gemm, backend cublaslt: NVFP4 A and B", NVFP4_BYTES, BENCH_CEIL_BF16, SOLID, BENCH_WHERE_GPU},
    {"auto", BENCH_KIND_FP4, FP4_BACKEND_AUTO, -1,
     "fp4_gemm, backend auto: what a user of the library gets", NVFP4_BYTES, BENCH_CEIL_BF16,
     DOTTED, BENCH_WHERE_BOTH},
    {"cublas_bf16", BENCH_KIND_CUBLAS_BF16, FP4_BACKEND_AUTO, -1,
     "cuBLASLt BF16 GEMM on the dequantized operands: a Hopper user without FP4", 2.0,
     BENCH_CEIL_BF16, DASHED, BENCH_WHERE_GPU},
    {"cublas_fp8", BENCH_KIND_CUBLAS_FP8, FP4_BACKEND_AUTO, -1,
     "cuBLASLt FP8 E4M3 GEMM, per-tensor scales, TN layout", 1.0, BENCH_CEIL_FP8, DASHED, BENCH_WHERE_GPU},
    {"cublaslt_fp4", BENCH_KIND_CUBLASLT_FP4, FP4_BACKEND_AUTO, -1,
     "cuBLASLt's NVFP4 GEMM called directly (E2M1, VEC16_UE4M3 swizzled scales): Blackwell "
     "only", NVFP4_BYTES, BENCH_CEIL_BF16, DASHED, BENCH_WHERE_GPU},
    {"dequant_cublas", BENCH_KIND_DEQUANT_CUBLAS, FP4_BACKEND_AUTO, -1,
     "fp4_dequantize A and B to BF16 + cuBLASLt BF16 GEMM, timed together", NVFP4_BYTES,
     BENCH_CEIL_BF16, DASHED, BENCH_WHERE_GPU},
    /* the CPU (--device cpu) */
    {"cpu", BENCH_KIND_FP4, FP4_BACKEND_CPU, -1,
     "fp4_gemm, backend cpu (SIMD + OpenMP): NVFP4 A and B", NVFP4_BYTES, BENCH_CEIL_BF16, SOLID,
     BENCH_WHERE_CPU},
    {"cpu_ref", BENCH_KIND_FP4, FP4_BACKEND_CPU_REF, -1,
     "fp4_gemm, backend cpu_ref: the reference triple loop", NVFP4_BYTES, BENCH_CEIL_BF16, SOLID,
     BENCH_WHERE_CPU},
    {"openblas_f32", BENCH_KIND_OPENBLAS_F32, FP4_BACKEND_AUTO, -1,
     "OpenBLAS sgemm (sgemv at M = 1) on the dequantized F32 operands: a CPU user without FP4",
     4.0, BENCH_CEIL_BF16, DASHED, BENCH_WHERE_CPU},
};
#define N_TABLE ((int)(sizeof k_table / sizeof k_table[0]))

int bench_provider_table(bench_provider *out) {
    for (int i = 0; i < N_TABLE && i < BENCH_MAX_PROVIDERS; i++) out[i] = k_table[i];
    return N_TABLE < BENCH_MAX_PROVIDERS ? N_TABLE : BENCH_MAX_PROVIDERS;
}

double bench_kind_in_bytes(bench_kind kind) {
    for (int i = 0; i < N_TABLE; i++)
        if (k_table[i].kind == kind) return k_table[i].in_bytes;
    return NVFP4_BYTES;
}

const char *bench_ceiling_name(bench_ceiling c) { return c == BENCH_CEIL_FP8 ? "fp8" : "bf16"; }

const char *bench_baseline_name(const bench_run *run) {
    return run->on_cpu ? "openblas_f32" : "cublas_bf16";
}

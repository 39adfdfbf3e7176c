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
     "fp4_gemm, backend cuda_simt: NVFP4 A and B", NVFP4_BYTES, BENCH_CEIL_BF16, SOLID},
    {"cuda_mma", BENCH_KIND_FP4, FP4_BACKEND_CUDA_MMA, -1,
     "fp4_gemm, backend cuda_mma: NVFP4 A and B", NVFP4_BYTES, BENCH_CEIL_BF16, SOLID},
    {"cuda_wgmma", BENCH_KIND_FP4, FP4_BACKEND_CUDA_WGMMA, -1,
     "fp4_gemm, backend cuda_wgmma: NVFP4 A and B", NVFP4_BYTES, BENCH_CEIL_BF16, SOLID},
    {"cublaslt", BENCH_KIND_FP4, FP4_BACKEND_CUBLASLT, -1,
     "fp4_gemm, backend cublaslt: NVFP4 A and B", NVFP4_BYTES, BENCH_CEIL_BF16, SOLID},
    {"auto", BENCH_KIND_FP4, FP4_BACKEND_AUTO, -1,
     "fp4_gemm, backend auto: what a user of the library gets", NVFP4_BYTES, BENCH_CEIL_BF16,
     DOTTED},
    {"cublas_bf16", BENCH_KIND_CUBLAS_BF16, FP4_BACKEND_AUTO, -1,
     "cuBLASLt BF16 GEMM on the dequantized operands: a Hopper user without FP4", 2.0,
     BENCH_CEIL_BF16, DASHED},
    {"cublas_fp8", BENCH_KIND_CUBLAS_FP8, FP4_BACKEND_AUTO, -1,
     "cuBLASLt FP8 E4M3 GEMM, per-tensor scales, TN layout", 1.0, BENCH_CEIL_FP8, DASHED},
    {"cublaslt_fp4", BENCH_KIND_CUBLASLT_FP4, FP4_BACKEND_AUTO, -1,
     "cuBLASLt's NVFP4 GEMM called directly (E2M1, VEC16_UE4M3 swizzled scales): Blackwell "
     "only", NVFP4_BYTES, BENCH_CEIL_BF16, DASHED},
    {"dequant_cublas", BENCH_KIND_DEQUANT_CUBLAS, FP4_BACKEND_AUTO, -1,
     "fp4_dequantize A and B to BF16 + cuBLASLt BF16 GEMM, timed together", NVFP4_BYTES,
     BENCH_CEIL_BF16, DASHED},
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

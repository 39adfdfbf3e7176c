/*
 * cublaslt.c - the cuBLASLt plans of the bench's baselines (cublas_bf16, cublas_fp8,
 * cublaslt_fp4, dequant_cublas and the BF16/FP8 ceilings): row-major D[M,N] = A[M,K] B[N,K]^T
 * computed as the column-major TN GEMM D^T = B A^T. What is set on cuBLASLt, and how, is the
 * library's plan code (src/cuda/cublaslt/lt_plan.h), the one the cublaslt backend uses; this
 * file adds the bench's error texts and the fallback to the next candidate.
 */
#include "bench_cuda.h"

#include <stdio.h>
#include <string.h>

void lt_plan_destroy(lt_plan *p) {
    fp4_lt_plan_destroy(&p->core);
    memset(p, 0, sizeof *p);
}

static const char *lt_type_name(cudaDataType_t t) {
#if FP4_LT_HAVE_NVFP4
    if (t == CUDA_R_4F_E2M1) return "NVFP4 (E2M1, VEC16_UE4M3 scales)";
#endif
    return t == CUDA_R_8F_E4M3 ? "FP8 E4M3" : "BF16";
}

/* Builds the plan. Returns 0 when it is ready, 1 when cuBLASLt has no algorithm for it (the
 * reason in p->why: the provider is SKIPPED), -1 on an error (in why). */
int lt_plan_make(bench_cuda *bc, lt_plan *p, cudaDataType_t in_type, int64_t m, int64_t n,
                 int64_t k, fp4_dtype out, char *why) {
    lt_plan_destroy(p);
    int block_scaled = 0;
#if FP4_LT_HAVE_NVFP4
    block_scaled = in_type == CUDA_R_4F_E2M1;
#endif
    const fp4_lt_problem problem = {m, n, k, in_type, block_scaled, out, n, 0};
    fp4_lt_desc desc;
    const char *no = fp4_lt_describe(&problem, &desc);
    if (no) {
        snprintf(p->why, sizeof p->why, "no cuBLASLt description: %s", no);
        return 1;
    }
    const char *failed = "";
    const cublasStatus_t st = fp4_lt_plan_make(bc->lt, &desc, LT_WORKSPACE, &p->core, &failed);
    if (st != CUBLAS_STATUS_SUCCESS) return bench_fail_lt(why, st, failed);
    if (p->core.nalgo < 1) {
        snprintf(p->why, sizeof p->why,
                 "cuBLASLt has no %s GEMM algorithm with %s output for M=%lld N=%lld K=%lld "
                 "on this device (cublasLtMatmulAlgoGetHeuristic: %s, %d algorithms)",
                 lt_type_name(in_type), fp4_dtype_name(out), (long long)m, (long long)n,
                 (long long)k, cublasLtGetStatusString(p->core.heuristic_status),
                 p->core.heuristic_returned);
        return 1;
    }
    p->ready = 1;
    return 0;
}

/* D = alpha * a b^T with our row-major a [m,k] and b [n,k]. */
int lt_run(bench_cuda *bc, lt_plan *p, float alpha, const void *a, const void *a_scale,
           const void *b, const void *b_scale, void *d, char *why) {
    const float beta = 0.0f;
    const fp4_lt_operands ops = fp4_lt_swap_operands(a, a_scale, b, b_scale, d);
    for (;;) {
        const cublasStatus_t st = fp4_lt_plan_run(bc->lt, &p->core, p->cur, &alpha, &beta, &ops,
                                                  bc->workspace, LT_WORKSPACE, bc->stream);
        if (st == CUBLAS_STATUS_SUCCESS) return 0;
        if (st != CUBLAS_STATUS_NOT_SUPPORTED || p->cur + 1 >= p->core.nalgo)
            return bench_fail_lt(why, st, "cublasLtMatmul (every candidate algorithm)");
        p->cur++; /* refused before launching anything: try the next candidate */
    }
}

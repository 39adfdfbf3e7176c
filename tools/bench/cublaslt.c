/*
 * cublaslt.c - the cuBLASLt plans of the bench's baselines (cublas_bf16, cublas_fp8,
 * dequant_cublas and the BF16/FP8 ceilings): row-major D[M,N] = A[M,K] B[N,K]^T computed as
 * the column-major TN GEMM D^T = B A^T, the layout FP8 requires on Hopper.
 * TODO(later issue): this moves into the library as the cublaslt backend's plan code.
 */
#include "bench_cuda.h"

#include <stdio.h>
#include <string.h>

void lt_plan_destroy(lt_plan *p) {
    if (p->lc) (void)cublasLtMatrixLayoutDestroy(p->lc);
    if (p->lb) (void)cublasLtMatrixLayoutDestroy(p->lb);
    if (p->la) (void)cublasLtMatrixLayoutDestroy(p->la);
    if (p->op) (void)cublasLtMatmulDescDestroy(p->op);
    memset(p, 0, sizeof *p);
}

static cudaDataType_t lt_out_type(fp4_dtype out) {
    return out == FP4_DTYPE_F32 ? CUDA_R_32F : out == FP4_DTYPE_F16 ? CUDA_R_16F : CUDA_R_16BF;
}

/* Builds the plan. Returns 0 when it is ready, 1 when cuBLASLt has no algorithm for it (the
 * reason in p->why: the provider is SKIPPED), -1 on an error (in why). In column-major terms
 * (cuBLASLt's): our row-major B [N,K] is a K x N matrix with ld K, used transposed (T); our A
 * [M,K] is K x M with ld K, not transposed (N); D [M,N] row-major is N x M with ld N. This TN
 * form is the one FP8 GEMMs require on Hopper; the BF16 baseline uses it too. With FP8, the
 * per-tensor decode scales are device pointers: cuBLASLt's A scale is our B's. */
int lt_plan_make(bench_cuda *bc, lt_plan *p, cudaDataType_t in_type, int64_t m,
                        int64_t n, int64_t k, fp4_dtype out, const float *scale_a,
                        const float *scale_b, char *why) {
    lt_plan_destroy(p);
    const cudaDataType_t out_type = lt_out_type(out);
    TRY_LT(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t trans_a = CUBLAS_OP_T, trans_b = CUBLAS_OP_N;
    TRY_LT(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a,
                                          sizeof trans_a));
    TRY_LT(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b,
                                          sizeof trans_b));
    if (scale_a && scale_b) {
        TRY_LT(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                                              &scale_b, sizeof scale_b));
        TRY_LT(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                                              &scale_a, sizeof scale_a));
    }
    TRY_LT(cublasLtMatrixLayoutCreate(&p->la, in_type, (uint64_t)k, (uint64_t)n, k));
    TRY_LT(cublasLtMatrixLayoutCreate(&p->lb, in_type, (uint64_t)k, (uint64_t)m, k));
    TRY_LT(cublasLtMatrixLayoutCreate(&p->lc, out_type, (uint64_t)n, (uint64_t)m, n));

    cublasLtMatmulPreference_t pref = NULL;
    TRY_LT(cublasLtMatmulPreferenceCreate(&pref));
    const uint64_t max_ws = LT_WORKSPACE;
    cublasStatus_t st = cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &max_ws, sizeof max_ws);
    cublasLtMatmulHeuristicResult_t results[LT_ALGOS];
    memset(results, 0, sizeof results);
    int count = 0;
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulAlgoGetHeuristic(bc->lt, p->op, p->la, p->lb, p->lc, p->lc, pref,
                                            LT_ALGOS, results, &count);
    (void)cublasLtMatmulPreferenceDestroy(pref);
    p->nalgo = 0;
    p->cur = 0;
    for (int i = 0; st == CUBLAS_STATUS_SUCCESS && i < count && i < LT_ALGOS; i++) {
        if (results[i].state != CUBLAS_STATUS_SUCCESS) continue;
        p->algo[p->nalgo] = results[i].algo;
        p->workspace[p->nalgo] = results[i].workspaceSize;
        p->nalgo++;
    }
    if (st != CUBLAS_STATUS_SUCCESS || p->nalgo < 1) {
        snprintf(p->why, sizeof p->why,
                 "cuBLASLt has no %s GEMM algorithm with %s output for M=%lld N=%lld K=%lld "
                 "on this device (cublasLtMatmulAlgoGetHeuristic: %s, %d algorithms)",
                 in_type == CUDA_R_8F_E4M3 ? "FP8 E4M3" : "BF16", fp4_dtype_name(out),
                 (long long)m, (long long)n, (long long)k,
                 st == CUBLAS_STATUS_SUCCESS ? cublasLtGetStatusString(results[0].state)
                                             : cublasLtGetStatusString(st),
                 count);
        return 1;
    }
    p->ready = 1;
    return 0;
}

/* D = alpha * a b^T with our row-major a [m,k] and b [n,k]. */
int lt_run(bench_cuda *bc, lt_plan *p, float alpha, const void *a, const void *b,
                  void *d, char *why) {
    const float beta = 0.0f;
    for (;;) {
        const cublasStatus_t st =
            cublasLtMatmul(bc->lt, p->op, &alpha, b, p->la, a, p->lb, &beta, d, p->lc, d, p->lc,
                           &p->algo[p->cur], bc->workspace, p->workspace[p->cur], bc->stream);
        if (st == CUBLAS_STATUS_SUCCESS) return 0;
        if (st != CUBLAS_STATUS_NOT_SUPPORTED || p->cur + 1 >= p->nalgo)
            return bench_fail_lt(why, st, "cublasLtMatmul (every candidate algorithm)");
        p->cur++; /* refused before launching anything: try the next candidate */
    }
}


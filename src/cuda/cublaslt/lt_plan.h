/*
 * lt_plan.h - cuBLASLt plans for the row-major GEMM D[m, n] = alpha * A[m, k] B[n, k]^T: the
 * `cublaslt` backend's (NVFP4) and the baselines of `fp4gemm bench` (BF16, FP8 E4M3, NVFP4).
 *
 * Two layers:
 *   lt_desc.c  fp4_lt_describe: a pure function from the problem to a plain struct of every
 *              value set on the cuBLASLt descriptors (types, scale modes, transposes, layouts,
 *              leading dimensions, pointer mode), and fp4_lt_swap_operands. No cuBLASLt call:
 *              tests/test_cublaslt_desc.c checks it on any machine against the documentation.
 *   lt_plan.c  fp4_lt_plan_make applies a description to cuBLASLt handles and asks the
 *              heuristic for its best algorithms; fp4_lt_plan_run launches one of them.
 *
 * NOTE: this pair of files is compiled into the library (its symbols hidden) and, as source,
 * into the `fp4gemm` tool, which may use only the public header and src/format.h of the
 * library: one plan code for the backend and the bench's baselines, without putting a cuBLASLt
 * wrapper for BF16/FP8 into fp4gemm's public API. So it depends on nothing of the library but
 * the public header: cublasLt.h, fp4gemm.h and the C library.
 *
 * The layout (cuBLASLt is column-major): our row-major A [m, k] is cuBLASLt's k x m matrix with
 * ld k, B [n, k] is k x n with ld k, D [m, n] with leading dimension ldd is n x m with ld ldd.
 * So D^T = B A^T is computed as cuBLASLt's D = op(A') op(B') with A' = our B, transa = T, and
 * B' = our A, transb = N: the "TN" form that FP8 and FP4 GEMMs require. Block scales follow
 * their operands: cuBLASLt's A scale is our B's.
 */
#ifndef FP4_LT_PLAN_H
#define FP4_LT_PLAN_H

#include "fp4gemm.h"

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes" /* cublasLt.h declares f() prototypes */
#endif
#include <cublasLt.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* cuBLASLt 12.8 (CUDA 12.8) introduced CUDA_R_4F_E2M1 and the block-scale modes. */
#define FP4_LT_HAVE_NVFP4 (CUBLAS_VERSION >= 120800)

enum { FP4_LT_MAX_ALGOS = 8 }; /* heuristic results kept per plan (the backend's configs) */

/* The problem, in our (row-major) terms. */
typedef struct fp4_lt_problem {
    int64_t m, n, k;            /* D[m, n] = alpha * A[m, k] B[n, k]^T; k a multiple of 16 */
    cudaDataType_t in_type;     /* CUDA_R_4F_E2M1 (NVFP4), CUDA_R_8F_E4M3 or CUDA_R_16BF */
    int block_scaled;           /* E2M1: 1 = VEC16_UE4M3 block scales (the only FP4 mode) */
    fp4_dtype d_dtype;          /* F32, F16 or BF16 */
    int64_t ldd;                /* elements between rows of D, >= n */
    int alpha_on_device;        /* 1: alpha (and beta) are device pointers */
} fp4_lt_problem;

/* One matrix layout (cublasLtMatrixLayoutCreate's arguments; column-major, no batch). */
typedef struct fp4_lt_matrix {
    cudaDataType_t type;
    uint64_t rows, cols;        /* in elements */
    int64_t ld;                 /* in elements (FP4: sub-byte elements, as cuBLASLt counts) */
} fp4_lt_matrix;

/* Everything fp4_lt_plan_make sets; all else is left at cuBLASLt's default (no epilogue,
 * no bias, ORDER_COL, batch 1). */
typedef struct fp4_lt_desc {
    cublasComputeType_t compute_type;    /* CUBLAS_COMPUTE_32F */
    cudaDataType_t scale_type;           /* CUDA_R_32F: the type of alpha and beta */
    cublasLtPointerMode_t pointer_mode;  /* HOST, or DEVICE (alpha_on_device) */
    cublasOperation_t transa, transb;    /* T, N */
    int set_scale_modes;                 /* 1: set A_SCALE_MODE/B_SCALE_MODE below */
    cublasLtMatmulMatrixScale_t a_scale_mode, b_scale_mode; /* VEC16_UE4M3 for NVFP4 */
    fp4_lt_matrix a, b, c, d;            /* cuBLASLt's A (our B), B (our A), C = D */
} fp4_lt_desc;

/* The pointers of one call, in cuBLASLt's order. */
typedef struct fp4_lt_operands {
    const void *a, *a_scale;  /* cuBLASLt's A: our b, b's scales */
    const void *b, *b_scale;  /* cuBLASLt's B: our a, a's scales */
    void *c, *d;              /* both our d (beta = 0: C is not read) */
} fp4_lt_operands;

/* Describes the problem (pure). NULL, or why cuBLASLt can't be described this problem (a
 * static string: an input type it is not written for, block scales on a non-FP4 type, a
 * non-positive size, ldd < n, an output type that is not F32/F16/BF16). */
const char *fp4_lt_describe(const fp4_lt_problem *p, fp4_lt_desc *out);

/* Our operands -> cuBLASLt's: the operand swap (pure). Scales may be NULL (BF16), or the FP8
 * per-tensor decode scales (device floats). */
fp4_lt_operands fp4_lt_swap_operands(const void *a, const void *a_scale, const void *b,
                                     const void *b_scale, void *d);

/* cuBLASLt's type for an output dtype (CUDA_R_32F, _16F, _16BF); -1 for others. */
int fp4_lt_out_type(fp4_dtype d_dtype);

/* ---- the `cublaslt` backend's problem (lt_desc.c, pure) --------------------------------- */

/* Why the cublaslt backend can't run desc (a validated fp4_gemm_desc), by the layout rules
 * it checks before asking cuBLASLt: W4A4 only (cuBLASLt has no NVFP4 x BF16/F16 GEMM), both
 * scale layouts SWIZZLED_128x4, k a multiple of 32, a, b, a_sf, b_sf and d 16-byte aligned.
 * NULL if they hold, else the reason in buf. */
const char *fp4_cublaslt_layout_why_not(const fp4_gemm_desc *desc, char *buf, size_t len);

/* The cuBLASLt problem of a desc that passed fp4_cublaslt_layout_why_not. */
fp4_lt_problem fp4_cublaslt_problem(const fp4_gemm_desc *desc);

/* ---- lt_plan.c: the descriptors made, the heuristic asked ------------------------------- */

typedef struct fp4_lt_plan {
    fp4_lt_desc desc;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;   /* C and D share lc */
    cublasLtMatmulAlgo_t algo[FP4_LT_MAX_ALGOS]; /* the heuristic's, best first */
    size_t algo_workspace[FP4_LT_MAX_ALGOS];
    int nalgo;                           /* 0: cuBLASLt has no algorithm for it */
    cublasStatus_t heuristic_status;     /* cublasLtMatmulAlgoGetHeuristic's answer */
    int heuristic_returned;              /* results it returned (before dropping failed ones) */
} fp4_lt_plan;

/* Creates the descriptors of `desc` and asks the heuristic for up to FP4_LT_MAX_ALGOS
 * algorithms that fit in max_workspace bytes. Returns CUBLAS_STATUS_SUCCESS when the
 * descriptors were made (the plan may still have nalgo = 0: then heuristic_status says what
 * cuBLASLt answered), else the failing call's status with *failed naming it; the plan is then
 * destroyed. Host only: no GPU work, no device memory. */
cublasStatus_t fp4_lt_plan_make(cublasLtHandle_t lt, const fp4_lt_desc *desc,
                                size_t max_workspace, fp4_lt_plan *p, const char **failed);
void fp4_lt_plan_destroy(fp4_lt_plan *p); /* accepts a zeroed or destroyed plan */

/* Enqueues D = alpha * op(A) op(B) with algorithm `algo` (0 <= algo < nalgo) on `stream`.
 * alpha and beta point to floats in host memory (pointer mode HOST) or device memory
 * (DEVICE); beta must be 0. Sets the A/B scale pointers of the plan's descriptor when the
 * operands carry scales (so a plan serves every call of its shape; not thread-safe: one call
 * at a time per plan). workspace: at least algo_workspace[algo] bytes of device memory. */
cublasStatus_t fp4_lt_plan_run(cublasLtHandle_t lt, fp4_lt_plan *p, int algo, const float *alpha,
                               const float *beta, const fp4_lt_operands *ops, void *workspace,
                               size_t workspace_bytes, cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif /* FP4_LT_PLAN_H */

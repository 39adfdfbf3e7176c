/*
 * bench_cuda.h - what the CUDA files of `fp4gemm bench` share (device.c, cublaslt.c,
 * operands.c, run.c): the session, the operands of one point, the cuBLASLt plans, and error
 * helpers that turn a CUDA, cuBLAS or fp4gemm failure into a `why` text. Built only with CUDA.
 */
#ifndef FP4_BENCH_CUDA_H
#define FP4_BENCH_CUDA_H

#include "bench_internal.h"

#include "cuda/cublaslt/lt_plan.h" /* cublasLt.h */

#include <cuda_runtime_api.h>

#include <stddef.h>
#include <stdint.h>

#define WHY 512                        /* every internal `why` buffer has this size */
#define LT_WORKSPACE ((size_t)32 << 20) /* cuBLASLt workspace: NVIDIA's advice for Hopper */
#define MEM_RESERVE ((int64_t)768 << 20) /* device memory left free for cuBLAS, the library */

/* ---- errors (device.c): each writes why[WHY] and returns -1 --------------------------- */
int bench_fail_cuda(char *why, cudaError_t err, const char *what);
int bench_fail_lt(char *why, cublasStatus_t st, const char *what);
int bench_fail_fp4(char *why, const fp4_ctx *ctx, fp4_status st, const char *what);
void bench_copy_why(char *dst, size_t len, const char *src);

#define TRY_CUDA(call)                                                                        \
    do {                                                                                      \
        const cudaError_t try_err_ = (call);                                                  \
        if (try_err_ != cudaSuccess) return bench_fail_cuda(why, try_err_, #call);            \
    } while (0)
#define TRY_LT(call)                                                                          \
    do {                                                                                      \
        const cublasStatus_t try_st_ = (call);                                                \
        if (try_st_ != CUBLAS_STATUS_SUCCESS) return bench_fail_lt(why, try_st_, #call);      \
    } while (0)
#define TRY_FP4(ctx, call, what)                                                              \
    do {                                                                                      \
        const fp4_status try_st_ = (call);                                                    \
        if (try_st_ != FP4_OK) return bench_fail_fp4(why, (ctx), try_st_, (what));            \
    } while (0)

/* ---- the session (device.c) --------------------------------------------------------------- */

/* Offsets in the small device buffer `small`. */
enum {
    SMALL_GS = 0,          /* float[2]: encode global scales of A and B (set 0) */
    SMALL_AMAX = 16,       /* float: amax for the FP8 scale */
    SMALL_F8_SCALE = 32,   /* float at +0 (A) and +16 (B): FP8 decode scales (cuBLASLt's) */
    SMALL_F8_INV = 64,     /* float at +0 (A) and +16 (B): their inverses, used to encode */
    SMALL_CEIL_FP8 = 96,   /* float at +0 and +16: 1.0, the FP8 scales of the FP8 ceiling */
    SMALL_BYTES = 4096
};
struct bench_cuda {
    fp4_ctx *ctx;
    int device;
    cudaStream_t stream;
    cublasLtHandle_t lt;
    void *workspace;       /* LT_WORKSPACE bytes */
    uint8_t *small;        /* SMALL_BYTES */
    int64_t l2_bytes;
    double copy_gbs, bf16_tflops;
    void *arena;           /* one point's buffers; grown as needed, never shrunk */
    size_t arena_bytes;
};

/* After a failure: can the run go on? 1 yes; 0 the CUDA context broke (why says so). */
int bench_context_alive(bench_cuda *bc, char *why);
void bench_release(void **p); /* cudaFree and NULL */

/* ---- cuBLASLt: row-major D[M,N] = A[M,K] B[N,K]^T as the TN GEMM D^T = B A^T (cublaslt.c) --
 * The plans are the library's own code (src/cuda/cublaslt/lt_plan.h, compiled into the tool
 * as source): the baselines describe and launch their GEMMs exactly as the cublaslt backend
 * does. */

/* NOTE: cuBLASLt's heuristic can return an algorithm that cublasLtMatmul then refuses
 * (NOT_SUPPORTED, seen for FP8 on an H200 with cuBLAS 13.1): keep a few and use the first
 * that runs, as NVIDIA's samples advise. */
typedef struct lt_plan {
    int ready;                  /* an algorithm was found */
    char why[WHY];              /* why not, when not */
    fp4_lt_plan core;           /* descriptors and the heuristic's candidates, best first */
    int cur;                    /* the candidate in use */
} lt_plan;

void lt_plan_destroy(lt_plan *p);
/* Builds the plan. 0 ready; 1 cuBLASLt has no algorithm for it (p->why: SKIPPED); -1 error
 * (why). in_type CUDA_R_16BF, CUDA_R_8F_E4M3 or (block-scaled) CUDA_R_4F_E2M1. */
int lt_plan_make(bench_cuda *bc, lt_plan *p, cudaDataType_t in_type, int64_t m, int64_t n,
                 int64_t k, fp4_dtype out, char *why);
/* D = alpha * a b^T with our row-major a [m,k] and b [n,k], on bc->stream; a_scale and
 * b_scale: FP8's per-tensor decode scales (device floats), E2M1's swizzled block scales, or
 * NULL (BF16). */
int lt_run(bench_cuda *bc, lt_plan *p, float alpha, const void *a, const void *a_scale,
           const void *b, const void *b_scale, void *d, char *why);

/* ---- the operands of one point (operands.c) ---------------------------------------------- */

typedef struct operands {
    int64_t m, n, k;
    fp4_dtype out_dtype;
    int64_t out_size;
    /* NVFP4 sets, each [a_q | a_sf | b_q | b_sf] (swizzled scales) */
    uint8_t *q;
    size_t q_stride, q_off_asf, q_off_bq, q_off_bsf;
    /* BF16 sets [a | b] (exactly e2m1 * e4m3) and E4M3 sets [a | b] */
    uint8_t *bf, *f8;
    size_t bf_stride, bf_off_b, f8_stride, f8_off_b;
    int nq, nbf, nf8;        /* sets made of each */
    uint16_t *scratch;       /* (m + n) * k BF16: the generator's source; dequant_cublas' A, B */
    void *d;                 /* [m, n] out_dtype, ldd = n */
    int sets[BENCH_KIND_COUNT];        /* sets each kind rotates over, by bench_kind */
    double in_bytes[BENCH_KIND_COUNT]; /* input bytes one launch reads, by bench_kind */
    float alpha;             /* 1 / (gs_a * gs_b), every provider */
    float gs[2], f8_scale[2];
    int ns;                  /* samples */
    int64_t sm[BENCH_SAMPLES], sn[BENCH_SAMPLES];
    uint64_t seed;           /* the point's: the operands and the samples' positions */
    double ref8[BENCH_SAMPLES], ref8_abs[BENCH_SAMPLES]; /* from the E4M3 bytes and scales */
    lt_plan plan_bf16, plan_fp8, plan_fp4;
    int plan_bf16_made, plan_fp8_made, plan_fp4_made; /* lt_plan_make's result, -2 before */
} operands;

uint8_t *a_q(const operands *o, int s);
uint8_t *a_sf(const operands *o, int s);
uint8_t *b_q(const operands *o, int s);
uint8_t *b_sf(const operands *o, int s);
uint16_t *a_bf(const operands *o, int s);
uint16_t *b_bf(const operands *o, int s);
uint8_t *a_f8(const operands *o, int s);
uint8_t *b_f8(const operands *o, int s);
/* Plans the sets, makes the operands, picks the samples (the positions fp4_gemm_verify draws
 * from o->seed), makes the FP8 reference on them. 0 ok; 1 the point can't be prepared (why:
 * all SKIPPED); -1 error. */
int bench_prepare_point(bench_cuda *bc, const bench_run *run, operands *o, char *why);

#endif /* FP4_BENCH_CUDA_H */

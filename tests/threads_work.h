/*
 * threads_work.h - the work the concurrency tests (test_threads.c, test_threads_gpu.c) run:
 * a job is a quantization, a dequantization or a GEMM whose shapes, types, layouts and input
 * data all follow from one 64-bit seed, run on a context through the public API only, with
 * its output (poisoned before the run) reduced to a 64-bit hash. The same seed gives the same
 * hash on the same context kind, whichever thread runs it and whatever runs beside it: that
 * is what the tests check.
 */
#ifndef FP4_THREADS_WORK_H
#define FP4_THREADS_WORK_H

#include "fp4gemm.h"

#include <stddef.h>
#include <stdint.h>

typedef enum tw_kind { TW_QUANT = 0, TW_DEQUANT = 1, TW_GEMM = 2 } tw_kind;

/* The largest job a context's arena takes. CPU tests keep these small (cpu_ref is a double
 * loop); GPU ones reach k = 4096 so that cuda_mma splits K over its workspace. */
typedef struct tw_limits {
    int64_t max_rows; /* quantize/dequantize rows, GEMM m */
    int64_t max_n;    /* GEMM n */
    int64_t max_k;    /* a multiple of 64 */
    int gpu;          /* 1: GEMMs also name cuda_simt explicitly, k is a multiple of 64 */
} tw_limits;

/* Buffers in the context's memory, allocated once and reused by every job. */
typedef struct tw_arena {
    fp4_ctx *ctx;
    tw_limits lim;
    void *in, *q, *sf, *out, *a, *a_sf, *b, *b_sf;
    float *gs;
    int64_t in_bytes, q_bytes, sf_bytes, out_bytes, a_bytes, b_bytes;
} tw_arena;

typedef struct tw_job {
    tw_kind kind;
    int64_t rows, n, k, ld;   /* rows = GEMM m; ld: ld_in / ld_out / ldd */
    fp4_dtype x_dtype;        /* quant input, dequant output, GEMM A (E2M1/BF16/F16) */
    fp4_dtype d_dtype;        /* GEMM D */
    fp4_sf_layout layout, layout_b;
    fp4_quant_recipe recipe;
    fp4_backend backend;
    float scale;              /* global scale by value (dequant, modelopt) or alpha */
    uint64_t data_seed;
} tw_job;

/* Splitmix of a few numbers: the seed of job i of thread t. */
uint64_t tw_seed(uint64_t base, uint64_t t, uint64_t i);

void tw_job_make(uint64_t seed, const tw_limits *lim, tw_job *job);
/* "gemm m=3 n=40 k=128 a=bf16 d=f16 linear/swizzled cuda_simt" */
void tw_job_describe(const tw_job *job, char *buf, size_t len);

fp4_status tw_arena_alloc(fp4_ctx *ctx, const tw_limits *lim, tw_arena *arena);
void tw_arena_free(tw_arena *arena); /* accepts a zeroed or half-made arena */

/* Runs the job on arena->ctx, on `stream` (GPU; NULL on the CPU), synchronizes, downloads
 * the output and hashes it. On failure returns the status and writes what failed (with
 * fp4_last_error) into err[len]. */
fp4_status tw_job_run(tw_arena *arena, const tw_job *job, struct CUstream_st *stream,
                      uint64_t *hash, char *err, size_t len);

/* A GEMM job's operands in buffers of its own (for CUDA graphs, which replay fixed pointers):
 * inputs uploaded, desc filled (desc.stream NULL: set it), D of d_bytes bytes. */
typedef struct tw_gemm {
    fp4_ctx *ctx;
    fp4_gemm_desc desc;
    void *a, *a_sf, *b, *b_sf, *d;
    int64_t d_bytes;
} tw_gemm;
fp4_status tw_gemm_prepare(fp4_ctx *ctx, const tw_job *job, tw_gemm *g, char *err, size_t len);
void tw_gemm_release(tw_gemm *g); /* accepts a zeroed or half-made one */
/* Downloads D and hashes it as tw_job_run does: the same job gives the same hash. */
fp4_status tw_gemm_hash(tw_gemm *g, uint64_t *hash, char *err, size_t len);

/* One lifecycle cycle on `device` (-1: the CPU): create a context, allocate an arena for
 * `lim`, run the job, free, destroy. 1 if the job's hash is *want (*want 0: stores it there);
 * 0 with what failed in err[len] otherwise. */
int tw_cycle(int device, const tw_limits *lim, const tw_job *job, uint64_t *want, char *err,
             size_t len);
/* `threads` threads (pthreads), each running `cycles` tw_cycle at the same time, all expecting
 * `want`. Prints the first error of each thread that failed; returns the failed cycles (all
 * of them, threads * cycles, if the threads could not be made). */
int tw_cycle_threads(int device, const tw_limits *lim, const tw_job *job, uint64_t want,
                     int threads, int cycles);

/* FNV-1a over bytes, continuing from h (start with TW_HASH_INIT). */
#define TW_HASH_INIT 0xcbf29ce484222325ull
uint64_t tw_hash(uint64_t h, const void *p, int64_t n);

/* Open file descriptors of this process (entries of /proc/self/fd), -1 if unknown. */
int tw_count_fds(void);

#endif /* FP4_THREADS_WORK_H */

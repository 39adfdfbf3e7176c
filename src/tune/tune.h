/*
 * tune.h - what the files of src/tune/ share: the replay plan and the statistics of
 * fp4_measure (measure.c, used by both the host and the CUDA paths), and the CUDA entry points
 * (measure_cuda.cu, verify_cuda.cu; a build without CUDA never reaches them: a GPU context
 * can't exist there). Not installed.
 */
#ifndef FP4_TUNE_H
#define FP4_TUNE_H

#include "fp4gemm.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FP4_MEASURE_TARGET_MS 50.0 /* cheap work gets more replays, until they take this long */

/* desc->min_replays, at least FP4_MEASURE_MIN_REPLAYS. */
int fp4_tune_min_replays(const fp4_measure_desc *desc);

/* How many launches estimate one (after the warm-up launch took first_ms): 3, or 1 when a
 * launch takes 200 ms or more. */
int fp4_tune_estimate_launches(double first_ms);

/* The replay count for launches of est_ms each, L per replay: min_replays raised until the
 * replays take about FP4_MEASURE_TARGET_MS, at most max(min_replays, 100). Writes it to
 * *replays and returns 1 when one warm-up replay plus them exceeds budget_s (> 0). */
int fp4_tune_plan_replays(double est_ms, int launches, int min_replays, double budget_s,
                          int *replays);

/* Sorts us[n] (microseconds per launch, one per replay) and fills median/p20/p80. */
void fp4_tune_summarize(double *us, int n, fp4_measure_result *r);

/* ---- the autotuner's timing (autotune.c, docs/tuning.md "Cost") ---------------------------
 * fp4_measure's method in two steps the tuner drives itself: its own estimate launches (with
 * a cut as soon as a tactic is far slower than the best), then the replays with a plan made
 * from that estimate, without fp4_measure's own warm-up and estimate launches. */

#define FP4_TUNE_TARGET_MS 10.0 /* the tuner's timed replays take about this long, at least */
#define FP4_TUNE_MIN_REPLAYS 5  /* timed replays, at least (long launches: little noise) */
#define FP4_TUNE_MIN_TIMED 20   /* timed launches (replays x launches), at least */
#define FP4_TUNE_LONG_MS 1.0    /* a replay has at least this many ms of launches, up to
                                 * FP4_MEASURE_MIN_LAUNCHES launches (and always every set) */
#define FP4_TUNE_UPLOAD_MS 5.0  /* replays at least this long get no warm-up replay: the
                                 * graph is uploaded instead (the kernels ran just before) */

/* A replay plan: launches per replay (a CUDA graph of them), timed replays, and whether one
 * untimed warm-up replay runs first. */
typedef struct fp4_tune_plan {
    int launches, replays, warmup;
} fp4_tune_plan;

/* The tuner's plan for launches of est_ms each over `sets` input sets: launches = every set,
 * at least max(2, ceil(FP4_TUNE_LONG_MS / est_ms)) up to FP4_MEASURE_MIN_LAUNCHES (so short
 * launches get fp4_measure's 10); replays = enough for FP4_TUNE_TARGET_MS, at least
 * FP4_TUNE_MIN_REPLAYS and FP4_TUNE_MIN_TIMED launches in all, at most
 * FP4_MEASURE_MAX_REPLAYS; a warm-up replay unless a replay takes FP4_TUNE_UPLOAD_MS or more.
 * Returns the plan's time in seconds (est_ms x launches x (replays + warm-up)). */
double fp4_tune_quick_plan(double est_ms, int sets, fp4_tune_plan *plan);

/* Runs `count` launches of d->launch back to back on sets first_set, first_set + 1, ...
 * (mod d->sets) on d->stream (NULL: the legacy stream; no capture here) and writes their
 * total time to *ms: CUDA events around them on a GPU, the host clock on the CPU.
 * Synchronizes. The launch's failure is returned as is. */
fp4_status fp4_tune_time_launches(fp4_ctx *ctx, const fp4_measure_desc *d, int first_set,
                                  int count, double *ms);

/* fp4_measure's replays (a graph of plan->launches launches, launch i on set i % d->sets, the
 * warm-up replay if plan->warmup, plan->replays timed replays, median per launch) without its
 * warm-up launch, estimate and budget. result: launches, sets, replays, graph, cold, median,
 * p20, p80, note (estimate_us is left to the caller). d as fp4_measure's, already valid. */
fp4_status fp4_tune_measure_planned(fp4_ctx *ctx, const fp4_measure_desc *d,
                                    const fp4_tune_plan *plan, fp4_measure_result *result);

/* The operands of one problem of fp4_tune (operands.c): `sets` copies of [A | A scales |
 * B | B scales] at base, set i at base + i * set_stride, and one D. */
typedef struct fp4_tune_operands {
    void *base;        /* sets * set_stride bytes */
    void *d;           /* d_bytes */
    int64_t a_off, asf_off, b_off, bsf_off, set_stride, d_bytes;
    double set_bytes;  /* what one launch reads (A, B, scales) */
    int sets;
} fp4_tune_operands;

/* The buffers of one fp4_tune call, grown as its problems need (all zero at first). */
typedef struct fp4_tune_buffers {
    uint8_t *host;            /* A and its scales of one set */
    int64_t host_bytes;
    uint8_t *host_b;          /* B and its scales, [B | pad | scales]: made once per weight */
    int64_t host_b_bytes, b_n, b_k;
    fp4_sf_layout b_layout;
    void *pool, *dbuf;        /* the context's memory: the input sets, D */
    int64_t pool_bytes, dbuf_bytes;
} fp4_tune_buffers;

/* Seeded random operands of prepared problem d in b's buffers: A from seed and `problem`,
 * B from seed and d's shape (kept on the host for the next problem of the same weight); as
 * many sets as fp4_measure_sets asks for (at most 2 GiB of them); one uploaded, the others
 * device-to-device copies. Errors: OUT_OF_MEMORY, CUDA. */
fp4_status fp4_tune_make_operands(fp4_ctx *ctx, fp4_tune_buffers *b, const fp4_gemm_desc *d,
                                  uint64_t seed, int problem, fp4_tune_operands *o);

/* Points d's A, A scales (W4A4), B, B scales at input set `set` of o, and D at o's D. */
void fp4_tune_point_at_set(fp4_gemm_desc *d, const fp4_tune_operands *o, int set);

/* Frees b's buffers (keeping the context's last error). */
void fp4_tune_free_buffers(fp4_ctx *ctx, fp4_tune_buffers *b);

/* bytes from src to dst, both in the context's memory (cudaMemcpy device to device on a GPU,
 * synchronized). */
fp4_status fp4_tune_copy(fp4_ctx *ctx, void *dst, const void *src, int64_t bytes);

#if defined(FP4GEMM_HAVE_CUDA)
/* fp4_measure on a GPU context (desc validated, result zeroed with launches/sets/cold set). */
fp4_status fp4_tune_cuda_measure(fp4_ctx *ctx, const fp4_measure_desc *desc,
                                 fp4_measure_result *result);
/* fp4_tune_measure_planned, fp4_tune_time_launches and fp4_tune_copy on a GPU context. */
fp4_status fp4_tune_cuda_replays(fp4_ctx *ctx, const fp4_measure_desc *desc,
                                 const fp4_tune_plan *plan, fp4_measure_result *result);
fp4_status fp4_tune_cuda_time_launches(fp4_ctx *ctx, const fp4_measure_desc *d, int first_set,
                                       int count, double *ms);
/* fp4_count_nonfinite on a GPU context (arguments validated). */
fp4_status fp4_tune_cuda_count_nonfinite(fp4_ctx *ctx, const void *x, fp4_dtype dtype,
                                         int64_t rows, int64_t cols, int64_t ld,
                                         struct CUstream_st *stream, int64_t *count);
#endif

#ifdef __cplusplus
}
#endif
#endif /* FP4_TUNE_H */

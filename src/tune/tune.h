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

#if defined(FP4GEMM_HAVE_CUDA)
/* fp4_measure on a GPU context (desc validated, result zeroed with launches/sets/cold set). */
fp4_status fp4_tune_cuda_measure(fp4_ctx *ctx, const fp4_measure_desc *desc,
                                 fp4_measure_result *result);
/* fp4_count_nonfinite on a GPU context (arguments validated). */
fp4_status fp4_tune_cuda_count_nonfinite(fp4_ctx *ctx, const void *x, fp4_dtype dtype,
                                         int64_t rows, int64_t cols, int64_t ld,
                                         struct CUstream_st *stream, int64_t *count);
#endif

#ifdef __cplusplus
}
#endif
#endif /* FP4_TUNE_H */

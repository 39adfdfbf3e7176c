/*
 * measure.c - fp4_measure: the project's one timing method (docs/PERF.md "Timing"). The
 * validation, the replay plan, the statistics and the host-clock path for CPU contexts live
 * here; the CUDA path (events, one graph of L launches over rotated input sets) is in
 * measure_cuda.cu and follows the same steps.
 */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"
#include "tune.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void fp4_measure_desc_init(fp4_measure_desc *desc) {
    if (!desc) return;
    memset(desc, 0, sizeof *desc);
    desc->struct_size = sizeof *desc;
    desc->sets = 1;
}

int fp4_measure_sets(const fp4_ctx *ctx, double set_bytes) {
    if (!ctx || ctx->device < 0 || !(set_bytes > 0)) return 1;
    if (ctx->info.l2_bytes <= 0) return 2; /* (the device query gives it on every GPU) */
    const double sets = ceil(FP4_MEASURE_L2_FACTOR * (double)ctx->info.l2_bytes / set_bytes);
    return sets < 2 ? 2 : sets > FP4_MEASURE_MAX_SETS ? FP4_MEASURE_MAX_SETS : (int)sets;
}

int fp4_tune_min_replays(const fp4_measure_desc *desc) {
    return desc->min_replays > FP4_MEASURE_MIN_REPLAYS ? desc->min_replays
                                                       : FP4_MEASURE_MIN_REPLAYS;
}

int fp4_tune_estimate_launches(double first_ms) { return first_ms < 200.0 ? 3 : 1; }

int fp4_tune_plan_replays(double est_ms, int launches, int min_replays, double budget_s,
                          int *replays) {
    const double replay_ms = est_ms * launches;
    int r = replay_ms > 0 ? (int)fmin(FP4_MEASURE_TARGET_MS / replay_ms, 1e6)
                          : FP4_MEASURE_MAX_REPLAYS;
    const int max_replays =
        min_replays > FP4_MEASURE_MAX_REPLAYS ? min_replays : FP4_MEASURE_MAX_REPLAYS;
    if (r > max_replays) r = max_replays;
    if (r < min_replays) r = min_replays;
    *replays = r;
    const double planned_s = replay_ms * (r + 1) / 1e3; /* + the warm-up replay */
    return budget_s > 0 && planned_s > budget_s;
}

static int cmp_double(const void *x, const void *y) {
    const double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Percentile q in [0, 1] of sorted v[n], linearly interpolated. */
static double percentile(const double *v, int n, double q) {
    if (n <= 0) return 0.0;
    const double pos = q * (double)(n - 1);
    const int lo = (int)pos;
    if (lo >= n - 1) return v[n - 1];
    return v[lo] + (pos - (double)lo) * (v[lo + 1] - v[lo]);
}

void fp4_tune_summarize(double *us, int n, fp4_measure_result *r) {
    qsort(us, (size_t)n, sizeof *us, cmp_double);
    r->median_us = percentile(us, n, 0.5);
    r->p20_us = percentile(us, n, 0.2);
    r->p80_us = percentile(us, n, 0.8);
}

static double host_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* The replays on the CPU: `warmup` untimed ones, then r->replays timed, each of r->launches
 * launches, timed with the host clock. */
static fp4_status host_replays(fp4_ctx *ctx, const fp4_measure_desc *d, int warmup,
                               fp4_measure_result *r) {
    fp4_status st;
    double *us = malloc((size_t)r->replays * sizeof *us);
    if (!us)
        return FP4_FAIL(ctx, FP4_ERR_OUT_OF_MEMORY, "fp4_measure: out of host memory for %d "
                        "replays", r->replays);
    for (int rep = -warmup; rep < r->replays; rep++) { /* warm-up replays, then timed ones */
        const double t0 = host_ms();
        for (int l = 0; l < r->launches; l++)
            if ((st = d->launch(d->user, l % d->sets, NULL)) != FP4_OK) {
                free(us);
                return st;
            }
        if (rep >= 0) us[rep] = (host_ms() - t0) * 1e3 / r->launches;
    }
    fp4_tune_summarize(us, r->replays, r);
    free(us);
    snprintf(r->note, sizeof r->note, "host clock");
    return FP4_OK;
}

/* The CPU path: the same steps as on a GPU, without a graph, timed with the host clock. */
static fp4_status measure_host(fp4_ctx *ctx, const fp4_measure_desc *d, fp4_measure_result *r) {
    fp4_status st;
    double t0 = host_ms();
    if ((st = d->launch(d->user, 0, NULL)) != FP4_OK) return st; /* warm-up */
    const double first_ms = host_ms() - t0;
    const int n_est = fp4_tune_estimate_launches(first_ms);
    t0 = host_ms();
    for (int i = 0; i < n_est; i++)
        if ((st = d->launch(d->user, (i + 1) % d->sets, NULL)) != FP4_OK) return st;
    const double est_ms = (host_ms() - t0) / n_est;
    r->estimate_us = est_ms * 1e3;
    if (fp4_tune_plan_replays(est_ms, r->launches, fp4_tune_min_replays(d), d->budget_seconds,
                              &r->replays)) {
        r->too_slow = 1;
        return FP4_OK;
    }
    return host_replays(ctx, d, 1, r);
}

double fp4_tune_quick_plan(double est_ms, int sets, fp4_tune_plan *p) {
    if (!(est_ms > 0)) est_ms = 1e-6;
    if (sets < 1) sets = 1;
    /* enough launches for FP4_TUNE_LONG_MS (a graph launch's few microseconds vanish), at most
     * fp4_measure's 10, and never fewer than the sets (every one of them, for cold inputs) */
    const double want = ceil(FP4_TUNE_LONG_MS / est_ms);
    int l = want > FP4_MEASURE_MIN_LAUNCHES ? FP4_MEASURE_MIN_LAUNCHES : want < 2 ? 2 : (int)want;
    if (l < sets) l = sets;
    const double replay_ms = est_ms * l;
    double r = ceil(FP4_TUNE_TARGET_MS / replay_ms);
    const double min_r = ceil((double)FP4_TUNE_MIN_TIMED / l);
    if (r < min_r) r = min_r;
    if (r < FP4_TUNE_MIN_REPLAYS) r = FP4_TUNE_MIN_REPLAYS;
    if (r > FP4_MEASURE_MAX_REPLAYS) r = FP4_MEASURE_MAX_REPLAYS;
    p->launches = l;
    p->replays = (int)r;
    p->warmup = replay_ms < FP4_TUNE_UPLOAD_MS;
    return replay_ms * (r + p->warmup) / 1e3;
}

fp4_status fp4_tune_time_launches(fp4_ctx *ctx, const fp4_measure_desc *d, int first_set,
                                  int count, double *ms) {
    *ms = 0;
    if (count < 1) return FP4_OK;
#if defined(FP4GEMM_HAVE_CUDA)
    if (ctx->device >= 0) return fp4_tune_cuda_time_launches(ctx, d, first_set, count, ms);
#endif
    if (ctx->device >= 0)
        return FP4_FAIL(ctx, FP4_ERR_NO_DEVICE, "fp4_tune: this fp4gemm was built without CUDA");
    const double t0 = host_ms();
    for (int i = 0; i < count; i++) {
        const fp4_status st = d->launch(d->user, (first_set + i) % d->sets, NULL);
        if (st != FP4_OK) return st;
    }
    *ms = host_ms() - t0;
    return FP4_OK;
}

fp4_status fp4_tune_measure_planned(fp4_ctx *ctx, const fp4_measure_desc *d,
                                    const fp4_tune_plan *plan, fp4_measure_result *r) {
    r->sets = d->sets;
    r->launches = plan->launches;
    r->replays = plan->replays;
    if (ctx->device < 0) return host_replays(ctx, d, plan->warmup ? 1 : 0, r);
    if (d->set_bytes > 0 && ctx->info.l2_bytes > 0)
        r->cold = (double)d->sets * d->set_bytes >=
                  FP4_MEASURE_L2_FACTOR * (double)ctx->info.l2_bytes;
#if defined(FP4GEMM_HAVE_CUDA)
    return fp4_tune_cuda_replays(ctx, d, plan, r);
#else
    return FP4_FAIL(ctx, FP4_ERR_NO_DEVICE, "fp4_tune: this fp4gemm was built without CUDA");
#endif
}

fp4_status fp4_tune_copy(fp4_ctx *ctx, void *dst, const void *src, int64_t bytes) {
    if (bytes <= 0) return FP4_OK;
    if (ctx->device >= 0) return fp4_cuda_copy_device(ctx, dst, src, bytes);
    memmove(dst, src, (size_t)bytes);
    return FP4_OK;
}

void fp4_measure_result_init(fp4_measure_result *result) {
    if (!result) return;
    memset(result, 0, sizeof *result);
    result->struct_size = sizeof *result;
}

static fp4_status measure_full(fp4_ctx *ctx, const fp4_measure_desc *desc,
                               fp4_measure_result *result);

/* The checks, then the measurement into a struct of this library's size, of which the
 * caller's (possibly older, smaller) struct gets what fits. */
fp4_status fp4_measure(fp4_ctx *ctx, const fp4_measure_desc *desc, fp4_measure_result *result) {
    const char *fn = "fp4_measure";
    if (!ctx) return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "%s: ctx is NULL", fn);
    ctx->last_error[0] = 0;
    if (!desc || !result)
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                        desc ? "result" : "desc");
    if (desc->struct_size != sizeof *desc)
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT,
                        "%s: desc->struct_size = %zu, expected %zu (call fp4_measure_desc_init)",
                        fn, desc->struct_size, sizeof *desc);
    const fp4_status bad =
        fp4_out_struct_check(ctx, fn, "result", "fp4_measure_result", result->struct_size,
                             FP4_STRUCT_END(fp4_measure_result, note), sizeof *result);
    if (bad != FP4_OK) return bad;
    if (!desc->launch) return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "%s: launch is NULL", fn);
    if (desc->sets < 1 || desc->sets > FP4_MEASURE_MAX_SETS)
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "%s: sets = %d must be in [1, %d]", fn,
                        desc->sets, FP4_MEASURE_MAX_SETS);
    if (desc->min_replays < 0 || desc->min_replays > 100000)
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "%s: min_replays = %d must be in "
                        "[0, 100000]", fn, desc->min_replays);
    if (!(desc->set_bytes >= 0) || isnan(desc->budget_seconds))
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "%s: set_bytes = %g and budget_seconds "
                        "= %g must be numbers, set_bytes >= 0", fn, desc->set_bytes,
                        desc->budget_seconds);

    fp4_measure_result full;
    fp4_measure_result_init(&full);
    const fp4_status st = measure_full(ctx, desc, &full);
    fp4_out_struct_fill(result, &full, sizeof full);
    return st;
}

static fp4_status measure_full(fp4_ctx *ctx, const fp4_measure_desc *desc,
                               fp4_measure_result *result) {
    result->sets = desc->sets;
    result->launches =
        desc->sets > FP4_MEASURE_MIN_LAUNCHES ? desc->sets : FP4_MEASURE_MIN_LAUNCHES;
    if (ctx->device < 0) return measure_host(ctx, desc, result);
    if (desc->set_bytes > 0 && ctx->info.l2_bytes > 0)
        result->cold = (double)desc->sets * desc->set_bytes >=
                       FP4_MEASURE_L2_FACTOR * (double)ctx->info.l2_bytes;
#if defined(FP4GEMM_HAVE_CUDA)
    return fp4_tune_cuda_measure(ctx, desc, result);
#else
    return FP4_FAIL(ctx, FP4_ERR_NO_DEVICE, "fp4_measure: this fp4gemm was built without CUDA");
#endif
}

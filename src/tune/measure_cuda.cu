/*
 * measure_cuda.cu - fp4_measure on a GPU context: the steps of docs/PERF.md "Timing" with CUDA
 * events and one CUDA graph of L launches over the rotated input sets. measure.c validated
 * the desc and set result->launches, sets and cold.
 */
#include "../cuda/cuda_util.cuh"
#include "tune.h"

#include <stdio.h>
#include <stdlib.h>

namespace {

/* The events and the graph of one measurement, released whatever happens. */
struct measure_state {
    cudaEvent_t *events = nullptr;
    int nevents = 0;
    cudaGraphExec_t exec = nullptr;
    double *us = nullptr;
    cudaStream_t own_stream = nullptr; /* when the caller gave the legacy stream */
    ~measure_state() {
        if (own_stream) {
            (void)cudaStreamSynchronize(own_stream);
            (void)cudaStreamDestroy(own_stream);
        }
        for (int i = 0; i < nevents; i++) (void)cudaEventDestroy(events[i]);
        free(events);
        if (exec) (void)cudaGraphExecDestroy(exec);
        free(us);
    }
};

fp4_status make_events(fp4_ctx *ctx, measure_state *s, int count) {
    s->events = (cudaEvent_t *)calloc((size_t)count, sizeof(cudaEvent_t));
    if (!s->events)
        return FP4_FAIL(ctx, FP4_ERR_OUT_OF_MEMORY, "fp4_measure: out of host memory for %d "
                        "events", count);
    for (; s->nevents < count; s->nevents++)
        FP4_CUDA_TRY(ctx, cudaEventCreate(&s->events[s->nevents]), "fp4_measure: cudaEventCreate");
    return FP4_OK;
}

fp4_status elapsed_ms(fp4_ctx *ctx, cudaEvent_t start, cudaEvent_t stop, double *ms) {
    float f = 0.0f;
    FP4_CUDA_TRY(ctx, cudaEventElapsedTime(&f, start, stop), "fp4_measure: cudaEventElapsedTime");
    *ms = (double)f;
    return FP4_OK;
}

/* Captures r->launches launches, launch i on set i % sets, into one graph. FP4_OK with
 * s->exec, or FP4_OK without it (the reason in r->note: timed as plain launches then). */
void capture(fp4_ctx *ctx, const fp4_measure_desc *d, cudaStream_t stream, measure_state *s,
             fp4_measure_result *r) {
    cudaGraph_t graph = nullptr;
    cudaError_t err = cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        snprintf(r->note, sizeof r->note, "no graph (cudaStreamBeginCapture: %s)",
                 cudaGetErrorString(err));
        return;
    }
    fp4_status st = FP4_OK;
    for (int l = 0; l < r->launches && st == FP4_OK; l++)
        st = d->launch(d->user, l % d->sets, stream);
    err = cudaStreamEndCapture(stream, &graph);
    if (st == FP4_OK && err == cudaSuccess && graph) err = cudaGraphInstantiate(&s->exec, graph, 0);
    if (graph) (void)cudaGraphDestroy(graph);
    if (st == FP4_OK && err == cudaSuccess) return;
    (void)cudaGetLastError();
    s->exec = nullptr;
    if (st != FP4_OK)
        snprintf(r->note, sizeof r->note, "no graph (capture failed: a launch returned %s: %.180s)",
                 fp4_status_name(st), fp4_last_error(ctx));
    else
        snprintf(r->note, sizeof r->note, "no graph (capture failed: %.200s)",
                 cudaGetErrorString(err));
}

/* The stream the launches go to: the desc's, or (the legacy stream can't be captured) one of
 * our own, non-blocking (a blocking stream being captured forbids any use of the legacy
 * stream meanwhile), after the caller's legacy-stream work (uploads, memsets) ends. */
fp4_status pick_stream(fp4_ctx *ctx, const fp4_measure_desc *d, measure_state *s,
                       cudaStream_t *stream) {
    *stream = fp4_cuda_stream(d->stream);
    if (*stream) return FP4_OK;
    FP4_CUDA_TRY(ctx, cudaStreamSynchronize(cudaStreamLegacy),
                 "fp4_measure: waiting for the legacy stream");
    FP4_CUDA_TRY(ctx, cudaStreamCreateWithFlags(&s->own_stream, cudaStreamNonBlocking),
                 "fp4_measure: cudaStreamCreateWithFlags");
    *stream = s->own_stream;
    return FP4_OK;
}

/* One graph of r->launches launches over the rotated sets (plain launches if it can't be
 * made); one warm-up replay if `warmup` (else the graph is only uploaded), then r->replays
 * replays back to back, each between two events; the statistics into r. */
fp4_status run_replays(fp4_ctx *ctx, const fp4_measure_desc *d, cudaStream_t stream,
                       measure_state *s, int warmup, fp4_measure_result *r) {
    fp4_status st;
    for (int i = 0; i < s->nevents; i++) (void)cudaEventDestroy(s->events[i]);
    free(s->events);
    s->events = nullptr;
    s->nevents = 0;
    if ((st = make_events(ctx, s, r->replays + 1)) != FP4_OK) return st;
    capture(ctx, d, stream, s, r);
    r->graph = s->exec != nullptr;
    s->us = (double *)malloc((size_t)r->replays * sizeof(double));
    if (!s->us)
        return FP4_FAIL(ctx, FP4_ERR_OUT_OF_MEMORY, "fp4_measure: out of host memory");
    if (!warmup && s->exec)
        FP4_CUDA_TRY(ctx, cudaGraphUpload(s->exec, stream), "fp4_measure: cudaGraphUpload");
    for (int rep = warmup ? -1 : 0; rep < r->replays; rep++) {
        if (rep >= 0)
            FP4_CUDA_TRY(ctx, cudaEventRecord(s->events[rep], stream),
                         "fp4_measure: cudaEventRecord");
        if (s->exec) {
            FP4_CUDA_TRY(ctx, cudaGraphLaunch(s->exec, stream), "fp4_measure: cudaGraphLaunch");
        } else {
            for (int l = 0; l < r->launches; l++)
                if ((st = d->launch(d->user, l % d->sets, stream)) != FP4_OK) {
                    /* the launches already queued must finish before the caller reuses
                     * their buffers (the tuner keeps them across problems) */
                    (void)cudaStreamSynchronize(stream);
                    return st;
                }
        }
        if (rep < 0)
            FP4_CUDA_TRY(ctx, cudaStreamSynchronize(stream), "fp4_measure: the warm-up replay");
    }
    FP4_CUDA_TRY(ctx, cudaEventRecord(s->events[r->replays], stream),
                 "fp4_measure: cudaEventRecord");
    FP4_CUDA_TRY(ctx, cudaStreamSynchronize(stream), "fp4_measure: the timed replays");
    for (int i = 0; i < r->replays; i++) {
        double ms = 0.0;
        if ((st = elapsed_ms(ctx, s->events[i], s->events[i + 1], &ms)) != FP4_OK) return st;
        s->us[i] = ms * 1e3 / r->launches;
    }
    fp4_tune_summarize(s->us, r->replays, r);
    return FP4_OK;
}

} // namespace

extern "C" fp4_status fp4_tune_cuda_measure(fp4_ctx *ctx, const fp4_measure_desc *d,
                                            fp4_measure_result *r) {
    fp4_status st = fp4_cuda_set_device(ctx);
    if (st != FP4_OK) return st;
    measure_state s;
    cudaStream_t stream = nullptr;
    if ((st = pick_stream(ctx, d, &s, &stream)) != FP4_OK) return st;
    if ((st = make_events(ctx, &s, 2)) != FP4_OK) return st;

    /* warm-up launch (first-use costs), then a few to estimate one launch */
    FP4_CUDA_TRY(ctx, cudaEventRecord(s.events[0], stream), "fp4_measure: cudaEventRecord");
    if ((st = d->launch(d->user, 0, stream)) != FP4_OK) return st;
    FP4_CUDA_TRY(ctx, cudaEventRecord(s.events[1], stream), "fp4_measure: cudaEventRecord");
    FP4_CUDA_TRY(ctx, cudaStreamSynchronize(stream), "fp4_measure: the warm-up launch");
    double first_ms = 0.0, est_ms = 0.0;
    if ((st = elapsed_ms(ctx, s.events[0], s.events[1], &first_ms)) != FP4_OK) return st;
    const int n_est = fp4_tune_estimate_launches(first_ms);
    FP4_CUDA_TRY(ctx, cudaEventRecord(s.events[0], stream), "fp4_measure: cudaEventRecord");
    for (int i = 0; i < n_est; i++)
        if ((st = d->launch(d->user, (i + 1) % d->sets, stream)) != FP4_OK) return st;
    FP4_CUDA_TRY(ctx, cudaEventRecord(s.events[1], stream), "fp4_measure: cudaEventRecord");
    FP4_CUDA_TRY(ctx, cudaStreamSynchronize(stream), "fp4_measure: the estimate launches");
    if ((st = elapsed_ms(ctx, s.events[0], s.events[1], &est_ms)) != FP4_OK) return st;
    est_ms /= n_est;
    r->estimate_us = est_ms * 1e3;
    if (fp4_tune_plan_replays(est_ms, r->launches, fp4_tune_min_replays(d), d->budget_seconds,
                              &r->replays)) {
        r->too_slow = 1;
        return FP4_OK;
    }
    return run_replays(ctx, d, stream, &s, 1, r);
}

extern "C" fp4_status fp4_tune_cuda_replays(fp4_ctx *ctx, const fp4_measure_desc *d,
                                            const fp4_tune_plan *plan, fp4_measure_result *r) {
    fp4_status st = fp4_cuda_set_device(ctx);
    if (st != FP4_OK) return st;
    measure_state s;
    cudaStream_t stream = nullptr;
    if ((st = pick_stream(ctx, d, &s, &stream)) != FP4_OK) return st;
    return run_replays(ctx, d, stream, &s, plan->warmup, r);
}

extern "C" fp4_status fp4_tune_cuda_time_launches(fp4_ctx *ctx, const fp4_measure_desc *d,
                                                  int first_set, int count, double *ms) {
    fp4_status st = fp4_cuda_set_device(ctx);
    if (st != FP4_OK) return st;
    /* plain launches, no capture: the legacy stream (NULL) will do */
    cudaStream_t stream = fp4_cuda_stream(d->stream);
    measure_state s;
    if ((st = make_events(ctx, &s, 2)) != FP4_OK) return st;
    FP4_CUDA_TRY(ctx, cudaEventRecord(s.events[0], stream), "fp4_tune: cudaEventRecord");
    for (int i = 0; i < count; i++)
        if ((st = d->launch(d->user, (first_set + i) % d->sets, stream)) != FP4_OK) {
            (void)cudaStreamSynchronize(stream); /* what was enqueued ends before we return */
            return st;
        }
    FP4_CUDA_TRY(ctx, cudaEventRecord(s.events[1], stream), "fp4_tune: cudaEventRecord");
    FP4_CUDA_TRY(ctx, cudaStreamSynchronize(stream), "fp4_tune: the timed launches");
    return elapsed_ms(ctx, s.events[0], s.events[1], ms);
}



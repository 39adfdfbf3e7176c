/*
 * test_threads_gpu.c - the GPU half of the concurrency and stress tests (docs/threads.md).
 * Skips (exit 77, "SKIP: no CUDA device") without a CUDA device or without CUDA in the build.
 *   - 8 threads, each creating its own context on device 0 and its own non-blocking stream,
 *     run seeded quantize / dequantize / GEMM jobs (threads_work.c; GEMMs on auto, which is
 *     cuda_mma on sm_80+, with split-K over its per-context workspace, and on cuda_simt):
 *     every output bit-identical to the same job run serially on one context; the quantize
 *     and dequantize outputs also equal the CPU's;
 *   - CUDA graphs: two threads, each with its own context and stream, capture fp4_gemm calls
 *     at the same time (thread-local capture mode, then global mode) and replay them at the
 *     same time; D is poisoned inside the graph before each GEMM and must equal the serial
 *     result after the replays;
 *   - lifecycle: create / allocate / GEMM / free / destroy cycles (1000; 100 with
 *     FP4GEMM_TEST_SKIP_LARGE), serially and on 4 threads: free device memory
 *     (cudaMemGetInfo) back to its starting value within two 2 MiB pages of the driver, no
 *     file-descriptor growth;
 *   - faults: a device allocation larger than the card (FP4_ERR_OUT_OF_MEMORY), a kernel
 *     launch that CUDA refuses (into the legacy stream while a blocking stream captures:
 *     FP4_ERR_CUDA, D untouched): nothing leaked, the context usable for the next call.
 * FP4GEMM_TEST_QUICK=1 cuts the jobs to 4 per thread and the replays to 4, for racecheck
 * (scripts/device_bench.sh runs `FP4GEMM_TEST_QUICK=1 compute-sanitizer --tool racecheck
 * test_threads_gpu jobs graphs`). This file uses the CUDA runtime directly (streams, graphs, cudaMemGetInfo); the library
 * carries its own, statically linked: both use the device's primary context.
 */
#define _POSIX_C_SOURCE 200809L /* pthread_barrier_t, getenv */
#include "test_util.h"
#include "threads_work.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FP4GEMM_HAVE_CUDA

int main(void) {
    tu_begin("test_threads_gpu", tu_seed(0));
    tu_skip("no CUDA device: this fp4gemm was built without CUDA");
    return tu_finish();
}

#else

#include <cuda_runtime_api.h>

enum { THREADS = 8, ITERS = 40, GRAPH_THREADS = 2, GRAPH_GEMMS = 4, REPLAYS = 64 };
/* jobs per thread and graph replays: ITERS and REPLAYS, or with FP4GEMM_TEST_QUICK (for
 * compute-sanitizer racecheck, which runs each kernel far slower) 4 and 4 */
static int g_iters = ITERS, g_replays = REPLAYS;
/* Free memory may move by the driver's allocation granularity (2 MiB pages) without a leak;
 * allow two pages. One context's cuda_mma workspace alone is 32 MiB. */
#define GRANULARITY ((size_t)4 << 20)

static const tw_limits k_lim = {64, 512, 4096, 1};
static uint64_t g_base;

static int cuda_ok(cudaError_t err, const char *what) {
    if (err == cudaSuccess) return 1;
    printf("  %s: %s\n", what, cudaGetErrorString(err));
    (void)cudaGetLastError();
    return 0;
}

static size_t free_device_memory(void) {
    size_t free_b = 0, total = 0;
    if (!cuda_ok(cudaMemGetInfo(&free_b, &total), "cudaMemGetInfo")) return 0;
    return free_b;
}

/* The i-th seed from `base` whose job is a GEMM on auto (with split-K shapes when long_k). */
static void gemm_job(uint64_t base, uint64_t tag, int long_k, const tw_limits *lim, tw_job *job,
                     uint64_t *seed) {
    for (uint64_t i = 0;; i++) {
        *seed = tw_seed(base, tag, i);
        tw_job_make(*seed, lim, job);
        if (job->kind == TW_GEMM && job->backend == FP4_BACKEND_AUTO &&
            (!long_k || (job->k == lim->max_k && job->rows <= 16)))
            return;
    }
}

/* ---- 8 threads, own contexts and streams, against a serial run ---------------------------- */

typedef struct worker {
    int t;
    pthread_barrier_t *start;
    uint64_t hashes[ITERS];
    int failures;
    char err[800];
} worker;

static void *worker_main(void *arg) {
    worker *w = (worker *)arg;
    fp4_ctx *ctx = NULL;
    cudaStream_t stream = NULL;
    tw_arena arena;
    memset(&arena, 0, sizeof arena);
    char err[700];
    int ready = fp4_create(&ctx, 0) == FP4_OK;
    if (!ready) snprintf(w->err, sizeof w->err, "fp4_create: %s", fp4_last_error(NULL));
    if (ready && cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) != cudaSuccess) {
        snprintf(w->err, sizeof w->err, "cudaStreamCreateWithFlags failed");
        ready = 0;
    }
    if (ready && tw_arena_alloc(ctx, &k_lim, &arena) != FP4_OK) {
        snprintf(w->err, sizeof w->err, "tw_arena_alloc: %s", fp4_last_error(ctx));
        ready = 0;
    }
    pthread_barrier_wait(w->start);
    for (int i = 0; i < g_iters; i++) {
        tw_job job;
        tw_job_make(tw_seed(g_base, (uint64_t)w->t, (uint64_t)i), &k_lim, &job);
        if (!ready || tw_job_run(&arena, &job, stream, &w->hashes[i], err, sizeof err) != FP4_OK) {
            if (w->failures++ == 0 && ready) snprintf(w->err, sizeof w->err, "%s", err);
        }
    }
    tw_arena_free(&arena);
    if (stream) cudaStreamDestroy(stream);
    fp4_destroy(ctx);
    return NULL;
}

static void test_concurrent_jobs(void) {
    static uint64_t expected[THREADS][ITERS];
    char err[700], what[200];
    fp4_ctx *ctx = NULL, *cpu = NULL;
    tw_arena arena, cpu_arena;
    memset(&arena, 0, sizeof arena);
    memset(&cpu_arena, 0, sizeof cpu_arena);
    cudaStream_t stream = NULL;
    int failed = 0, cpu_differ = 0, cpu_checked = 0, split_k = 0;
    if (!tu_ok(fp4_create(&ctx, 0), NULL, "fp4_create(0)") ||
        !tu_ok(fp4_create(&cpu, -1), NULL, "fp4_create(-1)") ||
        !cuda_ok(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream") ||
        !tu_ok(tw_arena_alloc(ctx, &k_lim, &arena), ctx, "tw_arena_alloc") ||
        !tu_ok(tw_arena_alloc(cpu, &k_lim, &cpu_arena), cpu, "tw_arena_alloc (CPU)")) {
        tu_case(0, "serial reference run: set-up");
        failed = 1;
    }
    for (int t = 0; t < THREADS && !failed; t++)
        for (int i = 0; i < g_iters && !failed; i++) {
            tw_job job;
            tw_job_make(tw_seed(g_base, (uint64_t)t, (uint64_t)i), &k_lim, &job);
            tw_job_describe(&job, what, sizeof what);
            if (tw_job_run(&arena, &job, stream, &expected[t][i], err, sizeof err) != FP4_OK) {
                printf("  serial %s: %s\n", what, err);
                failed = 1;
                break;
            }
            if (job.kind == TW_GEMM) {
                split_k += job.rows <= 16 && job.k == k_lim.max_k;
                continue;
            }
            uint64_t h = 0; /* quantize / dequantize: the CPU's bytes exactly */
            cpu_checked++;
            if (tw_job_run(&cpu_arena, &job, NULL, &h, err, sizeof err) != FP4_OK ||
                h != expected[t][i]) {
                if (cpu_differ++ < 3) printf("  %s: GPU and CPU differ %s\n", what, err);
            }
        }
    tw_arena_free(&cpu_arena);
    tw_arena_free(&arena);
    if (stream) cudaStreamDestroy(stream);
    fp4_destroy(cpu);
    fp4_destroy(ctx);
    if (failed) {
        tu_case(0, "serial reference run on device 0");
        return;
    }
    tu_case(1, "serial reference run on device 0: %d jobs, %d of them long-k GEMMs (split-K)",
            THREADS * g_iters, split_k);
    tu_case(cpu_differ == 0, "its %d quantize / dequantize outputs equal the CPU's (%d differ)",
            cpu_checked, cpu_differ);

    worker workers[THREADS];
    pthread_t threads[THREADS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, THREADS);
    memset(workers, 0, sizeof workers);
    for (int t = 0; t < THREADS; t++) {
        workers[t].t = t;
        workers[t].start = &start;
        pthread_create(&threads[t], NULL, worker_main, &workers[t]);
    }
    for (int t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
    pthread_barrier_destroy(&start);
    int failures = 0, mismatches = 0;
    for (int t = 0; t < THREADS; t++) {
        failures += workers[t].failures;
        if (workers[t].err[0]) printf("  thread %d: %s\n", t, workers[t].err);
        for (int i = 0; i < g_iters; i++)
            if (workers[t].hashes[i] != expected[t][i] && mismatches++ < 5) {
                tw_job job;
                tw_job_make(tw_seed(g_base, (uint64_t)t, (uint64_t)i), &k_lim, &job);
                tw_job_describe(&job, what, sizeof what);
                printf("  thread %d job %d (%s) differs from the serial run\n", t, i, what);
            }
    }
    tu_case(failures == 0, "%d threads, each its own context and stream, x %d jobs: all ran",
            THREADS, g_iters);
    tu_case(mismatches == 0 && failures == 0,
            "every result bit-identical to the serial run (%d differ)", mismatches);
}

/* ---- CUDA graphs captured and replayed by two threads at once ------------------------------ */

typedef struct grapher {
    int t;
    enum cudaStreamCaptureMode mode;
    pthread_barrier_t *bar;
    uint64_t seeds[GRAPH_GEMMS], expected[GRAPH_GEMMS];
    int failures, mismatches;
    char err[800];
} grapher;

#define G_FAIL(...)                                                                  \
    do {                                                                             \
        if (g->failures++ == 0) snprintf(g->err, sizeof g->err, __VA_ARGS__);       \
    } while (0)

static void *grapher_main(void *arg) {
    grapher *g = (grapher *)arg;
    fp4_ctx *ctx = NULL;
    cudaStream_t stream = NULL;
    cudaGraph_t graph = NULL;
    cudaGraphExec_t exec = NULL;
    tw_gemm gemms[GRAPH_GEMMS];
    memset(gemms, 0, sizeof gemms);
    char err[700];
    int ready = fp4_create(&ctx, 0) == FP4_OK;
    if (!ready) G_FAIL("fp4_create: %s", fp4_last_error(NULL));
    if (ready && cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) != cudaSuccess) {
        G_FAIL("cudaStreamCreateWithFlags failed");
        ready = 0;
    }
    for (int i = 0; i < GRAPH_GEMMS && ready; i++) {
        tw_job job;
        tw_job_make(g->seeds[i], &k_lim, &job);
        if (tw_gemm_prepare(ctx, &job, &gemms[i], err, sizeof err) != FP4_OK) {
            G_FAIL("tw_gemm_prepare: %s", err);
            ready = 0;
        }
        gemms[i].desc.stream = stream;
    }

    // both threads capture at the same time
    pthread_barrier_wait(g->bar);
    if (ready) {
        cudaError_t e = cudaStreamBeginCapture(stream, g->mode);
        if (e != cudaSuccess) {
            G_FAIL("cudaStreamBeginCapture: %s", cudaGetErrorString(e));
            ready = 0;
        }
        for (int i = 0; i < GRAPH_GEMMS && e == cudaSuccess; i++) {
            /* poison D inside the graph: each replay must write all of it again */
            e = cudaMemsetAsync(gemms[i].d, 0xFF, (size_t)gemms[i].d_bytes, stream);
            if (e != cudaSuccess) G_FAIL("cudaMemsetAsync in capture: %s", cudaGetErrorString(e));
            const fp4_status st = fp4_gemm(ctx, &gemms[i].desc);
            if (st != FP4_OK) G_FAIL("fp4_gemm in capture: %s", fp4_last_error(ctx));
        }
        if (ready) {
            e = cudaStreamEndCapture(stream, &graph);
            if (e != cudaSuccess || !graph) {
                G_FAIL("cudaStreamEndCapture: %s", cudaGetErrorString(e));
                ready = 0;
            }
        }
        (void)cudaGetLastError();
    }
    /* global mode: nobody instantiates or synchronizes until both captures are over */
    if (g->mode == cudaStreamCaptureModeGlobal) pthread_barrier_wait(g->bar);
    if (ready && g->failures == 0) {
        const cudaError_t e = cudaGraphInstantiate(&exec, graph, 0);
        if (e != cudaSuccess) {
            G_FAIL("cudaGraphInstantiate: %s", cudaGetErrorString(e));
            ready = 0;
        }
    }
    // both threads replay at the same time
    pthread_barrier_wait(g->bar);
    for (int r = 0; r < g_replays && ready && g->failures == 0; r++) {
        cudaError_t e = cudaGraphLaunch(exec, stream);
        if (e != cudaSuccess) {
            G_FAIL("cudaGraphLaunch: %s", cudaGetErrorString(e));
            break;
        }
        if (r % 16 != 15) continue;
        e = cudaStreamSynchronize(stream);
        if (e != cudaSuccess) {
            G_FAIL("cudaStreamSynchronize: %s", cudaGetErrorString(e));
            break;
        }
        for (int i = 0; i < GRAPH_GEMMS; i++) {
            uint64_t h = 0;
            if (tw_gemm_hash(&gemms[i], &h, err, sizeof err) != FP4_OK)
                G_FAIL("%s", err);
            else if (h != g->expected[i])
                g->mismatches++;
        }
    }
    if (exec) cudaGraphExecDestroy(exec);
    if (graph) cudaGraphDestroy(graph);
    for (int i = 0; i < GRAPH_GEMMS; i++) tw_gemm_release(&gemms[i]);
    if (stream) cudaStreamDestroy(stream);
    fp4_destroy(ctx);
    return NULL;
}

static void test_graphs(void) {
    // the serial results, on a context of its own
    grapher gr[GRAPH_THREADS];
    memset(gr, 0, sizeof gr);
    fp4_ctx *ctx = NULL;
    tw_arena arena;
    memset(&arena, 0, sizeof arena);
    char err[700];
    int ok = tu_ok(fp4_create(&ctx, 0), NULL, "fp4_create") &&
             tu_ok(tw_arena_alloc(ctx, &k_lim, &arena), ctx, "tw_arena_alloc");
    for (int t = 0; t < GRAPH_THREADS && ok; t++)
        for (int i = 0; i < GRAPH_GEMMS && ok; i++) {
            tw_job job;
            /* half the GEMMs long-k: cuda_mma's split-K uses the context's workspace */
            gemm_job(g_base, 1000 + (uint64_t)(t * GRAPH_GEMMS + i), i % 2 == 0, &k_lim, &job,
                     &gr[t].seeds[i]);
            if (tw_job_run(&arena, &job, NULL, &gr[t].expected[i], err, sizeof err) != FP4_OK) {
                printf("  serial: %s\n", err);
                ok = 0;
            }
        }
    tw_arena_free(&arena);
    fp4_destroy(ctx);
    if (!ok) {
        tu_case(0, "graphs: serial reference run");
        return;
    }
    const enum cudaStreamCaptureMode modes[2] = {cudaStreamCaptureModeThreadLocal,
                                            cudaStreamCaptureModeGlobal};
    const char *mode_names[2] = {"thread-local", "global"};
    for (int m = 0; m < 2; m++) {
        pthread_t threads[GRAPH_THREADS];
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, GRAPH_THREADS);
        for (int t = 0; t < GRAPH_THREADS; t++) {
            gr[t].t = t;
            gr[t].mode = modes[m];
            gr[t].bar = &bar;
            gr[t].failures = gr[t].mismatches = 0;
            gr[t].err[0] = 0;
            pthread_create(&threads[t], NULL, grapher_main, &gr[t]);
        }
        int failures = 0, mismatches = 0;
        for (int t = 0; t < GRAPH_THREADS; t++) {
            pthread_join(threads[t], NULL);
            failures += gr[t].failures;
            mismatches += gr[t].mismatches;
            if (gr[t].err[0]) printf("  thread %d: %s\n", t, gr[t].err);
        }
        pthread_barrier_destroy(&bar);
        tu_case(failures == 0 && mismatches == 0,
                "%d threads capture %d fp4_gemm each (%s capture mode) and replay them %d times "
                "at the same time: D bit-identical to the serial run (%d differ)",
                GRAPH_THREADS, GRAPH_GEMMS, mode_names[m], g_replays, mismatches);
    }
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

static const tw_limits k_cycle_lim = {16, 256, 2048, 1};

/* create, allocate, GEMM (split-K), free, destroy on device 0 (tw_cycle). */
static int one_cycle(const tw_job *job, uint64_t *want, char *err, size_t len) {
    return tw_cycle(0, &k_cycle_lim, job, want, err, len);
}

static void test_lifecycle(void) {
    const int cycles = getenv("FP4GEMM_TEST_SKIP_LARGE") ? 100 : 1000;
    tw_job job;
    uint64_t seed, want = 0;
    gemm_job(g_base, 2000, 1, &k_cycle_lim, &job, &seed);
    char err[700] = "", what[200];
    tw_job_describe(&job, what, sizeof what);
    if (!one_cycle(&job, &want, err, sizeof err) || !one_cycle(&job, &want, err, sizeof err)) {
        tu_case(0, "lifecycle warm-up: %s", err);
        return;
    }
    const size_t free0 = free_device_memory();
    const int fds0 = tw_count_fds();
    int failures = 0;
    for (int i = 0; i < cycles; i++)
        if (!one_cycle(&job, &want, err, sizeof err) && failures++ == 0)
            printf("  cycle %d: %s\n", i, err);
    const size_t free1 = free_device_memory();
    const int fds1 = tw_count_fds();
    tu_case(failures == 0, "%d create / allocate / GEMM (%s) / free / destroy cycles on device "
            "0: the same result each time", cycles, what);
    tu_case(free0 > 0 && free1 + GRANULARITY >= free0,
            "free device memory after them: %zu bytes, %zu before (within %zu)", free1, free0,
            GRANULARITY);
    tu_case(fds0 >= 0 && fds1 == fds0, "open file descriptors: %d before, %d after", fds0, fds1);

    enum { CYCLERS = 4 };
    failures = tw_cycle_threads(0, &k_cycle_lim, &job, want, CYCLERS, cycles / 10);
    const size_t free2 = free_device_memory();
    const int fds2 = tw_count_fds();
    tu_case(failures == 0 && free2 + GRANULARITY >= free0 && fds2 == fds0,
            "%d threads x %d cycles at the same time: same results; free memory %zu (%zu at "
            "the start), fds %d (%d)",
            CYCLERS, cycles / 10, free2, free0, fds2, fds0);
}

/* ---- faults ---------------------------------------------------------------------------------- */

/* The same GEMM again (D poisoned first) on `stream`: 1 if its D hashes to `want`. */
static int run_again(fp4_ctx *ctx, tw_gemm *g, cudaStream_t stream, uint64_t want) {
    char err[700];
    uint64_t h = 0;
    g->desc.stream = stream;
    if (fp4_memset(ctx, g->d, 0xFF, g->d_bytes) != FP4_OK || fp4_gemm(ctx, &g->desc) != FP4_OK ||
        fp4_synchronize(ctx, stream) != FP4_OK) {
        printf("  %s\n", fp4_last_error(ctx));
        return 0;
    }
    if (tw_gemm_hash(g, &h, err, sizeof err) != FP4_OK) {
        printf("  %s\n", err);
        return 0;
    }
    return h == want;
}

static void test_faults(void) {
    fp4_ctx *ctx = NULL;
    tw_gemm g;
    memset(&g, 0, sizeof g);
    tw_job job;
    uint64_t seed, want = 0, h = 0;
    char err[700];
    gemm_job(g_base, 3000, 1, &k_lim, &job, &seed);
    if (!tu_ok(fp4_create(&ctx, 0), NULL, "fp4_create") ||
        tw_gemm_prepare(ctx, &job, &g, err, sizeof err) != FP4_OK ||
        !tu_ok(fp4_gemm(ctx, &g.desc), ctx, "fp4_gemm") ||
        !tu_ok(fp4_synchronize(ctx, NULL), ctx, "fp4_synchronize") ||
        tw_gemm_hash(&g, &want, err, sizeof err) != FP4_OK) {
        tu_case(0, "faults: set-up");
        tw_gemm_release(&g);
        fp4_destroy(ctx);
        return;
    }
    // a device allocation larger than the card
    fp4_device_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    (void)fp4_device_query(0, &info);
    const size_t free0 = free_device_memory();
    void *p = &h;
    const int64_t huge = info.memory_bytes > 0 ? info.memory_bytes * 2 : (int64_t)1 << 50;
    fp4_status st = fp4_malloc(ctx, &p, huge);
    if (st == FP4_OK) (void)fp4_free(ctx, p); /* (a failed case below) */
    tu_case(st == FP4_ERR_OUT_OF_MEMORY && p == NULL,
            "fp4_malloc(%lld bytes) on a %lld-byte GPU: %s, ptr %s, \"%s\"", (long long)huge,
            (long long)info.memory_bytes, fp4_status_name(st), p ? "set" : "NULL",
            fp4_last_error(ctx));
    const size_t free1 = free_device_memory();
    tu_case(free1 + GRANULARITY >= free0 && run_again(ctx, &g, NULL, want),
            "after it: free memory %zu (was %zu); the context runs the same GEMM, same result",
            free1, free0);

    // a launch CUDA refuses: into the legacy stream while a blocking stream is capturing
    cudaStream_t blocking = NULL;
    if (cuda_ok(cudaStreamCreate(&blocking), "cudaStreamCreate")) {
        int ok = fp4_memset(ctx, g.d, 0xFF, g.d_bytes) == FP4_OK;
        ok = ok && cuda_ok(cudaStreamBeginCapture(blocking, cudaStreamCaptureModeGlobal),
                           "cudaStreamBeginCapture");
        g.desc.stream = NULL;
        st = ok ? fp4_gemm(ctx, &g.desc) : FP4_ERR_INTERNAL;
        char msg[1100];
        snprintf(msg, sizeof msg, "%s", fp4_last_error(ctx));
        cudaGraph_t graph = NULL;
        (void)cudaStreamEndCapture(blocking, &graph); /* invalidated: an error, no graph */
        if (graph) cudaGraphDestroy(graph);
        (void)cudaGetLastError();
        tu_case(st == FP4_ERR_CUDA && strstr(msg, "launch"),
                "fp4_gemm into the legacy stream during a blocking stream's capture: %s, \"%s\"",
                fp4_status_name(st), msg);
        /* D must be untouched: nothing ran */
        uint8_t *host = (uint8_t *)malloc((size_t)g.d_bytes);
        int untouched = host && fp4_download(ctx, host, g.d, g.d_bytes) == FP4_OK;
        for (int64_t i = 0; untouched && i < g.d_bytes; i++) untouched = host[i] == 0xFF;
        free(host);
        tu_case(untouched, "D untouched by the refused launch");
        tu_case(run_again(ctx, &g, NULL, want) && run_again(ctx, &g, blocking, want),
                "after it: the context runs the same GEMM on the legacy stream and on the "
                "stream that captured, same result");
        cudaStreamDestroy(blocking);
    }
    tw_gemm_release(&g);
    fp4_destroy(ctx);
    const size_t free2 = free_device_memory();
    tu_case(free2 + GRANULARITY >= free0,
            "free device memory after the faults and fp4_destroy: %zu (was %zu)", free2, free0);
}

/* Arguments pick parts (jobs, graphs, lifecycle, faults; all without any), e.g. to run only
 * `jobs graphs` under compute-sanitizer, whose own allocations move cudaMemGetInfo. */
static int wanted(int argc, char **argv, const char *part) {
    if (argc < 2) return 1;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], part)) return 1;
    return 0;
}

int main(int argc, char **argv) {
    g_base = tu_seed(0x61A9E5ull);
    tu_begin("test_threads_gpu", g_base);
    if (tu_quick()) {
        g_iters = 4;
        g_replays = 4;
    }
    int count = 0;
    if (fp4_device_count(&count) != FP4_OK || count == 0) {
        tu_skip("no CUDA device");
        return tu_finish();
    }
    if (!cuda_ok(cudaSetDevice(0), "cudaSetDevice(0)")) {
        tu_case(0, "the test's own CUDA runtime on device 0");
        return tu_finish();
    }
    if (wanted(argc, argv, "jobs")) test_concurrent_jobs();
    if (wanted(argc, argv, "graphs")) test_graphs();
    if (wanted(argc, argv, "lifecycle")) test_lifecycle();
    if (wanted(argc, argv, "faults")) test_faults();
    return tu_finish();
}

#endif

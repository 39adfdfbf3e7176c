/*
 * test_threads.c - the thread-safety contract of include/fp4gemm.h ("Threads") on the CPU,
 * and the CPU half of issue 17's stress tests (docs/threads.md):
 *   - 8 threads, each with its own context, run seeded quantize / dequantize / GEMM jobs
 *     (threads_work.c) while a ninth swaps the log callback and level and a tenth reads the
 *     contexts through the calls the contract lets overlap; every output must hash the same
 *     as the same job run serially, each context's fp4_last_error must be its own, and
 *     fp4_last_error(NULL) the calling thread's;
 *   - the logger's promises: once fp4_set_log_callback returns, the old callback never runs;
 *     a callback may call the library (what that logs is dropped, nothing deadlocks);
 *   - lifecycle: 1000 create / GEMM / destroy cycles serially, then 1000 more spread over 8
 *     threads: the same result every time, no file-descriptor growth (leaks: LeakSanitizer in
 *     `make test-sanitize`);
 *   - faults: a host allocation that fails (a huge fp4_malloc), contexts on a device that is
 *     not there: the documented status, nothing leaked, and the context still usable.
 * Built with -fsanitize=thread by `make test-tsan` (build-tsan), which must report nothing.
 */
#define _POSIX_C_SOURCE 200809L /* pthread_barrier_t, nanosleep */
#include "test_util.h"
#include "threads_work.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { THREADS = 8, ITERS = 200, CYCLES = 1000 };

static const tw_limits k_lim = {32, 64, 512, 0};
static uint64_t g_base;

static void sleep_us(long us) {
    struct timespec ts = {0, us * 1000L};
    nanosleep(&ts, NULL);
}

/* ---- the log callbacks: A and B, each with its token and "retired" flag ------------------ */

static int g_token_a, g_token_b;
static atomic_int g_retired_a = 1, g_retired_b = 1;
static atomic_long g_calls_a, g_calls_b, g_violations;

static void check_message(const char *message) {
    if (!message || !message[0]) atomic_fetch_add(&g_violations, 1);
}

static void log_a(fp4_log_level level, const char *message, void *user) {
    if (atomic_load(&g_retired_a) || user != &g_token_a) atomic_fetch_add(&g_violations, 1);
    check_message(message);
    /* the callback may call the library; this one is ignored inside a callback */
    fp4_set_log_callback(NULL, NULL);
    (void)fp4_get_log_level();
    atomic_fetch_add(&g_calls_a, 1);
}

static void log_b(fp4_log_level level, const char *message, void *user) {
    if (atomic_load(&g_retired_b) || user != &g_token_b) atomic_fetch_add(&g_violations, 1);
    check_message(message);
    atomic_fetch_add(&g_calls_b, 1);
}

static atomic_int g_stop_logger;

/* Swaps A and B, and the level between debug and off, until told to stop. */
static void *logger_main(void *arg) {
    long *phases = (long *)arg;
    for (long p = 0; !atomic_load(&g_stop_logger); p++) {
        if (p % 2 == 0) {
            atomic_store(&g_retired_a, 0);
            fp4_set_log_callback(log_a, &g_token_a);
            atomic_store(&g_retired_b, 1); /* B neither runs nor will run */
        } else {
            atomic_store(&g_retired_b, 0);
            fp4_set_log_callback(log_b, &g_token_b);
            atomic_store(&g_retired_a, 1);
        }
        fp4_set_log_level(p % 3 == 2 ? FP4_LOG_OFF : FP4_LOG_DEBUG);
        (*phases)++;
        sleep_us(50);
    }
    return NULL;
}

/* ---- the concurrent jobs ------------------------------------------------------------------ */

typedef struct worker {
    int t;
    fp4_ctx *ctx;
    pthread_barrier_t *start;
    uint64_t hashes[ITERS];
    int run_failures, error_mixups;
    char first_error[800];
} worker;

static void note(worker *w, const char *fmt, const char *a, const char *b) {
    if (!w->first_error[0]) snprintf(w->first_error, sizeof w->first_error, fmt, a, b);
}

/* Failures on this thread's own context and without one: the messages must be this
 * thread's, whatever the other threads fail with at the same time. */
static void check_own_errors(worker *w, int i) {
    char want[64];
    void *p = (void *)&w;
    const int64_t bad = -1000 - (int64_t)w->t * 100 - i;
    snprintf(want, sizeof want, "bytes = %lld is negative", (long long)bad);
    if (fp4_malloc(w->ctx, &p, bad) != FP4_ERR_INVALID_ARGUMENT ||
        !strstr(fp4_last_error(w->ctx), want)) {
        w->error_mixups++;
        note(w, "fp4_last_error(ctx) = \"%s\", expected \"%s\"", fp4_last_error(w->ctx), want);
    }
    fp4_ctx *none = (fp4_ctx *)&w;
    const int dev = -2 - w->t * 100 - i;
    snprintf(want, sizeof want, "device = %d", dev);
    if (fp4_create(&none, dev) != FP4_ERR_INVALID_ARGUMENT || none != NULL ||
        !strstr(fp4_last_error(NULL), want)) {
        w->error_mixups++;
        note(w, "fp4_last_error(NULL) = \"%s\", expected \"%s\"", fp4_last_error(NULL), want);
    }
    /* process-wide reads: the registry, the policy, names, devices */
    fp4_tactic tac;
    char why[256], name[64];
    int count = -1;
    if (fp4_gemm_select(w->ctx, NULL, &tac, why, sizeof why) != FP4_OK ||
        tac.backend != FP4_BACKEND_CPU || fp4_tactic_name(tac, name, sizeof name) != FP4_OK ||
        fp4_tactic_from_name("CPU_REF/default", &tac) != FP4_OK || tac.config != 0 ||
        fp4_device_count(&count) != FP4_OK || count < 0) {
        w->error_mixups++;
        note(w, "registry/policy calls: %s%s", why, "");
    }
}

static void *worker_main(void *arg) {
    worker *w = (worker *)arg;
    tw_arena arena;
    char err[700];
    if (tw_arena_alloc(w->ctx, &k_lim, &arena) != FP4_OK) {
        w->run_failures = ITERS;
        note(w, "tw_arena_alloc: %s%s", fp4_last_error(w->ctx), "");
        pthread_barrier_wait(w->start);
        return NULL;
    }
    pthread_barrier_wait(w->start);
    for (int i = 0; i < ITERS; i++) {
        tw_job job;
        tw_job_make(tw_seed(g_base, (uint64_t)w->t, (uint64_t)i), &k_lim, &job);
        if (tw_job_run(&arena, &job, NULL, &w->hashes[i], err, sizeof err) != FP4_OK) {
            w->run_failures++;
            note(w, "%s%s", err, "");
        }
        if (i % 4 == 3) check_own_errors(w, i);
    }
    tw_arena_free(&arena);
    return NULL;
}

/* Reads every context through the calls the contract lets overlap with anything. */
typedef struct peeker {
    worker *workers;
    atomic_int stop;
    long rounds, wrong;
} peeker;

static void *peeker_main(void *arg) {
    peeker *pk = (peeker *)arg;
    static _Alignas(256) uint8_t dummy[4096];
    fp4_gemm_desc d;
    fp4_gemm_desc_init(&d);
    d.m = 4;
    d.n = 8;
    d.k = 64;
    d.a = d.a_sf = d.b = d.b_sf = dummy;
    d.d = dummy;
    while (!atomic_load(&pk->stop)) {
        for (int t = 0; t < THREADS; t++) {
            const fp4_ctx *ctx = pk->workers[t].ctx;
            char why[256];
            if (fp4_ctx_device(ctx) != -1 || fp4_ctx_compute_capability(ctx) != 0 ||
                fp4_backend_check(ctx, FP4_BACKEND_CPU_REF, NULL, why, sizeof why) != FP4_OK ||
                fp4_backend_check(ctx, FP4_BACKEND_CPU_REF, &d, why, sizeof why) != FP4_OK ||
                fp4_backend_check(ctx, FP4_BACKEND_CUDA_SIMT, &d, why, sizeof why) !=
                    FP4_ERR_NOT_SUPPORTED ||
                fp4_measure_sets(ctx, 1e6) != 1)
                pk->wrong++;
        }
        pk->rounds++;
    }
    return NULL;
}

static void test_concurrent_jobs(void) {
    static uint64_t expected[THREADS][ITERS];
    char err[700], what[200];
    int failed = 0;

    // 1. the same jobs, serially, on one context
    fp4_ctx *ctx = NULL;
    tw_arena arena;
    if (!tu_ok(fp4_create(&ctx, -1), NULL, "fp4_create") ||
        !tu_ok(tw_arena_alloc(ctx, &k_lim, &arena), ctx, "tw_arena_alloc")) {
        tu_case(0, "serial reference run");
        fp4_destroy(ctx);
        return;
    }
    int counts[3] = {0, 0, 0};
    for (int t = 0; t < THREADS && !failed; t++)
        for (int i = 0; i < ITERS && !failed; i++) {
            tw_job job;
            tw_job_make(tw_seed(g_base, (uint64_t)t, (uint64_t)i), &k_lim, &job);
            counts[job.kind]++;
            if (tw_job_run(&arena, &job, NULL, &expected[t][i], err, sizeof err) != FP4_OK) {
                tw_job_describe(&job, what, sizeof what);
                printf("  serial %s: %s\n", what, err);
                failed = 1;
            }
        }
    tw_arena_free(&arena);
    fp4_destroy(ctx);
    tu_case(!failed, "serial reference run: %d jobs (%d quantize, %d dequantize, %d gemm)",
            THREADS * ITERS, counts[0], counts[1], counts[2]);
    if (failed) return;

    // 2. the same jobs on 8 threads, with the logger and the peeker running beside them
    worker workers[THREADS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, THREADS + 1);
    memset(workers, 0, sizeof workers);
    int created = 1;
    for (int t = 0; t < THREADS; t++) {
        workers[t].t = t;
        workers[t].start = &start;
        if (fp4_create(&workers[t].ctx, -1) != FP4_OK) created = 0;
    }
    if (!created) {
        tu_case(0, "fp4_create for %d threads: %s", THREADS, fp4_last_error(NULL));
        for (int t = 0; t < THREADS; t++) fp4_destroy(workers[t].ctx);
        pthread_barrier_destroy(&start);
        return;
    }
    atomic_store(&g_retired_b, 0);
    fp4_set_log_callback(log_b, &g_token_b);
    fp4_set_log_level(FP4_LOG_DEBUG);
    long phases = 0;
    peeker pk;
    memset(&pk, 0, sizeof pk);
    pk.workers = workers;
    atomic_store(&g_stop_logger, 0);
    pthread_t threads[THREADS], logger, peek;
    pthread_create(&logger, NULL, logger_main, &phases);
    pthread_create(&peek, NULL, peeker_main, &pk);
    for (int t = 0; t < THREADS; t++) pthread_create(&threads[t], NULL, worker_main, &workers[t]);
    pthread_barrier_wait(&start);
    for (int t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
    atomic_store(&g_stop_logger, 1);
    atomic_store(&pk.stop, 1);
    pthread_join(logger, NULL);
    pthread_join(peek, NULL);
    fp4_set_log_callback(NULL, NULL);
    atomic_store(&g_retired_a, 1);
    atomic_store(&g_retired_b, 1);
    fp4_set_log_level(FP4_LOG_WARN);
    pthread_barrier_destroy(&start);
    for (int t = 0; t < THREADS; t++) fp4_destroy(workers[t].ctx);

    int run_failures = 0, mixups = 0, mismatches = 0;
    for (int t = 0; t < THREADS; t++) {
        run_failures += workers[t].run_failures;
        mixups += workers[t].error_mixups;
        if (workers[t].first_error[0]) printf("  thread %d: %s\n", t, workers[t].first_error);
        for (int i = 0; i < ITERS; i++) {
            if (workers[t].hashes[i] == expected[t][i]) continue;
            if (mismatches++ < 5) {
                tw_job job;
                tw_job_make(tw_seed(g_base, (uint64_t)t, (uint64_t)i), &k_lim, &job);
                tw_job_describe(&job, what, sizeof what);
                printf("  thread %d job %d (%s): hash %016llx, serial %016llx\n", t, i, what,
                       (unsigned long long)workers[t].hashes[i],
                       (unsigned long long)expected[t][i]);
            }
        }
    }
    tu_case(run_failures == 0, "%d threads x %d jobs, each on its own context: all ran",
            THREADS, ITERS);
    tu_case(mismatches == 0, "every result bit-identical to the serial run (%d differ)",
            mismatches);
    tu_case(mixups == 0,
            "fp4_last_error(ctx) per context, fp4_last_error(NULL) per thread (%d mix-ups)",
            mixups);
    tu_case(pk.wrong == 0 && pk.rounds > 0,
            "fp4_ctx_device / fp4_backend_check / fp4_measure_sets beside the calls on the "
            "context (%ld rounds, %ld wrong)",
            pk.rounds, pk.wrong);
    const long a = atomic_load(&g_calls_a), b = atomic_load(&g_calls_b);
    tu_case(atomic_load(&g_violations) == 0 && a + b > 0 && phases > 1,
            "log callback swapped %ld times under load: %ld + %ld messages delivered, none to "
            "a replaced callback (%ld violations)",
            phases, a, b, (long)atomic_load(&g_violations));
}

/* ---- a callback that calls the library ------------------------------------------------------ */

static int g_reentry_calls;

static void log_reentry(fp4_log_level level, const char *message, void *user) {
    g_reentry_calls++;
    void *p = NULL;
    /* fails, and would log at debug level: dropped, not delivered to this callback again */
    (void)fp4_malloc((fp4_ctx *)user, &p, -2);
}

static void test_log_reentry(void) {
    fp4_ctx *outer = NULL, *inner = NULL;
    if (!tu_ok(fp4_create(&outer, -1), NULL, "fp4_create") ||
        !tu_ok(fp4_create(&inner, -1), NULL, "fp4_create")) {
        tu_case(0, "log re-entry: set-up");
        fp4_destroy(outer);
        return;
    }
    fp4_set_log_callback(log_reentry, inner);
    fp4_set_log_level(FP4_LOG_DEBUG);
    void *p = NULL;
    const fp4_status st = fp4_malloc(outer, &p, -1);
    fp4_set_log_callback(NULL, NULL);
    fp4_set_log_level(FP4_LOG_WARN);
    tu_case(st == FP4_ERR_INVALID_ARGUMENT && g_reentry_calls == 1 &&
                strstr(fp4_last_error(outer), "bytes = -1 ") &&
                strstr(fp4_last_error(inner), "bytes = -2 "),
            "a log callback that calls the library: its call works, its message is dropped "
            "(%d deliveries), no deadlock",
            g_reentry_calls);
    fp4_destroy(inner);
    fp4_destroy(outer);
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

static const tw_limits k_cycle_lim = {8, 16, 128, 0};

/* A GEMM job (the first seed from `base` that makes one). */
static void gemm_job(uint64_t base, tw_job *job) {
    for (uint64_t i = 0;; i++) {
        tw_job_make(tw_seed(base, 99, i), &k_cycle_lim, job);
        if (job->kind == TW_GEMM) return;
    }
}

/* One cycle: create, allocate, GEMM, free, destroy on the CPU (tw_cycle). */
static int one_cycle(const tw_job *job, uint64_t *want, char *err, size_t len) {
    return tw_cycle(-1, &k_cycle_lim, job, want, err, len);
}

static void test_lifecycle(void) {
    tw_job job;
    gemm_job(g_base, &job);
    uint64_t want = 0;
    char err[700] = "";
    if (!one_cycle(&job, &want, err, sizeof err)) { /* warm-up: the reference hash */
        tu_case(0, "lifecycle warm-up: %s", err);
        return;
    }
    const int fds0 = tw_count_fds();
    int failures = 0;
    for (int i = 0; i < CYCLES; i++)
        if (!one_cycle(&job, &want, err, sizeof err) && failures++ == 0)
            printf("  cycle %d: %s\n", i, err);
    const int fds1 = tw_count_fds();
    tu_case(failures == 0, "%d create / GEMM / destroy cycles: same result each time",
            CYCLES);

    failures = tw_cycle_threads(-1, &k_cycle_lim, &job, want, THREADS, CYCLES / THREADS);
    const int fds2 = tw_count_fds();
    tu_case(failures == 0, "%d threads x %d cycles at the same time: same result each time",
            THREADS, CYCLES / THREADS);
    tu_case(fds0 >= 0 && fds1 == fds0 && fds2 == fds0,
            "open file descriptors: %d before, %d after the serial cycles, %d after the "
            "threaded ones",
            fds0, fds1, fds2);
}

/* ---- faults ---------------------------------------------------------------------------------- */

static void test_faults(void) {
    fp4_ctx *ctx = NULL;
    tw_arena arena;
    if (!tu_ok(fp4_create(&ctx, -1), NULL, "fp4_create") ||
        !tu_ok(tw_arena_alloc(ctx, &k_cycle_lim, &arena), ctx, "tw_arena_alloc")) {
        tu_case(0, "faults: set-up");
        fp4_destroy(ctx);
        return;
    }
    tw_job job;
    gemm_job(g_base + 1, &job);
    uint64_t want = 0, h = 0;
    char err[700];
    const int ran = tw_job_run(&arena, &job, NULL, &want, err, sizeof err) == FP4_OK;
    tu_case(ran, "faults: a GEMM before the faults%s%s", ran ? "" : ": ", ran ? "" : err);

    // a host allocation that fails: a request no machine can meet
    const int64_t huge[2] = {(int64_t)1 << 62, INT64_MAX};
    for (int i = 0; i < 2; i++) {
        void *p = (void *)&h;
        const fp4_status st = fp4_malloc(ctx, &p, huge[i]);
        const char *msg = fp4_last_error(ctx);
        tu_case(st == FP4_ERR_OUT_OF_MEMORY && p == NULL && strstr(msg, "host memory"),
                "fp4_malloc(%lld bytes) on the CPU: %s, ptr %s, \"%s\"", (long long)huge[i],
                fp4_status_name(st), p ? "set" : "NULL", msg);
        h = 0;
        const int again = tw_job_run(&arena, &job, NULL, &h, err, sizeof err) == FP4_OK;
        tu_case(again && h == want && fp4_last_error(ctx)[0] == 0,
                "the context after the failed allocation: the same GEMM, the same result%s%s",
                again ? "" : ": ", again ? "" : err);
    }

    // contexts on a device that is not there (no CUDA in this build, or no such device)
    int count = 0;
    (void)fp4_device_count(&count);
    const int missing = count; /* the first ordinal past the last device */
    const int fds0 = tw_count_fds();
    int wrong = 0;
    for (int i = 0; i < 100; i++) {
        fp4_ctx *gpu = (fp4_ctx *)&h;
        const fp4_status st = fp4_create(&gpu, missing);
        if (st != FP4_ERR_NO_DEVICE || gpu != NULL) wrong++;
        fp4_destroy(gpu);
    }
    tu_case(wrong == 0 && tw_count_fds() == fds0,
            "100 x fp4_create(device %d) with %d device(s): FP4_ERR_NO_DEVICE, ctx NULL, no fd "
            "growth (%d wrong): \"%s\"",
            missing, count, wrong, fp4_last_error(NULL));
    tw_arena_free(&arena);
    fp4_destroy(ctx);
}

int main(void) {
    g_base = tu_seed(0x7417EAD5ull);
    tu_begin("test_threads", g_base);
    test_concurrent_jobs();
    test_log_reentry();
    test_lifecycle();
    test_faults();
    return tu_finish();
}

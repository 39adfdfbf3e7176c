/* test_tuning.c - the autotuner and its cache (src/tune/, docs/tuning.md): buckets, fp4_tune
 * on the CPU, auto consulting the tuned table (fp4_gemm_select's reason), the cache file's
 * round trip, entries of other devices and versions, corrupt and hostile files, the atomic
 * write, FP4GEMM_TUNING_FILE, the first-use mode; and on a GPU, a real tuning. */
#define _POSIX_C_SOURCE 200809L
#include "fp4gemm.h"
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char g_dir[256];

/* ---- a log catcher ---------------------------------------------------------------------- */
static int g_warnings;
static char g_last_warning[1024];
static void catch_log(fp4_log_level level, const char *message, void *user) {
    if (level == FP4_LOG_WARN) {
        g_warnings++;
        snprintf(g_last_warning, sizeof g_last_warning, "%s", message);
    }
}

static int64_t entries(const fp4_ctx *ctx) {
    fp4_tuning_info info;
    info.struct_size = sizeof info;
    if (fp4_tuning_get_info(ctx, &info) != FP4_OK) return -1;
    return info.entries;
}

static fp4_gemm_desc problem(int64_t m, int64_t n, int64_t k) {
    fp4_gemm_desc d;
    fp4_gemm_desc_init(&d);
    d.m = m;
    d.n = n;
    d.k = k;
    return d;
}

/* fp4_gemm_select's reason for an AUTO problem with stand-in pointers. */
static fp4_status select_why(fp4_ctx *ctx, fp4_gemm_desc d, fp4_tactic *t, char *why, size_t len) {
    static uint64_t dummy[64];
    d.a = d.a_sf = d.b = d.b_sf = dummy;
    d.d = dummy;
    return fp4_gemm_select(ctx, &d, t, why, len);
}

static int starts_with(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

/* The temporaries of fp4_tuning_save left in g_dir (".NAME.XXXXXX": src/atomic_file.c). */
static int count_temporaries(void) { return tu_count_hidden_files(g_dir); }

/* ---- cases --------------------------------------------------------------------------------- */

static void test_buckets(tu_rng *rng) {
    static const int64_t cases[][2] = {
        {1, 1},       {2, 2},       {3, 4},       {5, 8},       {100, 128},  {255, 256},
        {256, 256},   {257, 512},   {512, 512},   {513, 768},   {1000, 1024}, {3841, 4096},
        {4096, 4096}, {4097, 8192}, {8192, 8192}, {8193, 16384}, {100000, 131072},
        {0, -1},      {-7, -1},     {INT64_MAX, -1}};
    int ok = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const int64_t b = fp4_tuning_bucket_m(cases[i][0]);
        if (b != cases[i][1]) {
            printf("  bucket(%lld) = %lld, expected %lld\n", (long long)cases[i][0],
                   (long long)b, (long long)cases[i][1]);
            ok = 0;
        }
    }
    tu_case(ok, "bucket: the issue's table (powers of two to 256, 256s to 4096, then powers)");
    ok = 1;
    int64_t prev_m = 0, prev_b = 0;
    for (int i = 0; i < 20000 && ok; i++) {
        const int64_t m = prev_m + tu_rng_range(rng, 1, 40);
        const int64_t b = fp4_tuning_bucket_m(m);
        ok = b >= m && fp4_tuning_bucket_m(b) == b && b >= prev_b;
        if (!ok) printf("  m = %lld: bucket %lld\n", (long long)m, (long long)b);
        prev_m = m;
        prev_b = b;
    }
    tu_case(ok, "bucket: >= m, a fixed point, monotone (20000 seeded m)");
}

typedef struct progress_log {
    int calls, problems_seen, bad;
} progress_log;
static void on_progress(void *user, const fp4_tune_progress *p) {
    progress_log *log = (progress_log *)user;
    log->calls++;
    log->problems_seen = p->problems;
    if (p->problem < 0 || p->problem >= p->problems || p->left_s < 0 || p->elapsed_s < 0)
        log->bad = 1;
}

static void test_tune_cpu(fp4_ctx *ctx) {
    fp4_tuning_clear(ctx);
    fp4_gemm_desc probs[2] = {problem(3, 32, 64), problem(100, 16, 32)};
    probs[1].d_dtype = FP4_DTYPE_F32;
    fp4_tune_result res[2];
    for (int i = 0; i < 2; i++) res[i].struct_size = sizeof res[i];
    fp4_tune_options opt;
    fp4_tune_options_init(&opt);
    progress_log log = {0, 0, 0};
    opt.progress = on_progress;
    opt.user = &log;
    // the candidates: every tactic that can run each problem here (cpu_ref, and the fast CPU
    // backend's configs where it is built); the winner is one of them
    const fp4_status st = fp4_tune(ctx, probs, 2, &opt, res);
    tu_case(st == FP4_OK && res[0].tuned && res[1].tuned && res[0].candidates >= 1 &&
                res[0].best.backend != FP4_BACKEND_AUTO && res[0].best.config >= 0 &&
                res[0].best_us > 0 && res[0].failed == 0,
            "fp4_tune on the CPU: %d tactics verified and timed (%s)", res[0].candidates,
            res[0].message);
    tu_case(log.calls == res[0].candidates + res[1].candidates && log.problems_seen == 2 &&
                !log.bad,
            "fp4_tune: the progress callback once per tactic (%d calls, %d tactics)", log.calls,
            res[0].candidates + res[1].candidates);
    tu_case(entries(ctx) == 2, "fp4_tune: one table entry per problem");

    fp4_tactic t;
    char why[512];
    fp4_status s = select_why(ctx, problem(4, 32, 64), &t, why, sizeof why); /* bucket of 3 */
    tu_case(s == FP4_OK && starts_with(why, "tuned: bucket m <= 4") &&
                t.backend == res[0].best.backend && t.config == res[0].best.config,
            "select: m = 4 is in m = 3's bucket: \"%s\"", why);
    s = select_why(ctx, problem(5, 32, 64), &t, why, sizeof why);
    tu_case(s == FP4_OK && starts_with(why, "auto: policy"),
            "select: m = 5 (bucket 8) has no entry: the policy: \"%s\"", why);
    fp4_gemm_desc other = problem(4, 32, 64);
    other.d_dtype = FP4_DTYPE_F16;
    s = select_why(ctx, other, &t, why, sizeof why);
    tu_case(s == FP4_OK && starts_with(why, "auto: policy"),
            "select: another output dtype is another bucket: \"%s\"", why);
    fp4_gemm_desc explicit_ = problem(4, 32, 64);
    explicit_.backend = FP4_BACKEND_CPU_REF;
    s = select_why(ctx, explicit_, &t, why, sizeof why);
    tu_case(s == FP4_OK && starts_with(why, "explicit"),
            "select: an explicit backend ignores the table: \"%s\"", why);

    /* bad arguments */
    fp4_gemm_desc bad = problem(4, 32, 24);
    s = fp4_tune(ctx, &bad, 1, NULL, NULL);
    tu_case(s == FP4_ERR_INVALID_ARGUMENT && strstr(fp4_last_error(ctx), "problems[0]"),
            "fp4_tune: k = 24 -> INVALID_ARGUMENT naming problems[0]: %s", fp4_last_error(ctx));
    tu_case(fp4_tune(ctx, probs, 0, NULL, NULL) == FP4_ERR_INVALID_ARGUMENT &&
                fp4_tune(ctx, NULL, 1, NULL, NULL) == FP4_ERR_INVALID_ARGUMENT &&
                fp4_tune(NULL, probs, 1, NULL, NULL) == FP4_ERR_INVALID_ARGUMENT,
            "fp4_tune: count 0, NULL problems, NULL ctx -> INVALID_ARGUMENT");
    tu_case(fp4_set_autotune(ctx, (fp4_autotune_mode)7) == FP4_ERR_INVALID_ARGUMENT,
            "fp4_set_autotune: an unknown mode -> INVALID_ARGUMENT");
}

static double wall_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Where fp4_tune's time went (docs/tuning.md "Cost"): each result's phases sum to about its
 * elapsed time, and the elapsed times to about the call's wall time; every candidate is timed,
 * cut or failed; a tactic far slower than the best (cpu_ref: orders of magnitude slower than
 * the cpu backend here) is cut after its first launches, and at a larger M of the same shape
 * without a launch. */
static void test_tune_cost(void) {
    fp4_ctx *ctx = NULL; /* a context of its own: the other cases use the first one's table */
    if (!tu_ok(fp4_create(&ctx, -1), NULL, "fp4_create")) return;
    /* one thread: OpenMP teams of two test processes on a small machine (ctest -j) slow each
     * other's launches 100-fold, which would make the times below say nothing */
    fp4_ctx_set_num_threads(ctx, 1);
    fp4_gemm_desc probs[3] = {problem(16, 256, 512), problem(64, 256, 512), problem(8, 64, 128)};
    fp4_tune_result res[3];
    for (int i = 0; i < 3; i++) res[i].struct_size = sizeof res[i];
    const double t0 = wall_s();
    const fp4_status st = fp4_tune(ctx, probs, 3, NULL, res);
    const double wall = wall_s() - t0;
    double sum = 0;
    for (int i = 0; i < 3; i++) {
        const fp4_tune_result *r = &res[i];
        const double phases = r->operands_s + r->estimate_s + r->verify_s + r->measure_s;
        sum += r->elapsed_s;
        tu_case(st == FP4_OK && r->tuned && r->elapsed_s > 0 && r->operands_s >= 0 &&
                    r->estimate_s > 0 && r->verify_s > 0 && r->measure_s > 0 &&
                    phases <= r->elapsed_s * (1 + 1e-9) && phases >= 0.7 * r->elapsed_s &&
                    r->timed >= 1 && r->timed + r->too_slow + r->failed == r->candidates,
                "tune m = %lld: %.4f s = operands %.4f + estimates %.4f + verify %.4f + timing "
                "%.4f + other; %d timed, %d cut, %d failed of %d",
                (long long)probs[i].m, r->elapsed_s, r->operands_s, r->estimate_s, r->verify_s,
                r->measure_s, r->timed, r->too_slow, r->failed, r->candidates);
    }
    tu_case(sum <= wall && sum >= 0.8 * wall,
            "tune: the problems' elapsed times (%.4f s) make up the call's %.4f s", sum, wall);
    tu_case(strstr(res[0].message, "cpu_ref/default cut:") && res[0].timed < res[0].candidates,
            "tune m = 16: cpu_ref cut untimed: %s", res[0].message);
    tu_case(strstr(res[1].message, "cpu_ref/default cut:") &&
                strstr(res[1].message, "at M = 16 already"),
            "tune m = 64: cpu_ref cut without a launch (its time at M = 16): %s", res[1].message);
    fp4_destroy(ctx);
}

static void test_round_trip(fp4_ctx *ctx) {
    char path[512];
    snprintf(path, sizeof path, "%s/cache.txt", g_dir);
    /* ctx holds two entries from test_tune_cpu */
    fp4_status st = fp4_tuning_save(ctx, path);
    tu_case(st == FP4_OK && count_temporaries() == 0,
            "save: FP4_OK, no temporary file left");
    fp4_ctx *fresh = NULL;
    fp4_create(&fresh, -1);
    st = fp4_tuning_load(fresh, path);
    fp4_tuning_info info;
    info.struct_size = sizeof info;
    fp4_tuning_get_info(fresh, &info);
    tu_case(st == FP4_OK && info.entries == 2 && info.ignored == 0 &&
                strcmp(info.file, path) == 0 && strstr(info.device_key, "\"CPU\" sm_0"),
            "load: the saved entries back (%lld), file and device key reported (%s)",
            (long long)info.entries, info.device_key);
    fp4_tactic t;
    char why[512];
    st = select_why(fresh, problem(3, 32, 64), &t, why, sizeof why);
    tu_case(st == FP4_OK && starts_with(why, "tuned"), "load: auto consults it: \"%s\"", why);
    /* saving the reloaded table gives the same bytes */
    char path2[512];
    snprintf(path2, sizeof path2, "%s/cache2.txt", g_dir);
    fp4_tuning_save(fresh, path2);
    FILE *a = fopen(path, "rb"), *b = fopen(path2, "rb");
    int same = a && b;
    for (int ca = 0, cb = 0; same && (ca != EOF || cb != EOF);) {
        ca = fgetc(a);
        cb = fgetc(b);
        same = ca == cb;
    }
    if (a) fclose(a);
    if (b) fclose(b);
    tu_case(same, "save after load: byte-identical file");

    /* the environment variable at context creation */
    setenv("FP4GEMM_TUNING_FILE", path, 1);
    fp4_ctx *env_ctx = NULL;
    fp4_create(&env_ctx, -1);
    tu_case(env_ctx && entries(env_ctx) == 2, "FP4GEMM_TUNING_FILE: loaded by fp4_create");
    fp4_destroy(env_ctx);
    char bad[512];
    snprintf(bad, sizeof bad, "%s/corrupt.txt", g_dir);
    write_file(bad, "fp4gemm-tuning 1\nentry \"CPU\" 0 0 garbage\n");
    setenv("FP4GEMM_TUNING_FILE", bad, 1);
    g_warnings = 0;
    env_ctx = NULL;
    st = fp4_create(&env_ctx, -1);
    tu_case(st == FP4_OK && entries(env_ctx) == 0 && g_warnings == 1 &&
                strstr(g_last_warning, "corrupt.txt:2"),
            "FP4GEMM_TUNING_FILE corrupt: the context is made, one warning: %s", g_last_warning);
    fp4_destroy(env_ctx);
    unsetenv("FP4GEMM_TUNING_FILE");
    fp4_destroy(fresh);
}

static void test_foreign_entries(fp4_ctx *ctx) {
    char text[2048];
    snprintf(text, sizeof text,
             "fp4gemm-tuning 1\n"
             "# comment\n\n"
             "entry \"NVIDIA H200\" 90 132 %s 16 4096 4096 e2m1 linear linear bf16 "
             "cuda_mma/m16_r1 10.5\n"
             "entry \"CPU\" 0 0 99.0.0 16 64 64 e2m1 linear linear bf16 some_future/tactic 3\n"
             "entry \"CPU\" 0 0 %s 512 64 64 e2m1 linear linear bf16 CPU_REF/default 7.25\n"
             "end 3\n",
             fp4_version(), fp4_version());
    fp4_tuning_clear(ctx);
    g_warnings = 0;
    const fp4_status st = fp4_tuning_load_buffer(ctx, text, strlen(text), "mixed");
    fp4_tuning_info info;
    info.struct_size = sizeof info;
    fp4_tuning_get_info(ctx, &info);
    tu_case(st == FP4_OK && info.entries == 1 && info.ignored == 2 && g_warnings == 1 &&
                strstr(g_last_warning, "2 of 3 entries"),
            "other device / version: ignored with one warning: %s", g_last_warning);
    fp4_tactic t;
    char why[512];
    fp4_status s = select_why(ctx, problem(300, 64, 64), &t, why, sizeof why);
    tu_case(s == FP4_OK && starts_with(why, "tuned: bucket m <= 512"),
            "the matching entry is used: \"%s\"", why);
}

static void test_corrupt(fp4_ctx *ctx) {
    const char *v = fp4_version();
    char good_entry[256];
    snprintf(good_entry, sizeof good_entry,
             "entry \"CPU\" 0 0 %s 16 64 64 e2m1 linear linear bf16 cpu_ref/default 5", v);
    static char long_line[6000];
    memset(long_line, 'x', sizeof long_line - 1);
    long_line[sizeof long_line - 1] = 0;
    struct {
        const char *what, *expect;
        char text[6200];
        size_t len; /* 0: strlen */
    } cases[24];
    int n = 0;
#define CASE(w, e, ...)                                                                     \
    do {                                                                                    \
        cases[n].what = (w);                                                                \
        cases[n].expect = (e);                                                              \
        snprintf(cases[n].text, sizeof cases[n].text, __VA_ARGS__);                        \
        cases[n].len = 0;                                                                   \
        n++;                                                                                \
    } while (0)
    CASE("empty", "empty", "%s", "");
    CASE("not a tuning file", "not an fp4gemm tuning file", "{\"json\": true}\n");
    CASE("future format version", "format version 2", "fp4gemm-tuning 2\nend 0\n");
    CASE("truncated: no end line", "truncated", "fp4gemm-tuning 1\n%s\n", good_entry);
    CASE("end count mismatch", "'end 2' but the file has 1", "fp4gemm-tuning 1\n%s\nend 2\n",
         good_entry);
    CASE("text after end", "after the 'end'", "fp4gemm-tuning 1\nend 0\n%s\n", good_entry);
    CASE("unknown line kind", "is not a line kind", "fp4gemm-tuning 1\nentri x\nend 0\n");
    CASE("m not a bucket", "M bucket", "fp4gemm-tuning 1\nentry \"CPU\" 0 0 %s 3 64 64 e2m1 "
         "linear linear bf16 cpu_ref/default 5\nend 1\n", v);
    CASE("k not a multiple of 16", "K:", "fp4gemm-tuning 1\nentry \"CPU\" 0 0 %s 4 64 24 e2m1 "
         "linear linear bf16 cpu_ref/default 5\nend 1\n", v);
    CASE("integer overflow", "N:", "fp4gemm-tuning 1\nentry \"CPU\" 0 0 %s 4 "
         "99999999999999999999999 64 e2m1 linear linear bf16 cpu_ref/default 5\nend 1\n", v);
    CASE("negative number", "N:", "fp4gemm-tuning 1\nentry \"CPU\" 0 0 %s 4 -64 64 e2m1 "
         "linear linear bf16 cpu_ref/default 5\nend 1\n", v);
    CASE("bad dtype", "D dtype", "fp4gemm-tuning 1\nentry \"CPU\" 0 0 %s 4 64 64 e2m1 "
         "linear linear e2m1 cpu_ref/default 5\nend 1\n", v);
    CASE("unknown tactic", "not a backend/config", "fp4gemm-tuning 1\nentry \"CPU\" 0 0 %s 4 "
         "64 64 e2m1 linear linear bf16 cpu_ref/fastest 5\nend 1\n", v);
    CASE("backend without config", "not a backend/config", "fp4gemm-tuning 1\nentry \"CPU\" 0 "
         "0 %s 4 64 64 e2m1 linear linear bf16 cpu_ref 5\nend 1\n", v);
    CASE("NaN median", "median", "fp4gemm-tuning 1\nentry \"CPU\" 0 0 %s 4 64 64 e2m1 linear "
         "linear bf16 cpu_ref/default nan\nend 1\n", v);
    CASE("zero median", "median", "fp4gemm-tuning 1\nentry \"CPU\" 0 0 %s 4 64 64 e2m1 linear "
         "linear bf16 cpu_ref/default 0\nend 1\n", v);
    CASE("extra field", "after the median", "fp4gemm-tuning 1\nentry \"CPU\" 0 0 %s 4 64 64 "
         "e2m1 linear linear bf16 cpu_ref/default 5 6\nend 1\n", v);
    CASE("unterminated name", "device name", "fp4gemm-tuning 1\nentry \"CPU 0 0 %s\nend 1\n", v);
    CASE("line too long", "longer than", "fp4gemm-tuning 1\n# %s\nend 0\n", long_line);
    CASE("missing fields", "SM count", "fp4gemm-tuning 1\nentry \"CPU\" 0\nend 1\n");
    CASE("binary", "NUL byte", "fp4gemm-tuning 1\nend 0\n");
    cases[n - 1].len = strlen(cases[n - 1].text);
    cases[n - 1].text[17] = 0; /* a NUL inside the "end 0" line */
    int all = 1;
    for (int i = 0; i < n; i++) {
        fp4_tuning_clear(ctx);
        char keep[400];
        snprintf(keep, sizeof keep, "fp4gemm-tuning 1\n%s\nend 1\n", good_entry);
        fp4_tuning_load_buffer(ctx, keep, strlen(keep), "keep");
        const size_t len = cases[i].len ? cases[i].len : strlen(cases[i].text);
        const fp4_status st = fp4_tuning_load_buffer(ctx, cases[i].text, len, "bad.txt");
        const char *err = fp4_last_error(ctx);
        const int ok = st == FP4_ERR_INVALID_ARGUMENT && strstr(err, cases[i].expect) &&
                       strstr(err, "bad.txt") && strstr(err, "ignored") && entries(ctx) == 1;
        if (!ok) all = 0;
        tu_case(ok, "corrupt file rejected whole, table kept: %s: %s", cases[i].what, err);
    }
    /* too large: rejected before parsing */
    const size_t big = (size_t)(16 << 20) + 1;
    char *huge = malloc(big);
    if (huge) {
        memset(huge, '#', big);
        const fp4_status hs = fp4_tuning_load_buffer(ctx, huge, big, "huge");
        tu_case(hs == FP4_ERR_INVALID_ARGUMENT && strstr(fp4_last_error(ctx), "limit"),
                "a file over 16 MiB is rejected: %s", fp4_last_error(ctx));
        free(huge);
    }
    fp4_tuning_info bad_info;
    bad_info.struct_size = 8;
    tu_case(fp4_tuning_get_info(ctx, &bad_info) == FP4_ERR_INVALID_ARGUMENT,
            "fp4_tuning_get_info: a bad struct_size -> INVALID_ARGUMENT");
    /* paths that are not files */
    fp4_status st = fp4_tuning_load(ctx, "/nonexistent/fp4gemm/tuning.txt");
    tu_case(st == FP4_ERR_INVALID_ARGUMENT && strstr(fp4_last_error(ctx), "No such file"),
            "load: a missing file: %s", fp4_last_error(ctx));
    st = fp4_tuning_load(ctx, g_dir);
    tu_case(st == FP4_ERR_INVALID_ARGUMENT && strstr(fp4_last_error(ctx), "not a regular file"),
            "load: a directory: %s", fp4_last_error(ctx));
    (void)all;
}

static void test_atomic_write(fp4_ctx *ctx) {
    fp4_tuning_clear(ctx);
    char text[256];
    snprintf(text, sizeof text,
             "fp4gemm-tuning 1\nentry \"CPU\" 0 0 %s 16 64 64 e2m1 linear linear bf16 "
             "cpu_ref/default 5\nend 1\n",
             fp4_version());
    fp4_tuning_load_buffer(ctx, text, strlen(text), NULL);
    char path[512];
    snprintf(path, sizeof path, "%s/atomic.txt", g_dir);
    write_file(path, "old contents\n");
    fp4_status st = fp4_tuning_save(ctx, path);
    fp4_ctx *check = NULL;
    fp4_create(&check, -1);
    tu_case(st == FP4_OK && fp4_tuning_load(check, path) == FP4_OK && entries(check) == 1 &&
                count_temporaries() == 0,
            "save over an existing file: replaced whole, no temporary left");
    fp4_destroy(check);
    /* a target that is a directory: rename fails, the directory stays, the temp is removed */
    char sub[512];
    snprintf(sub, sizeof sub, "%s/adir", g_dir);
    mkdir(sub, 0755);
    st = fp4_tuning_save(ctx, sub);
    struct stat sb;
    tu_case(st == FP4_ERR_INVALID_ARGUMENT && stat(sub, &sb) == 0 && S_ISDIR(sb.st_mode) &&
                count_temporaries() == 0,
            "save onto a directory fails cleanly, no temporary left: %s", fp4_last_error(ctx));
    rmdir(sub);
    char missing[512];
    snprintf(missing, sizeof missing, "%s/no/such/dir/cache.txt", g_dir);
    st = fp4_tuning_save(ctx, missing);
    tu_case(st == FP4_ERR_INVALID_ARGUMENT && strstr(fp4_last_error(ctx), "temporary"),
            "save into a missing folder: %s", fp4_last_error(ctx));
    /* an empty table writes a valid, empty cache */
    fp4_tuning_clear(ctx);
    st = fp4_tuning_save(ctx, path);
    fp4_create(&check, -1);
    tu_case(st == FP4_OK && fp4_tuning_load(check, path) == FP4_OK && entries(check) == 0,
            "save of an empty table: a valid file with no entries");
    fp4_destroy(check);
}

static void test_first_use(tu_rng *rng) {
    fp4_ctx *ctx = NULL;
    fp4_create(&ctx, -1);
    const int64_t m = 2, n = 32, k = 64;
    uint8_t *a = malloc((size_t)(m * k / 2)), *b = malloc((size_t)(n * k / 2));
    uint8_t *asf = malloc((size_t)(m * k / 16)), *bsf = malloc((size_t)(n * k / 16));
    uint16_t *d = malloc((size_t)(m * n * 2));
    tu_fill_bytes(rng, a, m * k / 2);
    tu_fill_bytes(rng, b, n * k / 2);
    tu_fill_scales(rng, asf, m * k / 16, -2, 2);
    tu_fill_scales(rng, bsf, n * k / 16, -2, 2);
    fp4_gemm_desc desc = problem(m, n, k);
    desc.a = a;
    desc.a_sf = asf;
    desc.b = b;
    desc.b_sf = bsf;
    desc.d = d;
    fp4_status st = fp4_gemm(ctx, &desc);
    tu_case(st == FP4_OK && entries(ctx) == 0, "default mode: fp4_gemm never tunes");
    fp4_set_autotune(ctx, FP4_AUTOTUNE_ON_FIRST_USE);
    memset(d, 0xFF, (size_t)(m * n * 2));
    st = fp4_gemm(ctx, &desc);
    fp4_verify_result v;
    memset(&v, 0, sizeof v);
    v.struct_size = sizeof v;
    fp4_gemm_verify(ctx, &desc, 0, 1, &v);
    tu_case(st == FP4_OK && entries(ctx) == 1 && v.passed,
            "first-use mode: the unseen bucket tuned, then the GEMM ran (right result)");
    fp4_tactic t;
    char why[512];
    select_why(ctx, problem(m, n, k), &t, why, sizeof why);
    tu_case(starts_with(why, "tuned"), "first-use mode: then auto uses it: \"%s\"", why);
    st = fp4_gemm(ctx, &desc);
    tu_case(st == FP4_OK && entries(ctx) == 1, "first-use mode: a seen bucket is not retuned");
    fp4_tuning_info info;
    info.struct_size = sizeof info;
    fp4_tuning_get_info(ctx, &info);
    tu_case(info.mode == FP4_AUTOTUNE_ON_FIRST_USE, "info reports the mode");
    free(a), free(b), free(asf), free(bsf), free(d);
    fp4_destroy(ctx);
}

static void test_gpu(void) {
    int count = 0;
    if (fp4_device_count(&count) != FP4_OK || count == 0) {
        tu_skip("no CUDA device (GPU tuning)");
        return;
    }
    fp4_ctx *ctx = NULL;
    if (!tu_ok(fp4_create(&ctx, 0), NULL, "fp4_create(0)")) return;
    fp4_gemm_desc probs[2] = {problem(16, 2048, 2048), problem(700, 1024, 2048)};
    probs[1].a_sf_layout = probs[1].b_sf_layout = FP4_SF_SWIZZLED_128x4;
    fp4_tune_result res[2];
    res[0].struct_size = res[1].struct_size = sizeof res[0];
    const fp4_status st = fp4_tune(ctx, probs, 2, NULL, res);
    for (int i = 0; i < 2; i++) {
        fp4_tactic t;
        char why[512], name[96] = "";
        fp4_tactic_name(res[i].best, name, sizeof name);
        const fp4_status s = select_why(ctx, probs[i], &t, why, sizeof why);
        tu_case(st == FP4_OK && res[i].tuned && res[i].candidates >= 2 && res[i].failed == 0 &&
                    res[i].best_us > 0 && s == FP4_OK && starts_with(why, "tuned") &&
                    t.backend == res[i].best.backend && t.config == res[i].best.config &&
                    (res[i].heuristic_us == 0 || res[i].best_us <= res[i].heuristic_us) &&
                    res[i].timed >= 1 &&
                    res[i].timed + res[i].too_slow + res[i].failed == res[i].candidates &&
                    res[i].measure_s > 0 && res[i].verify_s > 0 && res[i].estimate_s > 0 &&
                    res[i].operands_s > 0 &&
                    res[i].operands_s + res[i].estimate_s + res[i].verify_s + res[i].measure_s <=
                        res[i].elapsed_s,
                "GPU tune m = %lld: %s, %.2f us (heuristic %.2f us), %d candidates, %d timed; "
                "%.3f s: operands %.3f, estimates %.3f, verify %.3f, timing %.3f: %s",
                (long long)probs[i].m, name, res[i].best_us, res[i].heuristic_us,
                res[i].candidates, res[i].timed, res[i].elapsed_s, res[i].operands_s,
                res[i].estimate_s, res[i].verify_s, res[i].measure_s, res[i].message);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/gpu.txt", g_dir);
    fp4_ctx *again = NULL;
    fp4_create(&again, 0);
    tu_case(fp4_tuning_save(ctx, path) == FP4_OK && fp4_tuning_load(again, path) == FP4_OK &&
                entries(again) == 2,
            "GPU: the cache round trip");
    fp4_destroy(again);
    fp4_destroy(ctx);
}

int main(void) {
    const uint64_t seed = tu_seed(0x7u);
    tu_begin("test_tuning", seed);
    tu_rng rng;
    tu_rng_seed(&rng, seed);
    snprintf(g_dir, sizeof g_dir, "/tmp/fp4_tuning_test_XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    unsetenv("FP4GEMM_TUNING_FILE");
    unsetenv("FP4GEMM_BACKEND");
    fp4_set_log_callback(catch_log, NULL);
    fp4_ctx *cpu = NULL;
    if (!tu_ok(fp4_create(&cpu, -1), NULL, "fp4_create")) return 1;
    test_buckets(&rng);
    test_tune_cpu(cpu);
    test_tune_cost();
    test_round_trip(cpu);
    test_foreign_entries(cpu);
    test_corrupt(cpu);
    test_atomic_write(cpu);
    test_first_use(&rng);
    test_gpu();
    fp4_destroy(cpu);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", g_dir);
    return tu_finish();
}

/*
 * test_api.c - every public call against bad input (the right status, a last error that
 * names the argument, no crash, nothing written: outputs are poisoned and guarded), plus
 * names, versions, logging, backend policies, tactics (names, lists, selection with its
 * reason), descriptor versioning, and the FP4GEMM_BACKEND / FP4GEMM_LOG_LEVEL variables.
 */
#define _POSIX_C_SOURCE 200809L /* setenv, unsetenv, dup, dup2, fileno */

#include "test_util.h"

#include <ctype.h>
#include <float.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(FP4GEMM_HAVE_CUDA) && !defined(FP4GEMM_NO_WGMMA)
#define WGMMA_CONFIGS 3 /* n256, n128, n64 (src/cuda/wgmma/) */
#else
#define WGMMA_CONFIGS 0 /* a build without CUDA has no GPU configs */
#endif

#define GUARD 64
#define POISON 0xA5

/* ---- helpers --------------------------------------------------------------------------- */

/* Does msg name any of the '|'-separated words of `names` as a whole word? */
static int names_word(const char *msg, const char *names) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", names);
    for (char *w = strtok(buf, "|"); w; w = strtok(NULL, "|")) {
        const size_t n = strlen(w);
        for (const char *p = strstr(msg, w); p; p = strstr(p + 1, w)) {
            const int before = p == msg || !(isalnum((unsigned char)p[-1]) || p[-1] == '_');
            const int after = !(isalnum((unsigned char)p[n]) || p[n] == '_');
            if (before && after) return 1;
        }
    }
    return 0;
}

/* A poisoned output buffer with guard bytes after its end. */
typedef struct region {
    uint8_t *p;
    int64_t n; /* bytes, the guard excluded */
} region;

static region region_new(int64_t n) {
    region r = {malloc((size_t)(n + GUARD)), n};
    memset(r.p, POISON, (size_t)(n + GUARD));
    return r;
}

static int region_untouched(const region *r) {
    for (int64_t i = 0; i < r->n + GUARD; i++)
        if (r->p[i] != POISON) return 0;
    return 1;
}

static void region_poison(region *r) { memset(r->p, POISON, (size_t)(r->n + GUARD)); }

/* One expected failure: status, message naming the argument (the context's last error, or
 * fp4_last_error(NULL) for calls without one), and the outputs untouched. */
static void expect(fp4_status got, fp4_status want, const fp4_ctx *ctx, const char *names, int untouched,
                   const char *fmt_call) {
    const char *msg = fp4_last_error(ctx);
    const int ok_status = got == want;
    const int ok_msg = msg && msg[0] && (names == NULL || names_word(msg, names));
    const int ok = ok_status && ok_msg && untouched;
    if (!tu_case(ok, "%s -> %s%s%s%s", fmt_call, fp4_status_name(want), names ? ", message names " : "",
                 names ? names : "", ", outputs untouched")) {
        printf("  status %s, message \"%s\"%s\n", fp4_status_name(got), msg ? msg : "(null)",
               untouched ? "" : ", AN OUTPUT WAS WRITTEN");
    }
}

/* ISOLATED_CASE runs `expr` in a forked child so that a crash is reported as a failed case
 * (with the signal) instead of ending the driver. */
static int report_child(pid_t pid, const char *what) {
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) return tu_case(0, "%s (could not fork)", what);
    if (WIFSIGNALED(status)) {
        tu_case(0, "%s -> FP4_ERR_INVALID_ARGUMENT, no crash", what);
        printf("  CRASHED with signal %d\n", WTERMSIG(status));
        return 0;
    }
    return tu_case(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s -> FP4_ERR_INVALID_ARGUMENT, no crash", what);
}
#define ISOLATED_CASE(expr, what)                                                                  \
    do {                                                                                           \
        fflush(stdout);                                                                            \
        fflush(stderr);                                                                            \
        const pid_t pid_ = fork();                                                                 \
        if (pid_ == 0) _exit((expr) ? 0 : 1);                                                      \
        report_child(pid_, what);                                                                  \
    } while (0)

/* ---- log capture ------------------------------------------------------------------------ */

typedef struct log_capture {
    int count;
    fp4_log_level level;
    char last[1300];
} log_capture;

static void capture_fn(fp4_log_level level, const char *message, void *user) {
    log_capture *c = user;
    c->count++;
    c->level = level;
    snprintf(c->last, sizeof c->last, "%s", message ? message : "(null)");
}

/* The size of a descriptor in the first release (0.1.0): its fields up to `stream`. */
#define V1_SIZE(type) (offsetof(type, stream) + sizeof(struct CUstream_st *))

/* ---- the baseline problem: valid descriptors, each call checked to pass first ----------- */

static fp4_ctx *g_ctx;

enum { ROWS = 4, K = 32, M = 4, N = 8 };

static float g_in[ROWS * K];
static uint8_t g_q[ROWS * K / 2], g_sf[512];
static uint8_t g_a[M * K / 2], g_asf[M * K / 16], g_b[N * K / 2], g_bsf[N * K / 16];
static uint16_t g_a16[M * K];

static void valid_quant(fp4_quant_desc *d, region *q, region *sf) {
    fp4_quant_desc_init(d);
    d->rows = ROWS;
    d->k = K;
    d->in_dtype = FP4_DTYPE_F32;
    d->in = g_in;
    d->global_scale = 10.0f;
    d->out_q = q->p;
    d->out_sf = sf->p;
    d->sf_layout = FP4_SF_LINEAR;
}

static void valid_dequant(fp4_dequant_desc *d, region *out) {
    fp4_dequant_desc_init(d);
    d->rows = ROWS;
    d->k = K;
    d->q = g_q;
    d->sf = g_sf;
    d->sf_layout = FP4_SF_LINEAR;
    d->out_dtype = FP4_DTYPE_F32;
    d->out = out->p;
}

static void valid_gemm(fp4_gemm_desc *d, region *out) {
    fp4_gemm_desc_init(d);
    d->m = M;
    d->n = N;
    d->k = K;
    d->a_dtype = FP4_DTYPE_E2M1;
    d->a = g_a;
    d->a_sf = g_asf;
    d->b = g_b;
    d->b_sf = g_bsf;
    d->d_dtype = FP4_DTYPE_F32;
    d->d = out->p;
    d->backend = FP4_BACKEND_CPU_REF;
}

/* ---- quantize ----------------------------------------------------------------------------- */

static void test_quantize_bad(void) {
    region q = region_new(ROWS * K / 2), sf = region_new(512);
    uint32_t flag = 0x5A5A5A5A;
    fp4_quant_desc d;
    valid_quant(&d, &q, &sf);
    d.nonfinite_flag = &flag;
    tu_case(tu_ok(fp4_quantize(g_ctx, &d), g_ctx, "fp4_quantize") && fp4_last_error(g_ctx)[0] == 0 &&
                q.p[ROWS * K / 2] == POISON,
            "quantize baseline valid (rows=4 k=32 f32) -> FP4_OK and fp4_last_error \"\"");
    const uint32_t flag_after = flag;

#define QBAD(mutation, want, names)                                                            \
    do {                                                                                       \
        region_poison(&q);                                                                     \
        region_poison(&sf);                                                                    \
        flag = flag_after;                                                                     \
        valid_quant(&d, &q, &sf);                                                              \
        d.nonfinite_flag = &flag;                                                              \
        mutation;                                                                              \
        const fp4_status st = fp4_quantize(g_ctx, &d);                                         \
        expect(st, want, g_ctx, names,                                                         \
               region_untouched(&q) && region_untouched(&sf) && flag == flag_after,            \
               "quantize " #mutation);                                                         \
    } while (0)

    QBAD(d.struct_size = 0, FP4_ERR_INVALID_ARGUMENT, "struct_size");
    QBAD(d.struct_size = sizeof d - 1, FP4_ERR_INVALID_ARGUMENT, "struct_size");
    QBAD(d.struct_size = sizeof d + 8, FP4_ERR_INVALID_ARGUMENT, "struct_size");
    QBAD(d.rows = 0, FP4_ERR_INVALID_ARGUMENT, "rows");
    QBAD(d.rows = -3, FP4_ERR_INVALID_ARGUMENT, "rows");
    QBAD(d.k = 24, FP4_ERR_INVALID_ARGUMENT, "k");
    QBAD(d.k = 0, FP4_ERR_INVALID_ARGUMENT, "k");
    QBAD(d.k = 8, FP4_ERR_INVALID_ARGUMENT, "k");
    QBAD(d.k = -32, FP4_ERR_INVALID_ARGUMENT, "k");
    QBAD(d.in = NULL, FP4_ERR_INVALID_ARGUMENT, "in");
    QBAD(d.out_q = NULL, FP4_ERR_INVALID_ARGUMENT, "out_q");
    QBAD(d.out_sf = NULL, FP4_ERR_INVALID_ARGUMENT, "out_sf");
    QBAD(d.in_dtype = (fp4_dtype)42, FP4_ERR_INVALID_ARGUMENT, "in_dtype");
    QBAD(d.in_dtype = (fp4_dtype)-1, FP4_ERR_INVALID_ARGUMENT, "in_dtype");
    QBAD(d.in_dtype = FP4_DTYPE_E2M1, FP4_ERR_INVALID_ARGUMENT, "in_dtype");
    QBAD(d.in_dtype = FP4_DTYPE_E4M3, FP4_ERR_INVALID_ARGUMENT, "in_dtype");
    QBAD(d.sf_layout = (fp4_sf_layout)7, FP4_ERR_INVALID_ARGUMENT, "sf_layout");
    QBAD(d.sf_layout = (fp4_sf_layout)-1, FP4_ERR_INVALID_ARGUMENT, "sf_layout");
    QBAD(d.ld_in = K - 16, FP4_ERR_INVALID_ARGUMENT, "ld_in");
    QBAD(d.ld_in = K - 1, FP4_ERR_INVALID_ARGUMENT, "ld_in");
    QBAD(d.ld_in = -1, FP4_ERR_INVALID_ARGUMENT, "ld_in");
    QBAD(d.rows = INT64_MAX / 2, FP4_ERR_INVALID_ARGUMENT, "rows|overflow|overflows");
    QBAD(d.rows = INT64_MAX, FP4_ERR_INVALID_ARGUMENT, "rows|overflow|overflows");
    QBAD(d.k = INT64_MAX / 16 * 16, FP4_ERR_INVALID_ARGUMENT, "k|overflow|overflows");
    QBAD(d.ld_in = INT64_MAX / 2, FP4_ERR_INVALID_ARGUMENT, "ld_in|overflow|overflows");
    QBAD((d.rows = ((int64_t)1 << 40), d.k = ((int64_t)1 << 24)), FP4_ERR_INVALID_ARGUMENT,
         "rows|k|overflow|overflows");
#undef QBAD

    /* NULL ctx and NULL desc: the message is in fp4_last_error(NULL) */
    region_poison(&q);
    region_poison(&sf);
    valid_quant(&d, &q, &sf);
    expect(fp4_quantize(NULL, &d), FP4_ERR_INVALID_ARGUMENT, NULL, "ctx",
           region_untouched(&q) && region_untouched(&sf), "quantize ctx=NULL");
    expect(fp4_quantize(g_ctx, NULL), FP4_ERR_INVALID_ARGUMENT, g_ctx, "desc", 1, "quantize desc=NULL");

    /* a success clears the last error */
    valid_quant(&d, &q, &sf);
    tu_case(fp4_quantize(g_ctx, &d) == FP4_OK && fp4_last_error(g_ctx)[0] == 0,
            "quantize success after a failure: fp4_last_error is \"\"");
    /* ld_in = 0 means k; a W4A16-style unaligned ld_in > k is fine */
    valid_quant(&d, &q, &sf);
    d.rows = 2;
    d.ld_in = K + 3;
    tu_case(fp4_quantize(g_ctx, &d) == FP4_OK, "quantize rows=2 ld_in=k+3 valid -> FP4_OK");
    free(q.p);
    free(sf.p);
}

/* ---- dequantize --------------------------------------------------------------------------- */

static void test_dequantize_bad(void) {
    region out = region_new(ROWS * K * 4);
    fp4_dequant_desc d;
    valid_dequant(&d, &out);
    tu_case(tu_ok(fp4_dequantize(g_ctx, &d), g_ctx, "fp4_dequantize") && fp4_last_error(g_ctx)[0] == 0,
            "dequantize baseline valid -> FP4_OK and fp4_last_error \"\"");

#define DBAD(mutation, want, names)                                                          \
    do {                                                                                     \
        region_poison(&out);                                                                 \
        valid_dequant(&d, &out);                                                             \
        mutation;                                                                            \
        expect(fp4_dequantize(g_ctx, &d), want, g_ctx, names, region_untouched(&out),         \
               "dequantize " #mutation);                                                     \
    } while (0)

    DBAD(d.struct_size = 0, FP4_ERR_INVALID_ARGUMENT, "struct_size");
    DBAD(d.struct_size = sizeof d - 1, FP4_ERR_INVALID_ARGUMENT, "struct_size");
    DBAD(d.struct_size = sizeof d + 8, FP4_ERR_INVALID_ARGUMENT, "struct_size");
    DBAD(d.rows = 0, FP4_ERR_INVALID_ARGUMENT, "rows");
    DBAD(d.rows = -1, FP4_ERR_INVALID_ARGUMENT, "rows");
    DBAD(d.k = 24, FP4_ERR_INVALID_ARGUMENT, "k");
    DBAD(d.k = 0, FP4_ERR_INVALID_ARGUMENT, "k");
    DBAD(d.k = -16, FP4_ERR_INVALID_ARGUMENT, "k");
    DBAD(d.q = NULL, FP4_ERR_INVALID_ARGUMENT, "q");
    DBAD(d.sf = NULL, FP4_ERR_INVALID_ARGUMENT, "sf");
    DBAD(d.out = NULL, FP4_ERR_INVALID_ARGUMENT, "out");
    DBAD(d.out_dtype = (fp4_dtype)42, FP4_ERR_INVALID_ARGUMENT, "out_dtype");
    DBAD(d.out_dtype = FP4_DTYPE_E2M1, FP4_ERR_INVALID_ARGUMENT, "out_dtype");
    DBAD(d.out_dtype = FP4_DTYPE_E4M3, FP4_ERR_INVALID_ARGUMENT, "out_dtype");
    DBAD(d.sf_layout = (fp4_sf_layout)7, FP4_ERR_INVALID_ARGUMENT, "sf_layout");
    DBAD(d.ld_out = K - 16, FP4_ERR_INVALID_ARGUMENT, "ld_out");
    DBAD(d.ld_out = -5, FP4_ERR_INVALID_ARGUMENT, "ld_out");
    DBAD(d.rows = INT64_MAX / 2, FP4_ERR_INVALID_ARGUMENT, "rows|overflow|overflows");
    DBAD(d.k = INT64_MAX / 16 * 16, FP4_ERR_INVALID_ARGUMENT, "k|overflow|overflows");
    DBAD(d.ld_out = INT64_MAX / 2, FP4_ERR_INVALID_ARGUMENT, "ld_out|overflow|overflows");
#undef DBAD

    region_poison(&out);
    valid_dequant(&d, &out);
    expect(fp4_dequantize(NULL, &d), FP4_ERR_INVALID_ARGUMENT, NULL, "ctx", region_untouched(&out),
           "dequantize ctx=NULL");
    expect(fp4_dequantize(g_ctx, NULL), FP4_ERR_INVALID_ARGUMENT, g_ctx, "desc", 1, "dequantize desc=NULL");
    valid_dequant(&d, &out);
    tu_case(fp4_dequantize(g_ctx, &d) == FP4_OK && fp4_last_error(g_ctx)[0] == 0,
            "dequantize success after a failure: fp4_last_error is \"\"");
    free(out.p);
}

/* ---- global scale ------------------------------------------------------------------------- */

static void test_global_scale_bad(void) {
    region gs = region_new(4);
    tu_case(fp4_global_scale(g_ctx, ROWS, K, FP4_DTYPE_F32, g_in, 0, (float *)gs.p, NULL) == FP4_OK &&
                fp4_last_error(g_ctx)[0] == 0,
            "global_scale baseline valid -> FP4_OK and fp4_last_error \"\"");
#define GBAD(call, want, ctxp, names)                                                             \
    do {                                                                                          \
        region_poison(&gs);                                                                       \
        expect(call, want, ctxp, names, region_untouched(&gs), #call);                            \
    } while (0)
    float *o = (float *)gs.p;
    GBAD(fp4_global_scale(NULL, ROWS, K, FP4_DTYPE_F32, g_in, 0, o, NULL), FP4_ERR_INVALID_ARGUMENT, NULL, "ctx");
    GBAD(fp4_global_scale(g_ctx, ROWS, K, FP4_DTYPE_F32, NULL, 0, o, NULL), FP4_ERR_INVALID_ARGUMENT, g_ctx, "in");
    GBAD(fp4_global_scale(g_ctx, ROWS, K, FP4_DTYPE_F32, g_in, 0, NULL, NULL), FP4_ERR_INVALID_ARGUMENT, g_ctx,
         "gs_out");
    GBAD(fp4_global_scale(g_ctx, 0, K, FP4_DTYPE_F32, g_in, 0, o, NULL), FP4_ERR_INVALID_ARGUMENT, g_ctx, "rows");
    GBAD(fp4_global_scale(g_ctx, -2, K, FP4_DTYPE_F32, g_in, 0, o, NULL), FP4_ERR_INVALID_ARGUMENT, g_ctx, "rows");
    GBAD(fp4_global_scale(g_ctx, ROWS, 24, FP4_DTYPE_F32, g_in, 0, o, NULL), FP4_ERR_INVALID_ARGUMENT, g_ctx, "k");
    GBAD(fp4_global_scale(g_ctx, ROWS, 0, FP4_DTYPE_F32, g_in, 0, o, NULL), FP4_ERR_INVALID_ARGUMENT, g_ctx, "k");
    GBAD(fp4_global_scale(g_ctx, ROWS, K, (fp4_dtype)42, g_in, 0, o, NULL), FP4_ERR_INVALID_ARGUMENT, g_ctx,
         "in_dtype");
    GBAD(fp4_global_scale(g_ctx, ROWS, K, FP4_DTYPE_E2M1, g_in, 0, o, NULL), FP4_ERR_INVALID_ARGUMENT, g_ctx,
         "in_dtype");
    GBAD(fp4_global_scale(g_ctx, ROWS, K, FP4_DTYPE_F32, g_in, K - 16, o, NULL), FP4_ERR_INVALID_ARGUMENT, g_ctx,
         "ld_in");
    GBAD(fp4_global_scale(g_ctx, ROWS, K, FP4_DTYPE_F32, g_in, -1, o, NULL), FP4_ERR_INVALID_ARGUMENT, g_ctx,
         "ld_in");
    GBAD(fp4_global_scale(g_ctx, INT64_MAX / 2, K, FP4_DTYPE_F32, g_in, 0, o, NULL), FP4_ERR_INVALID_ARGUMENT,
         g_ctx, "rows|overflow|overflows");
#undef GBAD
    tu_case(fp4_global_scale(g_ctx, ROWS, K, FP4_DTYPE_F32, g_in, 0, o, NULL) == FP4_OK &&
                fp4_last_error(g_ctx)[0] == 0,
            "global_scale success after a failure: fp4_last_error is \"\"");
    free(gs.p);
}

/* ---- gemm, backend check, backend selection ---------------------------------------------- */

static float g_alpha_storage[2]; /* a misaligned alpha_ptr points inside */

static void test_gemm_bad(void) {
    region out = region_new(M * N * 4);
    fp4_gemm_desc d;
    valid_gemm(&d, &out);
    tu_case(tu_ok(fp4_gemm(g_ctx, &d), g_ctx, "fp4_gemm") && fp4_last_error(g_ctx)[0] == 0 &&
                out.p[M * N * 4] == POISON,
            "gemm baseline valid (W4A4 m=4 n=8 k=32 cpu_ref) -> FP4_OK and fp4_last_error \"\"");

#define GBAD(mutation, want, names)                                                               \
    do {                                                                                          \
        region_poison(&out);                                                                      \
        valid_gemm(&d, &out);                                                                     \
        mutation;                                                                                 \
        expect(fp4_gemm(g_ctx, &d), want, g_ctx, names, region_untouched(&out), "gemm " #mutation); \
    } while (0)

    GBAD(d.struct_size = 0, FP4_ERR_INVALID_ARGUMENT, "struct_size");
    GBAD(d.struct_size = V1_SIZE(fp4_gemm_desc) - 1, FP4_ERR_INVALID_ARGUMENT, "struct_size");
    GBAD(d.struct_size = sizeof d + 8, FP4_ERR_INVALID_ARGUMENT, "struct_size");
    GBAD(d.m = 0, FP4_ERR_INVALID_ARGUMENT, "m");
    GBAD(d.m = -1, FP4_ERR_INVALID_ARGUMENT, "m");
    GBAD(d.n = 0, FP4_ERR_INVALID_ARGUMENT, "n");
    GBAD(d.n = -7, FP4_ERR_INVALID_ARGUMENT, "n");
    GBAD(d.k = 24, FP4_ERR_INVALID_ARGUMENT, "k");
    GBAD(d.k = 0, FP4_ERR_INVALID_ARGUMENT, "k");
    GBAD(d.k = -16, FP4_ERR_INVALID_ARGUMENT, "k");
    GBAD(d.k = 40, FP4_ERR_INVALID_ARGUMENT, "k");
    GBAD(d.a = NULL, FP4_ERR_INVALID_ARGUMENT, "a");
    GBAD(d.b = NULL, FP4_ERR_INVALID_ARGUMENT, "b");
    GBAD(d.a_sf = NULL, FP4_ERR_INVALID_ARGUMENT, "a_sf");
    GBAD(d.b_sf = NULL, FP4_ERR_INVALID_ARGUMENT, "b_sf");
    GBAD(d.d = NULL, FP4_ERR_INVALID_ARGUMENT, "d");
    GBAD(d.ldd = N - 1, FP4_ERR_INVALID_ARGUMENT, "ldd");
    GBAD(d.ldd = -1, FP4_ERR_INVALID_ARGUMENT, "ldd");
    GBAD(d.a_dtype = (fp4_dtype)42, FP4_ERR_INVALID_ARGUMENT, "a_dtype");
    GBAD(d.a_dtype = FP4_DTYPE_E4M3, FP4_ERR_INVALID_ARGUMENT, "a_dtype");
    GBAD(d.a_dtype = (fp4_dtype)-1, FP4_ERR_INVALID_ARGUMENT, "a_dtype");
    GBAD(d.d_dtype = FP4_DTYPE_E2M1, FP4_ERR_INVALID_ARGUMENT, "d_dtype");
    GBAD(d.d_dtype = FP4_DTYPE_E4M3, FP4_ERR_INVALID_ARGUMENT, "d_dtype");
    GBAD(d.d_dtype = (fp4_dtype)42, FP4_ERR_INVALID_ARGUMENT, "d_dtype");
    GBAD(d.a_sf_layout = (fp4_sf_layout)7, FP4_ERR_INVALID_ARGUMENT, "a_sf_layout");
    GBAD(d.b_sf_layout = (fp4_sf_layout)-2, FP4_ERR_INVALID_ARGUMENT, "b_sf_layout");
    GBAD(d.backend = (fp4_backend)99, FP4_ERR_INVALID_ARGUMENT, "backend");
    GBAD(d.backend = (fp4_backend)-1, FP4_ERR_INVALID_ARGUMENT, "backend");
    GBAD(d.config = 1, FP4_ERR_INVALID_ARGUMENT, "config");  /* cpu_ref has one config */
    GBAD(d.config = -2, FP4_ERR_INVALID_ARGUMENT, "config");
    GBAD((d.backend = FP4_BACKEND_AUTO, d.config = 0), FP4_ERR_INVALID_ARGUMENT, "config");
    GBAD((d.backend = FP4_BACKEND_CUDA_WGMMA, d.config = 3), FP4_ERR_INVALID_ARGUMENT, "config");
    GBAD((d.backend = FP4_BACKEND_CUDA_MMA, d.config = 99), FP4_ERR_INVALID_ARGUMENT, "config");
    GBAD((d.backend = FP4_BACKEND_CUDA_SIMT, d.config = 5), FP4_ERR_INVALID_ARGUMENT, "config");
    GBAD((d.backend = FP4_BACKEND_CUDA_SIMT, d.config = 4), FP4_ERR_NOT_SUPPORTED, "cuda_simt");
    GBAD(d.m = INT64_MAX / 2, FP4_ERR_INVALID_ARGUMENT, "m|overflow|overflows");
    GBAD(d.n = INT64_MAX / 2, FP4_ERR_INVALID_ARGUMENT, "n|overflow|overflows");
    GBAD(d.k = INT64_MAX / 16 * 16, FP4_ERR_INVALID_ARGUMENT, "k|overflow|overflows");
    GBAD(d.ldd = INT64_MAX / 2, FP4_ERR_INVALID_ARGUMENT, "ldd|overflow|overflows");
    GBAD((d.m = ((int64_t)1 << 40), d.k = ((int64_t)1 << 30)), FP4_ERR_INVALID_ARGUMENT, "m|k|overflow|overflows");
    GBAD((d.a_dtype = FP4_DTYPE_BF16, d.a = g_a16, d.m = INT64_MAX / 64, d.k = 64), FP4_ERR_INVALID_ARGUMENT,
         "m|k|overflow|overflows");
    GBAD((d.a_dtype = FP4_DTYPE_BF16, d.a = NULL), FP4_ERR_INVALID_ARGUMENT, "a");
    /* misaligned element pointers: C's rule, and a GPU would fault */
    GBAD((d.a_dtype = FP4_DTYPE_BF16, d.a = (const uint8_t *)g_a16 + 1), FP4_ERR_INVALID_ARGUMENT, "a");
    GBAD(d.d = out.p + 1, FP4_ERR_INVALID_ARGUMENT, "d");
    GBAD(d.alpha_ptr = (const float *)((const uint8_t *)&g_alpha_storage + 1), FP4_ERR_INVALID_ARGUMENT,
         "alpha_ptr");
    /* GPU backends on a CPU context: valid problem, can't run here */
    GBAD(d.backend = FP4_BACKEND_CUDA_SIMT, FP4_ERR_NOT_SUPPORTED, "cuda_simt");
    GBAD(d.backend = FP4_BACKEND_CUDA_MMA, FP4_ERR_NOT_SUPPORTED, "cuda_mma");
    GBAD(d.backend = FP4_BACKEND_CUDA_WGMMA, FP4_ERR_NOT_SUPPORTED, "cuda_wgmma");
    GBAD(d.backend = FP4_BACKEND_CUBLASLT, FP4_ERR_NOT_SUPPORTED, "cublaslt");
#undef GBAD

    region_poison(&out);
    valid_gemm(&d, &out);
    expect(fp4_gemm(NULL, &d), FP4_ERR_INVALID_ARGUMENT, NULL, "ctx", region_untouched(&out), "gemm ctx=NULL");
    expect(fp4_gemm(g_ctx, NULL), FP4_ERR_INVALID_ARGUMENT, g_ctx, "desc", 1, "gemm desc=NULL");

    /* valid variations */
    valid_gemm(&d, &out);
    tu_case(fp4_gemm(g_ctx, &d) == FP4_OK && fp4_last_error(g_ctx)[0] == 0,
            "gemm success after a failure: fp4_last_error is \"\"");
    valid_gemm(&d, &out);
    d.a_dtype = FP4_DTYPE_BF16;
    d.a = g_a16;
    d.a_sf = NULL; /* unused by W4A16 */
    d.a_sf_layout = (fp4_sf_layout)7; /* unused too */
    tu_case(fp4_gemm(g_ctx, &d) == FP4_OK, "gemm W4A16 with a_sf=NULL -> FP4_OK (a_sf is unused)");
    valid_gemm(&d, &out);
    const float alpha = 0.5f;
    d.alpha_ptr = &alpha; /* host memory on the CPU context */
    d.ldd = N;
    d.backend = FP4_BACKEND_AUTO;
    tu_case(fp4_gemm(g_ctx, &d) == FP4_OK, "gemm alpha_ptr in host memory, ldd = n, auto -> FP4_OK");

    /* fp4_backend_check */
    char why[128 + GUARD];
    valid_gemm(&d, &out);
    memset(why, POISON, sizeof why);
    tu_case(fp4_backend_check(g_ctx, FP4_BACKEND_CPU_REF, &d, why, 128) == FP4_OK &&
                fp4_backend_check(g_ctx, FP4_BACKEND_CPU_REF, NULL, why, 128) == FP4_OK,
            "backend_check cpu_ref on a CPU context (desc and NULL desc) -> FP4_OK");
    static const fp4_backend gpu[] = {FP4_BACKEND_CUDA_SIMT, FP4_BACKEND_CUDA_MMA, FP4_BACKEND_CUDA_WGMMA,
                                      FP4_BACKEND_CUBLASLT};
    for (int i = 0; i < 4; i++) {
        memset(why, POISON, sizeof why);
        const fp4_status st = fp4_backend_check(g_ctx, gpu[i], &d, why, 128);
        const int ok = st == FP4_ERR_NOT_SUPPORTED && memchr(why, 0, 128) != NULL && why[0] != 0 &&
                       why[128] == (char)POISON;
        if (!ok) why[127] = 0;
        if (!tu_case(ok, "backend_check %s on a CPU context -> FP4_ERR_NOT_SUPPORTED, reason \"%s\"",
                     fp4_backend_name(gpu[i]), ok ? why : ""))
            printf("  status %s why \"%s\"\n", fp4_status_name(st), why);
    }
    memset(why, POISON, sizeof why);
    {
        const fp4_status st = fp4_backend_check(g_ctx, FP4_BACKEND_CUDA_SIMT, &d, why, 8);
        int guard_ok = 1;
        for (int i = 8; i < (int)sizeof why; i++) guard_ok &= why[i] == (char)POISON;
        tu_case(st == FP4_ERR_NOT_SUPPORTED && memchr(why, 0, 8) != NULL && guard_ok,
                "backend_check with why_len=8: reason truncated and NUL-terminated within 8 bytes");
    }
    /* bad arguments: INVALID_ARGUMENT, the reason (naming the argument) in why[] since the
     * check is pure (const ctx) */
#define BCBAD(label, setup, call, names)                                                                \
    do {                                                                                           \
        valid_gemm(&d, &out);                                                                      \
        setup;                                                                                     \
        memset(why, POISON, sizeof why);                                                           \
        const fp4_status st = call;                                                                \
        const int terminated = memchr(why, 0, 128) != NULL;                                        \
        why[127] = 0;                                                                              \
        const int ok = st == FP4_ERR_INVALID_ARGUMENT && terminated && names_word(why, names);     \
        if (!tu_case(ok, "backend_check %s -> FP4_ERR_INVALID_ARGUMENT, why names %s", label,       \
                     names))                                                                       \
            printf("  status %s why \"%s\"\n", fp4_status_name(st), why);                           \
    } while (0)
    BCBAD("backend=auto", (void)0, fp4_backend_check(g_ctx, FP4_BACKEND_AUTO, &d, why, 128), "backend|auto");
    BCBAD("backend=99", (void)0, fp4_backend_check(g_ctx, (fp4_backend)99, &d, why, 128), "backend");
    BCBAD("backend=-1 desc=NULL", (void)0, fp4_backend_check(g_ctx, (fp4_backend)-1, NULL, why, 128), "backend");
    BCBAD("ctx=NULL", (void)0, fp4_backend_check(NULL, FP4_BACKEND_CPU_REF, &d, why, 128), "ctx");
    BCBAD("cpu_ref k=24", d.k = 24, fp4_backend_check(g_ctx, FP4_BACKEND_CPU_REF, &d, why, 128), "k");
    BCBAD("cuda_simt k=24", d.k = 24, fp4_backend_check(g_ctx, FP4_BACKEND_CUDA_SIMT, &d, why, 128), "k");
    BCBAD("struct_size=3", d.struct_size = 3, fp4_backend_check(g_ctx, FP4_BACKEND_CPU_REF, &d, why, 128), "struct_size");
    BCBAD("ldd=2 < n", d.ldd = 2, fp4_backend_check(g_ctx, FP4_BACKEND_CPU_REF, &d, why, 128), "ldd");
    BCBAD("b=NULL", d.b = NULL, fp4_backend_check(g_ctx, FP4_BACKEND_CPU_REF, &d, why, 128), "b");
    BCBAD("d_dtype=e4m3", d.d_dtype = FP4_DTYPE_E4M3, fp4_backend_check(g_ctx, FP4_BACKEND_CPU_REF, &d, why, 128), "d_dtype");
#undef BCBAD

    /* fp4_gemm_select_backend (deprecated: fp4_gemm_select's backend; kept working) */
    fp4_backend chosen = (fp4_backend)77;
    valid_gemm(&d, &out);
    {
        fp4_tactic t = {FP4_BACKEND_AUTO, -1};
        d.backend = FP4_BACKEND_CPU_REF; /* select_backend says what AUTO would run, whatever this says */
        const int same = fp4_gemm_select_backend(g_ctx, &d, &chosen) == FP4_OK;
        d.backend = FP4_BACKEND_AUTO;
        tu_case(same && fp4_gemm_select(g_ctx, &d, &t, NULL, 0) == FP4_OK && t.backend == chosen,
                "deprecated select_backend = fp4_gemm_select's backend for AUTO (%s)", fp4_backend_name(chosen));
        chosen = (fp4_backend)77;
    }
    tu_case(fp4_gemm_select_backend(g_ctx, &d, &chosen) == FP4_OK && chosen == FP4_BACKEND_CPU &&
                fp4_last_error(g_ctx)[0] == 0,
            "select_backend on a CPU context -> cpu, fp4_last_error \"\"");
    chosen = (fp4_backend)77;
    tu_case(fp4_gemm_select_backend(g_ctx, NULL, &chosen) == FP4_OK && chosen == FP4_BACKEND_CPU,
            "select_backend desc=NULL (generic problem) -> cpu");
    chosen = (fp4_backend)77;
    expect(fp4_gemm_select_backend(NULL, &d, &chosen), FP4_ERR_INVALID_ARGUMENT, NULL, "ctx", chosen == 77,
           "select_backend ctx=NULL");
    expect(fp4_gemm_select_backend(g_ctx, &d, NULL), FP4_ERR_INVALID_ARGUMENT, g_ctx, "out", 1,
           "select_backend out=NULL");
    d.k = 24;
    expect(fp4_gemm_select_backend(g_ctx, &d, &chosen), FP4_ERR_INVALID_ARGUMENT, g_ctx, "k", chosen == 77,
           "select_backend k=24");
    d.k = K;
    d.struct_size = sizeof d + 8;
    expect(fp4_gemm_select_backend(g_ctx, &d, &chosen), FP4_ERR_INVALID_ARGUMENT, g_ctx, "struct_size",
           chosen == 77, "select_backend struct_size=sizeof+8");
    free(out.p);
}

/* ---- memory ------------------------------------------------------------------------------- */

static void test_memory(void) {
    void *p = (void *)0x1;
    expect(fp4_malloc(NULL, &p, 16), FP4_ERR_INVALID_ARGUMENT, NULL, "ctx", p == (void *)0x1, "malloc ctx=NULL");
    expect(fp4_malloc(g_ctx, NULL, 16), FP4_ERR_INVALID_ARGUMENT, g_ctx, "ptr", 1, "malloc ptr=NULL");
    expect(fp4_malloc(g_ctx, &p, -1), FP4_ERR_INVALID_ARGUMENT, g_ctx, "bytes", 1, "malloc bytes=-1");
    p = NULL;
    tu_case(fp4_malloc(g_ctx, &p, 100) == FP4_OK && p != NULL && fp4_last_error(g_ctx)[0] == 0,
            "malloc 100 bytes -> FP4_OK, fp4_last_error \"\"");
    region dst = region_new(100);
    uint8_t src[100];
    for (int i = 0; i < 100; i++) src[i] = (uint8_t)(i * 7 + 1);

    expect(fp4_upload(NULL, p, src, 100), FP4_ERR_INVALID_ARGUMENT, NULL, "ctx", 1, "upload ctx=NULL");
    expect(fp4_upload(g_ctx, NULL, src, 100), FP4_ERR_INVALID_ARGUMENT, g_ctx, "dst", 1, "upload dst=NULL");
    expect(fp4_upload(g_ctx, dst.p, NULL, 100), FP4_ERR_INVALID_ARGUMENT, g_ctx, "host_src|src",
           region_untouched(&dst), "upload src=NULL");
    expect(fp4_upload(g_ctx, dst.p, src, -1), FP4_ERR_INVALID_ARGUMENT, g_ctx, "bytes", region_untouched(&dst),
           "upload bytes=-1");
    expect(fp4_download(NULL, dst.p, p, 100), FP4_ERR_INVALID_ARGUMENT, NULL, "ctx", region_untouched(&dst),
           "download ctx=NULL");
    expect(fp4_download(g_ctx, NULL, p, 100), FP4_ERR_INVALID_ARGUMENT, g_ctx, "host_dst|dst", 1,
           "download dst=NULL");
    expect(fp4_download(g_ctx, dst.p, NULL, 100), FP4_ERR_INVALID_ARGUMENT, g_ctx, "src", region_untouched(&dst),
           "download src=NULL");
    expect(fp4_download(g_ctx, dst.p, p, -3), FP4_ERR_INVALID_ARGUMENT, g_ctx, "bytes", region_untouched(&dst),
           "download bytes=-3");
    expect(fp4_memset(NULL, dst.p, 0, 100), FP4_ERR_INVALID_ARGUMENT, NULL, "ctx", region_untouched(&dst),
           "memset ctx=NULL");
    expect(fp4_memset(g_ctx, NULL, 0, 100), FP4_ERR_INVALID_ARGUMENT, g_ctx, "dst", 1, "memset dst=NULL");
    expect(fp4_memset(g_ctx, dst.p, 0, -1), FP4_ERR_INVALID_ARGUMENT, g_ctx, "bytes", region_untouched(&dst),
           "memset bytes=-1");
    expect(fp4_synchronize(NULL, NULL), FP4_ERR_INVALID_ARGUMENT, NULL, "ctx", 1, "synchronize ctx=NULL");

    /* the valid path: upload, download, memset copy exactly `bytes` */
    int ok = fp4_upload(g_ctx, p, src, 100) == FP4_OK && fp4_last_error(g_ctx)[0] == 0;
    ok = ok && fp4_download(g_ctx, dst.p, p, 60) == FP4_OK && memcmp(dst.p, src, 60) == 0;
    for (int i = 60; i < 100 + GUARD; i++) ok &= dst.p[i] == POISON;
    tu_case(ok, "upload 100 bytes, download 60: exact copy, nothing past 60 written");
    region_poison(&dst);
    ok = fp4_memset(g_ctx, dst.p, 0x3C, 37) == FP4_OK;
    for (int i = 0; i < 100 + GUARD; i++) ok &= dst.p[i] == (i < 37 ? 0x3C : POISON);
    tu_case(ok, "memset 37 bytes to 0x3C: exactly those bytes");
    tu_case(fp4_synchronize(g_ctx, NULL) == FP4_OK, "synchronize a CPU context -> FP4_OK");
    tu_case(fp4_free(g_ctx, p) == FP4_OK && fp4_free(g_ctx, NULL) == FP4_OK, "free, and free(NULL) -> FP4_OK");
    free(dst.p);
}

/* ---- contexts and devices ------------------------------------------------------------------ */

static void test_create_and_devices(void) {
    fp4_ctx *c = (fp4_ctx *)0x1;
    expect(fp4_create(NULL, -1), FP4_ERR_INVALID_ARGUMENT, NULL, "ctx|out", 1, "create out=NULL");
    fp4_status st = fp4_create(&c, 999);
    expect(st, FP4_ERR_NO_DEVICE, NULL, NULL, 1, "create device=999");
    if (st == FP4_OK) fp4_destroy(c);
    {
        /* one source location, at the end: with CUDA the message wraps the device's own failure
         * ("fp4_create: CUDA device 999 does not exist ... (src/cuda/...:N)"), which must not
         * get a second " (src/context.c:N)" */
        const char *msg = fp4_last_error(NULL);
        int locations = 0;
        for (const char *p = strstr(msg, " (src/"); p; p = strstr(p + 1, " (src/")) locations++;
        const size_t len = strlen(msg);
        tu_case(strncmp(msg, "fp4_create: ", 12) == 0 && locations == 1 && len > 0 && msg[len - 1] == ')',
                "create device=999: the message has one source location, at its end (%s build): \"%s\"",
                fp4_built_with_cuda() ? "CUDA" : "CPU-only", msg);
    }
    c = (fp4_ctx *)0x1;
    st = fp4_create(&c, -2);
    tu_case(st == FP4_ERR_INVALID_ARGUMENT || st == FP4_ERR_NO_DEVICE, "create device=-2 fails (%s)",
            fp4_status_name(st));
    if (st == FP4_OK) fp4_destroy(c);
    fp4_destroy(NULL);
    tu_case(1, "destroy(NULL) returns");
    tu_case(fp4_ctx_device(g_ctx) == -1 && fp4_ctx_compute_capability(g_ctx) == 0,
            "CPU context: device -1, compute capability 0");
    const char *orphan = fp4_last_error(NULL);
    tu_case(orphan != NULL, "fp4_last_error(NULL) is a string");

    int count = -1;
    tu_case(fp4_device_count(&count) == FP4_OK && count >= 0, "device_count -> FP4_OK, %d devices", count);
    expect(fp4_device_count(NULL), FP4_ERR_INVALID_ARGUMENT, NULL, "count", 1, "device_count count=NULL");
#ifndef FP4GEMM_HAVE_CUDA
    tu_case(fp4_built_with_cuda() == 0 && strcmp(fp4_built_cuda_archs(), "") == 0 && count == 0,
            "CPU-only build: built_with_cuda 0, archs \"\", 0 devices");
#else
    tu_case(fp4_built_with_cuda() == 1 && fp4_built_cuda_archs()[0] != 0, "CUDA build: built_with_cuda 1, archs \"%s\"",
            fp4_built_cuda_archs());
#endif
    fp4_device_info info;
    memset(&info, POISON, sizeof info);
    info.struct_size = sizeof info;
    st = fp4_device_query(999, &info);
    tu_case(st == FP4_ERR_NO_DEVICE, "device_query 999 -> FP4_ERR_NO_DEVICE (got %s)", fp4_status_name(st));
    expect(fp4_device_query(0, NULL), FP4_ERR_INVALID_ARGUMENT, NULL, "info", 1, "device_query info=NULL");
    info.struct_size = 0;
    expect(fp4_device_query(0, &info), FP4_ERR_INVALID_ARGUMENT, NULL, "struct_size", 1,
           "device_query struct_size=0");
    info.struct_size = sizeof info + 8;
    expect(fp4_device_query(0, &info), FP4_ERR_INVALID_ARGUMENT, NULL, "struct_size", 1,
           "device_query struct_size=sizeof+8");
}

/* ---- output structs: *_init, older (smaller) and newer (larger) struct_size -------------- */

/* A struct of `size` bytes (struct_size first) poisoned, its struct_size set to `struct_size`. */
static void poison_struct(void *p, size_t size, size_t struct_size) {
    memset(p, POISON, size);
    memcpy(p, &struct_size, sizeof struct_size);
}

static int all_poison(const void *p, size_t from, size_t to) {
    for (size_t i = from; i < to; i++)
        if (((const uint8_t *)p)[i] != POISON) return 0;
    return 1;
}

/* The status is INVALID_ARGUMENT, the message says "struct_size" and `says`, and the struct
 * (size bytes after struct_size) was not written. */
static void expect_size_reject(fp4_status got, const fp4_ctx *ctx, const char *says, const void *p,
                               size_t size, const char *what) {
    const char *msg = fp4_last_error(ctx);
    const int ok = got == FP4_ERR_INVALID_ARGUMENT && strstr(msg, "struct_size") && strstr(msg, says) &&
                   all_poison(p, sizeof(size_t), size);
    if (!tu_case(ok, "%s -> INVALID_ARGUMENT, message says \"%s\", struct untouched", what, says))
        printf("  status %s, message \"%s\"\n", fp4_status_name(got), msg);
}

static void test_output_structs(void) {
    /* the *_init helpers: struct_size = sizeof, everything else zero */
    fp4_device_info di;
    fp4_measure_result mr;
    fp4_verify_result vr;
    fp4_tune_result tr;
    fp4_tuning_info ti;
    memset(&di, POISON, sizeof di);
    memset(&mr, POISON, sizeof mr);
    memset(&vr, POISON, sizeof vr);
    memset(&tr, POISON, sizeof tr);
    memset(&ti, POISON, sizeof ti);
    fp4_device_info_init(&di);
    fp4_measure_result_init(&mr);
    fp4_verify_result_init(&vr);
    fp4_tune_result_init(&tr);
    fp4_tuning_info_init(&ti);
    tu_case(di.struct_size == sizeof di && di.sm_count == 0 && di.name[0] == 0 && di.memory_bandwidth_gbs == 0 &&
                mr.struct_size == sizeof mr && mr.too_slow == 0 && mr.note[0] == 0 &&
                vr.struct_size == sizeof vr && vr.passed == 0 && vr.message[sizeof vr.message - 1] == 0 &&
                tr.struct_size == sizeof tr && tr.tuned == 0 && tr.best.config == 0 &&
                ti.struct_size == sizeof ti && ti.entries == 0 && ti.mode == FP4_AUTOTUNE_OFF,
            "device_info/measure_result/verify_result/tune_result/tuning_info _init: struct_size set, rest zero");
    fp4_device_info_init(NULL); /* NULL: nothing, no crash */
    fp4_verify_result_init(NULL);

    /* a newer header (larger struct) is rejected, saying so, before anything is written */
    union {
        fp4_device_info di;
        fp4_measure_result mr;
        fp4_verify_result vr;
        fp4_tune_result tr[2];
        fp4_tuning_info ti;
        uint8_t bytes[4096];
    } big;
    poison_struct(&big, sizeof big, sizeof(fp4_device_info) + 8);
    expect_size_reject(fp4_device_query(0, &big.di), NULL, "newer fp4gemm.h", &big, sizeof(fp4_device_info) + 8,
                       "device_query struct_size = sizeof + 8");
    poison_struct(&big, sizeof big, sizeof(fp4_device_info) - 8);
    expect_size_reject(fp4_device_query(0, &big.di), NULL, "smaller", &big, sizeof(fp4_device_info) - 8,
                       "device_query struct_size = sizeof - 8 (no release's)");

    fp4_measure_desc md;
    fp4_measure_desc_init(&md);
    poison_struct(&big, sizeof big, sizeof(fp4_measure_result) + 16);
    expect_size_reject(fp4_measure(g_ctx, &md, &big.mr), g_ctx, "newer fp4gemm.h", &big,
                       sizeof(fp4_measure_result) + 16, "fp4_measure result struct_size = sizeof + 16");
    poison_struct(&big, sizeof big, sizeof(size_t));
    expect_size_reject(fp4_measure(g_ctx, &md, &big.mr), g_ctx, "smaller", &big, sizeof(fp4_measure_result),
                       "fp4_measure result struct_size = 8");

    const double d[2] = {1.0, 2.0}, ref[2] = {1.0, 2.0}, abs_sum[2] = {1.0, 2.0};
    poison_struct(&big, sizeof big, sizeof(fp4_verify_result) + 8);
    expect_size_reject(fp4_verify_samples(2, d, ref, abs_sum, NULL, NULL, 16, FP4_DTYPE_F32, 0, 0, &big.vr), NULL,
                       "newer fp4gemm.h", &big, sizeof(fp4_verify_result) + 8,
                       "verify_samples result struct_size = sizeof + 8");
    poison_struct(&big, sizeof big, sizeof(fp4_verify_result));
    tu_case(fp4_verify_samples(2, d, ref, abs_sum, NULL, NULL, 16, FP4_DTYPE_F32, 0, 0, &big.vr) == FP4_OK &&
                big.vr.passed == 1 && big.vr.samples == 2 && big.vr.struct_size == sizeof(fp4_verify_result) &&
                all_poison(&big, sizeof(fp4_verify_result), sizeof big),
            "verify_samples, struct_size = sizeof: filled, nothing written past it");
    fp4_gemm_desc gd;
    fp4_gemm_desc_init(&gd);
    poison_struct(&big, sizeof big, sizeof(fp4_verify_result) + 8);
    expect_size_reject(fp4_gemm_verify(g_ctx, &gd, 0, 1, &big.vr), g_ctx, "newer fp4gemm.h", &big,
                       sizeof(fp4_verify_result) + 8, "gemm_verify result struct_size = sizeof + 8");

    /* fp4_tune: every element of results is checked before anything runs */
    fp4_gemm_desc prob;
    fp4_gemm_desc_init(&prob);
    prob.m = 1;
    prob.n = 16;
    prob.k = 64;
    poison_struct(&big, sizeof big, sizeof(fp4_tune_result) + 8);
    expect_size_reject(fp4_tune(g_ctx, &prob, 1, NULL, big.tr), g_ctx, "newer fp4gemm.h", &big,
                       sizeof(fp4_tune_result) + 8, "fp4_tune results[0].struct_size = sizeof + 8");

    /* fp4_tuning_info ends in an int after 8-byte fields: its last field ends before sizeof,
     * which is the smallest struct_size accepted, and then the padding is not written */
    const size_t ti_end = offsetof(fp4_tuning_info, mode) + sizeof ti.mode;
    poison_struct(&big, sizeof big, ti_end);
    const fp4_status st = fp4_tuning_get_info(g_ctx, &big.ti);
    tu_case(st == FP4_OK && big.ti.struct_size == ti_end && big.ti.mode == FP4_AUTOTUNE_OFF &&
                big.ti.entries == 0 && big.ti.device_key[0] == '"' && all_poison(&big, ti_end, sizeof big),
            "tuning_get_info struct_size = end of its last field (%zu of %zu): filled up to there only, "
            "struct_size kept (got %s)", ti_end, sizeof(fp4_tuning_info), fp4_status_name(st));
    poison_struct(&big, sizeof big, ti_end - 1);
    expect_size_reject(fp4_tuning_get_info(g_ctx, &big.ti), NULL, "smaller", &big, sizeof(fp4_tuning_info),
                       "tuning_get_info struct_size = end of last field - 1");
    poison_struct(&big, sizeof big, sizeof(fp4_tuning_info) + 8);
    expect_size_reject(fp4_tuning_get_info(g_ctx, &big.ti), NULL, "newer fp4gemm.h", &big,
                       sizeof(fp4_tuning_info) + 8, "tuning_get_info struct_size = sizeof + 8");
}

/* ---- names and versions -------------------------------------------------------------------- */

static void test_names(void) {
    /* statuses */
    const char *names[7], *msgs[7];
    int ok = 1;
    for (int s = 0; s <= 6; s++) {
        names[s] = fp4_status_name((fp4_status)s);
        msgs[s] = fp4_status_message((fp4_status)s);
        ok &= names[s] && msgs[s] && names[s][0] && msgs[s][0] && strncmp(names[s], "FP4_", 4) == 0;
        for (int t = 0; ok && t < s; t++) ok &= strcmp(names[s], names[t]) != 0 && strcmp(msgs[s], msgs[t]) != 0;
    }
    tu_case(ok, "every fp4_status (0..6) has a distinct non-empty FP4_* name and message");
    tu_case(strcmp(fp4_status_name(FP4_OK), "FP4_OK") == 0 &&
                strcmp(fp4_status_name(FP4_ERR_INVALID_ARGUMENT), "FP4_ERR_INVALID_ARGUMENT") == 0 &&
                strcmp(fp4_status_name(FP4_ERR_NO_DEVICE), "FP4_ERR_NO_DEVICE") == 0 &&
                strcmp(fp4_status_message(FP4_ERR_INVALID_ARGUMENT), "invalid argument") == 0,
            "status names follow the enum: FP4_OK, FP4_ERR_INVALID_ARGUMENT, ...; \"invalid argument\"");
    tu_case(FP4_OK == 0 && FP4_ERR_INVALID_ARGUMENT == 1 && FP4_ERR_NOT_SUPPORTED == 2 &&
                FP4_ERR_OUT_OF_MEMORY == 3 && FP4_ERR_CUDA == 4 && FP4_ERR_NO_DEVICE == 5 && FP4_ERR_INTERNAL == 6,
            "status values are pinned 0..6");
    static const int bad_status[] = {7, 99, -1};
    for (int i = 0; i < 3; i++) {
        const char *n = fp4_status_name((fp4_status)bad_status[i]);
        const char *m = fp4_status_message((fp4_status)bad_status[i]);
        int distinct = n && m && n[0];
        for (int s = 0; distinct && s <= 6; s++) distinct &= strcmp(n, names[s]) != 0;
        tu_case(distinct, "status %d (unknown): a name unlike any real one (\"%s\") and a message", bad_status[i],
                n ? n : "(null)");
    }

    /* dtypes, layouts, backends, log levels: name <-> enum both ways */
    static const char *dtype_names[] = {"f32", "f16", "bf16", "e2m1", "e4m3"};
    static const char *layout_names[] = {"linear", "swizzled"};
    static const char *backend_names[] = {"auto", "cpu_ref", "cuda_simt", "cuda_mma", "cuda_wgmma", "cublaslt", "cpu"};
    static const char *level_names[] = {"off", "error", "warn", "info", "debug"}; /* -1..3 */
    ok = 1;
    for (int i = 0; i < FP4_DTYPE_COUNT; i++) {
        fp4_dtype back = (fp4_dtype)77;
        ok &= strcmp(fp4_dtype_name((fp4_dtype)i), dtype_names[i]) == 0 &&
              fp4_dtype_from_name(dtype_names[i], &back) == FP4_OK && back == (fp4_dtype)i;
    }
    tu_case(ok && FP4_DTYPE_COUNT == 5, "dtype names f32 f16 bf16 e2m1 e4m3 round trip");
    ok = 1;
    for (int i = 0; i < FP4_SF_LAYOUT_COUNT; i++) {
        fp4_sf_layout back = (fp4_sf_layout)77;
        ok &= strcmp(fp4_sf_layout_name((fp4_sf_layout)i), layout_names[i]) == 0 &&
              fp4_sf_layout_from_name(layout_names[i], &back) == FP4_OK && back == (fp4_sf_layout)i;
    }
    tu_case(ok && FP4_SF_LAYOUT_COUNT == 2, "layout names linear swizzled round trip");
    ok = 1;
    for (int i = 0; i < FP4_BACKEND_COUNT; i++) {
        fp4_backend back = (fp4_backend)77;
        ok &= strcmp(fp4_backend_name((fp4_backend)i), backend_names[i]) == 0 &&
              fp4_backend_from_name(backend_names[i], &back) == FP4_OK && back == (fp4_backend)i;
    }
    tu_case(ok && FP4_BACKEND_COUNT == 7, "backend names auto cpu_ref cuda_simt cuda_mma cuda_wgmma cublaslt cpu round trip");
    ok = 1;
    for (int i = -1; i <= 3; i++) {
        fp4_log_level back = (fp4_log_level)77;
        ok &= strcmp(fp4_log_level_name((fp4_log_level)i), level_names[i + 1]) == 0 &&
              fp4_log_level_from_name(level_names[i + 1], &back) == FP4_OK && back == (fp4_log_level)i;
    }
    tu_case(ok, "log level names off error warn info debug round trip");

    /* bad values -> "?", bad names -> INVALID_ARGUMENT with the output untouched */
    tu_case(strcmp(fp4_dtype_name((fp4_dtype)5), "?") == 0 && strcmp(fp4_dtype_name((fp4_dtype)-1), "?") == 0 &&
                strcmp(fp4_sf_layout_name((fp4_sf_layout)2), "?") == 0 &&
                strcmp(fp4_backend_name((fp4_backend)7), "?") == 0 &&
                strcmp(fp4_backend_name((fp4_backend)-1), "?") == 0 &&
                strcmp(fp4_log_level_name((fp4_log_level)4), "?") == 0 &&
                strcmp(fp4_log_level_name((fp4_log_level)-2), "?") == 0,
            "enum names of bad values are \"?\"");
    static const char *bad_names[] = {"", "fp32", "bf16 ", " f16", "swizzle", "cpux", "cpu_ref ", "Debugg", "?", "auto/"};
    ok = 1;
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        fp4_dtype dt = (fp4_dtype)77;
        fp4_sf_layout ly = (fp4_sf_layout)77;
        fp4_backend be = (fp4_backend)77;
        fp4_log_level lv = (fp4_log_level)77;
        ok &= fp4_dtype_from_name(bad_names[i], &dt) == FP4_ERR_INVALID_ARGUMENT && dt == 77;
        ok &= fp4_sf_layout_from_name(bad_names[i], &ly) == FP4_ERR_INVALID_ARGUMENT && ly == 77;
        ok &= fp4_backend_from_name(bad_names[i], &be) == FP4_ERR_INVALID_ARGUMENT && be == 77;
        ok &= fp4_log_level_from_name(bad_names[i], &lv) == FP4_ERR_INVALID_ARGUMENT && lv == 77;
        if (!ok) {
            printf("  name \"%s\" accepted\n", bad_names[i]);
            break;
        }
    }
    tu_case(ok, "unknown names are rejected, output untouched");
    {
        /* every *_from_name says what is wrong and lists the valid names in fp4_last_error(NULL) */
        fp4_dtype dt = (fp4_dtype)77;
        fp4_sf_layout ly = (fp4_sf_layout)77;
        fp4_backend be = (fp4_backend)77;
        fp4_log_level lv = (fp4_log_level)77;
        fp4_quant_recipe rc = (fp4_quant_recipe)77;
        static const struct {
            const char *name, *fn, *valid;
        } cases[] = {
            {"fp32", "fp4_dtype_from_name", "f32, f16, bf16, e2m1, e4m3"},
            {"swizzle", "fp4_sf_layout_from_name", "linear, swizzled"},
            {"cpux", "fp4_backend_from_name", "auto, cpu_ref"},
            {"Debugg", "fp4_log_level_from_name", "off, error, warn, info, debug"},
            {"nvidia", "fp4_quant_recipe_from_name", "flashinfer, modelopt"},
            {NULL, "fp4_dtype_from_name", "f32, f16, bf16, e2m1, e4m3"},
            {"cpu", "fp4_backend_from_name", "auto, cpu_ref"}, /* out NULL */
        };
        ok = 1;
        for (int i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
            (void)fp4_device_count(NULL); /* another message first: the one checked is the call's own */
            fp4_status st = FP4_OK;
            switch (i) {
            case 0: st = fp4_dtype_from_name(cases[i].name, &dt); break;
            case 1: st = fp4_sf_layout_from_name(cases[i].name, &ly); break;
            case 2: st = fp4_backend_from_name(cases[i].name, &be); break;
            case 3: st = fp4_log_level_from_name(cases[i].name, &lv); break;
            case 4: st = fp4_quant_recipe_from_name(cases[i].name, &rc); break;
            case 5: st = fp4_dtype_from_name(cases[i].name, &dt); break;
            default: st = fp4_backend_from_name(cases[i].name, NULL); break;
            }
            const char *msg = fp4_last_error(NULL);
            const int good = st == FP4_ERR_INVALID_ARGUMENT && strstr(msg, cases[i].fn) == msg &&
                             strstr(msg, cases[i].valid) && (!cases[i].name || strstr(msg, cases[i].name));
            if (!good) printf("  %s(%s): status %s, message \"%s\"\n", cases[i].fn, cases[i].name ? cases[i].name : "NULL",
                              fp4_status_name(st), msg);
            ok &= good;
        }
        ok &= dt == 77 && ly == 77 && be == 77 && lv == 77 && rc == 77;
        tu_case(ok, "*_from_name failures (unknown or NULL): fp4_last_error(NULL) names the call, the name and "
                    "the valid names");
    }
    {
        fp4_dtype dt = (fp4_dtype)77;
        fp4_sf_layout ly = (fp4_sf_layout)77;
        fp4_backend be = (fp4_backend)77, be2 = (fp4_backend)77;
        fp4_log_level lv = (fp4_log_level)77, lv2 = (fp4_log_level)77;
        tu_case(fp4_dtype_from_name("BF16", &dt) == FP4_OK && dt == FP4_DTYPE_BF16 &&
                    fp4_sf_layout_from_name("Swizzled", &ly) == FP4_OK && ly == FP4_SF_SWIZZLED_128x4 &&
                    fp4_backend_from_name("CPU_REF", &be) == FP4_OK && be == FP4_BACKEND_CPU_REF &&
                    fp4_backend_from_name("Auto", &be2) == FP4_OK && be2 == FP4_BACKEND_AUTO &&
                    fp4_log_level_from_name("INFO", &lv) == FP4_OK && lv == FP4_LOG_INFO &&
                    fp4_log_level_from_name("Off", &lv2) == FP4_OK && lv2 == FP4_LOG_OFF,
                "names ignore case: BF16, Swizzled, CPU_REF, Auto, INFO, Off");
    }
    {
        fp4_dtype dt;
        fp4_backend be;
        fp4_sf_layout ly;
        fp4_log_level lv;
        ISOLATED_CASE(fp4_dtype_from_name(NULL, &dt) == FP4_ERR_INVALID_ARGUMENT, "dtype_from_name(NULL, &out)");
        ISOLATED_CASE(fp4_dtype_from_name("f32", NULL) == FP4_ERR_INVALID_ARGUMENT, "dtype_from_name(\"f32\", NULL)");
        ISOLATED_CASE(fp4_sf_layout_from_name(NULL, &ly) == FP4_ERR_INVALID_ARGUMENT, "sf_layout_from_name(NULL, &out)");
        ISOLATED_CASE(fp4_sf_layout_from_name("linear", NULL) == FP4_ERR_INVALID_ARGUMENT,
                      "sf_layout_from_name(\"linear\", NULL)");
        ISOLATED_CASE(fp4_backend_from_name(NULL, &be) == FP4_ERR_INVALID_ARGUMENT, "backend_from_name(NULL, &out)");
        ISOLATED_CASE(fp4_backend_from_name("auto", NULL) == FP4_ERR_INVALID_ARGUMENT,
                      "backend_from_name(\"auto\", NULL)");
        ISOLATED_CASE(fp4_log_level_from_name(NULL, &lv) == FP4_ERR_INVALID_ARGUMENT, "log_level_from_name(NULL, &out)");
        ISOLATED_CASE(fp4_log_level_from_name("warn", NULL) == FP4_ERR_INVALID_ARGUMENT,
                      "log_level_from_name(\"warn\", NULL)");
    }
    tu_case(fp4_dtype_size(FP4_DTYPE_F32) == 4 && fp4_dtype_size(FP4_DTYPE_F16) == 2 &&
                fp4_dtype_size(FP4_DTYPE_BF16) == 2 && fp4_dtype_size(FP4_DTYPE_E2M1) == 0 &&
                fp4_dtype_size(FP4_DTYPE_E4M3) == 1 && fp4_dtype_size((fp4_dtype)42) == 0 &&
                fp4_dtype_size((fp4_dtype)-1) == 0,
            "dtype sizes 4 2 2 0 1, 0 for bad values");

    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", FP4GEMM_VERSION_MAJOR, FP4GEMM_VERSION_MINOR, FP4GEMM_VERSION_PATCH);
    tu_case(fp4_version() && strcmp(fp4_version(), want) == 0, "fp4_version \"%s\" == FP4GEMM_VERSION_*",
            fp4_version() ? fp4_version() : "(null)");
}

/* ---- backend policy ------------------------------------------------------------------------- */

static void test_policy(void) {
    struct {
        int cc;
        int n;
        fp4_backend order[4];
    } exact[] = {
        {0, 2, {FP4_BACKEND_CPU, FP4_BACKEND_CPU_REF}},
        {70, 1, {FP4_BACKEND_CUDA_SIMT}},
        {75, 1, {FP4_BACKEND_CUDA_SIMT}},
        {80, 2, {FP4_BACKEND_CUDA_MMA, FP4_BACKEND_CUDA_SIMT}},
        {86, 2, {FP4_BACKEND_CUDA_MMA, FP4_BACKEND_CUDA_SIMT}},
        {89, 2, {FP4_BACKEND_CUDA_MMA, FP4_BACKEND_CUDA_SIMT}},
        {90, 3, {FP4_BACKEND_CUDA_WGMMA, FP4_BACKEND_CUDA_MMA, FP4_BACKEND_CUDA_SIMT}},
    };
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++) {
        fp4_backend out[9];
        memset(out, POISON, sizeof out);
        const int n = fp4_backend_policy(exact[i].cc, out, 8);
        int ok = n == exact[i].n && ((uint8_t *)&out[8])[0] == POISON;
        for (int j = 0; ok && j < n; j++) ok &= out[j] == exact[i].order[j];
        if (!tu_case(ok, "backend_policy cc=%d: exact order (%d backends)", exact[i].cc, exact[i].n)) {
            printf("  got %d:", n);
            for (int j = 0; j < n && j < 8; j++) printf(" %s", fp4_backend_name(out[j]));
            printf("\n");
        }
    }
    static const int blackwell[] = {100, 103, 120, 121};
    for (int i = 0; i < 4; i++) {
        fp4_backend out[8];
        memset(out, POISON, sizeof out);
        const int n = fp4_backend_policy(blackwell[i], out, 8);
        int ok = n >= 2 && n <= 8 && out[0] == FP4_BACKEND_CUBLASLT && out[n - 1] == FP4_BACKEND_CUDA_SIMT;
        for (int j = 0; ok && j < n; j++) {
            ok &= out[j] > FP4_BACKEND_CPU_REF && out[j] < FP4_BACKEND_COUNT && out[j] != FP4_BACKEND_CUDA_WGMMA;
            for (int l = 0; l < j; l++) ok &= out[l] != out[j];
        }
        if (!tu_case(ok, "backend_policy cc=%d: cublaslt first ... cuda_simt last, no duplicates, no wgmma (sm_90a only)",
                     blackwell[i])) {
            printf("  got %d:", n);
            for (int j = 0; j < n && j < 8; j++) printf(" %s", fp4_backend_name(out[j]));
            printf("\n");
        }
    }
    fp4_backend out[4];
    memset(out, POISON, sizeof out);
    const int n = fp4_backend_policy(90, out, 1);
    const int n0 = fp4_backend_policy(90, NULL, 0);
    tu_case(n == 3 && n0 == 3 && out[0] == FP4_BACKEND_CUDA_WGMMA && ((uint8_t *)&out[1])[0] == POISON,
            "backend_policy cap=1 writes one entry and returns the full count; cap=0 with NULL out");
}

/* ---- logging -------------------------------------------------------------------------------- */

static void trigger_failure(void) {
    fp4_quant_desc d;
    region q = region_new(64), sf = region_new(512);
    valid_quant(&d, &q, &sf);
    d.k = 24;
    (void)fp4_quantize(g_ctx, &d);
    free(q.p);
    free(sf.p);
}

/* Runs trigger_failure with stderr redirected to a file and returns how many bytes the
 * library wrote there. */
static long stderr_bytes_of_failure(void) {
    fflush(stderr);
    FILE *tmp = tmpfile();
    if (!tmp) return -1;
    const int saved = dup(2);
    dup2(fileno(tmp), 2);
    trigger_failure();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fseek(tmp, 0, SEEK_END);
    const long n = ftell(tmp);
    fclose(tmp);
    return n;
}

static void test_logging(void) {
    if (getenv("FP4GEMM_LOG_LEVEL") == NULL)
        tu_case(fp4_get_log_level() == FP4_LOG_WARN, "default log level is warn");
    else
        tu_skip("default log level (FP4GEMM_LOG_LEVEL is set)");
    const fp4_log_level initial = fp4_get_log_level();
    int ok = 1;
    for (int l = FP4_LOG_OFF; l <= FP4_LOG_DEBUG; l++) {
        fp4_set_log_level((fp4_log_level)l);
        ok &= fp4_get_log_level() == (fp4_log_level)l;
    }
    tu_case(ok, "set/get log level round trip for off..debug");

    fp4_set_log_level(FP4_LOG_WARN);
    fp4_set_log_callback(NULL, NULL);
    const long quiet = stderr_bytes_of_failure();
    tu_case(quiet == 0, "at level warn without a callback a failed call prints nothing (%ld bytes on stderr)", quiet);
    fp4_set_log_level(FP4_LOG_DEBUG);
    const long loud = stderr_bytes_of_failure();
    tu_case(loud > 0, "at level debug without a callback the failure goes to stderr (%ld bytes)", loud);

    log_capture cap = {0, FP4_LOG_OFF, ""};
    fp4_set_log_callback(capture_fn, &cap);
    const long redirected = stderr_bytes_of_failure();
    const int ok_cb = cap.count >= 1 && cap.level == FP4_LOG_DEBUG && cap.last[0] && names_word(cap.last, "k");
    if (!tu_case(ok_cb && redirected == 0,
                 "at level debug with a callback the callback gets the failure (level debug, names k), stderr "
                 "nothing"))
        printf("  count %d level %d message \"%s\", %ld bytes on stderr\n", cap.count, cap.level, cap.last,
               redirected);
    cap.count = 0;
    fp4_set_log_level(FP4_LOG_ERROR);
    trigger_failure();
    tu_case(cap.count == 0, "at level error a debug-level failure message is not delivered");
    fp4_set_log_level(FP4_LOG_OFF);
    trigger_failure();
    tu_case(cap.count == 0, "at level off nothing is delivered");
    fp4_set_log_callback(NULL, NULL);
    fp4_set_log_level(initial);
}

/* ---- descriptor versioning ---------------------------------------------------------------- */

/* A caller compiled against the first release: its struct ends at V1_SIZE, and whatever
 * lies after it in memory (here POISON) must not be read as the newer fields. */
static void test_versioning(void) {
    region out = region_new(M * N * 4), out2 = region_new(M * N * 4);
    union {
        fp4_gemm_desc d;
        unsigned char raw[sizeof(fp4_gemm_desc) + 64];
    } old_g;
    fp4_gemm_desc d;
    valid_gemm(&d, &out2);
    const int full_ok = fp4_gemm(g_ctx, &d) == FP4_OK;
    memset(old_g.raw, POISON, sizeof old_g.raw);
    valid_gemm(&d, &out);
    d.struct_size = V1_SIZE(fp4_gemm_desc);
    memcpy(old_g.raw, &d, V1_SIZE(fp4_gemm_desc));
    region_poison(&out);
    const fp4_status st = fp4_gemm(g_ctx, &old_g.d);
    tu_case(full_ok && st == FP4_OK && memcmp(out.p, out2.p, M * N * 4) == 0 && out.p[M * N * 4] == POISON,
            "gemm with a 0.1 descriptor (struct_size %zu < %zu, poison after it) -> FP4_OK, same D as today's",
            V1_SIZE(fp4_gemm_desc), sizeof(fp4_gemm_desc));
    fp4_tactic t = {(fp4_backend)77, 77};
    char why[256] = "";
    tu_case(fp4_gemm_select(g_ctx, &old_g.d, &t, why, sizeof why) == FP4_OK && t.backend == FP4_BACKEND_CPU_REF &&
                t.config == 0,
            "select with a 0.1 descriptor: config defaulted to the heuristic (cpu_ref/default): %s", why);
    char buf[256];
    tu_case(fp4_backend_check(g_ctx, FP4_BACKEND_CPU_REF, &old_g.d, buf, sizeof buf) == FP4_OK,
            "backend_check with a 0.1 descriptor -> FP4_OK");
    old_g.d.struct_size = V1_SIZE(fp4_gemm_desc) - 8;
    region_poison(&out);
    expect(fp4_gemm(g_ctx, &old_g.d), FP4_ERR_INVALID_ARGUMENT, g_ctx, "struct_size", region_untouched(&out),
           "gemm struct_size = 0.1 size - 8");
    valid_gemm(&d, &out);
    d.struct_size = sizeof d + 8;
    expect(fp4_gemm(g_ctx, &d), FP4_ERR_INVALID_ARGUMENT, g_ctx, "struct_size", region_untouched(&out),
           "gemm struct_size = sizeof + 8 (a newer header)");
    tu_case(strstr(fp4_last_error(g_ctx), "larger") != NULL, "  ... says it is larger than this library's: %s",
            fp4_last_error(g_ctx));

    /* quantize and dequantize: the same rule */
    region q = region_new(ROWS * K / 2), sf = region_new(512), q2 = region_new(ROWS * K / 2),
           sf2 = region_new(512);
    union {
        fp4_quant_desc d;
        unsigned char raw[sizeof(fp4_quant_desc) + 64];
    } old_q;
    fp4_quant_desc qd;
    valid_quant(&qd, &q2, &sf2);
    const int qfull = fp4_quantize(g_ctx, &qd) == FP4_OK;
    valid_quant(&qd, &q, &sf);
    qd.struct_size = V1_SIZE(fp4_quant_desc);
    memset(old_q.raw, POISON, sizeof old_q.raw);
    memcpy(old_q.raw, &qd, V1_SIZE(fp4_quant_desc));
    tu_case(qfull && fp4_quantize(g_ctx, &old_q.d) == FP4_OK && memcmp(q.p, q2.p, ROWS * K / 2) == 0 &&
                memcmp(sf.p, sf2.p, ROWS * K / 16) == 0,
            "quantize with a 0.1 descriptor (struct_size %zu) -> FP4_OK, same bytes", V1_SIZE(fp4_quant_desc));
    old_q.d.struct_size = V1_SIZE(fp4_quant_desc) - 8;
    region_poison(&q);
    expect(fp4_quantize(g_ctx, &old_q.d), FP4_ERR_INVALID_ARGUMENT, g_ctx, "struct_size", region_untouched(&q),
           "quantize struct_size = 0.1 size - 8");
    valid_quant(&qd, &q, &sf);
    qd.struct_size = sizeof qd + 16;
    expect(fp4_quantize(g_ctx, &qd), FP4_ERR_INVALID_ARGUMENT, g_ctx, "struct_size", region_untouched(&q),
           "quantize struct_size = sizeof + 16");

    region o = region_new(ROWS * K * 4), o2 = region_new(ROWS * K * 4);
    union {
        fp4_dequant_desc d;
        unsigned char raw[sizeof(fp4_dequant_desc) + 64];
    } old_d;
    fp4_dequant_desc dd;
    valid_dequant(&dd, &o2);
    const int dfull = fp4_dequantize(g_ctx, &dd) == FP4_OK;
    valid_dequant(&dd, &o);
    dd.struct_size = V1_SIZE(fp4_dequant_desc);
    memset(old_d.raw, POISON, sizeof old_d.raw);
    memcpy(old_d.raw, &dd, V1_SIZE(fp4_dequant_desc));
    tu_case(dfull && fp4_dequantize(g_ctx, &old_d.d) == FP4_OK && memcmp(o.p, o2.p, ROWS * K * 4) == 0,
            "dequantize with a 0.1 descriptor (struct_size %zu) -> FP4_OK, same values",
            V1_SIZE(fp4_dequant_desc));
    old_d.d.struct_size = 8;
    region_poison(&o);
    expect(fp4_dequantize(g_ctx, &old_d.d), FP4_ERR_INVALID_ARGUMENT, g_ctx, "struct_size", region_untouched(&o),
           "dequantize struct_size = 8");
    valid_dequant(&dd, &o);
    dd.struct_size = sizeof dd + 8;
    expect(fp4_dequantize(g_ctx, &dd), FP4_ERR_INVALID_ARGUMENT, g_ctx, "struct_size", region_untouched(&o),
           "dequantize struct_size = sizeof + 8");
    free(out.p);
    free(out2.p);
    free(q.p);
    free(sf.p);
    free(q2.p);
    free(sf2.p);
    free(o.p);
    free(o2.p);
}

/* ---- tactics ---------------------------------------------------------------------------------- */

/* The number of configs of a backend, found through the public names. */
static int config_count(fp4_backend b) {
    char buf[64];
    int n = 0;
    while (n < 100 && fp4_tactic_name((fp4_tactic){b, n}, buf, sizeof buf) == FP4_OK) n++;
    return n;
}

static void test_tactics(void) {
    /* names of known tactics */
    static const struct {
        fp4_tactic t;
        const char *name;
    } known[] = {
        {{FP4_BACKEND_AUTO, -1}, "auto"},
        {{FP4_BACKEND_CPU_REF, -1}, "cpu_ref"},
        {{FP4_BACKEND_CPU_REF, 0}, "cpu_ref/default"},
        {{FP4_BACKEND_CUDA_SIMT, -1}, "cuda_simt"},
        {{FP4_BACKEND_CUDA_SIMT, 0}, "cuda_simt/tiled"},
        {{FP4_BACKEND_CUDA_SIMT, 1}, "cuda_simt/gemv_mr1"},
        {{FP4_BACKEND_CUDA_SIMT, 4}, "cuda_simt/gemv_mr8"},
        {{FP4_BACKEND_CUDA_MMA, -1}, "cuda_mma"},
        {{FP4_BACKEND_CUBLASLT, -1}, "cublaslt"},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        char buf[64];
        fp4_tactic back = {(fp4_backend)77, 77};
        const int ok = fp4_tactic_name(known[i].t, buf, sizeof buf) == FP4_OK && strcmp(buf, known[i].name) == 0 &&
                       fp4_tactic_from_name(known[i].name, &back) == FP4_OK &&
                       back.backend == known[i].t.backend && back.config == known[i].t.config;
        tu_case(ok, "tactic {%d, %d} <-> \"%s\"", (int)known[i].t.backend, known[i].t.config, known[i].name);
    }
    /* every config of every backend round-trips, upper-cased too */
    int ok = 1, total = 0;
    for (int b = 1; b < FP4_BACKEND_COUNT; b++) {
        const int n = config_count((fp4_backend)b);
        total += n;
        for (int c = -1; c < n; c++) {
            char buf[64];
            fp4_tactic back = {(fp4_backend)77, 77};
            ok &= fp4_tactic_name((fp4_tactic){(fp4_backend)b, c}, buf, sizeof buf) == FP4_OK;
            for (char *p = buf; *p; p++) *p = (char)toupper((unsigned char)*p);
            ok &= fp4_tactic_from_name(buf, &back) == FP4_OK && back.backend == (fp4_backend)b && back.config == c;
        }
    }
    tu_case(ok && config_count(FP4_BACKEND_CPU_REF) == 1 && config_count(FP4_BACKEND_CUDA_SIMT) == 5 &&
                config_count(FP4_BACKEND_CUDA_WGMMA) == WGMMA_CONFIGS,
            "all %d tactics' names round-trip, ignoring case (cpu_ref 1 config, cuda_simt 5)", total);

    /* bad names: INVALID_ARGUMENT, *out untouched, the message lists the valid names */
    static const struct {
        const char *name;
        const char *listed;
    } bad[] = {
        {"cuda_simt/gemv_mr3", "cuda_simt/gemv_mr8"}, {"foo", "cpu_ref/default"}, {"cpu_ref/fast", "cpu_ref/default"},
        {"auto/x", "cuda_simt/tiled"},                {"", "cuda_simt"},          {"cuda_simt/", "cuda_simt/tiled"},
        {"/tiled", "cuda_simt/tiled"},                {"cuda_mma/x", "cuda_mma"}, {"cuda_simt/tiled/x", "cuda_simt/tiled"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fp4_tactic t = {(fp4_backend)77, 77};
        const fp4_status st = fp4_tactic_from_name(bad[i].name, &t);
        const char *msg = fp4_last_error(NULL);
        if (!tu_case(st == FP4_ERR_INVALID_ARGUMENT && t.backend == 77 && t.config == 77 && strstr(msg, bad[i].listed),
                     "tactic_from_name(\"%s\") -> INVALID_ARGUMENT, message lists %s", bad[i].name, bad[i].listed))
            printf("  %s \"%s\"\n", fp4_status_name(st), msg);
    }
    {
        fp4_tactic t;
        ISOLATED_CASE(fp4_tactic_from_name(NULL, &t) == FP4_ERR_INVALID_ARGUMENT, "tactic_from_name(NULL, &out)");
        ISOLATED_CASE(fp4_tactic_from_name("auto", NULL) == FP4_ERR_INVALID_ARGUMENT, "tactic_from_name(\"auto\", NULL)");
        ISOLATED_CASE(fp4_tactic_name((fp4_tactic){FP4_BACKEND_CPU_REF, 0}, NULL, 16) == FP4_ERR_INVALID_ARGUMENT,
                      "tactic_name(buf=NULL)");
    }
    static const fp4_tactic bad_t[] = {{FP4_BACKEND_CPU_REF, 1},   {FP4_BACKEND_CPU_REF, -2}, {(fp4_backend)99, -1},
                                       {(fp4_backend)-1, -1},      {FP4_BACKEND_AUTO, 0},     {FP4_BACKEND_CUDA_SIMT, 5},
                                       {FP4_BACKEND_CUDA_WGMMA, 3}};
    for (size_t i = 0; i < sizeof bad_t / sizeof bad_t[0]; i++) {
        char buf[64];
        memset(buf, POISON, sizeof buf);
        const fp4_status st = fp4_tactic_name(bad_t[i], buf, sizeof buf);
        tu_case(st == FP4_ERR_INVALID_ARGUMENT && buf[0] == 0 && fp4_last_error(NULL)[0],
                "tactic_name({%d, %d}) -> INVALID_ARGUMENT, buf \"\" (%s)", (int)bad_t[i].backend, bad_t[i].config,
                fp4_last_error(NULL));
    }
    {
        char buf[8 + GUARD];
        memset(buf, POISON, sizeof buf);
        const fp4_status st = fp4_tactic_name((fp4_tactic){FP4_BACKEND_CPU_REF, 0}, buf, 8); /* needs 16 */
        int guard = 1;
        for (int i = 8; i < (int)sizeof buf; i++) guard &= buf[i] == (char)POISON;
        tu_case(st == FP4_ERR_INVALID_ARGUMENT && buf[0] == 0 && guard,
                "tactic_name into 8 bytes (\"cpu_ref/default\" needs 16) -> INVALID_ARGUMENT, buf \"\", nothing past 8");
    }

    /* listing: on a CPU context cpu/gemv, cpu/blocked (the policy's first), then cpu_ref/default */
    region out = region_new(M * N * 4);
    fp4_gemm_desc d;
    valid_gemm(&d, &out);
    fp4_tactic list[8];
    memset(list, POISON, sizeof list);
    int count = -1;
    tu_case(fp4_gemm_list_tactics(g_ctx, &d, list, 8, &count) == FP4_OK && count == 3 &&
                list[0].backend == FP4_BACKEND_CPU && list[0].config == 0 && list[1].backend == FP4_BACKEND_CPU &&
                list[1].config == 1 && list[2].backend == FP4_BACKEND_CPU_REF && list[2].config == 0 &&
                ((uint8_t *)&list[3])[0] == POISON,
            "list_tactics on a CPU context -> 3: cpu/gemv, cpu/blocked, cpu_ref/default");
    count = -1;
    tu_case(fp4_gemm_list_tactics(g_ctx, NULL, NULL, 0, &count) == FP4_OK && count == 3,
            "list_tactics desc=NULL, out=NULL, cap=0 -> count 3");
    d.backend = FP4_BACKEND_CUDA_SIMT; /* ignored by the list */
    d.config = 3;
    count = -1;
    tu_case(fp4_gemm_list_tactics(g_ctx, &d, list, 8, &count) == FP4_OK && count == 3,
            "list_tactics ignores desc->backend and desc->config");
    valid_gemm(&d, &out);
    d.k = 24;
    count = -1;
    expect(fp4_gemm_list_tactics(g_ctx, &d, list, 8, &count), FP4_ERR_INVALID_ARGUMENT, g_ctx, "k", count == -1,
           "list_tactics k=24");
    valid_gemm(&d, &out);
    expect(fp4_gemm_list_tactics(g_ctx, &d, list, 8, NULL), FP4_ERR_INVALID_ARGUMENT, g_ctx, "count", 1,
           "list_tactics count=NULL");
    expect(fp4_gemm_list_tactics(g_ctx, &d, list, -1, &count), FP4_ERR_INVALID_ARGUMENT, g_ctx, "cap", 1,
           "list_tactics cap=-1");
    expect(fp4_gemm_list_tactics(g_ctx, &d, NULL, 2, &count), FP4_ERR_INVALID_ARGUMENT, g_ctx, "out", 1,
           "list_tactics out=NULL cap=2");
    expect(fp4_gemm_list_tactics(NULL, &d, list, 8, &count), FP4_ERR_INVALID_ARGUMENT, NULL, "ctx", 1,
           "list_tactics ctx=NULL");

    /* selection and its reason */
    char why[512 + GUARD];
    fp4_tactic t = {(fp4_backend)77, 77};
    valid_gemm(&d, &out);
    d.backend = FP4_BACKEND_AUTO;
    fp4_status st = fp4_gemm_select(g_ctx, &d, &t, why, 512);
    if (!tu_case(st == FP4_OK && t.backend == FP4_BACKEND_CPU && t.config == 0 && names_word(why, "auto") &&
                     names_word(why, "cpu") && names_word(why, "gemv") && fp4_last_error(g_ctx)[0] == 0,
                 "select auto on a CPU context (m = 4) -> cpu/gemv, why: \"%s\"", why))
        printf("  %s\n", fp4_status_name(st));
    t.backend = (fp4_backend)77;
    st = fp4_gemm_select(g_ctx, NULL, &t, why, 512);
    tu_case(st == FP4_OK && t.backend == FP4_BACKEND_CPU && t.config == -1 && why[0],
            "select desc=NULL -> cpu with config -1 (chosen per problem): \"%s\"", why);
    valid_gemm(&d, &out); /* explicit cpu_ref */
    d.config = 0;
    st = fp4_gemm_select(g_ctx, &d, &t, why, 512);
    tu_case(st == FP4_OK && t.backend == FP4_BACKEND_CPU_REF && t.config == 0 && names_word(why, "explicit"),
            "select explicit cpu_ref/default -> itself, why: \"%s\"", why);
    tu_case(fp4_gemm(g_ctx, &d) == FP4_OK && fp4_backend_check(g_ctx, FP4_BACKEND_CPU_REF, &d, why, 512) == FP4_OK,
            "gemm and backend_check honour desc->config = 0 on cpu_ref");
    st = fp4_gemm_select(g_ctx, &d, &t, NULL, 0);
    tu_case(st == FP4_OK && t.config == 0, "select with why=NULL -> FP4_OK");
    valid_gemm(&d, &out);
    d.backend = FP4_BACKEND_CUDA_SIMT;
    d.config = 4;
    t.backend = (fp4_backend)77;
    memset(why, POISON, sizeof why);
    st = fp4_gemm_select(g_ctx, &d, &t, why, 512);
    tu_case(st == FP4_ERR_NOT_SUPPORTED && t.backend == 77 && names_word(why, "cuda_simt/gemv_mr8") &&
                names_word(fp4_last_error(g_ctx), "cuda_simt/gemv_mr8"),
            "select cuda_simt/gemv_mr8 on a CPU context -> NOT_SUPPORTED, why and last error name it: \"%s\"", why);
    region_poison(&out);
    expect(fp4_gemm(g_ctx, &d), FP4_ERR_NOT_SUPPORTED, g_ctx, "cuda_simt", region_untouched(&out),
           "gemm cuda_simt/gemv_mr8 on a CPU context");
    tu_case(fp4_backend_check(g_ctx, FP4_BACKEND_CUDA_SIMT, &d, why, 512) == FP4_ERR_NOT_SUPPORTED,
            "backend_check cuda_simt with config 4 on a CPU context -> NOT_SUPPORTED (%s)", why);
    valid_gemm(&d, &out);
    d.config = 7;
    st = fp4_gemm_select(g_ctx, &d, &t, why, 512);
    tu_case(st == FP4_ERR_INVALID_ARGUMENT && names_word(why, "config"),
            "select config out of range -> INVALID_ARGUMENT, why names config: \"%s\"", why);
    valid_gemm(&d, &out);
    expect(fp4_gemm_select(NULL, &d, &t, why, 512), FP4_ERR_INVALID_ARGUMENT, NULL, "ctx", 1, "select ctx=NULL");
    expect(fp4_gemm_select(g_ctx, &d, NULL, why, 512), FP4_ERR_INVALID_ARGUMENT, g_ctx, "out", 1, "select out=NULL");
    memset(why, POISON, sizeof why);
    st = fp4_gemm_select(g_ctx, &d, &t, why, 8);
    int guard = 1;
    for (int i = 8; i < (int)sizeof why; i++) guard &= why[i] == (char)POISON;
    tu_case(st == FP4_OK && memchr(why, 0, 8) && guard, "select with why_len = 8: truncated, NUL-terminated");
    free(out.p);
}

/* ---- FP4GEMM_BACKEND ---------------------------------------------------------------------- */

static void test_env_backend(void) {
    const char *saved = getenv("FP4GEMM_BACKEND");
    char saved_copy[64] = "";
    if (saved) snprintf(saved_copy, sizeof saved_copy, "%s", saved);
    region out = region_new(M * N * 4);
    fp4_gemm_desc d;
    char why[512];
    fp4_tactic t;

    static const char *cpu_names[] = {"cpu_ref", "CPU_REF", "Cpu_Ref/Default"};
    for (int i = 0; i < 3; i++) {
        setenv("FP4GEMM_BACKEND", cpu_names[i], 1);
        fp4_ctx *c = NULL;
        fp4_status st = fp4_create(&c, -1);
        if (tu_case(st == FP4_OK, "FP4GEMM_BACKEND=%s: create -> FP4_OK", cpu_names[i])) {
            valid_gemm(&d, &out);
            d.backend = FP4_BACKEND_AUTO;
            fp4_backend chosen = (fp4_backend)77;
            region_poison(&out);
            int ok = fp4_gemm(c, &d) == FP4_OK && !region_untouched(&out) &&
                     fp4_gemm_select_backend(c, &d, &chosen) == FP4_OK && chosen == FP4_BACKEND_CPU_REF;
            ok &= fp4_gemm_select(c, &d, &t, why, sizeof why) == FP4_OK && t.backend == FP4_BACKEND_CPU_REF &&
                  t.config == 0 && strstr(why, "FP4GEMM_BACKEND") != NULL;
            tu_case(ok, "FP4GEMM_BACKEND=%s: auto GEMM runs cpu_ref; select says why: \"%s\"", cpu_names[i], why);
            fp4_destroy(c);
        }
    }

    static const char *simt_names[] = {"cuda_simt", "cuda_simt/tiled"};
    for (int i = 0; i < 2; i++) {
        setenv("FP4GEMM_BACKEND", simt_names[i], 1);
        fp4_ctx *c = NULL;
        fp4_status st = fp4_create(&c, -1);
        if (tu_case(st == FP4_OK, "FP4GEMM_BACKEND=%s: create a CPU context -> FP4_OK", simt_names[i])) {
            valid_gemm(&d, &out);
            d.backend = FP4_BACKEND_AUTO;
            region_poison(&out);
            expect(fp4_gemm(c, &d), FP4_ERR_NOT_SUPPORTED, c, simt_names[i], region_untouched(&out),
                   "FP4GEMM_BACKEND=cuda_simt...: auto gemm on a CPU context");
            /* an explicit backend in the descriptor still wins over the variable */
            d.backend = FP4_BACKEND_CPU_REF;
            tu_case(fp4_gemm(c, &d) == FP4_OK, "FP4GEMM_BACKEND=%s: explicit cpu_ref still runs", simt_names[i]);
            fp4_destroy(c);
        }
    }

    /* a bad value: contexts, quantizing and explicit backends work; it is reported once (a
     * warning), and an auto GEMM fails saying why */
    log_capture cap = {0, FP4_LOG_OFF, ""};
    const fp4_log_level level = fp4_get_log_level();
    fp4_set_log_level(FP4_LOG_WARN);
    fp4_set_log_callback(capture_fn, &cap);
    setenv("FP4GEMM_BACKEND", "garbage", 1);
    fp4_ctx *c = NULL, *c2 = NULL;
    const fp4_status st = fp4_create(&c, -1);
    const fp4_status st2 = fp4_create(&c2, -1);
    const int warned = cap.count == 1 && cap.level == FP4_LOG_WARN && strstr(cap.last, "FP4GEMM_BACKEND=garbage") &&
                       strstr(cap.last, "cuda_simt/gemv_mr8");
    fp4_set_log_callback(NULL, NULL);
    fp4_set_log_level(level);
    if (!tu_case(st == FP4_OK && st2 == FP4_OK && warned,
                 "FP4GEMM_BACKEND=garbage: two contexts created, one warning listing the valid names"))
        printf("  %s %s, %d messages, last \"%s\"\n", fp4_status_name(st), fp4_status_name(st2), cap.count, cap.last);
    if (st == FP4_OK) {
        region q = region_new(ROWS * K / 2), sf = region_new(512);
        fp4_quant_desc qd;
        valid_quant(&qd, &q, &sf);
        tu_case(fp4_quantize(c, &qd) == FP4_OK, "FP4GEMM_BACKEND=garbage: quantize runs");
        valid_gemm(&d, &out);
        tu_case(fp4_gemm(c, &d) == FP4_OK, "FP4GEMM_BACKEND=garbage: explicit cpu_ref runs");
        tu_case(fp4_gemm_select(c, &d, &t, why, sizeof why) == FP4_OK && strstr(why, "FP4GEMM_BACKEND ignored"),
                "FP4GEMM_BACKEND=garbage: select explicit cpu_ref says the variable is ignored: \"%s\"", why);
        d.backend = FP4_BACKEND_AUTO;
        region_poison(&out);
        expect(fp4_gemm(c, &d), FP4_ERR_INVALID_ARGUMENT, c, "FP4GEMM_BACKEND", region_untouched(&out),
               "FP4GEMM_BACKEND=garbage: auto gemm");
        tu_case(fp4_gemm_select(c, &d, &t, why, sizeof why) == FP4_ERR_INVALID_ARGUMENT &&
                    strstr(why, "FP4GEMM_BACKEND=garbage") && strstr(why, "cpu_ref/default"),
                "FP4GEMM_BACKEND=garbage: select auto -> INVALID_ARGUMENT, why names it and the valid names");
        free(q.p);
        free(sf.p);
    }
    fp4_destroy(c);
    fp4_destroy(c2);

    setenv("FP4GEMM_BACKEND", "auto", 1);
    c = NULL;
    if (tu_case(fp4_create(&c, -1) == FP4_OK, "FP4GEMM_BACKEND=auto: create -> FP4_OK")) {
        valid_gemm(&d, &out);
        d.backend = FP4_BACKEND_AUTO;
        tu_case(fp4_gemm(c, &d) == FP4_OK, "FP4GEMM_BACKEND=auto: auto gemm runs");
        fp4_destroy(c);
    }
    if (saved)
        setenv("FP4GEMM_BACKEND", saved_copy, 1);
    else
        unsetenv("FP4GEMM_BACKEND");
    free(out.p);
}

/* ---- FP4GEMM_LOG_LEVEL: read once per process, so each value runs in a child ------------- */

/* The child: prints "<level> <level again> <messages> <last message>". */
static int log_level_child(void) {
    log_capture cap = {0, FP4_LOG_OFF, ""};
    fp4_set_log_callback(capture_fn, &cap);
    const fp4_log_level first = fp4_get_log_level();
    fp4_ctx *c = NULL;
    if (fp4_create(&c, -1) == FP4_OK) fp4_destroy(c);
    const fp4_log_level again = fp4_get_log_level();
    printf("%d %d %d %s\n", (int)first, (int)again, cap.count, cap.last);
    return 0;
}

static void test_env_log_level(void) {
    static const struct {
        const char *value;
        int level;    /* expected */
        int warnings; /* expected messages */
    } cases[] = {
        {"info", FP4_LOG_INFO, 0}, {"INFO", FP4_LOG_INFO, 0}, {"Debug", FP4_LOG_DEBUG, 0},
        {"off", FP4_LOG_OFF, 0},   {"verbose", FP4_LOG_WARN, 1}, {"2", FP4_LOG_WARN, 1},
    };
    char self[512];
    const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0 || strchr(self, '\'')) {
        tu_skip("FP4GEMM_LOG_LEVEL cases: can't find this program's path");
        return;
    }
    self[n] = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char cmd[800];
        snprintf(cmd, sizeof cmd, "FP4GEMM_LOG_LEVEL='%s' FP4GEMM_BACKEND= '%s' --log-level-child", cases[i].value,
                 self);
        FILE *p = popen(cmd, "r");
        char line[1400] = "";
        if (p) {
            if (!fgets(line, sizeof line, p)) line[0] = 0;
            pclose(p);
        }
        int first = 99, again = 99, count = -1;
        char last[1300] = "";
        const int got = sscanf(line, "%d %d %d %1299[^\n]", &first, &again, &count, last);
        int ok = got >= 3 && first == cases[i].level && again == first && count == cases[i].warnings;
        if (cases[i].warnings)
            ok &= strstr(last, "FP4GEMM_LOG_LEVEL") != NULL && strstr(last, cases[i].value) != NULL &&
                  strstr(last, "debug") != NULL;
        if (!tu_case(ok, "FP4GEMM_LOG_LEVEL=%s -> level %s, %d warning%s", cases[i].value,
                     fp4_log_level_name((fp4_log_level)cases[i].level), cases[i].warnings,
                     cases[i].warnings ? " naming it and the valid levels (once)" : "s"))
            printf("  child said \"%s\"\n", line);
    }
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--log-level-child") == 0) return log_level_child();
    const uint64_t seed = tu_seed(0xA91C0DEull);
    tu_begin("test_api", seed);
    tu_rng rng;
    tu_rng_seed(&rng, seed);
    /* logging first: it checks the default level before anything changes it */
    const char *env_backend = getenv("FP4GEMM_BACKEND");
    if (env_backend) unsetenv("FP4GEMM_BACKEND");
    if (!tu_ok(fp4_create(&g_ctx, -1), NULL, "fp4_create(-1)")) {
        tu_case(0, "create a CPU context");
        return tu_finish();
    }
    tu_fill_activations(&rng, g_in, ROWS * K, 2.0f);
    tu_fill_bytes(&rng, g_q, sizeof g_q);
    tu_fill_scales(&rng, g_sf, sizeof g_sf, -3, 3);
    tu_fill_bytes(&rng, g_a, sizeof g_a);
    tu_fill_bytes(&rng, g_b, sizeof g_b);
    tu_fill_scales(&rng, g_asf, sizeof g_asf, -3, 3);
    tu_fill_scales(&rng, g_bsf, sizeof g_bsf, -3, 3);
    for (int i = 0; i < M * K; i++) g_a16[i] = (uint16_t)(0x3F80 + (tu_rng_u64(&rng) & 0x7F)); /* bf16 in [1, 2) */

    test_logging();
    test_names();
    test_policy();
    test_create_and_devices();
    test_output_structs();
    test_quantize_bad();
    test_dequantize_bad();
    test_global_scale_bad();
    test_gemm_bad();
    test_memory();
    test_versioning();
    test_tactics();
    test_env_backend();
    test_env_log_level();
    fp4_destroy(g_ctx);
    return tu_finish();
}

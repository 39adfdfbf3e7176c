/*
 * test_cpu.c - the `cpu` backend (FP4_BACKEND_CPU): every config (gemv, blocked) and every
 * SIMD kernel set this machine runs (FP4GEMM_CPU_SIMD = avx512, avx2, neon, generic), with 1,
 * 2 and 7 threads, over ragged shapes (M = 1, N = 1, K = 16, tile and k-slice edges), W4A4
 * and W4A16 (BF16, F16), both scale layouts, every output type, ldd > n, alpha by value and
 * by pointer. Each result is checked against cpu_ref on the same inputs within the FP32
 * summation bound, D poisoned before every run, its padding and the bytes past it untouched;
 * and every run of one problem must give the same bytes (the backend's promise: the bits do
 * not depend on the config, the kernel set or the thread count). Plus the context settings
 * and the configs' limits.
 */
#define _POSIX_C_SOURCE 200809L
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GUARD 64
#define POISON 0xFF

static const char *const k_sets[] = {"avx512", "avx2", "neon", "generic"};
enum { SET_COUNT = 4, MAX_CTX = 4 };
static fp4_ctx *g_ctx[MAX_CTX]; /* one context per kernel set this machine runs */
static int g_nctx;
static fp4_ctx *g_ref; /* for cpu_ref */

static const char *a_name(fp4_dtype t) {
    return t == FP4_DTYPE_E2M1 ? "W4A4" : t == FP4_DTYPE_BF16 ? "W4A16-bf16" : "W4A16-f16";
}

/* ---- operands ---------------------------------------------------------------------------- */

typedef struct operand {
    void *data, *abs_data; /* the values, and their magnitudes (sign bits cleared) */
    uint8_t *sf;
    int64_t data_bytes, sf_bytes;
} operand;

static void make_operand(tu_rng *rng, operand *o, int64_t rows, int64_t k, fp4_dtype dtype, fp4_sf_layout layout) {
    memset(o, 0, sizeof *o);
    if (dtype == FP4_DTYPE_E2M1) {
        o->data_bytes = fp4_packed_bytes(rows, k);
        o->data = malloc((size_t)o->data_bytes);
        o->abs_data = malloc((size_t)o->data_bytes);
        tu_fill_bytes(rng, o->data, o->data_bytes);
        for (int64_t i = 0; i < o->data_bytes; i++) ((uint8_t *)o->abs_data)[i] = ((uint8_t *)o->data)[i] & 0x77;
        o->sf_bytes = fp4_sf_bytes(rows, k, layout);
        o->sf = malloc((size_t)o->sf_bytes);
        tu_fill_scales(rng, o->sf, o->sf_bytes, -9, 6); /* subnormal scales included */
        return;
    }
    o->data_bytes = rows * k * 2;
    o->data = malloc((size_t)o->data_bytes);
    o->abs_data = malloc((size_t)o->data_bytes);
    float *x = malloc((size_t)(rows * k) * sizeof(float));
    tu_fill_activations(rng, x, rows * k, 3.0f);
    uint16_t *h = o->data, *ha = o->abs_data;
    for (int64_t i = 0; i < rows * k; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        if (dtype == FP4_DTYPE_BF16) {
            h[i] = (uint16_t)(u >> 16); /* truncation is a fine generator */
        } else {
            /* F16 of modest values: |x| < 65504 by construction; build by rounding through float */
            const float a = fabsf(x[i]);
            int e;
            const float mnt = frexpf(a, &e); /* a = mnt * 2^e, mnt in [0.5, 1) */
            uint16_t bits = 0;
            if (a >= 0x1p-14f) bits = (uint16_t)(((e - 1 + 15) << 10) | ((uint32_t)((mnt * 2.0f - 1.0f) * 1024.0f) & 0x3FF));
            h[i] = (uint16_t)(bits | (x[i] < 0 ? 0x8000 : 0));
        }
        ha[i] = (uint16_t)(h[i] & 0x7FFF);
    }
    free(x);
}

static void free_operand(operand *o) {
    free(o->data);
    free(o->abs_data);
    free(o->sf);
}

/* ---- one problem -------------------------------------------------------------------------- */

typedef struct problem {
    int64_t m, n, k, ldd;
    fp4_dtype a_dtype, d_dtype;
    fp4_sf_layout a_layout, b_layout;
    int alpha_by_ptr;
} problem;

static void fill_desc(fp4_gemm_desc *g, const problem *p, const operand *A, const operand *B, int use_abs) {
    fp4_gemm_desc_init(g);
    g->m = p->m;
    g->n = p->n;
    g->k = p->k;
    g->a_dtype = p->a_dtype;
    g->a = use_abs ? A->abs_data : A->data;
    g->a_sf = A->sf;
    g->a_sf_layout = p->a_layout;
    g->b = use_abs ? B->abs_data : B->data;
    g->b_sf = B->sf;
    g->b_sf_layout = p->b_layout;
}

static double out_value(const uint8_t *d, fp4_dtype dt, int64_t idx) {
    if (dt == FP4_DTYPE_F32) {
        float f;
        memcpy(&f, d + idx * 4, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, d + idx * 2, 2);
    float f;
    if (dt == FP4_DTYPE_BF16) {
        const uint32_t u = (uint32_t)h << 16;
        memcpy(&f, &u, 4);
        return f;
    }
    const int e = (h >> 10) & 0x1F, mnt = h & 0x3FF;
    double v = e == 0 ? ldexp(mnt, -24) : e == 31 ? (mnt ? NAN : INFINITY) : ldexp(1024 + mnt, e - 25);
    return (h & 0x8000) ? -v : v;
}

/* ulp of |x| in a format with `mant` mantissa bits and minimum normal exponent emin */
static double ulp_of(double x, int mant, int emin) {
    int e;
    frexp(fabs(x), &e);
    if (e - 1 < emin) e = emin + 1;
    return ldexp(1.0, e - 1 - mant);
}

/* Runs problem p on every context, config and thread count; returns 1 if all pass. */
static int run_problem(tu_rng *rng, const problem *p) {
    operand A, B;
    make_operand(rng, &A, p->m, p->k, p->a_dtype, p->a_layout);
    make_operand(rng, &B, p->n, p->k, FP4_DTYPE_E2M1, p->b_layout);
    const float alpha = (float)(0.25 + tu_rng_uniform(rng)) * (p->a_dtype == FP4_DTYPE_E2M1 ? 1e-3f : 1e-2f);
    const float alpha_mem = alpha;

    /* the reference and the magnitudes, both F32 from cpu_ref (double accumulation) */
    float *ref = malloc((size_t)(p->m * p->n) * sizeof(float)), *refabs = malloc((size_t)(p->m * p->n) * sizeof(float));
    fp4_gemm_desc g;
    fill_desc(&g, p, &A, &B, 0);
    g.d_dtype = FP4_DTYPE_F32;
    g.d = ref;
    g.alpha = 1.0f;
    g.backend = FP4_BACKEND_CPU_REF;
    int ok = tu_ok(fp4_gemm(g_ref, &g), g_ref, "cpu_ref");
    fill_desc(&g, p, &A, &B, 1);
    g.d_dtype = FP4_DTYPE_F32;
    g.d = refabs;
    g.alpha = 1.0f;
    g.backend = FP4_BACKEND_CPU_REF;
    ok &= tu_ok(fp4_gemm(g_ref, &g), g_ref, "cpu_ref |A| |B|");

    const int64_t esz = p->d_dtype == FP4_DTYPE_F32 ? 4 : 2, dn = p->m * p->ldd * esz;
    uint8_t *d = malloc((size_t)(dn + GUARD)), *first = malloc((size_t)(dn + GUARD));
    int have_first = 0;
    static const int threads[] = {1, 2, 7};
    for (int c = 0; c < g_nctx && ok; c++)
        for (int cfg = 0; cfg < 2 && ok; cfg++) {
            if (cfg == 0 && p->m > 16) continue; /* gemv's limit (tested below) */
            for (int t = 0; t < 3 && ok; t++) {
                ok &= tu_ok(fp4_ctx_set_num_threads(g_ctx[c], threads[t]), g_ctx[c], "set_num_threads");
                memset(d, POISON, (size_t)(dn + GUARD));
                fill_desc(&g, p, &A, &B, 0);
                g.d_dtype = p->d_dtype;
                g.d = d;
                g.ldd = p->ldd;
                g.alpha = p->alpha_by_ptr ? -999.0f : alpha;
                g.alpha_ptr = p->alpha_by_ptr ? &alpha_mem : NULL;
                g.backend = FP4_BACKEND_CPU;
                g.config = cfg;
                char why[256] = "";
                ok &= tu_ok(fp4_gemm(g_ctx[c], &g), g_ctx[c], "fp4_gemm cpu");
                for (int64_t i = 0; ok && i < p->m; i++)
                    for (int64_t j = 0; ok && j < p->ldd; j++) {
                        const int64_t idx = i * p->ldd + j;
                        if (j >= p->n) {
                            for (int64_t b = 0; b < esz; b++)
                                if (d[idx * esz + b] != POISON) {
                                    snprintf(why, sizeof why, "padding (%lld, %lld) written", (long long)i, (long long)j);
                                    ok = 0;
                                }
                            continue;
                        }
                        const double got = out_value(d, p->d_dtype, idx);
                        const double r = (double)alpha * ref[i * p->n + j];
                        double tol = 2.0 * (double)p->k * 0x1p-24 * fabs((double)alpha) * refabs[i * p->n + j] +
                                     2.0 * ulp_of(r, 23, -126);
                        if (p->d_dtype == FP4_DTYPE_F16) tol += ulp_of(r, 10, -14);
                        if (p->d_dtype == FP4_DTYPE_BF16) tol += ulp_of(r, 7, -126);
                        if (!(fabs(got - r) <= tol)) {
                            snprintf(why, sizeof why, "D(%lld, %lld) = %.9g, cpu_ref %.9g (tolerance %.3g)",
                                     (long long)i, (long long)j, got, r, tol);
                            ok = 0;
                        }
                    }
                for (int64_t b = 0; ok && b < GUARD; b++)
                    if (d[dn + b] != POISON) {
                        snprintf(why, sizeof why, "wrote past the end of D");
                        ok = 0;
                    }
                if (ok && have_first && memcmp(d, first, (size_t)dn) != 0) {
                    snprintf(why, sizeof why, "not the same bytes as the first run (%s, gemv, 1 thread)",
                             fp4_ctx_cpu_simd(g_ctx[0]));
                    ok = 0;
                }
                if (ok && !have_first) {
                    memcpy(first, d, (size_t)dn);
                    have_first = 1;
                }
                if (!ok)
                    printf("  %s, %s, %d threads: %s\n", fp4_ctx_cpu_simd(g_ctx[c]), cfg ? "blocked" : "gemv",
                           threads[t], why);
            }
        }
    tu_case(ok, "cpu %s m=%lld n=%lld k=%lld d=%s ldd=%lld a_sf=%s b_sf=%s alpha%s: %d kernel sets x configs x 1/2/7 "
                "threads, vs cpu_ref and the same bytes",
            a_name(p->a_dtype), (long long)p->m, (long long)p->n, (long long)p->k, fp4_dtype_name(p->d_dtype),
            (long long)p->ldd, p->a_dtype == FP4_DTYPE_E2M1 ? fp4_sf_layout_name(p->a_layout) : "-",
            fp4_sf_layout_name(p->b_layout), p->alpha_by_ptr ? " by pointer" : "", g_nctx);

    /* AUTO on a CPU context runs the cpu backend */
    if (ok && p->m * p->n % 4 == 0) {
        memset(d, POISON, (size_t)(dn + GUARD));
        g.backend = FP4_BACKEND_AUTO;
        g.config = -1;
        const int ok2 = tu_ok(fp4_gemm(g_ctx[0], &g), g_ctx[0], "fp4_gemm auto") && memcmp(d, first, (size_t)dn) == 0;
        tu_case(ok2, "auto on the CPU m=%lld n=%lld k=%lld: the cpu backend's bytes", (long long)p->m, (long long)p->n,
                (long long)p->k);
    }
    free(d);
    free(first);
    free(ref);
    free(refabs);
    free_operand(&A);
    free_operand(&B);
    return ok;
}

static void test_shapes(tu_rng *rng) {
    /* m, n, k: M = 1, N = 1, K = 16; the 4-row groups, 16-row gemv chunks, 64 x 64 tiles and
     * 512-deep k slices of the backend, each one under, at and over; some above the ~1e6
     * multiply-adds where threads start; M = 12 and 15 with K past 4096 (gemv's 4 x 4 rows of
     * A and B, its 64-block k slices and a 1-block last slice) */
    static const int64_t shapes[][3] = {
        {1, 1, 16},    {1, 37, 48},   {2, 5, 16},     {3, 130, 208},  {4, 700, 512},  {5, 17, 80},
        {16, 33, 96},  {1, 1, 1040},  {17, 300, 528}, {64, 64, 512},  {65, 129, 1040}, {130, 7, 32},
        {7, 1, 4096},  {1, 300, 4096}, {129, 65, 16}, {1, 45, 208},  {1, 37, 1040}, {12, 70, 4112},
        {15, 23, 1040},
    };
    static const fp4_dtype a_types[] = {FP4_DTYPE_E2M1, FP4_DTYPE_BF16, FP4_DTYPE_F16};
    static const fp4_dtype d_types[] = {FP4_DTYPE_F32, FP4_DTYPE_F16, FP4_DTYPE_BF16};
    int rot = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int v = 0; v < 3; v++, rot++) {
            problem p;
            p.m = shapes[s][0];
            p.n = shapes[s][1];
            p.k = shapes[s][2];
            p.a_dtype = a_types[(s + v) % 3];
            p.d_dtype = d_types[(s + 2 * v) % 3];
            p.a_layout = (rot & 1) ? FP4_SF_SWIZZLED_128x4 : FP4_SF_LINEAR;
            p.b_layout = (rot & 2) ? FP4_SF_SWIZZLED_128x4 : FP4_SF_LINEAR;
            p.ldd = (rot % 3 == 2) ? p.n + tu_rng_range(rng, 1, 13) : p.n;
            p.alpha_by_ptr = rot % 4 == 1;
            run_problem(rng, &p);
        }
}

/* ---- settings and limits ------------------------------------------------------------------ */

static void test_settings(void) {
    fp4_ctx *c = g_ctx[0];
    const char *simd = fp4_ctx_cpu_simd(c);
    int known = 0;
    for (int i = 0; i < SET_COUNT; i++) known |= simd && strcmp(simd, k_sets[i]) == 0;
    tu_case(known, "fp4_ctx_cpu_simd -> a kernel set's name (\"%s\")", simd ? simd : "(null)");
    tu_case(fp4_ctx_cpu_simd(NULL) != NULL, "fp4_ctx_cpu_simd(NULL) -> the default set's name");
    tu_case(fp4_ctx_set_num_threads(NULL, 1) == FP4_ERR_INVALID_ARGUMENT && strstr(fp4_last_error(NULL), "ctx"),
            "set_num_threads ctx=NULL -> INVALID_ARGUMENT naming ctx");
    tu_case(fp4_ctx_set_num_threads(c, -1) == FP4_ERR_INVALID_ARGUMENT && strstr(fp4_last_error(c), "threads"),
            "set_num_threads -1 -> INVALID_ARGUMENT naming threads");
    fp4_ctx_set_num_threads(c, 3);
    const int three = fp4_ctx_num_threads(c);
    fp4_ctx_set_num_threads(c, 0);
    const int dflt = fp4_ctx_num_threads(c);
    tu_case(three == (fp4_built_with_openmp() ? 3 : 1) && dflt >= 1 && fp4_last_error(c)[0] == 0,
            "set_num_threads 3 -> num_threads %d; 0 -> OpenMP's default (%d); last_error \"\"", three, dflt);
    tu_case(fp4_ctx_num_threads(NULL) >= 1, "num_threads(NULL) -> OpenMP's default");

    /* the configs' names and limits */
    fp4_tactic t;
    tu_case(fp4_tactic_from_name("cpu/gemv", &t) == FP4_OK && t.backend == FP4_BACKEND_CPU && t.config == 0 &&
                fp4_tactic_from_name("CPU/Blocked", &t) == FP4_OK && t.config == 1,
            "tactic names cpu/gemv (0) and cpu/blocked (1)");
    fp4_gemm_desc g;
    fp4_gemm_desc_init(&g);
    g.m = 17;
    g.n = 8;
    g.k = 32;
    uint8_t a[17 * 16] = {0}, b[8 * 16] = {0}, asf[17 * 2] = {0}, bsf[8 * 2] = {0};
    uint16_t d[17 * 8];
    g.a = a;
    g.a_sf = asf;
    g.b = b;
    g.b_sf = bsf;
    g.d = d;
    g.backend = FP4_BACKEND_CPU;
    g.config = 0;
    char why[256];
    tu_case(fp4_gemm(c, &g) == FP4_ERR_NOT_SUPPORTED && strstr(fp4_last_error(c), "m <= 16") &&
                fp4_backend_check(c, FP4_BACKEND_CPU, &g, why, sizeof why) == FP4_ERR_NOT_SUPPORTED,
            "cpu/gemv with m = 17 -> NOT_SUPPORTED, the limit in the reason");
    g.config = 2;
    tu_case(fp4_gemm(c, &g) == FP4_ERR_INVALID_ARGUMENT, "cpu config 2 -> INVALID_ARGUMENT");
    g.config = -1;
    fp4_tactic chosen;
    tu_case(fp4_gemm_select(c, &g, &chosen, why, sizeof why) == FP4_OK && chosen.backend == FP4_BACKEND_CPU &&
                chosen.config == 1,
            "select m = 17 on the CPU -> cpu/blocked (\"%s\")", why);
    g.m = 1;
    tu_case(fp4_gemm_select(c, &g, &chosen, why, sizeof why) == FP4_OK && chosen.backend == FP4_BACKEND_CPU &&
                chosen.config == 0,
            "select m = 1 on the CPU -> cpu/gemv (\"%s\")", why);
    /* m = 16: gemv with the AVX-512 and AVX2 kernels (measured faster there), blocked with C's */
    g.m = 16;
    for (int i = 0; i < g_nctx; i++) {
        const char *set = fp4_ctx_cpu_simd(g_ctx[i]);
        const int want = strcmp(set, "avx512") == 0 || strcmp(set, "avx2") == 0 ? 0 : 1;
        tu_case(fp4_gemm_select(g_ctx[i], &g, &chosen, why, sizeof why) == FP4_OK &&
                    chosen.backend == FP4_BACKEND_CPU && chosen.config == want,
                "select m = 16 with the %s kernels -> cpu/%s (\"%s\")", set, want ? "blocked" : "gemv", why);
    }
}

int main(void) {
    const uint64_t seed = tu_seed(0xC9B0A4E1ull);
    tu_begin("test_cpu", seed);
    tu_rng rng;
    tu_rng_seed(&rng, seed);
    if (!tu_ok(fp4_create(&g_ref, -1), NULL, "fp4_create(-1)")) return tu_finish();
    /* one context per kernel set: FP4GEMM_CPU_SIMD is read at fp4_create; a set this machine
     * or build lacks falls back to another, and is then skipped */
    for (int i = 0; i < SET_COUNT; i++) {
        setenv("FP4GEMM_CPU_SIMD", k_sets[i], 1);
        fp4_set_log_level(FP4_LOG_OFF); /* the fallback's warning */
        fp4_ctx *c = NULL;
        const fp4_status st = fp4_create(&c, -1);
        fp4_set_log_level(FP4_LOG_WARN);
        if (st != FP4_OK) continue;
        if (strcmp(fp4_ctx_cpu_simd(c), k_sets[i]) != 0) {
            tu_skip("kernel set %s (not in this build or not on this CPU)", k_sets[i]);
            fp4_destroy(c);
            continue;
        }
        g_ctx[g_nctx++] = c;
    }
    unsetenv("FP4GEMM_CPU_SIMD");
    tu_case(g_nctx >= 1 && strcmp(fp4_ctx_cpu_simd(g_ctx[g_nctx - 1]), "generic") == 0,
            "%d kernel sets run here, the portable C one among them", g_nctx);
    test_settings();
    test_shapes(&rng);
    for (int i = 0; i < g_nctx; i++) fp4_destroy(g_ctx[i]);
    fp4_destroy(g_ref);
    return tu_finish();
}

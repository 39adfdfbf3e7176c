/*
 * test_tune.c - the library's measuring and checking calls (src/tune/) on the CPU:
 *   fp4_gemm_verify must pass a correct GEMM (cpu_ref, W4A4 and W4A16, both layouts, every D
 *   type) and catch a planted wrong element, a NaN, an unwritten (poisoned) element and a
 *   GEMM that dropped one k-block; fp4_verify_samples applies the documented tolerance
 *   exactly; fp4_measure runs the documented loop (launch counts, set rotation, statistics,
 *   the budget, a failing launch) with a host clock.
 */
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a GEMM on the CPU ------------------------------------------------------------------- */

typedef struct gemm_case {
    int64_t m, n, k;
    fp4_dtype a_dtype, d_dtype;
    fp4_sf_layout layout;
    uint8_t *a, *a_sf, *b, *b_sf;
    void *d;
    fp4_gemm_desc desc;
} gemm_case;

static void free_case(gemm_case *c) {
    free(c->a);
    free(c->a_sf);
    free(c->b);
    free(c->b_sf);
    free(c->d);
}

/* Random operands (E2M1 bytes, scales 2^-3..2^3; W4A16: BF16/F16 of normal values), D
 * poisoned with NaN, then cpu_ref runs the GEMM. */
static int make_case(fp4_ctx *cpu, tu_rng *rng, gemm_case *c) {
    const int64_t m = c->m, n = c->n, k = c->k;
    const int w4a4 = c->a_dtype == FP4_DTYPE_E2M1;
    const int64_t a_bytes = w4a4 ? m * k / 2 : m * k * 2;
    c->a = malloc((size_t)a_bytes);
    c->a_sf = w4a4 ? malloc((size_t)fp4_sf_bytes(m, k, c->layout)) : NULL;
    c->b = malloc((size_t)(n * k / 2));
    c->b_sf = malloc((size_t)fp4_sf_bytes(n, k, c->layout));
    c->d = malloc((size_t)(m * n * fp4_dtype_size(c->d_dtype)));
    if (!c->a || (w4a4 && !c->a_sf) || !c->b || !c->b_sf || !c->d) return 0;
    if (w4a4) {
        tu_fill_bytes(rng, c->a, a_bytes);
        tu_fill_scales(rng, c->a_sf, fp4_sf_bytes(m, k, c->layout), -3, 3);
    } else {
        float *x = malloc((size_t)(m * k) * sizeof *x);
        if (!x) return 0;
        tu_fill_activations(rng, x, m * k, 1.0f);
        for (int64_t i = 0; i < m * k; i++) {
            uint32_t u;
            memcpy(&u, &x[i], 4);
            uint16_t h = (uint16_t)(u >> 16); /* BF16 by truncation: any BF16 value will do */
            if (c->a_dtype == FP4_DTYPE_F16) {
                /* a small integer / 64 is exact in F16 */
                const int v = (int)lrint((double)x[i] * 8.0);
                const float f = (float)(v % 512) / 64.0f;
                h = 0;
                if (f != 0) {
                    int e;
                    const float mnt = frexpf(fabsf(f), &e); /* f = mnt 2^e, mnt in [0.5, 1) */
                    h = (uint16_t)((f < 0 ? 0x8000 : 0) | ((e - 1 + 15) << 10) |
                                   (uint16_t)((mnt * 2 - 1) * 1024));
                }
            }
            memcpy(c->a + 2 * i, &h, 2);
        }
        free(x);
    }
    tu_fill_bytes(rng, c->b, n * k / 2);
    tu_fill_scales(rng, c->b_sf, fp4_sf_bytes(n, k, c->layout), -3, 3);
    memset(c->d, 0xFF, (size_t)(m * n * fp4_dtype_size(c->d_dtype)));
    fp4_gemm_desc *d = &c->desc;
    fp4_gemm_desc_init(d);
    d->m = m;
    d->n = n;
    d->k = k;
    d->a_dtype = c->a_dtype;
    d->a = c->a;
    d->a_sf = c->a_sf;
    d->a_sf_layout = d->b_sf_layout = c->layout;
    d->b = c->b;
    d->b_sf = c->b_sf;
    d->d_dtype = c->d_dtype;
    d->d = c->d;
    d->alpha = 0.75f;
    d->backend = FP4_BACKEND_CPU_REF;
    return tu_ok(fp4_gemm(cpu, d), cpu, "fp4_gemm (cpu_ref)");
}

static int verify(fp4_ctx *cpu, const fp4_gemm_desc *d, int samples, fp4_verify_result *r) {
    memset(r, 0, sizeof *r);
    r->struct_size = sizeof *r;
    return tu_ok(fp4_gemm_verify(cpu, d, samples, 42, r), cpu, "fp4_gemm_verify");
}

static float get_f(const gemm_case *c, int64_t i) {
    if (c->d_dtype == FP4_DTYPE_F32) return ((float *)c->d)[i];
    uint16_t h = ((uint16_t *)c->d)[i];
    if (c->d_dtype == FP4_DTYPE_BF16) {
        uint32_t u = (uint32_t)h << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    return NAN; /* not needed for F16 here */
}

static void set_f32(gemm_case *c, int64_t i, float v) { ((float *)c->d)[i] = v; }

/* The RMS of x[n]: the scale of a planted error that no tolerance can hide. */
static float rms_of(const float *x, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * (double)x[i];
    return (float)sqrt(s / (double)n);
}

static void test_verify_passes(fp4_ctx *cpu, tu_rng *rng) {
    const struct {
        int64_t m, n, k;
        fp4_dtype a, d;
        fp4_sf_layout l;
    } cases[] = {
        {5, 7, 64, FP4_DTYPE_E2M1, FP4_DTYPE_F32, FP4_SF_LINEAR},
        {5, 7, 64, FP4_DTYPE_E2M1, FP4_DTYPE_BF16, FP4_SF_SWIZZLED_128x4},
        {33, 130, 256, FP4_DTYPE_E2M1, FP4_DTYPE_F16, FP4_SF_SWIZZLED_128x4},
        {3, 40, 128, FP4_DTYPE_BF16, FP4_DTYPE_BF16, FP4_SF_LINEAR},
        {3, 40, 128, FP4_DTYPE_F16, FP4_DTYPE_F32, FP4_SF_SWIZZLED_128x4},
        {64, 96, 1024, FP4_DTYPE_E2M1, FP4_DTYPE_F32, FP4_SF_SWIZZLED_128x4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gemm_case c = {.m = cases[i].m, .n = cases[i].n, .k = cases[i].k, .a_dtype = cases[i].a,
                       .d_dtype = cases[i].d, .layout = cases[i].l};
        fp4_verify_result r;
        int ok = make_case(cpu, rng, &c) && verify(cpu, &c.desc, 0, &r);
        ok = ok && r.passed && r.nonfinite == 0 && r.bad_samples == 0 && r.worst_ratio <= 1 &&
             r.samples == (c.m * c.n <= 68 ? c.m * c.n : 68);
        tu_case(ok, "verify passes cpu_ref M=%lld N=%lld K=%lld A=%s D=%s %s (%lld samples, "
                "worst %.3g)", (long long)c.m, (long long)c.n, (long long)c.k,
                fp4_dtype_name(c.a_dtype), fp4_dtype_name(c.d_dtype), fp4_sf_layout_name(c.layout),
                (long long)r.samples, r.worst_ratio);
        free_case(&c);
    }
}

static void test_verify_catches(fp4_ctx *cpu, tu_rng *rng) {
    /* a planted wrong element: every element is sampled (samples >= M*N), F32 D */
    {
        gemm_case c = {.m = 6, .n = 9, .k = 128, .a_dtype = FP4_DTYPE_E2M1,
                       .d_dtype = FP4_DTYPE_F32, .layout = FP4_SF_LINEAR};
        fp4_verify_result r;
        int ok = make_case(cpu, rng, &c);
        const int64_t at = 4 * 9 + 7;
        const float v = ok ? get_f(&c, at) : 0.0f;
        if (ok) set_f32(&c, at, v + 0.1f * rms_of((const float *)c.d, 6 * 9));
        ok = ok && verify(cpu, &c.desc, 1000, &r);
        tu_case(ok && !r.passed && r.bad_samples == 1 && r.worst_m == 4 && r.worst_n == 7 &&
                    r.samples == 54,
                "verify catches one wrong element (m=4, n=7 off by 0.1 RMS of D): %s",
                r.message);
        free_case(&c);
    }
    /* a NaN in D, at an element the samples miss: the scan finds it */
    {
        gemm_case c = {.m = 40, .n = 50, .k = 64, .a_dtype = FP4_DTYPE_E2M1,
                       .d_dtype = FP4_DTYPE_BF16, .layout = FP4_SF_SWIZZLED_128x4};
        fp4_verify_result r;
        int ok = make_case(cpu, rng, &c);
        ((uint16_t *)c.d)[17 * 50 + 23] = 0x7FC0; /* BF16 NaN */
        ok = ok && verify(cpu, &c.desc, 8, &r);
        tu_case(ok && !r.passed && r.nonfinite == 1, "verify catches a NaN in D: %s", r.message);
        /* an element never written: D was poisoned with 0xFF bytes before the GEMM */
        memset(c.d, 0xFF, (size_t)(40 * 50 * 2));
        c.desc.backend = FP4_BACKEND_CPU_REF;
        c.desc.m = 39; /* the GEMM leaves the last row unwritten */
        ok = tu_ok(fp4_gemm(cpu, &c.desc), cpu, "fp4_gemm");
        c.desc.m = 40;
        ok = ok && verify(cpu, &c.desc, 0, &r);
        tu_case(ok && !r.passed && r.nonfinite == 50, "verify catches an unwritten row: %s",
                r.message);
        free_case(&c);
    }
    /* a GEMM that dropped one k-block: B's scales of block 5 zeroed for the run only */
    const int64_t ks[] = {256, 4096};
    for (int i = 0; i < 2; i++) {
        gemm_case c = {.m = 16, .n = 48, .k = ks[i], .a_dtype = FP4_DTYPE_E2M1,
                       .d_dtype = FP4_DTYPE_F32, .layout = FP4_SF_SWIZZLED_128x4};
        fp4_verify_result r;
        int ok = make_case(cpu, rng, &c);
        const int64_t sf_bytes = fp4_sf_bytes(c.n, c.k, c.layout);
        uint8_t *dropped = malloc((size_t)sf_bytes);
        ok = ok && dropped;
        if (ok) {
            memcpy(dropped, c.b_sf, (size_t)sf_bytes);
            for (int64_t row = 0; row < c.n; row++)
                dropped[fp4_sf_offset(row, 5, c.k, c.layout)] = 0;
            fp4_gemm_desc run = c.desc;
            run.b_sf = dropped;
            ok = tu_ok(fp4_gemm(cpu, &run), cpu, "fp4_gemm with a dropped block");
        }
        ok = ok && verify(cpu, &c.desc, 0, &r); /* 68 samples of 768 */
        tu_case(ok && !r.passed && r.nonfinite == 0,
                "verify catches a dropped k-block at K=%lld (68 samples): %s", (long long)c.k,
                r.message);
        free(dropped);
        free_case(&c);
    }
}

static void test_verify_samples_bound(void) {
    /* the documented bound, exactly: tol = 2u(|ref| + rms) + acc * S, acc = 2 K 2^-24 */
    const int64_t k = 1024;
    double ref[2] = {300.0, -400.0}, s[2] = {1000.0, 500.0}, d[2];
    const double rms = sqrt((300.0 * 300.0 + 400.0 * 400.0) / 2.0), u = ldexp(1.0, -24);
    const double acc = 2.0 * (double)k * u;
    const double tol0 = 2 * u * (300.0 + rms) + acc * 1000.0;
    fp4_verify_result r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    d[0] = ref[0] + 0.99 * tol0;
    d[1] = ref[1];
    fp4_status st = fp4_verify_samples(2, d, ref, s, NULL, NULL, k, FP4_DTYPE_F32, 0, 0, &r);
    tu_case(st == FP4_OK && r.passed && fabs(r.worst_ratio - 0.99) < 1e-6,
            "verify_samples: 0.99x the documented tolerance passes (ratio %.6f)", r.worst_ratio);
    d[0] = ref[0] + 1.01 * tol0;
    st = fp4_verify_samples(2, d, ref, s, NULL, NULL, k, FP4_DTYPE_F32, 0, 0, &r);
    tu_case(st == FP4_OK && !r.passed && r.bad_samples == 1,
            "verify_samples: 1.01x the documented tolerance fails");
    d[0] = NAN;
    st = fp4_verify_samples(2, d, ref, s, NULL, NULL, k, FP4_DTYPE_F32, 0, 0, &r);
    tu_case(st == FP4_OK && !r.passed, "verify_samples: a NaN sample fails");
    /* the L2 part alone: every sample within its own bound, the whole too far */
    d[0] = ref[0] + 0.9 * tol0;
    d[1] = ref[1];
    st = fp4_verify_samples(2, d, ref, s, NULL, NULL, k, FP4_DTYPE_F32, 1.0, 1e-9, &r);
    tu_case(st == FP4_OK && !r.passed && r.bad_samples == 0 && r.rel_l2 > r.rel_l2_limit,
            "verify_samples: the relative L2 limit applies on its own");
    st = fp4_verify_samples(0, d, ref, s, NULL, NULL, k, FP4_DTYPE_F32, 0, 0, &r);
    tu_case(st == FP4_ERR_INVALID_ARGUMENT, "verify_samples: count 0 is refused");
}

/* ---- fp4_measure ------------------------------------------------------------------------- */

typedef struct counter {
    int calls, fail_at;
    int seen[8];
    volatile double sink;
} counter;

static fp4_status count_launch(void *user, int set, struct CUstream_st *stream) {
    counter *c = user;
    if (stream || set < 0 || set >= 8) return FP4_ERR_INTERNAL;
    c->calls++;
    c->seen[set]++;
    for (int i = 0; i < 2000; i++) c->sink += sqrt((double)i);
    if (c->fail_at && c->calls == c->fail_at) return FP4_ERR_NOT_SUPPORTED;
    return FP4_OK;
}

static void test_measure(fp4_ctx *cpu) {
    counter c;
    memset(&c, 0, sizeof c);
    fp4_measure_desc d;
    fp4_measure_desc_init(&d);
    d.launch = count_launch;
    d.user = &c;
    d.sets = 3;
    fp4_measure_result r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    fp4_status st = fp4_measure(cpu, &d, &r);
    /* 1 warm-up + 3 estimate + (replays + 1 warm-up replay) * 10 launches */
    const int expect = 1 + 3 + (r.replays + 1) * 10;
    tu_case(st == FP4_OK && !r.too_slow && r.launches == 10 && r.sets == 3 &&
                r.replays >= 20 && r.replays <= 100 && c.calls == expect && c.seen[2] > 0 &&
                c.seen[3] == 0 && r.p20_us > 0 && r.p20_us <= r.median_us &&
                r.median_us <= r.p80_us && !r.graph,
            "measure on the CPU: %d launches of 10 per replay over 3 sets, %d replays, median "
            "%.2f us [%.2f, %.2f]", c.calls, r.replays, r.median_us, r.p20_us, r.p80_us);
    fp4_measure_sets(cpu, 1e9) == 1 ? (void)0 : (void)tu_case(0, "measure_sets on the CPU is 1");

    memset(&c, 0, sizeof c);
    d.budget_seconds = 1e-9;
    st = fp4_measure(cpu, &d, &r);
    tu_case(st == FP4_OK && r.too_slow && c.calls == 4 && r.estimate_us > 0 && r.median_us == 0,
            "measure: over the budget, only the estimate runs (%d launches)", c.calls);

    memset(&c, 0, sizeof c);
    d.budget_seconds = 0;
    c.fail_at = 7;
    st = fp4_measure(cpu, &d, &r);
    tu_case(st == FP4_ERR_NOT_SUPPORTED && c.calls == 7, "measure: a failing launch stops it");

    d.sets = 0;
    st = fp4_measure(cpu, &d, &r);
    tu_case(st == FP4_ERR_INVALID_ARGUMENT && strstr(fp4_last_error(cpu), "sets"),
            "measure: sets = 0 is refused: %s", fp4_last_error(cpu));
}

/* ---- on a GPU (skipped without one) --------------------------------------------------------- */

typedef struct gpu_gemm {
    fp4_ctx *ctx;
    fp4_gemm_desc desc;
    void *a[2], *b[2], *d; /* two input sets with the same bytes: A [+ scales], B [+ scales] */
    int64_t a_bytes, b_bytes;
    int calls;
} gpu_gemm;

static fp4_status gpu_launch(void *user, int set, struct CUstream_st *stream) {
    gpu_gemm *g = user;
    fp4_gemm_desc d = g->desc;
    d.a = g->a[set];
    d.a_sf = (const uint8_t *)g->a[set] + d.m * d.k / 2;
    d.b = g->b[set];
    d.b_sf = (const uint8_t *)g->b[set] + d.n * d.k / 2;
    d.stream = stream;
    g->calls++;
    return fp4_gemm(g->ctx, &d);
}

static void test_gpu(tu_rng *rng) {
    int count = 0;
    if (fp4_device_count(&count) != FP4_OK || count == 0) {
        tu_skip("no CUDA device: the GPU cases of fp4_gemm_verify, fp4_count_nonfinite and "
                "fp4_measure");
        return;
    }
    gpu_gemm g;
    memset(&g, 0, sizeof g);
    if (!tu_ok(fp4_create(&g.ctx, 0), NULL, "fp4_create(0)")) return;
    const int64_t m = 64, n = 256, k = 512;
    const fp4_sf_layout l = FP4_SF_SWIZZLED_128x4;
    const int64_t a_sf = fp4_sf_bytes(m, k, l), b_sf = fp4_sf_bytes(n, k, l);
    g.a_bytes = m * k / 2 + a_sf;
    g.b_bytes = n * k / 2 + b_sf;
    uint8_t *ha = malloc((size_t)g.a_bytes), *hb = malloc((size_t)g.b_bytes);
    float *hd = malloc((size_t)(m * n) * sizeof *hd);
    int ok = ha && hb && hd;
    if (ok) {
        tu_fill_bytes(rng, ha, m * k / 2);
        tu_fill_scales(rng, ha + m * k / 2, a_sf, -3, 3);
        tu_fill_bytes(rng, hb, n * k / 2);
        tu_fill_scales(rng, hb + n * k / 2, b_sf, -3, 3);
    }
    for (int s = 0; s < 2 && ok; s++)
        ok = tu_ok(fp4_malloc(g.ctx, &g.a[s], g.a_bytes), g.ctx, "fp4_malloc") &&
             tu_ok(fp4_upload(g.ctx, g.a[s], ha, g.a_bytes), g.ctx, "fp4_upload") &&
             tu_ok(fp4_malloc(g.ctx, &g.b[s], g.b_bytes), g.ctx, "fp4_malloc") &&
             tu_ok(fp4_upload(g.ctx, g.b[s], hb, g.b_bytes), g.ctx, "fp4_upload");
    ok = ok && tu_ok(fp4_malloc(g.ctx, &g.d, m * n * 4), g.ctx, "fp4_malloc") &&
         tu_ok(fp4_memset(g.ctx, g.d, 0xFF, m * n * 4), g.ctx, "fp4_memset");
    fp4_gemm_desc_init(&g.desc);
    g.desc.m = m;
    g.desc.n = n;
    g.desc.k = k;
    g.desc.a_sf_layout = g.desc.b_sf_layout = l;
    g.desc.d_dtype = FP4_DTYPE_F32;
    g.desc.d = g.d;
    g.desc.alpha = 0.75f;
    g.desc.a = g.a[0];
    g.desc.a_sf = (const uint8_t *)g.a[0] + m * k / 2;
    g.desc.b = g.b[0];
    g.desc.b_sf = (const uint8_t *)g.b[0] + n * k / 2;
    fp4_backend chosen = FP4_BACKEND_AUTO;
    fp4_tactic tactic = {FP4_BACKEND_AUTO, -1};
    if (ok && fp4_gemm_select(g.ctx, &g.desc, &tactic, NULL, 0) == FP4_OK)
        chosen = tactic.backend;
    else if (ok) {
        tu_skip("no GPU backend runs M=%lld N=%lld K=%lld here: %s", (long long)m, (long long)n,
                (long long)k, fp4_last_error(g.ctx));
        ok = 0;
    }
    fp4_verify_result r;
    if (ok) {
        ok = tu_ok(gpu_launch(&g, 0, NULL), g.ctx, "fp4_gemm on the GPU") &&
             verify(g.ctx, &g.desc, 0, &r);
        tu_case(ok && r.passed && r.samples == 68 && r.nonfinite == 0,
                "gpu: verify passes %s M=%lld N=%lld K=%lld (worst %.3g)", fp4_backend_name(chosen),
                (long long)m, (long long)n, (long long)k, r.worst_ratio);
        /* every element: A, B and D downloaded whole instead of row by row */
        ok = ok && verify(g.ctx, &g.desc, (int)(m * n), &r);
        tu_case(ok && r.passed && r.samples == m * n,
                "gpu: verify passes on all %lld elements (worst %.3g)", (long long)r.samples,
                r.worst_ratio);
    }
    if (ok) { /* a wrong corner (always sampled), then a NaN where no sample looks */
        ok = tu_ok(fp4_download(g.ctx, hd, g.d, m * n * 4), g.ctx, "fp4_download");
        const float good = hd[n - 1], wrong = good + 0.1f * rms_of(hd, m * n);
        ok = ok && tu_ok(fp4_upload(g.ctx, (float *)g.d + (n - 1), &wrong, 4), g.ctx, "upload") &&
             verify(g.ctx, &g.desc, 0, &r);
        tu_case(ok && !r.passed && r.worst_m == 0 && r.worst_n == n - 1,
                "gpu: verify catches a wrong element at (0, %lld): %s", (long long)(n - 1),
                r.message);
        const uint32_t nan_bits = 0x7FC00000u;
        ok = ok && tu_ok(fp4_upload(g.ctx, (float *)g.d + (n - 1), &good, 4), g.ctx, "upload") &&
             tu_ok(fp4_upload(g.ctx, (float *)g.d + 33 * n + 101, &nan_bits, 4), g.ctx, "upload") &&
             verify(g.ctx, &g.desc, 8, &r);
        tu_case(ok && !r.passed && r.nonfinite == 1, "gpu: verify's device scan finds a NaN: %s",
                r.message);
        /* F32 [m, n/2] with ld n: the NaN at column 101 is inside, the others are finite */
        int64_t nf = -1;
        ok = ok && tu_ok(fp4_count_nonfinite(g.ctx, g.d, FP4_DTYPE_F32, m, n / 2, n, NULL, &nf),
                         g.ctx, "fp4_count_nonfinite");
        tu_case(ok && nf == 1, "gpu: fp4_count_nonfinite F32 (ld > cols) finds %lld of 1",
                (long long)nf);
        ok = ok && tu_ok(fp4_upload(g.ctx, (float *)g.d + 33 * n + 101, &good, 4), g.ctx, "upload");
        /* BF16 and F16 [4, 100] with ld 128, zeros but for NaN/Inf at 3 elements inside and
         * one in the padding (not counted) */
        uint16_t h[4 * 128];
        const fp4_dtype halves[2] = {FP4_DTYPE_BF16, FP4_DTYPE_F16};
        const uint16_t inf_bits[2] = {0x7F80, 0x7C00}, nan_bits16[2] = {0xFFC1, 0x7E00};
        for (int t = 0; t < 2 && ok; t++) {
            memset(h, 0, sizeof h);
            h[0] = inf_bits[t];
            h[128 + 99] = nan_bits16[t];
            h[3 * 128 + 50] = (uint16_t)(inf_bits[t] | 0x8000); /* -Inf */
            h[2 * 128 + 100] = nan_bits16[t];                   /* padding: not counted */
            h[1] = 0x3F80;                                      /* finite */
            ok = tu_ok(fp4_upload(g.ctx, g.d, h, sizeof h), g.ctx, "upload") &&
                 tu_ok(fp4_count_nonfinite(g.ctx, g.d, halves[t], 4, 100, 128, NULL, &nf), g.ctx,
                       "fp4_count_nonfinite");
            tu_case(ok && nf == 3, "gpu: fp4_count_nonfinite %s (ld > cols) finds %lld of 3",
                    fp4_dtype_name(halves[t]), (long long)nf);
        }
    }
    if (ok) { /* the measurement: a CUDA graph of 10 launches over the 2 sets */
        fp4_measure_desc md;
        fp4_measure_desc_init(&md);
        md.launch = gpu_launch;
        md.user = &g;
        md.sets = 2;
        md.set_bytes = (double)(g.a_bytes + g.b_bytes);
        fp4_measure_result mr;
        memset(&mr, 0, sizeof mr);
        mr.struct_size = sizeof mr;
        g.calls = 0;
        const fp4_status st = fp4_measure(g.ctx, &md, &mr);
        const int want_sets = fp4_measure_sets(g.ctx, md.set_bytes);
        tu_case(st == FP4_OK && !mr.too_slow && mr.graph && mr.launches == 10 &&
                    mr.replays >= 20 && mr.p20_us > 0 && mr.p20_us <= mr.median_us &&
                    mr.median_us <= mr.p80_us && mr.cold == 0 && want_sets > 2 &&
                    g.calls == 1 + 3 + 10, /* warm-up, estimate, one captured graph */
                "gpu: measure %s: %.2f us [%.2f, %.2f], %d replays of one graph of %d launches "
                "(%d calls), warm (2 sets; %d would be cold) %s",
                fp4_backend_name(chosen), mr.median_us, mr.p20_us, mr.p80_us, mr.replays,
                mr.launches, g.calls, want_sets, st == FP4_OK ? "" : fp4_last_error(g.ctx));
        md.budget_seconds = 1e-9;
        g.calls = 0;
        tu_case(fp4_measure(g.ctx, &md, &mr) == FP4_OK && mr.too_slow && g.calls == 4,
                "gpu: measure over the budget runs only the estimate");
    }
    for (int s = 0; s < 2; s++) {
        fp4_free(g.ctx, g.a[s]);
        fp4_free(g.ctx, g.b[s]);
    }
    fp4_free(g.ctx, g.d);
    fp4_destroy(g.ctx);
    free(ha);
    free(hb);
    free(hd);
}

int main(void) {
    const uint64_t seed = tu_seed(0x7E57u);
    tu_begin("test_tune", seed);
    tu_rng rng;
    tu_rng_seed(&rng, seed);
    fp4_ctx *cpu = NULL;
    if (!tu_ok(fp4_create(&cpu, -1), NULL, "fp4_create")) return 1;
    test_verify_passes(cpu, &rng);
    test_verify_catches(cpu, &rng);
    test_verify_samples_bound();
    test_measure(cpu);
    test_gpu(&rng);
    fp4_destroy(cpu);
    return tu_finish();
}

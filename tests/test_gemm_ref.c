/*
 * test_gemm_ref.c - the cpu_ref GEMM (FP4_BACKEND_CPU_REF; and the cpu backend, AUTO on a CPU context)
 * against a separate dequantize-then-matmul in double written here: every element decoded
 * with the independent E2M1/E4M3/BF16/F16 decoders of ref_formats.c (not format.h), scales
 * found with the contract's offset formula, then the triple loop. Plus a K > 2^31 case that an index wrapped at 2^31 fails.
 */
#include "ref_formats.h"
#include "test_util.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GUARD 64

/* ---- input generation (the independent decoders are in ref_formats.c) ---------------- */

/* Round-to-nearest-even of a double to a float-like format with `mant` explicit mantissa
 * bits and minimum normal exponent `emin`, by scaling (exact in double for these formats).
 * Used only to generate W4A16 inputs. */
static double round_to_format(double x, int mant, int emin) {
    if (x == 0) return x;
    int e;
    frexp(fabs(x), &e); /* |x| in [2^(e-1), 2^e) */
    int ue = e - 1;
    if (ue < emin) ue = emin;
    const double ulp = ldexp(1.0, ue - mant);
    return nearbyint(x / ulp) * ulp; /* default rounding mode: to nearest even */
}

static uint16_t to_bf16_bits(double x) { /* x already representable */
    const float f = (float)x;
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)(u >> 16);
}

static uint16_t to_f16_bits(double x) { /* x representable in f16, |x| < 65504 */
    uint16_t s = x < 0 || (x == 0 && signbit(x)) ? 0x8000 : 0;
    const double a = fabs(x);
    if (a < ldexp(1.0, -14)) return (uint16_t)(s | (uint16_t)(a / ldexp(1.0, -24)));
    int e;
    const double m = frexp(a, &e); /* a = m 2^e, m in [0.5, 1) */
    return (uint16_t)(s | ((e - 1 + 15) << 10) | ((uint16_t)((m * 2 - 1) * 1024)));
}

/* ulp of a double value as the format with `mant` mantissa bits and min exponent `emin`
 * would have at |x|'s binade */
static double ulp_of(double x, int mant, int emin) {
    int e;
    frexp(fabs(x), &e);
    int ue = e - 1;
    if (x == 0 || ue < emin) ue = emin;
    return ldexp(1.0, ue - mant);
}

/* ---- operands ------------------------------------------------------------------------ */

typedef struct operand {
    int64_t rows, k;
    fp4_dtype dtype;     /* E2M1, BF16 or F16 */
    fp4_sf_layout layout;
    uint8_t *data;       /* E2M1: [rows, k/2] bytes; BF16/F16: [rows, k] elements */
    uint8_t *sf;         /* E2M1 only; padding filled with NaN scales (0x7F) */
    double *dec;         /* [rows, k] the decoded values */
} operand;

static void make_operand(tu_rng *rng, operand *op, int64_t rows, int64_t k, fp4_dtype dtype,
                         fp4_sf_layout layout) {
    op->rows = rows;
    op->k = k;
    op->dtype = dtype;
    op->layout = layout;
    op->dec = malloc((size_t)(rows * k) * sizeof(double));
    op->sf = NULL;
    if (dtype == FP4_DTYPE_E2M1) {
        op->data = malloc((size_t)(rows * k / 2));
        tu_fill_bytes(rng, op->data, rows * k / 2);
        const int64_t nsf = ref_sf_bytes(rows, k, layout);
        op->sf = malloc((size_t)nsf);
        memset(op->sf, 0x7F, (size_t)nsf); /* a read of a padding byte would give NaN */
        uint8_t *lin = malloc((size_t)(rows * k / 16));
        tu_fill_scales(rng, lin, rows * k / 16, -9, 8);
        for (int64_t i = 0; i < rows * k / 16; i++)
            if ((tu_rng_u64(rng) & 31) == 0) lin[i] = (uint8_t)tu_rng_range(rng, 0, 7); /* 0 or subnormal */
        for (int64_t r = 0; r < rows; r++)
            for (int64_t kb = 0; kb < k / 16; kb++) op->sf[ref_sf_offset(r, kb, k, layout)] = lin[r * (k / 16) + kb];
        for (int64_t r = 0; r < rows; r++)
            for (int64_t i = 0; i < k; i++) {
                const uint8_t byte = op->data[r * (k / 2) + i / 2];
                const uint8_t code = (i & 1) ? byte >> 4 : byte & 15;
                op->dec[r * k + i] = ref_e2m1_value(code) * ref_e4m3_value(op->sf[ref_sf_offset(r, i / 16, k, layout)]);
            }
        free(lin);
    } else {
        op->data = malloc((size_t)(rows * k * 2));
        uint16_t *h = (uint16_t *)op->data;
        for (int64_t i = 0; i < rows * k; i++) {
            double v = tu_rng_normal(rng) * 4.0;
            if ((tu_rng_u64(rng) & 31) == 0) v *= 50.0;
            if ((tu_rng_u64(rng) & 63) == 0) v = ldexp(v, -20); /* tiny, f16 subnormal */
            if (dtype == FP4_DTYPE_BF16) {
                v = round_to_format(v, 7, -126);
                h[i] = to_bf16_bits(v);
                op->dec[i] = ref_bf16_value(h[i]);
            } else {
                v = round_to_format(v, 10, -14);
                h[i] = to_f16_bits(v);
                op->dec[i] = ref_f16_value(h[i]);
            }
            if (op->dec[i] != v) op->dec[i] = NAN; /* generator self-check: poisons the case */
        }
    }
}

static void free_operand(operand *op) {
    free(op->data);
    free(op->sf);
    free(op->dec);
}

/* ---- one GEMM case --------------------------------------------------------------------- */

static fp4_ctx *g_ctx;

static const char *a_name(fp4_dtype t) {
    return t == FP4_DTYPE_E2M1 ? "W4A4" : t == FP4_DTYPE_BF16 ? "W4A16-bf16" : "W4A16-f16";
}

/*
 * Tolerance. The decoded products are exact in double (at most 6 x 6 or 8 x 6 significant
 * bits), and the sum is exact in double unless it spans more than 53 bits: both the library
 * (double accumulation) and this reference may differ from the exact sum by at most
 * K * 2^-53 * sum|terms| each. Then D = alpha * sum is rounded to the output: at most
 * one float rounding of alpha*sum plus one of the sum itself (if the library rounds the sum
 * to float before multiplying by alpha): 1 float ulp; for F16/BF16 half an ulp of the output
 * type on top of that (the float result rounded once more).
 * The `cpu` backend (AUTO here) accumulates in FP32: K * 2^-24 * sum|terms| instead
 * (unit = 2^-24; 2^-53 for cpu_ref).
 */
static int check_output(const double *ref, const double *refabs, int64_t m, int64_t n, int64_t k, int64_t ldd,
                        fp4_dtype dt, double alpha, const uint8_t *d, double unit, char *why, size_t whylen) {
    const int64_t esz = dt == FP4_DTYPE_F32 ? 4 : 2;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < ldd; j++) {
            const uint8_t *e = d + (i * ldd + j) * esz;
            if (j >= n) {
                for (int b = 0; b < esz; b++)
                    if (e[b] != 0xFF) {
                        snprintf(why, whylen, "padding column (%lld, %lld) was written", (long long)i, (long long)j);
                        return 0;
                    }
                continue;
            }
            double got;
            if (dt == FP4_DTYPE_F32) {
                float f;
                memcpy(&f, e, 4);
                got = f;
            } else {
                uint16_t h;
                memcpy(&h, e, 2);
                got = dt == FP4_DTYPE_F16 ? ref_f16_value(h) : ref_bf16_value(h);
            }
            const double r = alpha * ref[i * n + j];
            double tol = ulp_of(r, 23, -126) + 2.0 * (double)k * unit * fabs(alpha) * refabs[i * n + j];
            if (dt == FP4_DTYPE_F16) tol += 0.5 * ulp_of(r, 10, -14);
            if (dt == FP4_DTYPE_BF16) tol += 0.5 * ulp_of(r, 7, -126);
            if (!(fabs(got - r) <= tol)) {
                snprintf(why, whylen, "D(%lld, %lld) = %.9g, reference %.9g (tolerance %.3g)", (long long)i,
                         (long long)j, got, r, tol);
                return 0;
            }
        }
    return 1;
}

static int run_case(tu_rng *rng, int64_t m, int64_t n, int64_t k, fp4_dtype a_dtype, fp4_dtype d_dtype,
                    fp4_sf_layout a_layout, fp4_sf_layout b_layout, int64_t ldd_arg, int alpha_by_ptr,
                    fp4_backend backend) {
    operand A, B;
    make_operand(rng, &A, m, k, a_dtype, a_layout);
    make_operand(rng, &B, n, k, FP4_DTYPE_E2M1, b_layout);

    /* the reference: dequantize, then the triple loop in double */
    double *ref = malloc((size_t)(m * n) * sizeof(double)), *refabs = malloc((size_t)(m * n) * sizeof(double));
    double maxabs = 0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double acc = 0, accabs = 0;
            for (int64_t kk = 0; kk < k; kk++) {
                const double p = A.dec[i * k + kk] * B.dec[j * k + kk];
                acc += p;
                accabs += fabs(p);
            }
            ref[i * n + j] = acc;
            refabs[i * n + j] = accabs;
            if (fabs(acc) > maxabs) maxabs = fabs(acc);
        }
    /* alpha: random, sized so that F16 outputs stay below ~2^14 */
    float alpha = (float)((0.5 + tu_rng_uniform(rng)) * (maxabs > 0 ? 10000.0 / maxabs : 1.0));
    if (d_dtype != FP4_DTYPE_F16 && (tu_rng_u64(rng) & 1)) alpha = (float)(0.5 + tu_rng_uniform(rng)) / 3.0f;

    const int64_t ldd = ldd_arg ? ldd_arg : n;
    const int64_t esz = d_dtype == FP4_DTYPE_F32 ? 4 : 2, dn = m * ldd * esz;
    uint8_t *d = malloc((size_t)(dn + GUARD));
    memset(d, 0xFF, (size_t)(dn + GUARD));
    float alpha_mem = alpha;

    fp4_gemm_desc g;
    fp4_gemm_desc_init(&g);
    g.m = m;
    g.n = n;
    g.k = k;
    g.a_dtype = a_dtype;
    g.a = A.data;
    g.a_sf = A.sf;
    g.a_sf_layout = a_layout;
    g.b = B.data;
    g.b_sf = B.sf;
    g.b_sf_layout = b_layout;
    g.d_dtype = d_dtype;
    g.d = d;
    g.ldd = ldd_arg;
    g.alpha = alpha_by_ptr ? -999.0f : alpha; /* ignored when alpha_ptr is set */
    g.alpha_ptr = alpha_by_ptr ? &alpha_mem : NULL;
    g.backend = backend;
    char why[256] = "";
    int ok = tu_ok(fp4_gemm(g_ctx, &g), g_ctx, "fp4_gemm");
    if (ok) ok = check_output(ref, refabs, m, n, k, ldd, d_dtype, (double)alpha, d,
                              backend == FP4_BACKEND_CPU_REF ? 0x1p-53 : 0x1p-24, why, sizeof why);
    for (int64_t i = 0; ok && i < GUARD; i++)
        if (d[dn + i] != 0xFF) {
            snprintf(why, sizeof why, "wrote past the end of D");
            ok = 0;
        }
    if (!tu_case(ok, "gemm %s %s m=%lld n=%lld k=%lld d=%s ldd=%lld a_sf=%s b_sf=%s alpha=%g%s vs dequant+matmul",
                 fp4_backend_name(backend), a_name(a_dtype), (long long)m, (long long)n, (long long)k,
                 fp4_dtype_name(d_dtype), (long long)ldd_arg,
                 a_dtype == FP4_DTYPE_E2M1 ? (a_layout == FP4_SF_LINEAR ? "linear" : "swizzled") : "-",
                 b_layout == FP4_SF_LINEAR ? "linear" : "swizzled", alpha, alpha_by_ptr ? "(ptr)" : ""))
        printf("  %s\n", why);

    /* AUTO on a CPU context runs the cpu backend (its heuristic config): the same bits */
    if (ok && backend == FP4_BACKEND_CPU && (m * n) % 3 == 0) {
        uint8_t *d2 = malloc((size_t)(dn + GUARD));
        memset(d2, 0xFF, (size_t)(dn + GUARD));
        g.d = d2;
        g.backend = FP4_BACKEND_AUTO;
        const int ok2 = tu_ok(fp4_gemm(g_ctx, &g), g_ctx, "fp4_gemm auto") && memcmp(d, d2, (size_t)(dn + GUARD)) == 0;
        tu_case(ok2, "gemm auto %s m=%lld n=%lld k=%lld d=%s: same bytes as cpu", a_name(a_dtype), (long long)m,
                (long long)n, (long long)k, fp4_dtype_name(d_dtype));
        free(d2);
    }
    free(d);
    free(ref);
    free(refabs);
    free_operand(&A);
    free_operand(&B);
    return ok;
}

static void test_shapes(tu_rng *rng) {
    static const int64_t shapes[][3] = {
        {1, 1, 16},   {1, 7, 16},    {5, 1, 32},    {1, 1, 4096}, {33, 65, 48},   {64, 17, 1024},
        {17, 64, 80}, {3, 300, 208}, {300, 5, 64},  {129, 33, 96}, {128, 128, 256}, {7, 9, 4096},
        {40, 130, 112},
    };
    static const fp4_dtype a_types[] = {FP4_DTYPE_E2M1, FP4_DTYPE_BF16, FP4_DTYPE_F16};
    static const fp4_dtype d_types[] = {FP4_DTYPE_F32, FP4_DTYPE_F16, FP4_DTYPE_BF16};
    int rot = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int ai = 0; ai < 3; ai++)
            for (int di = 0; di < 3; di++, rot++) {
                const int64_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
                const fp4_sf_layout la = (rot & 1) ? FP4_SF_SWIZZLED_128x4 : FP4_SF_LINEAR;
                const fp4_sf_layout lb = (rot & 2) ? FP4_SF_SWIZZLED_128x4 : FP4_SF_LINEAR;
                const int64_t ldd = (rot % 3 == 0) ? 0 : (rot % 3 == 1) ? n : n + tu_rng_range(rng, 1, 13);
                run_case(rng, m, n, k, a_types[ai], d_types[di], la, lb, ldd, rot % 4 == 1, FP4_BACKEND_CPU_REF);
                if (rot % 3 == 0) /* the cpu backend too, and AUTO (the same bits): tests/test_cpu.c has more */
                    run_case(rng, m, n, k, a_types[ai], d_types[di], la, lb, ldd, rot % 4 == 1, FP4_BACKEND_CPU);
            }
    /* and AUTO directly, after checking what it picks */
    fp4_backend chosen = (fp4_backend)-1;
    fp4_gemm_desc g;
    fp4_gemm_desc_init(&g);
    g.m = 8;
    g.n = 8;
    g.k = 64;
    fp4_tactic tactic = {FP4_BACKEND_AUTO, -1};
    if (fp4_gemm_select(g_ctx, NULL, &tactic, NULL, 0) == FP4_OK) chosen = tactic.backend;
    const int ok = chosen == FP4_BACKEND_CPU;
    tu_case(ok, "fp4_gemm_select on a CPU context (generic problem) -> cpu");
    for (int i = 0; i < 4; i++)
        run_case(rng, 1 + i * 11, 2 + i * 29, 16 * (1 + i * 7), a_types[i % 3], d_types[(i + 1) % 3],
                 (fp4_sf_layout)(i & 1), (fp4_sf_layout)((i >> 1) & 1), 0, i & 1, FP4_BACKEND_AUTO);
}

/* ---- K past 2^31 ----------------------------------------------------------------------- */

/*
 * m = n = 1, k = 2^31 + 32. A: every element 1.0 (code 2, scale 1.0) except the last 32,
 * which are 6 (code 7) with scale 448; B: bytes 0x32, i.e. even k -> 1.0, odd k -> 1.5,
 * scale 1.0, except the last 32 elements: 6 with scale 448.
 *   sum = 2^30 * (1 + 1.5)  +  32 * 2688 * 2688 = 2684354560 + 231211008 = 2915565568,
 * exactly a float (a multiple of 256 below 2^32) and exact in a double accumulator. An index
 * that wrapped at 2^31 would read the first 32 elements again (sum 40 there, not 231211008)
 * or crash; a float accumulator would stall near 2^25.
 */
static void test_large_k(void) {
    if (getenv("FP4GEMM_TEST_SKIP_LARGE")) {
        tu_skip("gemm cpu_ref m=1 n=1 k=2^31+32 (FP4GEMM_TEST_SKIP_LARGE is set)");
        return;
    }
    const int64_t k = ((int64_t)1 << 31) + 32, kb_n = k / 16;
    uint8_t *a = malloc((size_t)(k / 2)), *b = malloc((size_t)(k / 2));
    uint8_t *asf = malloc((size_t)kb_n), *bsf = malloc((size_t)kb_n);
    if (!a || !b || !asf || !bsf) {
        free(a);
        free(b);
        free(asf);
        free(bsf);
        tu_skip("gemm cpu_ref m=1 n=1 k=2^31+32 (could not allocate 2.3 GiB)");
        return;
    }
    memset(a, 0x22, (size_t)(k / 2));
    memset(b, 0x32, (size_t)(k / 2));
    memset(a + k / 2 - 16, 0x77, 16);
    memset(b + k / 2 - 16, 0x77, 16);
    memset(asf, 0x38, (size_t)kb_n);
    memset(bsf, 0x38, (size_t)kb_n);
    asf[kb_n - 1] = asf[kb_n - 2] = 0x7E;
    bsf[kb_n - 1] = bsf[kb_n - 2] = 0x7E;
    float d[2] = {NAN, NAN};
    fp4_gemm_desc g;
    fp4_gemm_desc_init(&g);
    g.m = 1;
    g.n = 1;
    g.k = k;
    g.a_dtype = FP4_DTYPE_E2M1;
    g.a = a;
    g.a_sf = asf;
    g.b = b;
    g.b_sf = bsf;
    g.d_dtype = FP4_DTYPE_F32;
    g.d = d;
    g.alpha = 1.0f;
    g.backend = FP4_BACKEND_CPU_REF;
    const int ok = tu_ok(fp4_gemm(g_ctx, &g), g_ctx, "fp4_gemm") && d[0] == 2915565568.0f && isnan(d[1]);
    if (!tu_case(ok, "gemm cpu_ref W4A4 m=1 n=1 k=2^31+32 (indices past 2^31) == 2915565568 exactly"))
        printf("  got %.1f\n", d[0]);
    free(a);
    free(b);
    free(asf);
    free(bsf);
}

int main(void) {
    const uint64_t seed = tu_seed(0x6E11A4EFull);
    tu_begin("test_gemm_ref", seed);
    tu_rng rng;
    tu_rng_seed(&rng, seed);
    if (!tu_ok(fp4_create(&g_ctx, -1), NULL, "fp4_create(-1)")) {
        tu_case(0, "create a CPU context");
        return tu_finish();
    }
    test_shapes(&rng);
    test_large_k();
    fp4_destroy(g_ctx);
    return tu_finish();
}

/*
 * test_recipes.c - the quantization recipes on a CPU context (issue 15): recipe names and the
 * descriptor's size versioning, the flashinfer recipe's special blocks (E4M3 rounding ties
 * that the old multiplier order rounds the other way, scales that underflow to 0), the
 * modelopt recipe's special blocks, and fp4_modelopt_global_scale. Expected bytes come from
 * ref_formats.c's recipes (written from docs/format.md with brute-force encoders), and the
 * explicit expectations below from the recipe text; outputs are poisoned before every call.
 * test_quant.c runs both recipes over random shapes; test_gpu.c compares the GPU with this.
 */
#include "ref_formats.h"
#include "test_util.h"

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POISON 0xA5

static fp4_ctx *g_ctx;

/* ---- F32/F16/BF16 by the independent codecs ------------------------------------------- */


/* x rounded to the dtype (exact for F32). */
static float to_dtype(fp4_dtype t, float x) {
    uint16_t h[1];
    if (t == FP4_DTYPE_F32) return x;
    ref_store_elem(h, t, 0, x);
    return ref_load_elem(h, t, 0);
}

static uint8_t nib(const uint8_t *q, int64_t i) { return (i & 1) ? (uint8_t)(q[i / 2] >> 4) : (uint8_t)(q[i / 2] & 15); }

/* ---- one quantization, checked against the reference ----------------------------------- */

typedef struct lib_out {
    int ok;                /* the call succeeded and wrote every byte it had to */
    uint8_t q[8 * 64];     /* [rows, k/2], rows * k <= 1024 */
    uint8_t sf[64];        /* linear [rows, k/16], gathered from the layout */
    uint32_t flag;
} lib_out;

/* Quantizes [rows, k] (rows * k <= 1024) with the library into poisoned buffers: gs by value
 * or through a pointer, either layout (the scales are read back through ref_sf_offset, and
 * the swizzled padding must be 0). */
static void lib_quantize(fp4_quant_recipe recipe, fp4_dtype t, int64_t rows, int64_t k, const void *in,
                         float gs, int by_ptr, fp4_sf_layout layout, lib_out *out) {
    const int64_t sfn = ref_sf_bytes(rows, k, layout);
    uint8_t *sf = malloc((size_t)sfn);
    memset(out, 0, sizeof *out);
    memset(out->q, POISON, sizeof out->q);
    memset(sf, POISON, (size_t)sfn);
    float gs_mem = gs;
    fp4_quant_desc d;
    fp4_quant_desc_init(&d);
    d.rows = rows;
    d.k = k;
    d.in_dtype = t;
    d.in = in;
    d.global_scale = by_ptr ? 777.0f : gs;
    d.global_scale_ptr = by_ptr ? &gs_mem : NULL;
    d.out_q = out->q;
    d.out_sf = sf;
    d.sf_layout = layout;
    d.nonfinite_flag = &out->flag;
    d.recipe = recipe;
    out->ok = tu_ok(fp4_quantize(g_ctx, &d), g_ctx, "fp4_quantize");
    int64_t used = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t kb = 0; kb < k / 16; kb++) out->sf[r * (k / 16) + kb] = sf[ref_sf_offset(r, kb, k, layout)], used++;
    for (int64_t i = 0; out->ok && i < sfn; i++) { /* padding (whatever no scale uses) is 0 */
        int is_scale = 0;
        for (int64_t r = 0; r < rows && !is_scale; r++)
            for (int64_t kb = 0; kb < k / 16; kb++) is_scale |= ref_sf_offset(r, kb, k, layout) == i;
        if (!is_scale && sf[i] != 0) out->ok = 0;
    }
    for (int64_t i = rows * k / 2; i < (int64_t)sizeof out->q; i++) /* nothing past q's end */
        if (out->q[i] != POISON) out->ok = 0;
    free(sf);
}

/* The reference for the same input: scale bytes [rows, k/16], codes [rows, k], the flag. */
static int ref_quantize(fp4_quant_recipe recipe, fp4_dtype t, int64_t rows, int64_t k, const void *in, float gs,
                        uint8_t *sf, uint8_t *codes) {
    int flag = 0;
    float x[16];
    for (int64_t r = 0; r < rows; r++)
        for (int64_t kb = 0; kb < k / 16; kb++) {
            for (int i = 0; i < 16; i++) x[i] = ref_load_elem(in, t, r * k + kb * 16 + i);
            uint8_t *c = codes + r * k + kb * 16, *s = sf + r * (k / 16) + kb;
            flag |= recipe == FP4_QUANT_RECIPE_MODELOPT ? ref_recipe_modelopt(x, gs, s, c)
                                                        : ref_recipe_flashinfer(x, gs, s, c);
        }
    return flag;
}

/* Library == reference, byte for byte; the first difference in why. */
static int matches_ref(fp4_quant_recipe recipe, fp4_dtype t, int64_t rows, int64_t k, const void *in, float gs,
                       int by_ptr, fp4_sf_layout layout, char *why, size_t why_len) {
    uint8_t want_sf[64], want_codes[1024];
    lib_out got;
    const int want_flag = ref_quantize(recipe, t, rows, k, in, gs, want_sf, want_codes);
    lib_quantize(recipe, t, rows, k, in, gs, by_ptr, layout, &got);
    if (!got.ok) return snprintf(why, why_len, "call failed, or wrote padding or past the end"), 0;
    for (int64_t b = 0; b < rows * (k / 16); b++)
        if (got.sf[b] != want_sf[b])
            return snprintf(why, why_len, "block %lld: sf 0x%02X, want 0x%02X", (long long)b, got.sf[b], want_sf[b]), 0;
    for (int64_t i = 0; i < rows * k; i++)
        if (nib(got.q, i) != want_codes[i])
            return snprintf(why, why_len, "element %lld (x=%a): code %u, want %u", (long long)i,
                            (double)ref_load_elem(in, t, i), nib(got.q, i), want_codes[i]),
                   0;
    if ((int)got.flag != want_flag) return snprintf(why, why_len, "flag %u, want %d", got.flag, want_flag), 0;
    return 1;
}

/* One block of 16 floats in every dtype that holds them exactly, both layouts, gs by value
 * and by pointer: the library equals the reference, and (where given) the explicit scale
 * byte and codes of the recipe text. */
static void special(fp4_quant_recipe recipe, const char *name, const float *x16, float gs, int want_sf,
                    const int *want_codes) {
    static const fp4_dtype types[] = {FP4_DTYPE_F32, FP4_DTYPE_F16, FP4_DTYPE_BF16};
    for (int ti = 0; ti < 3; ti++) {
        const fp4_dtype t = types[ti];
        uint8_t in[64];
        int exact = 1;
        for (int i = 0; i < 16; i++) {
            ref_store_elem(in, t, i, x16[i]);
            const float back = ref_load_elem(in, t, i);
            exact &= (isnan(back) && isnan(x16[i])) || memcmp(&back, &x16[i], 4) == 0;
        }
        if (!exact) continue; /* the values need a wider type */
        for (int v = 0; v < 2; v++) {
            char why[200] = "";
            int ok = matches_ref(recipe, t, 1, 16, in, gs, v, v ? FP4_SF_SWIZZLED_128x4 : FP4_SF_LINEAR, why, sizeof why);
            lib_out got;
            lib_quantize(recipe, t, 1, 16, in, gs, v, v ? FP4_SF_SWIZZLED_128x4 : FP4_SF_LINEAR, &got);
            if (ok && want_sf >= 0 && got.sf[0] != want_sf)
                ok = 0, snprintf(why, sizeof why, "sf 0x%02X, want 0x%02X (explicit)", got.sf[0], want_sf);
            for (int i = 0; ok && want_codes && i < 16; i++)
                if (nib(got.q, i) != want_codes[i])
                    ok = 0, snprintf(why, sizeof why, "element %d (x=%a): code %u, want %d (explicit)", i, (double)x16[i],
                                     nib(got.q, i), want_codes[i]);
            if (!tu_case(ok, "recipe %s special %s %s gs=%g%s layout=%s", fp4_quant_recipe_name(recipe), name,
                         fp4_dtype_name(t), (double)gs, v ? "(ptr)" : "", v ? "swizzled" : "linear"))
                printf("  %s\n", why);
        }
    }
}

/* ---- names, defaults and the descriptor's size ---------------------------------------- */

static void test_names_and_versions(void) {
    fp4_quant_recipe r = (fp4_quant_recipe)99;
    tu_case(strcmp(fp4_quant_recipe_name(FP4_QUANT_RECIPE_FLASHINFER), "flashinfer") == 0 &&
                strcmp(fp4_quant_recipe_name(FP4_QUANT_RECIPE_MODELOPT), "modelopt") == 0 &&
                strcmp(fp4_quant_recipe_name((fp4_quant_recipe)2), "?") == 0 &&
                strcmp(fp4_quant_recipe_name((fp4_quant_recipe)-1), "?") == 0,
            "recipe names: flashinfer, modelopt, ? for 2 and -1");
    int ok = 1;
    for (int i = 0; i < FP4_QUANT_RECIPE_COUNT; i++)
        ok &= fp4_quant_recipe_from_name(fp4_quant_recipe_name((fp4_quant_recipe)i), &r) == FP4_OK && (int)r == i;
    tu_case(ok, "recipe from_name(name(i)) == i for every recipe");
    r = (fp4_quant_recipe)99;
    tu_case(fp4_quant_recipe_from_name("ModelOpt", &r) == FP4_OK && r == FP4_QUANT_RECIPE_MODELOPT,
            "recipe from_name ignores case: ModelOpt");
    r = (fp4_quant_recipe)99;
    tu_case(fp4_quant_recipe_from_name("flash-infer", &r) == FP4_ERR_INVALID_ARGUMENT &&
                fp4_quant_recipe_from_name("trtllm", &r) == FP4_ERR_INVALID_ARGUMENT &&
                fp4_quant_recipe_from_name(NULL, &r) == FP4_ERR_INVALID_ARGUMENT &&
                fp4_quant_recipe_from_name("modelopt", NULL) == FP4_ERR_INVALID_ARGUMENT && (int)r == 99,
            "recipe from_name: unknown, NULL name, NULL out -> INVALID_ARGUMENT, out untouched");

    fp4_quant_desc d;
    memset(&d, 0x5A, sizeof d);
    fp4_quant_desc_init(&d);
    tu_case(d.recipe == FP4_QUANT_RECIPE_FLASHINFER && d.struct_size == sizeof d,
            "fp4_quant_desc_init: recipe flashinfer (the default), struct_size set");
    tu_case(f32_bits(1.0f / 6.0f) == 0x3E2AAAABu, "fp32(1/6) = 0x3E2AAAAB (the recipe's constant)");

    /* a caller built against 0.1.0 passes the smaller struct_size: its desc ends at `stream`,
     * so whatever lies where `recipe` is now must be ignored and the recipe is flashinfer */
    const size_t end = offsetof(fp4_quant_desc, stream) + sizeof(void *);
    const size_t align = _Alignof(fp4_quant_desc);
    const size_t v0 = (end + align - 1) / align * align;
    float x[32];
    uint8_t q[16], sf[2], want_sf[2], want_codes[32];
    for (int i = 0; i < 32; i++) x[i] = (float)((i * 37) % 23) - 11.0f + (i == 5 ? 1e-7f : 0.0f);
    x[20] = 0x1p-24f; /* a second block whose scale underflows: the two recipes differ there */
    for (int i = 16; i < 32; i++) x[i] = i == 20 ? x[i] : (i & 1 ? -0.0f : 1e-9f);
    const float ws2 = 0.0625f;
    ref_quantize(FP4_QUANT_RECIPE_FLASHINFER, FP4_DTYPE_F32, 1, 32, x, ws2, want_sf, want_codes);
    uint8_t mo_sf[2], mo_codes[32];
    ref_quantize(FP4_QUANT_RECIPE_MODELOPT, FP4_DTYPE_F32, 1, 32, x, ws2, mo_sf, mo_codes);
    fp4_quant_desc_init(&d);
    d.rows = 1;
    d.k = 32;
    d.in = x;
    d.global_scale = ws2;
    d.out_q = q;
    d.out_sf = sf;
    d.recipe = (fp4_quant_recipe)1234567; /* beyond a 0.1.0 struct: not to be read */
    d.struct_size = v0;
    memset(q, POISON, sizeof q);
    memset(sf, POISON, sizeof sf);
    ok = tu_ok(fp4_quantize(g_ctx, &d), g_ctx, "fp4_quantize (0.1.0 struct_size)");
    for (int i = 0; ok && i < 32; i++) ok = nib(q, i) == want_codes[i];
    ok = ok && sf[0] == want_sf[0] && sf[1] == want_sf[1];
    const int differ = memcmp(want_sf, mo_sf, 2) != 0 || memcmp(want_codes, mo_codes, 32) != 0;
    tu_case(ok && differ && v0 < sizeof d,
            "0.1.0 struct_size %zu (< %zu): accepted, recipe field ignored, flashinfer bytes (modelopt's differ)", v0,
            sizeof d);

    /* the current size: the recipe must be a recipe */
    static const int bad[] = {2, -1, 1234567};
    for (int b = 0; b < 3; b++) {
        d.struct_size = sizeof d;
        d.recipe = (fp4_quant_recipe)bad[b];
        const fp4_status st = fp4_quantize(g_ctx, &d);
        tu_case(st == FP4_ERR_INVALID_ARGUMENT && strstr(fp4_last_error(g_ctx), "recipe") != NULL,
                "recipe = %d: INVALID_ARGUMENT naming the recipe (%s)", bad[b], fp4_last_error(g_ctx));
    }
    d.recipe = FP4_QUANT_RECIPE_MODELOPT;
    d.struct_size = v0 + 1;
    tu_case(fp4_quantize(g_ctx, &d) == FP4_ERR_INVALID_ARGUMENT, "struct_size between the two sizes: INVALID_ARGUMENT");
    d.struct_size = sizeof d;
    d.global_scale = 0.0f;
    tu_case(fp4_quantize(g_ctx, &d) == FP4_ERR_INVALID_ARGUMENT, "modelopt ws2 = 0 by value: INVALID_ARGUMENT");
}

/* ---- flashinfer: ties that the old multiplier order rounds the other way ---------------- */

typedef struct tie_pair {
    float vmax, gs;
    uint8_t sf_new, sf_old;
} tie_pair;

/* The flashinfer scale byte of a block with largest magnitude vmax, by the recipe and by the
 * recipe before issue 15. */
static void scale_bytes(float vmax, float gs, uint8_t *sf_new, uint8_t *sf_old) {
    float x[16] = {vmax};
    uint8_t codes[16];
    ref_recipe_flashinfer(x, gs, sf_new, codes);
    ref_recipe_flashinfer_old(x, gs, sf_old, codes);
}

/* Searches (vmax, gs) pairs, vmax a value of dtype t and gs = fp32(2688 / amax) as
 * fp4_global_scale gives it, where vmax * (gs * fp32(1/6)) and vmax * fp32(gs / 6) round to
 * different E4M3 bytes. F16/BF16: every value of the dtype in the 4 binades below amax, for
 * amax over the dtype's values from 1 up. F32: vmax a few ulps around each E4M3 rounding tie
 * divided by the multiplier. Returns how many it found (at most cap). */
static int find_ties(fp4_dtype t, tie_pair *out, int cap) {
    int n = 0;
    const float one_sixth = 1.0f / 6.0f;
    for (int a = 0; a < 4096 && n < cap; a++) {
        float amax;
        if (t == FP4_DTYPE_BF16)
            amax = (float)ref_bf16_value((uint16_t)(0x3F80 + a));
        else if (t == FP4_DTYPE_F16)
            amax = (float)ref_f16_value((uint16_t)(0x3C00 + a));
        else
            amax = 1.0f + (float)a * 0x1p-12f;
        const float gs = 2688.0f / amax;
        const float m_new = gs * one_sixth, m_old = gs / 6.0f;
        if (m_new == m_old) continue; /* the same multiplier: no difference possible */
        if (t == FP4_DTYPE_F32) {
            for (int c = 0x10; c < 0x7E && n < cap; c += 7) { /* ties between E4M3 codes c, c+1 */
                const float tie = (float)((ref_e4m3_value((uint8_t)c) + ref_e4m3_value((uint8_t)(c + 1))) / 2);
                float v = nextafterf(nextafterf(tie / m_new, 0.0f), 0.0f);
                for (int u = 0; u < 5 && n < cap; u++, v = nextafterf(v, INFINITY)) {
                    if (v * m_new == v * m_old) continue;
                    tie_pair p = {v, gs, 0, 0};
                    scale_bytes(v, gs, &p.sf_new, &p.sf_old);
                    if (p.sf_new != p.sf_old) out[n++] = p;
                }
            }
            continue;
        }
        const uint16_t top = t == FP4_DTYPE_BF16 ? (uint16_t)(0x3F80 + a) : (uint16_t)(0x3C00 + a);
        const int per_binade = t == FP4_DTYPE_BF16 ? 128 : 1024;
        for (int j = 0; j < 4 * per_binade && n < cap; j++) {
            const uint16_t h = (uint16_t)(top - j);
            const float v = (float)(t == FP4_DTYPE_BF16 ? ref_bf16_value(h) : ref_f16_value(h));
            if (v * m_new == v * m_old) continue;
            tie_pair p = {v, gs, 0, 0};
            scale_bytes(v, gs, &p.sf_new, &p.sf_old);
            if (p.sf_new != p.sf_old) out[n++] = p;
        }
    }
    return n;
}

/* For each dtype: the search must find tie pairs (they exist: the issue measured them on
 * real tensors); each becomes a block (vmax at a varying position and sign, the other
 * elements smaller, zeros and -0 among them) next to an ordinary block, quantized in both
 * layouts with gs by value and by pointer. The library must give the recipe's bytes, which
 * differ from the old recipe's scale byte by construction: today's quantizer fails here. */
static void test_flashinfer_ties(tu_rng *rng) {
    static const fp4_dtype types[] = {FP4_DTYPE_F32, FP4_DTYPE_F16, FP4_DTYPE_BF16};
    enum { CAP = 24 };
    for (int ti = 0; ti < 3; ti++) {
        const fp4_dtype t = types[ti];
        tie_pair pairs[CAP];
        const int n = find_ties(t, pairs, CAP);
        if (!tu_case(n >= 8, "flashinfer ties %s: the search finds (vmax, gs) pairs whose scale byte differs between "
                     "gs*fp32(1/6) and fp32(gs/6): %d (want >= 8)", fp4_dtype_name(t), n))
            continue;
        printf("  e.g. vmax=%a gs=%a: scale 0x%02X (old recipe 0x%02X)\n", (double)pairs[0].vmax,
               (double)pairs[0].gs, pairs[0].sf_new, pairs[0].sf_old);
        int n_ok = 0, n_old_differs = 0;
        char first_why[240] = "";
        for (int p = 0; p < n; p++) {
            uint8_t in[32 * 4];
            const float vmax = pairs[p].vmax;
            for (int i = 0; i < 16; i++) {
                float v = to_dtype(t, (float)(2.0 * tu_rng_uniform(rng) - 1.0) * vmax);
                if (i % 5 == 1) v = 0.0f;
                if (i % 7 == 2) v = -0.0f;
                ref_store_elem(in, t, i, v);
            }
            ref_store_elem(in, t, p % 16, (p & 1) ? -vmax : vmax);
            for (int i = 16; i < 32; i++) ref_store_elem(in, t, i, to_dtype(t, tu_rng_normal(rng) * vmax));
            char why[200];
            const int ok = matches_ref(FP4_QUANT_RECIPE_FLASHINFER, t, 1, 32, in, pairs[p].gs, p % 3 == 0,
                                       (p & 2) ? FP4_SF_SWIZZLED_128x4 : FP4_SF_LINEAR, why, sizeof why);
            if (ok) n_ok++;
            else if (!first_why[0]) snprintf(first_why, sizeof first_why, "pair %d (vmax=%a gs=%a): %s", p, (double)vmax, (double)pairs[p].gs, why);
            /* the block's old-recipe scale byte differs from what the library must write */
            float x[16];
            uint8_t s_new, s_old, codes[16];
            for (int i = 0; i < 16; i++) x[i] = ref_load_elem(in, t, i);
            ref_recipe_flashinfer(x, pairs[p].gs, &s_new, codes);
            ref_recipe_flashinfer_old(x, pairs[p].gs, &s_old, codes);
            n_old_differs += s_new != s_old && s_new == pairs[p].sf_new;
        }
        if (!tu_case(n_ok == n && n_old_differs == n,
                     "flashinfer ties %s: %d of %d tie blocks equal the recipe byte for byte (both layouts, gs by "
                     "value and pointer); the old recipe's scale differs in %d of them",
                     fp4_dtype_name(t), n_ok, n, n_old_differs))
            printf("  %s\n", first_why);
    }
}

/* ---- flashinfer: scales that underflow to 0 ------------------------------------------- */

static void test_flashinfer_underflow(void) {
    /* gs = 1: sf_f32 = vmax / 6 < 2^-10 rounds to scale 0 while vmax != 0, so out_scale is
     * 1/0 = Inf, clamped to FLT_MAX: the nonzero elements become +-6 (codes 7/15), zeros keep
     * their sign (0/8); the scale byte 0 makes the block decode to 0. The recipe before issue
     * 15 wrote 0/8 for all of them. Values held exactly by F32, F16 (2^-14 and up) and BF16. */
    float x[16];
    int codes[16];
    static const float mags[16] = {0x1p-14f, 0x1.8p-13f, 0.0f, 0x1p-12f, 0x1.4p-14f, 0.0f, 0x1p-11f, 0x1.cp-12f,
                                   0x1p-13f, 0x1p-14f, 0.0f, 0x1.2p-12f, 0x1p-12f, 0x1p-11f, 0x1.8p-14f, 0x1p-13f};
    for (int i = 0; i < 16; i++) {
        const int neg = (i % 3) == 1;
        x[i] = neg ? -mags[i] : mags[i];
        codes[i] = mags[i] == 0.0f ? (neg ? 8 : 0) : (neg ? 15 : 7);
    }
    special(FP4_QUANT_RECIPE_FLASHINFER, "scale underflows to 0 (nonzero -> +-6, +-0 kept)", x, 1.0f, 0x00, codes);
    /* the same with a large vmax and a tiny gs: vmax = 448, gs = 2^-20 */
    for (int i = 0; i < 16; i++) x[i] = ldexpf((i & 1) ? -448.0f : 448.0f, -(i % 8)), codes[i] = (i & 1) ? 15 : 7;
    x[3] = -0.0f, codes[3] = 8;
    x[8] = 0.0f, codes[8] = 0;
    special(FP4_QUANT_RECIPE_FLASHINFER, "scale underflows, gs=2^-20", x, 0x1p-20f, 0x00, codes);
    /* just above the underflow: sf_f32 = 2^-10 (1 + 2^-10) rounds to 2^-9, a normal block */
    for (int i = 0; i < 16; i++) x[i] = 6.0f * 0x1p-10f * (1.0f + 0x1p-10f) * (float)(16 - i) / 16.0f;
    special(FP4_QUANT_RECIPE_FLASHINFER, "scale just above underflow (2^-9)", x, 1.0f, 0x01, NULL);
}

/* ---- modelopt: special blocks ----------------------------------------------------------- */

static void test_modelopt_special(void) {
    float x[16];
    int codes[16];
    /* all zero: s = 0 -> 1.0 (0x38); all codes 0, and -0.0 also gives code 0 (sign from y < 0) */
    for (int i = 0; i < 16; i++) x[i] = 0.0f, codes[i] = 0;
    special(FP4_QUANT_RECIPE_MODELOPT, "all +0 (scale 1.0)", x, 1.0f, 0x38, codes);
    special(FP4_QUANT_RECIPE_MODELOPT, "all +0 (scale 1.0)", x, 1e-6f, 0x38, codes);
    for (int i = 0; i < 16; i++) x[i] = -0.0f;
    special(FP4_QUANT_RECIPE_MODELOPT, "all -0 (scale 1.0, codes 0)", x, 1.0f, 0x38, codes);

    /* ws2 = 1, vmax = 6: s = 1 (0x38), divisor 1, y = x: E2M1 ties to even, saturation; -0 is
     * code 0, a negative that rounds to zero is code 8 */
    static const float grid[16] = {6.0f, 0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f,
                                   -0.25f, -0.75f, -2.5f, -5.0f, -0.0f, -0.125f, 0.0f, -6.0f};
    static const int grid_codes[16] = {7, 0, 2, 2, 4, 4, 6, 6, 8, 10, 12, 14, 0, 8, 0, 15};
    special(FP4_QUANT_RECIPE_MODELOPT, "E2M1 ties, -0 -> code 0, -0.125 -> code 8", grid, 1.0f, 0x38, grid_codes);

    /* a tiny block: s = vmax / (6 ws2) = 2^-12 is clamped up to 2^-9 (0x01), the elements are
     * x / (2^-9 ws2): 2^-12 * 6 / 2^-9 = 0.75 -> code 2 (tie to even) */
    for (int i = 0; i < 16; i++) x[i] = (i & 1) ? -6.0f * 0x1p-12f : 6.0f * 0x1p-12f, codes[i] = (i & 1) ? 10 : 2;
    special(FP4_QUANT_RECIPE_MODELOPT, "tiny block (scale clamped to 2^-9)", x, 1.0f, 0x01, codes);
    /* a huge block: s = 6000 / 6 = 1000 is clamped to 448 (0x7E); y = x / 448 saturates */
    for (int i = 0; i < 16; i++) x[i] = (i & 1) ? -6000.0f : 2688.0f, codes[i] = (i & 1) ? 15 : 7;
    x[2] = 448.0f, codes[2] = 2;
    special(FP4_QUANT_RECIPE_MODELOPT, "huge block (scale clamped to 448)", x, 1.0f, 0x7E, codes);

    /* ws2 that is not 1/gs of any float gs: fp32(amax/2688) for amax = 1.1 (bf16 0x3F8D) */
    const float amax = (float)ref_bf16_value(0x3F8D), ws2 = amax / 2688.0f;
    for (int i = 0; i < 16; i++) x[i] = (float)ref_bf16_value((uint16_t)(0x3F8D - 40 * i)) * ((i % 3) ? 1.0f : -1.0f);
    special(FP4_QUANT_RECIPE_MODELOPT, "ws2 = fp32(1.1015625 / 2688)", x, ws2, 0x7E, NULL);
    /* NaN: ignored by the max, code 0; an Inf makes s = Inf -> 448, and saturates */
    for (int i = 0; i < 16; i++) x[i] = (float)(i - 8), codes[i] = -1;
    x[4] = NAN;
    x[9] = INFINITY;
    special(FP4_QUANT_RECIPE_MODELOPT, "NaN and Inf", x, 1.0f, 0x7E, NULL);

    /* ws2 = 0 through the pointer (an all-zero tensor's ws2): 0 / 0 = NaN scale 0x7F, as ModelOpt */
    for (int i = 0; i < 16; i++) x[i] = 0.0f;
    lib_out got;
    lib_quantize(FP4_QUANT_RECIPE_MODELOPT, FP4_DTYPE_F32, 1, 16, x, 0.0f, 1, FP4_SF_LINEAR, &got);
    int ok = got.ok && got.sf[0] == 0x7F;
    for (int i = 0; ok && i < 16; i++) ok = nib(got.q, i) == 0;
    tu_case(ok, "recipe modelopt all-zero block with ws2 = 0 by pointer: scale 0x7F (NaN, as ModelOpt), codes 0");

    /* the recipes differ: zero and -0 blocks, and a block at an E4M3 tie of one of them */
    for (int i = 0; i < 16; i++) x[i] = -0.0f;
    lib_out fi, mo;
    lib_quantize(FP4_QUANT_RECIPE_FLASHINFER, FP4_DTYPE_F32, 1, 16, x, 1.0f, 0, FP4_SF_LINEAR, &fi);
    lib_quantize(FP4_QUANT_RECIPE_MODELOPT, FP4_DTYPE_F32, 1, 16, x, 1.0f, 0, FP4_SF_LINEAR, &mo);
    tu_case(fi.ok && mo.ok && fi.sf[0] == 0x00 && fi.q[0] == 0x88 && mo.sf[0] == 0x38 && mo.q[0] == 0x00,
            "all -0 block: flashinfer scale 0x00 codes 8, modelopt scale 0x38 codes 0");
}

/* ---- fp4_modelopt_global_scale -------------------------------------------------------- */

static void test_modelopt_global_scale(tu_rng *rng) {
    /* a fused q/k/v group: three tensors of different dtypes and strides; ws2 is the max of
     * their amax over 2688, in float32 */
    float q32[40 * 64];
    uint16_t k16[24 * 48], v16[17 * 80];
    for (int i = 0; i < 40 * 64; i++) q32[i] = tu_rng_normal(rng) * 0.02f;
    for (int i = 0; i < 24 * 48; i++) k16[i] = ref_f32_to_bf16(tu_rng_normal(rng) * 0.03f);
    for (int i = 0; i < 17 * 80; i++) v16[i] = ref_f32_to_f16(tu_rng_normal(rng) * 0.01f);
    /* k: rows of 32 used out of 48 (the gap holds a value larger than every amax) */
    for (int r = 0; r < 24; r++)
        for (int i = 32; i < 48; i++) k16[r * 48 + i] = ref_f32_to_bf16(100.0f);
    fp4_tensor_ref g[3] = {
        {40, 64, FP4_DTYPE_F32, q32, 0},
        {24, 32, FP4_DTYPE_BF16, k16, 48},
        {17, 80, FP4_DTYPE_F16, v16, 0},
    };
    float amax[3] = {0, 0, 0};
    for (int t = 0; t < 3; t++)
        for (int64_t r = 0; r < g[t].rows; r++)
            for (int64_t i = 0; i < g[t].k; i++) {
                const float v = fabsf(ref_load_elem(g[t].data, g[t].dtype, r * (g[t].ld ? g[t].ld : g[t].k) + i));
                if (v > amax[t]) amax[t] = v;
            }
    for (int count = 1; count <= 3; count++) {
        float group_amax = 0.0f;
        for (int t = 0; t < count; t++) group_amax = fmaxf(group_amax, amax[t]);
        const float want = group_amax / 2688.0f;
        float got[2] = {NAN, NAN};
        const int ok = tu_ok(fp4_modelopt_global_scale(g_ctx, g, count, got, NULL), g_ctx, "fp4_modelopt_global_scale");
        tu_case(ok && f32_bits(got[0]) == f32_bits(want) && isnan(got[1]),
                "modelopt_global_scale group of %d (f32, bf16 with ld 48, f16): %a == fp32(max amax / 2688) = %a",
                count, (double)got[0], (double)want);
    }
    /* the largest amax in the last tensor, a NaN ignored */
    v16[5 * 80 + 7] = ref_f32_to_f16(-3.5f);
    q32[77] = NAN;
    float got = 0.0f;
    tu_case(fp4_modelopt_global_scale(g_ctx, g, 3, &got, NULL) == FP4_OK && f32_bits(got) == f32_bits(3.5f / 2688.0f),
            "modelopt_global_scale: max in the third tensor (-3.5), NaN ignored: %a", (double)got);
    /* degenerate groups: all zero -> 0 (ModelOpt's value); an Inf -> Inf */
    float zeros[32] = {0};
    zeros[3] = -0.0f;
    fp4_tensor_ref z = {2, 16, FP4_DTYPE_F32, zeros, 0};
    tu_case(fp4_modelopt_global_scale(g_ctx, &z, 1, &got, NULL) == FP4_OK && f32_bits(got) == 0,
            "modelopt_global_scale all zero: +0");
    zeros[20] = -INFINITY;
    tu_case(fp4_modelopt_global_scale(g_ctx, &z, 1, &got, NULL) == FP4_OK && isinf(got) && got > 0,
            "modelopt_global_scale with -Inf: +Inf");
    /* errors */
    struct {
        const char *name, *needle;
        fp4_tensor_ref t;
        int count;
    } bad[] = {
        {"count 0", "count", {2, 16, FP4_DTYPE_F32, zeros, 0}, 0},
        {"k 24", "tensors[1]", {1, 24, FP4_DTYPE_F32, zeros, 0}, 2},
        {"rows 0", "tensors[1]", {0, 16, FP4_DTYPE_F32, zeros, 0}, 2},
        {"dtype e2m1", "tensors[1].dtype", {1, 16, FP4_DTYPE_E2M1, zeros, 0}, 2},
        {"ld < k", "tensors[1].ld", {1, 32, FP4_DTYPE_F32, zeros, 16}, 2},
        {"data NULL", "tensors[1].data", {1, 16, FP4_DTYPE_F32, NULL, 0}, 2},
        {"misaligned", "aligned", {1, 16, FP4_DTYPE_F32, (const char *)zeros + 2, 0}, 2},
    };
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        fp4_tensor_ref two[2] = {{2, 16, FP4_DTYPE_F32, zeros, 0}, bad[b].t};
        got = 42.0f;
        const fp4_status st = fp4_modelopt_global_scale(g_ctx, two, bad[b].count, &got, NULL);
        tu_case(st == FP4_ERR_INVALID_ARGUMENT && strstr(fp4_last_error(g_ctx), bad[b].needle) && got == 42.0f,
                "modelopt_global_scale %s: INVALID_ARGUMENT (%s)", bad[b].name, fp4_last_error(g_ctx));
    }
    tu_case(fp4_modelopt_global_scale(g_ctx, NULL, 1, &got, NULL) == FP4_ERR_INVALID_ARGUMENT &&
                fp4_modelopt_global_scale(g_ctx, &z, 1, NULL, NULL) == FP4_ERR_INVALID_ARGUMENT &&
                fp4_modelopt_global_scale(NULL, &z, 1, &got, NULL) == FP4_ERR_INVALID_ARGUMENT,
            "modelopt_global_scale NULL tensors / ws2_out / ctx: INVALID_ARGUMENT");

    /* end to end: ws2 from the helper, then a modelopt quantization of the group's first
     * tensor equals the reference */
    q32[77] = 0.5f;
    float ws2 = 0.0f;
    int ok = fp4_modelopt_global_scale(g_ctx, g, 3, &ws2, NULL) == FP4_OK;
    char why[200] = "";
    ok = ok && matches_ref(FP4_QUANT_RECIPE_MODELOPT, FP4_DTYPE_F32, 16, 64, q32, ws2, 1, FP4_SF_SWIZZLED_128x4, why,
                           sizeof why);
    if (!tu_case(ok, "modelopt: ws2 of the fused group, then quantize its f32 member (16 rows): bytes equal"))
        printf("  %s\n", why);
}

int main(void) {
    const uint64_t seed = tu_seed(0x15C0FFEEull);
    tu_begin("test_recipes", seed);
    tu_rng rng;
    tu_rng_seed(&rng, seed);
    if (!tu_ok(fp4_create(&g_ctx, -1), NULL, "fp4_create(-1)")) {
        tu_case(0, "create a CPU context");
        return tu_finish();
    }
    test_names_and_versions();
    test_flashinfer_ties(&rng);
    test_flashinfer_underflow();
    test_modelopt_special();
    test_modelopt_global_scale(&rng);
    fp4_destroy(g_ctx);
    return tu_finish();
}

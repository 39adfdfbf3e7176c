/*
 * test_format.c - the element and scale formats (src/format.h) and the public size/offset
 * functions, checked against NVFP4.md with references written from scratch (ref_formats.c:
 * table look-ups, ldexp formulas and brute-force nearest-value searches in double). Nothing
 * in this file calls a format.h encoder to compute an expected value.
 */
#include "format.h"
#include "ref_formats.h"
#include "test_util.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers (the independent references are in ref_formats.c) ---------------------- */

/* A float with random bits in a given exponent window (both signs). */
static float random_float_exp(tu_rng *rng, int lo_exp, int hi_exp) {
    const int e = (int)tu_rng_range(rng, lo_exp, hi_exp);
    const uint32_t mant = (uint32_t)(tu_rng_u64(rng) >> 41); /* 23 bits */
    uint32_t u;
    if (e < -126)
        u = mant; /* subnormal */
    else
        u = ((uint32_t)(e + 127) << 23) | mant;
    if (tu_rng_u64(rng) & 1) u |= 0x80000000u;
    return bits_f32(u);
}

static int same_double(double a, double b) { return (isnan(a) && isnan(b)) || a == b; }

/* ---- E2M1 ---------------------------------------------------------------------------- */

static void test_e2m1(tu_rng *rng) {
    int ok = 1;
    for (int c = 0; c < 16; c++) {
        const float v = fp4_e2m1_decode((uint8_t)c);
        const double want = ref_e2m1_value((uint8_t)c);
        ok &= (double)v == want && sign_bit(v) == ((c & 8) != 0);
    }
    tu_case(ok, "e2m1 decode all 16 codes (8..15 negative, 8 is -0.0 with the sign bit)");

    ok = 1;
    for (int c = 0; c < 16; c++) ok &= fp4_e2m1_encode(fp4_e2m1_decode((uint8_t)c)) == c;
    tu_case(ok, "e2m1 encode(decode(c)) == c for all 16 codes");

    static const struct {
        float x;
        uint8_t code;
    } ties[] = {
        {0.25f, 0}, {0.75f, 2}, {1.25f, 2}, {1.75f, 4}, {2.5f, 4}, {3.5f, 6}, {5.0f, 6},
        {-0.25f, 8}, {-0.75f, 10}, {-1.25f, 10}, {-1.75f, 12}, {-2.5f, 12}, {-3.5f, 14},
        {-5.0f, 14},
    };
    /* NOTE: the contract names the tie results by value (0.75 -> 1 means the value 1.0,
     * code 2): every tie goes to the code with an even mantissa bit. */
    for (size_t i = 0; i < sizeof ties / sizeof ties[0]; i++) {
        const uint8_t got = fp4_e2m1_encode(ties[i].x);
        if (!tu_case(got == ties[i].code, "e2m1 tie %g -> code %u", ties[i].x, ties[i].code))
            printf("  got code %u\n", got);
    }
    /* one float ulp either side of every tie and of every grid value */
    ok = 1;
    for (int c = 0; c < 7; c++) {
        const float mid = (float)((k_e2m1_mag[c] + k_e2m1_mag[c + 1]) / 2);
        ok &= fp4_e2m1_encode(nextafterf(mid, 0.0f)) == c;
        ok &= fp4_e2m1_encode(nextafterf(mid, 100.0f)) == c + 1;
        ok &= fp4_e2m1_encode(-nextafterf(mid, 0.0f)) == (8 | c);
        ok &= fp4_e2m1_encode(-nextafterf(mid, 100.0f)) == (8 | (c + 1));
    }
    tu_case(ok, "e2m1 one ulp either side of every tie");

    static const struct {
        float x;
        uint8_t code;
        const char *what;
    } special[] = {
        {-0.1f, 8, "-0.1 -> 8 (-0)"},   {-0.0f, 8, "-0.0 -> 8"},     {0.0f, 0, "0 -> 0"},
        {0.1f, 0, "0.1 -> 0"},          {1e-40f, 0, "subnormal -> 0"}, {-1e-40f, 8, "-subnormal -> 8"},
        {6.0f, 7, "6 -> 7"},            {7.0f, 7, "7 -> 7 (saturate)"}, {100.0f, 7, "100 -> 7"},
        {FLT_MAX, 7, "FLT_MAX -> 7"},   {INFINITY, 7, "Inf -> 7"},   {-7.0f, 15, "-7 -> 15"},
        {-INFINITY, 15, "-Inf -> 15"},  {NAN, 0, "NaN -> 0"},        {-NAN, 0, "-NaN -> 0"},
    };
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) {
        const uint8_t got = fp4_e2m1_encode(special[i].x);
        if (!tu_case(got == special[i].code, "e2m1 encode %s", special[i].what))
            printf("  got code %u\n", got);
    }

    /* random floats across magnitudes vs the brute-force encoder */
    const int n = 400000;
    int bad = 0;
    for (int i = 0; i < n; i++) {
        float x;
        if (i % 4 == 3)
            x = bits_f32((uint32_t)tu_rng_u64(rng)); /* anything, NaN and Inf included */
        else
            x = random_float_exp(rng, i % 4 == 0 ? -150 : -4, i % 4 == 0 ? 127 : 3);
        const uint8_t got = fp4_e2m1_encode(x), want = ref_e2m1_encode(x);
        if (got != want && bad++ < 5) printf("  x=%a got %u want %u\n", x, got, want);
    }
    tu_case(bad == 0, "e2m1 encode vs brute force on %d random floats (%d mismatches)", n, bad);
}

/* ---- E4M3 ---------------------------------------------------------------------------- */

static void test_e4m3(tu_rng *rng) {
    int ok = 1;
    for (int c = 0; c < 256; c++) {
        const float v = fp4_e4m3_decode((uint8_t)c);
        const double want = ref_e4m3_value((uint8_t)c);
        const int good = same_double((double)v, want) && (isnan(want) || sign_bit(v) == (c >> 7));
        if (!good && ok) printf("  code 0x%02X got %a want %a\n", c, v, want);
        ok &= good;
    }
    tu_case(ok, "e4m3 decode all 256 codes vs ldexp formula");
    tu_case(isnan(fp4_e4m3_decode(0x7F)) && isnan(fp4_e4m3_decode(0xFF)), "e4m3 0x7F and 0xFF are NaN");
    tu_case(fp4_e4m3_decode(1) == 0x1p-9f && fp4_e4m3_decode(7) == 7 * 0x1p-9f &&
                fp4_e4m3_decode(8) == 0x1p-6f,
            "e4m3 subnormals: code 1 = 2^-9, code 7 = 7*2^-9, code 8 = 2^-6");
    tu_case(fp4_e4m3_decode(0x7E) == 448.0f && fp4_e4m3_decode(0xFE) == -448.0f &&
                fp4_e4m3_decode(0x38) == 1.0f,
            "e4m3 max 448 is 0x7E, 1.0 is 0x38");

    ok = 1;
    for (int c = 0; c < 256; c++) {
        if ((c & 0x7F) == 0x7F) continue;
        const uint8_t got = fp4_e4m3_encode(fp4_e4m3_decode((uint8_t)c));
        if (got != c && ok) printf("  code 0x%02X -> 0x%02X\n", c, got);
        ok &= got == c;
    }
    tu_case(ok, "e4m3 encode(decode(c)) == c for all 254 non-NaN codes (incl. 0x80 = -0)");

    /* every tie between adjacent codes, and one float ulp either side */
    int ties_ok = 1, sides_ok = 1;
    for (int c = 0; c < 0x7E; c++) {
        const double mid = (ref_e4m3_value((uint8_t)c) + ref_e4m3_value((uint8_t)(c + 1))) / 2;
        const float midf = (float)mid;
        if ((double)midf != mid) {
            ties_ok = 0;
            printf("  midpoint of 0x%02X not a float?\n", c);
            continue;
        }
        const int even = (c & 1) ? c + 1 : c;
        const uint8_t got = fp4_e4m3_encode(midf), gotn = fp4_e4m3_encode(-midf);
        if ((got != even || gotn != (0x80 | even)) && ties_ok)
            printf("  tie 0x%02X/0x%02X (%a) got 0x%02X, -: 0x%02X\n", c, c + 1, mid, got, gotn);
        ties_ok &= got == even && gotn == (0x80 | even);
        sides_ok &= fp4_e4m3_encode(nextafterf(midf, 0.0f)) == c;
        sides_ok &= fp4_e4m3_encode(nextafterf(midf, 1000.0f)) == c + 1;
    }
    tu_case(ties_ok, "e4m3 RNE: the midpoint of every adjacent code pair goes to the even code (126 ties, both signs)");
    tu_case(sides_ok, "e4m3 one ulp either side of every midpoint");

    static const struct {
        float x;
        uint8_t code;
        const char *what;
    } special[] = {
        {0x1p-10f, 0x00, "2^-10 (tie) -> 0"},
        {0x1.000002p-10f, 0x01, "2^-10 + ulp -> 1"},
        {0x1p-11f, 0x00, "2^-11 -> 0"},
        {3 * 0x1p-10f, 0x02, "1.5*2^-9 (tie) -> 2"},
        {1e-40f, 0x00, "float subnormal -> 0"},
        {-1e-40f, 0x80, "-float subnormal -> 0x80"},
        {448.0f, 0x7E, "448 -> 0x7E"},
        {449.0f, 0x7E, "449 -> 0x7E"},
        {464.0f, 0x7E, "464 (the 448/480 tie) -> 0x7E"},
        {1000.0f, 0x7E, "1000 -> 0x7E"},
        {1e9f, 0x7E, "1e9 -> 0x7E"},
        {FLT_MAX, 0x7E, "FLT_MAX -> 0x7E"},
        {INFINITY, 0x7E, "Inf -> 0x7E"},
        {-INFINITY, 0xFE, "-Inf -> 0xFE"},
        {-1e9f, 0xFE, "-1e9 -> 0xFE"},
        {NAN, 0x7F, "NaN -> 0x7F"},
    };
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) {
        const uint8_t got = fp4_e4m3_encode(special[i].x);
        if (!tu_case(got == special[i].code, "e4m3 encode %s", special[i].what))
            printf("  got 0x%02X\n", got);
    }
    tu_case(fp4_e4m3_encode(-NAN) == 0x7F, "e4m3 encode -NaN -> 0x7F (scales are non-negative)");

    const int n = 300000;
    int bad = 0;
    for (int i = 0; i < n; i++) {
        float x;
        switch (i % 5) {
        case 0: x = random_float_exp(rng, -12, -6); break; /* subnormal range and below */
        case 1: x = random_float_exp(rng, -30, -9); break; /* below 2^-9: 0 or 1 */
        case 2: x = random_float_exp(rng, -6, 9); break;   /* normal range and saturation */
        case 3: x = random_float_exp(rng, -150, 127); break;
        default: x = bits_f32((uint32_t)tu_rng_u64(rng)); break;
        }
        const uint8_t got = fp4_e4m3_encode(x), want = ref_e4m3_encode(x);
        if (got != want && bad++ < 5) printf("  x=%a got 0x%02X want 0x%02X\n", x, got, want);
    }
    tu_case(bad == 0, "e4m3 encode vs brute force on %d random floats (%d mismatches)", n, bad);
}

/* ---- BF16 and F16 -------------------------------------------------------------------- */

static void test_half_types(tu_rng *rng) {
    int ok = 1;
    for (uint32_t h = 0; h < 65536; h++) ok &= same_double(fp4_f16_to_f32((uint16_t)h), ref_f16_value((uint16_t)h));
    tu_case(ok, "f16 -> f32 all 65536 codes vs formula");
    ok = 1;
    for (uint32_t h = 0; h < 65536; h++) ok &= same_double(fp4_bf16_to_f32((uint16_t)h), ref_bf16_value((uint16_t)h));
    tu_case(ok, "bf16 -> f32 all 65536 codes vs formula");

    int ok16 = 1, okb = 1;
    for (uint32_t h = 0; h < 65536; h++) {
        const int nan16 = ((h >> 10) & 31) == 31 && (h & 1023);
        const int nanb = ((h >> 7) & 255) == 255 && (h & 127);
        if (!nan16) ok16 &= fp4_f32_to_f16(fp4_f16_to_f32((uint16_t)h)) == h;
        else ok16 &= (fp4_f32_to_f16(fp4_f16_to_f32((uint16_t)h)) & 0x7FFF) > 0x7C00;
        if (!nanb) okb &= fp4_f32_to_bf16(fp4_bf16_to_f32((uint16_t)h)) == h;
        else okb &= (fp4_f32_to_bf16(fp4_bf16_to_f32((uint16_t)h)) & 0x7FFF) > 0x7F80;
    }
    tu_case(ok16, "f16 round trip f32 -> f16 for all codes (NaN stays NaN)");
    tu_case(okb, "bf16 round trip f32 -> bf16 for all codes (NaN stays NaN)");

    /* ties between adjacent codes */
    ok16 = 1;
    for (uint32_t c = 0; c < 0x7BFF; c++) {
        const double mid = (ref_f16_value((uint16_t)c) + ref_f16_value((uint16_t)(c + 1))) / 2;
        const uint32_t even = (c & 1) ? c + 1 : c;
        ok16 &= fp4_f32_to_f16((float)mid) == even && fp4_f32_to_f16(-(float)mid) == (0x8000 | even);
        ok16 &= fp4_f32_to_f16(nextafterf((float)mid, 0)) == c;
        ok16 &= fp4_f32_to_f16(nextafterf((float)mid, 1e9f)) == c + 1;
    }
    tu_case(ok16, "f16 RNE ties between every pair of adjacent codes (and one ulp either side)");
    okb = 1;
    for (uint32_t c = 0; c < 0x7F7F; c++) {
        const double mid = (ref_bf16_value((uint16_t)c) + ref_bf16_value((uint16_t)(c + 1))) / 2;
        const uint32_t even = (c & 1) ? c + 1 : c;
        okb &= fp4_f32_to_bf16((float)mid) == even && fp4_f32_to_bf16(-(float)mid) == (0x8000 | even);
        okb &= fp4_f32_to_bf16(nextafterf((float)mid, 0)) == c;
        okb &= fp4_f32_to_bf16(nextafterf((float)mid, INFINITY)) == c + 1;
    }
    tu_case(okb, "bf16 RNE ties between every pair of adjacent codes (and one ulp either side)");

    tu_case(fp4_f32_to_f16(65504.0f) == 0x7BFF && fp4_f32_to_f16(65519.99f) == 0x7BFF &&
                fp4_f32_to_f16(65520.0f) == 0x7C00 && fp4_f32_to_f16(1e6f) == 0x7C00 &&
                fp4_f32_to_f16(-INFINITY) == 0xFC00 && fp4_f32_to_f16(0x1p-25f) == 0 &&
                fp4_f32_to_f16(0x1.000002p-25f) == 1 && fp4_f32_to_f16(-0.0f) == 0x8000,
            "f16 known values: 65504, overflow at 65520, Inf, 2^-25 tie, -0");
    tu_case(fp4_f32_to_bf16(FLT_MAX) == 0x7F80 && fp4_f32_to_bf16(1.0f) == 0x3F80 &&
                fp4_f32_to_bf16(bits_f32(0x3F808000u)) == 0x3F80 &&
                fp4_f32_to_bf16(bits_f32(0x3F818000u)) == 0x3F82 &&
                fp4_f32_to_bf16(-INFINITY) == 0xFF80 && fp4_f32_to_bf16(-0.0f) == 0x8000,
            "bf16 known values: FLT_MAX -> Inf, 1.0, ties, -Inf, -0");
    tu_case(isnan(fp4_bf16_to_f32(fp4_f32_to_bf16(NAN))) && isnan(fp4_f16_to_f32(fp4_f32_to_f16(NAN))) &&
                isnan(fp4_bf16_to_f32(fp4_f32_to_bf16(bits_f32(0x7F800001u)))),
            "f16/bf16 NaN stays NaN (including a NaN whose payload is in the dropped bits)");

    const int n = 400000;
    int bad16 = 0, badb = 0;
    for (int i = 0; i < n; i++) {
        const float x = (i & 1) ? random_float_exp(rng, -30, 20) : bits_f32((uint32_t)tu_rng_u64(rng));
        if (isnan(x)) continue;
        const uint16_t g16 = fp4_f32_to_f16(x), w16 = ref_f32_to_f16(x);
        const uint16_t gb = fp4_f32_to_bf16(x), wb = ref_f32_to_bf16(x);
        if (g16 != w16 && bad16++ < 5) printf("  f16 x=%a got 0x%04X want 0x%04X\n", x, g16, w16);
        if (gb != wb && badb++ < 5) printf("  bf16 x=%a got 0x%04X want 0x%04X\n", x, gb, wb);
    }
    tu_case(bad16 == 0, "f16 encode vs brute force on %d random floats (%d mismatches)", n, bad16);
    tu_case(badb == 0, "bf16 encode vs brute force on %d random floats (%d mismatches)", n, badb);
}

/* ---- nibble packing ------------------------------------------------------------------- */

static void test_nibbles(tu_rng *rng) {
    uint8_t row[64];
    tu_fill_bytes(rng, row, 64);
    int ok = 1;
    for (int i = 0; i < 128; i++) {
        const uint8_t want = (i % 2 == 0) ? (row[i / 2] & 0xF) : (row[i / 2] >> 4);
        ok &= fp4_get_nibble(row, i) == want;
    }
    tu_case(ok, "nibble: even k in the low nibble, odd k in the high nibble (128 elements)");
}

/* ---- sizes and offsets --------------------------------------------------------------- */

static int64_t roundup(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

static void test_offsets(void) {
    static const int64_t ks[] = {16, 32, 48, 64, 80, 128, 208, 4096};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        const int64_t k = ks[i], kt = (k / 16 + 3) / 4;
        const int ok =
            fp4_sf_offset(0, 0, k, FP4_SF_SWIZZLED_128x4) == 0 &&
            fp4_sf_offset(1, 0, k, FP4_SF_SWIZZLED_128x4) == 16 &&
            fp4_sf_offset(32, 0, k, FP4_SF_SWIZZLED_128x4) == 4 &&
            fp4_sf_offset(31, 0, k, FP4_SF_SWIZZLED_128x4) == 31 * 16 &&
            fp4_sf_offset(127, 0, k, FP4_SF_SWIZZLED_128x4) == 31 * 16 + 3 * 4 &&
            (k / 16 < 2 || fp4_sf_offset(0, 1, k, FP4_SF_SWIZZLED_128x4) == 1) &&
            (k / 16 < 5 || fp4_sf_offset(0, 4, k, FP4_SF_SWIZZLED_128x4) == 512) &&
            (k / 16 < 6 || fp4_sf_offset(33, 5, k, FP4_SF_SWIZZLED_128x4) == 512 + 16 + 4 + 1) &&
            fp4_sf_offset(128, 0, k, FP4_SF_SWIZZLED_128x4) == kt * 512 &&
            fp4_sf_offset(257, 0, k, FP4_SF_SWIZZLED_128x4) == 2 * kt * 512 + 16 &&
            fp4_sf_offset_swizzled(128, 0, k) == kt * 512;
        tu_case(ok, "sf offset swizzled hand values k=%lld (kt=%lld): (0,0)=0 (1,0)=16 (32,0)=4 "
                    "(0,1)=1 (0,4)=512 (128,0)=kt*512",
                (long long)k, (long long)kt);
    }

    static const int64_t rows_list[] = {1, 2, 31, 127, 128, 129, 300, 513};
    static const int64_t k_list[] = {16, 32, 48, 64, 80, 112, 4096};
    for (size_t ri = 0; ri < sizeof rows_list / sizeof rows_list[0]; ri++) {
        for (size_t ki = 0; ki < sizeof k_list / sizeof k_list[0]; ki++) {
            const int64_t rows = rows_list[ri], k = k_list[ki], kb_n = k / 16;
            const int64_t size = fp4_sf_bytes(rows, k, FP4_SF_SWIZZLED_128x4);
            const int64_t want_size = roundup(rows, 128) * roundup(kb_n, 4);
            int ok = size == want_size;
            uint8_t *hit = calloc((size_t)(want_size > 0 ? want_size : 1), 1);
            /* the padded domain maps one-to-one onto the whole buffer */
            for (int64_t r = 0; ok && r < roundup(rows, 128); r++) {
                for (int64_t kb = 0; kb < roundup(kb_n, 4); kb++) {
                    const int64_t off = ref_sf_offset(r, kb, k, FP4_SF_SWIZZLED_128x4);
                    if (off < 0 || off >= want_size || hit[off]) {
                        ok = 0;
                        break;
                    }
                    hit[off] = 1;
                    /* and the library agrees inside the real tensor */
                    if (r < rows && kb < kb_n) {
                        const int64_t lib = fp4_sf_offset(r, kb, k, FP4_SF_SWIZZLED_128x4);
                        if (lib != off || fp4_sf_offset_swizzled(r, kb, k) != off) {
                            printf("  (row %lld, kb %lld): library %lld, contract %lld\n",
                                   (long long)r, (long long)kb, (long long)lib, (long long)off);
                            ok = 0;
                            break;
                        }
                    }
                }
            }
            free(hit);
            tu_case(ok, "sf swizzled rows=%lld k=%lld: size %lld = roundup(rows,128)*roundup(k/16,4), "
                        "offsets = contract, bijection onto the padded buffer",
                    (long long)rows, (long long)k, (long long)size);

            /* linear: row-major [rows, k/16] */
            int lok = fp4_sf_bytes(rows, k, FP4_SF_LINEAR) == rows * kb_n &&
                      fp4_packed_bytes(rows, k) == rows * k / 2;
            for (int64_t r = 0; r < rows; r++)
                for (int64_t kb = 0; kb < kb_n; kb++)
                    lok &= fp4_sf_offset(r, kb, k, FP4_SF_LINEAR) == r * kb_n + kb &&
                           fp4_sf_offset_linear(r, kb, k) == r * kb_n + kb;
            tu_case(lok, "sf linear rows=%lld k=%lld: size rows*k/16, offset row*(k/16)+kb; packed rows*k/2",
                    (long long)rows, (long long)k);
        }
    }

    tu_case(fp4_packed_bytes(1, 16) == 8 && fp4_packed_bytes(3, 48) == 72 &&
                fp4_packed_bytes(1, 4096) == 2048,
            "packed bytes: (1,16)=8 (3,48)=72 (1,4096)=2048");
    tu_case(fp4_sf_bytes(1, 16, FP4_SF_SWIZZLED_128x4) == 512 &&
                fp4_sf_bytes(129, 80, FP4_SF_SWIZZLED_128x4) == 256 * 8 &&
                fp4_sf_bytes(3, 48, FP4_SF_LINEAR) == 9,
            "sf bytes: swizzled (1,16)=512 (129,80)=2048, linear (3,48)=9");

    /* invalid arguments give -1 */
    const int64_t big = INT64_MAX / 2;
    const int64_t kmax = INT64_MAX / 16 * 16;
    struct {
        int64_t got;
        const char *what;
    } bad[] = {
        {fp4_packed_bytes(1, 24), "packed k=24"},
        {fp4_packed_bytes(1, 0), "packed k=0"},
        {fp4_packed_bytes(1, 8), "packed k=8"},
        {fp4_packed_bytes(0, 16), "packed rows=0"},
        {fp4_packed_bytes(-1, 16), "packed rows=-1"},
        {fp4_packed_bytes(1, -16), "packed k=-16"},
        {fp4_packed_bytes(big, 16), "packed rows=INT64_MAX/2 (overflow)"},
        {fp4_packed_bytes(4, kmax), "packed rows=4 k=INT64_MAX/16*16 (overflow)"},
        {fp4_sf_bytes(1, 24, FP4_SF_LINEAR), "sf linear k=24"},
        {fp4_sf_bytes(1, 24, FP4_SF_SWIZZLED_128x4), "sf swizzled k=24"},
        {fp4_sf_bytes(0, 16, FP4_SF_LINEAR), "sf linear rows=0"},
        {fp4_sf_bytes(0, 16, FP4_SF_SWIZZLED_128x4), "sf swizzled rows=0"},
        {fp4_sf_bytes(1, 0, FP4_SF_SWIZZLED_128x4), "sf swizzled k=0"},
        {fp4_sf_bytes(-5, 16, FP4_SF_LINEAR), "sf linear rows=-5"},
        {fp4_sf_bytes(big, 48, FP4_SF_LINEAR), "sf linear rows=INT64_MAX/2 k=48 (overflow)"},
        {fp4_sf_bytes(big, 16, FP4_SF_SWIZZLED_128x4), "sf swizzled rows=INT64_MAX/2 (overflow)"},
        {fp4_sf_bytes(INT64_MAX, 16, FP4_SF_SWIZZLED_128x4), "sf swizzled rows=INT64_MAX (roundup overflows)"},
        {fp4_sf_bytes(1, kmax, FP4_SF_SWIZZLED_128x4), "sf swizzled k=INT64_MAX/16*16 (overflow)"},
        {fp4_sf_bytes(1, 16, (fp4_sf_layout)7), "sf bytes unknown layout 7"},
        {fp4_sf_bytes(1, 16, (fp4_sf_layout)-1), "sf bytes unknown layout -1"},
        {fp4_sf_offset(0, 0, 24, FP4_SF_LINEAR), "offset k=24"},
        {fp4_sf_offset(0, 0, 0, FP4_SF_SWIZZLED_128x4), "offset k=0"},
        {fp4_sf_offset(-1, 0, 16, FP4_SF_SWIZZLED_128x4), "offset row=-1"},
        {fp4_sf_offset(0, -1, 16, FP4_SF_LINEAR), "offset kb=-1"},
        {fp4_sf_offset(0, 1, 16, FP4_SF_LINEAR), "offset kb=k/16 (past the row)"},
        {fp4_sf_offset(0, 3, 48, FP4_SF_SWIZZLED_128x4), "offset swizzled kb=k/16 (past the row)"},
        {fp4_sf_offset(0, 0, 16, (fp4_sf_layout)9), "offset unknown layout 9"},
        {fp4_sf_offset(big, 0, 4096, FP4_SF_LINEAR), "offset linear row=INT64_MAX/2 k=4096 (overflow)"},
        {fp4_sf_offset(big, 0, 4096, FP4_SF_SWIZZLED_128x4), "offset swizzled row=INT64_MAX/2 k=4096 (overflow)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (!tu_case(bad[i].got == -1, "size/offset invalid: %s -> -1", bad[i].what))
            printf("  got %lld\n", (long long)bad[i].got);

    /* large but valid: linear sizes that fit, and an offset past 2^31 */
    tu_case(fp4_sf_bytes(big, 16, FP4_SF_LINEAR) == big && fp4_packed_bytes(big / 8, 16) == big / 8 * 8 &&
                fp4_sf_offset(1, 0, (int64_t)1 << 40, FP4_SF_LINEAR) == ((int64_t)1 << 36) &&
                fp4_sf_offset(128, 0, (int64_t)1 << 40, FP4_SF_SWIZZLED_128x4) == ((int64_t)1 << 34) * 512,
            "large valid sizes and offsets (past 2^31) are exact");
}

/* ---- fp4_sf_convert on the CPU ------------------------------------------------------------ */

#define GUARD 32
#define POISON 0xA5

static const struct {
    int64_t rows, k;
} k_convert_shapes[] = {{1, 16}, {5, 48}, {31, 64}, {127, 64}, {128, 64}, {129, 80}, {300, 272}, {33, 144}};

static void test_sf_convert(fp4_ctx *ctx, tu_rng *rng) {
    for (size_t i = 0; i < sizeof k_convert_shapes / sizeof k_convert_shapes[0]; i++) {
        const int64_t rows = k_convert_shapes[i].rows, k = k_convert_shapes[i].k, kb_n = k / 16;
        const int64_t lin = fp4_sf_bytes(rows, k, FP4_SF_LINEAR);
        const int64_t sw = fp4_sf_bytes(rows, k, FP4_SF_SWIZZLED_128x4);
        uint8_t *src = malloc((size_t)lin), *back = malloc((size_t)lin + GUARD);
        uint8_t *swz = malloc((size_t)sw + GUARD), *swz2 = malloc((size_t)sw + GUARD);
        uint8_t *hit = calloc((size_t)sw, 1);
        tu_fill_bytes(rng, src, lin); /* any bytes: NaN codes included, moved as they are */
        memset(swz, POISON, (size_t)(sw + GUARD));
        int ok = fp4_sf_convert(ctx, rows, k, src, FP4_SF_LINEAR, swz, FP4_SF_SWIZZLED_128x4, NULL) == FP4_OK;
        // every scale where fp4_sf_offset and the independent reference put it, padding 0
        for (int64_t r = 0; ok && r < rows; r++)
            for (int64_t kb = 0; kb < kb_n; kb++) {
                const int64_t off = fp4_sf_offset(r, kb, k, FP4_SF_SWIZZLED_128x4);
                ok &= off == ref_sf_offset(r, kb, k, FP4_SF_SWIZZLED_128x4) && swz[off] == src[r * kb_n + kb];
                hit[off] = 1;
            }
        int64_t pad = 0;
        for (int64_t b = 0; b < sw; b++)
            if (!hit[b]) {
                ok &= swz[b] == 0;
                pad++;
            }
        for (int g = 0; g < GUARD; g++) ok &= swz[sw + g] == POISON;
        tu_case(ok, "sf_convert linear -> swizzled %lld x %lld: scales at fp4_sf_offset, %lld padding bytes 0",
                (long long)rows, (long long)k, (long long)pad);
        // and back
        memset(back, POISON, (size_t)(lin + GUARD));
        ok = fp4_sf_convert(ctx, rows, k, swz, FP4_SF_SWIZZLED_128x4, back, FP4_SF_LINEAR, NULL) == FP4_OK &&
             memcmp(back, src, (size_t)lin) == 0;
        for (int g = 0; g < GUARD; g++) ok &= back[lin + g] == POISON;
        tu_case(ok, "sf_convert swizzled -> linear %lld x %lld: the original bytes back", (long long)rows,
                (long long)k);
        // same layout: a copy, with the swizzled padding (garbage in the source) written 0
        for (int64_t b = 0; b < sw; b++)
            if (!hit[b]) swz[b] = 0x5A;
        memset(swz2, POISON, (size_t)(sw + GUARD));
        ok = fp4_sf_convert(ctx, rows, k, swz, FP4_SF_SWIZZLED_128x4, swz2, FP4_SF_SWIZZLED_128x4, NULL) == FP4_OK;
        for (int64_t b = 0; b < sw; b++) ok &= swz2[b] == (hit[b] ? swz[b] : 0);
        memset(back, POISON, (size_t)(lin + GUARD));
        ok &= fp4_sf_convert(ctx, rows, k, src, FP4_SF_LINEAR, back, FP4_SF_LINEAR, NULL) == FP4_OK &&
              memcmp(back, src, (size_t)lin) == 0 && back[lin] == POISON;
        tu_case(ok, "sf_convert same layout %lld x %lld: a copy (swizzled padding written 0)", (long long)rows,
                (long long)k);
        free(src);
        free(back);
        free(swz);
        free(swz2);
        free(hit);
    }

    /* bad arguments: INVALID_ARGUMENT naming the argument, nothing written */
    uint8_t a[64 * 4], b[512 + GUARD];
    memset(a, 1, sizeof a);
    static const struct {
        int64_t rows, k;
        int src_null, dst_null, src_layout, dst_layout, overlap;
        const char *what, *names;
    } bad[] = {
        {0, 64, 0, 0, 0, 1, 0, "rows=0", "rows"},
        {-4, 64, 0, 0, 0, 1, 0, "rows=-4", "rows"},
        {4, 24, 0, 0, 0, 1, 0, "k=24", "k"},
        {4, 0, 0, 0, 0, 1, 0, "k=0", "k"},
        {4, 64, 1, 0, 0, 1, 0, "src=NULL", "src"},
        {4, 64, 0, 1, 0, 1, 0, "dst=NULL", "dst"},
        {4, 64, 0, 0, 7, 1, 0, "src_layout=7", "src_layout"},
        {4, 64, 0, 0, 0, -1, 0, "dst_layout=-1", "dst_layout"},
        {4, 64, 0, 0, 0, 0, 1, "dst = src + 1 (overlap)", "overlap"},
        {INT64_MAX / 2, 64, 0, 0, 0, 1, 0, "rows=INT64_MAX/2 (overflow)", "overflow"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(b, POISON, sizeof b);
        uint8_t *dst = bad[i].overlap ? a + 1 : b;
        const fp4_status st = fp4_sf_convert(ctx, bad[i].rows, bad[i].k, bad[i].src_null ? NULL : a,
                                             (fp4_sf_layout)bad[i].src_layout, bad[i].dst_null ? NULL : dst,
                                             (fp4_sf_layout)bad[i].dst_layout, NULL);
        int untouched = 1;
        for (size_t j = 0; j < sizeof b; j++) untouched &= b[j] == POISON;
        for (size_t j = 0; j < sizeof a; j++) untouched &= a[j] == 1;
        const char *msg = fp4_last_error(ctx);
        if (!tu_case(st == FP4_ERR_INVALID_ARGUMENT && untouched && strstr(msg, bad[i].names),
                     "sf_convert %s -> INVALID_ARGUMENT naming %s, nothing written", bad[i].what, bad[i].names))
            printf("  %s \"%s\"%s\n", fp4_status_name(st), msg, untouched ? "" : ", AN OUTPUT WAS WRITTEN");
    }
    const fp4_status st = fp4_sf_convert(NULL, 4, 64, a, FP4_SF_LINEAR, b, FP4_SF_SWIZZLED_128x4, NULL);
    tu_case(st == FP4_ERR_INVALID_ARGUMENT && strstr(fp4_last_error(NULL), "ctx"),
            "sf_convert ctx=NULL -> INVALID_ARGUMENT");
}

/* ---- the quantizer's global scale read through a pointer (fp4gemm.h, docs/format.md) ------- */

/* Quantizes 2 rows x 32 (4 blocks: finite, with +Inf, with -Inf and NaN, all zero) with the
 * global scale read from *gs_ptr. */
static fp4_status quantize_gs_ptr(fp4_ctx *ctx, const float *gs_ptr, float gs_value, uint8_t q[32], uint8_t sf[4],
                                  uint32_t *flag) {
    static float x[64];
    for (int i = 0; i < 64; i++) x[i] = (float)(i % 7) - 3.0f;
    x[16 + 5] = INFINITY;
    x[32 + 2] = -INFINITY;
    x[32 + 9] = NAN;
    for (int i = 48; i < 64; i++) x[i] = 0.0f;
    fp4_quant_desc d;
    fp4_quant_desc_init(&d);
    d.rows = 2;
    d.k = 32;
    d.in = x;
    d.global_scale = gs_value;
    d.global_scale_ptr = gs_ptr;
    d.out_q = q;
    d.out_sf = sf;
    d.nonfinite_flag = flag;
    *flag = 0;
    return fp4_quantize(ctx, &d);
}

static int is_nan_scale(uint8_t b) { return (b & 0x7F) == 0x7F; }

static void test_global_scale_pointer(fp4_ctx *ctx) {
    uint8_t q[32], sf[4], qm[32], sfm[4];
    uint32_t flag = 0;
    // gs = 0 (fp4_global_scale of a tensor with an Inf): Inf blocks 448, the rest 0, all decode to 0
    const float zero = 0.0f;
    int ok = quantize_gs_ptr(ctx, &zero, 1.0f, q, sf, &flag) == FP4_OK && flag == 1;
    ok &= sf[0] == 0x00 && sf[1] == 0x7E && sf[2] == 0x7E && sf[3] == 0x00;
    for (int i = 0; i < 64; i++) {
        const uint8_t code = i & 1 ? q[i / 2] >> 4 : q[i / 2] & 15;
        ok &= ref_e2m1_value(code) * ref_e4m3_value(sf[i / 16]) == 0.0;
    }
    if (!tu_case(ok, "quantize gs = 0 by pointer: blocks with an Inf get scale 0x7E (448, not NaN), the others 0; "
                     "every element decodes to 0; nonfinite_flag set"))
        printf("  scales %02X %02X %02X %02X flag %u\n", sf[0], sf[1], sf[2], sf[3], flag);

    // other values no check can catch: never a NaN scale; an Inf block saturates unless gs < 0
    static const float odd[] = {NAN, -0.0f, INFINITY, -5.0f, -INFINITY};
    for (int i = 0; i < 5; i++) {
        memset(sf, POISON, sizeof sf);
        ok = quantize_gs_ptr(ctx, &odd[i], 1.0f, q, sf, &flag) == FP4_OK && flag == 1;
        for (int b = 0; b < 4; b++) ok &= !is_nan_scale(sf[b]);
        if (!(odd[i] < 0.0f)) ok &= sf[1] == 0x7E && sf[2] == 0x7E;
        ok &= sf[3] == 0x00 || sf[3] == 0x80; /* all-zero block: scale 0 */
        if (!tu_case(ok, "quantize gs = %g by pointer: no NaN scale byte%s", (double)odd[i],
                     odd[i] < 0.0f ? "" : ", Inf blocks 0x7E"))
            printf("  scales %02X %02X %02X %02X\n", sf[0], sf[1], sf[2], sf[3]);
    }
    // a valid gs by pointer: the same bytes as by value; an Inf block's scale saturates to 0x7E
    const float ten = 10.0f;
    ok = quantize_gs_ptr(ctx, &ten, 1.0f, q, sf, &flag) == FP4_OK &&
         quantize_gs_ptr(ctx, NULL, 10.0f, qm, sfm, &flag) == FP4_OK && memcmp(q, qm, 32) == 0 &&
         memcmp(sf, sfm, 4) == 0 && sf[1] == 0x7E && sf[2] == 0x7E;
    tu_case(ok, "quantize gs = 10 by pointer == by value; the Inf blocks' scale saturates to 0x7E");
}

int main(void) {
    const uint64_t seed = tu_seed(0xF0F0A11CE5ull);
    tu_begin("test_format", seed);
    tu_rng rng;
    tu_rng_seed(&rng, seed);
    test_e2m1(&rng);
    test_e4m3(&rng);
    test_half_types(&rng);
    test_nibbles(&rng);
    test_offsets();
    fp4_ctx *ctx = NULL;
    if (tu_ok(fp4_create(&ctx, -1), NULL, "fp4_create(-1)")) {
        test_sf_convert(ctx, &rng);
        test_global_scale_pointer(ctx);
    } else {
        tu_case(0, "create a CPU context");
    }
    fp4_destroy(ctx);
    return tu_finish();
}

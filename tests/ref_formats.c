/*
 * ref_formats.c - independent references for the formats: formulas and brute force in
 * double, deliberately NOT src/format.h, so the library is tested against something else.
 */
#include "ref_formats.h"

#include <float.h>
#include <math.h>
#include <string.h>

const double k_e2m1_mag[8] = {0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0};

uint32_t f32_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

float bits_f32(uint32_t u) {
    float x;
    memcpy(&x, &u, 4);
    return x;
}

int sign_bit(float x) { return (int)(f32_bits(x) >> 31); }

double ref_e2m1_value(uint8_t code) { return (code & 8) ? -k_e2m1_mag[code & 7] : k_e2m1_mag[code & 7]; }

uint8_t ref_e2m1_encode(float x) {
    if (isnan(x)) return 0;
    const double a = fabs((double)x);
    int best = 7;
    if (a <= 6.0) {
        double best_d = INFINITY;
        for (int c = 0; c < 8; c++) {
            const double d = fabs(a - k_e2m1_mag[c]);
            if (d < best_d || (d == best_d && (c & 1) == 0)) {
                best_d = d;
                best = c;
            }
        }
    }
    return (uint8_t)((sign_bit(x) ? 8 : 0) | best);
}

double ref_e4m3_value(uint8_t code) {
    const int e = (code >> 3) & 15, m = code & 7;
    double v;
    if (e == 15 && m == 7)
        v = NAN;
    else if (e == 0)
        v = ldexp((double)m, -9);
    else
        v = ldexp(1.0 + m / 8.0, e - 7);
    return (code & 0x80) ? -v : v;
}

uint8_t ref_e4m3_encode(float x) {
    const uint8_t sign = sign_bit(x) ? 0x80 : 0;
    if (isnan(x)) return 0x7F;
    const double a = fabs((double)x);
    int best = 0x7E;
    if (a <= 448.0) {
        double best_d = INFINITY;
        for (int c = 0; c <= 0x7E; c++) {
            const double d = fabs(a - ref_e4m3_value((uint8_t)c));
            if (d < best_d || (d == best_d && (c & 1) == 0)) {
                best_d = d;
                best = c;
            }
        }
    }
    return (uint8_t)(sign | best);
}

double ref_f16_value(uint16_t h) {
    const int e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 31)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = ldexp((double)m, -24);
    else
        v = ldexp(1.0 + m / 1024.0, e - 15);
    return (h & 0x8000) ? -v : v;
}

double ref_bf16_value(uint16_t h) {
    const int e = (h >> 7) & 255, m = h & 127;
    double v;
    if (e == 255)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = ldexp((double)m, -133);
    else
        v = ldexp(1.0 + m / 128.0, e - 127);
    return (h & 0x8000) ? -v : v;
}

uint32_t ref_round_monotone(double a, uint32_t last, double (*val)(uint16_t), double over) {
    if (a >= over) return last + 1;
    uint32_t lo = 0, hi = last + 1; /* val(lo) <= a < val(hi) (val(last+1) = over) */
    while (hi - lo > 1) {
        const uint32_t mid = (lo + hi) / 2;
        if (val((uint16_t)mid) <= a)
            lo = mid;
        else
            hi = mid;
    }
    const double vlo = val((uint16_t)lo);
    const double vhi = hi == last + 1 ? over : val((uint16_t)hi);
    const double dlo = a - vlo, dhi = vhi - a;
    if (dlo < dhi) return lo;
    if (dhi < dlo) return hi;
    return (lo & 1) ? hi : lo;
}

uint16_t ref_f32_to_f16(float x) {
    if (isnan(x)) return 0x7E00;
    const uint16_t s = sign_bit(x) ? 0x8000 : 0;
    if (isinf(x)) return (uint16_t)(s | 0x7C00);
    return (uint16_t)(s | ref_round_monotone(fabs((double)x), 0x7BFF, ref_f16_value, 65536.0));
}

uint16_t ref_f32_to_bf16(float x) {
    if (isnan(x)) return 0x7FC0;
    const uint16_t s = sign_bit(x) ? 0x8000 : 0;
    if (isinf(x)) return (uint16_t)(s | 0x7F80);
    return (uint16_t)(s | ref_round_monotone(fabs((double)x), 0x7F7F, ref_bf16_value, ldexp(1.0, 128)));
}

int64_t ref_sf_offset(int64_t m, int64_t kb, int64_t k, fp4_sf_layout layout) {
    if (layout == FP4_SF_LINEAR) return m * (k / 16) + kb;
    const int64_t kt = (k / 16 + 3) / 4;
    return (m / 128) * (kt * 512) + (kb / 4) * 512 + (m % 32) * 16 + ((m % 128) / 32) * 4 + (kb % 4);
}

int64_t ref_sf_bytes(int64_t rows, int64_t k, fp4_sf_layout layout) {
    if (layout == FP4_SF_LINEAR) return rows * (k / 16);
    return (rows + 127) / 128 * 128 * ((k / 16 + 3) / 4 * 4);
}

/* ---- quantization recipes ------------------------------------------------------------- */

static float block_vmax(const float x[16], int *nonfinite) {
    float vmax = 0.0f;
    *nonfinite = 0;
    for (int i = 0; i < 16; i++) {
        if (!isfinite(x[i])) *nonfinite = 1;
        if (!isnan(x[i]) && fabsf(x[i]) > vmax) vmax = fabsf(x[i]);
    }
    return vmax;
}

int ref_recipe_flashinfer(const float x[16], float gs, uint8_t *sf, uint8_t codes[16]) {
    int nonfinite;
    const float vmax = block_vmax(x, &nonfinite);
    const float one_sixth = 1.0f / 6.0f;
    const float gs_times_one_sixth = gs * one_sixth;
    const float sf_f32 = vmax == 0.0f ? 0.0f : vmax * gs_times_one_sixth;
    *sf = ref_e4m3_encode(sf_f32);
    float out_scale = 0.0f;
    if (vmax != 0.0f) {
        const float inv_gs = 1.0f / gs;
        const float denom = (float)ref_e4m3_value(*sf) * inv_gs;
        const float q = 1.0f / denom; /* +Inf when the scale is 0 */
        out_scale = (isnan(q) || q > FLT_MAX) ? FLT_MAX : q;
    }
    for (int i = 0; i < 16; i++) codes[i] = ref_e2m1_encode(x[i] * out_scale);
    return nonfinite;
}

int ref_recipe_flashinfer_old(const float x[16], float gs, uint8_t *sf, uint8_t codes[16]) {
    int nonfinite;
    const float vmax = block_vmax(x, &nonfinite);
    const float gs_over_6 = gs / 6.0f;
    *sf = ref_e4m3_encode(vmax * gs_over_6);
    float out_scale = 0.0f;
    if (*sf != 0) {
        const float inv_gs = 1.0f / gs;
        out_scale = 1.0f / ((float)ref_e4m3_value(*sf) * inv_gs);
        if (!isfinite(out_scale)) out_scale = FLT_MAX;
    }
    for (int i = 0; i < 16; i++) codes[i] = ref_e2m1_encode(x[i] * out_scale);
    return nonfinite;
}

int ref_recipe_modelopt(const float x[16], float ws2, uint8_t *sf, uint8_t codes[16]) {
    int nonfinite;
    const float vmax = block_vmax(x, &nonfinite);
    const float six_ws2 = 6.0f * ws2;
    float s = vmax / six_ws2;
    if (s == 0.0f) s = 1.0f;
    if (!isnan(s)) s = s < ldexpf(1.0f, -9) ? ldexpf(1.0f, -9) : s > 448.0f ? 448.0f : s;
    *sf = ref_e4m3_encode(s);
    const float divisor = (float)ref_e4m3_value(*sf) * ws2;
    for (int i = 0; i < 16; i++) {
        const float y = x[i] / divisor;
        codes[i] = (uint8_t)((y < 0.0f ? 8 : 0) | ref_e2m1_encode(fabsf(y)));
    }
    return nonfinite;
}

float ref_load_elem(const void *base, fp4_dtype t, int64_t i) {
    if (t == FP4_DTYPE_F32) return ((const float *)base)[i];
    const uint16_t h = ((const uint16_t *)base)[i];
    return (float)(t == FP4_DTYPE_F16 ? ref_f16_value(h) : ref_bf16_value(h));
}

void ref_store_elem(void *base, fp4_dtype t, int64_t i, float x) {
    if (t == FP4_DTYPE_F32)
        ((float *)base)[i] = x;
    else
        ((uint16_t *)base)[i] = t == FP4_DTYPE_F16 ? ref_f32_to_f16(x) : ref_f32_to_bf16(x);
}

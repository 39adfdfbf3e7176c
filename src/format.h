/*
 * format.h - the NVFP4 element and scale formats: one plain definition of every encode,
 * decode and offset, shared by the CPU reference (C) and the CUDA kernels (CUDA C), so that
 * both compute the same bits. See docs/format.md.
 *
 * Everything here is integer arithmetic or IEEE float operations whose results are exact
 * (scaling by powers of two, subtracting an integer part), so a host compiler and nvcc give
 * identical results, contracted into an FMA or not.
 */
#ifndef FP4_FORMAT_H
#define FP4_FORMAT_H

#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#define FP4_HD __host__ __device__ __forceinline__
#else
#define FP4_HD static inline
#endif

FP4_HD uint32_t fp4_f32_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

FP4_HD float fp4_bits_f32(uint32_t u) {
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* ---- E2M1: bit 3 sign, bits 2..1 exponent (bias 1), bit 0 mantissa ------------------- */

/* Magnitudes of codes 0..7: 0, 0.5, 1, 1.5, 2, 3, 4, 6. */
FP4_HD float fp4_e2m1_decode(uint8_t code) {
    /* value * 2 for codes 0..7: 0 1 2 3 4 6 8 12 */
    const uint32_t twice = (0xC8643210u >> (4 * (code & 7))) & 0xF;
    const float mag = (float)twice * 0.5f;
    return (code & 8) ? -mag : mag;
}

/* Round-to-nearest-even onto the E2M1 grid, saturating to +-6. The sign bit is the input's
 * (a negative value that rounds to 0 gives code 8, -0). NaN gives code 0. */
FP4_HD uint8_t fp4_e2m1_encode(float x) {
    const uint32_t u = fp4_f32_bits(x);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return 0; /* NaN */
    const uint8_t sign = (uint8_t)((u >> 28) & 8);
    const float a = fp4_bits_f32(u & 0x7FFFFFFFu);
    uint8_t code;
    /* ties go to the even code: 0.25->0, 0.75->1, 1.25->1, 1.75->2, 2.5->2, 3.5->4, 5->4 */
    if (a <= 0.25f)      code = 0;
    else if (a < 0.75f)  code = 1;
    else if (a <= 1.25f) code = 2;
    else if (a < 1.75f)  code = 3;
    else if (a <= 2.5f)  code = 4;
    else if (a < 3.5f)   code = 5;
    else if (a <= 5.0f)  code = 6;
    else                 code = 7;
    return (uint8_t)(sign | code);
}

/* ---- E4M3 (OCP e4m3fn): bias 7, max 448, subnormals down to 2^-9, 0x7F/0xFF NaN ------- */

FP4_HD float fp4_e4m3_decode(uint8_t code) {
    const uint32_t exp = (code >> 3) & 0xF;
    const uint32_t mant = code & 7;
    float mag;
    if (exp == 15 && mant == 7) {
        mag = fp4_bits_f32(0x7FC00000u); /* NaN */
    } else if (exp == 0) {
        mag = (float)mant * (1.0f / 512.0f); /* mant * 2^-9, exact */
    } else {
        /* (8 + mant) * 2^(exp - 10): build the float directly */
        mag = fp4_bits_f32(((exp + 120u) << 23) | (mant << 20));
    }
    return (code & 0x80) ? -mag : mag;
}

/* Round-to-nearest-even, saturating to +-448 (Inf included). NaN gives 0x7F whatever its
 * sign bit: the sign of a NaN made by arithmetic differs between x86 (negative default NaN)
 * and the GPU (positive), and scales are non-negative. */
FP4_HD uint8_t fp4_e4m3_encode(float x) {
    const uint32_t u = fp4_f32_bits(x);
    const uint8_t sign = (uint8_t)((u >> 24) & 0x80);
    const uint32_t a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return 0x7F; /* NaN */
    if (a >= 0x43E00000u) return (uint8_t)(sign | 0x7E); /* >= 448: saturate */
    const int exp = (int)(a >> 23) - 127;
    if (exp < -6) {
        /* subnormal range: a multiple of 2^-9; scaling by 512 is exact */
        const float s = fp4_bits_f32(a) * 512.0f;
        uint32_t i = (uint32_t)s;
        const float frac = s - (float)i;
        if (frac > 0.5f || (frac == 0.5f && (i & 1))) i++;
        return (uint8_t)(sign | i); /* i == 8 is 2^-6, the smallest normal: code 0x08 */
    }
    /* normal: keep 3 of the 23 mantissa bits, round to nearest even */
    uint32_t keep = (a >> 20) & 7;
    const uint32_t rest = a & 0xFFFFFu;
    int e = exp;
    if (rest > 0x80000u || (rest == 0x80000u && (keep & 1))) keep++;
    if (keep == 8) {
        keep = 0;
        e++;
    }
    uint32_t code = ((uint32_t)(e + 7) << 3) | keep;
    if (code > 0x7E) code = 0x7E;
    return (uint8_t)(sign | code);
}

/* The E4M3 code of the flashinfer recipe's block scale vmax * (gs / 6) (step 2). vmax ignores
 * NaN, so the product is NaN only for an Inf in the block times gs = 0 (fp4_global_scale's
 * value for a tensor with an Inf, given through global_scale_ptr) or for a NaN gs: that
 * saturates to 448 (0x7E) as +Inf does, so that the recipe never writes a NaN scale. */
FP4_HD uint8_t fp4_block_scale_code(float sf_f32) {
    const uint8_t code = fp4_e4m3_encode(sf_f32);
    return code == 0x7F ? (uint8_t)0x7E : code;
}

/* ---- BF16 and F16 (round-to-nearest-even from F32) ------------------------------------ */

FP4_HD float fp4_bf16_to_f32(uint16_t h) { return fp4_bits_f32((uint32_t)h << 16); }

FP4_HD uint16_t fp4_f32_to_bf16(float x) {
    const uint32_t u = fp4_f32_bits(x);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1)) >> 16);
}

FP4_HD float fp4_f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    const uint32_t exp = (h >> 10) & 0x1F;
    const uint32_t mant = h & 0x3FF;
    if (exp == 0x1F) return fp4_bits_f32(sign | 0x7F800000u | (mant << 13));
    if (exp == 0) {
        const float m = (float)mant * (1.0f / 16777216.0f); /* mant * 2^-24, exact */
        return (h & 0x8000) ? -m : m;
    }
    return fp4_bits_f32(sign | ((exp + 112u) << 23) | (mant << 13));
}

FP4_HD uint16_t fp4_f32_to_f16(float x) {
    const uint32_t u = fp4_f32_bits(x);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    const uint32_t a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return (uint16_t)(sign | 0x7E00); /* NaN */
    if (a >= 0x477FF000u) return (uint16_t)(sign | 0x7C00); /* rounds past 65504: Inf */
    if (a < 0x38800000u) {
        /* f16 subnormal (or zero): a multiple of 2^-24; scaling is exact */
        const float s = fp4_bits_f32(a) * 16777216.0f;
        uint32_t i = (uint32_t)s;
        const float frac = s - (float)i;
        if (frac > 0.5f || (frac == 0.5f && (i & 1))) i++;
        return (uint16_t)(sign | i);
    }
    const uint32_t keep = a >> 13;
    const uint32_t rest = a & 0x1FFFu;
    uint32_t r = keep - (112u << 10);
    if (rest > 0x1000u || (rest == 0x1000u && (keep & 1))) r++;
    return (uint16_t)(sign | r);
}

/* ---- Scale-factor layouts ------------------------------------------------------------- */

FP4_HD int64_t fp4_ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Byte offset of (row, k-block kb) for a [*, k] tensor; kb < k/16. */
FP4_HD int64_t fp4_sf_offset_linear(int64_t row, int64_t kb, int64_t k) {
    return row * (k / 16) + kb;
}

FP4_HD int64_t fp4_sf_offset_swizzled(int64_t row, int64_t kb, int64_t k) {
    const int64_t kt = fp4_ceil_div(k / 16, 4); /* 4-wide k-block tiles */
    return (row / 128) * (kt * 512) + (kb / 4) * 512 + (row % 32) * 16 + ((row % 128) / 32) * 4 +
           (kb % 4);
}

/* The one layout choice: the offset of (row, kb) in the swizzled layout if `swizzled`, else in
 * the linear one. (Kernels carry the layout as a flag; host code passes
 * layout == FP4_SF_SWIZZLED_128x4.) */
FP4_HD int64_t fp4_sf_offset_at(int swizzled, int64_t row, int64_t kb, int64_t k) {
    return swizzled ? fp4_sf_offset_swizzled(row, kb, k) : fp4_sf_offset_linear(row, kb, k);
}

/* ---- Global scale ----------------------------------------------------------------------- */

/* a / b, correctly rounded on the host and on the device whatever nvcc's flags. */
FP4_HD float fp4_div_rn(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fdiv_rn(a, b);
#else
    return a / b;
#endif
}

/* The encode global scale of a tensor from its amax (NaN ignored): gs = 448*6 / amax; 1 if
 * amax == 0; FLT_MAX if the quotient overflows; 0 if amax is Inf. */
FP4_HD float fp4_global_scale_from_amax(float amax) {
    if (amax == 0.0f) return 1.0f;
    const float gs = fp4_div_rn(448.0f * 6.0f, amax);
    return (fp4_f32_bits(gs) & 0x7F800000u) == 0x7F800000u ? fp4_bits_f32(0x7F7FFFFFu) : gs;
}

/* ModelOpt's decode global scale (its weight_scale_2 / input_scale): ws2 = fp32(amax / 2688),
 * amax / (6 * 448) as nvidia-modelopt computes it in float32. */
FP4_HD float fp4_modelopt_ws2_from_amax(float amax) { return fp4_div_rn(amax, 2688.0f); }

/* Nibble `idx` (element index along k) of a packed row. */
FP4_HD uint8_t fp4_get_nibble(const uint8_t *row, int64_t idx) {
    const uint8_t byte = row[idx >> 1];
    return (idx & 1) ? (uint8_t)(byte >> 4) : (uint8_t)(byte & 0xF);
}

#endif /* FP4_FORMAT_H */

/*
 * quantize_fast.cuh - the element rules of the fast quantizer / dequantizer kernels
 * (quantize.cu), written as FP4_HD functions so that a host program can compare them with
 * format.h's reference rules.
 *
 * Each one returns exactly what the reference rule returns on the inputs its precondition
 * admits; only the instruction count differs (no compare chain, no per-element division):
 *  - fp4_e2m1_encode_finite(y) == fp4_e2m1_encode(y) for every non-NaN float y (checked on all
 *    2^32 - 2^24 + 2 non-NaN bit patterns when it was written).
 *  - fp4_dequant_bases / fp4_dequant_elem: (e2m1(c) * s) / gs, for every code c, when
 *    fp4_dequant_bases returns true (the argument is in the comments below).
 */
#ifndef FP4_QUANTIZE_FAST_CUH
#define FP4_QUANTIZE_FAST_CUH

#include "format.h"

#include <math.h>

/* x * y rounded once, never contracted into an FMA with a neighbouring addition. */
FP4_HD float fp4_mul_rn(float x, float y) {
#ifdef __CUDA_ARCH__
    return __fmul_rn(x, y);
#else
    return x * y;
#endif
}

/* E2M1 round-to-nearest-even with saturation of |y|, for a y that is not NaN: returns
 * kE2M1RoundBits + the magnitude code (0..7). a = min(|y|, 6) is rounded to the E2M1 grid in
 * one rounding: on [0, 2) the grid is the multiples of 0.5, on [2, 4) of 1, on [4, 6] of 2,
 * so the code is rint(a * m) + 2j with (m, j) = (2, 0), (1, 1), (0.5, 2), j = the exponent of
 * a above 1. fma(a, m, 1.5 * 2^23 + 2j) rounds a * m (exact: m is a power of two) to an
 * integer once, to even on ties (1.5 * 2^23 + 2j is even), and its low mantissa bits are
 * that integer plus 2j. */
#define FP4_E2M1_ROUND_BITS 0x4B400000u /* bits of 1.5 * 2^23 */
FP4_HD uint32_t fp4_e2m1_round_bits(float y) {
    const float a = fminf(fabsf(y), 6.0f);
    int32_t j = (int32_t)(fp4_f32_bits(a) >> 23) - 127; /* <= 0 below 2, 1 on [2,4), 2 */
    j = j < 0 ? 0 : j;
    const float m = fp4_bits_f32(0x40000000u - ((uint32_t)j << 23));        /* 2, 1, 0.5 */
    const float c = fp4_bits_f32(FP4_E2M1_ROUND_BITS + 2u * (uint32_t)j);   /* + 2j */
    return fp4_f32_bits(fmaf(a, m, c));
}

/* fp4_e2m1_encode(y) for every y that is not NaN (the sign from the sign bit). */
FP4_HD uint32_t fp4_e2m1_encode_finite(float y) {
    return ((fp4_f32_bits(y) >> 28) & 8u) | (fp4_e2m1_round_bits(y) - FP4_E2M1_ROUND_BITS);
}

/* The magnitudes of the 8 codes of y[0..7] packed into a word (y[i] in bits 4i..4i+2; the
 * sign bits 4i+3 zero): fp4_e2m1_round_bits summed with their bias (one shift-add each; the
 * magnitudes occupy disjoint nibbles), the sum of the 8 shifted biases taken off once,
 * modulo 2^32. */
FP4_HD uint32_t fp4_e2m1_pack8_mag(const float y[8]) {
    uint32_t mag = 0, bias = 0;
    for (int i = 0; i < 8; i++) {
        mag += fp4_e2m1_round_bits(y[i]) << (4 * i);
        bias += FP4_E2M1_ROUND_BITS << (4 * i); /* folded by the compiler */
    }
    return mag - bias;
}

/* The 8 codes of y[0..7] packed into a word, each fp4_e2m1_encode_finite(y[i]). */
FP4_HD uint32_t fp4_e2m1_pack8_finite(const float y[8]) {
    uint32_t sign = 0;
    for (int i = 0; i < 8; i++) sign |= (fp4_f32_bits(y[i]) >> 31) << (4 * i + 3);
    return fp4_e2m1_pack8_mag(y) | sign;
}

/* The flashinfer recipe's scale byte and its value: fp4_block_scale_code(x) and
 * fp4_e4m3_decode of it, for every float x (checked on all 2^32 bit patterns when it was
 * written), without branches on the common path. Normal range (|x| >= 2^-6): round the
 * mantissa to 3 bits to nearest even on the bits, saturate at 448; the bits are the value's.
 * Below: a multiple of 2^-9, rint(|x| * 512) by the fma of fp4_e2m1_round_bits. */
FP4_HD uint32_t fp4_block_scale_fast(float x, float *value) {
    const uint32_t u = fp4_f32_bits(x);
    const uint32_t a = u & 0x7FFFFFFFu, sign = (u >> 24) & 0x80u;
    if (a > 0x7F800000u) { /* NaN: saturated to 448, as fp4_block_scale_code does */
        *value = 448.0f;
        return 0x7Eu;
    }
    uint32_t code;
    float mag;
    if (a >= 0x3C800000u) {
        uint32_t r = a + 0x7FFFFu + ((a >> 20) & 1u);
        r = (r < 0x43E00000u ? r : 0x43E00000u) & 0xFFF00000u; /* 448 = 0x43E00000 */
        code = (r >> 20) - (120u << 3);
        mag = fp4_bits_f32(r);
    } else {
        const float t = fmaf(fp4_bits_f32(a), 512.0f, 0x1.8p23f); /* a * 512 < 8: exact */
        code = fp4_f32_bits(t) - FP4_E2M1_ROUND_BITS;
        mag = (float)code * (1.0f / 512.0f); /* exact */
    }
    *value = sign ? -mag : mag;
    return sign | code;
}

/* Dequantization of one block: the reference computes (e2m1(c) * s) / gs per element, where
 * the product is exact. Every E2M1 magnitude is 2^e or 1.5 * 2^e (e in -1..2), and
 * (2^e * x) / gs = 2^e * (x / gs) exactly when no intermediate or result is subnormal and
 * the scaling does not overflow differently (it does not: rounding commutes with scaling by
 * 2^e up to the overflow threshold, and overflow happens at the same magnitude). So with
 * d1 = s / gs and d15 = (1.5 * s) / gs, element c is p(c) * (c in {3,5,7} ? d15 : d1), with
 * p(c) = +-{0, 0.5, 1, 1, 2, 2, 4, 4}[c & 7]: one exact multiplication per element.
 * Preconditions, checked here: d1 finite (s and gs not NaN, gs not 0, no overflow of s/gs)
 * and d1 == 0 or |d1| >= 2^-125 (so 0.5 * d1 and every multiple stays normal). d15 may
 * overflow to Inf: then (1.5 * s * 2^e) / gs does too. Returns false where a block must
 * take the per-element division. */
FP4_HD bool fp4_dequant_bases(float s, float gs, float *d1, float *d15) {
    *d1 = fp4_div_rn(s, gs);
    *d15 = fp4_div_rn(fp4_mul_rn(1.5f, s), gs); /* 1.5 * s is exact: s has 4 significant bits */
    const float a = fabsf(*d1);
    return a <= 3.40282347e38f && (a == 0.0f || a >= 0x1p-125f);
}

/* Element with code c (a nibble) of a block whose bases fp4_dequant_bases gave. */
FP4_HD float fp4_dequant_elem(uint32_t c, float d1, float d15) {
    const uint32_t m = c & 7u;
    /* p(c): 0 for m = 0, else 2^((m >> 1) - 1) (0.5, 1, 1, 2, 2, 4, 4), with c's sign */
    const uint32_t p_bits = (m ? (126u + (m >> 1)) << 23 : 0u) | ((c & 8u) << 28);
    const float base = (m & 1u) && m > 1u ? d15 : d1;
    return fp4_mul_rn(fp4_bits_f32(p_bits), base);
}

/* PTX prmt.b32 (the default mode): byte k of the result is byte sel[4k+2..4k] of the 8 bytes
 * {b, a} (a's bytes are 0..3), or, when sel[4k+3] is set, that byte's bit 7 copied over the
 * whole byte. Emulated on the host, so that the dequantizer's selection logic can be tested
 * there. */
FP4_HD uint32_t fp4_prmt(uint32_t a, uint32_t b, uint32_t sel) {
#ifdef __CUDA_ARCH__
    uint32_t d;
    asm("prmt.b32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(sel));
    return d;
#else
    const uint64_t x = ((uint64_t)b << 32) | a;
    uint32_t d = 0;
    for (int k = 0; k < 4; k++) {
        const uint32_t s = (sel >> (4 * k)) & 0xFu;
        uint32_t byte = (uint32_t)(x >> (8 * (s & 7u))) & 0xFFu;
        if (s & 8u) byte = (byte & 0x80u) ? 0xFFu : 0u;
        d |= byte << (8 * k);
    }
    return d;
#endif
}

/* The 16-bit outputs (BF16 or F16 bits) of the 8 codes of a packed word w (code i in bits
 * 4i..4i+3), two per output word (code 2j in the low half of out[j]), from a block's table
 * lut: lut[i / 2] holds in its half i % 2 the output of magnitude code i (0..7). A negative
 * code's output is its magnitude's with the sign bit set (the conversions to BF16 and F16
 * round symmetrically; no output of the fast path is NaN). Each pair of outputs is two byte
 * permutes of the table (magnitudes 0-3 and 4-7), a blend on bit 2 of the codes and the sign:
 * seven instructions for two elements, the selectors built for four pairs at once. */
FP4_HD void fp4_dequant_lut8(uint32_t w, const uint32_t lut[4], uint32_t out[4]) {
    // byte j of sel_even / sel_odd: the permute selector (2i, 2i + 1) of code 2j / 2j + 1,
    // i = code & 3; bytes of bit2_* and sign_*: bit 2 and bit 3 of those codes in bit 7
    const uint32_t sel_even = ((w << 1) & 0x06060606u) * 0x11u + 0x10101010u;
    const uint32_t sel_odd = ((w >> 3) & 0x06060606u) * 0x11u + 0x10101010u;
    const uint32_t bit2_even = (w << 5) & 0x80808080u, bit2_odd = (w << 1) & 0x80808080u;
    const uint32_t sign_even = (w << 4) & 0x80808080u, sign_odd = w & 0x80808080u;
#ifdef __CUDA_ARCH__ /* device pass: the host compiler knows no unroll pragma */
#pragma unroll
#endif
    for (uint32_t j = 0; j < 4; j++) {
        const uint32_t sel = fp4_prmt(sel_even, sel_odd, j | ((4u + j) << 4));
        const uint32_t lo = fp4_prmt(lut[0], lut[1], sel);
        const uint32_t hi = fp4_prmt(lut[2], lut[3], sel);
        const uint32_t take_hi = fp4_prmt(bit2_even, bit2_odd,
                                          (8u | j) | ((8u | j) << 4) | ((12u + j) << 8) |
                                              ((12u + j) << 12));
        const uint32_t sign = fp4_prmt(sign_even, sign_odd, (j << 4) | ((4u + j) << 12));
        out[j] = ((hi & take_hi) | (lo & ~take_hi)) ^ (sign & 0x80008000u);
    }
}

/* fp4_f32_to_bf16 for a y that is not NaN (no NaN test). */
FP4_HD uint32_t fp4_f32_to_bf16_nonnan(float y) {
    const uint32_t u = fp4_f32_bits(y);
    return (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
}

#endif /* FP4_QUANTIZE_FAST_CUH */

/*
 * ref_formats.h - independent references for the formats: formulas and brute force in
 * double, deliberately NOT src/format.h, so the library is tested against something else.
 * test_format.c checks format.h against these; test_quant.c and test_gemm_ref.c build their
 * expected values from them. Written from NVFP4.md, the OCP MX spec (E4M3) and IEEE 754.
 */
#ifndef FP4_TEST_REF_FORMATS_H
#define FP4_TEST_REF_FORMATS_H

#include "fp4gemm.h"

#include <stdint.h>

/* NVFP4.md's E2M1 table, codes 0..7 (the magnitudes; codes 8..15 are their negatives). */
extern const double k_e2m1_mag[8];

/* The bits of a float and back, and its sign bit (1 for -0.0 and negative NaNs too). */
uint32_t f32_bits(float x);
float bits_f32(uint32_t u);
int sign_bit(float x);

/* E2M1 code 0..15 -> value by table look-up (code 8 is -0.0). */
double ref_e2m1_value(uint8_t code);
/* Brute force: the nearest of the 8 magnitudes by |a - v| in double, ties to the even code;
 * beyond 6 saturate; the sign is the input's sign bit; NaN is code 0. */
uint8_t ref_e2m1_encode(float x);

/* OCP e4m3fn by formula: (1 + m/8) * 2^(e-7), subnormal m * 2^-9, 0x7F/0xFF NaN. */
double ref_e4m3_value(uint8_t code);
/* Brute force over the 127 finite non-negative codes: nearest by |a - v| in double, ties to
 * the even code, saturating to 448 (0x7E, Inf included); sign kept; NaN is 0x7F whatever
 * its sign. */
uint8_t ref_e4m3_encode(float x);

/* F16 and BF16 (8 exponent bits, bias 127, 7 mantissa bits) by formula. */
double ref_f16_value(uint16_t h);
double ref_bf16_value(uint16_t h);

/* Round a finite |a| onto a monotone table of non-negative codes 0..last (values by `val`),
 * with the value `over` standing for code last+1 (Inf: 2^128 or 65536, the IEEE overflow
 * rule): binary search for the bracket, then nearest, ties to the even code. */
uint32_t ref_round_monotone(double a, uint32_t last, double (*val)(uint16_t), double over);

/* f32 -> F16 / BF16 by ref_round_monotone: sign kept, Inf -> Inf, overflow rounds to Inf;
 * NaN -> the canonical positive quiet NaN (0x7E00 / 0x7FC0). */
uint16_t ref_f32_to_f16(float x);
/* Element i of an F32/F16/BF16 array as float (exact), and x stored into one (rounded to
 * nearest even by the references above). */
float ref_load_elem(const void *base, fp4_dtype t, int64_t i);
void ref_store_elem(void *base, fp4_dtype t, int64_t i, float x);
uint16_t ref_f32_to_bf16(float x);

/* NVFP4.md's scale-factor offset of (row m, block kb) for a K of k, and the buffer size of
 * `rows` rows, written out again from the contract text, both layouts. */
int64_t ref_sf_offset(int64_t m, int64_t kb, int64_t k, fp4_sf_layout layout);
int64_t ref_sf_bytes(int64_t rows, int64_t k, fp4_sf_layout layout);

/* ---- the quantization recipes (docs/format.md), one block of 16 floats -----------------
 * Written from the recipe text with the brute-force encoders above; each returns the scale
 * byte and the 16 codes (element i's code in codes[i]), and 1 if an element was NaN or Inf. */

/* flashinfer: vmax = max |x| (NaN ignored); sf = e4m3(vmax * (gs * (1.0f/6.0f))) (0 when
 * vmax = 0); out_scale = vmax == 0 ? 0 : min(1.0f / (float(sf) * (1.0f / gs)), FLT_MAX);
 * codes e2m1(x * out_scale), sign bit kept. gs is the encode global scale. */
int ref_recipe_flashinfer(const float x[16], float gs, uint8_t *sf, uint8_t codes[16]);
/* The recipe before issue 15 (NVFP4.md's "History"): sf = e4m3(vmax * (gs / 6.0f)),
 * out_scale = 0 for a zero scale. Only to show that a test case tells the two apart. */
int ref_recipe_flashinfer_old(const float x[16], float gs, uint8_t *sf, uint8_t codes[16]);
/* modelopt: s = vmax / (6.0f * ws2); s = 1 if s == 0; clamped to [2^-9, 448] (NaN kept);
 * sf = e4m3(s); codes: y = x / (float(sf) * ws2), magnitude e2m1(|y|), sign bit from y < 0.
 * ws2 is the decode global scale. */
int ref_recipe_modelopt(const float x[16], float ws2, uint8_t *sf, uint8_t codes[16]);

#endif /* FP4_TEST_REF_FORMATS_H */

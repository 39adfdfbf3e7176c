/* quant_ref.c - the CPU reference quantizer (both recipes), dequantizer and global scales:
 * docs/format.md's exact-math steps, one block at a time. Every other quantizer is tested
 * against this. */
#include "format.h"
#include "internal.h"
#include "quant_recipe.h"

#include <float.h>
#include <math.h>
#include <string.h>

float fp4_load_as_f32(const void *base, fp4_dtype dtype, int64_t index) {
    switch (dtype) {
    case FP4_DTYPE_F32: return ((const float *)base)[index];
    case FP4_DTYPE_F16: return fp4_f16_to_f32(((const uint16_t *)base)[index]);
    case FP4_DTYPE_BF16: return fp4_bf16_to_f32(((const uint16_t *)base)[index]);
    default: return NAN;
    }
}

void fp4_store_from_f32(void *base, fp4_dtype dtype, int64_t index, float x) {
    switch (dtype) {
    case FP4_DTYPE_F32: ((float *)base)[index] = x; break;
    case FP4_DTYPE_F16: ((uint16_t *)base)[index] = fp4_f32_to_f16(x); break;
    case FP4_DTYPE_BF16: ((uint16_t *)base)[index] = fp4_f32_to_bf16(x); break;
    default: break;
    }
}

static int64_t sf_offset(fp4_sf_layout layout, int64_t row, int64_t kb, int64_t k) {
    return fp4_sf_offset_at(layout == FP4_SF_SWIZZLED_128x4, row, kb, k);
}

/* Recipe flashinfer, steps 2-3 (docs/format.md): the scale byte of a block whose largest
 * magnitude is vmax, and the factor that maps the block onto the E2M1 grid. Every operation
 * is one IEEE float32 operation in the order FlashInfer and Transformer Engine write it. */
static uint8_t block_scale_flashinfer(float vmax, float gs, float *out_scale) {
    /* vmax * (gs * fp32(1/6)); FlashInfer skips it for vmax = 0 (so a NaN or Inf gs gives 0) */
    const float sf_f32 = vmax == 0.0f ? 0.0f : vmax * (gs * FP4_ONE_SIXTH_F32);
    const uint8_t code = fp4_block_scale_code(sf_f32); /* never NaN: Inf * gs 0 -> 448 */
    const float sf = fp4_e4m3_decode(code);
    /* a zero scale with vmax != 0 gives 1/0 = Inf, clamped: nonzero elements become +-6 */
    *out_scale = vmax == 0.0f ? 0.0f : fminf(1.0f / (sf * (1.0f / gs)), FLT_MAX);
    return code;
}

/* Recipe modelopt, the scale: s = vmax / fp32(6 * ws2), 1.0 for an all-zero block, clamped
 * to [2^-9, 448] (a NaN passes, as torch.clamp lets it), rounded to E4M3. Returns the byte
 * and the divisor fp32(sf * ws2) of the block's elements. */
static uint8_t block_scale_modelopt(float vmax, float ws2, float *divisor) {
    float s = vmax / (6.0f * ws2);
    if (s == 0.0f) s = 1.0f;
    if (s < 0x1p-9f) s = 0x1p-9f;
    if (s > 448.0f) s = 448.0f;
    const uint8_t code = fp4_e4m3_encode(s);
    *divisor = fp4_e4m3_decode(code) * ws2;
    return code;
}

int fp4_ref_quantize(const fp4_quant_desc *desc, float gs) {
    const int64_t rows = desc->rows, k = desc->k;
    const int modelopt = desc->recipe == FP4_QUANT_RECIPE_MODELOPT;
    uint8_t *q = (uint8_t *)desc->out_q;   /* (rows, k/2) bytes */
    uint8_t *sf = (uint8_t *)desc->out_sf; /* fp4_sf_bytes(rows, k, layout) */
    int nonfinite = 0;
    if (desc->sf_layout == FP4_SF_SWIZZLED_128x4)
        memset(sf, 0, (size_t)fp4_sf_bytes(rows, k, desc->sf_layout)); /* padding is 0 */

    for (int64_t r = 0; r < rows; r++) {
        for (int64_t kb = 0; kb < k / 16; kb++) {
            /* 1. the block's largest magnitude (fmaxf ignores NaN) */
            float x[16];
            float vmax = 0.0f;
            for (int i = 0; i < 16; i++) {
                x[i] = fp4_load_as_f32(desc->in, desc->in_dtype, r * desc->ld_in + kb * 16 + i);
                if (!isfinite(x[i])) nonfinite = 1;
                vmax = fmaxf(vmax, fabsf(x[i]));
            }
            /* 2-3. the scale byte; 4. the elements, two per byte, even k in the low nibble */
            uint8_t codes[16], sf_code;
            if (modelopt) {
                float divisor;
                sf_code = block_scale_modelopt(vmax, gs, &divisor);
                for (int i = 0; i < 16; i++) codes[i] = fp4_e2m1_encode_modelopt(x[i] / divisor);
            } else {
                float out_scale;
                sf_code = block_scale_flashinfer(vmax, gs, &out_scale);
                for (int i = 0; i < 16; i++) codes[i] = fp4_e2m1_encode(x[i] * out_scale);
            }
            uint8_t *qb = q + r * (k / 2) + kb * 8;
            for (int i = 0; i < 8; i++) qb[i] = (uint8_t)(codes[2 * i] | (codes[2 * i + 1] << 4));
            sf[sf_offset(desc->sf_layout, r, kb, k)] = sf_code;
        }
    }
    return nonfinite;
}

void fp4_ref_dequantize(const fp4_dequant_desc *desc, float gs) {
    const int64_t k = desc->k;
    const uint8_t *q = (const uint8_t *)desc->q;
    const uint8_t *sf = (const uint8_t *)desc->sf;
    for (int64_t r = 0; r < desc->rows; r++) {
        for (int64_t i = 0; i < k; i++) {
            const float s = fp4_e4m3_decode(sf[sf_offset(desc->sf_layout, r, i / 16, k)]);
            const float v = fp4_e2m1_decode(fp4_get_nibble(q + r * (k / 2), i));
            fp4_store_from_f32(desc->out, desc->out_dtype, r * desc->ld_out + i, v * s / gs);
        }
    }
}

float fp4_ref_amax(int64_t rows, int64_t k, fp4_dtype dtype, const void *in, int64_t ld_in) {
    float amax = 0.0f;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < k; i++) amax = fmaxf(amax, fabsf(fp4_load_as_f32(in, dtype, r * ld_in + i)));
    return amax;
}

/*
 * quant_recipe.h - the pieces of the quantization recipes that the CPU reference
 * (src/quant_ref.c) and the GPU kernel (src/cuda/quantize.cu) share, so that both use the same
 * constant and the same element rule. The recipes themselves are in docs/format.md.
 */
#ifndef FP4_QUANT_RECIPE_H
#define FP4_QUANT_RECIPE_H

#include "format.h"

/* fp32(1/6) = 0x3E2AAAAB, the constant FlashInfer's `fp4_max_inv` and Transformer Engine's
 * `fp4_max_inv` hold (1.0f / 6.0f, folded by the compiler). Written out so that no compiler
 * can fold it differently. */
#define FP4_ONE_SIXTH_F32 0x1.555556p-3f

/* Recipe modelopt's E2M1 rule (ModelOpt's NVFP4QTensor._cast_fp4): round to nearest even with
 * saturation like fp4_e2m1_encode, but the sign comes from y < 0, so -0.0 gives code 0 (a
 * negative value that rounds to zero still gives code 8). NaN gives code 0 (fp4gemm's rule;
 * ModelOpt has none: its NaN input makes NaN scales). */
FP4_HD uint8_t fp4_e2m1_encode_modelopt(float y) {
    return y == 0.0f ? (uint8_t)0 : fp4_e2m1_encode(y);
}

#endif /* FP4_QUANT_RECIPE_H */

/* gemm_ref.c - the cpu_ref backend: the obvious triple loop, accumulated in double.
 * Every product of two NVFP4 elements is exact in double, so this is the exact sum up to
 * the final rounding to the output type. */
#include "format.h"
#include "internal.h"

/* Element (row, kk) of an operand: E2M1 * E4M3 scale, or a BF16/F16 value (W4A16's A). */
static double operand(const void *x, const void *sf, fp4_sf_layout layout, fp4_dtype dtype,
                      int64_t row, int64_t kk, int64_t k) {
    if (dtype != FP4_DTYPE_E2M1) return (double)fp4_load_as_f32(x, dtype, row * k + kk);
    const uint8_t *packed = (const uint8_t *)x + row * (k / 2); /* (rows, k/2) bytes */
    const int64_t off = layout == FP4_SF_SWIZZLED_128x4 ? fp4_sf_offset_swizzled(row, kk / 16, k)
                                                        : fp4_sf_offset_linear(row, kk / 16, k);
    return (double)fp4_e2m1_decode(fp4_get_nibble(packed, kk)) *
           (double)fp4_e4m3_decode(((const uint8_t *)sf)[off]);
}

void fp4_ref_gemm(const fp4_gemm_desc *d, float alpha) {
    for (int64_t m = 0; m < d->m; m++) {
        for (int64_t n = 0; n < d->n; n++) {
            double acc = 0.0;
            for (int64_t kk = 0; kk < d->k; kk++)
                acc += operand(d->a, d->a_sf, d->a_sf_layout, d->a_dtype, m, kk, d->k) *
                       operand(d->b, d->b_sf, d->b_sf_layout, FP4_DTYPE_E2M1, n, kk, d->k);
            fp4_store_from_f32(d->d, d->d_dtype, m * d->ldd + n, (float)((double)alpha * acc));
        }
    }
}

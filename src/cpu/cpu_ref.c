/* cpu_ref.c - the cpu_ref backend: the obvious triple loop, accumulated in double.
 * Every product of two NVFP4 elements is exact in double, so this is the exact sum up to
 * the final rounding to the output type. One config, "default". */
#include "backend.h"
#include "format.h"

#include <stdio.h>

/* The E4M3 scale of (row, k-block kb) of an operand; 1 for W4A16's unscaled A. */
static double block_scale(const void *sf, fp4_sf_layout layout, fp4_dtype dtype, int64_t row,
                          int64_t kb, int64_t k) {
    if (dtype != FP4_DTYPE_E2M1) return 1.0;
    const int64_t off = fp4_sf_offset_at(layout == FP4_SF_SWIZZLED_128x4, row, kb, k);
    return (double)fp4_e4m3_decode(((const uint8_t *)sf)[off]);
}

/* Element kk of a row, before its block scale: an E2M1 value or a BF16/F16 value. */
static double element(const void *x, fp4_dtype dtype, int64_t row, int64_t kk, int64_t k) {
    if (dtype != FP4_DTYPE_E2M1) return (double)fp4_load_as_f32(x, dtype, row * k + kk);
    const uint8_t *packed = (const uint8_t *)x + row * (k / 2); /* (rows, k/2) bytes */
    return (double)fp4_e2m1_decode(fp4_get_nibble(packed, kk));
}

void fp4_ref_gemm(const fp4_gemm_desc *d, float alpha) {
    for (int64_t m = 0; m < d->m; m++) {
        for (int64_t n = 0; n < d->n; n++) {
            double acc = 0.0;
            for (int64_t kb = 0; kb < d->k / 16; kb++) {
                const double sa = block_scale(d->a_sf, d->a_sf_layout, d->a_dtype, m, kb, d->k);
                const double sb = block_scale(d->b_sf, d->b_sf_layout, FP4_DTYPE_E2M1, n, kb, d->k);
                for (int64_t kk = kb * 16; kk < kb * 16 + 16; kk++)
                    acc += element(d->a, d->a_dtype, m, kk, d->k) * sa *
                           (element(d->b, FP4_DTYPE_E2M1, n, kk, d->k) * sb);
            }
            fp4_store_from_f32(d->d, d->d_dtype, m * d->ldd + n, (float)((double)alpha * acc));
        }
    }
}

/* ---- the backend's entries --------------------------------------------------------------- */

static const char *cpu_ref_why_not(const fp4_ctx *ctx, const fp4_gemm_desc *desc, char *buf,
                                   size_t len) {
    if (ctx->device < 0) return NULL;
    snprintf(buf, len, "runs on CPU contexts (device -1); this context is on CUDA device %d",
             ctx->device);
    return buf;
}

static int cpu_ref_config_count(void) { return 1; }

static const char *cpu_ref_config_name(int config) { return config == 0 ? "default" : NULL; }

static const char *cpu_ref_config_why_not(const fp4_ctx *ctx, const fp4_gemm_desc *desc,
                                          int config, char *buf, size_t len) {
    return NULL; /* any problem that passed the argument checks */
}

static int cpu_ref_default_config(const fp4_ctx *ctx, const fp4_gemm_desc *desc) { return 0; }

static fp4_status cpu_ref_run(fp4_ctx *ctx, const fp4_gemm_desc *desc, int config) {
    fp4_ref_gemm(desc, desc->alpha_ptr ? *desc->alpha_ptr : desc->alpha);
    return FP4_OK;
}

const fp4_backend_ops fp4_cpu_ref_ops = {
    FP4_BACKEND_CPU_REF, "cpu_ref", NULL, NULL, cpu_ref_why_not,
    cpu_ref_config_count, cpu_ref_config_name, cpu_ref_config_why_not, cpu_ref_default_config,
    cpu_ref_run,
};

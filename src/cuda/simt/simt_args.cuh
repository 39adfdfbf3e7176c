/*
 * simt_args.cuh - the arguments of the cuda_simt kernels (tiled: simt_gemm.cu, small-M:
 * simt_gemv.cu), made once from a validated, defaulted GEMM descriptor, and the launchers
 * the two files share. The configs and their limits: simt_configs.h.
 */
#ifndef FP4_SIMT_ARGS_CUH
#define FP4_SIMT_ARGS_CUH

#include "cuda/cuda_util.cuh"
#include "cuda/simt/simt_configs.h"

struct SimtArgs {
    int64_t m, n, k;
    const void *a;          /* E2M1: (m, k/2) bytes; BF16/F16: (m, k) elements */
    const uint8_t *a_sf;    /* E2M1 only */
    const uint8_t *b;       /* (n, k/2) bytes */
    const uint8_t *b_sf;
    void *d;                /* (m, ldd) elements */
    int64_t ldd;
    float alpha;
    const float *alpha_ptr; /* device pointer or NULL */
    bool a_swizzled, b_swizzled;
    bool a_vec; /* A's loads may be vectors: 8-byte (E2M1) or 16-byte (BF16/F16) aligned */
    bool b_vec; /* B's 8-byte loads are aligned */
};

static inline SimtArgs simt_args_from_desc(const fp4_gemm_desc *desc) {
    const bool w4a4 = desc->a_dtype == FP4_DTYPE_E2M1;
    SimtArgs p;
    p.m = desc->m;
    p.n = desc->n;
    p.k = desc->k;
    p.a = desc->a;
    p.a_sf = static_cast<const uint8_t *>(desc->a_sf);
    p.b = static_cast<const uint8_t *>(desc->b);
    p.b_sf = static_cast<const uint8_t *>(desc->b_sf);
    p.d = desc->d;
    p.ldd = desc->ldd;
    p.alpha = desc->alpha;
    p.alpha_ptr = desc->alpha_ptr;
    p.a_swizzled = w4a4 && desc->a_sf_layout == FP4_SF_SWIZZLED_128x4;
    p.b_swizzled = desc->b_sf_layout == FP4_SF_SWIZZLED_128x4;
    /* rows of A and B start at multiples of 8 bytes (k/2, k a multiple of 16) and rows of a
     * 16-bit A at multiples of 32 bytes: only the base pointers can break the alignment */
    p.a_vec = ((uintptr_t)desc->a % (w4a4 ? 8 : 16)) == 0;
    p.b_vec = ((uintptr_t)desc->b % 8) == 0;
    return p;
}

/* Calls launch(integral_constant<AT>, integral_constant<DT>) for the runtime A type (E2M1,
 * BF16, F16) and D type (F32, F16, BF16, through fp4_dispatch_float_dtype). False for others. */
template <class F>
static inline bool simt_dispatch_types(fp4_dtype a_dtype, fp4_dtype d_dtype, F &&launch) {
    auto with_a = [&](auto at) {
        return fp4_dispatch_float_dtype(d_dtype, [&](auto dt) { launch(at, dt); });
    };
    switch (a_dtype) {
    case FP4_DTYPE_E2M1: return with_a(std::integral_constant<fp4_dtype, FP4_DTYPE_E2M1>());
    case FP4_DTYPE_BF16: return with_a(std::integral_constant<fp4_dtype, FP4_DTYPE_BF16>());
    case FP4_DTYPE_F16: return with_a(std::integral_constant<fp4_dtype, FP4_DTYPE_F16>());
    default: return false;
    }
}

/* The small-M launcher (simt_gemv.cu): rows_a = SIMT_GEMV_ROWS of a gemv_mr* config, on the
 * current device. */
fp4_status fp4_cuda_simt_gemv(fp4_ctx *ctx, const fp4_gemm_desc *desc, int rows_a);

#endif /* FP4_SIMT_ARGS_CUH */

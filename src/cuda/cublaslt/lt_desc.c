/* lt_desc.c - the cuBLASLt description of a row-major GEMM (lt_plan.h): pure functions, no
 * cuBLASLt call, so that tests/test_cublaslt_desc.c checks them without a GPU. */
#include "cuda/cublaslt/lt_plan.h"

#include <stdio.h>

int fp4_lt_out_type(fp4_dtype d_dtype) {
    switch (d_dtype) {
    case FP4_DTYPE_F32: return CUDA_R_32F;
    case FP4_DTYPE_F16: return CUDA_R_16F;
    case FP4_DTYPE_BF16: return CUDA_R_16BF;
    default: return -1;
    }
}

const char *fp4_lt_describe(const fp4_lt_problem *p, fp4_lt_desc *out) {
    if (p->m < 1 || p->n < 1 || p->k < 1) return "m, n and k must be positive";
    if (p->ldd < p->n) return "ldd must be >= n";
    const int out_type = fp4_lt_out_type(p->d_dtype);
    if (out_type < 0) return "the output type must be F32, F16 or BF16";
#if FP4_LT_HAVE_NVFP4
    const int fp4 = p->in_type == CUDA_R_4F_E2M1;
#else
    const int fp4 = 0;
#endif
    if (!fp4 && p->in_type != CUDA_R_8F_E4M3 && p->in_type != CUDA_R_16BF)
        return "the input type must be E2M1 (with cuBLASLt 12.8 or newer), E4M3 or BF16";
    if (fp4 && !p->block_scaled) return "E2M1 inputs need their block scales (VEC16_UE4M3)";
    if (!fp4 && p->block_scaled) return "block scales (VEC16_UE4M3) are for E2M1 inputs only";

    fp4_lt_desc d;
    d.compute_type = CUBLAS_COMPUTE_32F; /* FP32 accumulation, FP32 alpha/beta */
    d.scale_type = CUDA_R_32F;
    d.pointer_mode = p->alpha_on_device ? CUBLASLT_POINTER_MODE_DEVICE : CUBLASLT_POINTER_MODE_HOST;
    // the operand swap: D^T [n, m] = B [n, k] . A^T [k, m], in cuBLASLt's column-major terms
    d.transa = CUBLAS_OP_T; /* cuBLASLt's A = our B: k x n, ld k, used as its transpose */
    d.transb = CUBLAS_OP_N; /* cuBLASLt's B = our A: k x m, ld k */
    d.set_scale_modes = p->block_scaled;
#if FP4_LT_HAVE_NVFP4
    d.a_scale_mode = p->block_scaled ? CUBLASLT_MATMUL_MATRIX_SCALE_VEC16_UE4M3
                                     : CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F;
    d.b_scale_mode = d.a_scale_mode;
#else
    d.a_scale_mode = d.b_scale_mode = (cublasLtMatmulMatrixScale_t)0;
#endif
    d.a.type = p->in_type;
    d.a.rows = (uint64_t)p->k;
    d.a.cols = (uint64_t)p->n;
    d.a.ld = p->k;
    d.b.type = p->in_type;
    d.b.rows = (uint64_t)p->k;
    d.b.cols = (uint64_t)p->m;
    d.b.ld = p->k;
    d.d.type = (cudaDataType_t)out_type; /* D [m, n] row-major with ldd = n x m, ld ldd */
    d.d.rows = (uint64_t)p->n;
    d.d.cols = (uint64_t)p->m;
    d.d.ld = p->ldd;
    d.c = d.d; /* beta = 0: C is D's layout and is not read */
    *out = d;
    return NULL;
}

fp4_lt_operands fp4_lt_swap_operands(const void *a, const void *a_scale, const void *b,
                                     const void *b_scale, void *d) {
    fp4_lt_operands o;
    o.a = b;
    o.a_scale = b_scale;
    o.b = a;
    o.b_scale = a_scale;
    o.c = d;
    o.d = d;
    return o;
}

/* ---- the cublaslt backend's problem ------------------------------------------------------ */

static int misaligned16(const void *p) { return ((uintptr_t)p & 15u) != 0; }

const char *fp4_cublaslt_layout_why_not(const fp4_gemm_desc *desc, char *buf, size_t len) {
    if (desc->a_dtype != FP4_DTYPE_E2M1) {
        snprintf(buf, len,
                 "W4A4 only: A is %s, and cuBLASLt has no GEMM of NVFP4 weights with %s "
                 "activations (W4A16); cuda_mma and cuda_simt run it",
                 fp4_dtype_name(desc->a_dtype), fp4_dtype_name(desc->a_dtype));
        return buf;
    }
    const int a_linear = desc->a_sf_layout != FP4_SF_SWIZZLED_128x4;
    const int b_linear = desc->b_sf_layout != FP4_SF_SWIZZLED_128x4;
    if (a_linear || b_linear) {
        snprintf(buf, len,
                 "needs swizzled scale factors (cuBLASLt reads VEC16_UE4M3 scales only in "
                 "128x4 tiles); %s linear: convert with fp4_sf_convert",
                 a_linear && b_linear ? "a_sf and b_sf are" : a_linear ? "a_sf is" : "b_sf is");
        return buf;
    }
    if (desc->k % 32 != 0) {
        snprintf(buf, len,
                 "k = %lld is not a multiple of 32 (cuBLASLt's FP4 rows must be whole 16-byte "
                 "units)",
                 (long long)desc->k);
        return buf;
    }
    const struct {
        const char *name;
        const void *p;
    } ptrs[] = {{"a", desc->a}, {"b", desc->b}, {"a_sf", desc->a_sf}, {"b_sf", desc->b_sf},
                {"d", desc->d}};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) {
        if (misaligned16(ptrs[i].p)) {
            snprintf(buf, len, "%s = %p is not 16-byte aligned (cuBLASLt's FP4 GEMM needs it)",
                     ptrs[i].name, ptrs[i].p);
            return buf;
        }
    }
    return NULL;
}

fp4_lt_problem fp4_cublaslt_problem(const fp4_gemm_desc *desc) {
    fp4_lt_problem p;
    p.m = desc->m;
    p.n = desc->n;
    p.k = desc->k;
#if FP4_LT_HAVE_NVFP4
    p.in_type = CUDA_R_4F_E2M1;
#else
    p.in_type = (cudaDataType_t)-1; /* fp4_lt_describe refuses it */
#endif
    p.block_scaled = 1;
    p.d_dtype = desc->d_dtype;
    p.ldd = desc->ldd;
    p.alpha_on_device = desc->alpha_ptr != NULL;
    return p;
}

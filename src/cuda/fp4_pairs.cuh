/*
 * fp4_pairs.cuh - device helpers on packed FP16x2 / BF16x2 pairs held as 32-bit words, shared
 * by the tensor-core backends (src/cuda/mma/, src/cuda/wgmma/), whose decoded NVFP4 operands
 * travel as such words (MMA fragments).
 */
#ifndef FP4_CUDA_PAIRS_CUH
#define FP4_CUDA_PAIRS_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include <string.h>

/* x * s lane by lane, as BF16x2 (BF16) or FP16x2: one HMUL2, round to nearest even (exact for
 * the decoded codes times their scales, which is how the backends use it). */
template <bool BF16>
__device__ __forceinline__ uint32_t fp4_mul_pair(uint32_t x, uint32_t s) {
    uint32_t r;
    if constexpr (BF16) {
        __nv_bfloat162 a, b;
        memcpy(&a, &x, 4);
        memcpy(&b, &s, 4);
        const __nv_bfloat162 c = __hmul2(a, b);
        memcpy(&r, &c, 4);
    } else {
        __half2 a, b;
        memcpy(&a, &x, 4);
        memcpy(&b, &s, 4);
        const __half2 c = __hmul2(a, b);
        memcpy(&r, &c, 4);
    }
    return r;
}

#endif /* FP4_CUDA_PAIRS_CUH */

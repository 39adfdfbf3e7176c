/*
 * kernels.cu - the few device kernels `fp4gemm bench` needs: random operands generated
 * on the device, and the BF16 -> FP8 E4M3 conversion of the cublas_fp8 baseline (the scan for
 * unwritten outputs is the library's, fp4_count_nonfinite). Nothing here is timed.
 */
#include "kernels.h"

#include "format.h"

#include <cuda_runtime.h>

namespace {

constexpr int kThreads = 256;

/* Blocks for a grid-stride loop over n elements. */
unsigned grid_for(int64_t n) {
    const int64_t blocks = (n + kThreads - 1) / kThreads;
    return (unsigned)(blocks < 4096 ? (blocks > 0 ? blocks : 1) : 4096);
}

/* splitmix64 of the counter: a counter-based generator, one independent draw per element. */
__device__ __forceinline__ uint64_t hash64(uint64_t seed, uint64_t i) {
    uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

__global__ void fill_bf16_kernel(uint16_t *out, int64_t n, uint64_t seed, float scale,
                                 int outliers) {
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const uint64_t h = hash64(seed, (uint64_t)i);
        // Box-Muller on two 24-bit uniforms: u1 in (0, 1], u2 in [0, 1)
        const float u1 = ((float)(h >> 40) + 1.0f) * (1.0f / 16777216.0f);
        const float u2 = (float)((h >> 16) & 0xFFFFFF) * (1.0f / 16777216.0f);
        float v = sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2) * scale;
        if (outliers && (h & 63) == 0) v *= 20.0f; // about 1 in 64
        out[i] = fp4_f32_to_bf16(v);
    }
}

__global__ void copy_sm_kernel(uint4 *dst, const uint4 *src, int64_t n4) {
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    for (; i + 3 * stride < n4; i += 4 * stride) {
        const uint4 a = src[i], b = src[i + stride], c = src[i + 2 * stride],
                    d = src[i + 3 * stride];
        dst[i] = a;
        dst[i + stride] = b;
        dst[i + 2 * stride] = c;
        dst[i + 3 * stride] = d;
    }
    for (; i < n4; i += stride) dst[i] = src[i];
}

__global__ void amax_bf16_kernel(const uint16_t *x, int64_t n, float *amax) {
    float m = 0.0f;
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        m = fmaxf(m, fabsf(fp4_bf16_to_f32(x[i]))); // fmaxf ignores a NaN
    for (int off = 16; off > 0; off >>= 1) m = fmaxf(m, __shfl_xor_sync(0xFFFFFFFFu, m, off));
    // NOTE: non-negative floats order like their bit patterns, so an integer atomicMax works
    if ((threadIdx.x & 31) == 0) atomicMax((unsigned int *)amax, __float_as_uint(m));
}

__global__ void fp8_scales_kernel(const float *amax, float *scale, float *inv_scale) {
    const float a = *amax;
    const bool usable = a > 0.0f && a <= 3.0e38f;
    *scale = usable ? a / 448.0f : 1.0f;
    *inv_scale = usable ? 448.0f / a : 1.0f;
}

__global__ void bf16_to_e4m3_kernel(const uint16_t *x, uint8_t *out, int64_t n,
                                    const float *inv_scale) {
    const float inv = *inv_scale;
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        out[i] = fp4_e4m3_encode(fp4_bf16_to_f32(x[i]) * inv);
}

} // namespace

extern "C" cudaError_t bench_fill_bf16(uint16_t *out, int64_t n, uint64_t seed, float scale,
                                       int outliers, cudaStream_t stream) {
    fill_bf16_kernel<<<grid_for(n), kThreads, 0, stream>>>(out, n, seed, scale, outliers);
    return cudaGetLastError();
}

__global__ void empty_kernel() {}

extern "C" cudaError_t bench_empty_kernel(cudaStream_t stream) {
    empty_kernel<<<1, 32, 0, stream>>>();
    return cudaGetLastError();
}

extern "C" cudaError_t bench_amax_bf16(const uint16_t *x, int64_t n, float *amax,
                                       cudaStream_t stream) {
    cudaError_t err = cudaMemsetAsync(amax, 0, sizeof(float), stream);
    if (err != cudaSuccess) return err;
    amax_bf16_kernel<<<grid_for(n), kThreads, 0, stream>>>(x, n, amax);
    return cudaGetLastError();
}

extern "C" cudaError_t bench_fp8_scales(const float *amax, float *scale, float *inv_scale,
                                        cudaStream_t stream) {
    fp8_scales_kernel<<<1, 1, 0, stream>>>(amax, scale, inv_scale);
    return cudaGetLastError();
}

extern "C" cudaError_t bench_bf16_to_e4m3(const uint16_t *x, uint8_t *out, int64_t n,
                                          const float *inv_scale, cudaStream_t stream) {
    bf16_to_e4m3_kernel<<<grid_for(n), kThreads, 0, stream>>>(x, out, n, inv_scale);
    return cudaGetLastError();
}

extern "C" cudaError_t bench_copy_sm(void *dst, const void *src, int64_t bytes, int sm_count,
                                     cudaStream_t stream) {
    const int64_t n4 = bytes / 16;
    const unsigned blocks = (unsigned)((sm_count > 0 ? sm_count : 1) * 8);
    copy_sm_kernel<<<blocks, 512, 0, stream>>>(static_cast<uint4 *>(dst),
                                                static_cast<const uint4 *>(src), n4);
    return cudaGetLastError();
}

/*
 * kernels.h - the device kernels of `fp4gemm bench` (tools/bench/kernels.cu), callable
 * from C. Each launches on `stream` and returns the launch's error (cudaGetLastError).
 */
#ifndef FP4_BENCH_KERNELS_H
#define FP4_BENCH_KERNELS_H

#include <cuda_runtime_api.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* n BF16 values, normal(0, scale) from a counter-based hash of (seed, index), so any size is
 * generated at memory speed and the same seed gives the same values. With `outliers`, about
 * 1 in 64 values is 20x larger (activation-like). */
cudaError_t bench_fill_bf16(uint16_t *out, int64_t n, uint64_t seed, float scale, int outliers,
                            cudaStream_t stream);

/* dst[0, bytes) = src[0, bytes) by the SMs (16-byte loads, 4 in flight per thread), bytes a
 * multiple of 64 and both pointers 16-byte aligned: the copy ceiling. NOTE: not
 * cudaMemcpyAsync, which inside a CUDA graph becomes a copy-engine node that moves about 2.7
 * TB/s on an H200 against about 4.2 TB/s for a kernel. */
cudaError_t bench_copy_sm(void *dst, const void *src, int64_t bytes, int sm_count,
                          cudaStream_t stream);

/* An empty kernel (one block of 32 threads): the cost of a launch, for comparisons. */
cudaError_t bench_empty_kernel(cudaStream_t stream);

/* *amax = max |x[i]| over n BF16 values (NaN ignored). Zeroes *amax first, stream-ordered. */
cudaError_t bench_amax_bf16(const uint16_t *x, int64_t n, float *amax, cudaStream_t stream);

/* Per-tensor FP8 scale from an amax: scale = amax / 448 (the decode scale that cuBLASLt's
 * A/B_SCALE_POINTER takes) and inv_scale = 448 / amax; both 1 if amax is 0 or not finite. */
cudaError_t bench_fp8_scales(const float *amax, float *scale, float *inv_scale,
                             cudaStream_t stream);

/* out[i] = e4m3(bf16 x[i] * *inv_scale), round to nearest even, saturating to +-448. */
cudaError_t bench_bf16_to_e4m3(const uint16_t *x, uint8_t *out, int64_t n,
                               const float *inv_scale, cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif /* FP4_BENCH_KERNELS_H */

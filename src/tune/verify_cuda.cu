/*
 * verify_cuda.cu - the device side of fp4_count_nonfinite: one grid-stride scan of a matrix
 * for NaN/Inf, counted with one atomic per thread that found any.
 */
#include "../cuda/cuda_util.cuh"
#include "tune.h"

namespace {

/* F16 (exponent 0x7C00) and BF16 (0x7F80): all-ones exponent is NaN or Inf. */
template <uint16_t ExpMask>
__global__ void count_nonfinite_16(const uint16_t *x, int64_t rows, int64_t cols, int64_t ld,
                                   unsigned long long *count) {
    unsigned long long local = 0;
    const int64_t total = rows * cols;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        const uint16_t h = x[(i / cols) * ld + i % cols];
        local += (h & ExpMask) == ExpMask;
    }
    if (local) atomicAdd(count, local);
}

__global__ void count_nonfinite_32(const uint32_t *x, int64_t rows, int64_t cols, int64_t ld,
                                   unsigned long long *count) {
    unsigned long long local = 0;
    const int64_t total = rows * cols;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        const uint32_t u = x[(i / cols) * ld + i % cols];
        local += (u & 0x7F800000u) == 0x7F800000u;
    }
    if (local) atomicAdd(count, local);
}

} // namespace

extern "C" fp4_status fp4_tune_cuda_count_nonfinite(fp4_ctx *ctx, const void *x, fp4_dtype dtype,
                                                    int64_t rows, int64_t cols, int64_t ld,
                                                    struct CUstream_st *stream_in,
                                                    int64_t *count) {
    fp4_status st = fp4_cuda_set_device(ctx);
    if (st != FP4_OK) return st;
    cudaStream_t stream = fp4_cuda_stream(stream_in);
    unsigned long long *dev_count = nullptr, host_count = 0;
    FP4_CUDA_TRY(ctx, cudaMalloc(&dev_count, sizeof *dev_count), "fp4_count_nonfinite: cudaMalloc");
    cudaError_t err = cudaMemsetAsync(dev_count, 0, sizeof *dev_count, stream);
    const int threads = 256;
    int sm_count = 0;
    if (cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, ctx->device) !=
        cudaSuccess)
        sm_count = 1;
    const unsigned blocks = fp4_cuda_grid_blocks(rows * cols, threads, sm_count);
    if (err == cudaSuccess) {
        fp4_cuda_clear_last_error();
        if (dtype == FP4_DTYPE_F32)
            count_nonfinite_32<<<blocks, threads, 0, stream>>>((const uint32_t *)x, rows, cols, ld,
                                                                dev_count);
        else if (dtype == FP4_DTYPE_F16)
            count_nonfinite_16<0x7C00><<<blocks, threads, 0, stream>>>((const uint16_t *)x, rows,
                                                                        cols, ld, dev_count);
        else
            count_nonfinite_16<0x7F80><<<blocks, threads, 0, stream>>>((const uint16_t *)x, rows,
                                                                        cols, ld, dev_count);
        err = cudaGetLastError();
    }
    if (err == cudaSuccess)
        err = cudaMemcpyAsync(&host_count, dev_count, sizeof host_count, cudaMemcpyDeviceToHost,
                              stream);
    if (err == cudaSuccess) err = cudaStreamSynchronize(stream);
    (void)cudaFree(dev_count);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return FP4_FAIL(ctx, fp4_cuda_status(err), "fp4_count_nonfinite: %s",
                        cudaGetErrorString(err));
    }
    *count = (int64_t)host_count;
    return FP4_OK;
}

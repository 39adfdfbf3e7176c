/*
 * sf_convert.cu - fp4_sf_convert on the GPU: rewrites the scale factors of a [rows, k] tensor
 * from one layout (linear or swizzled 128x4) into another. Any GPU from sm_70.
 *
 * One thread per byte of the destination, padding included: it reads the scale of its
 * (row, k-block) from the source's layout, or writes 0 in the swizzled padding. The same
 * loop serves all four layout pairs. Stream-ordered, no allocation, no synchronization.
 */
#include "cuda_util.cuh"

namespace {

constexpr int kThreads = 256;

__global__ void __launch_bounds__(kThreads)
    sf_convert_kernel(int64_t rows, int64_t k, const uint8_t *src, bool src_swizzled,
                      uint8_t *dst, bool dst_swizzled) {
    const int64_t kblocks = k / 16;
    const int64_t kb_grid = dst_swizzled ? fp4_ceil_div(kblocks, 4) * 4 : kblocks;
    const int64_t row_grid = dst_swizzled ? fp4_ceil_div(rows, 128) * 128 : rows;
    const int64_t total = row_grid * kb_grid;
    for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (int64_t)gridDim.x * blockDim.x) {
        const int64_t row = idx / kb_grid;
        const int64_t kb = idx - row * kb_grid;
        const bool inside = row < rows && kb < kblocks;
        dst[fp4_sf_offset_at(dst_swizzled, row, kb, k)] =
            inside ? src[fp4_sf_offset_at(src_swizzled, row, kb, k)] : (uint8_t)0;
    }
}

} // namespace

extern "C" fp4_status fp4_cuda_sf_convert(fp4_ctx *ctx, int64_t rows, int64_t k,
                                          const void *src, fp4_sf_layout src_layout, void *dst,
                                          fp4_sf_layout dst_layout,
                                          struct CUstream_st *stream_in) {
    fp4_status st = fp4_cuda_set_device(ctx);
    if (st != FP4_OK) return st;
    const int64_t work = fp4_sf_bytes(rows, k, dst_layout);
    const unsigned blocks = fp4_cuda_grid_blocks(work, kThreads, ctx->info.sm_count);
    fp4_cuda_clear_last_error();
    sf_convert_kernel<<<blocks, kThreads, 0, fp4_cuda_stream(stream_in)>>>(
        rows, k, static_cast<const uint8_t *>(src), src_layout == FP4_SF_SWIZZLED_128x4,
        static_cast<uint8_t *>(dst), dst_layout == FP4_SF_SWIZZLED_128x4);
    FP4_CUDA_CHECK_LAUNCH(ctx, "sf_convert kernel launch");
    return FP4_OK;
}

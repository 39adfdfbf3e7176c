/*
 * simt_gemv.cu - the small-M kernel of the `cuda_simt` backend (configs gemv_mr1/2/4/8, which
 * its heuristic picks for M <= 16: decode-size GEMMs). CUDA cores only, any GPU from sm_70
 * (fp16x2 arithmetic needs sm_53).
 *
 *   D[m, n] = alpha * sum_k A[m, k] * B[n, k]
 *   B is (N, K/2) bytes of E2M1 + E4M3 scales; A is E2M1 + scales (W4A4) or BF16/F16 (W4A16)
 *
 * With few rows of A the GEMM is a pass over the weight B: its speed is the speed at which B
 * streams in. So each warp owns kRowsPerWarp rows of B and walks K with one k-block (8 bytes of
 * B, 16 elements) per lane per step: 256 contiguous bytes per warp and row, no shared memory,
 * no barriers, and every lane keeps several independent loads in flight. The MR rows of A
 * (a template constant) are read from L1/L2 for each k-block; they are tiny and shared by all
 * warps. Partial sums are reduced across the warp with shuffles at the end.
 *
 * W4A4 arithmetic: E2M1 codes become fp16 by bit placement (no table, no conversion), and the
 * 16 products of a k-block are accumulated in fp16x2. NOTE: this is exact: every product of two
 * E2M1 values is a multiple of 1/4 up to 36, and 8 of them (one fp16 lane) sum to at most 288,
 * which fits fp16's 11-bit significand at that granularity. The k-block's sum is then scaled by
 * both E4M3 scales in FP32 (still exact) and accumulated in FP32: the Blackwell result up to the
 * order of the FP32 additions, as in the tiled kernel.
 */
#include "simt_args.cuh"

#include <cuda_fp16.h>
#include <type_traits>

namespace {

constexpr int kGemvWarps = 4;       /* warps per block */
constexpr int kRowsPerWarp = 2;     /* rows of B per warp */
constexpr int kGemvThreads = 32 * kGemvWarps;
constexpr int kGemvMaxRowsA = SIMT_GEMV_MAX_ROWS; /* rows of A per block (grid.y covers more) */

/* The 8 bytes (16 E2M1 codes) of k-block kb of a packed row. */
__device__ __forceinline__ uint2 load_block8(const uint8_t *row, int64_t kb, bool vec) {
    const uint8_t *p = row + kb * 8;
    if (vec) return __ldg(reinterpret_cast<const uint2 *>(p));
    uint2 w;
    w.x = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    w.y = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
    return w;
}

/* 8 E2M1 codes (one word) to 4 fp16x2 values times 2^-14: pair i holds codes i and i + 4.
 * An E2M1 code s|e1 e0|m placed at fp16 bits 15 | 11 10 | 9 is exactly its value * 2^-14
 * (exponent field e = the E2M1 exponent, subnormal when e = 0, like E2M1's own). */
__device__ __forceinline__ void e2m1x8_to_half2(uint32_t w, __half2 out[4]) {
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const uint32_t t = w >> (4 * i);
        const uint32_t h = ((t & 0x00070007u) << 9) | ((t & 0x00080008u) << 12);
        out[i] = *reinterpret_cast<const __half2 *>(&h);
    }
}

/* AT: A's type; DT: D's type; MR: rows of A per block (1, 2, 4 or 8).
 * Grid: x strides over groups of kRowsPerWarp rows of B (kGemvWarps groups a block),
 *       y over groups of MR rows of A. */
template <fp4_dtype AT, fp4_dtype DT, int MR>
__global__ void __launch_bounds__(kGemvThreads) sm70_simt_gemv_kernel(SimtArgs p) {
    constexpr int RW = kRowsPerWarp;
    const int lane = threadIdx.x % 32;
    const int warp = threadIdx.x / 32;
    const int64_t k = p.k, kblocks = k / 16;
    const int64_t m0 = (int64_t)blockIdx.y * MR;
    const int64_t groups = fp4_ceil_div(p.n, RW);
    const float alpha = p.alpha_ptr ? *p.alpha_ptr : p.alpha;
    const __half2 two14 = __floats2half2_rn(16384.0f, 16384.0f);

    // NOTE: a lane's k-block advances by 32 per step, so in both layouts its scale offset
    // advances by a constant (swizzled: 8 tiles of 512 bytes). Within a 32-row slice the
    // swizzled offset of row r + j is that of row r plus 16 j, and neither a block's MR rows of
    // A (m0 is a multiple of MR, MR | 32) nor a warp's RW rows of B (RW | 32) cross a slice.
    const int64_t b_sf_step = p.b_swizzled ? 8 * 512 : 32;
    const int64_t a_sf_step = p.a_swizzled ? 8 * 512 : 32;
    const int64_t b_sf_row = p.b_swizzled ? 16 : kblocks; /* + per row, inside a slice */
    const int64_t a_sf_row = p.a_swizzled ? 16 : kblocks;
    static_assert(32 % RW == 0 && 32 % MR == 0, "rows of A and B stay inside one 32-row slice");

    for (int64_t g = (int64_t)blockIdx.x * kGemvWarps + warp; g < groups;
         g += (int64_t)gridDim.x * kGemvWarps) {
        const int64_t n0 = g * RW;
        float acc[MR][RW];
#pragma unroll
        for (int r = 0; r < MR; r++)
#pragma unroll
            for (int j = 0; j < RW; j++) acc[r][j] = 0.0f;

        const uint8_t *b_blk = p.b + n0 * (k / 2) + (int64_t)lane * 8; /* row n0, k-block lane */
        int64_t b_sf = fp4_sf_offset_at(p.b_swizzled, n0, lane, k);
        int64_t a_sf = AT == FP4_DTYPE_E2M1 ? fp4_sf_offset_at(p.a_swizzled, m0, lane, k) : 0;

        // raw bytes of the warp's rows of B at one k-block: loaded a step ahead of their use
        uint2 w_next[RW];
        uint8_t s_next[RW];
        auto load_b = [&](const uint8_t *blk, int64_t sf_off) {
#pragma unroll
            for (int j = 0; j < RW; j++) {
                w_next[j] = make_uint2(0, 0);
                s_next[j] = 0;
                if (n0 + j < p.n) {
                    w_next[j] = load_block8(blk + j * (k / 2), 0, p.b_vec);
                    s_next[j] = __ldg(p.b_sf + sf_off + j * b_sf_row);
                }
            }
        };
        if (lane < kblocks) load_b(b_blk, b_sf);

        for (int64_t kb = lane; kb < kblocks;
             kb += 32, b_blk += 32 * 8, b_sf += b_sf_step, a_sf += a_sf_step) {
            // decode this step's k-block of B (values * 2^-14), then start the next step's loads
            __half2 b[RW][8];
            float sb[RW];
#pragma unroll
            for (int j = 0; j < RW; j++) {
                e2m1x8_to_half2(w_next[j].x, b[j]);
                e2m1x8_to_half2(w_next[j].y, b[j] + 4);
                sb[j] = fp4_e4m3_decode(s_next[j]);
            }
            if (kb + 32 < kblocks) load_b(b_blk + 32 * 8, b_sf + b_sf_step);
            // multiply with the same k-block of each row of A
#pragma unroll
            for (int r = 0; r < MR; r++) {
                const int64_t m = m0 + r;
                if (m >= p.m) break; /* the same for every lane */
                if constexpr (AT == FP4_DTYPE_E2M1) {
                    const uint8_t *a = static_cast<const uint8_t *>(p.a);
                    const uint2 w = load_block8(a + m * (k / 2), kb, p.a_vec);
                    const float sa = fp4_e4m3_decode(__ldg(p.a_sf + a_sf + r * a_sf_row));
                    __half2 av[8];
                    e2m1x8_to_half2(w.x, av);
                    e2m1x8_to_half2(w.y, av + 4);
#pragma unroll
                    for (int i = 0; i < 8; i++) av[i] = __hmul2(av[i], two14); /* exact values */
#pragma unroll
                    for (int j = 0; j < RW; j++) {
                        __half2 s = __float2half2_rn(0.0f);
#pragma unroll
                        for (int i = 0; i < 8; i++) s = __hfma2(av[i], b[j][i], s); /* exact */
                        const float blk = __low2float(s) + __high2float(s); /* sum * 2^-14 */
                        acc[r][j] = fmaf(blk, sa * sb[j] * 16384.0f, acc[r][j]);
                    }
                } else {
                    // 16-bit A, FP32 products: pair i of word q of B holds elements 8q + i
                    // (low) and 8q + i + 4 (high); b * 2^14 * sb is exact, so is a * that
                    float av[16];
                    fp4_load_block16<AT>(p.a, m * k + kb * 16, p.a_vec, av);
#pragma unroll
                    for (int j = 0; j < RW; j++) {
                        const float sbj = sb[j] * 16384.0f;
#pragma unroll
                        for (int q = 0; q < 2; q++) {
#pragma unroll
                            for (int i = 0; i < 4; i++) {
                                const float2 bv = __half22float2(b[j][4 * q + i]);
                                acc[r][j] = fmaf(av[8 * q + i], bv.x * sbj, acc[r][j]);
                                acc[r][j] = fmaf(av[8 * q + i + 4], bv.y * sbj, acc[r][j]);
                            }
                        }
                    }
                }
            }
        }

        // reduce over the warp's lanes, then lane r*RW + j writes D[m0 + r, n0 + j]
#pragma unroll
        for (int r = 0; r < MR; r++)
#pragma unroll
            for (int j = 0; j < RW; j++)
#pragma unroll
                for (int off = 16; off > 0; off >>= 1)
                    acc[r][j] += __shfl_xor_sync(0xFFFFFFFFu, acc[r][j], off);
#pragma unroll
        for (int r = 0; r < MR; r++)
#pragma unroll
            for (int j = 0; j < RW; j++) {
                const int64_t m = m0 + r, n = n0 + j;
                if (lane == r * RW + j && m < p.m && n < p.n)
                    fp4_store_elem<DT>(p.d, m * p.ldd + n, __fmul_rn(alpha, acc[r][j]));
            }
    }
}

static_assert(kGemvMaxRowsA * kRowsPerWarp <= 32, "one lane stores each output of a warp");

template <fp4_dtype AT, fp4_dtype DT>
void launch_rows(int mr, dim3 grid, cudaStream_t stream, const SimtArgs &p) {
    switch (mr) {
    case 1: sm70_simt_gemv_kernel<AT, DT, 1><<<grid, kGemvThreads, 0, stream>>>(p); break;
    case 2: sm70_simt_gemv_kernel<AT, DT, 2><<<grid, kGemvThreads, 0, stream>>>(p); break;
    case 4: sm70_simt_gemv_kernel<AT, DT, 4><<<grid, kGemvThreads, 0, stream>>>(p); break;
    default: sm70_simt_gemv_kernel<AT, DT, 8><<<grid, kGemvThreads, 0, stream>>>(p); break;
    }
}

} // namespace

fp4_status fp4_cuda_simt_gemv(fp4_ctx *ctx, const fp4_gemm_desc *desc, int mr) {
    const SimtArgs p = simt_args_from_desc(desc);
    const int64_t groups = fp4_ceil_div(p.n, kRowsPerWarp);
    int64_t blocks = fp4_ceil_div(groups, kGemvWarps);
    if (blocks > (1 << 20)) blocks = 1 << 20; /* the kernel strides over the rest */
    const dim3 grid((unsigned)blocks, (unsigned)fp4_ceil_div(p.m, mr));
    cudaStream_t stream = fp4_cuda_stream(desc->stream);

    fp4_cuda_clear_last_error();
    const bool known = simt_dispatch_types(desc->a_dtype, desc->d_dtype, [&](auto at, auto dt) {
        launch_rows<decltype(at)::value, decltype(dt)::value>(mr, grid, stream, p);
    });
    if (!known)
        return FP4_FAIL(ctx, FP4_ERR_INTERNAL, "cuda_simt small-M: a_dtype %d, d_dtype %d",
                        (int)desc->a_dtype, (int)desc->d_dtype);
    FP4_CUDA_CHECK_LAUNCH(ctx, "cuda_simt small-M kernel launch");
    return FP4_OK;
}

/*
 * simt_gemm.cu - the `cuda_simt` backend's tiled kernel (config "tiled"), its run entry and
 * its per-context set-up: a plain CUDA-core GEMM, the GPU correctness baseline. Any GPU from
 * sm_70; no tensor-core or arch-specific instructions. The small-M kernel: simt_gemv.cu.
 *
 *   D[m, n] = alpha * sum_k A[m, k] * B[n, k]      FP32 accumulation with FMA
 *   W4A4:  A is (M, K/2) bytes of E2M1 + E4M3 scales; W4A16: A is (M, K) BF16/F16
 *   B is (N, K/2) bytes of E2M1 + E4M3 scales; each scale layout LINEAR or SWIZZLED_128x4
 *
 * One block of 256 threads computes a 64x64 tile of D, 64 values of K at a time:
 *   - each thread decodes one (row, k-block) of A and one of B (16 values each) to float
 *     into shared memory, K-major (tile[k][row]), so that the decode happens once per tile;
 *   - each thread then accumulates a 4x4 micro-tile of D: per k, one float4 of A and one of
 *     B from shared memory, 16 FMAs.
 * Ragged edges (M, N not multiples of 64, K not a multiple of 64) are zero-filled in shared
 * memory and masked on the store. Offsets that can pass 2^31 are int64.
 */
#include "simt_args.cuh"

#include <stdio.h>
#include <stdlib.h>

#include <type_traits>

namespace {

constexpr int kTileM = SIMT_TILE_M; /* rows of D (of A) per block: 64 */
constexpr int kTileN = 64;  /* columns of D (rows of B) per block */
constexpr int kTileK = 64;  /* K per step: 4 k-blocks */
constexpr int kThreads = 256;
constexpr int kMicro = 4;   /* each thread: a 4x4 micro-tile of D */
constexpr int kThreadsN = kTileN / kMicro; /* 16 threads across N, 16 across M */

static_assert((kTileM / kMicro) * (kTileN / kMicro) == kThreads, "one micro-tile per thread");
static_assert(kTileM == kTileN, "load_tile fills A's and B's tiles alike");
static_assert(kTileM * (kTileK / 16) == kThreads && kTileN * (kTileK / 16) == kThreads,
              "each thread decodes exactly one (row, k-block) of A and one of B per step");


/* Decodes k-block kb of row `row` of a packed E2M1 operand: 16 values e2m1 * e4m3 (exact in
 * float: at most 6 significant bits). */
__device__ __forceinline__ void decode_fp4_block(const uint8_t *q, const uint8_t *sf,
                                                 bool swizzled, int64_t row, int64_t kb,
                                                 int64_t k, bool vec, float v[16]) {
    const uint8_t *p = q + row * (k / 2) + kb * 8; /* 8 bytes, 16 elements */
    uint8_t bytes[8];
    if (vec) {
        const uint2 w = *reinterpret_cast<const uint2 *>(p);
        memcpy(bytes, &w, 8);
    } else {
#pragma unroll
        for (int j = 0; j < 8; j++) bytes[j] = p[j];
    }
    const float scale = fp4_e4m3_decode(sf[fp4_sf_offset_at(swizzled, row, kb, k)]);
#pragma unroll
    for (int j = 0; j < 8; j++) {
        v[2 * j] = fp4_e2m1_decode(bytes[j] & 0xF) * scale;
        v[2 * j + 1] = fp4_e2m1_decode(bytes[j] >> 4) * scale;
    }
}

/* Fills tile[kTileK][rows] with rows [row0, row0 + 64) x k-blocks [kb0, kb0 + 4) of an
 * operand, as float, zero outside the matrix. Thread t takes row t % 64 and k-block t / 64:
 * the 32 threads of a warp store 32 consecutive floats of a tile row (no bank conflicts). */
template <fp4_dtype DT>
__device__ __forceinline__ void load_tile(float (*tile)[kTileM], const void *x,
                                          const uint8_t *sf, bool swizzled, bool vec,
                                          int64_t rows, int64_t k, int64_t row0, int64_t kb0) {
    const int r = threadIdx.x % kTileM;
    const int kb_local = threadIdx.x / kTileM;
    const int64_t row = row0 + r;
    const int64_t kb = kb0 + kb_local;
    float v[16];
    if (row < rows && kb < k / 16) {
        if constexpr (DT == FP4_DTYPE_E2M1)
            decode_fp4_block(static_cast<const uint8_t *>(x), sf, swizzled, row, kb, k, vec, v);
        else
            fp4_load_block16<DT>(x, row * k + kb * 16, vec, v);
    } else {
#pragma unroll
        for (int i = 0; i < 16; i++) v[i] = 0.0f;
    }
#pragma unroll
    for (int i = 0; i < 16; i++) tile[kb_local * 16 + i][r] = v[i];
}

/* AT: A's type (E2M1, BF16, F16). DT: D's type (F32, F16, BF16).
 * Grid: x over M tiles, y (striding) over N tiles. */
template <fp4_dtype AT, fp4_dtype DT>
__global__ void __launch_bounds__(kThreads) sm70_simt_gemm_kernel(SimtArgs p) {
    __shared__ __align__(16) float a_tile[kTileK][kTileM]; /* a_tile[k][m] */
    __shared__ __align__(16) float b_tile[kTileK][kTileN]; /* b_tile[k][n] */

    const float alpha = p.alpha_ptr ? *p.alpha_ptr : p.alpha;
    const int64_t kblocks = p.k / 16;
    const int64_t n_tiles = fp4_ceil_div(p.n, kTileN);
    const int64_t m0 = (int64_t)blockIdx.x * kTileM;
    const int tn = threadIdx.x % kThreadsN; /* micro-tile columns tn*4 .. tn*4+3 */
    const int tm = threadIdx.x / kThreadsN; /* micro-tile rows    tm*4 .. tm*4+3 */

    for (int64_t n_tile = blockIdx.y; n_tile < n_tiles; n_tile += gridDim.y) {
        const int64_t n0 = n_tile * kTileN;
        float acc[kMicro][kMicro] = {};

        for (int64_t kb0 = 0; kb0 < kblocks; kb0 += kTileK / 16) {
            // decode this K step of A and B into shared memory
            load_tile<AT>(a_tile, p.a, p.a_sf, p.a_swizzled, p.a_vec, p.m, p.k, m0, kb0);
            load_tile<FP4_DTYPE_E2M1>(b_tile, p.b, p.b_sf, p.b_swizzled, p.b_vec, p.n, p.k, n0,
                                      kb0);
            __syncthreads();

            // accumulate the 4x4 micro-tile over the step's 64 k
#pragma unroll 8
            for (int kk = 0; kk < kTileK; kk++) {
                const float4 a4 = *reinterpret_cast<const float4 *>(&a_tile[kk][tm * kMicro]);
                const float4 b4 = *reinterpret_cast<const float4 *>(&b_tile[kk][tn * kMicro]);
                const float a[kMicro] = {a4.x, a4.y, a4.z, a4.w};
                const float b[kMicro] = {b4.x, b4.y, b4.z, b4.w};
#pragma unroll
                for (int i = 0; i < kMicro; i++)
#pragma unroll
                    for (int j = 0; j < kMicro; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
            }
            __syncthreads(); /* the tiles are overwritten next step */
        }

        // D = alpha * acc, rounded to D's type, inside the matrix only
#pragma unroll
        for (int i = 0; i < kMicro; i++) {
            const int64_t row = m0 + tm * kMicro + i;
            if (row >= p.m) continue;
#pragma unroll
            for (int j = 0; j < kMicro; j++) {
                const int64_t col = n0 + tn * kMicro + j;
                if (col < p.n)
                    fp4_store_elem<DT>(p.d, row * p.ldd + col, __fmul_rn(alpha, acc[i][j]));
            }
        }
    }
}

/* The tiled launch (config "tiled"), on the current device. */
fp4_status simt_tiled(fp4_ctx *ctx, const fp4_gemm_desc *desc) {
    const SimtArgs p = simt_args_from_desc(desc);

    /* NOTE: gridDim.y is limited to 65535, gridDim.x to 2^31 - 1: M tiles go on x (the config's
     * predicate in simt_backend.c refuses m past 2^31 - 1 tiles of SIMT_TILE_M rows), and the
     * kernel strides over N tiles beyond 65535 (n > 4M). */
    const int64_t m_tiles = fp4_ceil_div(p.m, kTileM);
    const int64_t n_tiles = fp4_ceil_div(p.n, kTileN);
    const dim3 grid((unsigned)m_tiles, (unsigned)(n_tiles < 65535 ? n_tiles : 65535));
    cudaStream_t stream = fp4_cuda_stream(desc->stream);

    fp4_cuda_clear_last_error();
    const bool known = simt_dispatch_types(desc->a_dtype, desc->d_dtype, [&](auto at, auto dt) {
        sm70_simt_gemm_kernel<decltype(at)::value, decltype(dt)::value>
            <<<grid, kThreads, 0, stream>>>(p);
    });
    if (!known)
        return FP4_FAIL(ctx, FP4_ERR_INTERNAL, "cuda_simt: a_dtype %d, d_dtype %d",
                        (int)desc->a_dtype, (int)desc->d_dtype);
    FP4_CUDA_CHECK_LAUNCH(ctx, "cuda_simt kernel launch");
    return FP4_OK;
}

} // namespace

/* ---- the backend's entries (simt_configs.h) ------------------------------------------- */

extern "C" fp4_status fp4_cuda_simt_init(fp4_ctx *ctx, void **state) {
    *state = NULL;
    if (ctx->device < 0) return FP4_OK;
    simt_state *s = static_cast<simt_state *>(calloc(1, sizeof(simt_state)));
    if (!s) return FP4_FAIL(ctx, FP4_ERR_OUT_OF_MEMORY, "cuda_simt: out of host memory");
    // does the kernel have an image for this device?
    const cudaError_t probe =
        fp4_cuda_kernel_image((const void *)sm70_simt_gemm_kernel<FP4_DTYPE_E2M1, FP4_DTYPE_BF16>,
                              "cuda_simt", ctx->info.compute_capability);
    s->has_image = probe == cudaSuccess;
    if (!s->has_image) snprintf(s->why, sizeof s->why, "%s", cudaGetErrorString(probe));
    *state = s;
    return FP4_OK;
}

extern "C" void fp4_cuda_simt_fini(fp4_ctx *ctx, void *state) { free(state); }

extern "C" fp4_status fp4_cuda_simt_run(fp4_ctx *ctx, const fp4_gemm_desc *desc, int config) {
    fp4_status st = fp4_cuda_set_device(ctx);
    if (st != FP4_OK) return st;
    switch (config) {
    case SIMT_TILED: return simt_tiled(ctx, desc);
    case SIMT_GEMV_MR1:
    case SIMT_GEMV_MR2:
    case SIMT_GEMV_MR4:
    case SIMT_GEMV_MR8: return fp4_cuda_simt_gemv(ctx, desc, SIMT_GEMV_ROWS(config));
    default: break;
    }
    return FP4_FAIL(ctx, FP4_ERR_INTERNAL, "cuda_simt: no config %d", config);
}

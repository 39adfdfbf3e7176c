/*
 * sm90_wgmma_gemm.cu - the `cuda_wgmma` backend: NVFP4 GEMM on Hopper's warpgroup tensor cores.
 * Built for sm_90a only (CMakeLists.txt), whatever the rest of the build targets.
 *
 *   D[m, n] = alpha * sum_k A[m, k] * B[n, k]
 *   B: (N, K/2) bytes of E2M1 + E4M3 scales, swizzled 128x4 (the weight); A: BF16/F16 (M, K)
 *   (W4A16), or E2M1 + scales (W4A4), decoded first to F16 in the workspace; D: (M, ldd).
 *   W4A4 with n < m (A's scales swizzled) runs swapped: A is the register operand, B is
 *   decoded to F16, and the kernel writes D transposed (trans_out): the decode pass is the
 *   smaller operand's.
 *
 * The idea: an E2M1 value times its E4M3 scale is exact in FP16 and in BF16, so each weight is
 * decoded with its block scale folded in, in registers, and fed to wgmma as its register operand
 * (the RS form): the weight tile never goes through shared memory as 16-bit values. Weight rows
 * are wgmma's M side ("swap AB": D^T = B A^T), tokens its N side, read by the tensor cores from
 * shared memory (K-major, 128-byte swizzle) where TMA put them.
 *
 * A CTA: 3 warpgroups. Warpgroup 0 is the producer (one thread issues TMA for each 64-k stage:
 * the BN x 64 activation tile, the 128 x 32-byte weight tile, the 512-byte swizzled scale tile
 * of those 128 rows and 4 k-blocks; a ring of STAGES slots guarded by full/empty mbarriers).
 * Warpgroups 1 and 2 consume: each owns 64 weight rows x BN tokens of accumulators, decodes its
 * rows of a stage (4 k16 steps) while the previous stages' wgmmas run (two stages' groups in
 * flight for n64/n128, one for n256), and releases a slot once
 * the wgmmas that read it have retired. CTAs are persistent (one per SM) and walk (tile,
 * k-range) units; split-K partial sums are added in split order by the last CTA of a tile.
 * Epilogue: alpha, the output type; 16-bit D through stmatrix into a swizzled staging tile and
 * one TMA store per warpgroup (F32 D, or unaligned rows: stores from registers).
 *
 * Decode of one byte (k = 2t, 2t+1 of a row: the pair a thread's A fragment holds) to an FP16x2
 * (BF16x2) pair: PRMT puts the low nibble at the top of the low half-word (from the word shifted
 * left by 4) and the high nibble at the top of the high half-word; then s|e1 e0 m at bits
 * 15|14 13 12 go to 15|11 10 9 (15|8 7 6), which is exactly value * 2^-14 (2^-126), code 1
 * (0.5) included as a subnormal. One exact HMUL2 by scale * 2^7 (2^119) gives value * scale *
 * 2^-7; the epilogue multiplies by 2^7 (as cuda_mma, src/cuda/mma/sm80_mma_gemm.cu).
 */
#include "cuda/cuda_util.cuh"
#include "backend.h"
#include "cuda/wgmma/wgmma.h"
#include "cuda/fp4_pairs.cuh"

#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <stdio.h>
#include <stdlib.h>

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define FP4_SM90A 1
#include "cuda/wgmma/wgmma_ops.cuh"
#endif

struct fp4_cuda_wgmma_state {
    int runs;                             /* the kernels have an image for this device */
    PFN_cuTensorMapEncodeTiled_v12000 encode; /* the driver's tensor-map encoder */
    void *workspace; /* split-K counters and partials, W4A4 activations decoded to F16 */
};

namespace {

constexpr int kThreads = 384;          /* producer warpgroup + 2 consumer warpgroups */
constexpr int kRows = 128;             /* weight rows per CTA: 64 per consumer warpgroup */
constexpr int kStageK = 64;            /* k per stage: one 128-byte swizzle row of 16-bit A */
constexpr int kWBytes = kRows * kStageK / 2; /* 4096: the weight tile of a stage */
constexpr int kSfBytes = 512;          /* 128 rows x 4 k-blocks: one swizzled scale tile */
constexpr int kKMultiple = 64;
/* the workspace (docs/backends.md): split-K counters, split-K partials, W4A4 activations */
constexpr int kMaxCounters = 16384; /* tiles of a split-K launch */
constexpr int64_t kCounterBytes = kMaxCounters * 4;
constexpr int64_t kPartialBytes = 32ll << 20;
constexpr int64_t kA16Bytes = 64ll << 20;
constexpr int64_t kWorkspaceBytes = kCounterBytes + kPartialBytes + kA16Bytes;
constexpr int kMaxSplits = 16;

struct WgConfig {
    const char *name;
    int bn;     /* tokens per CTA: wgmma's N */
    int stages; /* depth of the TMA ring */
};

constexpr WgConfig kConfigs[] = {
    {"n256", 256, 4},
    {"n128", 128, 8},
    {"n64", 64, 12},
};
constexpr int kConfigCount = (int)(sizeof kConfigs / sizeof kConfigs[0]);

__host__ __device__ constexpr int act_tile_bytes(int bn) { return bn * kStageK * 2; }
__host__ __device__ constexpr int stage_bytes(int bn) {
    return act_tile_bytes(bn) + kWBytes + kSfBytes;
}
/* the epilogue's staging of 16-bit outputs for the TMA store: per consumer warpgroup, BN
 * tokens x its 64 weight rows (128 bytes a token, 128-byte swizzle) */
__host__ __device__ constexpr int out_stage_bytes(int bn) { return 2 * bn * 128; }
/* staging + ring + mbarriers + 1024 for aligning the base (128-byte swizzled tiles need 1024) */
__host__ __device__ constexpr int smem_bytes(int bn, int stages) {
    return out_stage_bytes(bn) + stages * stage_bytes(bn) + 2 * stages * 8 + 1024;
}

struct WgArgs {
    CUtensorMap tm_a;  /* 16-bit A (M, K): box 64 x BN, 128-byte swizzle */
    CUtensorMap tm_b;  /* B bytes (N, K/2): box 32 x 128 */
    CUtensorMap tm_sf; /* B's swizzled scales as 512-byte tiles: (tiles_n * k / 64) x 128 words */
    CUtensorMap tm_d;  /* 16-bit D (M, N) with row stride ldd: box 64 x BN, 128-byte swizzle;
                        * trans_out: D as (rows, tokens), box 64 x 64 */
    int tma_store;     /* D goes out through tm_d (16-bit, aligned rows), else direct stores */
    int trans_out;     /* D^T: the kernel's (token, row) goes to d[row * ldd + token] (the
                        * swapped W4A4 launch: A is the register operand, decoded B the tokens) */
    void *d;
    int64_t m, n, k, ldd;
    float alpha;
    const float *alpha_ptr;
    fp4_dtype d_dtype;
    int64_t tiles_n, tiles_m;
    int splits;           /* split-K: k-ranges per tile, summed in order by the last one */
    int stages_per_split; /* 64-k stages of a k-range (the last may have fewer) */
    float *partials;      /* split-K: [tiles][splits][BN / 2][256] floats */
    unsigned *counters;   /* split-K: one per tile, zero between launches */
};

/* ---- device helpers (sm_90a) -------------------------------------------------------------- */
#ifdef FP4_SM90A

constexpr float kUnscale = 128.0f; /* decoded weights are value * scale * 2^-7 */
/* NOTE: setmaxnreg moves registers within the CTA's allocation (168 x 384 at launch): the
 * producer must give back at least what the consumers take (40 + 2 x 232 = 3 x 168), or the
 * consumers' setmaxnreg.inc waits forever (24 + 2 x 240 would fit; 32 + 2 x 240 hangs: seen) */
constexpr int kProducerRegs = 40, kConsumerRegs = 232;

__device__ __forceinline__ uint32_t smem_addr(const void *p) {
    return (uint32_t)__cvta_generic_to_shared(p);
}
__device__ __forceinline__ void mbar_init(uint64_t *bar, unsigned count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(count));
}
__device__ __forceinline__ void mbar_expect_tx(uint64_t *bar, unsigned bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_addr(bar)),
                 "r"(bytes)
                 : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint64_t *bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_addr(bar)) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint64_t *bar, unsigned parity) {
    uint32_t done = 0;
    do {
        asm volatile("{\n .reg .pred p;\n"
                     " mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
                     " selp.u32 %0, 1, 0, p;\n}\n"
                     : "=r"(done)
                     : "r"(smem_addr(bar)), "r"(parity)
                     : "memory");
    } while (!done);
}
/* TMA: a 2-D box at (x, y) (x innermost) of a tensor map into shared memory */
__device__ __forceinline__ void tma_load_2d(void *dst, const CUtensorMap *map, int x, int y,
                                            uint64_t *bar) {
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes"
                 " [%0], [%1, {%2, %3}], [%4];\n" ::"r"(smem_addr(dst)),
                 "l"(reinterpret_cast<uint64_t>(map)), "r"(x), "r"(y), "r"(smem_addr(bar))
                 : "memory");
}
/* TMA store of a 2-D box from shared memory at (x, y); out-of-bounds parts are not written */
__device__ __forceinline__ void tma_store_2d(const CUtensorMap *map, int x, int y,
                                             const void *src) {
    asm volatile("cp.async.bulk.tensor.2d.global.shared::cta.bulk_group [%0, {%1, %2}], [%3];\n"
                 ::"l"(reinterpret_cast<uint64_t>(map)), "r"(x), "r"(y), "r"(smem_addr(src))
                 : "memory");
    asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
}
/* until this thread's TMA stores have read their shared memory */
__device__ __forceinline__ void tma_store_wait_read() {
    asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory");
}
/* generic-proxy writes to shared memory made visible to the async proxy (TMA) */
__device__ __forceinline__ void fence_proxy_async() {
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}
/* four 8x8 16-bit matrices from the MMA fragment layout, stored transposed: lane 8i + k gives
 * the address of row k of matrix i, which receives column k of the fragment */
__device__ __forceinline__ void stmatrix_x4_trans(uint32_t addr, uint32_t r0, uint32_t r1,
                                                  uint32_t r2, uint32_t r3) {
    asm volatile("stmatrix.sync.aligned.m8n8.x4.trans.shared.b16 [%0], {%1, %2, %3, %4};\n"
                 ::"r"(addr), "r"(r0), "r"(r1), "r"(r2), "r"(r3)
                 : "memory");
}
/* the same, stored as they are (lane 8i + k: row k of matrix i gets the fragment's row k) */
__device__ __forceinline__ void stmatrix_x4(uint32_t addr, uint32_t r0, uint32_t r1, uint32_t r2,
                                            uint32_t r3) {
    asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};\n"
                 ::"r"(addr), "r"(r0), "r"(r1), "r"(r2), "r"(r3)
                 : "memory");
}
__device__ __forceinline__ void named_barrier_wg(int cw) {
    asm volatile("bar.sync %0, 128;\n" ::"r"(2 + cw) : "memory");
}
__device__ __forceinline__ void wgmma_fence() {
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wgmma_commit() {
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
template <int N>
__device__ __forceinline__ void wgmma_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
/* Shared-memory matrix descriptor of a K-major tile with the 128-byte swizzle: rows of 128
 * bytes, 8-row groups 1024 bytes apart (the leading offset is unused in this mode). */
__device__ __forceinline__ uint64_t make_desc_sw128(const void *tile) {
    const uint64_t addr = smem_addr(tile);
    return ((addr & 0x3FFFF) >> 4) | (1ull << 16) | ((uint64_t)(1024 >> 4) << 32) | (1ull << 62);
}
/* Output elements: the hardware's round-to-nearest-even conversions, which give the bits of
 * format.h's (the CPU reference's) for every value but NaN; NaN goes through format.h. */
template <fp4_dtype DT> struct OutType { typedef uint16_t T; };
template <> struct OutType<FP4_DTYPE_F32> { typedef float T; };
template <fp4_dtype DT>
__device__ __forceinline__ typename OutType<DT>::T to_out(float y);
/* Two outputs packed as 16-bit elements (lo, hi), as to_out converts them. */
template <fp4_dtype DT>
__device__ __forceinline__ uint32_t to_out2(float lo, float hi) {
    return (uint32_t)to_out<DT>(lo) | (uint32_t)to_out<DT>(hi) << 16;
}
template <fp4_dtype DT>
__device__ __forceinline__ typename OutType<DT>::T to_out(float y) {
    if constexpr (DT == FP4_DTYPE_F32) {
        return y;
    } else if constexpr (DT == FP4_DTYPE_F16) {
        return isnan(y) ? fp4_f32_to_f16(y) : __half_as_ushort(__float2half_rn(y));
    } else {
        return isnan(y) ? fp4_f32_to_bf16(y) : __bfloat16_as_ushort(__float2bfloat16_rn(y));
    }
}

/* Tells the compiler the registers are read and written here: they stay allocated and
 * unchanged up to this point, and no use of them moves across it. */
__device__ __forceinline__ void keep_live(uint32_t (&r)[4][4]) {
#pragma unroll
    for (int j = 0; j < 4; j++)
#pragma unroll
        for (int i = 0; i < 4; i++) asm volatile("" : "+r"(r[j][i])::"memory");
}
template <int N>
__device__ __forceinline__ void keep_live_acc(float (&r)[N]) {
#pragma unroll
    for (int i = 0; i < N; i++) asm volatile("" : "+f"(r[i])::"memory");
}
__device__ __forceinline__ void named_barrier_consumers() {
    asm volatile("bar.sync 1, 256;\n" ::: "memory");
}

/* Byte t of w (both nibbles) to a pair (low nibble, high nibble) * 2^-14 (FP16) or 2^-126
 * (BF16); sel = t | t << 4 | (t + 4) << 8 | (t + 4) << 12 (see the file comment). */
template <bool BF16>
__device__ __forceinline__ uint32_t decode_byte_pair(uint32_t w, uint32_t sel) {
    const uint32_t q = __byte_perm(w << 4, w, sel);
    const uint32_t sign = q & 0x80008000u;
    const uint32_t mag = (q >> (BF16 ? 6 : 3)) & (BF16 ? 0x01C001C0u : 0x0E000E00u);
    return sign | mag;
}
/* Four E4M3 scales (bytes of `four`) to broadcast pairs (s_i, s_i) of scale * 2^7 (FP16) or
 * scale * 2^119 (BF16): the exact multipliers of the decoded codes. */
template <bool BF16>
__device__ __forceinline__ void scale_pairs(uint32_t four, uint32_t out[4]) {
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const __half2_raw r =
            __nv_cvt_fp8x2_to_halfraw2((__nv_fp8x2_storage_t)(four >> (16 * h)), __NV_E4M3);
        __half2 hh;
        memcpy(&hh, &r, 4);
        uint32_t bits;
        if constexpr (BF16) {
            const float2 f = __half22float2(hh);
            const uint32_t lo = __float_as_uint(f.x * 0x1p119f) >> 16; /* exact: <= 4 bits */
            const uint32_t hi = __float_as_uint(f.y * 0x1p119f) >> 16;
            bits = lo | hi << 16;
        } else {
            const __half2 x = __hmul2(hh, __float2half2_rn(128.0f));
            memcpy(&bits, &x, 4);
        }
        out[2 * h] = __byte_perm(bits, 0u, 0x1010);
        out[2 * h + 1] = __byte_perm(bits, 0u, 0x3232);
    }
}

template <int BN, bool BF16>
__device__ __forceinline__ void wgmma_rs(float (&d)[BN / 2], const uint32_t (&a)[4], uint64_t b) {
    if constexpr (BN == 256) {
        if constexpr (BF16) wgmma_m64n256k16_bf16_rs(d, a, b);
        else wgmma_m64n256k16_f16_rs(d, a, b);
    } else if constexpr (BN == 128) {
        if constexpr (BF16) wgmma_m64n128k16_bf16_rs(d, a, b);
        else wgmma_m64n128k16_f16_rs(d, a, b);
    } else {
        static_assert(BN == 64, "n64, n128 or n256");
        if constexpr (BF16) wgmma_m64n64k16_bf16_rs(d, a, b);
        else wgmma_m64n64k16_f16_rs(d, a, b);
    }
}

#endif /* FP4_SM90A */

/* ---- the GEMM kernel ---------------------------------------------------------------------- */

template <int BN, int STAGES, bool BF16>
__global__ void __launch_bounds__(kThreads, 1)
    sm90_wgmma_gemm_kernel(const __grid_constant__ WgArgs p) {
#ifdef FP4_SM90A
    static_assert(smem_bytes(BN, STAGES) <= 227 * 1024, "fits the opt-in shared memory");
    extern __shared__ uint8_t smem_raw[];
    // NOTE: aligned by offsetting smem_raw (not through an integer) so that the compiler still
    // knows these are shared-memory addresses (LDS, not generic loads)
    uint8_t *smem = smem_raw + ((1024 - (smem_addr(smem_raw) & 1023)) & 1023);
    uint8_t *ostage = smem; // [2 warpgroups][BN][64] 16-bit outputs, swizzled
    uint8_t *act = ostage + out_stage_bytes(BN);              // [STAGES][BN][64] 16-bit, swizzled
    uint8_t *wsm = act + STAGES * act_tile_bytes(BN);         // [STAGES][128 rows][32 bytes]
    uint8_t *ssm = wsm + STAGES * kWBytes;                    // [STAGES][512] swizzled scales
    uint64_t *full = reinterpret_cast<uint64_t *>(ssm + STAGES * kSfBytes);
    uint64_t *empty = full + STAGES;
    __shared__ unsigned s_last_split;

    // Persistent: CTA b takes work units b, b + gridDim.x, ...; a unit is one k-range (split)
    // of one 128 x BN tile. Tiles go in groups of 16 weight tiles with every token tile inside
    // (the weights of a group stay in L2 while its token tiles pass).
    const int64_t units = p.tiles_n * p.tiles_m * p.splits;
    const int nst = (int)(p.k / kStageK);
    auto unit_coords = [&](int64_t u, int64_t &tile, int64_t &tn, int64_t &tm, int &st_begin,
                           int &st_count) {
        tile = u / p.splits;
        const int split = (int)(u % p.splits);
        constexpr int64_t G = 16;
        const int64_t group = tile / (G * p.tiles_m);
        const int64_t first = group * G;
        const int64_t width = p.tiles_n - first < G ? p.tiles_n - first : G;
        const int64_t within = tile - group * G * p.tiles_m;
        tn = first + within % width;
        tm = within / width;
        st_begin = split * p.stages_per_split;
        st_count = nst - st_begin < p.stages_per_split ? nst - st_begin : p.stages_per_split;
    };

    if (threadIdx.x == 0) {
        for (int s = 0; s < STAGES; s++) {
            mbar_init(&full[s], 1);
            mbar_init(&empty[s], 8); // lane 0 of each consumer warp
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();

    const int wg = threadIdx.x / 128;
    if (wg == 0) {
        // ---- producer: one thread issues the TMA loads of every stage of every unit ----------
        asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kProducerRegs));
        if (threadIdx.x == 0) {
            int it = 0; // position in the ring, over all units
#pragma unroll 1
            for (int64_t u = blockIdx.x; u < units; u += gridDim.x) {
                int64_t tile, tn, tm;
                int st_begin, st_count;
                unit_coords(u, tile, tn, tm, st_begin, st_count);
#pragma unroll 1
                for (int ls = 0; ls < st_count; ls++, it++) {
                    const int slot = it % STAGES, gs = st_begin + ls;
                    if (it >= STAGES) mbar_wait(&empty[slot], ((it / STAGES) - 1) & 1);
                    mbar_expect_tx(&full[slot], stage_bytes(BN));
                    tma_load_2d(act + slot * act_tile_bytes(BN), &p.tm_a, gs * kStageK,
                                (int)(tm * BN), &full[slot]);
                    tma_load_2d(wsm + slot * kWBytes, &p.tm_b, gs * (kStageK / 2),
                                (int)(tn * kRows), &full[slot]);
                    tma_load_2d(ssm + slot * kSfBytes, &p.tm_sf, 0, (int)(tn * nst + gs),
                                &full[slot]);
                }
            }
        }
        return;
    }

    // ---- consumers ----------------------------------------------------------------------------
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kConsumerRegs));
    const int ctid = threadIdx.x - 128; // 0..255
    const int cw = ctid / 128, warp = (ctid / 32) % 4, lane = ctid % 32;
    const int g = lane / 4, t = lane % 4;
    const int r_lo = cw * 64 + warp * 16 + g, r_hi = r_lo + 8; // this thread's weight rows
    // a row's 4 scales of a stage: one word of the swizzled 512-byte tile
    const int sf_lo = (r_lo % 32) * 16 + (r_lo / 32) * 4, sf_hi = (r_hi % 32) * 16 + (r_hi / 32) * 4;
    const uint32_t sel = t | t << 4 | (t + 4) << 8 | (t + 4) << 12;
    const float alpha_in = p.alpha_ptr ? *p.alpha_ptr : p.alpha;
    const float alpha = alpha_in * kUnscale;
    const bool alpha_inf = isinf(alpha) && !isinf(alpha_in);

    float acc[BN / 2];
    // NOTE: wgmma reads its register operand asynchronously, until wgmma.wait_group says the
    // group retired, and the compiler does not know it. So the fragments rotate through
    // kPend + 1 buffers (stage s uses buffer s % (kPend + 1)), and each buffer is kept alive
    // (keep_live) until the wait that retires its wgmmas: the compiler can't give a later
    // stage's decode the registers still being read. kPend groups stay in flight after each
    // stage's wait, so the decode of stage s + 1 overlaps the wgmmas of stages s - 1 and s.
    constexpr int kPend = BN == 256 ? 1 : 2;
    constexpr int kBufs = kPend + 1;
    uint32_t frag[kBufs][4][4]; // [buffer][k16 step][a0..a3]
#pragma unroll
    for (int b = 0; b < kBufs; b++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int i = 0; i < 4; i++) frag[b][j][i] = 0u;
    int it = 0; // position in the ring, as the producer's
    // one stage: decode into buffer `cur`; `freed` is the buffer whose wgmmas this stage's wait
    // retires (stage ls - kPend's, the next stage's buffer)
    auto run_stage = [&](int ls, uint32_t (&cur)[4][4], uint32_t (&freed)[4][4]) {
        const int slot = it % STAGES;
        // wait for the stage, decode this thread's weights (rows r_lo, r_hi; 4 k16 steps):
        // a0 = (r_lo, k 2t, 2t+1), a1 = (r_hi, same), a2 = (r_lo, k 2t+8, 2t+9), a3 = (r_hi, same)
        mbar_wait(&full[slot], (it / STAGES) & 1);
        const uint4 *wrow = reinterpret_cast<const uint4 *>(wsm + slot * kWBytes);
        const uint4 lo0 = wrow[2 * r_lo], lo1 = wrow[2 * r_lo + 1];
        const uint4 hi0 = wrow[2 * r_hi], hi1 = wrow[2 * r_hi + 1];
        const uint32_t wl[8] = {lo0.x, lo0.y, lo0.z, lo0.w, lo1.x, lo1.y, lo1.z, lo1.w};
        const uint32_t wh[8] = {hi0.x, hi0.y, hi0.z, hi0.w, hi1.x, hi1.y, hi1.z, hi1.w};
        uint32_t sl[4], sh[4];
        scale_pairs<BF16>(*reinterpret_cast<const uint32_t *>(ssm + slot * kSfBytes + sf_lo), sl);
        scale_pairs<BF16>(*reinterpret_cast<const uint32_t *>(ssm + slot * kSfBytes + sf_hi), sh);
#pragma unroll
        for (int j = 0; j < 4; j++) {
            cur[j][0] = fp4_mul_pair<BF16>(decode_byte_pair<BF16>(wl[2 * j], sel), sl[j]);
            cur[j][1] = fp4_mul_pair<BF16>(decode_byte_pair<BF16>(wh[2 * j], sel), sh[j]);
            cur[j][2] = fp4_mul_pair<BF16>(decode_byte_pair<BF16>(wl[2 * j + 1], sel), sl[j]);
            cur[j][3] = fp4_mul_pair<BF16>(decode_byte_pair<BF16>(wh[2 * j + 1], sel), sh[j]);
        }
        // 4 wgmmas on this stage; then retire stage ls - kPend's and free its slot
        const uint64_t desc = make_desc_sw128(act + slot * act_tile_bytes(BN));
        wgmma_fence();
#pragma unroll
        for (int j = 0; j < 4; j++) wgmma_rs<BN, BF16>(acc, cur[j], desc + 2 * j); // +32 bytes
        wgmma_commit();
        wgmma_wait<kPend>();
        keep_live(freed);
        __syncwarp(); // the warp's reads of the slot, then its release
        if (ls >= kPend && lane == 0) mbar_arrive(&empty[(it + STAGES - kPend) % STAGES]);
        it++;
    };

#pragma unroll 1
    for (int64_t u = blockIdx.x; u < units; u += gridDim.x) {
        int64_t tile, tn, tm;
        int st_begin, st_count;
        unit_coords(u, tile, tn, tm, st_begin, st_count);
#pragma unroll
        for (int i = 0; i < BN / 2; i++) acc[i] = 0.0f;
        int ls = 0;
#pragma unroll 1
        for (; ls + kBufs - 1 < st_count; ls += kBufs) {
#pragma unroll
            for (int b = 0; b < kBufs; b++) run_stage(ls + b, frag[b], frag[(b + 1) % kBufs]);
        }
#pragma unroll
        for (int b = 0; b < kBufs - 1; b++)
            if (ls + b < st_count) run_stage(ls + b, frag[b], frag[(b + 1) % kBufs]);
        wgmma_wait<0>();
#pragma unroll
        for (int b = 0; b < kBufs; b++) keep_live(frag[b]);
        keep_live_acc<BN / 2>(acc); // no read of the accumulators moves above the wait
        __syncwarp();
        // the unit's last min(kPend, st_count) slots
        if (lane == 0)
            for (int q = 1; q <= kPend && q <= st_count; q++)
                mbar_arrive(&empty[(it + STAGES - q) % STAGES]);

        // ---- split-K: each k-range stores its partial sums; the last to finish sums them all,
        // in split order (the same bits whichever finishes last) ------------------------------
        if (p.splits > 1) {
            const int64_t split = u % p.splits;
            float *part = p.partials + ((tile * p.splits + split) * (BN / 2)) * 256 + ctid;
#pragma unroll
            for (int i = 0; i < BN / 2; i++) __stcg(part + i * 256, acc[i]);
            // the stores of all 256 consumers, then the counter (fp4_splitk_arrive: its release
            // covers what the barrier ordered before it; it wraps back to 0 on the last arrival,
            // ready for the next launch)
            named_barrier_consumers();
            if (ctid == 0)
                s_last_split = fp4_splitk_arrive(p.counters + tile, (unsigned)p.splits) ==
                               (unsigned)p.splits - 1;
            named_barrier_consumers();
            if (!s_last_split) continue;
            const float *part0 = p.partials + tile * p.splits * (BN / 2) * 256 + ctid;
#pragma unroll
            for (int i = 0; i < BN / 2; i++) acc[i] = __ldcg(part0 + i * 256);
#pragma unroll 1
            for (int sp = 1; sp < p.splits; sp++) {
                const float *ps = part0 + (int64_t)sp * (BN / 2) * 256;
#pragma unroll
                for (int i = 0; i < BN / 2; i++) acc[i] += __ldcg(ps + i * 256);
            }
        }

        // ---- epilogue: alpha, the output type, straight from the accumulators ------------------
        // acc[4j + e]: weight row r_lo (e < 2) or r_hi, token 8j + 2t + e % 2
        // the accumulators are sum * 2^-7: y = (alpha * 2^7) * a, or alpha * (a * 2^7) when
        // alpha * 2^7 overflows (the same bits whenever nothing overflows)
        if (alpha_inf) {
#pragma unroll
            for (int i = 0; i < BN / 2; i++) acc[i] *= kUnscale;
        }
        const float alpha_eff = alpha_inf ? alpha_in : alpha;
        const int64_t n_lo = tn * kRows + r_lo, m0 = tm * BN;
        // edges: the thread's tokens 8j + 2t + {0, 1} exist while below rem, its rows if < n
        const int rem = (int)(p.m - m0 < BN ? p.m - m0 : BN) - 2 * t;
        const bool ok_lo = n_lo < p.n, ok_hi = n_lo + 8 < p.n;
        auto store_all = [&](auto dt) {
            constexpr fp4_dtype DT = decltype(dt)::value;
            const int64_t ld = p.ldd;
            typedef typename OutType<DT>::T T;
            if (p.trans_out) { // element (token, row) at d[row * ld + token]
                T *o = static_cast<T *>(p.d) + n_lo * ld + m0 + 2 * t;
#pragma unroll
                for (int j = 0; j < BN / 8; j++) {
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        const int tok = 8 * j + (e % 2);
                        if (tok >= rem || !(e < 2 ? ok_lo : ok_hi)) continue;
                        o[(e / 2) * 8 * ld + tok] = to_out<DT>(alpha_eff * acc[4 * j + e]);
                    }
                }
                return;
            }
            T *o = static_cast<T *>(p.d) + (m0 + 2 * t) * ld + n_lo;
#pragma unroll
            for (int j = 0; j < BN / 8; j++, o += 8 * ld) {
                if (8 * j < rem) {
                    if (ok_lo) o[0] = to_out<DT>(alpha_eff * acc[4 * j]);
                    if (ok_hi) o[8] = to_out<DT>(alpha_eff * acc[4 * j + 2]);
                }
                if (8 * j + 1 < rem) {
                    if (ok_lo) o[ld] = to_out<DT>(alpha_eff * acc[4 * j + 1]);
                    if (ok_hi) o[ld + 8] = to_out<DT>(alpha_eff * acc[4 * j + 3]);
                }
            }
        };
        // 16-bit D with aligned rows: through this warpgroup's staging tile and one TMA store
        // (which clips the edges), so that the consumers go back to the tensor cores at once
        auto stage_and_store = [&](auto dt) {
            constexpr fp4_dtype DT = decltype(dt)::value;
            uint8_t *mine = ostage + cw * (BN * 128); // [BN tokens][64 rows] of this warpgroup
            if (ctid % 128 == 0) tma_store_wait_read(); // the previous unit's store has read it
            named_barrier_wg(cw);
            // stmatrix x4 j2: matrices (rows 16 warp + 0..7 | + 8..15) x tokens 16 j2 + (0..7 |
            // 8..15); lane 8i + k addresses token row k of matrix i, 16-byte chunk
            // 2 warp + (i & 1) of its 128-byte row, swizzled by the token's row % 8
            const int mi = lane / 8, kr = lane % 8;
            const uint32_t base = smem_addr(mine);
            if (p.trans_out) {
                // D^T: stmatrix without .trans keeps the fragment's rows: the staging is BN / 64
                // boxes of [64 rows][64 tokens] (128-byte rows, swizzled); lane 8i + k
                // addresses row 16 warp + 8 (i & 1) + k, 16-byte chunk j % 8 of box j / 8
#pragma unroll
                for (int j2 = 0; j2 < BN / 16; j2++) {
                    const int j = 2 * j2 + (mi / 2), row = 16 * warp + 8 * (mi & 1) + kr;
                    const uint32_t addr = base + (j / 8) * (64 * 128) + row * 128 +
                                          (((j % 8) ^ (row % 8)) * 16);
                    const int jj = 2 * j2;
                    stmatrix_x4(addr,
                                to_out2<DT>(alpha_eff * acc[4 * jj], alpha_eff * acc[4 * jj + 1]),
                                to_out2<DT>(alpha_eff * acc[4 * jj + 2], alpha_eff * acc[4 * jj + 3]),
                                to_out2<DT>(alpha_eff * acc[4 * jj + 4], alpha_eff * acc[4 * jj + 5]),
                                to_out2<DT>(alpha_eff * acc[4 * jj + 6], alpha_eff * acc[4 * jj + 7]));
                }
                fence_proxy_async();
                named_barrier_wg(cw);
                if (ctid % 128 == 0)
                    for (int b = 0; b < BN / 64; b++)
                        tma_store_2d(&p.tm_d, (int)(m0 + 64 * b), (int)(tn * kRows + cw * 64),
                                     mine + b * (64 * 128));
                return;
            }
#pragma unroll
            for (int j2 = 0; j2 < BN / 16; j2++) {
                const int tok = 16 * j2 + 8 * (mi / 2) + kr;
                const int chunk = (2 * warp + (mi & 1)) ^ (tok % 8);
                const int j = 2 * j2;
                stmatrix_x4_trans(base + tok * 128 + chunk * 16,
                                  to_out2<DT>(alpha_eff * acc[4 * j], alpha_eff * acc[4 * j + 1]),
                                  to_out2<DT>(alpha_eff * acc[4 * j + 2], alpha_eff * acc[4 * j + 3]),
                                  to_out2<DT>(alpha_eff * acc[4 * j + 4], alpha_eff * acc[4 * j + 5]),
                                  to_out2<DT>(alpha_eff * acc[4 * j + 6], alpha_eff * acc[4 * j + 7]));
            }
            fence_proxy_async();
            named_barrier_wg(cw);
            if (ctid % 128 == 0) tma_store_2d(&p.tm_d, (int)(tn * kRows + cw * 64), (int)m0, mine);
        };
        if (p.tma_store) {
            if (p.d_dtype == FP4_DTYPE_F16)
                stage_and_store(std::integral_constant<fp4_dtype, FP4_DTYPE_F16>());
            else
                stage_and_store(std::integral_constant<fp4_dtype, FP4_DTYPE_BF16>());
            continue;
        }
        switch (p.d_dtype) {
        case FP4_DTYPE_F32: store_all(std::integral_constant<fp4_dtype, FP4_DTYPE_F32>()); break;
        case FP4_DTYPE_F16: store_all(std::integral_constant<fp4_dtype, FP4_DTYPE_F16>()); break;
        default: store_all(std::integral_constant<fp4_dtype, FP4_DTYPE_BF16>()); break;
        }
    }
    if (ctid % 128 == 0) tma_store_wait_read(); // the staging lives as long as the CTA
#endif /* FP4_SM90A */
}

/* ---- W4A4: E2M1 activations decoded once to F16 (value * scale, exact) ---------------------- */

/* One thread per (row, k-block): 8 bytes and a scale in, 16 F16 (32 bytes) out, in k order. */
__global__ void sm90_decode_act_kernel(const uint8_t *a, const uint8_t *a_sf, int swizzled,
                                       int64_t rows, int64_t k, int64_t row0, uint16_t *out) {
#ifdef FP4_SM90A
    const int64_t kb = k / 16, units = rows * kb;
    for (int64_t u = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; u < units;
         u += (int64_t)gridDim.x * blockDim.x) {
        const int64_t r = u / kb, b = u % kb, row = row0 + r; // row of A; r: of this chunk
        const uint2 q = *reinterpret_cast<const uint2 *>(a + row * (k / 2) + b * 8);
        const int64_t sfo = swizzled ? (row / 128) * (kb / 4) * 512 + (b / 4) * 512 +
                                           (row % 32) * 16 + ((row % 128) / 32) * 4 + b % 4
                                     : row * kb + b;
        const __half_raw sr = __nv_cvt_fp8_to_halfraw(a_sf[sfo], __NV_E4M3);
        const uint32_t s2 = (uint32_t)sr.x | (uint32_t)sr.x << 16;
        const uint32_t two14 = 0x74007400u; /* FP16x2 (2^14, 2^14) */
        const uint32_t words[2] = {q.x, q.y};
        uint32_t o[8];
#pragma unroll
        for (int w = 0; w < 2; w++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const uint32_t sel = i | i << 4 | (i + 4) << 8 | (i + 4) << 12;
                o[4 * w + i] = fp4_mul_pair<false>(
                    fp4_mul_pair<false>(decode_byte_pair<false>(words[w], sel), two14), s2);
            }
        uint4 *dst = reinterpret_cast<uint4 *>(out + r * k + b * 16);
        dst[0] = make_uint4(o[0], o[1], o[2], o[3]);
        dst[1] = make_uint4(o[4], o[5], o[6], o[7]);
    }
#endif
}

/* ---- host ------------------------------------------------------------------------------------ */

typedef void (*WgKernel)(WgArgs);

template <bool BF16>
WgKernel kernel_for(int config) {
    switch (config) {
    case 0: return sm90_wgmma_gemm_kernel<256, 4, BF16>;
    case 1: return sm90_wgmma_gemm_kernel<128, 8, BF16>;
    default: return sm90_wgmma_gemm_kernel<64, 12, BF16>;
    }
}
WgKernel kernel_for(bool bf16, int config) {
    return bf16 ? kernel_for<true>(config) : kernel_for<false>(config);
}
int config_smem(int config) { return smem_bytes(kConfigs[config].bn, kConfigs[config].stages); }

/* A row-major 2-D array as a TMA tensor map: rows x cols elements of `type` (esize bytes), row
 * stride `ld` elements, boxes of box_cols x box_rows. */
fp4_status encode_2d(fp4_ctx *ctx, const fp4_cuda_wgmma_state *st, CUtensorMap *map,
                     const char *what, const void *base, CUtensorMapDataType type, int esize,
                     int64_t rows, int64_t cols, int64_t ld, int box_cols, int box_rows,
                     CUtensorMapSwizzle swizzle) {
    const cuuint64_t dims[2] = {(cuuint64_t)cols, (cuuint64_t)rows};
    const cuuint64_t strides[1] = {(cuuint64_t)(ld * esize)};
    const cuuint32_t box[2] = {(cuuint32_t)box_cols, (cuuint32_t)box_rows};
    const cuuint32_t estr[2] = {1, 1};
    const CUresult r = st->encode(map, type, 2, const_cast<void *>(base), dims, strides, box, estr,
                                  CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle,
                                  CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                                  CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS)
        return FP4_FAIL(ctx, FP4_ERR_CUDA, "cuda_wgmma: cuTensorMapEncodeTiled (%s) failed: %d",
                        what, (int)r);
    return FP4_OK;
}

/* Rows of E2M1 A that one W4A4 chunk decodes into the workspace: at most what fits, a multiple
 * of 256 (whole token tiles), and the chunks as equal as that allows (one short chunk would be a
 * badly filled launch). 0 when not even 256 rows fit. */
int64_t a4_chunk_rows(int64_t m, int64_t k) {
    int64_t fit = kA16Bytes / (k * 2);
    fit -= fit % 256;
    if (fit < 256) return 0;
    const int64_t chunks = fp4_ceil_div(m, fit);
    return fp4_ceil_div(fp4_ceil_div(m, chunks), 256) * 256;
}

/* A launch: the config, its tiles, and the split-K factor. */
struct Plan {
    int cfg;
    int64_t tiles_n, tiles_m, units;
    int splits, stages_per_split;
    double cost; /* estimated time, in n256 stage times */
};

/* Relative time of one 64-k stage of a CTA, per config (n256 = 1): n64 and n128 tiles do 1/4
 * and 1/2 of n256's multiply-adds but decode the same weights, and at the sizes where the
 * choice matters their consumers are latency-bound, so a stage costs more than the
 * multiply-adds say. Fitted, with the split-K cost below, to 138 points where every config was
 * timed on an H200 (docs/PERF.md: the plan's choice within 0.2% of the fastest config on
 * geomean, 15% at worst, against 1% and 33% with {1, 0.62, 0.45} and 3). */
constexpr double kStageCost[kConfigCount] = {1.0, 0.7, 0.65};
/* the cost of splitting, per split of a tile, in n256 stage times per 256 tokens of the tile
 * (the partial sums' stores, the arrival, the last CTA's sum): a plan with s splits pays s
 * times this */
constexpr double kSplitCost = 6.0;

/* The split-K factor of config cfg for an m x n x k problem on `sms` SMs: the fewest rounds of
 * persistent CTAs, each round as long as a k-range, plus the reduction (a split writes its
 * partial tile and the last reads all of them: kSplitCost per split), within the
 * workspace and the counters. */
Plan make_plan(int cfg, int64_t m, int64_t n, int64_t k, int sms) {
    Plan pl;
    pl.cfg = cfg;
    pl.tiles_n = fp4_ceil_div(n, kRows);
    pl.tiles_m = fp4_ceil_div(m, kConfigs[cfg].bn);
    const int64_t tiles = pl.tiles_n * pl.tiles_m;
    const int nst = (int)(k / kStageK);
    const double sc = kStageCost[cfg];
    pl.splits = 1;
    pl.stages_per_split = nst;
    pl.cost = (double)fp4_ceil_div(tiles, sms) * nst * sc;
    const int64_t partial = (int64_t)kRows * kConfigs[cfg].bn * 4;
    for (int sp = 2; sp <= kMaxSplits && sp <= nst; sp++) {
        const int sps = (int)fp4_ceil_div(nst, sp);
        const int splits = (int)fp4_ceil_div(nst, sps); /* no empty k-range */
        if (splits != sp) continue;
        if (tiles > kMaxCounters || tiles * splits * partial > kPartialBytes) break;
        const double cost = (double)fp4_ceil_div(tiles * splits, sms) * sps * sc +
                            kSplitCost * splits * kConfigs[cfg].bn / 256.0;
        if (cost < pl.cost * 0.97) { /* a split must pay clearly */
            pl.cost = cost;
            pl.splits = splits;
            pl.stages_per_split = sps;
        }
    }
    pl.units = tiles * pl.splits;
    return pl;
}

int sm_count(const fp4_ctx *ctx) { return ctx->info.sm_count > 0 ? ctx->info.sm_count : 1; }

/* Does a W4A4 problem run swapped (A decoded in registers, B decoded once to F16)? When B has
 * fewer rows than A, so the decode pass is smaller, and A can be the register operand (its
 * scales swizzled, A and its scales 16-byte aligned for TMA). */
bool w4a4_swapped(const fp4_gemm_desc *d) {
    return d->a_dtype == FP4_DTYPE_E2M1 && d->a_sf_layout == FP4_SF_SWIZZLED_128x4 &&
           (uintptr_t)d->a % 16 == 0 && (uintptr_t)d->a_sf % 16 == 0 && d->n < d->m;
}

/* The rows of the 16-bit operand one launch covers: all of M, or (W4A4) a chunk of the rows
 * decoded to F16 (A's, or B's when the launch is swapped). */
int64_t launch_rows(const fp4_gemm_desc *d) {
    if (d->a_dtype != FP4_DTYPE_E2M1) return d->m;
    const int64_t total = w4a4_swapped(d) ? d->n : d->m;
    const int64_t c = a4_chunk_rows(total, d->k);
    return c > 0 && c < total ? c : total;
}

} // namespace

/* ---- the backend's entry points ----------------------------------------------------------- */

extern "C" fp4_status fp4_cuda_wgmma_init(fp4_ctx *ctx, fp4_cuda_wgmma_state **out) {
    *out = NULL;
    const int cc = ctx->info.compute_capability;
    if (cc < FP4_CC_HOPPER || cc >= FP4_CC_BLACKWELL) return FP4_OK;
    fp4_cuda_wgmma_state *st = (fp4_cuda_wgmma_state *)calloc(1, sizeof *st);
    if (!st) return FP4_FAIL(ctx, FP4_ERR_OUT_OF_MEMORY, "cuda_wgmma: out of host memory");
    st->runs =
        fp4_cuda_kernel_image((const void *)kernel_for(true, 0), "cuda_wgmma", cc) == cudaSuccess;
    if (!st->runs) {
        *out = st;
        return FP4_OK;
    }
    // the driver's tensor-map encoder, through the runtime (no link against libcuda)
    void *fn = NULL;
    cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
    cudaError_t err = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000,
                                                       cudaEnableDefault, &q);
    if (err != cudaSuccess || q != cudaDriverEntryPointSuccess || !fn) {
        (void)cudaGetLastError();
        free(st);
        return FP4_FAIL(ctx, FP4_ERR_CUDA, "cuda_wgmma: the driver has no cuTensorMapEncodeTiled (%s)",
                        cudaGetErrorString(err));
    }
    st->encode = (PFN_cuTensorMapEncodeTiled_v12000)fn;
    for (int bf = 0; bf < 2; bf++)
        for (int c = 0; c < kConfigCount; c++) {
            err = cudaFuncSetAttribute((const void *)kernel_for(bf != 0, c),
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, config_smem(c));
            if (err != cudaSuccess) {
                (void)cudaGetLastError();
                free(st);
                return FP4_FAIL(ctx, FP4_ERR_CUDA, "cuda_wgmma: cudaFuncSetAttribute: %s",
                                cudaGetErrorString(err));
            }
        }
    // the workspace, its split-K counters zeroed
    err = fp4_cuda_workspace_alloc(kWorkspaceBytes, kCounterBytes, &st->workspace);
    if (err != cudaSuccess) {
        free(st);
        return FP4_FAIL(ctx, fp4_cuda_status(err), "cuda_wgmma: workspace of %lld bytes: %s",
                        (long long)kWorkspaceBytes, cudaGetErrorString(err));
    }
    *out = st;
    return FP4_OK;
}

extern "C" void fp4_cuda_wgmma_fini(fp4_cuda_wgmma_state *state) {
    if (!state) return;
    fp4_cuda_workspace_free(state->workspace);
    free(state);
}

extern "C" int fp4_cuda_wgmma_config_count(void) { return kConfigCount; }

extern "C" const char *fp4_cuda_wgmma_config_name(int config) {
    return config >= 0 && config < kConfigCount ? kConfigs[config].name : NULL;
}

extern "C" int fp4_cuda_wgmma_default_config(const fp4_ctx *ctx, const fp4_gemm_desc *desc) {
    if (!desc) return 0;
    // the config whose best split-K plan has the lowest estimated time (make_plan)
    const int64_t rows = launch_rows(desc);
    int best = 0;
    double best_cost = 0.0;
    for (int c = 0; c < kConfigCount; c++) {
        const int64_t reg_rows = w4a4_swapped(desc) ? desc->m : desc->n;
        const Plan pl = make_plan(c, rows, reg_rows, desc->k, sm_count(ctx));
        if (c == 0 || pl.cost < best_cost) {
            best = c;
            best_cost = pl.cost;
        }
    }
    return best;
}

extern "C" const char *fp4_cuda_wgmma_why_not(const fp4_ctx *ctx,
                                              const fp4_cuda_wgmma_state *state,
                                              const fp4_gemm_desc *desc, int config, char *buf,
                                              size_t len) {
    const int cc = ctx->info.compute_capability;
    if (ctx->device < 0) return "needs a CUDA device; this context is on the CPU (device -1)";
    if (cc < FP4_CC_HOPPER || cc >= FP4_CC_BLACKWELL) {
        snprintf(buf, len, "needs sm_90 (Hopper: wgmma, TMA); this device is sm_%d", cc);
        return buf;
    }
    if (!state || !state->runs) {
        snprintf(buf, len, "no sm_90a kernel image for this device in this build");
        return buf;
    }
    if (config < -1 || config >= kConfigCount) {
        snprintf(buf, len, "config %d does not exist (cuda_wgmma has %d: 0..%d)", config,
                 kConfigCount, kConfigCount - 1);
        return buf;
    }
    if (!desc) return NULL;
    const int cfg = config < 0 ? fp4_cuda_wgmma_default_config(ctx, desc) : config;
    if (desc->b_sf_layout != FP4_SF_SWIZZLED_128x4)
        return "needs swizzled (128x4) weight scales: one 512-byte TMA copy per stage; convert "
               "linear ones once with fp4_sf_convert";
    if (desc->k % kKMultiple != 0) {
        snprintf(buf, len, "k = %lld is not a multiple of %d (whole 64-k stages)",
                 (long long)desc->k, kKMultiple);
        return buf;
    }
    if ((uintptr_t)desc->b % 16 != 0) return "b must be 16-byte aligned (TMA)";
    if ((uintptr_t)desc->b_sf % 16 != 0) return "b_sf must be 16-byte aligned (TMA)";
    if (desc->a_dtype == FP4_DTYPE_E2M1) {
        if ((uintptr_t)desc->a % 8 != 0) return "e2m1 a must be 8-byte aligned";
        if (a4_chunk_rows(desc->m, desc->k) == 0) {
            snprintf(buf, len, "k = %lld: 256 rows of activations decoded to F16 exceed the "
                     "%lld-byte workspace", (long long)desc->k, (long long)kA16Bytes);
            return buf;
        }
    } else if ((uintptr_t)desc->a % 16 != 0) {
        return "bf16/f16 a must be 16-byte aligned (TMA)";
    }
    if (desc->m > 0x7FFFFFFF || desc->n > 0x7FFFFFFF || desc->k > 0x7FFFFFFF)
        return "m, n and k must be below 2^31 (TMA coordinates)";
    if (fp4_ceil_div(desc->m, kConfigs[cfg].bn) * fp4_ceil_div(desc->n, kRows) > 0x7FFFFFFF) {
        snprintf(buf, len, "m = %lld, n = %lld make more than 2^31 - 1 tiles",
                 (long long)desc->m, (long long)desc->n);
        return buf;
    }
    return NULL;
}

/* One launch of the GEMM kernel: `rows` rows of register-operand E2M1 (rs, its swizzled scales
 * rs_sf) by `toks` rows of a 16-bit operand (tok16), K deep, into d: d[tok * ldd + row], or with
 * trans d[row * ldd + tok]. The plain launch is (B, A16) into D; the swapped W4A4 one (A, B16)
 * into D^T's view of D. */
struct Operands {
    const void *rs, *rs_sf;
    int64_t rows;
    const void *tok16;
    bool bf16;
    int64_t toks;
    void *d;
    bool trans;
};

static fp4_status launch_gemm(fp4_ctx *ctx, fp4_cuda_wgmma_state *st, const fp4_gemm_desc *desc,
                              int cfg, const Operands &o) {
    const WgConfig &c = kConfigs[cfg];
    const Plan pl = make_plan(cfg, o.toks, o.rows, desc->k, sm_count(ctx));
    WgArgs p;
    memset(&p, 0, sizeof p);
    const CUtensorMapDataType a_type =
        o.bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
    const int64_t k = desc->k;
    fp4_status s = encode_2d(ctx, st, &p.tm_a, "16-bit operand", o.tok16, a_type, 2, o.toks, k,
                             k, kStageK, c.bn, CU_TENSOR_MAP_SWIZZLE_128B);
    if (s == FP4_OK)
        s = encode_2d(ctx, st, &p.tm_b, "E2M1 operand", o.rs, CU_TENSOR_MAP_DATA_TYPE_UINT8, 1,
                      o.rows, k / 2, k / 2, kStageK / 2, kRows, CU_TENSOR_MAP_SWIZZLE_NONE);
    if (s == FP4_OK) // 512-byte scale tiles: (row tile, 64-k stage) in order, as 128 words each
        s = encode_2d(ctx, st, &p.tm_sf, "E2M1 scales", o.rs_sf, CU_TENSOR_MAP_DATA_TYPE_UINT32,
                      4, pl.tiles_n * (k / kStageK), kSfBytes / 4, kSfBytes / 4, kSfBytes / 4, 1,
                      CU_TENSOR_MAP_SWIZZLE_NONE);
    p.tma_store = desc->d_dtype != FP4_DTYPE_F32 && fp4_cuda_vec16_ok(o.d, desc->ldd, 2);
    const CUtensorMapDataType d_type = desc->d_dtype == FP4_DTYPE_F16
                                           ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16
                                           : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
    if (s == FP4_OK && p.tma_store)
        s = o.trans ? encode_2d(ctx, st, &p.tm_d, "D", o.d, d_type, 2, o.rows, o.toks, desc->ldd,
                                64, 64, CU_TENSOR_MAP_SWIZZLE_128B)
                    : encode_2d(ctx, st, &p.tm_d, "D", o.d, d_type, 2, o.toks, o.rows, desc->ldd,
                                64, c.bn, CU_TENSOR_MAP_SWIZZLE_128B);
    if (s != FP4_OK) return s;
    p.trans_out = o.trans;
    p.d = o.d;
    p.m = o.toks;
    p.n = o.rows;
    p.k = desc->k;
    p.ldd = desc->ldd;
    p.alpha = desc->alpha;
    p.alpha_ptr = desc->alpha_ptr;
    p.d_dtype = desc->d_dtype;
    p.tiles_n = pl.tiles_n;
    p.tiles_m = pl.tiles_m;
    p.splits = pl.splits;
    p.stages_per_split = pl.stages_per_split;
    char *ws = static_cast<char *>(st->workspace);
    p.counters = reinterpret_cast<unsigned *>(ws);
    p.partials = reinterpret_cast<float *>(ws + kCounterBytes);
    const int64_t grid = pl.units < sm_count(ctx) ? pl.units : sm_count(ctx);
    fp4_cuda_clear_last_error();
    kernel_for(o.bf16, cfg)<<<(unsigned)grid, kThreads, config_smem(cfg),
                              fp4_cuda_stream(desc->stream)>>>(p);
    FP4_CUDA_CHECK_LAUNCH(ctx, "cuda_wgmma kernel launch");
    return FP4_OK;
}

extern "C" fp4_status fp4_cuda_wgmma_gemm(fp4_ctx *ctx, fp4_cuda_wgmma_state *state,
                                          const fp4_gemm_desc *desc, int config) {
    const int cfg = config < 0 ? fp4_cuda_wgmma_default_config(ctx, desc) : config;
    if (desc->a_dtype != FP4_DTYPE_E2M1) {
        const Operands o = {desc->b, desc->b_sf, desc->n, desc->a,
                            desc->a_dtype == FP4_DTYPE_BF16, desc->m, desc->d, false};
        return launch_gemm(ctx, state, desc, cfg, o);
    }
    // W4A4: decode a chunk of the smaller operand's rows to F16 in the workspace, then multiply
    // with the other one decoded in registers; chunk by chunk
    const bool swap = w4a4_swapped(desc);
    const int64_t total = swap ? desc->n : desc->m;
    const int64_t chunk = launch_rows(desc);
    const int esize = desc->d_dtype == FP4_DTYPE_F32 ? 4 : 2;
    const cudaStream_t stream = fp4_cuda_stream(desc->stream);
    uint16_t *a16 = reinterpret_cast<uint16_t *>(static_cast<char *>(state->workspace) +
                                                 kCounterBytes + kPartialBytes);
    const uint8_t *q = static_cast<const uint8_t *>(swap ? desc->b : desc->a);
    const uint8_t *q_sf = static_cast<const uint8_t *>(swap ? desc->b_sf : desc->a_sf);
    const int q_swz = (swap ? desc->b_sf_layout : desc->a_sf_layout) == FP4_SF_SWIZZLED_128x4;
    for (int64_t r0 = 0; r0 < total; r0 += chunk) {
        const int64_t rows = total - r0 < chunk ? total - r0 : chunk;
        const unsigned blocks = fp4_cuda_grid_blocks(rows * (desc->k / 16), 256, sm_count(ctx));
        fp4_cuda_clear_last_error();
        sm90_decode_act_kernel<<<blocks, 256, 0, stream>>>(q, q_sf, q_swz, rows, desc->k, r0, a16);
        FP4_CUDA_CHECK_LAUNCH(ctx, "cuda_wgmma operand decode launch");
        Operands o;
        if (swap) // D[m][r0 + c]: columns r0.. of D, as D^T's rows
            o = {desc->a, desc->a_sf, desc->m, a16, false, rows,
                 static_cast<uint8_t *>(desc->d) + r0 * esize, true};
        else
            o = {desc->b, desc->b_sf, desc->n, a16, false, rows,
                 static_cast<uint8_t *>(desc->d) + r0 * desc->ldd * esize, false};
        const fp4_status s = launch_gemm(ctx, state, desc, cfg, o);
        if (s != FP4_OK) return s;
    }
    return FP4_OK;
}

/*
 * sm80_mma_gemm.cu - the `cuda_mma` backend: NVFP4 GEMM on mma.sync tensor cores, sm_80+.
 *
 *   D[m, n] = alpha * sum_k A[m, k] * B[n, k]
 *   B: (N, K/2) bytes of E2M1 + E4M3 scales (the weight); A: E2M1 + scales (W4A4) or BF16/F16
 *   (W4A16), (M, K) row-major; D: (M, ldd) F32/F16/BF16.
 *
 * The idea: an E2M1 value times its E4M3 scale is exact in FP16 and in BF16, so each weight is
 * decoded with its block scale folded in, in registers, and multiplied on the tensor cores with
 * FP32 accumulation: the Blackwell result up to the order of the FP32 additions.
 *
 * Layout of the work ("swap AB": D^T = B A^T): the weight rows are the MMA's M side (16 rows per
 * m16n8k16), the tokens its N side (8 per MMA), so that a decode-size M (1..64 tokens) still fills
 * the MMA. A CTA of 4 warps owns BN = 64 R weight rows (each warp R tiles of 16 rows, all BM
 * tokens of the CTA) and a range of K (split-K over gridDim.y when the tiles alone cannot fill
 * the GPU).
 *
 * The k order inside an MMA is free, as long as both operands use the same one: thread (g, t) of
 * a warp (g = lane / 4, t = lane % 4) takes the 16 contiguous bytes [16 t, 16 t + 16) of its
 * weight rows g and g + 8 in each 128-k chunk (64 bytes a row), i.e. elements [32 t, 32 t + 32)
 * of the chunk, and feeds them to 8 MMAs (4 elements a row each). The activations are read in the
 * same order. So the weights never need a pre-pack: each lane reads one 16-byte vector per row.
 *
 * Pipeline per 256-k stage: cp.async brings the weight rows (and BF16/F16 activations) of stage
 * s + 3 into a 4-deep shared-memory ring while stage s is computed; E2M1 activations (W4A4) are
 * loaded into registers one stage ahead and decoded once per CTA into shared memory; the weight
 * scales are loaded into registers one stage ahead.
 *
 * Decode: an E2M1 code's magnitude selects the high byte of its FP16 (or both bytes of its BF16)
 * value from an 8-entry byte table with PRMT; the sign bit is moved into place; the block scale
 * is applied with one exact HMUL2. Pairs come out as (e0, e2), (e1, e3), (e4, e6), (e5, e7) of
 * each 8-element word, and the activations are paired the same way.
 */
#include "cuda/cuda_util.cuh"
#include "cuda/mma/mma.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <stdio.h>
#include <stdlib.h>

struct fp4_cuda_mma_state {
    int runs;          /* the kernels have an image for this device */
    int smem_optin;    /* bytes of dynamic shared memory a block may opt in to */
    void *workspace;   /* counters, then split-K partials */
    int64_t workspace_bytes;
};

namespace {

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr int kStageK = 256;                 /* k per pipeline stage */
constexpr int kChunkK = 128;                 /* k per chunk: 64 bytes of a weight row */
constexpr int kChunks = kStageK / kChunkK;   /* 2 */
constexpr int kStages = 4;                   /* depth of the cp.async ring */
constexpr int kRowUnits = kStageK / 32;      /* 16-byte units of a weight row per stage: 8 */
constexpr int kMaxCounters = 16384;          /* split-K tiles per launch */
constexpr int64_t kCounterBytes = kMaxCounters * 4;
constexpr int64_t kWorkspaceBytes = 32ll << 20; /* partials; documented in docs/backends.md */
constexpr int kMaxSplits = 16;

struct MmaConfig {
    const char *name;
    int bm; /* tokens per CTA (the MMA's N side), a multiple of 8 */
    int r;  /* 16-row weight tiles per warp: BN = 16 r kWarps rows per CTA */
};

/* The configs; each one's limits are its shared memory (checked against the device) and the
 * common ones in why_not. */
constexpr MmaConfig kConfigs[] = {
    {"m8_r1", 8, 1},  {"m16_r1", 16, 1}, {"m32_r1", 32, 1}, {"m64_r1", 64, 1},
    {"m8_r2", 8, 2},  {"m16_r2", 16, 2}, {"m32_r2", 32, 2}, {"m64_r2", 64, 2},
};
constexpr int kConfigCount = (int)(sizeof kConfigs / sizeof kConfigs[0]);

struct MmaArgs {
    int64_t m, n, k;
    const void *a;          /* E2M1: (m, k/2) bytes; BF16/F16: (m, k) elements */
    const uint8_t *a_sf;    /* E2M1 only */
    const uint8_t *b;       /* (n, k/2) bytes */
    const uint8_t *b_sf;
    void *d;                /* (m, ldd) elements */
    int64_t ldd;
    float alpha;
    const float *alpha_ptr; /* device pointer or NULL */
    fp4_dtype d_dtype;
    bool a_swizzled, b_swizzled;
    bool b_vec16;           /* 16-byte weight copies (k % 32 == 0, 16-byte aligned), else 8 */
    bool b_sf_pairs;        /* k-blocks 2t, 2t+1 both exist and are one aligned 16-bit word */
    int n_stages;           /* ceil(k / kStageK) */
    int stages_per_split;
    int splits;
    int64_t tiles_n, tiles_m;
    float *partials;        /* split-K: [splits, tiles, acc, threads] floats */
    unsigned *counters;     /* split-K: one per tile, zero between launches */
};

/* Dynamic shared memory of a config: the weight ring, then the activations (a ring for
 * BF16/F16, two decoded buffers for E2M1). */
__host__ __device__ constexpr int smem_weight_bytes(int r) { return kStages * 64 * r * kStageK / 2; }
__host__ __device__ constexpr int smem_act_bytes(int bm, bool a4) {
    return (a4 ? 2 : kStages) * bm * kStageK * 2;
}
__host__ __device__ constexpr int smem_bytes(int bm, int r, bool a4) {
    return smem_weight_bytes(r) + smem_act_bytes(bm, a4);
}

/* ---- device helpers -------------------------------------------------------------------- */

__device__ __forceinline__ void cp_async16(void *smem, const void *gmem, bool valid) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem),
                 "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async8(void *smem, const void *gmem, bool valid) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;\n" ::"r"(s), "l"(gmem),
                 "r"(valid ? 8 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

/* D += A B on one m16n8k16 tile; T = FP16 or BF16 operands, FP32 accumulators. */
template <bool BF16>
__device__ __forceinline__ void mma16816(float c[4], const uint32_t a[4], uint32_t b0,
                                         uint32_t b1) {
    if constexpr (BF16) {
        asm volatile(
            "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, "
            "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    } else {
        asm volatile(
            "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, "
            "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
}

/* 8 E2M1 codes (word w, element i in bits 4i..4i+3) to four FP16x2 or BF16x2 pairs:
 * p[0] = (e0, e2), p[1] = (e1, e3), p[2] = (e4, e6), p[3] = (e5, e7), exact values.
 * The magnitude (code & 7) selects table bytes with PRMT (selector nibbles 1 and 3 of the
 * masked word; nibbles 0 and 2 are 0 and pick the table's 0x00); the sign bits are moved to
 * bits 15 and 31 by a byte spread. */
template <bool BF16>
__device__ __forceinline__ void decode_e2m1x8(uint32_t w, uint32_t p[4]) {
    const uint32_t w4 = w << 4;
    const uint32_t sel[4] = {w4 & 0x7070u, w & 0x7070u, (w4 >> 16) & 0x7070u,
                             (w >> 16) & 0x7070u};
    const uint32_t sgn[4] = {__byte_perm(w4, 0u, 0x1404), __byte_perm(w, 0u, 0x1404),
                             __byte_perm(w4, 0u, 0x3424), __byte_perm(w, 0u, 0x3424)};
    if constexpr (BF16) {
        /* BF16 values of 0, .5, 1, 1.5, 2, 3, 4, 6: high bytes and low bytes */
        const uint32_t lo_sel[4] = {w & 0x0707u, (w >> 4) & 0x0707u, (w >> 16) & 0x0707u,
                                    (w >> 20) & 0x0707u};
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const uint32_t hi = __byte_perm(0x3F3F3F00u, 0x40404040u, sel[i]);
            const uint32_t lo = __byte_perm(0xC0800000u, 0xC0804000u, lo_sel[i]);
            p[i] = hi | lo | (sgn[i] & 0x80008000u);
        }
    } else {
        /* FP16 high bytes of 0, .5, 1, 1.5, 2, 3, 4, 6 (the low bytes are 0) */
#pragma unroll
        for (int i = 0; i < 4; i++)
            p[i] = __byte_perm(0x3E3C3800u, 0x46444240u, sel[i]) | (sgn[i] & 0x80008000u);
    }
}

/* Two E4M3 scales (lo byte, hi byte) to two broadcast pairs (lo, lo) and (hi, hi), FP16 or
 * BF16, exact (every E4M3 value is an FP16 and a BF16 value). */
template <bool BF16>
__device__ __forceinline__ void scales_to_pairs(uint32_t two, uint32_t &s_lo, uint32_t &s_hi) {
    const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2((__nv_fp8x2_storage_t)two, __NV_E4M3);
    uint32_t hw;
    memcpy(&hw, &h, 4);
    if constexpr (BF16) {
        __half2 hh;
        memcpy(&hh, &hw, 4);
        const __nv_bfloat162 b = __float22bfloat162_rn(__half22float2(hh));
        memcpy(&hw, &b, 4);
    }
    s_lo = __byte_perm(hw, 0u, 0x1010);
    s_hi = __byte_perm(hw, 0u, 0x3232);
}

template <bool BF16>
__device__ __forceinline__ uint32_t mul_pair(uint32_t x, uint32_t s) {
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

__device__ __forceinline__ int64_t sf_row_base(bool swizzled, int64_t row, int64_t k) {
    if (!swizzled) return row * (k / 16);
    const int64_t kt = (k / 16 + 3) / 4;
    return (row / 128) * (kt * 512) + (row % 32) * 16 + ((row % 128) / 32) * 4;
}
__device__ __forceinline__ int64_t sf_kb_offset(bool swizzled, int64_t kb) {
    return swizzled ? (kb / 4) * 512 + kb % 4 : kb;
}

template <fp4_dtype DT>
__device__ __forceinline__ void store_out(void *d, int64_t index, float x) {
    fp4_store_elem<DT>(d, index, x);
}

/* ---- the kernel ------------------------------------------------------------------------ */

template <fp4_dtype AT, int BM, int R>
__global__ void __launch_bounds__(kThreads) sm80_mma_gemm_kernel(MmaArgs p) {
    constexpr int BN = 16 * R * kWarps;
    constexpr int N8 = BM / 8;
    constexpr bool kA4 = AT == FP4_DTYPE_E2M1;
    constexpr bool kBf16 = AT == FP4_DTYPE_BF16;
    constexpr int kAcc = R * N8 * 4;
    extern __shared__ uint4 smem[];
    /* weight ring: [kStages][BN rows][kRowUnits] 16-byte units, unit u of row r stored at
     * u ^ ((r & 1) << 2) so that a phase of 8 lanes (two rows) hits 8 different bank groups */
    uint4 *wsm = smem;
    /* activations: [buffers][N8][kChunks][4 pieces j][8 tokens g][4 lanes t] 16-byte units:
     * unit (j, g, t) holds token g's elements [32 t + 8 j, + 8) of the chunk, so that lane
     * 4 g + t reads unit index 32 j + lane: 512 contiguous bytes per warp read */
    uint4 *asm_ = smem + kStages * BN * kRowUnits;
    constexpr int kActUnits = N8 * kChunks * 128; /* per buffer */

    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const int g = lane / 4, t = lane % 4;
    const int64_t k = p.k, kblocks = k / 16;

    // which tile: grouped rasterization (16 weight tiles a group, every token tile inside)
    int64_t tn, tm;
    {
        constexpr int64_t G = 16;
        const int64_t tile = blockIdx.x;
        const int64_t group = tile / (G * p.tiles_m);
        const int64_t first = group * G;
        const int64_t width = p.tiles_n - first < G ? p.tiles_n - first : G;
        const int64_t within = tile - group * G * p.tiles_m;
        tn = first + within % width;
        tm = within / width;
    }
    const int64_t n0 = tn * BN, m0 = tm * BM;
    const int split = blockIdx.y;
    const int st_begin = split * p.stages_per_split;
    int nst = p.n_stages - st_begin;
    if (nst > p.stages_per_split) nst = p.stages_per_split;
    if (nst < 0) nst = 0;

    // this lane's weight rows, and pointers to their scales at stage 0 (k-blocks 2t, 2t+1 of
    // chunk 0); a stage moves them by sf_stride, a chunk by sf_chunk
    const int64_t sf_stride = p.b_swizzled ? 2048 : 16; /* 16 k-blocks: 4 tiles of 512 bytes */
    const int sf_chunk = p.b_swizzled ? 1024 : 8;
    const int sf_lane = p.b_swizzled ? (t / 2) * 512 + 2 * (t % 2) : 2 * t;
    int64_t wrow[R][2];
    const uint8_t *wsf[R][2];
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            wrow[r][h] = n0 + warp * 16 * R + r * 16 + g + 8 * h;
            wsf[r][h] = wrow[r][h] < p.n
                            ? p.b_sf + sf_row_base(p.b_swizzled, wrow[r][h], k) + sf_lane
                            : nullptr;
        }

    // ---- producers -------------------------------------------------------------------
    // weights, 16-byte units: copy i of a thread is row tid / 8 + 16 i, unit tid % 8
    const int wu16 = tid % kRowUnits, wr16 = tid / kRowUnits;
    const uint8_t *wsrc16 = p.b + (n0 + wr16) * (k / 2) + 16 * wu16;
    const int wdst16 = wr16 * kRowUnits + (wu16 ^ ((wr16 & 1) << 2));
    // 8-byte units: row tid / 16 + 8 i, half-unit tid % 16
    const int wh8 = tid % (2 * kRowUnits), wr8 = tid / (2 * kRowUnits);
    const uint8_t *wsrc8 = p.b + (n0 + wr8) * (k / 2) + 8 * wh8;
    const int wdst8 = (wr8 * kRowUnits + ((wh8 / 2) ^ ((wr8 & 1) << 2))) * 16 + 8 * (wh8 % 2);
    auto issue_weights = [&](int stage, int slot) {
        const int64_t k0 = (int64_t)stage * kStageK;
        if (p.b_vec16) {
            uint4 *dst = wsm + slot * BN * kRowUnits + wdst16;
            const bool k_ok = k0 + 32 * wu16 < k;
#pragma unroll
            for (int i = 0; i < BN * kRowUnits / kThreads; i++) {
                const int row = wr16 + i * (kThreads / kRowUnits);
                const bool ok = k_ok && n0 + row < p.n;
                const uint8_t *src = wsrc16 + (int64_t)i * (kThreads / kRowUnits) * (k / 2) + k0 / 2;
                cp_async16(dst + i * kThreads, ok ? src : p.b, ok);
            }
        } else {
            uint8_t *dst = reinterpret_cast<uint8_t *>(wsm + slot * BN * kRowUnits) + wdst8;
            const bool k_ok = k0 + 16 * wh8 < k;
#pragma unroll
            for (int i = 0; i < 2 * BN * kRowUnits / kThreads; i++) {
                const int row = wr8 + i * (kThreads / (2 * kRowUnits));
                const bool ok = k_ok && n0 + row < p.n;
                const uint8_t *src =
                    wsrc8 + (int64_t)i * (kThreads / (2 * kRowUnits)) * (k / 2) + k0 / 2;
                cp_async8(dst + i * (kThreads / (2 * kRowUnits)) * kRowUnits * 16,
                          ok ? src : p.b, ok);
            }
        }
    };
    // BF16/F16 activations: cp.async straight into the fragment order. Copy i of a thread is
    // token tid / 32 + 4 i, 8-element group q = tid % 32 of the stage
    const int aq = tid % 32, atok0 = tid / 32;
    const int a_c = aq / 16, a_t = (aq % 16) / 4, a_j = aq % 4;
    auto issue_act16 = [&](int stage, int slot) {
        const int64_t kk = (int64_t)stage * kStageK + 8 * aq;
        uint4 *dst = asm_ + slot * kActUnits;
        const uint16_t *a = static_cast<const uint16_t *>(p.a);
#pragma unroll
        for (int i = 0; i < BM * 32 / kThreads; i++) {
            const int tok = atok0 + 4 * i;
            const int64_t m = m0 + tok;
            const bool ok = m < p.m && kk < k;
            cp_async16(dst + (((tok / 8) * kChunks + a_c) * 4 + a_j) * 32 + (tok % 8) * 4 + a_t,
                       ok ? a + m * k + kk : a, ok);
        }
    };
    // E2M1 activations: 8 bytes + 1 scale per (token, k-block) unit, in registers. Unit i of a
    // thread is token tid / 16 + 8 i, k-block tid % 16 of the stage
    constexpr int kA4Units = BM * (kStageK / 16) / kThreads; /* BM >= 8: at least 1 */
    static_assert(BM % 8 == 0 && BM * (kStageK / 16) % kThreads == 0, "whole units per thread");
    const int a4_kb = tid % 16, a4_tok0 = tid / 16;
    uint2 a4_q[kA4Units];
    uint32_t a4_s[kA4Units];
    auto load_act4 = [&](int stage) {
        const int64_t kbg = (int64_t)stage * (kStageK / 16) + a4_kb;
        const uint8_t *a = static_cast<const uint8_t *>(p.a);
        const int64_t sf_kb = sf_kb_offset(p.a_swizzled, kbg);
#pragma unroll
        for (int i = 0; i < kA4Units; i++) {
            const int64_t m = m0 + a4_tok0 + 8 * i;
            const bool ok = m < p.m && kbg < kblocks;
            a4_q[i] = ok ? __ldg(reinterpret_cast<const uint2 *>(a + m * (k / 2) + kbg * 8))
                         : make_uint2(0, 0);
            a4_s[i] = ok ? __ldg(p.a_sf + sf_row_base(p.a_swizzled, m, k) + sf_kb) : 0;
        }
    };
    auto store_act4 = [&](int buf) {
        uint4 *dst = asm_ + buf * kActUnits;
        const int c = a4_kb / 8, tt = (a4_kb % 8) / 2, j0 = 2 * (a4_kb % 2);
#pragma unroll
        for (int i = 0; i < kA4Units; i++) {
            const int tok = a4_tok0 + 8 * i;
            uint32_t s_lo, s_hi;
            scales_to_pairs<false>(a4_s[i], s_lo, s_hi);
            const uint32_t words[2] = {a4_q[i].x, a4_q[i].y};
#pragma unroll
            for (int w = 0; w < 2; w++) {
                uint32_t pr[4];
                decode_e2m1x8<false>(words[w], pr);
                uint4 v;
                v.x = mul_pair<false>(pr[0], s_lo);
                v.y = mul_pair<false>(pr[1], s_lo);
                v.z = mul_pair<false>(pr[2], s_lo);
                v.w = mul_pair<false>(pr[3], s_lo);
                dst[(((tok / 8) * kChunks + c) * 4 + j0 + w) * 32 + (tok % 8) * 4 + tt] = v;
            }
        }
    };
    // weight scales of one stage: [r][row g / g + 8][chunk], k-blocks 2t and 2t + 1 of it
    uint32_t wsc_next[R][2][kChunks];
    auto load_wscales = [&](int stage) {
#pragma unroll
        for (int c = 0; c < kChunks; c++) {
            const int64_t kb = (int64_t)stage * (kStageK / 16) + c * 8 + 2 * t;
            const bool lo_ok = kb < kblocks, hi_ok = kb + 1 < kblocks;
#pragma unroll
            for (int r = 0; r < R; r++)
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    const uint8_t *q = wsf[r][h] + stage * sf_stride + c * sf_chunk;
                    uint32_t v = 0;
                    if (wsf[r][h] && lo_ok) {
                        if (p.b_sf_pairs)
                            v = __ldg(reinterpret_cast<const unsigned short *>(q));
                        else
                            v = (uint32_t)__ldg(q) | (hi_ok ? (uint32_t)__ldg(q + 1) << 8 : 0u);
                    }
                    wsc_next[r][h][c] = v;
                }
        }
    };

    float acc[R][N8][4];
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int j = 0; j < N8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[r][j][e] = 0.0f;

    // ---- prologue: stages 0..kStages-2 in flight -------------------------------------------
#pragma unroll
    for (int s = 0; s < kStages - 1; s++) {
        if (s < nst) {
            issue_weights(st_begin + s, s);
            if constexpr (!kA4) issue_act16(st_begin + s, s);
        }
        cp_async_commit();
    }
    if (nst > 0) {
        load_wscales(st_begin);
        if constexpr (kA4) load_act4(st_begin);
    }

    // ---- main loop --------------------------------------------------------------------------
#pragma unroll 1
    for (int s = 0; s < nst; s++) {
        const int slot = s % kStages;
        if constexpr (kA4) store_act4((int)(s & 1)); // decoded once per CTA
        uint32_t wsc[R][2][kChunks];
#pragma unroll
        for (int r = 0; r < R; r++)
#pragma unroll
            for (int h = 0; h < 2; h++)
#pragma unroll
                for (int c = 0; c < kChunks; c++) wsc[r][h][c] = wsc_next[r][h][c];

        // wait for stage s, then refill the slot stage s - 1 used
        cp_async_wait<kStages - 2>();
        __syncthreads();
        if (s + kStages - 1 < nst) {
            const int nslot = (int)((s + kStages - 1) % kStages);
            issue_weights(st_begin + s + kStages - 1, nslot);
            if constexpr (!kA4) issue_act16(st_begin + s + kStages - 1, nslot);
        }
        cp_async_commit();
        if (s + 1 < nst) {
            load_wscales(st_begin + s + 1);
            if constexpr (kA4) load_act4(st_begin + s + 1);
        }

        const uint4 *wst = wsm + slot * BN * kRowUnits;
        const uint4 *ast = asm_ + (kA4 ? (int)(s & 1) : slot) * kActUnits;
#pragma unroll
        for (int c = 0; c < kChunks; c++) {
            uint4 wv[R][2];
            uint32_t sc[R][2][2];
#pragma unroll
            for (int r = 0; r < R; r++)
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    const int row = warp * 16 * R + r * 16 + g + 8 * h;
                    wv[r][h] = wst[row * kRowUnits + ((c * 4 + t) ^ ((row & 1) << 2))];
                    scales_to_pairs<kBf16>(wsc[r][h][c], sc[r][h][0], sc[r][h][1]);
                }
#pragma unroll
            for (int i = 0; i < 4; i++) { // word i: elements [32 t + 8 i, + 8) of the chunk
                uint32_t a0[R][4], a1[R][4]; // MMA steps 2 i and 2 i + 1
#pragma unroll
                for (int r = 0; r < R; r++)
#pragma unroll
                    for (int h = 0; h < 2; h++) {
                        const uint32_t word = i == 0 ? wv[r][h].x
                                              : i == 1 ? wv[r][h].y
                                              : i == 2 ? wv[r][h].z
                                                       : wv[r][h].w;
                        const uint32_t s2 = sc[r][h][i / 2];
                        uint32_t pr[4];
                        decode_e2m1x8<kBf16>(word, pr);
                        a0[r][h] = mul_pair<kBf16>(pr[0], s2);     /* (e0, e2): k 2t, 2t+1 */
                        a0[r][2 + h] = mul_pair<kBf16>(pr[1], s2); /* (e1, e3): k 2t+8, 2t+9 */
                        a1[r][h] = mul_pair<kBf16>(pr[2], s2);
                        a1[r][2 + h] = mul_pair<kBf16>(pr[3], s2);
                    }
#pragma unroll
                for (int j = 0; j < N8; j++) {
                    const uint4 v = ast[((j * kChunks + c) * 4 + i) * 32 + lane];
                    uint32_t b[4];
                    if constexpr (kA4) {
                        b[0] = v.x; b[1] = v.y; b[2] = v.z; b[3] = v.w;
                    } else { /* (e0,e1)(e2,e3)(e4,e5)(e6,e7) -> (e0,e2)(e1,e3)(e4,e6)(e5,e7) */
                        b[0] = __byte_perm(v.x, v.y, 0x5410);
                        b[1] = __byte_perm(v.x, v.y, 0x7632);
                        b[2] = __byte_perm(v.z, v.w, 0x5410);
                        b[3] = __byte_perm(v.z, v.w, 0x7632);
                    }
#pragma unroll
                    for (int r = 0; r < R; r++) {
                        mma16816<kBf16>(acc[r][j], a0[r], b[0], b[1]);
                        mma16816<kBf16>(acc[r][j], a1[r], b[2], b[3]);
                    }
                }
            }
        }
    }
    cp_async_wait<0>();

    // ---- split-K: the last CTA of a tile sums the partials in split order ------------------------
    if (p.splits > 1) {
        __shared__ unsigned s_prev;
        const int64_t tile = blockIdx.x;
        float *part = p.partials + ((int64_t)split * gridDim.x + tile) * kAcc * kThreads;
#pragma unroll
        for (int r = 0; r < R; r++)
#pragma unroll
            for (int j = 0; j < N8; j++)
#pragma unroll
                for (int e = 0; e < 4; e++) __stcg(part + ((r * N8 + j) * 4 + e) * kThreads + tid, acc[r][j][e]);
        __threadfence();
        __syncthreads();
        if (tid == 0) s_prev = atomicAdd(p.counters + tile, 1u);
        __syncthreads();
        if (s_prev != (unsigned)p.splits - 1) return;
        __threadfence();
#pragma unroll
        for (int r = 0; r < R; r++)
#pragma unroll
            for (int j = 0; j < N8; j++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    float sum = 0.0f;
#pragma unroll 1
                    for (int sp = 0; sp < p.splits; sp++)
                        sum += __ldcg(p.partials + ((int64_t)sp * gridDim.x + tile) * kAcc * kThreads +
                                      ((r * N8 + j) * 4 + e) * kThreads + tid);
                    acc[r][j][e] = sum;
                }
        if (tid == 0) p.counters[tile] = 0; /* ready for the next launch */
    }

    // ---- epilogue: c0, c1 = (row g, tokens 2t, 2t+1); c2, c3 = (row g + 8, same tokens) ------
    const float alpha = p.alpha_ptr ? *p.alpha_ptr : p.alpha;
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int j = 0; j < N8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int64_t n = wrow[r][e / 2];
                const int64_t m = m0 + j * 8 + 2 * t + (e % 2);
                if (n >= p.n || m >= p.m) continue;
                const float y = __fmul_rn(alpha, acc[r][j][e]);
                const int64_t idx = m * p.ldd + n;
                switch (p.d_dtype) {
                case FP4_DTYPE_F32: store_out<FP4_DTYPE_F32>(p.d, idx, y); break;
                case FP4_DTYPE_F16: store_out<FP4_DTYPE_F16>(p.d, idx, y); break;
                default: store_out<FP4_DTYPE_BF16>(p.d, idx, y); break;
                }
            }
}

/* ---- host: the instantiated kernels ------------------------------------------------------ */

typedef void (*MmaKernel)(MmaArgs);

template <fp4_dtype AT>
MmaKernel kernel_for(int config) {
    switch (config) {
    case 0: return sm80_mma_gemm_kernel<AT, 8, 1>;
    case 1: return sm80_mma_gemm_kernel<AT, 16, 1>;
    case 2: return sm80_mma_gemm_kernel<AT, 32, 1>;
    case 3: return sm80_mma_gemm_kernel<AT, 64, 1>;
    case 4: return sm80_mma_gemm_kernel<AT, 8, 2>;
    case 5: return sm80_mma_gemm_kernel<AT, 16, 2>;
    case 6: return sm80_mma_gemm_kernel<AT, 32, 2>;
    default: return sm80_mma_gemm_kernel<AT, 64, 2>;
    }
}

MmaKernel kernel_for(fp4_dtype a_dtype, int config) {
    switch (a_dtype) {
    case FP4_DTYPE_E2M1: return kernel_for<FP4_DTYPE_E2M1>(config);
    case FP4_DTYPE_BF16: return kernel_for<FP4_DTYPE_BF16>(config);
    default: return kernel_for<FP4_DTYPE_F16>(config);
    }
}

int config_smem(int config, fp4_dtype a_dtype) {
    const MmaConfig &c = kConfigs[config];
    return smem_bytes(c.bm, c.r, a_dtype == FP4_DTYPE_E2M1);
}

/* The launch shape of a config for a problem: tiles, and the split-K factor: enough CTAs for
 * about 4 per SM when the tiles alone are fewer, never more than the stages or what the
 * workspace holds. */
struct Plan {
    int64_t tiles_n, tiles_m, n_stages, stages_per_split;
    int splits;
};

Plan make_plan(const fp4_ctx *ctx, const fp4_cuda_mma_state *state, const fp4_gemm_desc *d,
               int config) {
    const MmaConfig &c = kConfigs[config];
    Plan pl;
    const int64_t bn = 16 * c.r * kWarps;
    pl.tiles_n = fp4_ceil_div(d->n, bn);
    pl.tiles_m = fp4_ceil_div(d->m, c.bm);
    pl.n_stages = fp4_ceil_div(d->k, kStageK);
    const int64_t tiles = pl.tiles_n * pl.tiles_m;
    const int64_t target = 4 * (int64_t)(ctx->info.sm_count > 0 ? ctx->info.sm_count : 1);
    int64_t splits = tiles >= target ? 1 : fp4_ceil_div(target, tiles);
    if (splits > kMaxSplits) splits = kMaxSplits;
    if (splits > pl.n_stages) splits = pl.n_stages;
    const int64_t per_split_bytes = tiles * bn * c.bm * 4;
    const int64_t room = state ? state->workspace_bytes - kCounterBytes : 0;
    while (splits > 1 && (splits * per_split_bytes > room || tiles > kMaxCounters)) splits--;
    if (splits < 1) splits = 1;
    pl.stages_per_split = fp4_ceil_div(pl.n_stages, splits);
    pl.splits = (int)fp4_ceil_div(pl.n_stages, pl.stages_per_split); /* no empty split */
    return pl;
}

} // namespace

/* ---- the backend's entry points ----------------------------------------------------------- */

extern "C" fp4_status fp4_cuda_mma_init(fp4_ctx *ctx, fp4_cuda_mma_state **out) {
    *out = NULL;
    if (ctx->info.compute_capability < FP4_CC_AMPERE) return FP4_OK;
    fp4_cuda_mma_state *st = (fp4_cuda_mma_state *)calloc(1, sizeof *st);
    if (!st) return FP4_FAIL(ctx, FP4_ERR_OUT_OF_MEMORY, "cuda_mma: out of host memory");
    cudaFuncAttributes attr;
    const cudaError_t probe =
        cudaFuncGetAttributes(&attr, (const void *)kernel_for(FP4_DTYPE_E2M1, 0));
    (void)cudaGetLastError();
    st->runs = probe == cudaSuccess;
    if (!st->runs) {
        fp4_log(FP4_LOG_INFO, "cuda_mma has no image for sm_%d: %s", ctx->info.compute_capability,
                cudaGetErrorString(probe));
        *out = st;
        return FP4_OK;
    }
    int optin = 0;
    if (cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, ctx->device) !=
        cudaSuccess) {
        (void)cudaGetLastError();
        optin = 48 * 1024;
    }
    st->smem_optin = optin;
    // every kernel may use its whole dynamic shared memory (set once: not in the hot path)
    static const fp4_dtype a_types[3] = {FP4_DTYPE_E2M1, FP4_DTYPE_BF16, FP4_DTYPE_F16};
    for (int a = 0; a < 3; a++)
        for (int c = 0; c < kConfigCount; c++) {
            const int bytes = config_smem(c, a_types[a]);
            if (bytes > optin) continue;
            const cudaError_t err = cudaFuncSetAttribute(
                (const void *)kernel_for(a_types[a], c),
                cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
            if (err != cudaSuccess) {
                (void)cudaGetLastError();
                free(st);
                return FP4_FAIL(ctx, FP4_ERR_CUDA, "cuda_mma: cudaFuncSetAttribute: %s",
                                cudaGetErrorString(err));
            }
        }
    // split-K workspace: zeroed counters, then the partials
    const int64_t bytes = kCounterBytes + kWorkspaceBytes;
    cudaError_t err = cudaMalloc(&st->workspace, (size_t)bytes);
    if (err == cudaSuccess) err = cudaMemset(st->workspace, 0, (size_t)kCounterBytes);
    if (err == cudaSuccess) err = cudaDeviceSynchronize();
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        cudaFree(st->workspace);
        free(st);
        return FP4_FAIL(ctx, fp4_cuda_status(err), "cuda_mma: workspace of %lld bytes: %s",
                        (long long)bytes, cudaGetErrorString(err));
    }
    st->workspace_bytes = bytes;
    *out = st;
    return FP4_OK;
}

extern "C" void fp4_cuda_mma_fini(fp4_cuda_mma_state *state) {
    if (!state) return;
    if (state->workspace) {
        cudaFree(state->workspace);
        (void)cudaGetLastError();
    }
    free(state);
}

extern "C" int fp4_cuda_mma_config_count(void) { return kConfigCount; }

extern "C" const char *fp4_cuda_mma_config_name(int config) {
    return config >= 0 && config < kConfigCount ? kConfigs[config].name : NULL;
}

extern "C" int fp4_cuda_mma_default_config(const fp4_ctx *ctx, const fp4_gemm_desc *desc) {
    (void)ctx;
    const int64_t m = desc ? desc->m : 1;
    if (m <= 8) return 0;  /* m8_r1 */
    if (m <= 16) return 1; /* m16_r1 */
    if (m <= 32) return 2; /* m32_r1 */
    return 3;              /* m64_r1 */
}

extern "C" const char *fp4_cuda_mma_why_not(const fp4_ctx *ctx, const fp4_cuda_mma_state *state,
                                            const fp4_gemm_desc *desc, int config, char *buf,
                                            size_t len) {
    const int cc = ctx->info.compute_capability;
    if (ctx->device < 0) return "needs a CUDA device; this context is on the CPU (device -1)";
    if (cc < FP4_CC_AMPERE) {
        snprintf(buf, len, "needs sm_80 or newer (mma.sync m16n8k16 BF16/FP16); this device is sm_%d",
                 cc);
        return buf;
    }
    if (!state || !state->runs) {
        snprintf(buf, len, "no kernel image for sm_%d in this build (built for %s)", cc,
                 fp4_built_cuda_archs());
        return buf;
    }
    if (config < -1 || config >= kConfigCount) {
        snprintf(buf, len, "config %d does not exist (cuda_mma has %d: 0..%d)", config,
                 kConfigCount, kConfigCount - 1);
        return buf;
    }
    if (!desc) return NULL;
    const int cfg = config < 0 ? fp4_cuda_mma_default_config(ctx, desc) : config;
    const int smem = config_smem(cfg, desc->a_dtype);
    if (smem > state->smem_optin) {
        snprintf(buf, len, "config %s needs %d bytes of shared memory; the device allows %d",
                 kConfigs[cfg].name, smem, state->smem_optin);
        return buf;
    }
    if ((uintptr_t)desc->b % 8 != 0) return "b must be 8-byte aligned (cp.async of weight rows)";
    if (desc->a_dtype == FP4_DTYPE_E2M1) {
        if ((uintptr_t)desc->a % 8 != 0) return "e2m1 a must be 8-byte aligned";
    } else if ((uintptr_t)desc->a % 16 != 0) {
        return "bf16/f16 a must be 16-byte aligned (cp.async of activation rows)";
    }
    if (fp4_ceil_div(desc->m, kConfigs[cfg].bm) * fp4_ceil_div(desc->n, 16 * kConfigs[cfg].r * kWarps) >
        (int64_t)0x7FFFFFFF) {
        snprintf(buf, len, "m = %lld, n = %lld make more than 2^31 - 1 tiles", (long long)desc->m,
                 (long long)desc->n);
        return buf;
    }
    return NULL;
}

extern "C" fp4_status fp4_cuda_mma_gemm(fp4_ctx *ctx, fp4_cuda_mma_state *state,
                                        const fp4_gemm_desc *desc, int config) {
    const int cfg = config < 0 ? fp4_cuda_mma_default_config(ctx, desc) : config;
    const Plan pl = make_plan(ctx, state, desc, cfg);
    MmaArgs p;
    memset(&p, 0, sizeof p);
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
    p.d_dtype = desc->d_dtype;
    p.a_swizzled = desc->a_dtype == FP4_DTYPE_E2M1 && desc->a_sf_layout == FP4_SF_SWIZZLED_128x4;
    p.b_swizzled = desc->b_sf_layout == FP4_SF_SWIZZLED_128x4;
    p.b_vec16 = desc->k % 32 == 0 && (uintptr_t)desc->b % 16 == 0;
    p.b_sf_pairs = (uintptr_t)desc->b_sf % 2 == 0 && (desc->k / 16) % 2 == 0; /* kb even */
    p.n_stages = (int)pl.n_stages;
    p.stages_per_split = (int)pl.stages_per_split;
    p.splits = pl.splits;
    p.tiles_n = pl.tiles_n;
    p.tiles_m = pl.tiles_m;
    if (pl.splits > 1) {
        p.counters = static_cast<unsigned *>(state->workspace);
        p.partials = reinterpret_cast<float *>(static_cast<char *>(state->workspace) + kCounterBytes);
    }
    const dim3 grid((unsigned)(pl.tiles_n * pl.tiles_m), (unsigned)pl.splits);
    const int smem = config_smem(cfg, desc->a_dtype);
    fp4_cuda_clear_last_error();
    kernel_for(desc->a_dtype, cfg)<<<grid, kThreads, smem, fp4_cuda_stream(desc->stream)>>>(p);
    FP4_CUDA_CHECK_LAUNCH(ctx, "cuda_mma kernel launch");
    return FP4_OK;
}

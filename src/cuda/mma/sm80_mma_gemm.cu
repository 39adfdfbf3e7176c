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
 * Pipeline per 256-k stage: cp.async brings the weight rows, their scales (and BF16/F16
 * activations) of stage s + 3 into a 4-deep shared-memory ring while stage s is computed; E2M1
 * activations (W4A4) are loaded into registers one stage ahead and decoded once per CTA into
 * shared memory.
 *
 * Decode by bit placement: an E2M1 code s|e1 e0|m put at bits 15|11 10|9 of an FP16 (15|8 7|6
 * of a BF16) is exactly its value times 2^-14 (2^-126): the exponent bits land on the low
 * exponent bits, and code 1 (0.5) lands on the subnormal that equals 0.5 times the same factor.
 * One exact HMUL2 by the block scale times 2^7 (2^119) then gives value * scale * 2^-7, at
 * least 2^-17, exact in either type; the epilogue multiplies by 2^7 (2^14 when the E2M1
 * activations are decoded the same way). The FP16 decode takes 6 logic/shift operations and 4
 * byte permutes per word of 8 codes (decode_e2m1x8), the BF16 one two masks and two shifts per
 * pair; then the HMUL2. Pairs come out as (e_i, e_i+4), i = 0..3, of each 8-element word, and
 * the activations are paired the same way.
 */
#include "cuda/cuda_util.cuh"
#include "backend.h"
#include "cuda/mma/mma.h"
#include "cuda/fp4_pairs.cuh"

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
constexpr int kStageKb = kStageK / 16;       /* k-blocks per stage: 16 scale bytes a row */
constexpr int kMaxCounters = 16384;          /* split-K tiles per launch */
constexpr int64_t kCounterBytes = kMaxCounters * 4;
constexpr int64_t kWorkspaceBytes = 32ll << 20; /* partials; documented in docs/backends.md */
constexpr int kMaxSplits = 16;
constexpr int kKMultiple = 64; /* whole 16-byte weight units and 4-byte scale groups */
constexpr float kUnscale = 128.0f; /* decoded weights are value * scale * 2^-7 */

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
    const uint8_t *b;       /* (n, k/2) bytes, 16-byte aligned, k % 64 == 0 */
    const uint8_t *b_sf;    /* 4-byte aligned */
    void *d;                /* (m, ldd) elements */
    int64_t ldd;
    float alpha;
    const float *alpha_ptr; /* device pointer or NULL */
    fp4_dtype d_dtype;
    bool a_swizzled, b_swizzled;
    int n_stages;           /* ceil(k / kStageK) */
    int stages_per_split;
    int splits;
    int64_t tiles_n, tiles_m;
    float *partials;        /* split-K: [splits, tiles, acc, threads] floats */
    unsigned *counters;     /* split-K: one per tile, zero between launches */
};

/* Dynamic shared memory of a config: the weight ring, the weight-scale ring, then the
 * activations (a ring for BF16/F16, two decoded buffers for E2M1). */
__host__ __device__ constexpr int smem_weight_bytes(int r) {
    return kStages * 64 * r * (kStageK / 2 + kStageKb);
}
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
__device__ __forceinline__ void cp_async4(void *smem, const void *gmem, bool valid) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(s), "l"(gmem),
                 "r"(valid ? 4 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

/* D += A B on one m16n8k16 tile: FP16 or BF16 operands, FP32 accumulators. */
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

__device__ __forceinline__ uint32_t lop3_and_or(uint32_t a, uint32_t c_mask, uint32_t b) {
    uint32_t r; /* (a & c) | b */
    asm("lop3.b32 %0, %1, %2, %3, 0xEA;\n" : "=r"(r) : "r"(a), "r"(c_mask), "r"(b));
    return r;
}

/* 8 E2M1 codes (word w, element i in bits 4i..4i+3) to four FP16x2 (BF16x2) pairs
 * p[i] = (e_i, e_i+4) * 2^-14 (2^-126), exact: code bits s|e1 e0|m placed at 15|11 10|9
 * (15|8 7|6). FP16 by byte permutes; in the BF16 path the left shifts are written as
 * multiplications so that they run as IMADs. */
template <bool BF16>
__device__ __forceinline__ void decode_e2m1x8(uint32_t w, uint32_t p[4]) {
    if constexpr (!BF16) {
        /* FP16: the 3 code bits go to 11..9 and the sign to 15, all inside the half's high
         * byte: build that byte for the even codes (e) and the odd codes (o) of the word,
         * then move them into place with one byte permute per pair (zeros elsewhere). 6
         * logic/shift operations and 4 PRMTs per word instead of 16 operations; the same bits
         * for every word (checked exhaustively on the host over all 2^32 words) */
        constexpr uint32_t kMagBits = 0x0E0E0E0Eu; /* bits 3..1 of each byte */
        const uint32_t ws = w & 0x88888888u;       /* the 8 signs */
        const uint32_t e = ((w << 1) & kMagBits) | ((ws << 4) & ~kMagBits); /* codes 0 2 4 6 */
        const uint32_t o = ((w >> 3) & kMagBits) | (ws & ~kMagBits);        /* codes 1 3 5 7 */
        p[0] = __byte_perm(e, 0u, 0x2404); /* (e0, e4) */
        p[1] = __byte_perm(o, 0u, 0x2404); /* (e1, e5) */
        p[2] = __byte_perm(e, 0u, 0x3414); /* (e2, e6) */
        p[3] = __byte_perm(o, 0u, 0x3414); /* (e3, e7) */
        return;
    }
    constexpr int kPos = BF16 ? 6 : 9;                   /* where the code's m bit goes */
    constexpr uint32_t kMag = BF16 ? 0x01C001C0u : 0x0E000E00u;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const uint32_t sign = (w & (0x00080008u << (4 * i))) * (1u << (12 - 4 * i)); /* ->15,31 */
        /* w << (kPos - 4i), or w >> (4i - kPos) as the high word of a product: both IMADs */
        const uint32_t mag = kPos - 4 * i >= 0
                                 ? w * (1u << (kPos - 4 * i >= 0 ? kPos - 4 * i : 0))
                                 : __umulhi(w, 1u << (32 - (4 * i - kPos > 0 ? 4 * i - kPos : 1)));
        p[i] = lop3_and_or(mag, kMag, sign);
    }
}

/* Two E4M3 scales (lo byte, hi byte) to two broadcast pairs (lo, lo) and (hi, hi) of
 * scale * 2^7 (FP16) or scale * 2^119 (BF16): the multipliers of the decoded codes. Exact. */
template <bool BF16>
__device__ __forceinline__ void scales_to_pairs(uint32_t two, uint32_t &s_lo, uint32_t &s_hi) {
    const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2((__nv_fp8x2_storage_t)two, __NV_E4M3);
    __half2 hh;
    memcpy(&hh, &h, 4);
    uint32_t hw;
    if constexpr (BF16) {
        float2 f = __half22float2(hh);
        f.x *= 0x1p119f;
        f.y *= 0x1p119f;
        const __nv_bfloat162 b = __float22bfloat162_rn(f);
        memcpy(&hw, &b, 4);
    } else {
        const __half2 x = __hmul2(hh, __float2half2_rn(128.0f));
        memcpy(&hw, &x, 4);
    }
    s_lo = __byte_perm(hw, 0u, 0x1010);
    s_hi = __byte_perm(hw, 0u, 0x3232);
}

/* Offset of row `row`'s 4-scale group `kb4` (k-blocks 4 kb4 .. 4 kb4 + 3) in either layout. */
__device__ __forceinline__ int64_t sf_group_offset(bool swizzled, int64_t row, int64_t kb4,
                                                   int64_t kblocks) {
    if (!swizzled) return row * kblocks + 4 * kb4;
    const int64_t kt = (kblocks + 3) / 4;
    return (row / 128) * (kt * 512) + kb4 * 512 + (row % 32) * 16 + ((row % 128) / 32) * 4;
}

template <fp4_dtype DT>
__device__ __forceinline__ void store_out(void *d, int64_t index, float x) {
    fp4_store_elem<DT>(d, index, x);
}

/* ---- the kernel ------------------------------------------------------------------------ */

/* CTAs per SM the registers must allow: the small-token configs are latency-bound and gain
 * from occupancy (m8_r1: 96 registers and 5 CTAs instead of 156 and 3 ran 1.48x against
 * 1.24x over cuBLAS BF16 at M = 1..8 on the H200, docs/PERF.md); the larger ones keep their
 * registers. */
__host__ __device__ constexpr int min_blocks(int bm, int r, bool a4) {
    /* (BF16/F16 A's bigger activation ring leaves room for 4 CTAs of m8_r1 only) */
    return r != 1 ? 1 : bm == 8 ? (a4 ? 5 : 4) : bm == 16 ? 4 : bm == 32 ? 3 : 1;
}

template <fp4_dtype AT, int BM, int R>
__global__ void __launch_bounds__(kThreads, min_blocks(BM, R, AT == FP4_DTYPE_E2M1))
    sm80_mma_gemm_kernel(MmaArgs p) {
    constexpr int BN = 16 * R * kWarps;
    constexpr int N8 = BM / 8;
    constexpr bool kA4 = AT == FP4_DTYPE_E2M1;
    constexpr bool kBf16 = AT == FP4_DTYPE_BF16;
    constexpr int kAcc = R * N8 * 4;
    /* independent accumulator sets, so that a warp with few MMA tiles still has several
     * MMAs in flight (each set is a dependency chain); summed in a fixed order at the end */
    constexpr int kSets = R * N8 >= 4 ? 1 : 4 / (R * N8);
    extern __shared__ uint4 smem[];
    /* weight ring: [kStages][BN rows][kRowUnits] 16-byte units, unit u of row r stored at
     * u ^ ((r & 1) << 2) so that a phase of 8 lanes (two rows) hits 8 different bank groups */
    uint4 *wsm = smem;
    /* weight-scale ring: [kStages][BN rows][16] bytes, the stage's k-blocks in order */
    uint8_t *ssm = reinterpret_cast<uint8_t *>(smem + kStages * BN * kRowUnits);
    /* activations: [buffers][N8][kChunks][4 pieces j][8 tokens g][4 lanes t] 16-byte units:
     * unit (j, g, t) holds token g's elements [32 t + 8 j, + 8) of the chunk, so that lane
     * 4 g + t reads unit index 32 j + lane: 512 contiguous bytes per warp read */
    uint4 *asm_ = reinterpret_cast<uint4 *>(ssm + kStages * BN * kStageKb);
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

    // ---- producers -------------------------------------------------------------------
    // weights, 16-byte units: copy i of a thread is row tid / 8 + 16 i, unit tid % 8
    const int wu = tid % kRowUnits, wr = tid / kRowUnits;
    const uint8_t *wsrc = p.b + (n0 + wr) * (k / 2) + 16 * wu;
    const int wdst = wr * kRowUnits + (wu ^ ((wr & 1) << 2));
    // weight scales, 4-byte groups: copy i is row tid / 4 + 32 i, group tid % 4 of the stage
    const int su = tid % 4, sr = tid / 4;
    auto issue_weights = [&](int stage, int slot) {
        const int64_t k0 = (int64_t)stage * kStageK;
        uint4 *dst = wsm + slot * BN * kRowUnits + wdst;
        const bool k_ok = k0 + 32 * wu < k;
#pragma unroll
        for (int i = 0; i < BN * kRowUnits / kThreads; i++) {
            const bool ok = k_ok && n0 + wr + i * (kThreads / kRowUnits) < p.n;
            const uint8_t *src = wsrc + (int64_t)i * (kThreads / kRowUnits) * (k / 2) + k0 / 2;
            cp_async16(dst + i * kThreads, ok ? src : p.b, ok);
        }
        const int64_t kb4 = (int64_t)stage * (kStageKb / 4) + su;
        uint8_t *sdst = ssm + slot * BN * kStageKb + sr * kStageKb + 4 * su;
#pragma unroll
        for (int i = 0; i < (BN * 4 + kThreads - 1) / kThreads; i++) {
            const int row = sr + i * (kThreads / 4);
            if (BN * 4 % kThreads != 0 && row >= BN) break;
            const int64_t n = n0 + row;
            const bool ok = n < p.n && 4 * kb4 < kblocks;
            const uint8_t *src = ok ? p.b_sf + sf_group_offset(p.b_swizzled, n, kb4, kblocks) : p.b_sf;
            cp_async4(sdst + i * (kThreads / 4) * kStageKb, src, ok);
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
    constexpr int kA4Units = BM * kStageKb / kThreads; /* BM >= 8: at least 1 */
    static_assert(BM % 8 == 0 && BM * kStageKb % kThreads == 0, "whole units per thread");
    const int a4_kb = tid % 16, a4_tok0 = tid / 16;
    uint2 a4_q[kA4Units];
    uint32_t a4_s[kA4Units];
    auto load_act4 = [&](int stage) {
        const int64_t kbg = (int64_t)stage * kStageKb + a4_kb;
        const uint8_t *a = static_cast<const uint8_t *>(p.a);
        const int64_t sf_kb = p.a_swizzled ? (kbg / 4) * 512 + kbg % 4 : kbg;
#pragma unroll
        for (int i = 0; i < kA4Units; i++) {
            const int64_t m = m0 + a4_tok0 + 8 * i;
            const bool ok = m < p.m && kbg < kblocks;
            a4_q[i] = ok ? __ldg(reinterpret_cast<const uint2 *>(a + m * (k / 2) + kbg * 8))
                         : make_uint2(0, 0);
            a4_s[i] = ok ? __ldg(p.a_sf + sf_group_offset(p.a_swizzled, m, 0, kblocks) + sf_kb)
                         : 0;
        }
    };
    // decoded as value * scale * 2^-7 like the weights (one HMUL2 a pair; at least 2^-17, so
    // exact in FP16); the epilogue then multiplies by 2^14. Tokens past m are skipped: their
    // columns of the buffer hold whatever was there, and the MMA keeps each token's column to
    // itself, so only outputs that are never written see it.
    auto store_act4 = [&](int buf) {
        uint4 *dst = asm_ + buf * kActUnits;
        const int c = a4_kb / 8, tt = (a4_kb % 8) / 2, j0 = 2 * (a4_kb % 2);
#pragma unroll
        for (int i = 0; i < kA4Units; i++) {
            const int tok = a4_tok0 + 8 * i;
            if (m0 + tok >= p.m) continue;
            uint32_t s2, unused;
            scales_to_pairs<false>(a4_s[i], s2, unused);
            const uint32_t words[2] = {a4_q[i].x, a4_q[i].y};
#pragma unroll
            for (int w = 0; w < 2; w++) {
                uint32_t pr[4];
                decode_e2m1x8<false>(words[w], pr);
                uint4 v; /* value * 2^-14 * scale * 2^7: exact */
                v.x = fp4_mul_pair<false>(pr[0], s2);
                v.y = fp4_mul_pair<false>(pr[1], s2);
                v.z = fp4_mul_pair<false>(pr[2], s2);
                v.w = fp4_mul_pair<false>(pr[3], s2);
                dst[(((tok / 8) * kChunks + c) * 4 + j0 + w) * 32 + (tok % 8) * 4 + tt] = v;
            }
        }
    };

    float accs[kSets][R][N8][4];
#pragma unroll
    for (int q = 0; q < kSets; q++)
#pragma unroll
        for (int r = 0; r < R; r++)
#pragma unroll
            for (int j = 0; j < N8; j++)
#pragma unroll
                for (int e = 0; e < 4; e++) accs[q][r][j][e] = 0.0f;

    // ---- prologue: stages 0..kStages-2 in flight -------------------------------------------
    if constexpr (kA4) {
        if (nst > 0) load_act4(st_begin);
    }
#pragma unroll
    for (int s = 0; s < kStages - 1; s++) {
        if (s < nst) {
            issue_weights(st_begin + s, s);
            if constexpr (!kA4) issue_act16(st_begin + s, s);
        }
        cp_async_commit();
    }

    // ---- main loop --------------------------------------------------------------------------
#pragma unroll 1
    for (int s = 0; s < nst; s++) {
        const int slot = s % kStages;
        if constexpr (kA4) store_act4(s & 1); // decoded once per CTA

        // wait for stage s, then refill the slot stage s - 1 used
        cp_async_wait<kStages - 2>();
        __syncthreads();
        if (s + kStages - 1 < nst) {
            const int nslot = (s + kStages - 1) % kStages;
            issue_weights(st_begin + s + kStages - 1, nslot);
            if constexpr (!kA4) issue_act16(st_begin + s + kStages - 1, nslot);
        }
        cp_async_commit();
        if constexpr (kA4) {
            if (s + 1 < nst) load_act4(st_begin + s + 1);
        }

        const uint4 *wst = wsm + slot * BN * kRowUnits;
        const uint8_t *sst = ssm + slot * BN * kStageKb;
        const uint4 *ast = asm_ + (kA4 ? (s & 1) : slot) * kActUnits;
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
                    const uint32_t two = *reinterpret_cast<const unsigned short *>(
                        sst + row * kStageKb + c * 8 + 2 * t);
                    scales_to_pairs<kBf16>(two, sc[r][h][0], sc[r][h][1]);
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
                        a0[r][h] = fp4_mul_pair<kBf16>(pr[0], s2);     /* (e0, e4): k 2t, 2t+1 */
                        a0[r][2 + h] = fp4_mul_pair<kBf16>(pr[1], s2); /* (e1, e5): k 2t+8, 2t+9 */
                        a1[r][h] = fp4_mul_pair<kBf16>(pr[2], s2);     /* (e2, e6) */
                        a1[r][2 + h] = fp4_mul_pair<kBf16>(pr[3], s2); /* (e3, e7) */
                    }
#pragma unroll
                for (int j = 0; j < N8; j++) {
                    const uint4 v = ast[((j * kChunks + c) * 4 + i) * 32 + lane];
                    uint32_t b[4];
                    if constexpr (kA4) {
                        b[0] = v.x; b[1] = v.y; b[2] = v.z; b[3] = v.w;
                    } else { /* (x0,x1)(x2,x3)(x4,x5)(x6,x7) -> (x0,x4)(x1,x5)(x2,x6)(x3,x7) */
                        b[0] = __byte_perm(v.x, v.z, 0x5410);
                        b[1] = __byte_perm(v.x, v.z, 0x7632);
                        b[2] = __byte_perm(v.y, v.w, 0x5410);
                        b[3] = __byte_perm(v.y, v.w, 0x7632);
                    }
#pragma unroll
                    for (int r = 0; r < R; r++) {
                        mma16816<kBf16>(accs[(c * 4 + i) % kSets][r][j], a0[r], b[0], b[1]);
                        mma16816<kBf16>(accs[(c * 4 + i) % kSets][r][j], a1[r], b[2], b[3]);
                    }
                }
            }
        }
    }
    cp_async_wait<0>();
    float acc[R][N8][4];
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int j = 0; j < N8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                float sum = accs[0][r][j][e];
#pragma unroll
                for (int q = 1; q < kSets; q++) sum += accs[q][r][j][e];
                acc[r][j][e] = sum;
            }

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
                for (int e = 0; e < 4; e++)
                    __stcg(part + ((r * N8 + j) * 4 + e) * kThreads + tid, acc[r][j][e]);
        // the CTA's stores, then the counter (fp4_splitk_arrive: its release covers what the
        // barrier ordered before it); it wraps back to 0 on the last arrival, so no reset is
        // needed between launches. A launch that stops half way (a fault) leaves a count
        // behind that would shift every later launch's last arrival: such faults are sticky in
        // CUDA (the context must be made anew, and with it the zeroed workspace); concurrent
        // launches on one context's workspace are not supported (docs/threads.md)
        __syncthreads();
        if (tid == 0) s_prev = fp4_splitk_arrive(p.counters + tile, (unsigned)p.splits);
        __syncthreads();
        if (s_prev != (unsigned)p.splits - 1) return;
        // the sums in split order; U splits' loads in flight at a time (at least 16 loads)
        constexpr int U = kAcc >= 16 ? 1 : 16 / kAcc;
        const float *part0 = p.partials + (int64_t)tile * kAcc * kThreads + tid;
        const int64_t split_stride = (int64_t)gridDim.x * kAcc * kThreads;
#pragma unroll
        for (int r = 0; r < R; r++)
#pragma unroll
            for (int j = 0; j < N8; j++)
#pragma unroll
                for (int e = 0; e < 4; e++) acc[r][j][e] = 0.0f;
#pragma unroll 1
        for (int sp0 = 0; sp0 < p.splits; sp0 += U) {
            float v[U][R][N8][4];
#pragma unroll
            for (int u = 0; u < U; u++)
#pragma unroll
                for (int r = 0; r < R; r++)
#pragma unroll
                    for (int j = 0; j < N8; j++)
#pragma unroll
                        for (int e = 0; e < 4; e++)
                            v[u][r][j][e] = sp0 + u < p.splits
                                                ? __ldcg(part0 + (sp0 + u) * split_stride +
                                                         ((r * N8 + j) * 4 + e) * kThreads)
                                                : 0.0f;
#pragma unroll
            for (int u = 0; u < U; u++)
#pragma unroll
                for (int r = 0; r < R; r++)
#pragma unroll
                    for (int j = 0; j < N8; j++)
#pragma unroll
                        for (int e = 0; e < 4; e++) acc[r][j][e] += v[u][r][j][e];
        }
    }

    // ---- epilogue: c0, c1 = (row g, tokens 2t, 2t+1); c2, c3 = (row g + 8, same tokens) ------
    // the accumulators are sum * 2^-7 (2^-14 with E2M1 A, both operands scaled): scale by
    // alpha * 2^7 (2^14), or by alpha after 2^7 (2^14) when that product overflows (the same
    // bits whenever nothing overflows)
    constexpr float kOut = kA4 ? kUnscale * kUnscale : kUnscale;
    const float alpha_in = p.alpha_ptr ? *p.alpha_ptr : p.alpha;
    const float alpha = alpha_in * kOut;
    const bool alpha_inf = isinf(alpha) && !isinf(alpha_in);
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int j = 0; j < N8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int64_t n = n0 + warp * 16 * R + r * 16 + g + 8 * (e / 2);
                const int64_t m = m0 + j * 8 + 2 * t + (e % 2);
                if (n >= p.n || m >= p.m) continue;
                const float y = alpha_inf ? __fmul_rn(alpha_in, acc[r][j][e] * kOut)
                                          : __fmul_rn(alpha, acc[r][j][e]);
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
    st->runs = fp4_cuda_kernel_image((const void *)kernel_for(FP4_DTYPE_E2M1, 0), "cuda_mma",
                                     ctx->info.compute_capability) == cudaSuccess;
    if (!st->runs) {
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
    const cudaError_t err = fp4_cuda_workspace_alloc(bytes, kCounterBytes, &st->workspace);
    if (err != cudaSuccess) {
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
    fp4_cuda_workspace_free(state->workspace);
    free(state);
}

extern "C" int fp4_cuda_mma_config_count(void) { return kConfigCount; }

extern "C" const char *fp4_cuda_mma_config_name(int config) {
    return config >= 0 && config < kConfigCount ? kConfigs[config].name : NULL;
}

extern "C" int fp4_cuda_mma_default_config(const fp4_ctx *ctx, const fp4_gemm_desc *desc) {
    // from the config sweep on an H200 (docs/PERF.md): one token tile of 8, 16 or 32 while it
    // covers M, then 32 tokens x 128 weight rows per CTA
    const int64_t m = desc ? desc->m : 1;
    int config = m <= 8 ? 0 : m <= 16 ? 1 : m <= 32 ? 2 : 6; /* m8_r1, m16_r1, m32_r1, m32_r2 */
    // fewer tokens per CTA where the device's shared memory is smaller (sm_86/89: 99 KiB)
    const fp4_cuda_mma_state *st =
        (const fp4_cuda_mma_state *)fp4_backend_state(ctx, FP4_BACKEND_CUDA_MMA);
    const fp4_dtype a_dtype = desc ? desc->a_dtype : FP4_DTYPE_E2M1;
    while (st && config > 0 && config_smem(config, a_dtype) > st->smem_optin)
        config = config == 6 ? 2 : config - 1;
    return config;
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
    if (desc->k % kKMultiple != 0) {
        snprintf(buf, len, "k = %lld is not a multiple of %d (16-byte weight and 4-byte scale "
                 "copies)", (long long)desc->k, kKMultiple);
        return buf;
    }
    if ((uintptr_t)desc->b % 16 != 0) return "b must be 16-byte aligned (cp.async of weight rows)";
    if ((uintptr_t)desc->b_sf % 4 != 0) return "b_sf must be 4-byte aligned (cp.async of scales)";
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

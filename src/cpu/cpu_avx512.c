/* cpu_avx512.c - the AVX-512F kernels of the `cpu` backend (compiled with -mavx512f; run only
 * where the CPU has it, cpu_simd.c). One k-block of 16 is one zmm register: the block's 8
 * bytes broadcast, a per-lane shift (vpsrlvd), and a permute (vpermps) of the block scale's
 * 64-byte row of cpu_e2m1_scaled, read from memory: the E2M1 values already times the scale,
 * so no multiply. Same bits as cpu_generic.c (cpu_kernels.h). */
#if defined(__x86_64__) || defined(_M_X64)
#include "cpu_kernels.h"

#include <immintrin.h>
#include <string.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Per-lane shifts: lane j takes nibble j / 2 of 32-bit word j % 2 (CPU_LANE_ELEMENT). */
ALWAYS_INLINE __m512i lane_shifts(void) {
    return _mm512_setr_epi32(0, 0, 4, 4, 8, 8, 12, 12, 16, 16, 20, 20, 24, 24, 28, 28);
}

ALWAYS_INLINE int64_t load64(const uint8_t *p) {
    int64_t q;
    memcpy(&q, p, 8);
    return q;
}

/* Block kb's lookup indices: its 8 bytes broadcast, each lane's nibble shifted down (vpermps
 * reads the low 4 bits of each index). */
ALWAYS_INLINE __m512i block_codes(const __m512i sh, const uint8_t *row, int64_t kb) {
    return _mm512_srlv_epi32(_mm512_set1_epi64(load64(row + kb * 8)), sh);
}

/* Block kb decoded, scale folded: its codes looked up in its scale's row of cpu_e2m1_scaled
 * (the permute reads that row from memory; no multiply). */
ALWAYS_INLINE __m512 decode_block(const __m512i sh, const uint8_t *row, const uint8_t *sf, int swz,
                                  int64_t kb) {
    return _mm512_permutexvar_ps(block_codes(sh, row, kb),
                                 _mm512_load_ps(cpu_e2m1_scaled[sf[cpu_sf_kb(swz, kb)]]));
}

/* mr rows of A by nn rows of B: mr * nn independent accumulators. Per block and row of B: a
 * broadcast load, a shift, a permute (from the scale's table row) and one FMA per row of A.
 * `swz` is p->b_swizzled, passed as a constant where it matters (gemv_mrN_n4: the offsets
 * then cost nothing) or as the runtime value for ragged edges. */
ALWAYS_INLINE void gemv_t(const cpu_problem *p, int64_t m0, const int mr, int64_t n, const int nn,
                          int64_t kb0, int64_t kbs, float *sums, int64_t ld, int first,
                          const int swz) {
    const uint8_t *row[CPU_GEMV_NN], *sf[CPU_GEMV_NN], *ahead[CPU_GEMV_NN];
    for (int i = 0; i < nn; i++) {
        row[i] = p->b + (n + i) * (p->k / 2);
        sf[i] = p->b_sf + cpu_sf_row(p, n + i);
        /* the row CPU_GEMV_NN further on, which the next call reads: prefetched at the same k
         * as this one, one pass of the rows ahead (more DRAM reads in flight) */
        ahead[i] = n + i + CPU_GEMV_NN < p->n ? row[i] + CPU_GEMV_NN * (p->k / 2) : row[i];
    }
    const __m512i sh = lane_shifts();
    const float *a = p->a + m0 * p->lda;
    const int64_t lda = p->lda;
    __m512 acc[CPU_GEMV_NN][CPU_GEMV_MR];
    for (int i = 0; i < nn; i++)
        for (int r = 0; r < mr; r++)
            acc[i][r] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(sums + i * ld + r * 16);
/* block kb: its x of each row of A, then per row of B the decode and mr FMAs */
#define GEMV_T_BLOCK(kb)                                                                       \
    do {                                                                                       \
        __m512 x[CPU_GEMV_MR];                                                                 \
        for (int r = 0; r < mr; r++) x[r] = _mm512_loadu_ps(a + r * lda + (kb) * 16);          \
        const int64_t so = cpu_sf_kb(swz, kb);                                                 \
        for (int i = 0; i < nn; i++) {                                                         \
            const __m512 w = _mm512_permutexvar_ps(block_codes(sh, row[i], kb),                \
                                                   _mm512_load_ps(cpu_e2m1_scaled[sf[i][so]])); \
            for (int r = 0; r < mr; r++) acc[i][r] = _mm512_fmadd_ps(x[r], w, acc[i][r]);      \
        }                                                                                      \
    } while (0)
    /* up to a multiple of 8 blocks, then groups of 8 (one 64-byte line per row of B, its
     * prefetch once per group; unrolled: 3-17% faster than one block per iteration with a
     * test for the prefetch, warm at mr = 2 and 4), then the rest */
    const int64_t kb1 = kb0 + kbs;
    int64_t kb = kb0;
    for (; kb < kb1 && (kb & 7); kb++) GEMV_T_BLOCK(kb);
    for (; kb + 8 <= kb1; kb += 8) {
        for (int i = 0; i < nn; i++) _mm_prefetch((const char *)(ahead[i] + kb * 8), _MM_HINT_T0);
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) GEMV_T_BLOCK(kb + j);
    }
    for (; kb < kb1; kb++) GEMV_T_BLOCK(kb);
#undef GEMV_T_BLOCK
    for (int i = 0; i < nn; i++)
        for (int r = 0; r < mr; r++) _mm512_storeu_ps(sums + i * ld + r * 16, acc[i][r]);
}

/* One row of A by 4 rows of B (n % 4 == 0: their scales lie a fixed stride apart in both
 * layouts), k-blocks [kb0, kb0 + 8 * groups) with kb0 % 8 == 0: the M = 1 loop, unrolled by
 * 8 blocks (one 64-byte line of each row, two 4-block groups of scales) so that the pointers
 * stay in registers. Two rows look their blocks up in the scale's row of cpu_e2m1_scaled (a
 * 64-byte load), the other two in the E2M1 table held in a register, times the scale (a
 * multiply): the first way is bound by the load ports, the second by the FP pipes, and half
 * and half is 9% faster in L2 than either on Zen 4 (docs/PERF.md). The same values either way
 * (exact products), the same order as gemv_t.
 * `swz` is a constant in each instance (gemv_1x4_swizzled, gemv_1x4_linear): in the swizzled
 * layout every scale offset of the group is then a displacement from one pointer (row stride
 * 16, k stride 512), which takes 7% off the loop warm and 10-15% from DRAM on 2 threads
 * against the strides held in registers (docs/PERF.md). */
ALWAYS_INLINE void gemv_1x4_t(const cpu_problem *p, int64_t m0, int64_t n, int64_t kb0,
                              int64_t groups, __m512 acc[4], const int swz) {
    const int64_t rb = p->k / 2;
    const int64_t sfs = swz ? 16 : p->kblocks;  /* scale stride between rows */
    const int64_t sf_step = swz ? 512 : 4;      /* and between groups of 4 k-blocks */
    const uint8_t *b0 = p->b + n * rb + kb0 * 8, *b1 = b0 + rb, *b2 = b1 + rb, *b3 = b2 + rb;
    const uint8_t *s0 = p->b_sf + cpu_sf_row(p, n) + cpu_sf_kb(swz, kb0);
    const uint8_t *s1 = s0 + sfs, *s2 = s1 + sfs, *s3 = s2 + sfs;
    /* the next call's rows (4 further on) prefetched into L1 at the same k, and the call
     * after's (8 further on) into L2: more DRAM reads in flight (+3-5% from DRAM in an
     * interleaved A/B on the 2-core Zen 4, docs/PERF.md); none past the last row */
    const int64_t ahead = n + 8 <= p->n ? 4 * rb : 0;
    const int64_t ahead2 = n + 12 <= p->n ? 8 * rb : 0;
    const float *a = p->a + m0 * p->lda + kb0 * 16;
    const __m512i sh = lane_shifts();
    const __m512 e2m1 = _mm512_setr_ps(0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f, -0.0f, -0.5f,
                                       -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f);
    __m512 c0 = acc[0], c1 = acc[1], c2 = acc[2], c3 = acc[3];
/* block j of the group in row bp: its codes as lookup indices; its scale's code in row sp */
#define FP4_CODES(bp, j) _mm512_srlv_epi32(_mm512_set1_epi64(load64((bp) + (j) * 8)), sh)
#define FP4_SCALE(sp, j) (sp)[((j) & 3) + ((j) >> 2) * sf_step]
/* looked up in the scale's row of cpu_e2m1_scaled */
#define FP4_BLOCK(c, bp, sp, j)                                                                \
    c = _mm512_fmadd_ps(x, _mm512_permutexvar_ps(FP4_CODES(bp, j),                             \
                                                 _mm512_load_ps(cpu_e2m1_scaled[FP4_SCALE(sp, j)])), c)
/* looked up in the E2M1 table, times the scale */
#define FP4_BLOCK_MUL(c, bp, sp, j)                                                            \
    c = _mm512_fmadd_ps(x, _mm512_mul_ps(_mm512_permutexvar_ps(FP4_CODES(bp, j), e2m1),        \
                                         _mm512_set1_ps(cpu_e4m3_value[FP4_SCALE(sp, j)])), c)
    for (int64_t g = 0; g < groups; g++) {
        _mm_prefetch((const char *)(b0 + ahead), _MM_HINT_T0);
        _mm_prefetch((const char *)(b1 + ahead), _MM_HINT_T0);
        _mm_prefetch((const char *)(b2 + ahead), _MM_HINT_T0);
        _mm_prefetch((const char *)(b3 + ahead), _MM_HINT_T0);
        _mm_prefetch((const char *)(b0 + ahead2), _MM_HINT_T1);
        _mm_prefetch((const char *)(b1 + ahead2), _MM_HINT_T1);
        _mm_prefetch((const char *)(b2 + ahead2), _MM_HINT_T1);
        _mm_prefetch((const char *)(b3 + ahead2), _MM_HINT_T1);
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            const __m512 x = _mm512_loadu_ps(a + j * 16);
            FP4_BLOCK(c0, b0, s0, j);
            FP4_BLOCK(c1, b1, s1, j);
            FP4_BLOCK_MUL(c2, b2, s2, j);
            FP4_BLOCK_MUL(c3, b3, s3, j);
        }
        b0 += 64, b1 += 64, b2 += 64, b3 += 64;
        s0 += 2 * sf_step, s1 += 2 * sf_step, s2 += 2 * sf_step, s3 += 2 * sf_step;
        a += 128;
    }
#undef FP4_CODES
#undef FP4_SCALE
#undef FP4_BLOCK
#undef FP4_BLOCK_MUL
    acc[0] = c0, acc[1] = c1, acc[2] = c2, acc[3] = c3;
}

static void gemv_1x4_swizzled(const cpu_problem *p, int64_t m0, int64_t n, int64_t kb0,
                              int64_t groups, __m512 acc[4]) {
    gemv_1x4_t(p, m0, n, kb0, groups, acc, 1);
}

static void gemv_1x4_linear(const cpu_problem *p, int64_t m0, int64_t n, int64_t kb0,
                            int64_t groups, __m512 acc[4]) {
    gemv_1x4_t(p, m0, n, kb0, groups, acc, 0);
}

/* mr (1..4) rows of A by 4 rows of B, one instance per (mr, scale layout): up to 16
 * accumulators, so that the FMA chains (4 cycles each on Zen 4) overlap. One row of B at a
 * time, as before, left mr = 3 and 4 bound by the chains' latency. Warm on the 2-core Zen 4,
 * ns per block of 4 rows of B (with the k loop in groups of 8): mr = 4 2.4-2.9 -> 1.1-1.3,
 * mr = 3 1.8-2.2 -> 0.9-1.1, mr = 2 0.85-1.15 -> 0.71-0.92 (pairs of rows before);
 * docs/PERF.md. */
#define GEMV_MR4(mr)                                                                           \
    static void gemv_mr##mr##_n4(const cpu_problem *p, int64_t m0, int64_t n, int64_t kb0,     \
                                 int64_t kbs, float *sums, int64_t ld, int first) {            \
        if (p->b_swizzled)                                                                     \
            gemv_t(p, m0, mr, n, 4, kb0, kbs, sums, ld, first, 1);                             \
        else                                                                                   \
            gemv_t(p, m0, mr, n, 4, kb0, kbs, sums, ld, first, 0);                             \
    }
GEMV_MR4(1)
GEMV_MR4(2)
GEMV_MR4(3)
GEMV_MR4(4)
#undef GEMV_MR4

static void gemv(const cpu_problem *p, int64_t m0, int mr, int64_t n, int nn, int64_t kb0,
                 int64_t kbs, float *sums, int64_t ld, int first) {
    if (nn == 4 && mr == 1 && n % 4 == 0 && kb0 % 8 == 0 && kbs >= 8) {
        __m512 acc[4];
        for (int i = 0; i < 4; i++) acc[i] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(sums + i * ld);
        const int64_t groups = kbs / 8;
        if (p->b_swizzled)
            gemv_1x4_swizzled(p, m0, n, kb0, groups, acc);
        else
            gemv_1x4_linear(p, m0, n, kb0, groups, acc);
        for (int i = 0; i < 4; i++) _mm512_storeu_ps(sums + i * ld, acc[i]);
        if (kbs > groups * 8) gemv_mr1_n4(p, m0, n, kb0 + groups * 8, kbs - groups * 8, sums, ld, 0);
        return;
    }
    if (nn == 4) {
        switch (mr) {
        case 1: gemv_mr1_n4(p, m0, n, kb0, kbs, sums, ld, first); break;
        case 2: gemv_mr2_n4(p, m0, n, kb0, kbs, sums, ld, first); break;
        case 3: gemv_mr3_n4(p, m0, n, kb0, kbs, sums, ld, first); break;
        default: gemv_mr4_n4(p, m0, n, kb0, kbs, sums, ld, first); break;
        }
        return;
    }
    /* the last 1-3 rows of B: one at a time, the layout read at run time */
    const int swz = p->b_swizzled;
    for (int i = 0; i < nn; i++) {
        float *s = sums + i * ld;
        switch (mr) {
        case 1: gemv_t(p, m0, 1, n + i, 1, kb0, kbs, s, ld, first, swz); break;
        case 2: gemv_t(p, m0, 2, n + i, 1, kb0, kbs, s, ld, first, swz); break;
        case 3: gemv_t(p, m0, 3, n + i, 1, kb0, kbs, s, ld, first, swz); break;
        default: gemv_t(p, m0, 4, n + i, 1, kb0, kbs, s, ld, first, swz); break;
        }
    }
}

static void decode(const cpu_problem *p, int64_t n0, int nr, int64_t kb0, int64_t kbs,
                   float *panel, int64_t ldp) {
    const __m512i sh = lane_shifts();
    for (int r = 0; r < nr; r++) {
        float *dst = panel + r * ldp;
        const int64_t n = n0 + r;
        if (n >= p->n) {
            for (int64_t kb = 0; kb < kbs; kb++) _mm512_storeu_ps(dst + kb * 16, _mm512_setzero_ps());
            continue;
        }
        const uint8_t *row = p->b + n * (p->k / 2);
        const uint8_t *sf = p->b_sf + cpu_sf_row(p, n);
        for (int64_t kb = kb0; kb < kb0 + kbs; kb++)
            _mm512_storeu_ps(dst + (kb - kb0) * 16, decode_block(sh, row, sf, p->b_swizzled, kb));
    }
}

static void micro(const float *a, int64_t lda, const float *b, int64_t ldb, int64_t kbs,
                  float *part, int first) {
    __m512 c[CPU_MR][CPU_NR];
    for (int i = 0; i < CPU_MR; i++)
        for (int j = 0; j < CPU_NR; j++)
            c[i][j] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(part + (i * CPU_NR + j) * 16);
    for (int64_t kb = 0; kb < kbs; kb++) {
        __m512 x[CPU_MR];
        for (int i = 0; i < CPU_MR; i++) x[i] = _mm512_loadu_ps(a + i * lda + kb * 16);
        for (int j = 0; j < CPU_NR; j++) {
            const __m512 y = _mm512_loadu_ps(b + j * ldb + kb * 16);
            for (int i = 0; i < CPU_MR; i++) c[i][j] = _mm512_fmadd_ps(x[i], y, c[i][j]);
        }
    }
    for (int i = 0; i < CPU_MR; i++)
        for (int j = 0; j < CPU_NR; j++) _mm512_storeu_ps(part + (i * CPU_NR + j) * 16, c[i][j]);
}

const cpu_kernels cpu_kernels_avx512 = {"avx512", 16, gemv, decode, micro};
#endif

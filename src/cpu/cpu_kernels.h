/*
 * cpu_kernels.h - the inner kernels of the `cpu` backend (src/cpu/cpu_backend.c), one set per
 * instruction set: AVX-512 (cpu_avx512.c), AVX2+FMA (cpu_avx2.c), NEON (cpu_neon.c) and
 * portable C (cpu_generic.c). The backend picks a set at run time (cpu_simd.c).
 *
 * The arithmetic, common to every set (so that every set, every config and every thread
 * count give the same bits):
 *  - A is first converted to F32 (pack_a_row in cpu_backend.c): W4A4's E2M1 values times
 *    their E4M3 block scale, W4A16's BF16/F16 values as they are. Within each 16-element
 *    k-block the elements are stored in "lane order": lane j holds element
 *    CPU_LANE_ELEMENT(j) = (j % 2) * 8 + j / 2 (0, 8, 1, 9, ..., 7, 15), which is where the
 *    nibbles land when the block's 8 bytes are broadcast as two 32-bit words and each lane
 *    shifts its own nibble down (no byte interleave, no widening).
 *  - B is decoded block by block: the 16 E2M1 codes through a 16-entry table held in a vector
 *    register (a float or byte shuffle), times the block's E4M3 scale.
 *  - Every product a * w is exact in FP32 (W4A4: 6 by 6 significant bits; W4A16: BF16 8 or F16
 *    11 bits by 6), so an FMA and a multiply-add give the same result. Output (m, n) sums its
 *    products in 16 lanes, lane j taking position j of every k-block in k order; the 16 lane
 *    sums are then added by one fixed tree (cpu_reduce16). Only the summation order matters
 *    for the bits, and it is the same in every kernel below.
 */
#ifndef FP4_CPU_KERNELS_H
#define FP4_CPU_KERNELS_H

#include <stdint.h>

/* The element of a k-block that lane j (0..15) holds. */
#define CPU_LANE_ELEMENT(j) (((j) % 2) * 8 + (j) / 2)

/* What the kernels read. */
typedef struct cpu_problem {
    int64_t m, n, k, kblocks; /* kblocks = k / 16 */
    const uint8_t *b;         /* [n, k/2] packed E2M1 */
    const uint8_t *b_sf;      /* E4M3 scales of B */
    int b_swizzled;           /* b_sf layout: 1 = SWIZZLED_128x4, 0 = linear */
    const float *a;           /* [m rounded up to 4, lda] F32 in nibble order, scale folded */
    int64_t lda;              /* floats; >= k */
} cpu_problem;

/* The E4M3 decode table: the value of every code (NaN for 0x7F/0xFF). */
extern const float cpu_e4m3_value[256];

/* The block values by scale: [s][c] = (value of E2M1 code c) * cpu_e4m3_value[s], exact (the
 * product has at most 6 significant bits and lies in [2^-10, 2688]); rows of NaN scales are NaN.
 * Code order (c = 0..15), 64-byte rows: a kernel looks a block's codes up in its scale's row,
 * which folds the scale in without a multiply and gives the same bits as multiplying. */
extern const float cpu_e2m1_scaled[256][16];

/* The offset of B's scale (n, kb): cpu_sf_row(p, n) + cpu_sf_kb(p, kb). */
static inline int64_t cpu_sf_row(const cpu_problem *p, int64_t n) {
    if (!p->b_swizzled) return n * p->kblocks;
    const int64_t kt = (p->kblocks + 3) / 4;
    return (n / 128) * (kt * 512) + (n % 32) * 16 + ((n % 128) / 32) * 4;
}
static inline int64_t cpu_sf_kb(int swizzled, int64_t kb) {
    return swizzled ? (kb >> 2) * 512 + (kb & 3) : kb;
}

/* The fixed reduction of 16 lane sums: v[j] + v[j+8], then + 4, + 2, + 1 apart. */
static inline float cpu_reduce16(const float *v) {
    float t[8], u[4];
    for (int j = 0; j < 8; j++) t[j] = v[j] + v[j + 8];
    for (int j = 0; j < 4; j++) u[j] = t[j] + t[j + 4];
    const float v0 = u[0] + u[2], v1 = u[1] + u[3];
    return v0 + v1;
}

/* Register tile of the blocked micro-kernel: CPU_MR rows of A by CPU_NR rows of B. */
enum { CPU_MR = 4, CPU_NR = 4, CPU_GEMV_MR = 4, CPU_GEMV_NN = 4 };

typedef struct cpu_kernels {
    const char *name; /* "avx512", "avx2", "neon", "generic" */
    /* The heuristic's choice with this set: `gemv` up to this m (at most its limit, 16), else
     * `blocked`; measured per set (docs/PERF.md, the CPU section). The bits are the same either way. */
    int heur_gemv_m;
    /* GEMV: the 16 lane sums sums[i * ld + r * 16 + j] of outputs (m0 + r, n + i) for r < mr
     * (1..CPU_GEMV_MR) and i < nn (1..CPU_GEMV_NN) over k-blocks [kb0, kb0 + kbs), decoding
     * B's rows on the fly; starts from zero if `first`, else from sums. Several rows of B at
     * once give the FMA chains (one per output and lane: the fixed order) room to overlap. */
    void (*gemv)(const cpu_problem *p, int64_t m0, int mr, int64_t n, int nn, int64_t kb0,
                 int64_t kbs, float *sums, int64_t ld, int first);
    /* Decodes k-blocks [kb0, kb0 + kbs) of B's rows n0 .. n0 + nr - 1 into panel[r * ldp + ...]
     * (F32, nibble order, scale folded); rows at or past p->n are written as zeros. */
    void (*decode)(const cpu_problem *p, int64_t n0, int nr, int64_t kb0, int64_t kbs,
                   float *panel, int64_t ldp);
    /* Blocked micro-kernel: lane sums part[(i * CPU_NR + j) * 16 + lane] of A rows a + i * lda
     * by panel rows b + j * ldb over kbs k-blocks; starts from zero if `first`, else from part. */
    void (*micro)(const float *a, int64_t lda, const float *b, int64_t ldb, int64_t kbs,
                  float *part, int first);
} cpu_kernels;

extern const cpu_kernels cpu_kernels_generic;
#if defined(__x86_64__) || defined(_M_X64)
extern const cpu_kernels cpu_kernels_avx2;
extern const cpu_kernels cpu_kernels_avx512;
#endif
#if defined(__aarch64__)
extern const cpu_kernels cpu_kernels_neon;
#endif

#endif /* FP4_CPU_KERNELS_H */

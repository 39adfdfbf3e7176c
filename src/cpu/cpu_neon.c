/* cpu_neon.c - the NEON (AArch64) kernels of the `cpu` backend. A k-block of 16 is four q
 * registers in cpu_kernels.h's lane order: the nibbles put in lane order by one tbl, decoded
 * through a 16-entry byte table in a register (tbl) to twice their value as int8, widened,
 * converted and multiplied by half the block scale (exact). Same bits as cpu_generic.c. */
#if defined(__aarch64__)
#include "cpu_kernels.h"

#include <arm_neon.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

static const int8_t k_twice_e2m1[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
/* lane j's nibble in [lo nibbles of bytes 0-7, hi nibbles of bytes 0-7]: element e =
 * CPU_LANE_ELEMENT(j) is byte e / 2, the high nibble when e is odd */
static const uint8_t k_lane_nibble[16] = {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15};

/* Block kb of a row: w[q] = elements 4q .. 4q+3 in nibble order, times s. */
ALWAYS_INLINE void decode_block(const uint8_t *row, const uint8_t *sf, int swz, int64_t kb,
                                float32x4_t *w) {
    const int8x16_t tab = vld1q_s8(k_twice_e2m1);
    const uint8x8_t x = vld1_u8(row + kb * 8);
    const uint8x16_t nib = vcombine_u8(vand_u8(x, vdup_n_u8(0x0F)), vshr_n_u8(x, 4));
    const uint8x16_t idx = vqtbl1q_u8(nib, vld1q_u8(k_lane_nibble));
    const int8x16_t v = vqtbl1q_s8(tab, idx);
    const int16x8_t lo = vmovl_s8(vget_low_s8(v)), hi = vmovl_s8(vget_high_s8(v));
    const float32x4_t s = vdupq_n_f32(0.5f * cpu_e4m3_value[sf[cpu_sf_kb(swz, kb)]]);
    w[0] = vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))), s);
    w[1] = vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_high_s16(lo))), s);
    w[2] = vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))), s);
    w[3] = vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_high_s16(hi))), s);
}

ALWAYS_INLINE void gemv_mr(const cpu_problem *p, int64_t m0, const int mr, int64_t n,
                           int64_t kb0, int64_t kbs, float *sums, int first) {
    const uint8_t *row = p->b + n * (p->k / 2);
    const uint8_t *sf = p->b_sf + cpu_sf_row(p, n);
    const float *a = p->a + m0 * p->lda;
    float32x4_t acc[CPU_GEMV_MR][4];
    for (int r = 0; r < mr; r++)
        for (int q = 0; q < 4; q++) acc[r][q] = first ? vdupq_n_f32(0.0f) : vld1q_f32(sums + r * 16 + q * 4);
    for (int64_t kb = kb0; kb < kb0 + kbs; kb++) {
        float32x4_t w[4];
        decode_block(row, sf, p->b_swizzled, kb, w);
        for (int r = 0; r < mr; r++)
            for (int q = 0; q < 4; q++)
                acc[r][q] = vfmaq_f32(acc[r][q], vld1q_f32(a + r * p->lda + kb * 16 + q * 4), w[q]);
    }
    for (int r = 0; r < mr; r++)
        for (int q = 0; q < 4; q++) vst1q_f32(sums + r * 16 + q * 4, acc[r][q]);
}

static void gemv_row(const cpu_problem *p, int64_t m0, int mr, int64_t n, int64_t kb0,
                     int64_t kbs, float *sums, int first) {
    switch (mr) {
    case 1: gemv_mr(p, m0, 1, n, kb0, kbs, sums, first); break;
    case 2: gemv_mr(p, m0, 2, n, kb0, kbs, sums, first); break;
    case 3: gemv_mr(p, m0, 3, n, kb0, kbs, sums, first); break;
    default: gemv_mr(p, m0, 4, n, kb0, kbs, sums, first); break;
    }
}

static void gemv(const cpu_problem *p, int64_t m0, int mr, int64_t n, int nn, int64_t kb0,
                 int64_t kbs, float *sums, int64_t ld, int first) {
    for (int i = 0; i < nn; i++) gemv_row(p, m0, mr, n + i, kb0, kbs, sums + i * ld, first);
}

static void decode(const cpu_problem *p, int64_t n0, int nr, int64_t kb0, int64_t kbs,
                   float *panel, int64_t ldp) {
    for (int r = 0; r < nr; r++) {
        float *dst = panel + r * ldp;
        const int64_t n = n0 + r;
        if (n >= p->n) {
            for (int64_t i = 0; i < kbs * 4; i++) vst1q_f32(dst + i * 4, vdupq_n_f32(0.0f));
            continue;
        }
        const uint8_t *row = p->b + n * (p->k / 2);
        const uint8_t *sf = p->b_sf + cpu_sf_row(p, n);
        for (int64_t kb = kb0; kb < kb0 + kbs; kb++) {
            float32x4_t w[4];
            decode_block(row, sf, p->b_swizzled, kb, w);
            for (int q = 0; q < 4; q++) vst1q_f32(dst + (kb - kb0) * 16 + q * 4, w[q]);
        }
    }
}

/* The 4x4 tile as four 2x2 sub-tiles of 4 q registers each (16 accumulators of 32). */
static void micro(const float *a, int64_t lda, const float *b, int64_t ldb, int64_t kbs,
                  float *part, int first) {
    for (int i0 = 0; i0 < CPU_MR; i0 += 2) {
        for (int j0 = 0; j0 < CPU_NR; j0 += 2) {
            float32x4_t c[2][2][4];
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 2; j++)
                    for (int q = 0; q < 4; q++) {
                        const float *src = part + ((i0 + i) * CPU_NR + j0 + j) * 16 + q * 4;
                        c[i][j][q] = first ? vdupq_n_f32(0.0f) : vld1q_f32(src);
                    }
            for (int64_t kb = 0; kb < kbs; kb++)
                for (int q = 0; q < 4; q++) {
                    const float32x4_t x0 = vld1q_f32(a + i0 * lda + kb * 16 + q * 4);
                    const float32x4_t x1 = vld1q_f32(a + (i0 + 1) * lda + kb * 16 + q * 4);
                    for (int j = 0; j < 2; j++) {
                        const float32x4_t y = vld1q_f32(b + (j0 + j) * ldb + kb * 16 + q * 4);
                        c[0][j][q] = vfmaq_f32(c[0][j][q], x0, y);
                        c[1][j][q] = vfmaq_f32(c[1][j][q], x1, y);
                    }
                }
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 2; j++)
                    for (int q = 0; q < 4; q++)
                        vst1q_f32(part + ((i0 + i) * CPU_NR + j0 + j) * 16 + q * 4, c[i][j][q]);
        }
    }
}

const cpu_kernels cpu_kernels_neon = {"neon", 7, gemv, decode, micro};
#endif

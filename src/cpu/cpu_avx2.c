/* cpu_avx2.c - the AVX2+FMA kernels of the `cpu` backend (compiled with -mavx2 -mfma; run only
 * where the CPU has both, cpu_simd.c). A k-block of 16 is two ymm registers, lanes 0-7 and
 * 8-15 (cpu_kernels.h's lane order): the block's 8 bytes broadcast, a per-lane shift
 * (vpsrlvd), the magnitude from an 8-float table in a register (vpermps reads the low 3 bits),
 * the sign from bit 3, times the block scale. Same bits as cpu_generic.c. */
#if defined(__x86_64__) || defined(_M_X64)
#include "cpu_kernels.h"

#include <immintrin.h>
#include <string.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* 8 lanes of a block from its broadcast bytes q shifted by sh: table value with the sign. */
ALWAYS_INLINE __m256 lanes8(__m256i q, __m256i sh, __m256 s) {
    const __m256 mag = _mm256_setr_ps(0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f);
    const __m256i v = _mm256_srlv_epi32(q, sh);
    const __m256i sign = _mm256_and_si256(_mm256_slli_epi32(v, 28), _mm256_set1_epi32((int)0x80000000u));
    const __m256 w = _mm256_xor_ps(_mm256_permutevar8x32_ps(mag, v), _mm256_castsi256_ps(sign));
    return _mm256_mul_ps(w, s);
}

/* Block kb of a row: *we = lanes 0-7, *wo = lanes 8-15, times the block scale. */
ALWAYS_INLINE void decode_block(const uint8_t *row, const uint8_t *sf, int swz, int64_t kb,
                                __m256 *we, __m256 *wo) {
    int64_t x;
    memcpy(&x, row + kb * 8, 8);
    const __m256i q = _mm256_set1_epi64x(x);
    const __m256 s = _mm256_set1_ps(cpu_e4m3_value[sf[cpu_sf_kb(swz, kb)]]);
    *we = lanes8(q, _mm256_setr_epi32(0, 0, 4, 4, 8, 8, 12, 12), s);
    *wo = lanes8(q, _mm256_setr_epi32(16, 16, 20, 20, 24, 24, 28, 28), s);
}

ALWAYS_INLINE void gemv_mr(const cpu_problem *p, int64_t m0, const int mr, int64_t n,
                           int64_t kb0, int64_t kbs, float *sums, int first) {
    const uint8_t *row = p->b + n * (p->k / 2);
    const uint8_t *sf = p->b_sf + cpu_sf_row(p, n);
    const int swz = p->b_swizzled;
    const float *a = p->a + m0 * p->lda;
    const int64_t lda = p->lda;
    __m256 ae[CPU_GEMV_MR], ao[CPU_GEMV_MR];
    for (int r = 0; r < mr; r++) {
        ae[r] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(sums + r * 16);
        ao[r] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(sums + r * 16 + 8);
    }
    for (int64_t kb = kb0; kb < kb0 + kbs; kb++) {
        __m256 we, wo;
        decode_block(row, sf, swz, kb, &we, &wo);
        for (int r = 0; r < mr; r++) {
            const float *x = a + r * lda + kb * 16;
            ae[r] = _mm256_fmadd_ps(_mm256_loadu_ps(x), we, ae[r]);
            ao[r] = _mm256_fmadd_ps(_mm256_loadu_ps(x + 8), wo, ao[r]);
        }
    }
    for (int r = 0; r < mr; r++) {
        _mm256_storeu_ps(sums + r * 16, ae[r]);
        _mm256_storeu_ps(sums + r * 16 + 8, ao[r]);
    }
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
            for (int64_t i = 0; i < kbs * 2; i++) _mm256_storeu_ps(dst + i * 8, _mm256_setzero_ps());
            continue;
        }
        const uint8_t *row = p->b + n * (p->k / 2);
        const uint8_t *sf = p->b_sf + cpu_sf_row(p, n);
        for (int64_t kb = kb0; kb < kb0 + kbs; kb++) {
            __m256 we, wo;
            decode_block(row, sf, p->b_swizzled, kb, &we, &wo);
            _mm256_storeu_ps(dst + (kb - kb0) * 16, we);
            _mm256_storeu_ps(dst + (kb - kb0) * 16 + 8, wo);
        }
    }
}

/* The 4x4 tile as four 2x2 sub-tiles: 8 accumulators of the 16 ymm registers. */
static void micro(const float *a, int64_t lda, const float *b, int64_t ldb, int64_t kbs,
                  float *part, int first) {
    for (int i0 = 0; i0 < CPU_MR; i0 += 2) {
        for (int j0 = 0; j0 < CPU_NR; j0 += 2) {
            __m256 c[2][2][2];
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 2; j++)
                    for (int h = 0; h < 2; h++) {
                        const float *src = part + ((i0 + i) * CPU_NR + j0 + j) * 16 + h * 8;
                        c[i][j][h] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(src);
                    }
            const float *x0 = a + i0 * lda, *y0 = b + j0 * ldb;
            for (int64_t kb = 0; kb < kbs; kb++) {
                __m256 x[2][2];
                for (int i = 0; i < 2; i++)
                    for (int h = 0; h < 2; h++) x[i][h] = _mm256_loadu_ps(x0 + i * lda + kb * 16 + h * 8);
                for (int j = 0; j < 2; j++)
                    for (int h = 0; h < 2; h++) {
                        const __m256 y = _mm256_loadu_ps(y0 + j * ldb + kb * 16 + h * 8);
                        for (int i = 0; i < 2; i++) c[i][j][h] = _mm256_fmadd_ps(x[i][h], y, c[i][j][h]);
                    }
            }
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 2; j++)
                    for (int h = 0; h < 2; h++)
                        _mm256_storeu_ps(part + ((i0 + i) * CPU_NR + j0 + j) * 16 + h * 8, c[i][j][h]);
        }
    }
}

const cpu_kernels cpu_kernels_avx2 = {"avx2", 16, gemv, decode, micro};
#endif

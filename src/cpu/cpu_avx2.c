/* cpu_avx2.c - the AVX2+FMA kernels of the `cpu` backend (compiled with -mavx2 -mfma; run only
 * where the CPU has both, cpu_simd.c). A k-block of 16 is two ymm registers, its even and its
 * odd elements: E2M1 codes decode through a 16-entry byte table in a register (pshufb) to
 * twice their value as int8, converted and multiplied by half the block scale (exact). Same
 * bits as cpu_generic.c (cpu_kernels.h). */
#if defined(__x86_64__) || defined(_M_X64)
#include "cpu_kernels.h"

#include <immintrin.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Block kb of a row: w[0] = its 8 even elements, w[1] = its 8 odd ones, times s. */
ALWAYS_INLINE void decode_block(const uint8_t *row, const uint8_t *sf, int swz, int64_t kb,
                                __m256 *we, __m256 *wo) {
    const __m128i tab = _mm_setr_epi8(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);
    const __m128i x = _mm_loadl_epi64((const __m128i *)(const void *)(row + kb * 8));
    const __m128i m = _mm_set1_epi8(0x0F);
    const __m128i lo = _mm_shuffle_epi8(tab, _mm_and_si128(x, m));
    const __m128i hi = _mm_shuffle_epi8(tab, _mm_and_si128(_mm_srli_epi16(x, 4), m));
    const __m256 s = _mm256_set1_ps(0.5f * cpu_e4m3_value[sf[cpu_sf_kb(swz, kb)]]);
    *we = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), s);
    *wo = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), s);
}

ALWAYS_INLINE void gemv_mr(const cpu_problem *p, int64_t m0, const int mr, int64_t n,
                           float *sums) {
    const uint8_t *row = p->b + n * (p->k / 2);
    const uint8_t *sf = p->b_sf + cpu_sf_row(p, n);
    const int swz = p->b_swizzled;
    const float *a = p->a + m0 * p->lda;
    const int64_t lda = p->lda;
    __m256 ae[CPU_GEMV_MR], ao[CPU_GEMV_MR];
    for (int r = 0; r < mr; r++) ae[r] = ao[r] = _mm256_setzero_ps();
    for (int64_t kb = 0; kb < p->kblocks; kb++) {
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

static void gemv(const cpu_problem *p, int64_t m0, int mr, int64_t n, float *sums) {
    switch (mr) {
    case 1: gemv_mr(p, m0, 1, n, sums); break;
    case 2: gemv_mr(p, m0, 2, n, sums); break;
    case 3: gemv_mr(p, m0, 3, n, sums); break;
    default: gemv_mr(p, m0, 4, n, sums); break;
    }
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

const cpu_kernels cpu_kernels_avx2 = {"avx2", gemv, decode, micro};
#endif

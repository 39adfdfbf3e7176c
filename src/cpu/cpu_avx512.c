/* cpu_avx512.c - the AVX-512F kernels of the `cpu` backend (compiled with -mavx512f; run only
 * where the CPU has it, cpu_simd.c). One k-block of 16 is one zmm register: E2M1 codes
 * decode through a 16-float table in a register (vpermps), times the block scale. Same bits
 * as cpu_generic.c (cpu_kernels.h). */
#if defined(__x86_64__) || defined(_M_X64)
#include "cpu_kernels.h"

#include <immintrin.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* The 16 E2M1 codes of block kb (8 bytes) as lane indices, in nibble order. */
ALWAYS_INLINE __m512i codes(const uint8_t *row, int64_t kb) {
    const __m128i x = _mm_loadl_epi64((const __m128i *)(const void *)(row + kb * 8));
    const __m128i m = _mm_set1_epi8(0x0F);
    const __m128i lo = _mm_and_si128(x, m);
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(x, 4), m);
    return _mm512_cvtepu8_epi32(_mm_unpacklo_epi64(lo, hi));
}

ALWAYS_INLINE __m512 e2m1_table(void) {
    return _mm512_setr_ps(0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f, -0.0f, -0.5f, -1.0f,
                          -1.5f, -2.0f, -3.0f, -4.0f, -6.0f);
}

ALWAYS_INLINE __m512 decode_block(const __m512 tab, const uint8_t *row, const uint8_t *sf,
                                  int swz, int64_t kb) {
    const __m512 s = _mm512_set1_ps(cpu_e4m3_value[sf[cpu_sf_kb(swz, kb)]]);
    return _mm512_mul_ps(_mm512_permutexvar_ps(codes(row, kb), tab), s);
}

ALWAYS_INLINE void gemv_mr(const cpu_problem *p, int64_t m0, const int mr, int64_t n,
                           float *sums) {
    const uint8_t *row = p->b + n * (p->k / 2);
    const uint8_t *sf = p->b_sf + cpu_sf_row(p, n);
    const int swz = p->b_swizzled;
    const __m512 tab = e2m1_table();
    const float *a = p->a + m0 * p->lda;
    const int64_t lda = p->lda;
    __m512 acc[CPU_GEMV_MR];
    for (int r = 0; r < mr; r++) acc[r] = _mm512_setzero_ps();
    for (int64_t kb = 0; kb < p->kblocks; kb++) {
        const __m512 w = decode_block(tab, row, sf, swz, kb);
        for (int r = 0; r < mr; r++)
            acc[r] = _mm512_fmadd_ps(_mm512_loadu_ps(a + r * lda + kb * 16), w, acc[r]);
    }
    for (int r = 0; r < mr; r++) _mm512_storeu_ps(sums + r * 16, acc[r]);
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
    const __m512 tab = e2m1_table();
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
            _mm512_storeu_ps(dst + (kb - kb0) * 16, decode_block(tab, row, sf, p->b_swizzled, kb));
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

const cpu_kernels cpu_kernels_avx512 = {"avx512", gemv, decode, micro};
#endif

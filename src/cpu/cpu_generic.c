/* cpu_generic.c - the portable C kernels of the `cpu` backend (any machine; the reference
 * for the SIMD ones, which compute the same bits: see cpu_kernels.h). */
#include "cpu_kernels.h"

/* E2M1 codes 0..15 as floats. */
static const float k_e2m1[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                 -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

/* Block kb of row `row` (8 bytes) decoded into w[16] in lane order, times scale s. */
static void decode_block(const uint8_t *row, int64_t kb, float s, float *w) {
    const uint8_t *x = row + kb * 8;
    for (int j = 0; j < 16; j++) {
        const int e = CPU_LANE_ELEMENT(j);
        w[j] = k_e2m1[(x[e / 2] >> (4 * (e % 2))) & 15] * s;
    }
}

static void gemv_row(const cpu_problem *p, int64_t m0, int mr, int64_t n, int64_t kb0, int64_t kbs,
                     float *sums, int first) {
    const uint8_t *row = p->b + n * (p->k / 2);
    const uint8_t *sf = p->b_sf + cpu_sf_row(p, n);
    float acc[CPU_GEMV_MR][16] = {{0}};
    for (int r = 0; r < mr && !first; r++)
        for (int j = 0; j < 16; j++) acc[r][j] = sums[r * 16 + j];
    for (int64_t kb = kb0; kb < kb0 + kbs; kb++) {
        float w[16];
        decode_block(row, kb, cpu_e4m3_value[sf[cpu_sf_kb(p->b_swizzled, kb)]], w);
        for (int r = 0; r < mr; r++) {
            const float *a = p->a + (m0 + r) * p->lda + kb * 16;
            for (int j = 0; j < 16; j++) acc[r][j] += a[j] * w[j];
        }
    }
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < 16; j++) sums[r * 16 + j] = acc[r][j];
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
            for (int64_t i = 0; i < kbs * 16; i++) dst[i] = 0.0f;
            continue;
        }
        const uint8_t *row = p->b + n * (p->k / 2);
        const uint8_t *sf = p->b_sf + cpu_sf_row(p, n);
        for (int64_t kb = kb0; kb < kb0 + kbs; kb++)
            decode_block(row, kb, cpu_e4m3_value[sf[cpu_sf_kb(p->b_swizzled, kb)]],
                         dst + (kb - kb0) * 16);
    }
}

static void micro(const float *a, int64_t lda, const float *b, int64_t ldb, int64_t kbs,
                  float *part, int first) {
    for (int i = 0; i < CPU_MR; i++) {
        for (int j = 0; j < CPU_NR; j++) {
            float acc[16];
            float *c = part + (i * CPU_NR + j) * 16;
            for (int l = 0; l < 16; l++) acc[l] = first ? 0.0f : c[l];
            for (int64_t kb = 0; kb < kbs; kb++) {
                const float *x = a + i * lda + kb * 16, *y = b + j * ldb + kb * 16;
                for (int l = 0; l < 16; l++) acc[l] += x[l] * y[l];
            }
            for (int l = 0; l < 16; l++) c[l] = acc[l];
        }
    }
}

const cpu_kernels cpu_kernels_generic = {"generic", 7, gemv, decode, micro};

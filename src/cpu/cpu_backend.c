/* cpu_backend.c - the `cpu` backend: NVFP4 GEMM on the CPU with SIMD kernels (chosen at run
 * time, src/cpu/cpu_simd.c) and OpenMP threads. auto's choice on CPU contexts; cpu_ref stays
 * the reference.
 *
 * Two configs (docs/backends.md):
 *   gemv     streaming, for small m: threads take 16-row chunks of B (each thread the chunks
 *            of its own contiguous share first, then what is left of the others') and, for
 *            each group of up to 4 rows of A, decode 4 rows of B at a time in registers and
 *            multiply them into the group's accumulators; the weight is read once from memory
 *            (a second group finds the chunk in cache), A in 1024-deep slices that stay in L1.
 *            Limit: m <= 16.
 *   blocked  for large m: tiles of 128 x 32 outputs; per tile, 1024-deep slices of B's 32
 *            rows are decoded into an F32 panel (128 KiB, L2) and a 4 x 4 register-blocked
 *            micro-kernel runs over it. Any shape.
 * Both first convert A to F32 (W4A4: E2M1 times its block scale, exact; the SIMD decoder).
 *
 * Bits: every config, every kernel set (AVX-512, AVX2, NEON, C) and every thread count gives
 * the same result: work is split by output tiles only, never along k, and each output sums
 * its products in one fixed order (src/cpu/cpu_kernels.h).
 *
 * Threads: the context's setting (fp4_ctx_set_num_threads), else OpenMP's default
 * (OMP_NUM_THREADS, else one per core); problems under 1e6 multiply-adds run on the calling
 * thread. Work items are claimed dynamically (gemv: from the thread's own share first).
 * Without OpenMP at build time, one thread.
 *
 * Memory: unlike the GPU backends, a run allocates host scratch (A as F32, and per thread a
 * 128 KiB panel and 256 KiB of partial sums for `blocked`) and frees it before returning;
 * FP4_ERR_OUT_OF_MEMORY if that fails. Synchronous; desc->stream is ignored.
 */
#include "backend.h"
#include "cpu_simd.h"
#include "format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

enum {
    CONFIG_GEMV = 0,
    CONFIG_BLOCKED = 1,
    CONFIG_COUNT = 2,
    GEMV_MAX_M = 16,   /* gemv's limit */
    GEMV_CHUNK = 16,   /* rows of B per gemv work item */
    GEMV_KCB = 64,     /* k-blocks per gemv slice (1024 elements: 4 rows of A = 16 KiB) */
    BLK_MC = 128,      /* blocked tile: rows of A ... */
    BLK_NC = 32,       /* ... by rows of B */
    BLK_KCB = 64,      /* k-blocks per decoded slice (1024 elements) */
    CURSOR_STRIDE = 8  /* int64s between gemv's share cursors (a cache line) */
};
static const char *const k_config_names[CONFIG_COUNT] = {"gemv", "blocked"};

/* Per-context state: the thread setting and the kernel set. */
typedef struct cpu_state {
    int threads; /* 0: OpenMP's default */
    const cpu_kernels *kernels;
} cpu_state;

static fp4_status cpu_init(fp4_ctx *ctx, void **state) {
    cpu_state *s = calloc(1, sizeof *s);
    if (!s) return FP4_FAIL(ctx, FP4_ERR_OUT_OF_MEMORY, "cpu: out of memory for its state");
    s->kernels = cpu_simd_pick();
    *state = s;
    return FP4_OK;
}

static void cpu_fini(fp4_ctx *ctx, void *state) { free(state); }

static int default_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* ---- the public settings (include/fp4gemm.h) -------------------------------------------- */

fp4_status fp4_ctx_set_num_threads(fp4_ctx *ctx, int threads) {
    if (!ctx) return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "fp4_ctx_set_num_threads: ctx is NULL");
    if (threads < 0)
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT,
                        "fp4_ctx_set_num_threads: threads = %d; 0 (OpenMP's default) or more",
                        threads);
    cpu_state *s = fp4_backend_state(ctx, FP4_BACKEND_CPU);
    if (!s)
        return FP4_FAIL(ctx, FP4_ERR_NOT_SUPPORTED,
                        "fp4_ctx_set_num_threads: the cpu backend could not set up on this "
                        "context: %s", ctx->backend_init_error[FP4_BACKEND_CPU]);
    s->threads = threads;
    ctx->last_error[0] = 0;
    return FP4_OK;
}

int fp4_ctx_num_threads(const fp4_ctx *ctx) {
#ifdef _OPENMP
    const cpu_state *s = ctx ? fp4_backend_state(ctx, FP4_BACKEND_CPU) : NULL;
    if (s && s->threads > 0) return s->threads;
#else
    (void)ctx;
#endif
    return default_threads();
}

const char *fp4_ctx_cpu_simd(const fp4_ctx *ctx) {
    const cpu_state *s = ctx ? fp4_backend_state(ctx, FP4_BACKEND_CPU) : NULL;
    return s ? s->kernels->name : cpu_simd_pick()->name;
}

int fp4_built_with_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

/* ---- the pieces of a run ------------------------------------------------------------------ */

/* Row m of A into dst[k] as F32 in nibble order (cpu_kernels.h), the block scale folded in:
 * W4A4's A decodes exactly like B, with the SIMD kernel's decode. */
static void pack_a_row(const cpu_kernels *kr, const fp4_gemm_desc *d, int64_t m, float *dst) {
    const int64_t kblocks = d->k / 16;
    if (d->a_dtype == FP4_DTYPE_E2M1) {
        const cpu_problem as_b = {d->m, d->m, d->k, kblocks, d->a, d->a_sf,
                                  d->a_sf_layout == FP4_SF_SWIZZLED_128x4, NULL, 0};
        kr->decode(&as_b, m, 1, 0, kblocks, dst, d->k);
        return;
    }
    const uint16_t *row = (const uint16_t *)d->a + m * d->k;
    const int bf16 = d->a_dtype == FP4_DTYPE_BF16;
    for (int64_t kb = 0; kb < kblocks; kb++)
        for (int i = 0; i < 16; i++) {
            const uint16_t h = row[kb * 16 + CPU_LANE_ELEMENT(i)];
            dst[kb * 16 + i] = bf16 ? fp4_bf16_to_f32(h) : fp4_f16_to_f32(h);
        }
}

static void store_out(const fp4_gemm_desc *d, float alpha, int64_t m, int64_t n, float sum) {
    fp4_store_from_f32(d->d, d->d_dtype, m * d->ldd + n, (float)((double)alpha * (double)sum));
}

/* gemv work item: B rows [n0, n1) (at most GEMV_CHUNK), in k slices of GEMV_KCB blocks so
 * that the slice of A (4 rows) stays in L1 while the chunk's rows stream past it. */
static void gemv_item(const cpu_kernels *kr, const cpu_problem *p, const fp4_gemm_desc *d,
                      float alpha, int64_t n0, int64_t n1) {
    float sums[GEMV_MAX_M * GEMV_CHUNK * 16]; /* 16 KiB: (row, n) lane sums */
    /* one or two rows of A stay in L1 whole (K <= 4096): no slices, whole rows of B stream */
    const int64_t slice = p->m <= 2 && p->kblocks <= 256 ? p->kblocks : GEMV_KCB;
    for (int64_t kb0 = 0; kb0 < p->kblocks; kb0 += slice) {
        const int64_t kbs = p->kblocks - kb0 < slice ? p->kblocks - kb0 : slice;
        for (int64_t m0 = 0; m0 < p->m; m0 += CPU_GEMV_MR) {
            const int mr = (int)(p->m - m0 < CPU_GEMV_MR ? p->m - m0 : CPU_GEMV_MR);
            for (int64_t n = n0; n < n1; n += CPU_GEMV_NN) {
                const int nn = (int)(n1 - n < CPU_GEMV_NN ? n1 - n : CPU_GEMV_NN);
                kr->gemv(p, m0, mr, n, nn, kb0, kbs, sums + ((n - n0) * GEMV_MAX_M + m0) * 16,
                         GEMV_MAX_M * 16, kb0 == 0);
            }
        }
    }
    for (int64_t n = n0; n < n1; n++)
        for (int64_t m = 0; m < p->m; m++)
            store_out(d, alpha, m, n, cpu_reduce16(sums + ((n - n0) * GEMV_MAX_M + m) * 16));
}

/* blocked work item: the tile of rows [m0, m0 + BLK_MC) x [n0, n0 + BLK_NC), clipped. */
static void blocked_item(const cpu_kernels *kr, const cpu_problem *p, const fp4_gemm_desc *d,
                         float alpha, int64_t m0, int64_t n0, float *panel, float *part) {
    const int64_t mt = p->m - m0 < BLK_MC ? p->m - m0 : BLK_MC;
    const int64_t nt = p->n - n0 < BLK_NC ? p->n - n0 : BLK_NC;
    const int64_t mt4 = (mt + CPU_MR - 1) / CPU_MR * CPU_MR; /* A is padded with zero rows */
    const int64_t nt4 = (nt + CPU_NR - 1) / CPU_NR * CPU_NR; /* decode pads with zero rows */
    const int64_t tile = CPU_MR * CPU_NR * 16;
    for (int64_t kb0 = 0; kb0 < p->kblocks; kb0 += BLK_KCB) {
        const int64_t kbs = p->kblocks - kb0 < BLK_KCB ? p->kblocks - kb0 : BLK_KCB;
        kr->decode(p, n0, (int)nt4, kb0, kbs, panel, kbs * 16);
        for (int64_t i = 0; i < mt4; i += CPU_MR)
            for (int64_t j = 0; j < nt4; j += CPU_NR)
                kr->micro(p->a + (m0 + i) * p->lda + kb0 * 16, p->lda, panel + j * kbs * 16,
                          kbs * 16, kbs, part + ((i / CPU_MR) * (BLK_NC / CPU_NR) + j / CPU_NR) * tile,
                          kb0 == 0);
    }
    for (int64_t i = 0; i < mt; i++)
        for (int64_t j = 0; j < nt; j++) {
            const float *v = part + ((i / CPU_MR) * (BLK_NC / CPU_NR) + j / CPU_NR) * tile +
                             ((i % CPU_MR) * CPU_NR + j % CPU_NR) * 16;
            store_out(d, alpha, m0 + i, n0 + j, cpu_reduce16(v));
        }
}

static void *alloc_floats(int64_t count) {
    const size_t bytes = ((size_t)count * sizeof(float) + 63) & ~(size_t)63;
    return aligned_alloc(64, bytes ? bytes : 64);
}

/* ---- the backend's entries --------------------------------------------------------------- */

static const char *cpu_why_not(const fp4_ctx *ctx, const fp4_gemm_desc *desc, char *buf,
                               size_t len) {
    if (ctx->device < 0) return NULL;
    snprintf(buf, len, "runs on CPU contexts (device -1); this context is on CUDA device %d",
             ctx->device);
    return buf;
}

static int cpu_config_count(void) { return CONFIG_COUNT; }

static const char *cpu_config_name(int config) {
    return config >= 0 && config < CONFIG_COUNT ? k_config_names[config] : NULL;
}

static const char *cpu_config_why_not(const fp4_ctx *ctx, const fp4_gemm_desc *desc, int config,
                                      char *buf, size_t len) {
    if (config == CONFIG_GEMV && desc && desc->m > GEMV_MAX_M) {
        snprintf(buf, len, "gemv takes m <= %d (it decodes each weight block once per 4 rows); m = %lld",
                 GEMV_MAX_M, (long long)desc->m);
        return buf;
    }
    return NULL;
}

/* gemv up to the kernel set's heur_gemv_m (AVX-512 and AVX2: 16, gemv's limit; NEON and C:
 * 7), else blocked: on the 2-core Zen 4, AVX-512 gemv is 1.3-2.1x faster than blocked at
 * M = 8..16, the C kernels' slower from M = 8 (docs/PERF.md). */
static int cpu_default_config(const fp4_ctx *ctx, const fp4_gemm_desc *desc) {
    const cpu_state *s = fp4_backend_state(ctx, FP4_BACKEND_CPU);
    const cpu_kernels *kr = s ? s->kernels : &cpu_kernels_generic;
    return desc->m <= kr->heur_gemv_m && desc->m <= GEMV_MAX_M ? CONFIG_GEMV : CONFIG_BLOCKED;
}

static fp4_status cpu_run(fp4_ctx *ctx, const fp4_gemm_desc *d, int config) {
    const cpu_state *s = fp4_backend_state(ctx, FP4_BACKEND_CPU);
    const cpu_kernels *kr = s ? s->kernels : &cpu_kernels_generic;
    const float alpha = d->alpha_ptr ? *d->alpha_ptr : d->alpha;
    const int64_t m4 = (d->m + 3) / 4 * 4;

    /* the thread count: small problems stay on the calling thread */
    int threads = fp4_ctx_num_threads(ctx);
    if ((double)d->m * (double)d->n * (double)d->k < 1e6) threads = 1;

    cpu_problem p = {d->m, d->n, d->k, d->k / 16, d->b, d->b_sf,
                     d->b_sf_layout == FP4_SF_SWIZZLED_128x4, NULL, d->k};
    if ((uint64_t)m4 > (uint64_t)INT64_MAX / 4 / (uint64_t)d->k)
        return FP4_FAIL(ctx, FP4_ERR_OUT_OF_MEMORY, "cpu: A as F32 (%lld x %lld) is too large",
                        (long long)d->m, (long long)d->k);
    float *a = alloc_floats(m4 * d->k);
    if (!a)
        return FP4_FAIL(ctx, FP4_ERR_OUT_OF_MEMORY, "cpu: out of memory for A as F32 (%lld bytes)",
                        (long long)(m4 * d->k * 4));
    p.a = a;
    const int64_t per_thread = (int64_t)BLK_NC * BLK_KCB * 16 + (int64_t)BLK_MC * BLK_NC * 16;
    float *scratch = NULL;
    if (config == CONFIG_BLOCKED) {
        scratch = alloc_floats(per_thread * threads);
        if (!scratch) {
            free(a);
            return FP4_FAIL(ctx, FP4_ERR_OUT_OF_MEMORY, "cpu: out of memory for %d threads' panels",
                            threads);
        }
    }
    const int64_t m_tiles = (d->m + BLK_MC - 1) / BLK_MC, n_tiles = (d->n + BLK_NC - 1) / BLK_NC;
    const int64_t gemv_items = (d->n + GEMV_CHUNK - 1) / GEMV_CHUNK;
    /* gemv: the next unclaimed item of each thread's share, one cache line apart */
    int64_t *cursor = NULL;
    if (config == CONFIG_GEMV) {
        cursor = malloc((size_t)threads * CURSOR_STRIDE * sizeof *cursor);
        if (!cursor) {
            free(a);
            return FP4_FAIL(ctx, FP4_ERR_OUT_OF_MEMORY, "cpu: out of memory for %d threads' cursors",
                            threads);
        }
        for (int t = 0; t < threads; t++) cursor[t * CURSOR_STRIDE] = gemv_items * t / threads;
    }

    /* gemv's few rows of A are converted here, which saves the threads a barrier */
    const int pack_first = config == CONFIG_GEMV || threads == 1;
    if (pack_first)
        for (int64_t m = 0; m < m4; m++) {
            if (m < d->m)
                pack_a_row(kr, d, m, a + m * d->k);
            else
                memset(a + m * d->k, 0, (size_t)d->k * sizeof(float));
        }

#ifdef _OPENMP
#pragma omp parallel num_threads(threads) if (threads > 1)
#endif
    {
#ifdef _OPENMP
        const int tid = omp_get_thread_num();
#else
        const int tid = 0;
#endif
        if (!pack_first) {
#ifdef _OPENMP
#pragma omp for schedule(dynamic)
#endif
            for (int64_t m = 0; m < m4; m++) {
                if (m < d->m)
                    pack_a_row(kr, d, m, a + m * d->k);
                else
                    memset(a + m * d->k, 0, (size_t)d->k * sizeof(float));
            }
        }
        if (config == CONFIG_GEMV) {
            /* each thread streams its own contiguous share of B's rows first (one sequential
             * stream per core, which the prefetchers follow: faster from DRAM than items
             * handed out in turn), then helps with the others' shares; items are claimed
             * one at a time from a share's cursor, so none runs twice */
            for (int t = 0; t < threads; t++) {
                const int share = (tid + t) % threads;
                const int64_t end = gemv_items * (share + 1) / threads;
                for (;;) {
                    int64_t it;
#ifdef _OPENMP
#pragma omp atomic capture
#endif
                    it = cursor[share * CURSOR_STRIDE]++;
                    if (it >= end) break;
                    const int64_t n0 = it * GEMV_CHUNK;
                    gemv_item(kr, &p, d, alpha, n0, n0 + GEMV_CHUNK < d->n ? n0 + GEMV_CHUNK : d->n);
                }
            }
        } else {
            float *panel = scratch + per_thread * tid;
            float *part = panel + (int64_t)BLK_NC * BLK_KCB * 16;
            /* n-tiles outer: consecutive items share a decoded B slice's source in cache */
#ifdef _OPENMP
#pragma omp for schedule(dynamic)
#endif
            for (int64_t it = 0; it < m_tiles * n_tiles; it++)
                blocked_item(kr, &p, d, alpha, (it % m_tiles) * BLK_MC, (it / m_tiles) * BLK_NC,
                             panel, part);
        }
    }
    free(cursor);
    free(scratch);
    free(a);
    return FP4_OK;
}

const fp4_backend_ops fp4_cpu_ops = {
    FP4_BACKEND_CPU, "cpu", cpu_init, cpu_fini, cpu_why_not,
    cpu_config_count, cpu_config_name, cpu_config_why_not, cpu_default_config,
    cpu_run,
};

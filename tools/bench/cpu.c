/*
 * cpu.c - `fp4gemm bench` on the CPU (device -1): the session (the machine, its ceilings) and
 * one point at a time for the CPU providers: the `cpu` backend, `cpu_ref`, auto, and OpenBLAS
 * sgemm (sgemv at M = 1) on the dequantized F32 operands where the bench was built with
 * OpenBLAS. Same rows, table, CSV, JSON and SVG as on a GPU (report.c, svg.c); the method is
 * the library's (fp4_gemm_verify, fp4_measure with the host clock, --rounds as on a GPU), in
 * docs/PERF.md.
 *
 * Ceilings, measured at the start: DRAM read bandwidth (every thread sums its share of a
 * 256 MiB buffer, 8x the last-level cache or more; best of 5) and the FP32 FMA peak (every
 * thread runs 12 independent chains of the widest FMA the CPU has; best of 5).
 * Cold inputs: each provider rotates over enough input sets to span 4x the last-level cache.
 */
#define _POSIX_C_SOURCE 200809L
#include "bench_internal.h"
#include "cli_util.h"
#include "format.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif
#ifdef FP4GEMM_BENCH_OPENBLAS
#include <cblas.h>
#endif

#define WHY 512
#define LLC_FACTOR 4.0 /* the input sets of one replay span at least this many LLC sizes */

struct bench_cpu {
    fp4_ctx *ctx;
};

/* ---- the machine ------------------------------------------------------------------------- */

static void cpu_model(char *out, size_t len) {
    snprintf(out, len, "CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        const char *v = strchr(line, ':');
        if (!v) break;
        v++;
        while (*v == ' ' || *v == '\t') v++;
        snprintf(out, len, "%s", v);
        out[strcspn(out, "\n")] = 0;
        break;
    }
    fclose(f);
}

/* The last-level cache of one CPU: Linux's sysfs (what lscpu shows per instance; sysconf can
 * report a host's total inside a VM), else sysconf, else 32 MiB. */
static int64_t llc_bytes(void) {
    int64_t best = 0;
    int best_level = 0;
    for (int i = 0; i < 8; i++) {
        char path[96], text[64];
        int level = 0;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        if (fscanf(f, "%d", &level) != 1) level = 0;
        fclose(f);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        f = fopen(path, "r");
        if (!f) continue;
        long long size = 0;
        char unit = 0;
        if (fgets(text, sizeof text, f) && sscanf(text, "%lld%c", &size, &unit) >= 1) {
            if (unit == 'K') size <<= 10;
            if (unit == 'M') size <<= 20;
            if (level > best_level && size > 0) {
                best_level = level;
                best = size;
            }
        }
        fclose(f);
    }
    if (best > 0) return best;
    long v = -1;
#ifdef _SC_LEVEL3_CACHE_SIZE
    v = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (v <= 0) v = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
    return v > 0 ? (int64_t)v : (int64_t)32 << 20; /* unknown: assume 32 MiB */
}

int bench_cpu_open(bench_device *dev, bench_cpu **out, char *why, size_t len) {
    *out = NULL;
    bench_cpu *bc = calloc(1, sizeof *bc);
    if (!bc) {
        snprintf(why, len, "out of host memory");
        return -1;
    }
    if (fp4_create(&bc->ctx, -1) != FP4_OK) {
        snprintf(why, len, "fp4_create(-1): %s", fp4_last_error(NULL));
        free(bc);
        return -1;
    }
    memset(dev, 0, sizeof *dev);
    cpu_model(dev->name, sizeof dev->name);
    dev->device = -1;
    dev->sm_count = fp4_ctx_num_threads(bc->ctx);
    dev->l2_bytes = llc_bytes();
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    dev->memory_bytes = pages > 0 && page > 0 ? (int64_t)pages * page : 0;
    *out = bc;
    return 0;
}

void bench_cpu_close(bench_cpu *bc) {
    if (!bc) return;
    fp4_destroy(bc->ctx);
    free(bc);
}

const char *bench_cpu_facts(bench_cpu *bc, char *buf, size_t len) {
    const char *ct = getenv("OPENBLAS_CORETYPE"), *wp = getenv("OMP_WAIT_POLICY");
    int used = snprintf(buf, len,
                        "cpu backend: %s kernels, %d threads (%s, OMP_WAIT_POLICY %s); "
                        "OPENBLAS_CORETYPE %s",
                        fp4_ctx_cpu_simd(bc->ctx), fp4_ctx_num_threads(bc->ctx),
                        fp4_built_with_openmp() ? "OpenMP" : "built without OpenMP",
                        wp ? wp : "unset", ct ? ct : "unset");
#ifdef FP4GEMM_BENCH_OPENBLAS
    if (used > 0 && (size_t)used < len)
        snprintf(buf + used, len - (size_t)used, "; OpenBLAS %s, core %s, %d threads", openblas_get_config(),
                 openblas_get_corename(), openblas_get_num_threads());
#else
    if (used > 0 && (size_t)used < len)
        snprintf(buf + used, len - (size_t)used, "; OpenBLAS: not built (no libopenblas-dev at build time)");
#endif
    return buf;
}

int bench_cpu_provider_check(bench_cpu *bc, const bench_provider *p, char *why, size_t len) {
    if (p->kind == BENCH_KIND_OPENBLAS_F32) {
#ifdef FP4GEMM_BENCH_OPENBLAS
        return 0;
#else
        snprintf(why, len, "not built: OpenBLAS (libopenblas-dev) was not found when fp4gemm was built");
        return -1;
#endif
    }
    if (p->kind != BENCH_KIND_FP4 || p->where == BENCH_WHERE_GPU) {
        snprintf(why, len, "a GPU provider; this run is on the CPU");
        return -1;
    }
    if (p->backend == FP4_BACKEND_AUTO) return 0;
    return fp4_backend_check(bc->ctx, p->backend, NULL, why, len) == FP4_OK ? 0 : -1;
}

/* ---- ceilings ------------------------------------------------------------------------------ */

static double dram_read_gbs(int64_t *bytes_out) {
    const int64_t words = ((int64_t)256 << 20) / 8;
    uint64_t *buf = malloc((size_t)words * 8);
    if (!buf) return 0;
#ifdef _OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (int64_t i = 0; i < words; i++) buf[i] = (uint64_t)i * 0x9E3779B97F4A7C15ull;
    double best = 0;
    volatile uint64_t sink = 0;
    for (int rep = 0; rep < 5; rep++) {
        uint64_t total = 0;
        const double t0 = cli_seconds();
#ifdef _OPENMP
#pragma omp parallel for schedule(static) reduction(^ : total)
#endif
        for (int64_t c = 0; c < words / 1024; c++) {
            uint64_t x[8] = {0};
            const uint64_t *p = buf + c * 1024;
            for (int i = 0; i < 1024; i += 8)
                for (int j = 0; j < 8; j++) x[j] ^= p[i + j];
            total ^= x[0] ^ x[1] ^ x[2] ^ x[3] ^ x[4] ^ x[5] ^ x[6] ^ x[7];
        }
        const double t = cli_seconds() - t0;
        sink ^= total;
        if (t > 0 && (double)words * 8 / t / 1e9 > best) best = (double)words * 8 / t / 1e9;
    }
    (void)sink;
    free(buf);
    *bytes_out = words * 8;
    return best;
}

/* FP32 FLOPs of `iters` x 12 FMA chains of the widest vector on one thread. */
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx512f,fma"))) static float fma_avx512(int64_t iters, double *flops) {
    __m512 acc[12];
    const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) acc[i] = _mm512_set1_ps((float)i);
    for (int64_t it = 0; it < iters; it++)
        for (int i = 0; i < 12; i++) acc[i] = _mm512_fmadd_ps(acc[i], x, y);
    __m512 s = acc[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, acc[i]);
    *flops = (double)iters * 12 * 16 * 2;
    return _mm512_reduce_add_ps(s);
}
__attribute__((target("avx2,fma"))) static float fma_avx2(int64_t iters, double *flops) {
    __m256 acc[12];
    const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) acc[i] = _mm256_set1_ps((float)i);
    for (int64_t it = 0; it < iters; it++)
        for (int i = 0; i < 12; i++) acc[i] = _mm256_fmadd_ps(acc[i], x, y);
    float out[8], s = 0;
    for (int i = 1; i < 12; i++) acc[0] = _mm256_add_ps(acc[0], acc[i]);
    _mm256_storeu_ps(out, acc[0]);
    for (int i = 0; i < 8; i++) s += out[i];
    *flops = (double)iters * 12 * 8 * 2;
    return s;
}
#endif
static float fma_scalar(int64_t iters, double *flops) {
    float acc[12];
    for (int i = 0; i < 12; i++) acc[i] = (float)i;
    for (int64_t it = 0; it < iters; it++)
        for (int i = 0; i < 12; i++) acc[i] = fmaf(acc[i], 0.999999f, 1e-7f);
    float s = 0;
    for (int i = 0; i < 12; i++) s += acc[i];
    *flops = (double)iters * 12 * 2;
    return s;
}

static double fma_peak_tflops(int threads, const char **isa) {
    float (*fn)(int64_t, double *) = fma_scalar;
    *isa = "scalar";
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma")) {
        fn = fma_avx512;
        *isa = "AVX-512";
    } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        fn = fma_avx2;
        *isa = "AVX2";
    }
#endif
    double best = 0;
    volatile float sink = 0;
    for (int rep = 0; rep < 5; rep++) {
        double flops_total = 0;
        float s_total = 0;
        const double t0 = cli_seconds();
#ifdef _OPENMP
#pragma omp parallel num_threads(threads) reduction(+ : flops_total, s_total)
#endif
        {
            double f = 0;
            s_total += fn(20000000, &f);
            flops_total += f;
        }
        const double t = cli_seconds() - t0;
        sink += s_total;
        if (t > 0 && flops_total / t / 1e12 > best) best = flops_total / t / 1e12;
    }
    (void)sink;
    return best;
}

int bench_cpu_ceilings(bench_cpu *bc, bench_device *dev, char *why, size_t len) {
    (void)why;
    (void)len;
    dev->copy_gbs = dram_read_gbs(&dev->copy_bytes);
    const char *isa = "";
    dev->bf16_tflops = fma_peak_tflops(fp4_ctx_num_threads(bc->ctx), &isa);
    snprintf(dev->ceiling_note, sizeof dev->ceiling_note,
             "compute ceiling = FP32 FMA peak (%s, %d threads); memory ceiling = DRAM read", isa,
             fp4_ctx_num_threads(bc->ctx));
    return 0;
}

/* ---- one point -------------------------------------------------------------------------- */

typedef struct cpu_set {
    uint8_t *a, *a_sf, *b, *b_sf; /* NVFP4, swizzled scales */
    float *af, *bf;               /* dequantized F32 (OpenBLAS sets only) */
} cpu_set;

typedef struct cpu_operands {
    int64_t m, n, k;
    int sets, f32_sets;
    cpu_set *s;
    void *d;     /* out_dtype [m, n] */
    float *d32;  /* F32 [m, n] (OpenBLAS) */
    fp4_dtype out_dtype;
    float alpha;
} cpu_operands;

static uint64_t next(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void fill_codes(uint8_t *p, int64_t n, uint64_t *rng) {
    for (int64_t i = 0; i < n; i += 8) {
        const uint64_t v = next(rng);
        for (int64_t j = 0; j < 8 && i + j < n; j++) p[i + j] = (uint8_t)(v >> (8 * j));
    }
}

/* E4M3 scales with exponents 2^-3 .. 2^3 (codes 0x20 .. 0x57), the range real blocks use. */
static void fill_scales(uint8_t *p, int64_t n, uint64_t *rng) {
    for (int64_t i = 0; i < n; i++) p[i] = (uint8_t)(0x20 + next(rng) % 0x38);
}

static void dequant(const uint8_t *x, const uint8_t *sf, int64_t rows, int64_t k, float *out) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t kk = 0; kk < k; kk++)
            out[r * k + kk] = fp4_e2m1_decode(fp4_get_nibble(x + r * (k / 2), kk)) *
                              fp4_e4m3_decode(sf[fp4_sf_offset_swizzled(r, kk / 16, k)]);
}

static void free_operands(cpu_operands *o) {
    if (o->s)
        for (int i = 0; i < o->sets; i++) {
            free(o->s[i].a);
            free(o->s[i].a_sf);
            free(o->s[i].b);
            free(o->s[i].b_sf);
            free(o->s[i].af);
            free(o->s[i].bf);
        }
    free(o->s);
    free(o->d);
    free(o->d32);
    memset(o, 0, sizeof *o);
}

static double nvfp4_bytes(int64_t m, int64_t n, int64_t k) {
    return (double)(m + n) * (double)k * (0.5 + 1.0 / 16.0);
}

static int sets_for(double set_bytes, int64_t llc) {
    int s = (int)ceil(LLC_FACTOR * (double)llc / set_bytes);
    return s < 1 ? 1 : s > BENCH_MAX_SETS ? BENCH_MAX_SETS : s;
}

static int make_operands(const bench_run *run, bench_shape sh, int want_f32, cpu_operands *o,
                         char *why) {
    memset(o, 0, sizeof *o);
    o->m = sh.m;
    o->n = sh.n;
    o->k = sh.k;
    o->out_dtype = run->opt->out_dtype;
    o->alpha = 1.0f / 4096.0f;
    o->sets = sets_for(nvfp4_bytes(sh.m, sh.n, sh.k), run->dev.l2_bytes);
    o->f32_sets = want_f32 ? sets_for((double)(sh.m + sh.n) * sh.k * 4, run->dev.l2_bytes) : 0;
    if (o->f32_sets > o->sets) o->f32_sets = o->sets;
    o->s = calloc((size_t)o->sets, sizeof *o->s);
    const int64_t out_size = fp4_dtype_size(o->out_dtype);
    o->d = malloc((size_t)(sh.m * sh.n * out_size));
    o->d32 = want_f32 ? malloc((size_t)(sh.m * sh.n) * sizeof(float)) : NULL;
    if (!o->s || !o->d || (want_f32 && !o->d32)) goto oom;
    uint64_t rng = run->opt->seed * 0x2545F4914F6CDD1Dull + (uint64_t)sh.m * 31 + (uint64_t)sh.n;
    for (int i = 0; i < o->sets; i++) {
        cpu_set *s = &o->s[i];
        const int64_t asf = fp4_sf_bytes(sh.m, sh.k, FP4_SF_SWIZZLED_128x4);
        const int64_t bsf = fp4_sf_bytes(sh.n, sh.k, FP4_SF_SWIZZLED_128x4);
        s->a = malloc((size_t)(sh.m * sh.k / 2));
        s->b = malloc((size_t)(sh.n * sh.k / 2));
        s->a_sf = calloc((size_t)asf, 1);
        s->b_sf = calloc((size_t)bsf, 1);
        if (!s->a || !s->b || !s->a_sf || !s->b_sf) goto oom;
        fill_codes(s->a, sh.m * sh.k / 2, &rng);
        fill_codes(s->b, sh.n * sh.k / 2, &rng);
        fill_scales(s->a_sf, asf, &rng);
        fill_scales(s->b_sf, bsf, &rng);
        if (i < o->f32_sets) {
            s->af = malloc((size_t)(sh.m * sh.k) * sizeof(float));
            s->bf = malloc((size_t)(sh.n * sh.k) * sizeof(float));
            if (!s->af || !s->bf) goto oom;
            dequant(s->a, s->a_sf, sh.m, sh.k, s->af);
            dequant(s->b, s->b_sf, sh.n, sh.k, s->bf);
        }
    }
    return 0;
oom:
    snprintf(why, WHY, "out of host memory for %d input sets of %lldx%lldx%lld", o->sets,
             (long long)sh.m, (long long)sh.n, (long long)sh.k);
    free_operands(o);
    return -1;
}

static void fp4_desc_of(const cpu_operands *o, const bench_provider *p, int set, fp4_gemm_desc *g) {
    const cpu_set *s = &o->s[set];
    fp4_gemm_desc_init(g);
    g->m = o->m;
    g->n = o->n;
    g->k = o->k;
    g->a_dtype = FP4_DTYPE_E2M1;
    g->a = s->a;
    g->a_sf = s->a_sf;
    g->a_sf_layout = FP4_SF_SWIZZLED_128x4;
    g->b = s->b;
    g->b_sf = s->b_sf;
    g->b_sf_layout = FP4_SF_SWIZZLED_128x4;
    g->d_dtype = o->out_dtype;
    g->d = o->d;
    g->alpha = o->alpha;
    g->backend = p->backend;
    g->config = p->config;
}

typedef struct cpu_launch {
    bench_cpu *bc;
    const cpu_operands *o;
    const bench_provider *p;
} cpu_launch;

static fp4_status launch_set(void *user, int set, struct CUstream_st *stream) {
    (void)stream;
    const cpu_launch *l = user;
    const cpu_operands *o = l->o;
    if (l->p->kind == BENCH_KIND_OPENBLAS_F32) {
#ifdef FP4GEMM_BENCH_OPENBLAS
        const cpu_set *s = &o->s[set % o->f32_sets];
        if (o->m == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)o->n, (int)o->k, o->alpha, s->bf, (int)o->k,
                        s->af, 1, 0.0f, o->d32, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)o->m, (int)o->n, (int)o->k,
                        o->alpha, s->af, (int)o->k, s->bf, (int)o->k, 0.0f, o->d32, (int)o->n);
        return FP4_OK;
#else
        return FP4_ERR_NOT_SUPPORTED;
#endif
    }
    fp4_gemm_desc g;
    fp4_desc_of(o, l->p, set, &g);
    return fp4_gemm(l->bc->ctx, &g);
}

static int64_t slower_before(const bench_run *run, int provider, bench_shape s) {
    int64_t best = 0;
    for (int i = 0; i < run->nresults; i++) {
        const bench_result *h = &run->results[i];
        if (h->provider == provider && h->too_slow && h->shape.n == s.n && h->shape.k == s.k &&
            h->shape.m < s.m && h->shape.m > best)
            best = h->shape.m;
    }
    return best;
}

/* Input bytes one launch of provider p reads: NVFP4 A and B with scales, or F32 (OpenBLAS). */
static double input_bytes(const cpu_operands *o, const bench_provider *p) {
    return p->kind == BENCH_KIND_OPENBLAS_F32 ? (double)(o->m + o->n) * (double)o->k * 4.0
                                              : nvfp4_bytes(o->m, o->n, o->k);
}

/* Correctness: D poisoned, one launch on set 0, fp4_gemm_verify of the NVFP4 operands. Returns
 * 1 passed (time it), 0 not to be timed (r FAILED, or SKIPPED as too slow at a smaller M), -1
 * on an error of the library (why). */
static int check_provider(bench_cpu *bc, const bench_run *run, const cpu_operands *o, int pi,
                          bench_result *r, char *why) {
    const bench_provider *p = &run->providers[pi];
    const int blas = p->kind == BENCH_KIND_OPENBLAS_F32;
    cpu_launch l = {bc, o, p};
    r->flops = 2.0 * (double)o->m * (double)o->n * (double)o->k;
    r->bytes = input_bytes(o, p) +
               (double)(o->m * o->n) * (blas ? 4.0 : (double)fp4_dtype_size(o->out_dtype));
    const int64_t before = slower_before(run, pi, r->shape);
    if (before) {
        r->status = BENCH_SKIPPED;
        r->too_slow = 1;
        snprintf(r->note, sizeof r->note, "too slow for the budget already at M=%lld", (long long)before);
        return 0;
    }
    memset(blas ? (void *)o->d32 : o->d, 0xFF,
           (size_t)(o->m * o->n * (blas ? 4 : fp4_dtype_size(o->out_dtype))));
    fp4_status st = launch_set(&l, 0, NULL);
    if (st != FP4_OK) {
        r->status = BENCH_FAILED;
        snprintf(r->note, sizeof r->note, "%.390s", fp4_last_error(bc->ctx));
        return 0;
    }
    fp4_gemm_desc g;
    fp4_desc_of(o, p, 0, &g);
    if (blas) {
        g.d_dtype = FP4_DTYPE_F32;
        g.d = o->d32;
    }
    fp4_verify_result v;
    memset(&v, 0, sizeof v);
    v.struct_size = sizeof v;
    st = fp4_gemm_verify(bc->ctx, &g, BENCH_SAMPLES, run->opt->seed, &v);
    if (st != FP4_OK) {
        snprintf(why, WHY, "fp4_gemm_verify: %s", fp4_last_error(bc->ctx));
        return -1;
    }
    r->check_max_err = v.worst_ratio;
    r->check_rel_l2 = v.rel_l2;
    if (!v.passed) {
        r->status = BENCH_FAILED;
        snprintf(r->note, sizeof r->note, "%.390s", v.message);
        return 0;
    }
    return 1;
}

/* One timing of p with fp4_measure into m (too slow for the budget: m->too_slow). Returns 0,
 * or -1 on an error of the library (why). */
static int measure_provider(bench_cpu *bc, const bench_run *run, const cpu_operands *o,
                            const bench_provider *p, fp4_measure_result *m, char *why) {
    cpu_launch l = {bc, o, p};
    fp4_measure_desc md;
    fp4_measure_desc_init(&md);
    md.launch = launch_set;
    md.user = &l;
    md.sets = p->kind == BENCH_KIND_OPENBLAS_F32 ? o->f32_sets : o->sets;
    md.set_bytes = input_bytes(o, p);
    md.min_replays = run->opt->min_replays;
    md.budget_seconds = run->opt->max_point_seconds;
    fp4_measure_result_init(m);
    if (fp4_measure(bc->ctx, &md, m) != FP4_OK) {
        snprintf(why, WHY, "fp4_measure: %s", fp4_last_error(bc->ctx));
        return -1;
    }
    return 0;
}

/* The row from one timing (its median round): OK with its rates and notes (what auto and cpu
 * ran, "warm"), or SKIPPED as too slow for the budget. */
static void take_timing(bench_cpu *bc, const bench_run *run, const cpu_operands *o,
                        const bench_provider *p, bench_result *r, const fp4_measure_result *m) {
    const int blas = p->kind == BENCH_KIND_OPENBLAS_F32;
    if (!bench_take_measure(r, m, run->opt->max_point_seconds)) return;
    r->cold = m->sets * input_bytes(o, p) >= LLC_FACTOR * (double)run->dev.l2_bytes;
    const double t = r->time_us * 1e-6;
    r->tflops = r->flops / t / 1e12;
    r->gbs = r->bytes / t / 1e9;
    fp4_gemm_desc g;
    if (p->backend == FP4_BACKEND_AUTO && !blas) {
        fp4_tactic tac;
        char name[64] = "";
        fp4_desc_of(o, p, 0, &g);
        if (fp4_gemm_select(bc->ctx, &g, &tac, NULL, 0) == FP4_OK &&
            fp4_tactic_name(tac, name, sizeof name) == FP4_OK)
            snprintf(r->note, sizeof r->note, "auto: %s", name);
    } else if (p->backend == FP4_BACKEND_CPU && p->config < 0) {
        fp4_tactic tac;
        char name[64] = "";
        fp4_desc_of(o, p, 0, &g);
        if (fp4_gemm_select(bc->ctx, &g, &tac, NULL, 0) == FP4_OK &&
            fp4_tactic_name(tac, name, sizeof name) == FP4_OK)
            snprintf(r->note, sizeof r->note, "%s", name);
    }
    if (blas)
        snprintf(r->note + strlen(r->note), sizeof r->note - strlen(r->note), "%s%s",
                 r->note[0] ? "; " : "", o->m == 1 ? "sgemv" : "sgemm");
    if (!r->cold)
        snprintf(r->note + strlen(r->note), sizeof r->note - strlen(r->note), "%swarm: sets span < %gx LLC",
                 r->note[0] ? "; " : "", LLC_FACTOR);
}

/* Round 0 in the listed order: each provider checked, then timed (all of --rounds 1); rounds
 * 1..R-1: those timed, again, the order reversed every odd round; a row is its median round. */
int bench_cpu_point(bench_cpu *bc, bench_run *run, bench_shape shape, char *why_out, size_t why_len) {
    char why[WHY] = "";
    const int first = run->nresults, n = run->nproviders, nrounds = run->opt->rounds;
    int want_f32 = 0;
    for (int i = 0; i < n; i++) want_f32 |= run->providers[i].kind == BENCH_KIND_OPENBLAS_F32;
    cpu_operands o;
    if (make_operands(run, shape, want_f32, &o, why) != 0) {
        snprintf(why_out, why_len, "%s", why);
        return -1;
    }
    fp4_measure_result *rounds = calloc((size_t)n * (size_t)nrounds, sizeof *rounds);
    int *timed = calloc((size_t)n, sizeof *timed); /* rounds timed of each provider; 0: not
                                                    * timed (SKIPPED, FAILED, over the budget) */
    int rc = 0;
    if (!rounds || !timed) {
        snprintf(why_out, why_len, "out of host memory");
        rc = -1;
    }
    for (int i = 0; i < n && rc == 0; i++) {
        const bench_provider *p = &run->providers[i];
        bench_result *r = bench_add_result(run, i, shape);
        if (!r) {
            snprintf(why_out, why_len, "out of host memory for the results");
            rc = -1;
            break;
        }
        r->status = BENCH_SKIPPED; /* until checked and timed */
        bench_progress(run, p->name, shape, 0);
        int step = check_provider(bc, run, &o, i, r, why);
        if (step > 0) {
            fp4_measure_result *m = &rounds[(size_t)i * nrounds];
            step = measure_provider(bc, run, &o, p, m, why);
            if (step == 0 && m->too_slow)
                take_timing(bc, run, &o, p, r, m); /* SKIPPED: not timed again */
            else if (step == 0)
                timed[i] = 1;
        }
        if (step < 0) {
            r->status = BENCH_FAILED;
            snprintf(r->note, sizeof r->note, "error: %.390s", why);
            snprintf(why_out, why_len, "%s: %s", p->name, why);
            rc = -1;
        }
    }
    for (int round = 1; round < nrounds && rc == 0; round++)
        for (int turn = 0; turn < n && rc == 0; turn++) {
            const int i = bench_round_order(round, turn, n);
            if (!timed[i]) continue;
            bench_progress(run, run->providers[i].name, shape, round);
            if (measure_provider(bc, run, &o, &run->providers[i],
                                 &rounds[(size_t)i * nrounds + round], why) == 0) {
                timed[i]++;
                continue;
            }
            timed[i] = 0;
            bench_result *r = &run->results[first + i];
            r->status = BENCH_FAILED;
            snprintf(r->note, sizeof r->note, "error in round %d/%d: %.360s", round + 1, nrounds,
                     why);
            snprintf(why_out, why_len, "%s: %s", run->providers[i].name, why);
            rc = -1;
        }
    /* the rows: each timed provider's median round (of the rounds it got, if the run stopped;
     * round 0 is never over the budget here, so there is one) */
    for (int i = 0; rounds && timed && i < n; i++) {
        if (!timed[i]) continue;
        bench_result *r = &run->results[first + i];
        const fp4_measure_result *mine = &rounds[(size_t)i * nrounds];
        take_timing(bc, run, &o, &run->providers[i], r, bench_median_round(mine, timed[i]));
        bench_note_rounds(r, mine, timed[i]);
        if (timed[i] < nrounds)
            snprintf(r->note + strlen(r->note), sizeof r->note - strlen(r->note),
                     "%sonly %d of %d rounds: the run stopped", r->note[0] ? "; " : "", timed[i],
                     nrounds);
    }
    free(rounds);
    free(timed);
    free_operands(&o);
    return rc;
}

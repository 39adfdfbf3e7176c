/* threads_work.c - seeded jobs for the concurrency tests (threads_work.h). */
#define _POSIX_C_SOURCE 200809L /* opendir */
#include "threads_work.h"

#include "format.h"
#include "test_util.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t tw_seed(uint64_t base, uint64_t t, uint64_t i) {
    tu_rng r;
    tu_rng_seed(&r, base ^ (t * 0x9E3779B97F4A7C15ull) ^ (i * 0xD1B54A32D192ED03ull));
    (void)tu_rng_u64(&r);
    return tu_rng_u64(&r);
}

uint64_t tw_hash(uint64_t h, const void *p, int64_t n) {
    const uint8_t *b = (const uint8_t *)p;
    for (int64_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

int tw_count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

/* ---- jobs ----------------------------------------------------------------------------- */

static const fp4_dtype k_float_types[3] = {FP4_DTYPE_F32, FP4_DTYPE_F16, FP4_DTYPE_BF16};

void tw_job_make(uint64_t seed, const tw_limits *lim, tw_job *j) {
    tu_rng r;
    tu_rng_seed(&r, seed);
    memset(j, 0, sizeof *j);
    j->kind = (tw_kind)tu_rng_range(&r, 0, 2);
    j->rows = tu_rng_range(&r, 1, lim->max_rows);
    const int64_t kq = lim->gpu ? 64 : 16; /* cuda_mma takes k in multiples of 64 */
    j->k = kq * tu_rng_range(&r, 1, lim->max_k / kq);
    j->n = tu_rng_range(&r, 1, lim->max_n);
    j->layout = (fp4_sf_layout)tu_rng_range(&r, 0, 1);
    j->layout_b = (fp4_sf_layout)tu_rng_range(&r, 0, 1);
    j->recipe = (fp4_quant_recipe)tu_rng_range(&r, 0, 1);
    j->d_dtype = k_float_types[tu_rng_range(&r, 0, 2)];
    j->backend = FP4_BACKEND_AUTO;
    switch (j->kind) {
    case TW_QUANT:
        j->x_dtype = k_float_types[tu_rng_range(&r, 0, 2)];
        j->ld = j->k + 16 * tu_rng_range(&r, 0, 1);
        j->scale = 0.01f + (float)tu_rng_uniform(&r); /* modelopt's ws2, by value */
        break;
    case TW_DEQUANT:
        j->x_dtype = k_float_types[tu_rng_range(&r, 0, 2)];
        j->ld = j->k + 16 * tu_rng_range(&r, 0, 1);
        j->scale = 0.5f + (float)tu_rng_uniform(&r); /* gs */
        break;
    case TW_GEMM: {
        static const fp4_dtype a_types[3] = {FP4_DTYPE_E2M1, FP4_DTYPE_BF16, FP4_DTYPE_F16};
        j->x_dtype = a_types[tu_rng_range(&r, 0, 2)];
        j->ld = j->n + tu_rng_range(&r, 0, 3);
        j->scale = 0.25f + (float)tu_rng_uniform(&r); /* alpha */
        /* small m, long k: cuda_mma's split-K (its per-context workspace) */
        if (lim->gpu && tu_rng_range(&r, 0, 1)) {
            j->rows = tu_rng_range(&r, 1, 16);
            j->k = lim->max_k;
        }
        if (lim->gpu && tu_rng_range(&r, 0, 3) == 0) j->backend = FP4_BACKEND_CUDA_SIMT;
        break;
    }
    }
    j->data_seed = tu_rng_u64(&r);
}

void tw_job_describe(const tw_job *j, char *buf, size_t len) {
    static const char *const kinds[3] = {"quantize", "dequantize", "gemm"};
    if (j->kind == TW_GEMM)
        snprintf(buf, len, "gemm m=%lld n=%lld k=%lld ldd=%lld a=%s d=%s %s/%s %s",
                 (long long)j->rows, (long long)j->n, (long long)j->k, (long long)j->ld,
                 fp4_dtype_name(j->x_dtype), fp4_dtype_name(j->d_dtype),
                 fp4_sf_layout_name(j->layout), fp4_sf_layout_name(j->layout_b),
                 fp4_backend_name(j->backend));
    else
        snprintf(buf, len, "%s rows=%lld k=%lld ld=%lld %s %s %s", kinds[j->kind],
                 (long long)j->rows, (long long)j->k, (long long)j->ld, fp4_dtype_name(j->x_dtype),
                 fp4_sf_layout_name(j->layout),
                 j->kind == TW_QUANT ? fp4_quant_recipe_name(j->recipe) : "");
}

/* ---- the arena ---------------------------------------------------------------------------- */

fp4_status tw_arena_alloc(fp4_ctx *ctx, const tw_limits *lim, tw_arena *a) {
    memset(a, 0, sizeof *a);
    a->ctx = ctx;
    a->lim = *lim;
    const int64_t rows = lim->max_rows, n = lim->max_n, k = lim->max_k, ld = k + 16;
    const int64_t big = rows > n ? rows : n;
    a->in_bytes = rows * ld * 4;
    a->q_bytes = rows * k / 2;
    a->sf_bytes = fp4_sf_bytes(big, k, FP4_SF_SWIZZLED_128x4);
    a->out_bytes = rows * (ld > n + 3 ? ld : n + 3) * 4;
    a->a_bytes = rows * k * 2;
    a->b_bytes = n * k / 2;
    fp4_status st;
#define TW_ALLOC(ptr, bytes)                                                \
    if ((st = fp4_malloc(ctx, (void **)&a->ptr, (bytes))) != FP4_OK) goto fail
    TW_ALLOC(in, a->in_bytes);
    TW_ALLOC(q, a->q_bytes);
    TW_ALLOC(sf, a->sf_bytes);
    TW_ALLOC(out, a->out_bytes);
    TW_ALLOC(a, a->a_bytes);
    TW_ALLOC(a_sf, a->sf_bytes);
    TW_ALLOC(b, a->b_bytes);
    TW_ALLOC(b_sf, a->sf_bytes);
    TW_ALLOC(gs, (int64_t)sizeof(float));
#undef TW_ALLOC
    return FP4_OK;
fail:
    tw_arena_free(a);
    return st;
}

void tw_arena_free(tw_arena *a) {
    if (!a->ctx) return;
    void *ptrs[] = {a->in, a->q, a->sf, a->out, a->a, a->a_sf, a->b, a->b_sf, a->gs};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) (void)fp4_free(a->ctx, ptrs[i]);
    memset(a, 0, sizeof *a);
}

/* ---- running a job ------------------------------------------------------------------------ */

static int64_t dtype_bytes(fp4_dtype dt) { return fp4_dtype_size(dt); }

/* Host input: x[rows, ld] of dtype from normal values (the padding columns too). */
static void fill_floats(tu_rng *r, void *host, fp4_dtype dt, int64_t count, float scale) {
    for (int64_t i = 0; i < count; i++) {
        const float v = tu_rng_normal(r) * scale;
        if (dt == FP4_DTYPE_F32)
            ((float *)host)[i] = v;
        else if (dt == FP4_DTYPE_F16)
            ((uint16_t *)host)[i] = fp4_f32_to_f16(v);
        else
            ((uint16_t *)host)[i] = fp4_f32_to_bf16(v);
    }
}

/* A GEMM job's host inputs, in this order from the job's data seed: A (E2M1 bytes or
 * BF16/F16 values), A's scales (E2M1 only), B, B's scales. */
typedef struct gemm_host {
    uint8_t *a, *a_sf, *b, *b_sf;
    int64_t a_bytes, a_sf_bytes, b_bytes, b_sf_bytes, d_bytes;
} gemm_host;

static int gemm_host_make(const tw_job *j, gemm_host *g) {
    const int64_t m = j->rows, n = j->n, k = j->k;
    const int e2m1 = j->x_dtype == FP4_DTYPE_E2M1;
    memset(g, 0, sizeof *g);
    g->a_bytes = e2m1 ? m * k / 2 : m * k * 2;
    g->a_sf_bytes = e2m1 ? fp4_sf_bytes(m, k, j->layout) : 0;
    g->b_bytes = n * k / 2;
    g->b_sf_bytes = fp4_sf_bytes(n, k, j->layout_b);
    g->d_bytes = m * j->ld * fp4_dtype_size(j->d_dtype);
    g->a = (uint8_t *)malloc((size_t)g->a_bytes);
    g->a_sf = (uint8_t *)malloc((size_t)(g->a_sf_bytes ? g->a_sf_bytes : 1));
    g->b = (uint8_t *)malloc((size_t)g->b_bytes);
    g->b_sf = (uint8_t *)malloc((size_t)g->b_sf_bytes);
    if (!g->a || !g->a_sf || !g->b || !g->b_sf) return 0;
    tu_rng r;
    tu_rng_seed(&r, j->data_seed);
    if (e2m1) {
        tu_fill_bytes(&r, g->a, g->a_bytes);
        tu_fill_scales(&r, g->a_sf, g->a_sf_bytes, -4, 2);
    } else {
        fill_floats(&r, g->a, j->x_dtype, m * k, 1.0f);
    }
    tu_fill_bytes(&r, g->b, g->b_bytes);
    tu_fill_scales(&r, g->b_sf, g->b_sf_bytes, -4, 2);
    return 1;
}

static void gemm_host_free(gemm_host *g) {
    free(g->a);
    free(g->a_sf);
    free(g->b);
    free(g->b_sf);
}

/* The descriptor of a GEMM job over the given buffers. */
static void gemm_desc(const tw_job *j, void *a, void *a_sf, void *b, void *b_sf, void *d,
                      fp4_gemm_desc *desc) {
    fp4_gemm_desc_init(desc);
    desc->m = j->rows;
    desc->n = j->n;
    desc->k = j->k;
    desc->a_dtype = j->x_dtype;
    desc->a = a;
    desc->a_sf = j->x_dtype == FP4_DTYPE_E2M1 ? a_sf : NULL;
    desc->a_sf_layout = j->layout;
    desc->b = b;
    desc->b_sf = b_sf;
    desc->b_sf_layout = j->layout_b;
    desc->d_dtype = j->d_dtype;
    desc->d = d;
    desc->ldd = j->ld;
    desc->alpha = j->scale;
    desc->backend = j->backend;
}

#define TW_TRY(what, call)                                                                \
    do {                                                                                  \
        st = (call);                                                                      \
        if (st != FP4_OK) {                                                               \
            snprintf(err, len, "%s: %s: %s", (what), fp4_status_name(st),                 \
                     fp4_last_error(ctx));                                                \
            goto done;                                                                    \
        }                                                                                 \
    } while (0)

fp4_status tw_job_run(tw_arena *ar, const tw_job *j, struct CUstream_st *stream, uint64_t *hash,
                      char *err, size_t len) {
    fp4_ctx *ctx = ar->ctx;
    fp4_status st = FP4_OK;
    tu_rng r;
    tu_rng_seed(&r, j->data_seed);
    uint64_t h = TW_HASH_INIT;
    /* one host scratch for inputs and outputs: the largest buffer of the arena */
    int64_t host_bytes = ar->in_bytes;
    if (ar->out_bytes > host_bytes) host_bytes = ar->out_bytes;
    if (ar->a_bytes > host_bytes) host_bytes = ar->a_bytes;
    if (ar->sf_bytes > host_bytes) host_bytes = ar->sf_bytes;
    if (ar->b_bytes > host_bytes) host_bytes = ar->b_bytes;
    uint8_t *host = (uint8_t *)malloc((size_t)host_bytes);
    if (!host) {
        snprintf(err, len, "out of host memory");
        return FP4_ERR_OUT_OF_MEMORY;
    }

    if (j->kind == TW_QUANT) {
        const int64_t in_bytes = j->rows * j->ld * dtype_bytes(j->x_dtype);
        const int64_t q_bytes = j->rows * j->k / 2;
        const int64_t sf_bytes = fp4_sf_bytes(j->rows, j->k, j->layout);
        fill_floats(&r, host, j->x_dtype, j->rows * j->ld, 1.0f + 4.0f * (float)tu_rng_uniform(&r));
        TW_TRY("upload input", fp4_upload(ctx, ar->in, host, in_bytes));
        TW_TRY("poison q", fp4_memset(ctx, ar->q, 0xA5, q_bytes));
        TW_TRY("poison sf", fp4_memset(ctx, ar->sf, 0xA5, sf_bytes));
        fp4_quant_desc d;
        fp4_quant_desc_init(&d);
        d.rows = j->rows;
        d.k = j->k;
        d.in_dtype = j->x_dtype;
        d.in = ar->in;
        d.ld_in = j->ld;
        d.out_q = ar->q;
        d.out_sf = ar->sf;
        d.sf_layout = j->layout;
        d.recipe = j->recipe;
        d.stream = stream;
        if (j->recipe == FP4_QUANT_RECIPE_FLASHINFER) {
            TW_TRY("fp4_global_scale", fp4_global_scale(ctx, j->rows, j->k, j->x_dtype, ar->in,
                                                        j->ld, ar->gs, stream));
            d.global_scale_ptr = ar->gs;
        } else {
            d.global_scale = j->scale;
        }
        TW_TRY("fp4_quantize", fp4_quantize(ctx, &d));
        TW_TRY("fp4_synchronize", fp4_synchronize(ctx, stream));
        TW_TRY("download q", fp4_download(ctx, host, ar->q, q_bytes));
        h = tw_hash(h, host, q_bytes);
        TW_TRY("download sf", fp4_download(ctx, host, ar->sf, sf_bytes));
        h = tw_hash(h, host, sf_bytes);
        if (j->recipe == FP4_QUANT_RECIPE_FLASHINFER) {
            TW_TRY("download gs", fp4_download(ctx, host, ar->gs, 4));
            h = tw_hash(h, host, 4);
        }
    } else if (j->kind == TW_DEQUANT) {
        const int64_t q_bytes = j->rows * j->k / 2;
        const int64_t sf_bytes = fp4_sf_bytes(j->rows, j->k, j->layout);
        const int64_t out_bytes = j->rows * j->ld * dtype_bytes(j->x_dtype);
        tu_fill_bytes(&r, host, q_bytes);
        TW_TRY("upload q", fp4_upload(ctx, ar->q, host, q_bytes));
        tu_fill_scales(&r, host, sf_bytes, -6, 4);
        TW_TRY("upload sf", fp4_upload(ctx, ar->sf, host, sf_bytes));
        TW_TRY("poison out", fp4_memset(ctx, ar->out, 0xFF, out_bytes));
        fp4_dequant_desc d;
        fp4_dequant_desc_init(&d);
        d.rows = j->rows;
        d.k = j->k;
        d.q = ar->q;
        d.sf = ar->sf;
        d.sf_layout = j->layout;
        d.global_scale = j->scale;
        d.out_dtype = j->x_dtype;
        d.out = ar->out;
        d.ld_out = j->ld;
        d.stream = stream;
        TW_TRY("fp4_dequantize", fp4_dequantize(ctx, &d));
        TW_TRY("fp4_synchronize", fp4_synchronize(ctx, stream));
        TW_TRY("download out", fp4_download(ctx, host, ar->out, out_bytes));
        h = tw_hash(h, host, out_bytes);
    } else {
        gemm_host gh;
        if (!gemm_host_make(j, &gh)) {
            gemm_host_free(&gh);
            snprintf(err, len, "out of host memory");
            st = FP4_ERR_OUT_OF_MEMORY;
            goto done;
        }
        fp4_gemm_desc d;
        gemm_desc(j, ar->a, ar->a_sf, ar->b, ar->b_sf, ar->out, &d);
        d.stream = stream;
        st = fp4_upload(ctx, ar->a, gh.a, gh.a_bytes);
        if (st == FP4_OK && gh.a_sf_bytes) st = fp4_upload(ctx, ar->a_sf, gh.a_sf, gh.a_sf_bytes);
        if (st == FP4_OK) st = fp4_upload(ctx, ar->b, gh.b, gh.b_bytes);
        if (st == FP4_OK) st = fp4_upload(ctx, ar->b_sf, gh.b_sf, gh.b_sf_bytes);
        const int64_t d_bytes = gh.d_bytes;
        gemm_host_free(&gh);
        TW_TRY("upload a, a_sf, b, b_sf", st);
        TW_TRY("poison d", fp4_memset(ctx, ar->out, 0xFF, d_bytes));
        TW_TRY("fp4_gemm", fp4_gemm(ctx, &d));
        TW_TRY("fp4_synchronize", fp4_synchronize(ctx, stream));
        TW_TRY("download d", fp4_download(ctx, host, ar->out, d_bytes));
        h = tw_hash(h, host, d_bytes);
    }
    *hash = h;
done:
    free(host);
    return st;
}

/* ---- GEMMs in buffers of their own ------------------------------------------------------- */

fp4_status tw_gemm_prepare(fp4_ctx *ctx, const tw_job *j, tw_gemm *g, char *err, size_t len) {
    memset(g, 0, sizeof *g);
    g->ctx = ctx;
    gemm_host gh;
    fp4_status st = FP4_OK;
    if (!gemm_host_make(j, &gh)) {
        gemm_host_free(&gh);
        snprintf(err, len, "out of host memory");
        return FP4_ERR_OUT_OF_MEMORY;
    }
    g->d_bytes = gh.d_bytes;
    TW_TRY("fp4_malloc a", fp4_malloc(ctx, &g->a, gh.a_bytes));
    if (gh.a_sf_bytes) TW_TRY("fp4_malloc a_sf", fp4_malloc(ctx, &g->a_sf, gh.a_sf_bytes));
    TW_TRY("fp4_malloc b", fp4_malloc(ctx, &g->b, gh.b_bytes));
    TW_TRY("fp4_malloc b_sf", fp4_malloc(ctx, &g->b_sf, gh.b_sf_bytes));
    TW_TRY("fp4_malloc d", fp4_malloc(ctx, &g->d, gh.d_bytes));
    TW_TRY("upload a", fp4_upload(ctx, g->a, gh.a, gh.a_bytes));
    if (gh.a_sf_bytes) TW_TRY("upload a_sf", fp4_upload(ctx, g->a_sf, gh.a_sf, gh.a_sf_bytes));
    TW_TRY("upload b", fp4_upload(ctx, g->b, gh.b, gh.b_bytes));
    TW_TRY("upload b_sf", fp4_upload(ctx, g->b_sf, gh.b_sf, gh.b_sf_bytes));
    TW_TRY("poison d", fp4_memset(ctx, g->d, 0xFF, gh.d_bytes));
    gemm_desc(j, g->a, g->a_sf, g->b, g->b_sf, g->d, &g->desc);
done:
    gemm_host_free(&gh);
    if (st != FP4_OK) tw_gemm_release(g);
    return st;
}

void tw_gemm_release(tw_gemm *g) {
    if (!g->ctx) return;
    void *ptrs[] = {g->a, g->a_sf, g->b, g->b_sf, g->d};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) (void)fp4_free(g->ctx, ptrs[i]);
    memset(g, 0, sizeof *g);
}

fp4_status tw_gemm_hash(tw_gemm *g, uint64_t *hash, char *err, size_t len) {
    fp4_ctx *ctx = g->ctx;
    fp4_status st = FP4_OK;
    uint8_t *host = (uint8_t *)malloc((size_t)g->d_bytes);
    if (!host) {
        snprintf(err, len, "out of host memory");
        return FP4_ERR_OUT_OF_MEMORY;
    }
    TW_TRY("download d", fp4_download(ctx, host, g->d, g->d_bytes));
    *hash = tw_hash(TW_HASH_INIT, host, g->d_bytes);
done:
    free(host);
    return st;
}

/* ---- create / run / destroy cycles ------------------------------------------------------------ */

int tw_cycle(int device, const tw_limits *lim, const tw_job *job, uint64_t *want, char *err,
             size_t len) {
    fp4_ctx *ctx = NULL;
    tw_arena arena;
    memset(&arena, 0, sizeof arena);
    uint64_t h = 0;
    if (fp4_create(&ctx, device) != FP4_OK) {
        snprintf(err, len, "fp4_create: %s", fp4_last_error(NULL));
        return 0;
    }
    int ok = tw_arena_alloc(ctx, lim, &arena) == FP4_OK;
    if (!ok) snprintf(err, len, "tw_arena_alloc: %s", fp4_last_error(ctx));
    if (ok && tw_job_run(&arena, job, NULL, &h, err, len) != FP4_OK) ok = 0;
    if (ok && *want == 0) *want = h;
    if (ok && h != *want) {
        snprintf(err, len, "hash %016llx, expected %016llx", (unsigned long long)h,
                 (unsigned long long)*want);
        ok = 0;
    }
    tw_arena_free(&arena);
    fp4_destroy(ctx);
    return ok;
}

typedef struct tw_cycler {
    int device;
    const tw_limits *lim;
    const tw_job *job;
    uint64_t want;
    int cycles, failures;
    char err[700];
} tw_cycler;

static void *tw_cycler_main(void *arg) {
    tw_cycler *c = (tw_cycler *)arg;
    char err[700];
    for (int i = 0; i < c->cycles; i++)
        if (!tw_cycle(c->device, c->lim, c->job, &c->want, err, sizeof err) && c->failures++ == 0)
            snprintf(c->err, sizeof c->err, "%s", err);
    return NULL;
}

int tw_cycle_threads(int device, const tw_limits *lim, const tw_job *job, uint64_t want,
                     int threads, int cycles) {
    tw_cycler *cyclers = (tw_cycler *)calloc((size_t)threads, sizeof *cyclers);
    pthread_t *ids = (pthread_t *)calloc((size_t)threads, sizeof *ids);
    if (!cyclers || !ids) {
        printf("  tw_cycle_threads: out of host memory\n");
        free(cyclers);
        free(ids);
        return threads * cycles;
    }
    for (int t = 0; t < threads; t++) {
        cyclers[t].device = device;
        cyclers[t].lim = lim;
        cyclers[t].job = job;
        cyclers[t].want = want;
        cyclers[t].cycles = cycles;
        pthread_create(&ids[t], NULL, tw_cycler_main, &cyclers[t]);
    }
    int failures = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(ids[t], NULL);
        failures += cyclers[t].failures;
        if (cyclers[t].err[0]) printf("  thread %d: %s\n", t, cyclers[t].err);
    }
    free(cyclers);
    free(ids);
    return failures;
}

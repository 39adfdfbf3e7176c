/* operands.c - the random operands fp4_tune times tactics on (autotune.c): one input set
 * made on the host, uploaded once, and copied on the device into the others; the buffers kept
 * from problem to problem of one fp4_tune call. docs/tuning.md "What tuning does". */
#define _POSIX_C_SOURCE 200809L
#include "backend.h"
#include "format.h"
#include "tune/tune.h"

#include <stdlib.h>
#include <string.h>

#define MAX_SET_BYTES_TOTAL ((double)(2LL << 30)) /* input sets of one problem, at most */

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Random bytes, eight per draw (the operands of a large problem are hundreds of MB). */
static void fill_bytes(uint8_t *p, int64_t n, uint64_t *s) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const uint64_t v = splitmix(s);
        memcpy(p + i, &v, 8);
    }
    for (; i < n; i++) p[i] = (uint8_t)splitmix(s);
}

/* E4M3 scales 2^-2 .. 2^2 with random mantissas (exponent field 5..9), so that D stays far
 * from overflow at any K; four per draw. */
static void fill_scales(uint8_t *p, int64_t n, uint64_t *s) {
    uint64_t v = 0;
    for (int64_t i = 0; i < n; i++) {
        if ((i & 3) == 0) v = splitmix(s);
        const unsigned bits = (unsigned)(v >> (16 * (i & 3)));
        p[i] = (uint8_t)((5 + (bits & 0xFFF) % 5) << 3 | (bits >> 12 & 7));
    }
}

static int64_t align256(int64_t x) { return (x + 255) / 256 * 256; }

void fp4_tune_point_at_set(fp4_gemm_desc *d, const fp4_tune_operands *o, int set) {
    char *base = (char *)o->base + (int64_t)set * o->set_stride;
    d->a = base + o->a_off;
    d->a_sf = d->a_dtype == FP4_DTYPE_E2M1 ? base + o->asf_off : NULL;
    d->b = base + o->b_off;
    d->b_sf = base + o->bsf_off;
    d->d = o->d;
}

void fp4_tune_free_buffers(fp4_ctx *ctx, fp4_tune_buffers *b) {
    char keep[sizeof ctx->last_error];
    memcpy(keep, ctx->last_error, sizeof keep); /* freeing must not hide the failure */
    if (b->pool) fp4_free(ctx, b->pool);
    if (b->dbuf) fp4_free(ctx, b->dbuf);
    memcpy(ctx->last_error, keep, sizeof keep);
    free(b->host);
    free(b->host_b);
    memset(b, 0, sizeof *b);
}

/* *buf holds at least `bytes` of the context's memory: a larger one replaces it, with room
 * to grow (twice the old size, up to the input sets' limit: a preset's M list grows). */
static fp4_status grow_device(fp4_ctx *ctx, void **buf, int64_t *have, int64_t bytes) {
    if (*have >= bytes) return FP4_OK;
    int64_t want = 2 * *have < (int64_t)MAX_SET_BYTES_TOTAL ? 2 * *have
                                                             : (int64_t)MAX_SET_BYTES_TOTAL;
    if (want < bytes) want = bytes;
    if (*buf) fp4_free(ctx, *buf);
    *buf = NULL;
    *have = 0;
    fp4_status st = fp4_malloc(ctx, buf, want);
    if (st == FP4_ERR_OUT_OF_MEMORY && want > bytes) { /* no room to spare: just what is asked */
        ctx->last_error[0] = 0;
        st = fp4_malloc(ctx, buf, want = bytes);
    }
    if (st == FP4_OK) *have = want;
    return st;
}

/* *buf holds at least `bytes` of host memory (the old contents are lost when it grows). */
static fp4_status grow_host(fp4_ctx *ctx, uint8_t **buf, int64_t *have, int64_t bytes) {
    if (*have >= bytes) return FP4_OK;
    free(*buf);
    *have = 0;
    if (!(*buf = malloc((size_t)bytes)))
        return FP4_FAIL(ctx, FP4_ERR_OUT_OF_MEMORY, "fp4_tune: %lld bytes of host memory",
                        (long long)bytes);
    *have = bytes;
    return FP4_OK;
}

/* Seeded random operands for d (prepared): one set made on the host and uploaded, the
 * others device-to-device copies of it (the same bytes at other addresses: cold in L2 all
 * the same, and far faster than uploads). B (the weight) is drawn from the seed and its shape
 * only, so the problems of one weight (a preset's M list) share the host copy made for the
 * first; A from the seed and the problem's index. */
fp4_status fp4_tune_make_operands(fp4_ctx *ctx, fp4_tune_buffers *r, const fp4_gemm_desc *d,
                                  uint64_t seed, int problem, fp4_tune_operands *o) {
    memset(o, 0, sizeof *o);
    const int w4a4 = d->a_dtype == FP4_DTYPE_E2M1;
    const int64_t a_bytes = w4a4 ? d->m * d->k / 2 : d->m * d->k * 2;
    const int64_t asf_bytes = w4a4 ? fp4_sf_bytes(d->m, d->k, d->a_sf_layout) : 0;
    const int64_t b_bytes = d->n * d->k / 2;
    const int64_t bsf_bytes = fp4_sf_bytes(d->n, d->k, d->b_sf_layout);
    o->a_off = 0;
    o->asf_off = align256(a_bytes);
    o->b_off = o->asf_off + align256(asf_bytes);
    o->bsf_off = o->b_off + align256(b_bytes);
    o->set_stride = o->bsf_off + align256(bsf_bytes);
    o->set_bytes = (double)(a_bytes + asf_bytes + b_bytes + bsf_bytes);
    o->d_bytes = d->m * d->ldd * fp4_dtype_size(d->d_dtype);
    int sets = fp4_measure_sets(ctx, o->set_bytes);
    while (sets > 1 && (double)sets * (double)o->set_stride > MAX_SET_BYTES_TOTAL) sets--;
    o->sets = sets;

    /* A and its scales */
    fp4_status st = grow_host(ctx, &r->host, &r->host_bytes, o->b_off);
    if (st != FP4_OK) return st;
    uint8_t *host = r->host;
    memset(host, 0, (size_t)o->b_off);
    uint64_t s = seed ^ (uint64_t)problem * 0x9E37ull;
    /* E2M1 bytes: any byte is two valid elements */
    if (w4a4) {
        fill_bytes(host + o->a_off, a_bytes, &s);
        fill_scales(host + o->asf_off, asf_bytes, &s);
    } else {
        for (int64_t i = 0; i < d->m * d->k; i++) {
            const float x = (float)((double)(splitmix(&s) >> 11) * 0x1p-53 * 2.0 - 1.0);
            fp4_store_from_f32(host + o->a_off, d->a_dtype, i, x);
        }
    }
    /* B and its scales, unless the last problem's weight was this one */
    const int64_t b_part = o->set_stride - o->b_off;
    if (!r->host_b || r->b_n != d->n || r->b_k != d->k || r->b_layout != d->b_sf_layout) {
        r->b_n = 0;
        if ((st = grow_host(ctx, &r->host_b, &r->host_b_bytes, b_part)) != FP4_OK) return st;
        memset(r->host_b, 0, (size_t)b_part);
        uint64_t sb = seed ^ 0xB5ull ^ (uint64_t)d->n * 0x9E3779B97F4A7C15ull ^
                      (uint64_t)d->k * 0xBF58476D1CE4E5B9ull;
        fill_bytes(r->host_b, b_bytes, &sb);
        fill_scales(r->host_b + (o->bsf_off - o->b_off), bsf_bytes, &sb);
        r->b_n = d->n;
        r->b_k = d->k;
        r->b_layout = d->b_sf_layout;
    }

    st = grow_device(ctx, &r->pool, &r->pool_bytes, (int64_t)sets * o->set_stride);
    if (st == FP4_OK) st = grow_device(ctx, &r->dbuf, &r->dbuf_bytes, o->d_bytes);
    if (st != FP4_OK) return st;
    o->base = r->pool;
    o->d = r->dbuf;
    st = fp4_upload(ctx, o->base, host, o->b_off);
    if (st == FP4_OK) st = fp4_upload(ctx, (char *)o->base + o->b_off, r->host_b, b_part);
    /* sets [0, have) copied to [have, 2 have): log2(sets) copies */
    for (int have = 1; have < sets && st == FP4_OK; have *= 2) {
        const int n = have < sets - have ? have : sets - have;
        st = fp4_tune_copy(ctx, (char *)o->base + (int64_t)have * o->set_stride, o->base,
                           (int64_t)n * o->set_stride);
    }
    return st;
}

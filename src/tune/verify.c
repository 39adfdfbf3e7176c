/*
 * verify.c - fp4_gemm_verify, fp4_verify_samples, fp4_count_nonfinite: the project's one
 * correctness check of a GEMM's D (docs/PERF.md "Correct before timed").
 *
 * The reference is computed here, in double, from the descriptor's own operands decoded with
 * src/format.h (the definitions of docs/format.md), not by any backend: it is independent of
 * cpu_ref's code path. On a GPU context only what the samples need is downloaded.
 */
#include "format.h"
#include "internal.h"
#include "tune.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_SAMPLES 68 /* 4 corners + 64 random elements */

static double unit_roundoff(fp4_dtype t) {
    return t == FP4_DTYPE_F32 ? ldexp(1.0, -24) : t == FP4_DTYPE_F16 ? ldexp(1.0, -11)
                                                                      : ldexp(1.0, -8);
}

static int is_out_dtype(fp4_dtype t) {
    return t == FP4_DTYPE_F32 || t == FP4_DTYPE_F16 || t == FP4_DTYPE_BF16;
}

/* Element i of an F32/F16/BF16 array, as double. */
static double load_element(const void *base, fp4_dtype t, int64_t i) {
    if (t == FP4_DTYPE_F32) {
        float f;
        memcpy(&f, (const char *)base + 4 * i, 4);
        return (double)f;
    }
    uint16_t h;
    memcpy(&h, (const char *)base + 2 * i, 2);
    return (double)(t == FP4_DTYPE_F16 ? fp4_f16_to_f32(h) : fp4_bf16_to_f32(h));
}

void fp4_verify_result_init(fp4_verify_result *result) {
    if (!result) return;
    memset(result, 0, sizeof *result);
    result->struct_size = sizeof *result;
}

/* fp4_verify_result's first release (0.1.x) ends at message */
#define VERIFY_RESULT_MIN_SIZE FP4_STRUCT_END(fp4_verify_result, message)

/* fp4_verify_samples into a result of this library's size */
static fp4_status verify_samples_full(int64_t count, const double *d, const double *ref,
                                      const double *abs_sum, const int64_t *m, const int64_t *n,
                                      int64_t k, fp4_dtype d_dtype, double acc, double l2,
                                      fp4_verify_result *result) {
    const char *fn = "fp4_verify_samples";
    if (!result || !d || !ref || !abs_sum || count < 1 || k < 1 || !is_out_dtype(d_dtype) ||
        !(acc >= 0) || !(l2 >= 0))
        return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT,
                        "%s: needs count >= 1, k >= 1, d, ref, abs_sum and result, d_dtype f32, "
                        "f16 or bf16, acc >= 0 and l2 >= 0", fn);
    if (acc == 0) acc = 2.0 * (double)k * ldexp(1.0, -24);
    if (l2 == 0) l2 = 1e-3;
    memset(result, 0, sizeof *result);
    result->struct_size = sizeof *result;

    const double u = unit_roundoff(d_dtype);
    double sum_ref2 = 0.0, sum_err2 = 0.0;
    for (int64_t i = 0; i < count; i++) sum_ref2 += ref[i] * ref[i];
    const double rms = sqrt(sum_ref2 / (double)count);
    int64_t worst = 0;
    for (int64_t i = 0; i < count; i++) {
        const double err = fabs(d[i] - ref[i]);
        const double tol = 2.0 * u * (fabs(ref[i]) + rms) + acc * abs_sum[i] + 1e-30;
        const double ratio = isfinite(err) ? err / tol : INFINITY;
        if (!(err <= tol)) result->bad_samples++;
        if (!(ratio <= result->worst_ratio)) {
            result->worst_ratio = ratio;
            result->worst_tol = tol;
            worst = i;
        }
        sum_err2 += isfinite(err) ? err * err : INFINITY;
    }
    result->samples = count;
    result->worst_m = m ? m[worst] : -1;
    result->worst_n = n ? n[worst] : -1;
    result->worst_d = d[worst];
    result->worst_ref = ref[worst];
    if (result->worst_tol == 0) result->worst_tol = 2.0 * u * (fabs(ref[worst]) + rms) +
                                                    acc * abs_sum[worst] + 1e-30;
    result->rel_l2 = sum_ref2 > 0 ? sqrt(sum_err2 / sum_ref2) : sqrt(sum_err2);
    result->rel_l2_limit = 2.0 * u + l2;
    result->passed = result->bad_samples == 0 && result->rel_l2 <= result->rel_l2_limit;
    if (!result->passed)
        snprintf(result->message, sizeof result->message,
                 "wrong output: %lld of %lld sampled elements off; worst at (m=%lld, n=%lld): "
                 "%.6g, reference %.6g (%.3gx the tolerance); relative L2 error %.3g (limit "
                 "%.3g)", (long long)result->bad_samples, (long long)count,
                 (long long)result->worst_m, (long long)result->worst_n, result->worst_d,
                 result->worst_ref, result->worst_ratio, result->rel_l2, result->rel_l2_limit);
    else
        snprintf(result->message, sizeof result->message,
                 "OK: %lld samples, worst %.3gx the tolerance, relative L2 error %.3g (limit "
                 "%.3g)", (long long)count, result->worst_ratio, result->rel_l2,
                 result->rel_l2_limit);
    return FP4_OK;
}

fp4_status fp4_count_nonfinite(fp4_ctx *ctx, const void *x, fp4_dtype dtype, int64_t rows,
                               int64_t cols, int64_t ld, struct CUstream_st *stream,
                               int64_t *count) {
    const char *fn = "fp4_count_nonfinite";
    if (!ctx) return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "%s: ctx is NULL", fn);
    ctx->last_error[0] = 0;
    if (!x || !count || rows < 1 || cols < 1 || ld < cols || !is_out_dtype(dtype) ||
        rows > INT64_MAX / ld)
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "%s: needs x and count, rows, cols >= 1, "
                        "ld >= cols, dtype f32, f16 or bf16 (rows %lld, cols %lld, ld %lld, "
                        "dtype %s)", fn, (long long)rows, (long long)cols, (long long)ld,
                        fp4_dtype_name(dtype));
    if (fp4_ctx_device(ctx) >= 0) {
#if defined(FP4GEMM_HAVE_CUDA)
        return fp4_tune_cuda_count_nonfinite(ctx, x, dtype, rows, cols, ld, stream, count);
#else
        return FP4_FAIL(ctx, FP4_ERR_NO_DEVICE, "%s: this fp4gemm was built without CUDA", fn);
#endif
    }
    int64_t c = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < cols; j++) c += !isfinite(load_element(x, dtype, r * ld + j));
    *count = c;
    return FP4_OK;
}

/* ---- fp4_gemm_verify --------------------------------------------------------------------- */

/* Bytes of the context's memory at src + offset into host[bytes]. */
static fp4_status fetch(fp4_ctx *ctx, void *host, const void *src, int64_t offset, int64_t bytes) {
    return fp4_download(ctx, host, (const char *)src + offset, bytes);
}

/* splitmix64: the sample positions (the same as the bench drew before this call existed). */
static uint64_t mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Row `row` of an operand as doubles: E2M1 values times their E4M3 scales (the global scale
 * is in alpha), or BF16/F16 elements. `view` is the operand in host memory, or NULL: then
 * the row is downloaded from `base` into raw. sf is the whole scale buffer on the host. */
static fp4_status decode_row(fp4_ctx *ctx, fp4_dtype dtype, const void *base,
                             const uint8_t *view, const uint8_t *sf, fp4_sf_layout layout,
                             int64_t row, int64_t k, uint8_t *raw, double *out) {
    const int64_t row_bytes = dtype == FP4_DTYPE_E2M1 ? k / 2 : k * 2;
    const uint8_t *p = view ? view + row * row_bytes : raw;
    if (!view) {
        const fp4_status st = fetch(ctx, raw, base, row * row_bytes, row_bytes);
        if (st != FP4_OK) return st;
    }
    if (dtype == FP4_DTYPE_E2M1) {
        for (int64_t kb = 0; kb < k / 16; kb++) {
            const double scale = (double)fp4_e4m3_decode(sf[fp4_sf_offset(row, kb, k, layout)]);
            for (int64_t i = kb * 16; i < kb * 16 + 16; i++)
                out[i] = (double)fp4_e2m1_decode(fp4_get_nibble(p, i)) * scale;
        }
    } else {
        for (int64_t i = 0; i < k; i++) out[i] = load_element(p, dtype, i);
    }
    return FP4_OK;
}

/* A buffer of the context's memory in host memory: the buffer itself on a CPU context; on a
 * GPU a downloaded copy (to free: *owned) when `whole`, else NULL (read piece by piece). */
static fp4_status host_view(fp4_ctx *ctx, const void *src, int64_t bytes, int whole,
                            const uint8_t **view, uint8_t **owned) {
    *view = NULL;
    *owned = NULL;
    if (fp4_ctx_device(ctx) < 0) {
        *view = src;
        return FP4_OK;
    }
    if (!whole) return FP4_OK;
    if (!(*owned = malloc((size_t)bytes)))
        return FP4_FAIL(ctx, FP4_ERR_OUT_OF_MEMORY, "fp4_gemm_verify: out of host memory for "
                        "%lld bytes", (long long)bytes);
    *view = *owned;
    return fetch(ctx, *owned, src, 0, bytes);
}

typedef struct verify_work {
    int64_t count;
    int64_t *sm, *sn;
    double *d, *ref, *abs_sum;
    uint8_t *raw, *sfa, *sfb;
    uint8_t *a_copy, *b_copy, *d_copy; /* GPU: whole operands downloaded for many samples */
    double *ra, *rb;
} verify_work;

static void free_work(verify_work *w) {
    free(w->sm);
    free(w->sn);
    free(w->d);
    free(w->ref);
    free(w->abs_sum);
    free(w->raw);
    free(w->sfa);
    free(w->sfb);
    free(w->a_copy);
    free(w->b_copy);
    free(w->d_copy);
    free(w->ra);
    free(w->rb);
}

/* The older (smaller) verify result of a caller gets what fits of a full one. */
fp4_status fp4_verify_samples(int64_t count, const double *d, const double *ref,
                              const double *abs_sum, const int64_t *m, const int64_t *n,
                              int64_t k, fp4_dtype d_dtype, double acc, double l2,
                              fp4_verify_result *result) {
    if (result) {
        const fp4_status bad =
            fp4_out_struct_check(NULL, "fp4_verify_samples", "result", "fp4_verify_result",
                                 result->struct_size, VERIFY_RESULT_MIN_SIZE, sizeof *result);
        if (bad != FP4_OK) return bad;
    }
    fp4_verify_result full;
    fp4_verify_result_init(&full);
    full.struct_size = 0; /* set again when the check writes the result */
    const fp4_status st =
        verify_samples_full(count, d, ref, abs_sum, m, n, k, d_dtype, acc, l2, result ? &full : NULL);
    if (result && full.struct_size) fp4_out_struct_fill(result, &full, sizeof full);
    return st;
}

static fp4_status gemm_verify_full(fp4_ctx *ctx, const fp4_gemm_desc *in, int samples,
                                   uint64_t seed, fp4_verify_result *result) {
    const char *fn = "fp4_gemm_verify";
    if (!ctx) return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "%s: ctx is NULL", fn);
    ctx->last_error[0] = 0;
    if (!result) return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "%s: result is NULL", fn);
    /* the argument check of fp4_gemm; an older, smaller desc upgraded to today's */
    char buf[512];
    fp4_gemm_desc prepared;
    const char *problem = fp4_gemm_desc_prepare(in, &prepared, buf, sizeof buf);
    if (problem) return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "%s: %s", fn, problem);
    const fp4_gemm_desc *desc = &prepared;
    if (samples <= 0) samples = DEFAULT_SAMPLES;

    const int64_t m = desc->m, n = desc->n, k = desc->k;
    const int64_t ldd = desc->ldd ? desc->ldd : n;
    const int64_t esize = fp4_dtype_size(desc->d_dtype);
    const int w4a4 = desc->a_dtype == FP4_DTYPE_E2M1;
    verify_work w;
    memset(&w, 0, sizeof w);
    fp4_status st = FP4_OK;

    /* 1. wait for the GEMM, then scan all of D for NaN/Inf */
    if ((st = fp4_synchronize(ctx, desc->stream)) != FP4_OK) return st;
    int64_t nonfinite = 0;
    if ((st = fp4_count_nonfinite(ctx, desc->d, desc->d_dtype, m, n, ldd, desc->stream,
                                  &nonfinite)) != FP4_OK)
        return st;

    /* 2. the samples: every element of a small D, else 4 corners and random ones */
    const int all = (double)samples >= (double)m * (double)n;
    w.count = all ? m * n : samples;
    const size_t cnt = (size_t)w.count;
    w.sm = malloc(cnt * sizeof *w.sm);
    w.sn = malloc(cnt * sizeof *w.sn);
    w.d = malloc(cnt * sizeof *w.d);
    w.ref = malloc(cnt * sizeof *w.ref);
    w.abs_sum = malloc(cnt * sizeof *w.abs_sum);
    w.raw = malloc((size_t)k * 2);
    w.ra = malloc((size_t)k * sizeof *w.ra);
    w.rb = malloc((size_t)k * sizeof *w.rb);
    const int64_t sfa_bytes = w4a4 ? fp4_sf_bytes(m, k, desc->a_sf_layout) : 0;
    const int64_t sfb_bytes = fp4_sf_bytes(n, k, desc->b_sf_layout);
    if (w4a4) w.sfa = malloc((size_t)sfa_bytes);
    w.sfb = malloc((size_t)sfb_bytes);
    if (!w.sm || !w.sn || !w.d || !w.ref || !w.abs_sum || !w.raw || !w.ra || !w.rb ||
        (w4a4 && !w.sfa) || !w.sfb) {
        free_work(&w);
        return FP4_FAIL(ctx, FP4_ERR_OUT_OF_MEMORY, "%s: out of host memory for %lld samples "
                        "of K = %lld", fn, (long long)w.count, (long long)k);
    }
    if (all) {
        for (int64_t i = 0; i < w.count; i++) {
            w.sm[i] = i / n;
            w.sn[i] = i % n;
        }
    } else {
        const int64_t corners[4][2] = {{0, 0}, {0, n - 1}, {m - 1, 0}, {m - 1, n - 1}};
        uint64_t state = seed;
        for (int64_t i = 0; i < w.count; i++) {
            if (i < 4) {
                w.sm[i] = corners[i][0];
                w.sn[i] = corners[i][1];
                continue;
            }
            state = mix64(state);
            w.sm[i] = (int64_t)(state % (uint64_t)m);
            state = mix64(state);
            w.sn[i] = (int64_t)(state % (uint64_t)n);
        }
    }

    /* 3. alpha, the scales, the sampled D. Many samples on a GPU: A, B and D downloaded
     * whole (up to 1 GiB), not row by row */
    const int64_t a_bytes = w4a4 ? m * (k / 2) : m * k * 2, b_bytes = n * (k / 2);
    const int64_t d_bytes = ((m - 1) * ldd + n) * esize;
    const int whole = w.count > 256 && (double)a_bytes + (double)b_bytes + (double)d_bytes <=
                                           (double)(1LL << 30);
    const uint8_t *a_view = NULL, *b_view = NULL, *d_view = NULL;
    float alpha = desc->alpha;
    if (desc->alpha_ptr) st = fetch(ctx, &alpha, desc->alpha_ptr, 0, 4);
    if (st == FP4_OK && w4a4) st = fetch(ctx, w.sfa, desc->a_sf, 0, sfa_bytes);
    if (st == FP4_OK) st = fetch(ctx, w.sfb, desc->b_sf, 0, sfb_bytes);
    if (st == FP4_OK) st = host_view(ctx, desc->a, a_bytes, whole, &a_view, &w.a_copy);
    if (st == FP4_OK) st = host_view(ctx, desc->b, b_bytes, whole, &b_view, &w.b_copy);
    if (st == FP4_OK) st = host_view(ctx, desc->d, d_bytes, whole, &d_view, &w.d_copy);
    uint8_t one[4];
    for (int64_t i = 0; i < w.count && st == FP4_OK; i++) {
        const int64_t at = w.sm[i] * ldd + w.sn[i];
        if (d_view) {
            w.d[i] = load_element(d_view, desc->d_dtype, at);
        } else {
            st = fetch(ctx, one, desc->d, at * esize, esize);
            w.d[i] = load_element(one, desc->d_dtype, 0);
        }
    }

    /* 4. the reference in double: ref = alpha sum_k a b, abs_sum = |alpha| sum_k |a b|. For
     * every element: all of A decoded once (up to 256 MiB), then B row by row */
    double *a_all = all && (double)m * (double)k * 8.0 <= (double)(256 << 20)
                        ? malloc((size_t)(m * k) * sizeof(double))
                        : NULL;
    for (int64_t mi = 0; a_all && mi < m && st == FP4_OK; mi++)
        st = decode_row(ctx, desc->a_dtype, desc->a, a_view, w.sfa, desc->a_sf_layout, mi, k,
                        w.raw, a_all + mi * k);
    int64_t have_m = -1, have_n = -1;
    for (int64_t s_i = 0; s_i < w.count && st == FP4_OK; s_i++) {
        /* with a_all: B's rows outer, A's inner; else in sample order */
        const int64_t i = a_all ? (s_i % m) * n + s_i / m : s_i;
        const double *ra = a_all ? a_all + w.sm[i] * k : w.ra;
        if (!a_all && w.sm[i] != have_m) {
            st = decode_row(ctx, desc->a_dtype, desc->a, a_view, w.sfa, desc->a_sf_layout,
                            w.sm[i], k, w.raw, w.ra);
            have_m = w.sm[i];
        }
        if (st == FP4_OK && w.sn[i] != have_n) {
            st = decode_row(ctx, FP4_DTYPE_E2M1, desc->b, b_view, w.sfb, desc->b_sf_layout,
                            w.sn[i], k, w.raw, w.rb);
            have_n = w.sn[i];
        }
        double sum = 0.0, abs_sum = 0.0;
        for (int64_t j = 0; j < k && st == FP4_OK; j++) {
            const double p = ra[j] * w.rb[j];
            sum += p;
            abs_sum += fabs(p);
        }
        w.ref[i] = (double)alpha * sum;
        w.abs_sum[i] = fabs((double)alpha) * abs_sum;
    }
    free(a_all);
    if (st == FP4_OK) {
        st = verify_samples_full(w.count, w.d, w.ref, w.abs_sum, w.sm, w.sn, k, desc->d_dtype, 0,
                                 0, result);
        if (st != FP4_OK) st = FP4_FAIL(ctx, FP4_ERR_INTERNAL, "%s: the sample check failed", fn);
    }
    if (st == FP4_OK && nonfinite) {
        result->nonfinite = nonfinite;
        result->passed = 0;
        snprintf(result->message, sizeof result->message,
                 "wrong output: %lld of %lld elements are NaN/Inf: unwritten (D was poisoned "
                 "with NaN before the run) or overflowed", (long long)nonfinite,
                 (long long)(m * n));
    }
    free_work(&w);
    return st;
}

fp4_status fp4_gemm_verify(fp4_ctx *ctx, const fp4_gemm_desc *in, int samples, uint64_t seed,
                           fp4_verify_result *result) {
    const char *fn = "fp4_gemm_verify";
    if (!ctx) return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "%s: ctx is NULL", fn);
    ctx->last_error[0] = 0;
    if (!result) return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "%s: result is NULL", fn);
    const fp4_status bad = fp4_out_struct_check(ctx, fn, "result", "fp4_verify_result",
                                                result->struct_size, VERIFY_RESULT_MIN_SIZE,
                                                sizeof *result);
    if (bad != FP4_OK) return bad;
    fp4_verify_result full;
    fp4_verify_result_init(&full);
    full.struct_size = 0; /* set again when the sample check writes the result: a failure
                           * before it leaves the caller's result as it was, as before */
    const fp4_status st = gemm_verify_full(ctx, in, samples, seed, &full);
    if (full.struct_size) fp4_out_struct_fill(result, &full, sizeof full);
    return st;
}

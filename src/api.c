/* api.c - the public entry points: validate every argument (so backends see only valid,
 * fully defaulted descriptors), then hand the call to the CPU reference, the CUDA side, or
 * the GEMM backend that src/dispatch.c resolves. */
#include "backend.h"
#include "format.h"
#include "tune/tuning.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define PROBLEM(...) (snprintf(buf, len, __VA_ARGS__), buf)

/* ---- sizes ------------------------------------------------------------------------------ */

static int mul_fits(int64_t a, int64_t b) {
    return a >= 0 && b >= 0 && (b == 0 || a <= INT64_MAX / b);
}

static int k_is_valid(int64_t k) { return k >= 16 && k % 16 == 0; }

int64_t fp4_packed_bytes(int64_t rows, int64_t k) {
    if (rows < 1 || !k_is_valid(k) || !mul_fits(rows, k / 2)) return -1;
    return rows * (k / 2);
}

int64_t fp4_sf_bytes(int64_t rows, int64_t k, fp4_sf_layout layout) {
    if (rows < 1 || !k_is_valid(k) || rows > INT64_MAX - 128) return -1;
    int64_t r = rows, c = k / 16;
    if (layout == FP4_SF_SWIZZLED_128x4) {
        r = fp4_ceil_div(rows, 128) * 128;
        c = fp4_ceil_div(c, 4) * 4;
    } else if (layout != FP4_SF_LINEAR) {
        return -1;
    }
    return mul_fits(r, c) ? r * c : -1;
}

int64_t fp4_sf_offset(int64_t row, int64_t kb, int64_t k, fp4_sf_layout layout) {
    if (row < 0 || kb < 0 || !k_is_valid(k) || kb >= k / 16) return -1;
    if (row > INT64_MAX - 128 || fp4_sf_bytes(row + 1, k, layout) < 0)
        return -1; /* the offset itself would overflow */
    return fp4_sf_offset_at(layout == FP4_SF_SWIZZLED_128x4, row, kb, k);
}

/* ---- descriptor versions ---------------------------------------------------------------- */

/* The size of each descriptor in the first release (0.1.0): its fields up to `stream`, the
 * last of them in all three. Fields added since then follow it (fp4gemm.h). */
#define V1_SIZE(type) (offsetof(type, stream) + sizeof(struct CUstream_st *))

/* Copies a caller's descriptor `in` (struct_size bytes, its first field) over `full`, which
 * holds today's defaults (sizeof `full_size`), so that fields an older caller does not know
 * keep their defaults; then marks it as today's size. struct_size must be the size of the
 * struct in some release: today's or the first's (the only two so far). NULL, or the problem
 * in buf. */
static const char *upgrade_desc(const char *fn, const char *type, const void *in, void *full,
                                size_t full_size, size_t v1_size, char *buf, size_t len) {
    size_t size;
    memcpy(&size, in, sizeof size);
    if (size > full_size)
        return PROBLEM("%s: desc->struct_size = %zu is larger than this library's %s (%zu "
                       "bytes): built against a newer fp4gemm.h than the library it runs with?",
                       fn, size, type, full_size);
    if (size != full_size && size != v1_size)
        return PROBLEM("%s: desc->struct_size = %zu is the size of no release's %s (0.1.0: %zu "
                       "bytes, now %zu): call %s_init",
                       fn, size, type, v1_size, full_size, type);
    memcpy(full, in, size);
    memcpy(full, &full_size, sizeof full_size);
    return NULL;
}

/* ---- argument checks: each returns NULL or the problem, written into buf ----------------- */

static const char *check_rows_k(const char *fn, const char *rows_name, int64_t rows, int64_t k,
                                char *buf, size_t len) {
    if (rows < 1) return PROBLEM("%s: %s = %lld must be >= 1", fn, rows_name, (long long)rows);
    if (k < 16) return PROBLEM("%s: k = %lld must be >= 16", fn, (long long)k);
    if (k % 16) return PROBLEM("%s: k = %lld is not a multiple of 16", fn, (long long)k);
    return NULL;
}

static int is_float_dtype(fp4_dtype t) {
    return t == FP4_DTYPE_F32 || t == FP4_DTYPE_F16 || t == FP4_DTYPE_BF16;
}

static int is_layout(fp4_sf_layout l) { return l == FP4_SF_LINEAR || l == FP4_SF_SWIZZLED_128x4; }

/* A [rows, ld] array of `esize`-byte elements, of which k are used per row: no overflow. */
static const char *check_extent(const char *fn, const char *name, int64_t rows, int64_t ld,
                                int64_t esize, char *buf, size_t len) {
    if (mul_fits(rows, ld) && mul_fits(rows * ld, esize)) return NULL;
    if (buf) /* (always true; tells gcc 12's -Wformat-truncation so) */
        snprintf(buf, len, "%s: %s of %lld rows x %lld elements overflows int64 bytes", fn, name,
                 (long long)rows, (long long)ld);
    return buf;
}

/* A pointer to elements of `esize` bytes must be aligned to esize (C's rule; the GPU faults). */
static const char *check_aligned(const char *fn, const char *name, const void *ptr, int64_t esize,
                                 char *buf, size_t len) {
    if (esize <= 1 || (uintptr_t)ptr % (uintptr_t)esize == 0) return NULL;
    if (buf)
        snprintf(buf, len, "%s: %s = %p is not aligned to its %lld-byte elements", fn, name, ptr,
                 (long long)esize);
    return buf;
}

static const char *check_gs(const char *fn, float gs, const float *gs_ptr, char *buf, size_t len) {
    if (gs_ptr) return NULL; /* read at run time, in context memory */
    if (!(gs > 0.0f) || !isfinite(gs))
        return PROBLEM("%s: global_scale = %g must be a positive finite number", fn, (double)gs);
    return NULL;
}

/* Checks a quant desc already upgraded to today's size (upgrade_desc: a 0.1.0 desc, which
 * lacks `recipe`, gets fp4_quant_desc_init's FLASHINFER). */
static const char *quant_desc_problem(const fp4_quant_desc *d, char *buf, size_t len) {
    const char *fn = "fp4_quantize";
    const char *p;
    if (!d) return PROBLEM("%s: desc is NULL", fn);
    if ((int)d->recipe < 0 || (int)d->recipe >= FP4_QUANT_RECIPE_COUNT)
        return PROBLEM("%s: recipe = %d is not a recipe (flashinfer or modelopt)", fn,
                       (int)d->recipe);
    if ((p = check_rows_k(fn, "rows", d->rows, d->k, buf, len))) return p;
    if (!is_float_dtype(d->in_dtype))
        return PROBLEM("%s: in_dtype = %s (%d) must be f32, f16 or bf16", fn,
                       fp4_dtype_name(d->in_dtype), (int)d->in_dtype);
    if (!is_layout(d->sf_layout))
        return PROBLEM("%s: sf_layout = %d is not a layout", fn, (int)d->sf_layout);
    if (d->ld_in != 0 && d->ld_in < d->k)
        return PROBLEM("%s: ld_in = %lld is less than k = %lld", fn, (long long)d->ld_in,
                       (long long)d->k);
    if (!d->in) return PROBLEM("%s: in is NULL", fn);
    if (!d->out_q) return PROBLEM("%s: out_q is NULL", fn);
    if (!d->out_sf) return PROBLEM("%s: out_sf is NULL", fn);
    if ((p = check_aligned(fn, "in", d->in, fp4_dtype_size(d->in_dtype), buf, len))) return p;
    if ((p = check_aligned(fn, "global_scale_ptr", d->global_scale_ptr, 4, buf, len))) return p;
    if ((p = check_aligned(fn, "nonfinite_flag", d->nonfinite_flag, 4, buf, len))) return p;
    if ((p = check_extent(fn, "in", d->rows, d->ld_in ? d->ld_in : d->k,
                          fp4_dtype_size(d->in_dtype), buf, len)))
        return p;
    if (fp4_sf_bytes(d->rows, d->k, d->sf_layout) < 0)
        return PROBLEM("%s: the scales of %lld x %lld overflow int64 bytes", fn,
                       (long long)d->rows, (long long)d->k);
    return check_gs(fn, d->global_scale, d->global_scale_ptr, buf, len);
}

static const char *dequant_desc_problem(const fp4_dequant_desc *d, char *buf, size_t len) {
    const char *fn = "fp4_dequantize";
    const char *p;
    if (!d) return PROBLEM("%s: desc is NULL", fn);
    if ((p = check_rows_k(fn, "rows", d->rows, d->k, buf, len))) return p;
    if (!is_float_dtype(d->out_dtype))
        return PROBLEM("%s: out_dtype = %s (%d) must be f32, f16 or bf16", fn,
                       fp4_dtype_name(d->out_dtype), (int)d->out_dtype);
    if (!is_layout(d->sf_layout))
        return PROBLEM("%s: sf_layout = %d is not a layout", fn, (int)d->sf_layout);
    if (d->ld_out != 0 && d->ld_out < d->k)
        return PROBLEM("%s: ld_out = %lld is less than k = %lld", fn, (long long)d->ld_out,
                       (long long)d->k);
    if (!d->q) return PROBLEM("%s: q is NULL", fn);
    if (!d->sf) return PROBLEM("%s: sf is NULL", fn);
    if (!d->out) return PROBLEM("%s: out is NULL", fn);
    if ((p = check_aligned(fn, "out", d->out, fp4_dtype_size(d->out_dtype), buf, len))) return p;
    if ((p = check_aligned(fn, "global_scale_ptr", d->global_scale_ptr, 4, buf, len))) return p;
    if ((p = check_extent(fn, "out", d->rows, d->ld_out ? d->ld_out : d->k,
                          fp4_dtype_size(d->out_dtype), buf, len)))
        return p;
    if (fp4_sf_bytes(d->rows, d->k, d->sf_layout) < 0)
        return PROBLEM("%s: the scales of %lld x %lld overflow int64 bytes", fn,
                       (long long)d->rows, (long long)d->k);
    return check_gs(fn, d->global_scale, d->global_scale_ptr, buf, len);
}

static const char *gemm_desc_problem(const fp4_gemm_desc *d, char *buf, size_t len) {
    const char *fn = "fp4_gemm";
    const char *p;
    if (d->n < 1) return PROBLEM("%s: n = %lld must be >= 1", fn, (long long)d->n);
    if ((p = check_rows_k(fn, "m", d->m, d->k, buf, len))) return p;
    const int w4a4 = d->a_dtype == FP4_DTYPE_E2M1;
    if (!w4a4 && d->a_dtype != FP4_DTYPE_BF16 && d->a_dtype != FP4_DTYPE_F16)
        return PROBLEM("%s: a_dtype = %s (%d) must be e2m1 (W4A4), bf16 or f16 (W4A16)", fn,
                       fp4_dtype_name(d->a_dtype), (int)d->a_dtype);
    if (!is_float_dtype(d->d_dtype))
        return PROBLEM("%s: d_dtype = %s (%d) must be f32, f16 or bf16", fn,
                       fp4_dtype_name(d->d_dtype), (int)d->d_dtype);
    if (w4a4 && !is_layout(d->a_sf_layout))
        return PROBLEM("%s: a_sf_layout = %d is not a layout", fn, (int)d->a_sf_layout);
    if (!is_layout(d->b_sf_layout))
        return PROBLEM("%s: b_sf_layout = %d is not a layout", fn, (int)d->b_sf_layout);
    if ((int)d->backend < 0 || (int)d->backend >= FP4_BACKEND_COUNT)
        return PROBLEM("%s: backend = %d is not a backend", fn, (int)d->backend);
    if (d->config < -1)
        return PROBLEM("%s: config = %d; use -1 for the backend's heuristic", fn, d->config);
    if (d->config >= 0 && d->backend == FP4_BACKEND_AUTO)
        return PROBLEM("%s: config = %d needs an explicit backend (config numbers are per "
                       "backend; see fp4_tactic_from_name)",
                       fn, d->config);
    if (d->config >= 0) {
        const fp4_backend_ops *ops = fp4_registry_find(d->backend);
        if (!ops || d->config >= fp4_config_count(ops))
            return PROBLEM("%s: config = %d is not a config of %s (it has %d)", fn, d->config,
                           fp4_backend_name(d->backend), ops ? fp4_config_count(ops) : 0);
    }
    if (d->ldd != 0 && d->ldd < d->n)
        return PROBLEM("%s: ldd = %lld is less than n = %lld", fn, (long long)d->ldd,
                       (long long)d->n);
    if (!d->a) return PROBLEM("%s: a is NULL", fn);
    if (w4a4 && !d->a_sf) return PROBLEM("%s: a_sf is NULL (needed for e2m1 A)", fn);
    if (!d->b) return PROBLEM("%s: b is NULL", fn);
    if (!d->b_sf) return PROBLEM("%s: b_sf is NULL", fn);
    if (!d->d) return PROBLEM("%s: d is NULL", fn);
    if (!w4a4 && (p = check_aligned(fn, "a", d->a, 2, buf, len))) return p;
    if ((p = check_aligned(fn, "d", d->d, fp4_dtype_size(d->d_dtype), buf, len))) return p;
    if ((p = check_aligned(fn, "alpha_ptr", d->alpha_ptr, 4, buf, len))) return p;
    if ((p = check_extent(fn, "a", d->m, d->k, w4a4 ? 1 : 2, buf, len))) return p;
    if ((p = check_extent(fn, "b", d->n, d->k, 1, buf, len))) return p;
    if ((p = check_extent(fn, "d", d->m, d->ldd ? d->ldd : d->n, fp4_dtype_size(d->d_dtype), buf,
                          len)))
        return p;
    if ((w4a4 && fp4_sf_bytes(d->m, d->k, d->a_sf_layout) < 0) ||
        fp4_sf_bytes(d->n, d->k, d->b_sf_layout) < 0)
        return PROBLEM("%s: the scales of a %lld x %lld x %lld problem overflow int64 bytes", fn,
                       (long long)d->m, (long long)d->n, (long long)d->k);
    return NULL;
}

const char *fp4_gemm_desc_prepare(const fp4_gemm_desc *in, fp4_gemm_desc *out, char *buf,
                                  size_t len) {
    const char *p;
    if (!buf || len == 0) return "fp4_gemm_desc_prepare: no message buffer";
    if (!in) return PROBLEM("fp4_gemm: desc is NULL");
    fp4_gemm_desc_init(out);
    if ((p = upgrade_desc("fp4_gemm", "fp4_gemm_desc", in, out, sizeof *out,
                          V1_SIZE(fp4_gemm_desc), buf, len)))
        return p;
    if ((p = gemm_desc_problem(out, buf, len))) return p;
    if (out->ldd == 0) out->ldd = out->n;
    return NULL;
}

/* ---- descriptors ------------------------------------------------------------------------ */

void fp4_quant_desc_init(fp4_quant_desc *desc) {
    if (!desc) return;
    memset(desc, 0, sizeof *desc);
    desc->struct_size = sizeof *desc;
    desc->in_dtype = FP4_DTYPE_F32;
    desc->global_scale = 1.0f;
    desc->sf_layout = FP4_SF_LINEAR;
    desc->recipe = FP4_QUANT_RECIPE_FLASHINFER;
}

void fp4_dequant_desc_init(fp4_dequant_desc *desc) {
    if (!desc) return;
    memset(desc, 0, sizeof *desc);
    desc->struct_size = sizeof *desc;
    desc->global_scale = 1.0f;
    desc->sf_layout = FP4_SF_LINEAR;
    desc->out_dtype = FP4_DTYPE_F32;
}

void fp4_gemm_desc_init(fp4_gemm_desc *desc) {
    if (!desc) return;
    memset(desc, 0, sizeof *desc);
    desc->struct_size = sizeof *desc;
    desc->a_dtype = FP4_DTYPE_E2M1;
    desc->a_sf_layout = FP4_SF_LINEAR;
    desc->b_sf_layout = FP4_SF_LINEAR;
    desc->d_dtype = FP4_DTYPE_BF16;
    desc->alpha = 1.0f;
    desc->backend = FP4_BACKEND_AUTO;
    desc->config = -1;
}

/* ---- calls ------------------------------------------------------------------------------ */

/* Starts a call: a context is required; its last error is cleared. */
#define BEGIN_CALL(ctx, fn)                                                                  \
    do {                                                                                     \
        if (!(ctx)) return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "%s: ctx is NULL", fn); \
        (ctx)->last_error[0] = 0;                                                            \
    } while (0)

fp4_status fp4_quantize(fp4_ctx *ctx, const fp4_quant_desc *desc) {
    BEGIN_CALL(ctx, "fp4_quantize");
    char why[512];
    fp4_quant_desc d;
    fp4_quant_desc_init(&d);
    if ((desc && upgrade_desc("fp4_quantize", "fp4_quant_desc", desc, &d, sizeof d,
                              V1_SIZE(fp4_quant_desc), why, sizeof why)) ||
        quant_desc_problem(desc ? &d : NULL, why, sizeof why))
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "%s", why);
    if (d.ld_in == 0) d.ld_in = d.k;
    if (ctx->device >= 0) return fp4_cuda_quantize(ctx, &d);
    const float gs = d.global_scale_ptr ? *d.global_scale_ptr : d.global_scale;
    if (fp4_ref_quantize(&d, gs) && d.nonfinite_flag) *d.nonfinite_flag = 1;
    return FP4_OK;
}

fp4_status fp4_dequantize(fp4_ctx *ctx, const fp4_dequant_desc *desc) {
    BEGIN_CALL(ctx, "fp4_dequantize");
    char why[512];
    fp4_dequant_desc d;
    fp4_dequant_desc_init(&d);
    if ((desc && upgrade_desc("fp4_dequantize", "fp4_dequant_desc", desc, &d, sizeof d,
                              V1_SIZE(fp4_dequant_desc), why, sizeof why)) ||
        dequant_desc_problem(desc ? &d : NULL, why, sizeof why))
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "%s", why);
    if (d.ld_out == 0) d.ld_out = d.k;
    if (ctx->device >= 0) return fp4_cuda_dequantize(ctx, &d);
    fp4_ref_dequantize(&d, d.global_scale_ptr ? *d.global_scale_ptr : d.global_scale);
    return FP4_OK;
}

fp4_status fp4_global_scale(fp4_ctx *ctx, int64_t rows, int64_t k, fp4_dtype in_dtype,
                            const void *in, int64_t ld_in, float *gs_out,
                            struct CUstream_st *stream) {
    const char *fn = "fp4_global_scale";
    BEGIN_CALL(ctx, fn);
    char buf[512];
    const size_t len = sizeof buf;
    const char *p = check_rows_k(fn, "rows", rows, k, buf, len);
    if (!p && !is_float_dtype(in_dtype))
        p = PROBLEM("%s: in_dtype = %s (%d) must be f32, f16 or bf16", fn, fp4_dtype_name(in_dtype),
                    (int)in_dtype);
    if (!p && ld_in != 0 && ld_in < k)
        p = PROBLEM("%s: ld_in = %lld is less than k = %lld", fn, (long long)ld_in, (long long)k);
    if (!p && !in) p = PROBLEM("%s: in is NULL", fn);
    if (!p && !gs_out) p = PROBLEM("%s: gs_out is NULL", fn);
    if (!p) p = check_aligned(fn, "in", in, fp4_dtype_size(in_dtype), buf, len);
    if (!p) p = check_aligned(fn, "gs_out", gs_out, 4, buf, len);
    if (!p) p = check_extent(fn, "in", rows, ld_in ? ld_in : k, fp4_dtype_size(in_dtype), buf, len);
    if (p) return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "%s", p);
    if (ld_in == 0) ld_in = k;
    if (ctx->device >= 0)
        return fp4_cuda_global_scale(ctx, rows, k, in_dtype, in, ld_in, gs_out, stream);
    *gs_out = fp4_global_scale_from_amax(fp4_ref_amax(rows, k, in_dtype, in, ld_in));
    return FP4_OK;
}

fp4_status fp4_gemm(fp4_ctx *ctx, const fp4_gemm_desc *desc) {
    BEGIN_CALL(ctx, "fp4_gemm");
    char why[512];
    fp4_gemm_desc d;
    if (fp4_gemm_desc_prepare(desc, &d, why, sizeof why))
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "%s", why);

    // opt-in (FP4_AUTOTUNE_ON_FIRST_USE): an unseen bucket is tuned first (src/tune/)
    if (ctx->tuning.mode != FP4_AUTOTUNE_OFF && d.backend == FP4_BACKEND_AUTO) {
        const fp4_status ts = fp4_tuning_first_use(ctx, &d);
        if (ts != FP4_OK) return ts;
    }
    // the tactic: no message formatting unless nothing can run
    fp4_tactic t;
    const fp4_status st = fp4_resolve_tactic(ctx, &d, &t, NULL, 0);
    if (st != FP4_OK) return st;
    const fp4_backend_ops *ops = fp4_registry_find(t.backend);
    if (!ops || !ops->run || t.config < 0)
        return FP4_FAIL(ctx, FP4_ERR_INTERNAL, "fp4_gemm: backend %s passed its check but has no "
                        "entry", fp4_backend_name(t.backend));
    d.backend = t.backend;
    d.config = t.config;
    return ops->run(ctx, &d, t.config);
}

/* ---- scale layouts ---------------------------------------------------------------------- */

void fp4_ref_sf_convert(int64_t rows, int64_t k, const void *src, fp4_sf_layout src_layout,
                        void *dst, fp4_sf_layout dst_layout) {
    const int src_sw = src_layout == FP4_SF_SWIZZLED_128x4;
    const int dst_sw = dst_layout == FP4_SF_SWIZZLED_128x4;
    const int64_t kblocks = k / 16;
    const int64_t row_grid = dst_sw ? fp4_ceil_div(rows, 128) * 128 : rows;
    const int64_t kb_grid = dst_sw ? fp4_ceil_div(kblocks, 4) * 4 : kblocks;
    const uint8_t *s = (const uint8_t *)src;
    uint8_t *d = (uint8_t *)dst;
    for (int64_t r = 0; r < row_grid; r++)
        for (int64_t kb = 0; kb < kb_grid; kb++) /* the swizzled padding gets 0 */
            d[fp4_sf_offset_at(dst_sw, r, kb, k)] =
                r < rows && kb < kblocks ? s[fp4_sf_offset_at(src_sw, r, kb, k)] : 0;
}

fp4_status fp4_sf_convert(fp4_ctx *ctx, int64_t rows, int64_t k, const void *src,
                          fp4_sf_layout src_layout, void *dst, fp4_sf_layout dst_layout,
                          struct CUstream_st *stream) {
    const char *fn = "fp4_sf_convert";
    BEGIN_CALL(ctx, fn);
    char buf[512];
    const size_t len = sizeof buf;
    const char *p = check_rows_k(fn, "rows", rows, k, buf, len);
    if (!p && !is_layout(src_layout))
        p = PROBLEM("%s: src_layout = %d is not a layout", fn, (int)src_layout);
    if (!p && !is_layout(dst_layout))
        p = PROBLEM("%s: dst_layout = %d is not a layout", fn, (int)dst_layout);
    if (!p && !src) p = PROBLEM("%s: src is NULL", fn);
    if (!p && !dst) p = PROBLEM("%s: dst is NULL", fn);
    const int64_t src_bytes = p ? 0 : fp4_sf_bytes(rows, k, src_layout);
    const int64_t dst_bytes = p ? 0 : fp4_sf_bytes(rows, k, dst_layout);
    if (!p && (src_bytes < 0 || dst_bytes < 0))
        p = PROBLEM("%s: the scales of %lld x %lld overflow int64 bytes", fn, (long long)rows,
                    (long long)k);
    if (!p && (uintptr_t)src < (uintptr_t)dst + (uint64_t)dst_bytes &&
        (uintptr_t)dst < (uintptr_t)src + (uint64_t)src_bytes)
        p = PROBLEM("%s: src (%lld bytes at %p) and dst (%lld bytes at %p) overlap", fn,
                    (long long)src_bytes, src, (long long)dst_bytes, dst);
    if (p) return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "%s", p);
    if (ctx->device >= 0)
        return fp4_cuda_sf_convert(ctx, rows, k, src, src_layout, dst, dst_layout, stream);
    fp4_ref_sf_convert(rows, k, src, src_layout, dst, dst_layout);
    return FP4_OK;
}

/* api.c - the public entry points: validate every argument (so backends see only valid,
 * fully defaulted descriptors), then hand the call to the CPU reference or the CUDA side. */
#include "format.h"
#include "cuda/mma/mma.h"
#include "internal.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

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
    return layout == FP4_SF_SWIZZLED_128x4 ? fp4_sf_offset_swizzled(row, kb, k)
                                           : fp4_sf_offset_linear(row, kb, k);
}

/* ---- argument checks: each returns NULL or the problem, written into buf ----------------- */

#define PROBLEM(...) (snprintf(buf, len, __VA_ARGS__), buf)

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

/* sizeof(fp4_quant_desc) in 0.1.0, before `recipe` was added: the fields up to `stream`. */
static size_t quant_desc_size_v0(void) {
    const size_t end = offsetof(fp4_quant_desc, stream) + sizeof(struct CUstream_st *);
    const size_t align = _Alignof(fp4_quant_desc);
    return (end + align - 1) / align * align;
}

/* Checks a quant desc of the current or of 0.1.0's size (whose recipe is taken as FLASHINFER;
 * the caller copies it into a full-size desc with fp4_quant_desc_init's defaults). */
static const char *quant_desc_problem(const fp4_quant_desc *d, char *buf, size_t len) {
    const char *fn = "fp4_quantize";
    const char *p;
    if (!d) return PROBLEM("%s: desc is NULL", fn);
    if (d->struct_size != sizeof *d && d->struct_size != quant_desc_size_v0())
        return PROBLEM("%s: desc->struct_size = %zu, expected %zu (call fp4_quant_desc_init)", fn,
                       d->struct_size, sizeof *d);
    if (d->struct_size == sizeof *d &&
        ((int)d->recipe < 0 || (int)d->recipe >= FP4_QUANT_RECIPE_COUNT))
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
    if (d->struct_size != sizeof *d)
        return PROBLEM("%s: desc->struct_size = %zu, expected %zu (call fp4_dequant_desc_init)",
                       fn, d->struct_size, sizeof *d);
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

const char *fp4_gemm_desc_problem(const fp4_gemm_desc *d, char *buf, size_t len) {
    const char *fn = "fp4_gemm";
    const char *p;
    if (!buf || len == 0) return "fp4_gemm_desc_problem: no message buffer";
    if (!d) return PROBLEM("%s: desc is NULL", fn);
    if (d->struct_size != sizeof *d)
        return PROBLEM("%s: desc->struct_size = %zu, expected %zu (call fp4_gemm_desc_init)", fn,
                       d->struct_size, sizeof *d);
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
    if (quant_desc_problem(desc, why, sizeof why))
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "%s", why);
    fp4_quant_desc d;
    fp4_quant_desc_init(&d); /* a 0.1.0 desc lacks the recipe: FLASHINFER */
    memcpy(&d, desc, desc->struct_size);
    d.struct_size = sizeof d;
    if (d.ld_in == 0) d.ld_in = d.k;
    if (ctx->device >= 0) return fp4_cuda_quantize(ctx, &d);
    const float gs = d.global_scale_ptr ? *d.global_scale_ptr : d.global_scale;
    if (fp4_ref_quantize(&d, gs) && d.nonfinite_flag) *d.nonfinite_flag = 1;
    return FP4_OK;
}

fp4_status fp4_dequantize(fp4_ctx *ctx, const fp4_dequant_desc *desc) {
    BEGIN_CALL(ctx, "fp4_dequantize");
    char why[512];
    if (dequant_desc_problem(desc, why, sizeof why))
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "%s", why);
    fp4_dequant_desc d = *desc;
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
    if (fp4_gemm_desc_problem(desc, why, sizeof why))
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "%s", why);

    fp4_backend backend = desc->backend;
    if (backend == FP4_BACKEND_AUTO) {
        const fp4_status st = fp4_select_backend_validated(ctx, desc, &backend);
        if (st != FP4_OK) return st;
    } else {
        const char *reason = fp4_backend_why_not(ctx, backend, desc, why, sizeof why);
        if (reason)
            return FP4_FAIL(ctx, FP4_ERR_NOT_SUPPORTED,
                            "fp4_gemm: backend %s can't run this problem: %s",
                            fp4_backend_name(backend), reason);
    }

    fp4_gemm_desc d = *desc;
    d.backend = backend;
    if (d.ldd == 0) d.ldd = d.n;
    fp4_log(FP4_LOG_DEBUG, "fp4_gemm: m=%lld n=%lld k=%lld on %s", (long long)d.m, (long long)d.n,
            (long long)d.k, fp4_backend_name(backend));
    switch (backend) {
    case FP4_BACKEND_CPU_REF: fp4_ref_gemm(&d, d.alpha_ptr ? *d.alpha_ptr : d.alpha); return FP4_OK;
    case FP4_BACKEND_CUDA_SIMT: return fp4_cuda_simt_gemm(ctx, &d);
    case FP4_BACKEND_CUDA_MMA: return fp4_cuda_mma_gemm(ctx, ctx->mma_state, &d, -1);
    default: break;
    }
    return FP4_FAIL(ctx, FP4_ERR_INTERNAL, "fp4_gemm: backend %s passed its check but has no entry",
                    fp4_backend_name(backend));
}

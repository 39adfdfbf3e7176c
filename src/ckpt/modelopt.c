/* modelopt.c - NVIDIA ModelOpt's NVFP4 linear layers in a checkpoint, loaded GEMM-ready:
 * <layer>.weight U8 [N, K/2], <layer>.weight_scale F8_E4M3 [N, K/16] (linear), the decode
 * global scale <layer>.weight_scale_2 and the optional <layer>.input_scale (docs/format.md,
 * "ModelOpt NVFP4 checkpoints", for the sources in nvidia-modelopt). */
#include "ckpt/ckpt.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The tensor <layer><suffix>, or -1 (name too long counts as missing). */
static int64_t find_part(const fp4_safetensors *ckpt, const char *layer, const char *suffix,
                         char *name, size_t len) {
    if ((size_t)snprintf(name, len, "%s%s", layer, suffix) >= len) return -1;
    return fp4_safetensors_find(ckpt, name);
}

/* A float32 scalar tensor ([] or [1]) into *v. NULL if good, else what is wrong. */
static const char *read_scalar(const fp4_st_tensor *t, float *v) {
    if (t->dtype != FP4_ST_F32) return "is not F32";
    if (!(t->ndim == 0 || (t->ndim == 1 && t->shape[0] == 1))) return "is not a scalar ([] or [1])";
    memcpy(v, t->data, sizeof *v); /* little-endian hosts only, as the library is */
    return NULL;
}

fp4_status fp4_modelopt_load_weight(fp4_ctx *ctx, const fp4_safetensors *ckpt, const char *layer,
                                    fp4_sf_layout layout, fp4_nvfp4_weight *out) {
    if (!ctx) return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "fp4_modelopt_load_weight: ctx is NULL");
    ctx->last_error[0] = 0;
    if (!ckpt || !layer || !out)
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "fp4_modelopt_load_weight: NULL argument");
    if (out->struct_size != sizeof *out)
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "fp4_modelopt_load_weight: struct_size %zu, "
                        "expected sizeof(fp4_nvfp4_weight) = %zu", out->struct_size, sizeof *out);
    if ((unsigned)layout >= FP4_SF_LAYOUT_COUNT)
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "fp4_modelopt_load_weight: bad layout %d",
                        (int)layout);
    char name[1024];
    fp4_st_tensor w, s, s2, in;
    const int64_t iw = find_part(ckpt, layer, ".weight", name, sizeof name);
    if (iw < 0)
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "layer \"%.300s\": no tensor \"%.300s.weight\"",
                        layer, layer);
    fp4_safetensors_tensor(ckpt, iw, &w);
    if (w.dtype != FP4_ST_U8 || w.ndim != 2 || w.shape[0] < 1 || w.shape[1] < 8 || w.shape[1] % 8)
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "layer \"%.300s\": %.300s is %s with %d "
                        "dims; an NVFP4 weight is U8 [N, K/2] with K a multiple of 16 (is this "
                        "layer quantized?)", layer, name, fp4_st_dtype_name(w.dtype), w.ndim);
    const int64_t n = w.shape[0], k = w.shape[1] * 2;
    const int64_t is = find_part(ckpt, layer, ".weight_scale", name, sizeof name);
    if (is < 0)
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "layer \"%.300s\": no \"%.300s\" (the E4M3 "
                        "block scales of an NVFP4 weight)", layer, name);
    fp4_safetensors_tensor(ckpt, is, &s);
    if ((s.dtype != FP4_ST_F8_E4M3 && s.dtype != FP4_ST_U8) || s.ndim != 2 || s.shape[0] != n ||
        s.shape[1] != k / 16)
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "layer \"%.300s\": %.300s is %s [%lld, %lld], "
                        "expected F8_E4M3 [%lld, %lld] (one scale per 16 of K = %lld)", layer, name,
                        fp4_st_dtype_name(s.dtype), (long long)s.shape[0],
                        (long long)(s.ndim > 1 ? s.shape[1] : 0), (long long)n,
                        (long long)(k / 16), (long long)k);
    const int64_t is2 = find_part(ckpt, layer, ".weight_scale_2", name, sizeof name);
    if (is2 < 0)
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "layer \"%.300s\": no \"%.300s\" (the decode "
                        "global scale)", layer, name);
    fp4_safetensors_tensor(ckpt, is2, &s2);
    float ws2 = 0.0f, in_scale = 0.0f;
    const char *bad = read_scalar(&s2, &ws2);
    if (bad || !(ws2 > 0.0f) || !isfinite(ws2))
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "layer \"%.300s\": %.300s %s%s%g", layer,
                        name, bad ? bad : "is ", bad ? "" : "not a positive finite number: ",
                        bad ? 0.0 : (double)ws2);
    const int64_t ii = find_part(ckpt, layer, ".input_scale", name, sizeof name);
    if (ii >= 0) {
        fp4_safetensors_tensor(ckpt, ii, &in);
        if ((bad = read_scalar(&in, &in_scale)) != NULL)
            return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "layer \"%.300s\": %.300s %s", layer,
                            name, bad);
    }
    /* to the context's device: the packed weight as is, the scales into `layout` */
    fp4_nvfp4_weight r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    r.n = n;
    r.k = k;
    r.sf_layout = layout;
    r.weight_scale_2 = ws2;
    r.input_scale = in_scale;
    void *lin = NULL;
    const int64_t sf_bytes = fp4_sf_bytes(n, k, layout);
    fp4_status st = fp4_malloc(ctx, &r.q, w.bytes);
    if (st == FP4_OK) st = fp4_upload(ctx, r.q, w.data, w.bytes);
    if (st == FP4_OK) st = fp4_malloc(ctx, &r.sf, sf_bytes);
    if (st == FP4_OK) st = fp4_malloc(ctx, &lin, s.bytes);
    if (st == FP4_OK) st = fp4_upload(ctx, lin, s.data, s.bytes);
    if (st == FP4_OK) st = fp4_sf_convert(ctx, n, k, lin, FP4_SF_LINEAR, r.sf, layout, NULL);
    if (st == FP4_OK) st = fp4_synchronize(ctx, NULL);
    if (st != FP4_OK) { /* the frees clear fp4_last_error: keep the failure's detail */
        char saved[sizeof ctx->last_error];
        snprintf(saved, sizeof saved, "%s", ctx->last_error);
        fp4_free(ctx, lin);
        fp4_nvfp4_weight_free(ctx, &r);
        snprintf(ctx->last_error, sizeof ctx->last_error, "layer \"%.200s\": %.700s", layer, saved);
        return st;
    }
    fp4_free(ctx, lin);
    *out = r;
    return FP4_OK;
}

void fp4_nvfp4_weight_free(fp4_ctx *ctx, fp4_nvfp4_weight *weight) {
    if (!ctx || !weight) return;
    fp4_free(ctx, weight->q);
    fp4_free(ctx, weight->sf);
    weight->q = weight->sf = NULL;
}

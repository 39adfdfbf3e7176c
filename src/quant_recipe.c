/* quant_recipe.c - the quantization recipes' public helpers: the recipe names, and ModelOpt's
 * decode global scale of a group of tensors (validated here, as src/api.c validates the other
 * calls, then computed by the CPU reference or on the GPU). */
#include "format.h"
#include "internal.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const k_recipe_names[FP4_QUANT_RECIPE_COUNT] = {"flashinfer", "modelopt"};

const char *fp4_quant_recipe_name(fp4_quant_recipe recipe) {
    const int v = (int)recipe;
    return (v >= 0 && v < FP4_QUANT_RECIPE_COUNT) ? k_recipe_names[v] : "?";
}

fp4_status fp4_quant_recipe_from_name(const char *name, fp4_quant_recipe *out) {
    for (int i = 0; name && out && i < FP4_QUANT_RECIPE_COUNT; i++) {
        if (strcasecmp(k_recipe_names[i], name) == 0) { /* like every *_from_name */
            *out = (fp4_quant_recipe)i;
            return FP4_OK;
        }
    }
    char valid[128] = "";
    for (int i = 0; i < FP4_QUANT_RECIPE_COUNT; i++) {
        const size_t used = strlen(valid);
        snprintf(valid + used, sizeof valid - used, "%s%s", i ? ", " : "", k_recipe_names[i]);
    }
    return fp4_name_fail("fp4_quant_recipe_from_name", "quantization recipe", name, out, valid);
}

/* NULL if tensors[i] is a valid [rows, k] F32/F16/BF16 tensor, else the problem in buf. */
static const char *tensor_problem(const fp4_tensor_ref *t, int i, char *buf, size_t len) {
    const char *fn = "fp4_modelopt_global_scale";
    const int64_t esize = fp4_dtype_size(t->dtype);
    const int64_t ld = t->ld ? t->ld : t->k;
    if (t->rows < 1 || t->k < 16 || t->k % 16) {
        snprintf(buf, len, "%s: tensors[%d] is [%lld, %lld]: rows must be >= 1 and k a multiple "
                 "of 16", fn, i, (long long)t->rows, (long long)t->k);
        return buf;
    }
    if (t->dtype != FP4_DTYPE_F32 && t->dtype != FP4_DTYPE_F16 && t->dtype != FP4_DTYPE_BF16) {
        snprintf(buf, len, "%s: tensors[%d].dtype = %s (%d) must be f32, f16 or bf16", fn, i,
                 fp4_dtype_name(t->dtype), (int)t->dtype);
        return buf;
    }
    if (t->ld != 0 && t->ld < t->k) {
        snprintf(buf, len, "%s: tensors[%d].ld = %lld is less than k = %lld", fn, i,
                 (long long)t->ld, (long long)t->k);
        return buf;
    }
    if (!t->data) {
        snprintf(buf, len, "%s: tensors[%d].data is NULL", fn, i);
        return buf;
    }
    if ((uintptr_t)t->data % (uintptr_t)esize) {
        snprintf(buf, len, "%s: tensors[%d].data = %p is not aligned to its %lld-byte elements",
                 fn, i, t->data, (long long)esize);
        return buf;
    }
    if (t->rows > INT64_MAX / ld || t->rows * ld > INT64_MAX / esize) {
        snprintf(buf, len, "%s: tensors[%d] of %lld rows x %lld elements overflows int64 bytes",
                 fn, i, (long long)t->rows, (long long)ld);
        return buf;
    }
    return NULL;
}

fp4_status fp4_modelopt_global_scale(fp4_ctx *ctx, const fp4_tensor_ref *tensors, int count,
                                     float *ws2_out, struct CUstream_st *stream) {
    const char *fn = "fp4_modelopt_global_scale";
    if (!ctx) return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "%s: ctx is NULL", fn);
    ctx->last_error[0] = 0;
    if (count < 1)
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "%s: count = %d must be >= 1", fn, count);
    if (!tensors) return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "%s: tensors is NULL", fn);
    if (!ws2_out) return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "%s: ws2_out is NULL", fn);
    if ((uintptr_t)ws2_out % 4)
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT,
                        "%s: ws2_out = %p is not aligned to 4 bytes", fn, (void *)ws2_out);
    char why[512];
    for (int i = 0; i < count; i++)
        if (tensor_problem(&tensors[i], i, why, sizeof why))
            return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "%s", why);

    if (ctx->device >= 0) return fp4_cuda_modelopt_global_scale(ctx, tensors, count, ws2_out, stream);
    // the max over the group of each tensor's amax, then one division (ModelOpt's order)
    float amax = 0.0f;
    for (int i = 0; i < count; i++) {
        const fp4_tensor_ref *t = &tensors[i];
        const float a = fp4_ref_amax(t->rows, t->k, t->dtype, t->data, t->ld ? t->ld : t->k);
        if (a > amax) amax = a;
    }
    *ws2_out = fp4_modelopt_ws2_from_amax(amax);
    return FP4_OK;
}

/* names.c - status, dtype, layout, backend and log-level names; version and build facts. */
#include "internal.h"

#include <string.h>

#define FP4_STR2(x) #x
#define FP4_STR(x) FP4_STR2(x)

const char *fp4_version(void) {
    return FP4_STR(FP4GEMM_VERSION_MAJOR) "." FP4_STR(FP4GEMM_VERSION_MINOR) "." FP4_STR(
        FP4GEMM_VERSION_PATCH);
}

int fp4_built_with_cuda(void) {
#ifdef FP4GEMM_HAVE_CUDA
    return 1;
#else
    return 0;
#endif
}

const char *fp4_built_cuda_archs(void) { return FP4GEMM_CUDA_ARCHS; }

const char *fp4_status_name(fp4_status status) {
    switch (status) {
    case FP4_OK: return "FP4_OK";
    case FP4_ERR_INVALID_ARGUMENT: return "FP4_ERR_INVALID_ARGUMENT";
    case FP4_ERR_NOT_SUPPORTED: return "FP4_ERR_NOT_SUPPORTED";
    case FP4_ERR_OUT_OF_MEMORY: return "FP4_ERR_OUT_OF_MEMORY";
    case FP4_ERR_CUDA: return "FP4_ERR_CUDA";
    case FP4_ERR_NO_DEVICE: return "FP4_ERR_NO_DEVICE";
    case FP4_ERR_INTERNAL: return "FP4_ERR_INTERNAL";
    }
    return "FP4_ERR_UNKNOWN_STATUS";
}

const char *fp4_status_message(fp4_status status) {
    switch (status) {
    case FP4_OK: return "success";
    case FP4_ERR_INVALID_ARGUMENT: return "invalid argument";
    case FP4_ERR_NOT_SUPPORTED: return "not supported by the requested backend on this device";
    case FP4_ERR_OUT_OF_MEMORY: return "out of memory";
    case FP4_ERR_CUDA: return "a CUDA call failed";
    case FP4_ERR_NO_DEVICE: return "no such CUDA device, or no CUDA in this build";
    case FP4_ERR_INTERNAL: return "internal error in fp4gemm (please report it)";
    }
    return "unknown status value";
}

/* One table per enum: index = value. */
static const char *const k_dtype_names[FP4_DTYPE_COUNT] = {"f32", "f16", "bf16", "e2m1", "e4m3"};
static const char *const k_layout_names[FP4_SF_LAYOUT_COUNT] = {"linear", "swizzled"};
static const char *const k_backend_names[FP4_BACKEND_COUNT] = {
    "auto", "cpu_ref", "cuda_simt", "cuda_mma", "cuda_wgmma", "cublaslt"};
static const char *const k_log_names[5] = {"off", "error", "warn", "info", "debug"};

static const char *name_of(const char *const *table, int count, int value) {
    return (value >= 0 && value < count) ? table[value] : "?";
}

static fp4_status value_of(const char *const *table, int count, const char *name,
                           const void *out, int *value) {
    if (!name || !out) return FP4_ERR_INVALID_ARGUMENT;
    for (int i = 0; i < count; i++) {
        if (strcmp(table[i], name) == 0) {
            *value = i;
            return FP4_OK;
        }
    }
    return FP4_ERR_INVALID_ARGUMENT;
}

const char *fp4_dtype_name(fp4_dtype dtype) {
    return name_of(k_dtype_names, FP4_DTYPE_COUNT, (int)dtype);
}

fp4_status fp4_dtype_from_name(const char *name, fp4_dtype *out) {
    int v = 0;
    const fp4_status st = value_of(k_dtype_names, FP4_DTYPE_COUNT, name, out, &v);
    if (st == FP4_OK) *out = (fp4_dtype)v;
    return st;
}

const char *fp4_sf_layout_name(fp4_sf_layout layout) {
    return name_of(k_layout_names, FP4_SF_LAYOUT_COUNT, (int)layout);
}

fp4_status fp4_sf_layout_from_name(const char *name, fp4_sf_layout *out) {
    int v = 0;
    const fp4_status st = value_of(k_layout_names, FP4_SF_LAYOUT_COUNT, name, out, &v);
    if (st == FP4_OK) *out = (fp4_sf_layout)v;
    return st;
}

const char *fp4_backend_name(fp4_backend backend) {
    return name_of(k_backend_names, FP4_BACKEND_COUNT, (int)backend);
}

fp4_status fp4_backend_from_name(const char *name, fp4_backend *out) {
    int v = 0;
    const fp4_status st = value_of(k_backend_names, FP4_BACKEND_COUNT, name, out, &v);
    if (st == FP4_OK) *out = (fp4_backend)v;
    return st;
}

const char *fp4_log_level_name(fp4_log_level level) {
    return name_of(k_log_names, 5, (int)level + 1);
}

fp4_status fp4_log_level_from_name(const char *name, fp4_log_level *out) {
    int v = 0;
    const fp4_status st = value_of(k_log_names, 5, name, out, &v);
    if (st == FP4_OK) *out = (fp4_log_level)(v - 1);
    return st;
}

int64_t fp4_dtype_size(fp4_dtype dtype) {
    switch (dtype) {
    case FP4_DTYPE_F32: return 4;
    case FP4_DTYPE_F16: return 2;
    case FP4_DTYPE_BF16: return 2;
    case FP4_DTYPE_E4M3: return 1;
    case FP4_DTYPE_E2M1: return 0;
    }
    return 0;
}

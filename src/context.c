/* context.c - contexts, error detail, devices and memory. */
#include "backend.h"
#include "tune/tuning.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Errors of calls that have no context (fp4_create failing, a NULL ctx): fp4_last_error(NULL). */
static _Thread_local char g_orphan_error[1024];

static const char *short_path(const char *file) {
    const char *src = strstr(file, "src/");
    return src ? src : file;
}

/* 1 if msg[0..n) ends with a source location " (path:line)", as every message of
 * fp4_fail_at does: a message that wraps another one ("fp4_create: %s") keeps the inner
 * location, the place the failure was found, and gets no second one. */
static int ends_with_location(const char *msg, size_t n) {
    if (n < 5 || msg[n - 1] != ')') return 0;
    size_t i = n - 1, digits = 0;
    while (i > 0 && msg[i - 1] >= '0' && msg[i - 1] <= '9') i--, digits++;
    if (digits == 0 || i == 0 || msg[i - 1] != ':') return 0;
    i--;
    size_t path = 0;
    while (i > 0 && msg[i - 1] != '(' && msg[i - 1] != ' ' && msg[i - 1] != ':') i--, path++;
    return path > 0 && i >= 2 && msg[i - 1] == '(' && msg[i - 2] == ' ';
}

fp4_status fp4_fail_at(fp4_ctx *ctx, fp4_status status, const char *file, int line,
                       const char *fmt, ...) {
    char *buf = ctx ? ctx->last_error : g_orphan_error;
    const size_t cap = ctx ? sizeof ctx->last_error : sizeof g_orphan_error;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n < cap && !ends_with_location(buf, (size_t)n))
        snprintf(buf + n, cap - (size_t)n, " (%s:%d)", short_path(file), line);
    fp4_log(FP4_LOG_DEBUG, "%s: %s", fp4_status_name(status), buf);
    return status;
}

fp4_status fp4_out_struct_check(fp4_ctx *ctx, const char *fn, const char *what, const char *type,
                                size_t size, size_t min_size, size_t cur_size) {
    if (size > cur_size)
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT,
                        "%s: %s->struct_size = %zu is larger than this library's sizeof(%s) = "
                        "%zu: the caller was built against a newer fp4gemm.h than this library "
                        "(%s); rebuild it against this header or use a newer library",
                        fn, what, size, type, cur_size, fp4_version());
    if (size < min_size)
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT,
                        "%s: %s->struct_size = %zu is smaller than any release's %s (at least "
                        "%zu); set it to sizeof(%s) (or call %s_init)",
                        fn, what, size, type, min_size, type, type);
    return FP4_OK;
}

void fp4_out_struct_fill(void *out, const void *full, size_t full_size) {
    size_t size;
    memcpy(&size, out, sizeof size);
    if (size > full_size) size = full_size;
    if (size > sizeof size)
        memcpy((char *)out + sizeof size, (const char *)full + sizeof size, size - sizeof size);
}

void fp4_device_info_init(fp4_device_info *info) {
    if (!info) return;
    memset(info, 0, sizeof *info);
    info->struct_size = sizeof *info;
}

const char *fp4_last_error(const fp4_ctx *ctx) { return ctx ? ctx->last_error : g_orphan_error; }

int fp4_ctx_device(const fp4_ctx *ctx) { return ctx ? ctx->device : -1; }

int fp4_ctx_compute_capability(const fp4_ctx *ctx) {
    return ctx ? ctx->info.compute_capability : 0;
}

fp4_status fp4_device_count(int *count) {
    if (!count) return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "fp4_device_count: count is NULL");
    *count = 0;
    if (!fp4_built_with_cuda()) return FP4_OK;
    return fp4_cuda_device_count(count);
}

/* fp4_device_info's first release (0.1.x) ends at memory_bandwidth_gbs */
#define FP4_DEVICE_INFO_MIN_SIZE FP4_STRUCT_END(fp4_device_info, memory_bandwidth_gbs)

fp4_status fp4_device_query(int device, fp4_device_info *info) {
    if (!info) return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "fp4_device_query: info is NULL");
    const fp4_status bad =
        fp4_out_struct_check(NULL, "fp4_device_query", "info", "fp4_device_info",
                             info->struct_size, FP4_DEVICE_INFO_MIN_SIZE, sizeof(fp4_device_info));
    if (bad != FP4_OK) return bad;
    if (device < 0)
        return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT,
                        "fp4_device_query: device = %d; CUDA devices are numbered from 0", device);
    fp4_device_info full;
    fp4_device_info_init(&full);
    const fp4_status st = fp4_cuda_device_query(device, &full);
    if (st == FP4_OK) fp4_out_struct_fill(info, &full, sizeof full);
    return st;
}

fp4_status fp4_create(fp4_ctx **out, int device) {
    if (!out) return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "fp4_create: ctx is NULL");
    *out = NULL;
    if (device < -1)
        return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT,
                        "fp4_create: device = %d; use -1 for the CPU or a CUDA ordinal >= 0",
                        device);
    fp4_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return FP4_FAIL(NULL, FP4_ERR_OUT_OF_MEMORY, "fp4_create: out of host memory");
    ctx->device = device;
    ctx->info.struct_size = sizeof ctx->info;
    ctx->info.device = device;
    /* a bad value does not fail the context: it is reported once, and only a GEMM that
     * leaves the choice to auto fails on it (src/dispatch.c) */
    fp4_read_env_backend(ctx);

    if (device >= 0) {
        if (!fp4_built_with_cuda()) {
            free(ctx);
            return FP4_FAIL(NULL, FP4_ERR_NO_DEVICE,
                            "fp4_create: device %d requested, but this fp4gemm was built "
                            "without CUDA; use device -1 (CPU)",
                            device);
        }
        const fp4_status st = fp4_cuda_ctx_init(ctx);
        if (st != FP4_OK) {
            FP4_FAIL(NULL, st, "fp4_create: %s", ctx->last_error);
            free(ctx);
            return st;
        }
        fp4_log(FP4_LOG_INFO, "context on device %d: %s (sm_%d, %d SMs)", device, ctx->info.name,
                ctx->info.compute_capability, ctx->info.sm_count);
    } else {
        snprintf(ctx->info.name, sizeof ctx->info.name, "CPU");
    }
    fp4_registry_init(ctx); /* each backend's per-context state */
    fp4_tuning_load_env(ctx); /* FP4GEMM_TUNING_FILE: a failure is a warning */
    *out = ctx;
    return FP4_OK;
}

void fp4_destroy(fp4_ctx *ctx) {
    if (!ctx) return;
    fp4_registry_fini(ctx);
    fp4_tuning_free(&ctx->tuning);
    free(ctx);
}

/* ---- memory on the context's device --------------------------------------------------- */

static fp4_status check_mem_args(fp4_ctx *ctx, const char *fn, const void *a, const char *a_name,
                                 const void *b, const char *b_name, int64_t bytes) {
    if (!ctx) return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "%s: ctx is NULL", fn);
    ctx->last_error[0] = 0;
    if (!a) return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, a_name);
    if (b_name && !b) return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, b_name);
    if (bytes < 0)
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "%s: bytes = %lld is negative", fn,
                        (long long)bytes);
    return FP4_OK;
}

fp4_status fp4_malloc(fp4_ctx *ctx, void **ptr, int64_t bytes) {
    fp4_status st = check_mem_args(ctx, "fp4_malloc", ptr, "ptr", NULL, NULL, bytes);
    if (st != FP4_OK) return st;
    *ptr = NULL;
    if (bytes == 0)
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "fp4_malloc: bytes = 0");
    if (ctx->device >= 0) return fp4_cuda_malloc(ctx, ptr, bytes);
    if ((uint64_t)bytes > (uint64_t)SIZE_MAX ||
        !(*ptr = malloc((size_t)bytes)))
        return FP4_FAIL(ctx, FP4_ERR_OUT_OF_MEMORY, "fp4_malloc: %lld bytes of host memory",
                        (long long)bytes);
    return FP4_OK;
}

fp4_status fp4_free(fp4_ctx *ctx, void *ptr) {
    if (!ctx) return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "fp4_free: ctx is NULL");
    ctx->last_error[0] = 0;
    if (!ptr) return FP4_OK;
    if (ctx->device >= 0) return fp4_cuda_free(ctx, ptr);
    free(ptr);
    return FP4_OK;
}

fp4_status fp4_upload(fp4_ctx *ctx, void *dst, const void *host_src, int64_t bytes) {
    fp4_status st = check_mem_args(ctx, "fp4_upload", dst, "dst", host_src, "host_src", bytes);
    if (st != FP4_OK || bytes == 0) return st;
    if (ctx->device >= 0) return fp4_cuda_upload(ctx, dst, host_src, bytes);
    memmove(dst, host_src, (size_t)bytes);
    return FP4_OK;
}

fp4_status fp4_download(fp4_ctx *ctx, void *host_dst, const void *src, int64_t bytes) {
    fp4_status st = check_mem_args(ctx, "fp4_download", host_dst, "host_dst", src, "src", bytes);
    if (st != FP4_OK || bytes == 0) return st;
    if (ctx->device >= 0) return fp4_cuda_download(ctx, host_dst, src, bytes);
    memmove(host_dst, src, (size_t)bytes);
    return FP4_OK;
}

fp4_status fp4_memset(fp4_ctx *ctx, void *dst, int value, int64_t bytes) {
    fp4_status st = check_mem_args(ctx, "fp4_memset", dst, "dst", NULL, NULL, bytes);
    if (st != FP4_OK || bytes == 0) return st;
    if (ctx->device >= 0) return fp4_cuda_memset(ctx, dst, value, bytes);
    memset(dst, value, (size_t)bytes);
    return FP4_OK;
}

fp4_status fp4_synchronize(fp4_ctx *ctx, struct CUstream_st *stream) {
    if (!ctx) return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "fp4_synchronize: ctx is NULL");
    ctx->last_error[0] = 0;
    if (ctx->device >= 0) return fp4_cuda_synchronize(ctx, stream);
    return FP4_OK;
}

/*
 * cuda_device.cu - devices, contexts and memory on the CUDA side: device count and query,
 * context set-up, allocation, copies, memset and synchronization. None of these is on the
 * hot path: the kernels (quantize.cu, simt/, ...) allocate nothing and never synchronize.
 */
#include "cuda_util.cuh"

#include <stdio.h>
#include <string.h>

/* ---- devices ----------------------------------------------------------------------------- */

extern "C" fp4_status fp4_cuda_device_count(int *count) {
    int n = 0;
    const cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        /* No driver, no device, a driver older than this runtime: all mean "no GPU here".
         * Anything else is worth a warning: a GPU may be there but broken. */
        const int expected = err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver ||
                             err == cudaErrorStubLibrary;
        fp4_log(expected ? FP4_LOG_INFO : FP4_LOG_WARN,
                "cudaGetDeviceCount: %s: using 0 CUDA devices", cudaGetErrorString(err));
        n = 0;
    }
    *count = n;
    return FP4_OK;
}

/* The attribute's value, or 0 if the runtime does not know it. */
static int device_attribute(cudaDeviceAttr attr, int device) {
    int value = 0;
    if (cudaDeviceGetAttribute(&value, attr, device) != cudaSuccess) {
        (void)cudaGetLastError();
        value = 0;
    }
    return value;
}

/* Fills *info for `device`; failures are recorded in ctx (which may be NULL). */
static fp4_status query_device(fp4_ctx *ctx, int device, fp4_device_info *info) {
    int count = 0;
    (void)fp4_cuda_device_count(&count);
    if (device < 0 || device >= count)
        return FP4_FAIL(ctx, FP4_ERR_NO_DEVICE, "CUDA device %d does not exist (%d visible)",
                        device, count);

    cudaDeviceProp prop;
    FP4_CUDA_TRY(ctx, cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");

    memset(info, 0, sizeof(*info));
    info->struct_size = sizeof(*info);
    info->device = device;
    snprintf(info->name, sizeof(info->name), "%s", prop.name);
    info->compute_capability = prop.major * 10 + prop.minor;
    info->sm_count = prop.multiProcessorCount;
    info->l2_bytes = prop.l2CacheSize;
    info->memory_bytes = (int64_t)prop.totalGlobalMem;

    /* NOTE: CUDA 13 dropped cudaDeviceProp::memoryClockRate; the attribute remains. The clock
     * is in kHz and the memory transfers twice per clock (DDR): bytes/s = 2 * clock * bus/8. */
    const int clock_khz = device_attribute(cudaDevAttrMemoryClockRate, device);
    const int bus_bits = device_attribute(cudaDevAttrGlobalMemoryBusWidth, device);
    info->memory_bandwidth_gbs = 2.0 * (double)clock_khz * 1e3 * ((double)bus_bits / 8.0) / 1e9;
    return FP4_OK;
}

extern "C" fp4_status fp4_cuda_device_query(int device, fp4_device_info *info) {
    return query_device(NULL, device, info);
}

/* ---- contexts ---------------------------------------------------------------------------- */

/* cudaSetDevice(ctx->device), reported in ctx. Since CUDA 12 it also initializes the device's
 * primary context, so a device that can't be used fails here. */
static fp4_status select_device(fp4_ctx *ctx) {
    const cudaError_t err = cudaSetDevice(ctx->device);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return FP4_FAIL(ctx, FP4_ERR_CUDA, "cudaSetDevice(%d): %s", ctx->device,
                        cudaGetErrorString(err));
    }
    return FP4_OK;
}

extern "C" fp4_status fp4_cuda_set_device(fp4_ctx *ctx) {
    /* Every call goes through here: when the device is already current (the usual case), only
     * ask, so that a call inside a stream capture changes no state. */
    int current = -1;
    if (cudaGetDevice(&current) == cudaSuccess && current == ctx->device) return FP4_OK;
    (void)cudaGetLastError();
    return select_device(ctx);
}

extern "C" fp4_status fp4_cuda_ctx_init(fp4_ctx *ctx) {
    int count = 0;
    (void)fp4_cuda_device_count(&count);
    if (ctx->device < 0 || ctx->device >= count) {
        if (count == 0)
            return FP4_FAIL(ctx, FP4_ERR_NO_DEVICE,
                            "CUDA device %d requested, but no CUDA device is visible (no GPU, "
                            "no driver, or CUDA_VISIBLE_DEVICES hides them)",
                            ctx->device);
        return FP4_FAIL(ctx, FP4_ERR_NO_DEVICE,
                        "CUDA device %d does not exist: devices 0..%d are visible", ctx->device,
                        count - 1);
    }
    fp4_status st = select_device(ctx);
    if (st != FP4_OK) return st;
    /* the backends' own set-up (cuda_simt's image probe, ...) is their init: src/registry.c */
    return query_device(ctx, ctx->device, &ctx->info);
}

/* ---- memory (synchronous; not on the hot path) --------------------------------------------- */

extern "C" fp4_status fp4_cuda_malloc(fp4_ctx *ctx, void **ptr, int64_t bytes) {
    *ptr = NULL;
    fp4_status st = fp4_cuda_set_device(ctx);
    if (st != FP4_OK) return st;
    void *p = NULL;
    const cudaError_t err = cudaMalloc(&p, (size_t)bytes);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return FP4_FAIL(ctx, fp4_cuda_status(err), "cudaMalloc(%lld bytes): %s",
                        (long long)bytes, cudaGetErrorString(err));
    }
    *ptr = p;
    return FP4_OK;
}

extern "C" fp4_status fp4_cuda_free(fp4_ctx *ctx, void *ptr) {
    if (ptr == NULL) return FP4_OK;
    fp4_status st = fp4_cuda_set_device(ctx);
    if (st != FP4_OK) return st;
    FP4_CUDA_TRY(ctx, cudaFree(ptr), "cudaFree");
    return FP4_OK;
}

/* cudaMemcpy of `kind` on ctx's device, then a wait for the legacy default stream it ran on.
 * NOTE: from pageable host memory, cudaMemcpy may return once the data is staged, before it
 * has reached the device; the wait makes the copy done before work the caller then puts on a
 * non-blocking stream. */
static fp4_status copy_synced(fp4_ctx *ctx, void *dst, const void *src, int64_t bytes,
                              cudaMemcpyKind kind, const char *what) {
    fp4_status st = fp4_cuda_set_device(ctx);
    if (st != FP4_OK) return st;
    FP4_CUDA_TRY(ctx, cudaMemcpy(dst, src, (size_t)bytes, kind), what);
    FP4_CUDA_TRY(ctx, cudaStreamSynchronize(cudaStreamLegacy), what);
    return FP4_OK;
}

extern "C" fp4_status fp4_cuda_upload(fp4_ctx *ctx, void *dst, const void *src, int64_t bytes) {
    return copy_synced(ctx, dst, src, bytes, cudaMemcpyHostToDevice, "cudaMemcpy host to device");
}

extern "C" fp4_status fp4_cuda_copy_device(fp4_ctx *ctx, void *dst, const void *src,
                                           int64_t bytes) {
    return copy_synced(ctx, dst, src, bytes, cudaMemcpyDeviceToDevice,
                       "cudaMemcpy device to device");
}

extern "C" fp4_status fp4_cuda_download(fp4_ctx *ctx, void *dst, const void *src,
                                        int64_t bytes) {
    fp4_status st = fp4_cuda_set_device(ctx);
    if (st != FP4_OK) return st;
    FP4_CUDA_TRY(ctx, cudaMemcpy(dst, src, (size_t)bytes, cudaMemcpyDeviceToHost),
                 "cudaMemcpy device to host");
    return FP4_OK;
}

extern "C" fp4_status fp4_cuda_memset(fp4_ctx *ctx, void *dst, int value, int64_t bytes) {
    fp4_status st = fp4_cuda_set_device(ctx);
    if (st != FP4_OK) return st;
    /* NOTE: cudaMemset on device memory may return before it is done; wait for the legacy
     * default stream it ran on, so that fp4_memset is synchronous like the copies (and
     * ordered before work the caller then puts on a non-blocking stream). */
    FP4_CUDA_TRY(ctx, cudaMemset(dst, value, (size_t)bytes), "cudaMemset");
    FP4_CUDA_TRY(ctx, cudaStreamSynchronize(cudaStreamLegacy),
                 "cudaStreamSynchronize after cudaMemset");
    return FP4_OK;
}

extern "C" fp4_status fp4_cuda_synchronize(fp4_ctx *ctx, struct CUstream_st *stream) {
    fp4_status st = fp4_cuda_set_device(ctx);
    if (st != FP4_OK) return st;
    FP4_CUDA_TRY(ctx, cudaStreamSynchronize(fp4_cuda_stream(stream)), "cudaStreamSynchronize");
    return FP4_OK;
}

cudaError_t fp4_cuda_workspace_alloc(int64_t bytes, int64_t zero_bytes, void **out) {
    *out = nullptr;
    void *ws = nullptr;
    cudaStream_t zero_stream = nullptr;
    cudaError_t err = cudaMalloc(&ws, (size_t)bytes);
    if (err == cudaSuccess) err = cudaStreamCreateWithFlags(&zero_stream, cudaStreamNonBlocking);
    if (err == cudaSuccess) err = cudaMemsetAsync(ws, 0, (size_t)zero_bytes, zero_stream);
    if (err == cudaSuccess) err = cudaStreamSynchronize(zero_stream);
    if (zero_stream) (void)cudaStreamDestroy(zero_stream);
    if (err != cudaSuccess) {
        if (ws) cudaFree(ws);
        (void)cudaGetLastError();
        return err;
    }
    *out = ws;
    return cudaSuccess;
}

void fp4_cuda_workspace_free(void *ws) {
    if (!ws) return;
    cudaFree(ws);
    (void)cudaGetLastError();
}

cudaError_t fp4_cuda_kernel_image(const void *kernel, const char *backend, int cc) {
    cudaFuncAttributes attr;
    const cudaError_t probe = cudaFuncGetAttributes(&attr, kernel);
    (void)cudaGetLastError();
    if (probe != cudaSuccess)
        fp4_log(FP4_LOG_INFO, "%s has no image for sm_%d: %s", backend, cc,
                cudaGetErrorString(probe));
    return probe;
}

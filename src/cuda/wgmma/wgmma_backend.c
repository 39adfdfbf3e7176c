/* wgmma_backend.c - the cuda_wgmma backend's ops table (src/backend.h): its entries, which are in
 * sm90_wgmma_gemm.cu (wgmma.h), seen through the registry's interface. Built in every build; in
 * one without CUDA the backend only says so. */
#include "backend.h"
#include "cuda/wgmma/wgmma.h"

#if defined(FP4GEMM_HAVE_CUDA) && !defined(FP4GEMM_NO_WGMMA)

static fp4_status wgmma_init(fp4_ctx *ctx, void **state) {
    *state = NULL;
    if (ctx->device < 0) return FP4_OK;
    fp4_cuda_wgmma_state *s = NULL;
    const fp4_status st = fp4_cuda_wgmma_init(ctx, &s);
    *state = s;
    return st;
}

static void wgmma_fini(fp4_ctx *ctx, void *state) {
    if (!state) return;
    (void)fp4_cuda_set_device(ctx); /* its workspace is freed on its own device */
    fp4_cuda_wgmma_fini((fp4_cuda_wgmma_state *)state);
}

static const fp4_cuda_wgmma_state *wgmma_state(const fp4_ctx *ctx) {
    return (const fp4_cuda_wgmma_state *)fp4_backend_state(ctx, FP4_BACKEND_CUDA_WGMMA);
}

/* The device alone (no problem, no config); each config's limits: wgmma_config_why_not. */
static const char *wgmma_why_not(const fp4_ctx *ctx, const fp4_gemm_desc *desc, char *buf,
                               size_t len) {
    return fp4_cuda_wgmma_why_not(ctx, wgmma_state(ctx), NULL, -1, buf, len);
}

static const char *wgmma_config_why_not(const fp4_ctx *ctx, const fp4_gemm_desc *desc, int config,
                                      char *buf, size_t len) {
    return fp4_cuda_wgmma_why_not(ctx, wgmma_state(ctx), desc, config, buf, len);
}

static fp4_status wgmma_run(fp4_ctx *ctx, const fp4_gemm_desc *desc, int config) {
    const fp4_status st = fp4_cuda_set_device(ctx);
    if (st != FP4_OK) return st;
    return fp4_cuda_wgmma_gemm(ctx, (fp4_cuda_wgmma_state *)fp4_backend_state(ctx, FP4_BACKEND_CUDA_WGMMA),
                             desc, config);
}

const fp4_backend_ops fp4_cuda_wgmma_ops = {
    FP4_BACKEND_CUDA_WGMMA, "cuda_wgmma", wgmma_init, wgmma_fini, wgmma_why_not,
    fp4_cuda_wgmma_config_count, fp4_cuda_wgmma_config_name, wgmma_config_why_not,
    fp4_cuda_wgmma_default_config, wgmma_run,
};

#else /* built without CUDA (or with a toolkit older than 12.0): nothing to set up or run */

static const char *wgmma_why_not(const fp4_ctx *ctx, const fp4_gemm_desc *desc, char *buf,
                               size_t len) {
    const char *gpu = fp4_needs_cuda_device(ctx, buf, len);
    if (gpu) return gpu;
    return "this build has no sm_90a code (its CUDA toolkit is older than 12.0)";
}

const fp4_backend_ops fp4_cuda_wgmma_ops = {
    FP4_BACKEND_CUDA_WGMMA, "cuda_wgmma", NULL, NULL, wgmma_why_not, NULL, NULL, NULL, NULL, NULL,
};

#endif

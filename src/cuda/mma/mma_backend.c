/* mma_backend.c - the cuda_mma backend's ops table (src/backend.h): its entries, which are in
 * sm80_mma_gemm.cu (mma.h), seen through the registry's interface. Built in every build; in
 * one without CUDA the backend only says so. */
#include "backend.h"
#include "cuda/mma/mma.h"

#ifdef FP4GEMM_HAVE_CUDA

static fp4_status mma_init(fp4_ctx *ctx, void **state) {
    *state = NULL;
    if (ctx->device < 0) return FP4_OK;
    fp4_cuda_mma_state *s = NULL;
    const fp4_status st = fp4_cuda_mma_init(ctx, &s);
    *state = s;
    return st;
}

static void mma_fini(fp4_ctx *ctx, void *state) {
    if (!state) return;
    (void)fp4_cuda_set_device(ctx); /* its workspace is freed on its own device */
    fp4_cuda_mma_fini((fp4_cuda_mma_state *)state);
}

static const fp4_cuda_mma_state *mma_state(const fp4_ctx *ctx) {
    return (const fp4_cuda_mma_state *)fp4_backend_state(ctx, FP4_BACKEND_CUDA_MMA);
}

/* The device alone (no problem, no config); each config's limits: mma_config_why_not. */
static const char *mma_why_not(const fp4_ctx *ctx, const fp4_gemm_desc *desc, char *buf,
                               size_t len) {
    return fp4_cuda_mma_why_not(ctx, mma_state(ctx), NULL, -1, buf, len);
}

static const char *mma_config_why_not(const fp4_ctx *ctx, const fp4_gemm_desc *desc, int config,
                                      char *buf, size_t len) {
    return fp4_cuda_mma_why_not(ctx, mma_state(ctx), desc, config, buf, len);
}

static fp4_status mma_run(fp4_ctx *ctx, const fp4_gemm_desc *desc, int config) {
    const fp4_status st = fp4_cuda_set_device(ctx);
    if (st != FP4_OK) return st;
    return fp4_cuda_mma_gemm(ctx, (fp4_cuda_mma_state *)fp4_backend_state(ctx, FP4_BACKEND_CUDA_MMA),
                             desc, config);
}

const fp4_backend_ops fp4_cuda_mma_ops = {
    FP4_BACKEND_CUDA_MMA, "cuda_mma", mma_init, mma_fini, mma_why_not,
    fp4_cuda_mma_config_count, fp4_cuda_mma_config_name, mma_config_why_not,
    fp4_cuda_mma_default_config, mma_run,
};

#else /* built without CUDA: no configs, nothing to set up or run */

static const char *mma_why_not(const fp4_ctx *ctx, const fp4_gemm_desc *desc, char *buf,
                               size_t len) {
    return fp4_needs_cuda_device(ctx, buf, len);
}

const fp4_backend_ops fp4_cuda_mma_ops = {
    FP4_BACKEND_CUDA_MMA, "cuda_mma", NULL, NULL, mma_why_not, NULL, NULL, NULL, NULL, NULL,
};

#endif

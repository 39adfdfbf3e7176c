/*
 * mma.h - the `cuda_mma` backend (src/cuda/mma/sm80_mma_gemm.cu): NVFP4 GEMM on mma.sync tensor
 * cores, any GPU from sm_80. C-callable; its ops table (mma_backend.c) puts it in the registry.
 *
 * Configs (tactics) are a table of instantiated kernels, each a (tokens per CTA, weight rows
 * per warp) pair; the split-K factor of a launch is chosen per problem from the shape, the SM
 * count and the context's workspace (see make_plan in the .cu).
 */
#ifndef FP4_CUDA_MMA_H
#define FP4_CUDA_MMA_H

#include "internal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Per-context state: whether the kernels have an image for the device, the device's
 * shared-memory limit, and the split-K workspace (allocated once, at context creation). */
typedef struct fp4_cuda_mma_state fp4_cuda_mma_state;

/* Allocates the state and its workspace on ctx's (current) device. FP4_OK with *state NULL
 * when the device is older than sm_80 (nothing to set up). */
fp4_status fp4_cuda_mma_init(fp4_ctx *ctx, fp4_cuda_mma_state **state);
void fp4_cuda_mma_fini(fp4_cuda_mma_state *state); /* accepts NULL */

int fp4_cuda_mma_config_count(void);
/* "m16_r1": tokens per CTA, 16-row weight tiles per warp. NULL for a bad index. */
const char *fp4_cuda_mma_config_name(int config);
/* Why config (or, for -1, every config) can't run desc (or, for NULL, anything) here; NULL if
 * it can. The reason is a static string or buf. */
const char *fp4_cuda_mma_why_not(const fp4_ctx *ctx, const fp4_cuda_mma_state *state,
                                 const fp4_gemm_desc *desc, int config, char *buf, size_t len);
/* The heuristic's config for desc: a pure function of the shape and the device. */
int fp4_cuda_mma_default_config(const fp4_ctx *ctx, const fp4_gemm_desc *desc);
/* Runs a validated, defaulted desc with `config` (-1: the heuristic's) on desc->stream. */
fp4_status fp4_cuda_mma_gemm(fp4_ctx *ctx, fp4_cuda_mma_state *state, const fp4_gemm_desc *desc,
                             int config);

#ifdef __cplusplus
}
#endif
#endif /* FP4_CUDA_MMA_H */

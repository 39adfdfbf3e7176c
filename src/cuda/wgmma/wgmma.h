/*
 * wgmma.h - the `cuda_wgmma` backend (src/cuda/wgmma/sm90_wgmma_gemm.cu): NVFP4 GEMM on Hopper's
 * warpgroup tensor cores (wgmma), TMA and mbarriers; sm_90a only. C-callable; its ops table
 * (wgmma_backend.c) puts it in the registry.
 *
 * Configs (tactics) are a table of instantiated kernels, each a (tokens per CTA, pipeline
 * stages) pair; every CTA owns 128 weight rows.
 */
#ifndef FP4_CUDA_WGMMA_H
#define FP4_CUDA_WGMMA_H

#include "internal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Per-context state: whether the kernels have an image for the device, the driver's
 * tensor-map encoder, and the workspace that holds W4A4 activations decoded to FP16. */
typedef struct fp4_cuda_wgmma_state fp4_cuda_wgmma_state;

/* Sets up the state on ctx's (current) device. FP4_OK with *state NULL when the device is not
 * sm_90 (nothing to set up). */
fp4_status fp4_cuda_wgmma_init(fp4_ctx *ctx, fp4_cuda_wgmma_state **state);
void fp4_cuda_wgmma_fini(fp4_cuda_wgmma_state *state); /* accepts NULL */

int fp4_cuda_wgmma_config_count(void);
/* "n256": tokens per CTA. NULL for a bad index. */
const char *fp4_cuda_wgmma_config_name(int config);
/* Why config (or, for -1, the heuristic's) can't run desc (or, for NULL, anything) here; NULL
 * if it can. The reason is a static string or buf. */
const char *fp4_cuda_wgmma_why_not(const fp4_ctx *ctx, const fp4_cuda_wgmma_state *state,
                                   const fp4_gemm_desc *desc, int config, char *buf, size_t len);
/* The heuristic's config for desc: a pure function of the shape. */
int fp4_cuda_wgmma_default_config(const fp4_ctx *ctx, const fp4_gemm_desc *desc);
/* Runs a validated, defaulted desc with `config` (-1: the heuristic's) on desc->stream. */
fp4_status fp4_cuda_wgmma_gemm(fp4_ctx *ctx, fp4_cuda_wgmma_state *state,
                               const fp4_gemm_desc *desc, int config);

#ifdef __cplusplus
}
#endif
#endif /* FP4_CUDA_WGMMA_H */

/*
 * simt_configs.h - the configs (tactics) of the cuda_simt backend, shared by its predicate
 * (simt_backend.c, C) and its launchers (simt_gemm.cu, simt_gemv.cu), so that each config's
 * shape and launch limits are written once, here, where the configs are enumerated.
 */
#ifndef FP4_SIMT_CONFIGS_H
#define FP4_SIMT_CONFIGS_H

#include "fp4gemm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum simt_config {
    SIMT_TILED = 0,    /* "tiled": sm70_simt_gemm_kernel, 64x64 tiles of D (any M) */
    SIMT_GEMV_MR1 = 1, /* "gemv_mr1": sm70_simt_gemv_kernel, B streamed once per row of A */
    SIMT_GEMV_MR2 = 2, /* "gemv_mr2": ... once per 2 rows of A */
    SIMT_GEMV_MR4 = 3, /* "gemv_mr4": ... once per 4 rows of A */
    SIMT_GEMV_MR8 = 4, /* "gemv_mr8": ... once per 8 rows of A */
    SIMT_CONFIG_COUNT = 5
} simt_config;

/* The tiled kernel: rows of A (and of D) per block; the M tiles go on grid.x. */
#define SIMT_TILE_M 64
/* The small-M kernel: rows of A per block of config c (1, 2, 4, 8); the groups of rows of A
 * go on grid.y. */
#define SIMT_GEMV_ROWS(c) (1 << ((c) - SIMT_GEMV_MR1))
#define SIMT_GEMV_MAX_ROWS 8

/* CUDA's grid limits. */
#define SIMT_GRID_X_MAX 2147483647LL
#define SIMT_GRID_Y_MAX 65535LL

/* Per-context state (made by fp4_cuda_simt_init, src/cuda/simt/simt_gemm.cu). */
typedef struct simt_state {
    int has_image;  /* the kernels have an image (SASS, or PTX to JIT) for this device */
    char why[160];  /* if not: the CUDA error of the probe */
} simt_state;

fp4_status fp4_cuda_simt_init(fp4_ctx *ctx, void **state);
void fp4_cuda_simt_fini(fp4_ctx *ctx, void *state);
/* Runs a validated, defaulted desc with a config that its predicate accepted. */
fp4_status fp4_cuda_simt_run(fp4_ctx *ctx, const fp4_gemm_desc *desc, int config);

#ifdef __cplusplus
}
#endif
#endif /* FP4_SIMT_CONFIGS_H */

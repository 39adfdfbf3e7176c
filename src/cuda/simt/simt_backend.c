/* simt_backend.c - the cuda_simt backend's entries: its configs with their limits, its
 * heuristic, and its predicate. Plain C, built in every build (so that the configs are named
 * even without CUDA); the kernels and their launchers are in simt_gemm.cu and simt_gemv.cu. */
#include "backend.h"
#include "cuda/simt/simt_configs.h"

#include <stdio.h>

static const char *const k_config_names[SIMT_CONFIG_COUNT] = {
    "tiled", "gemv_mr1", "gemv_mr2", "gemv_mr4", "gemv_mr8"};

static int simt_config_count(void) { return SIMT_CONFIG_COUNT; }

static const char *simt_config_name(int config) {
    return config >= 0 && config < SIMT_CONFIG_COUNT ? k_config_names[config] : NULL;
}

static const char *simt_why_not(const fp4_ctx *ctx, const fp4_gemm_desc *desc, char *buf,
                                size_t len) {
    const char *gpu = fp4_needs_cuda_device(ctx, buf, len);
    if (gpu) return gpu;
    const simt_state *state = fp4_backend_state(ctx, FP4_BACKEND_CUDA_SIMT);
    if (!state || !state->has_image) {
        snprintf(buf, len, "no kernel image for sm_%d in this build (built for %s)%s%s",
                 ctx->info.compute_capability, fp4_built_cuda_archs(), state ? ": " : "",
                 state ? state->why : "");
        return buf;
    }
    return NULL;
}

/* Each config's limits: the grid dimension that counts blocks of rows of A. N has no limit
 * (both kernels stride over it), nor have K, the types and the layouts. */
static const char *simt_config_why_not(const fp4_ctx *ctx, const fp4_gemm_desc *desc,
                                       int config, char *buf, size_t len) {
    if (!desc) return NULL;
    if (config == SIMT_TILED) {
        if (desc->m > SIMT_GRID_X_MAX * SIMT_TILE_M) {
            snprintf(buf, len, "tiled: m = %lld is more than 2^31 - 1 tiles of %d rows (grid.x)",
                     (long long)desc->m, SIMT_TILE_M);
            return buf;
        }
        return NULL;
    }
    /* gemv_mr*: blocks of SIMT_GEMV_ROWS rows of A on grid.y. NOTE: any M is correct: each
     * block's rows of A lie in one 32-row slice of the swizzled layout (its first row is a
     * multiple of its row count, which divides 32), which is all its scale offsets assume. */
    const int rows = SIMT_GEMV_ROWS(config);
    if (desc->m > SIMT_GRID_Y_MAX * rows) {
        snprintf(buf, len, "%s: m = %lld is more than 65535 blocks of %d rows (grid.y)",
                 k_config_names[config], (long long)desc->m, rows);
        return buf;
    }
    return NULL;
}

/* The heuristic: a decode-size M (<= 16) streams B once per 1, 2, 4 or 8 rows of A (the
 * fewest that cover M); larger M is a GEMM of tiles. */
static int simt_default_config(const fp4_ctx *ctx, const fp4_gemm_desc *desc) {
    const int64_t m = desc->m;
    if (m <= 1) return SIMT_GEMV_MR1;
    if (m <= 2) return SIMT_GEMV_MR2;
    if (m <= 4) return SIMT_GEMV_MR4;
    if (m <= 16) return SIMT_GEMV_MR8;
    return SIMT_TILED;
}

#ifdef FP4GEMM_HAVE_CUDA
#define SIMT_INIT fp4_cuda_simt_init
#define SIMT_FINI fp4_cuda_simt_fini
#define SIMT_RUN fp4_cuda_simt_run
#else /* the predicate refuses every context: nothing to set up or run */
#define SIMT_INIT NULL
#define SIMT_FINI NULL
#define SIMT_RUN NULL
#endif

const fp4_backend_ops fp4_cuda_simt_ops = {
    FP4_BACKEND_CUDA_SIMT, "cuda_simt", SIMT_INIT, SIMT_FINI, simt_why_not,
    simt_config_count, simt_config_name, simt_config_why_not, simt_default_config,
    SIMT_RUN,
};

/* registry.c - the list of GEMM backends, their per-context state, and the entries of the
 * backends that are named in the public enum but not written yet. */
#include "backend.h"

#include <stdio.h>
#include <string.h>

/* ---- the registry: one line per backend, in the order of the public enum ---------------- */

/* Each backend defines its ops in a C file built in every build (src/cpu/cpu_ref.c,
 * src/cuda/simt/simt_backend.c, src/cuda/mma/mma_backend.c,
 * src/cuda/cublaslt/cublaslt_backend.c); in a build without CUDA the GPU
 * ones have no init or run and their predicate says so. A backend whose table lives in a .cu
 * file instead would be listed as
 *     #ifdef FP4GEMM_HAVE_CUDA
 *         &fp4_cuda_xyz_ops,
 *     #else
 *         &k_cuda_xyz_todo,   (a NOT_YET entry; its predicate says "built without CUDA")
 *     #endif */
extern const fp4_backend_ops fp4_cpu_ref_ops;   /* src/cpu/cpu_ref.c */
extern const fp4_backend_ops fp4_cuda_simt_ops; /* src/cuda/simt/simt_backend.c */
extern const fp4_backend_ops fp4_cuda_mma_ops;  /* src/cuda/mma/mma_backend.c */
extern const fp4_backend_ops fp4_cuda_wgmma_ops; /* src/cuda/wgmma/wgmma_backend.c */
extern const fp4_backend_ops fp4_cublaslt_ops;  /* src/cuda/cublaslt/cublaslt_backend.c */
extern const fp4_backend_ops fp4_cpu_ops;       /* src/cpu/cpu_backend.c */

static const fp4_backend_ops *const k_registry[] = {
    &fp4_cpu_ref_ops,
    &fp4_cuda_simt_ops,
    &fp4_cuda_mma_ops,
    &fp4_cuda_wgmma_ops,
    &fp4_cublaslt_ops,
    &fp4_cpu_ops,
};
enum { REGISTRY_COUNT = (int)(sizeof k_registry / sizeof k_registry[0]) };
_Static_assert(REGISTRY_COUNT == FP4_BACKEND_COUNT - 1, "one registry line per concrete backend");

const fp4_backend_ops *const *fp4_registry(int *count) {
    if (count) *count = REGISTRY_COUNT;
    return k_registry;
}

const fp4_backend_ops *fp4_registry_find(fp4_backend id) {
    for (int i = 0; i < REGISTRY_COUNT; i++)
        if (k_registry[i]->id == id) return k_registry[i];
    return NULL;
}

/* ---- per-context state ------------------------------------------------------------------- */

void fp4_registry_init(fp4_ctx *ctx) {
    for (int i = 0; i < REGISTRY_COUNT; i++) {
        const fp4_backend_ops *ops = k_registry[i];
        if (!ops->init) continue;
        void *state = NULL;
        const fp4_status st = ops->init(ctx, &state);
        if (st == FP4_OK) {
            ctx->backend_state[ops->id] = state;
            continue;
        }
        /* the backend can't run on this context; the others can */
        snprintf(ctx->backend_init_error[ops->id], sizeof ctx->backend_init_error[ops->id],
                 "its set-up on this context failed: %s: %.120s", fp4_status_name(st),
                 ctx->last_error);
        fp4_log(FP4_LOG_WARN, "%s: %s", ops->name, ctx->backend_init_error[ops->id]);
        ctx->last_error[0] = 0;
    }
}

void fp4_registry_fini(fp4_ctx *ctx) {
    for (int i = REGISTRY_COUNT - 1; i >= 0; i--) {
        const fp4_backend_ops *ops = k_registry[i];
        if (ops->fini && !ctx->backend_init_error[ops->id][0])
            ops->fini(ctx, ctx->backend_state[ops->id]);
        ctx->backend_state[ops->id] = NULL;
    }
}

void *fp4_backend_state(const fp4_ctx *ctx, fp4_backend id) {
    return ((int)id > 0 && (int)id < FP4_BACKEND_COUNT) ? ctx->backend_state[id] : NULL;
}

/* ---- predicates -------------------------------------------------------------------------- */

const char *fp4_needs_cuda_device(const fp4_ctx *ctx, char *buf, size_t len) {
    if (ctx->device >= 0) return NULL;
    if (!fp4_built_with_cuda()) return "needs a CUDA device; this fp4gemm was built without CUDA";
    return "needs a CUDA device; this context is on the CPU (device -1)";
}

const char *fp4_tactic_why_not(const fp4_ctx *ctx, const fp4_backend_ops *ops,
                               const fp4_gemm_desc *desc, int config, char *buf, size_t len) {
    if (ctx->backend_init_error[ops->id][0]) return ctx->backend_init_error[ops->id];
    const char *why = ops->why_not(ctx, desc, buf, len);
    if (why) return why;
    if (fp4_config_count(ops) == 0) return NULL;
    if (config < 0) {
        if (!desc) return NULL;
        config = ops->default_config(ctx, desc);
    }
    if (config >= fp4_config_count(ops)) {
        snprintf(buf, len, "%s has no config %d", ops->name, config);
        return buf;
    }
    return ops->config_why_not(ctx, desc, config, buf, len);
}

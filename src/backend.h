/*
 * backend.h - what a GEMM backend is to the library: one ops table per backend, and the
 * registry that lists them (src/registry.c). Not installed.
 *
 * A backend lives in its own folder (src/cpu/, src/cuda/simt/, src/cuda/mma/, ...) and is
 * known to the rest of the library only through its fp4_backend_ops. Adding one is a folder,
 * a line in the registry (src/registry.c) and a line in CMakeLists.txt: dispatch
 * (src/dispatch.c), fp4_gemm, the tactic names and lists, `fp4gemm info` and the GPU test
 * driver all walk the registry. See docs/backends.md.
 *
 * Every entry below sees only descriptors that passed the argument checks of src/api.c and
 * were defaulted (struct_size upgraded to today's, ldd never 0); `desc` may be NULL where
 * said, meaning "judge only the device".
 */
#ifndef FP4_BACKEND_H
#define FP4_BACKEND_H

#include "internal.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fp4_backend_ops {
    fp4_backend id;   /* its value in the public enum */
    const char *name; /* "cuda_simt": the public name, the first part of a tactic's name */

    /* Per-context state: init runs in fp4_create after the device is set up (on every
     * context, CPU included: return FP4_OK with *state NULL when there is nothing to do);
     * fini runs in fp4_destroy. A failing init does not fail fp4_create: the backend is then
     * reported as unable to run on that context, with init's error as the reason. Either may
     * be NULL. */
    fp4_status (*init)(fp4_ctx *ctx, void **state);
    void (*fini)(fp4_ctx *ctx, void *state);

    /* The backend's pure predicate: NULL if it can run desc (NULL: some problem) on ctx, else
     * why not, as a static string or written into buf[len]. No side effects, no logging. */
    const char *(*why_not)(const fp4_ctx *ctx, const fp4_gemm_desc *desc, char *buf,
                           size_t len);

    /* Configs (kernel variants; with the backend, a tactic): numbered 0..config_count-1, in
     * the order fp4_gemm_list_tactics lists them (a backend that runs has at least one:
     * cpu_ref's is "default"; one not written yet has none and run NULL). config_name(i) is
     * the stable lower-case name ("gemv_mr8"). config_why_not says whether config i can run
     * desc (NULL: judge only the device) once why_not has said yes: each config's limits are
     * stated there. */
    int (*config_count)(void); /* NULL: no configs */
    const char *(*config_name)(int config);
    const char *(*config_why_not)(const fp4_ctx *ctx, const fp4_gemm_desc *desc, int config,
                                  char *buf, size_t len);
    /* The heuristic: the config fp4_gemm runs when desc->config is -1 (desc is never NULL). */
    int (*default_config)(const fp4_ctx *ctx, const fp4_gemm_desc *desc);

    /* Runs desc with config (0 <= config < config_count, config_why_not said yes).
     * Asynchronous on desc->stream; no allocation, no logging, no synchronization. */
    fp4_status (*run)(fp4_ctx *ctx, const fp4_gemm_desc *desc, int config);
} fp4_backend_ops;

/* How many configs a backend has (0 for one not written yet). */
static inline int fp4_config_count(const fp4_backend_ops *ops) {
    return ops->config_count ? ops->config_count() : 0;
}

/* ---- the registry (src/registry.c) ------------------------------------------------------ */

/* The backends, in registry order (the order of the public enum); `count` gets how many. */
const fp4_backend_ops *const *fp4_registry(int *count);
/* The ops of a concrete backend, or NULL (AUTO, a bad value). */
const fp4_backend_ops *fp4_registry_find(fp4_backend id);
/* Runs every backend's init on a new context / every fini on a dying one. */
void fp4_registry_init(fp4_ctx *ctx);
void fp4_registry_fini(fp4_ctx *ctx);
/* The state a backend's init made on this context (NULL if none). */
void *fp4_backend_state(const fp4_ctx *ctx, fp4_backend id);

/* ---- helpers for the predicates -------------------------------------------------------- */

/* NULL on a CUDA context; else why a GPU backend can't run here ("built without CUDA", or
 * "this context is on the CPU"). */
const char *fp4_needs_cuda_device(const fp4_ctx *ctx, char *buf, size_t len);

/* The full predicate of (backend, config) for a validated desc (or NULL): init's failure,
 * why_not, then config_why_not when config >= 0 (config -1: the backend alone, or with a
 * desc the config its heuristic picks). NULL if it can run. */
const char *fp4_tactic_why_not(const fp4_ctx *ctx, const fp4_backend_ops *ops,
                               const fp4_gemm_desc *desc, int config, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* FP4_BACKEND_H */

/*
 * cublaslt_backend.c - the `cublaslt` backend: NVFP4 W4A4 on Blackwell's FP4 tensor cores
 * through cuBLASLt (CUDA_R_4F_E2M1 A and B with VEC16_UE4M3 block scales in the swizzled
 * 128x4 layout, FP32 accumulation), plain C over cublasLt.h. Built in every build; without
 * CUDA it only says so.
 *
 * Per context (init, on sm_100 or newer only): a cuBLASLt handle, a workspace of
 * CUBLASLT_WORKSPACE bytes, one device float 0 (beta when alpha is a device pointer), and a
 * cache of plans, one per shape (m, n, k, ldd, output type, alpha by value or pointer): the
 * cuBLASLt descriptors and the heuristic's best algorithms (lt_plan.h).
 *
 * Configs: algo0 .. algo7 = the heuristic's algorithms for the problem, best first (how many
 * there are depends on the shape: config_why_not says). The heuristic config is algo0.
 *
 * NOTE: the first check or run of a shape on a context makes its plan: host work only (no
 * GPU work, no device allocation), but it calls cuBLASLt's heuristic, which is slow (tens of
 * microseconds) and is not meant to run inside a CUDA graph capture. Run (or check, e.g.
 * fp4_backend_check) each shape once before capturing; later calls find the plan and only
 * set the scale pointers and launch. The cache holds CUBLASLT_PLANS shapes (the least
 * recently used is replaced) behind a lock, so fp4_backend_check may run on any thread at any
 * time. The GEMMs of one context share its workspace: their GPU work must not overlap (the
 * rule of cuda_mma's split-K workspace).
 */
#include "backend.h"

#include <stdio.h>

#ifdef FP4GEMM_HAVE_CUDA

#include "cuda/cublaslt/lt_plan.h"

#include <cuda_runtime_api.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* NVIDIA's advice for Hopper and Blackwell GEMMs (cuBLAS docs, cublasSetWorkspace): 32 MiB. */
#define CUBLASLT_WORKSPACE ((size_t)32 << 20)
enum { CUBLASLT_PLANS = 64 };

typedef struct plan_entry {
    int used;
    uint64_t last_use;
    fp4_lt_problem key;
    cublasStatus_t make_status;  /* != SUCCESS: making the descriptors failed */
    const char *make_failed;     /* which call */
    fp4_lt_plan plan;
} plan_entry;

typedef struct cublaslt_state {
    /* NOTE: fp4_backend_check may be called from any thread at any time (fp4gemm.h,
     * "Threads"), and here it makes plans: the cache is behind a spin lock (held for a lookup,
     * or for one heuristic query the first time a shape is seen, and across a launch). */
    atomic_flag lock;
    cublasLtHandle_t lt;
    void *workspace;             /* CUBLASLT_WORKSPACE bytes */
    float *zero;                 /* device float 0 */
    uint64_t clock;
    plan_entry plans[CUBLASLT_PLANS];
} cublaslt_state;

static void lock_plans(cublaslt_state *s) {
    while (atomic_flag_test_and_set_explicit(&s->lock, memory_order_acquire)) {
    }
}

static void unlock_plans(cublaslt_state *s) {
    atomic_flag_clear_explicit(&s->lock, memory_order_release);
}

static void state_free(cublaslt_state *s) {
    if (!s) return;
    for (int i = 0; i < CUBLASLT_PLANS; i++)
        if (s->plans[i].used) fp4_lt_plan_destroy(&s->plans[i].plan);
    if (s->zero) (void)cudaFree(s->zero);
    if (s->workspace) (void)cudaFree(s->workspace);
    if (s->lt) (void)cublasLtDestroy(s->lt);
    free(s);
}

static fp4_status cublaslt_init(fp4_ctx *ctx, void **state) {
    *state = NULL;
    if (ctx->device < 0 || ctx->info.compute_capability < FP4_CC_BLACKWELL || !FP4_LT_HAVE_NVFP4)
        return FP4_OK; /* nothing to set up: why_not says why it can't run */
    cublaslt_state *s = calloc(1, sizeof *s);
    if (!s) return FP4_FAIL(ctx, FP4_ERR_OUT_OF_MEMORY, "cublaslt: no host memory for its state");
    atomic_flag_clear(&s->lock);
    const cublasStatus_t st = cublasLtCreate(&s->lt);
    if (st != CUBLAS_STATUS_SUCCESS) {
        state_free(s);
        return FP4_FAIL(ctx, FP4_ERR_CUDA, "cublasLtCreate: %s", cublasLtGetStatusString(st));
    }
    cudaError_t err = cudaMalloc(&s->workspace, CUBLASLT_WORKSPACE);
    if (err == cudaSuccess) err = cudaMalloc((void **)&s->zero, sizeof(float));
    if (err == cudaSuccess) err = cudaMemset(s->zero, 0, sizeof(float));
    if (err != cudaSuccess) {
        state_free(s);
        (void)cudaGetLastError();
        return FP4_FAIL(ctx, err == cudaErrorMemoryAllocation ? FP4_ERR_OUT_OF_MEMORY : FP4_ERR_CUDA,
                        "cublaslt: allocating its %zu MiB workspace: %s", CUBLASLT_WORKSPACE >> 20,
                        cudaGetErrorString(err));
    }
    *state = s;
    return FP4_OK;
}

static void cublaslt_fini(fp4_ctx *ctx, void *state) {
    if (!state) return;
    (void)fp4_cuda_set_device(ctx); /* its memory is freed on its own device */
    state_free((cublaslt_state *)state);
}

static int same_key(const fp4_lt_problem *a, const fp4_lt_problem *b) {
    return a->m == b->m && a->n == b->n && a->k == b->k && a->ldd == b->ldd &&
           a->d_dtype == b->d_dtype && a->alpha_on_device == b->alpha_on_device &&
           a->in_type == b->in_type && a->block_scaled == b->block_scaled;
}

/* The plan of desc's shape: found, or made now (the heuristic query). NULL only when the
 * problem has no description (the reason in buf). Call with the lock held. */
static plan_entry *plan_for(cublaslt_state *s, const fp4_gemm_desc *desc, char *buf, size_t len) {
    const fp4_lt_problem key = fp4_cublaslt_problem(desc);
    plan_entry *victim = &s->plans[0];
    for (int i = 0; i < CUBLASLT_PLANS; i++) {
        plan_entry *e = &s->plans[i];
        if (e->used && same_key(&e->key, &key)) {
            e->last_use = ++s->clock;
            return e;
        }
        if (!e->used ? victim->used : (victim->used && e->last_use < victim->last_use))
            victim = e;
    }
    fp4_lt_desc ld;
    const char *why = fp4_lt_describe(&key, &ld);
    if (why) {
        snprintf(buf, len, "cuBLASLt can't be given this problem: %s", why);
        return NULL;
    }
    if (victim->used) fp4_lt_plan_destroy(&victim->plan);
    memset(victim, 0, sizeof *victim);
    victim->used = 1;
    victim->last_use = ++s->clock;
    victim->key = key;
    victim->make_status =
        fp4_lt_plan_make(s->lt, &ld, CUBLASLT_WORKSPACE, &victim->plan, &victim->make_failed);
    return victim;
}

static const cublaslt_state *state_of(const fp4_ctx *ctx) {
    return (const cublaslt_state *)fp4_backend_state(ctx, FP4_BACKEND_CUBLASLT);
}

/* The device, the build, then desc's layout rules. */
static const char *cublaslt_why_not(const fp4_ctx *ctx, const fp4_gemm_desc *desc, char *buf,
                                    size_t len) {
    const char *gpu = fp4_needs_cuda_device(ctx, buf, len);
    if (gpu) return gpu;
    const int cc = ctx->info.compute_capability;
    if (cc < FP4_CC_BLACKWELL) {
        snprintf(buf, len,
                 "needs FP4 tensor cores (sm_100 or newer); this device is sm_%d, where cuBLASLt "
                 "has no NVFP4 GEMM",
                 cc);
        return buf;
    }
    if (!FP4_LT_HAVE_NVFP4) {
        snprintf(buf, len, "built with cuBLASLt %d, older than 12.8: no NVFP4 GEMM",
                 (int)CUBLAS_VERSION);
        return buf;
    }
    if (!state_of(ctx)) return "not set up on this context";
    return desc ? fp4_cublaslt_layout_why_not(desc, buf, len) : NULL;
}

static int cublaslt_config_count(void) { return FP4_LT_MAX_ALGOS; }

static const char *cublaslt_config_name(int config) {
    static const char *const names[FP4_LT_MAX_ALGOS] = {"algo0", "algo1", "algo2", "algo3",
                                                        "algo4", "algo5", "algo6", "algo7"};
    return config >= 0 && config < FP4_LT_MAX_ALGOS ? names[config] : NULL;
}

/* Whether the heuristic has an i-th algorithm for desc. The first call for a shape asks it. */
static const char *plan_why_not(const fp4_ctx *ctx, const fp4_gemm_desc *desc,
                                const plan_entry *e, int config, char *buf, size_t len) {
    if (!e) return buf;
    if (e->make_status != CUBLAS_STATUS_SUCCESS) {
        snprintf(buf, len, "making its cuBLASLt descriptors failed: %s: %s", e->make_failed,
                 cublasLtGetStatusString(e->make_status));
        return buf;
    }
    const fp4_lt_plan *p = &e->plan;
    if (p->nalgo == 0) {
        snprintf(buf, len,
                 "cuBLASLt has no NVFP4 algorithm for m=%lld n=%lld k=%lld with %s output, ldd "
                 "%lld, alpha %s on sm_%d (cublasLtMatmulAlgoGetHeuristic: %s, %d results)",
                 (long long)desc->m, (long long)desc->n, (long long)desc->k,
                 fp4_dtype_name(desc->d_dtype), (long long)desc->ldd,
                 desc->alpha_ptr ? "by pointer" : "by value", ctx->info.compute_capability,
                 cublasLtGetStatusString(p->heuristic_status), p->heuristic_returned);
        return buf;
    }
    if (config >= p->nalgo) {
        snprintf(buf, len,
                 "algo%d: cuBLASLt's heuristic gave %d algorithm%s for m=%lld n=%lld k=%lld",
                 config, p->nalgo, p->nalgo == 1 ? "" : "s", (long long)desc->m,
                 (long long)desc->n, (long long)desc->k);
        return buf;
    }
    return NULL;
}

/* Whether the heuristic has an i-th algorithm for desc. The first call for a shape asks it. */
static const char *cublaslt_config_why_not(const fp4_ctx *ctx, const fp4_gemm_desc *desc,
                                           int config, char *buf, size_t len) {
    if (!desc) return NULL;
    cublaslt_state *s = (cublaslt_state *)fp4_backend_state(ctx, FP4_BACKEND_CUBLASLT);
    lock_plans(s);
    const char *why = plan_why_not(ctx, desc, plan_for(s, desc, buf, len), config, buf, len);
    unlock_plans(s);
    return why;
}

static int cublaslt_default_config(const fp4_ctx *ctx, const fp4_gemm_desc *desc) { return 0; }

static fp4_status cublaslt_run(fp4_ctx *ctx, const fp4_gemm_desc *desc, int config) {
    fp4_status fst = fp4_cuda_set_device(ctx);
    if (fst != FP4_OK) return fst;
    cublaslt_state *s = (cublaslt_state *)fp4_backend_state(ctx, FP4_BACKEND_CUBLASLT);
    static const float host_zero = 0.0f;
    const float *alpha = desc->alpha_ptr ? desc->alpha_ptr : &desc->alpha;
    const float *beta = desc->alpha_ptr ? s->zero : &host_zero; /* the pointer mode's */
    const fp4_lt_operands ops = fp4_lt_swap_operands(desc->a, desc->a_sf, desc->b, desc->b_sf,
                                                     desc->d);
    char buf[256];
    lock_plans(s);
    plan_entry *e = plan_for(s, desc, buf, sizeof buf); /* made by the check before */
    const int ready = e && e->make_status == CUBLAS_STATUS_SUCCESS && config < e->plan.nalgo;
    const cublasStatus_t st =
        ready ? fp4_lt_plan_run(s->lt, &e->plan, config, alpha, beta, &ops, s->workspace,
                                CUBLASLT_WORKSPACE, (cudaStream_t)desc->stream)
              : CUBLAS_STATUS_SUCCESS;
    unlock_plans(s);
    if (!ready) return FP4_FAIL(ctx, FP4_ERR_NOT_SUPPORTED, "cublaslt: no plan for this problem");
    if (st != CUBLAS_STATUS_SUCCESS)
        return FP4_FAIL(ctx, st == CUBLAS_STATUS_NOT_SUPPORTED ? FP4_ERR_NOT_SUPPORTED : FP4_ERR_CUDA,
                        "cublasLtMatmul (cublaslt/algo%d, m=%lld n=%lld k=%lld): %s", config,
                        (long long)desc->m, (long long)desc->n, (long long)desc->k,
                        cublasLtGetStatusString(st));
    return FP4_OK;
}

const fp4_backend_ops fp4_cublaslt_ops = {
    FP4_BACKEND_CUBLASLT, "cublaslt", cublaslt_init, cublaslt_fini, cublaslt_why_not,
    cublaslt_config_count, cublaslt_config_name, cublaslt_config_why_not,
    cublaslt_default_config, cublaslt_run,
};

#else /* built without CUDA: no configs, nothing to set up or run */

static const char *cublaslt_why_not(const fp4_ctx *ctx, const fp4_gemm_desc *desc, char *buf,
                                    size_t len) {
    return fp4_needs_cuda_device(ctx, buf, len);
}

const fp4_backend_ops fp4_cublaslt_ops = {
    FP4_BACKEND_CUBLASLT, "cublaslt", NULL, NULL, cublaslt_why_not, NULL, NULL, NULL, NULL, NULL,
};

#endif

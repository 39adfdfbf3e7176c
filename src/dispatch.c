/* dispatch.c - which backend runs a GEMM: the policy table by compute capability, and each
 * backend's "can you run this here, and if not, why" as a pure function. */
#include "cuda/mma/mma.h"
#include "internal.h"

#include <stdio.h>
#include <string.h>

/* The one table of automatic selection. Rows are matched top to bottom; AUTO walks a row's
 * backends in order and takes the first that can run the problem. */
typedef struct policy_row {
    int cc_lo, cc_hi; /* compute capability range, inclusive; 0 = CPU */
    fp4_backend order[4];
    int count;
} policy_row;

static const policy_row k_policy[] = {
    {0, 0, {FP4_BACKEND_CPU_REF}, 1},
    {FP4_CC_BLACKWELL_GEFORCE, 129, {FP4_BACKEND_CUBLASLT, FP4_BACKEND_CUDA_SIMT}, 2},
    {FP4_CC_BLACKWELL, 1000, {FP4_BACKEND_CUBLASLT, FP4_BACKEND_CUDA_SIMT}, 2},
    {FP4_CC_HOPPER, FP4_CC_BLACKWELL - 1,
     {FP4_BACKEND_CUDA_WGMMA, FP4_BACKEND_CUDA_MMA, FP4_BACKEND_CUDA_SIMT}, 3},
    {FP4_CC_AMPERE, FP4_CC_HOPPER - 1, {FP4_BACKEND_CUDA_MMA, FP4_BACKEND_CUDA_SIMT}, 2},
    {1, FP4_CC_AMPERE - 1, {FP4_BACKEND_CUDA_SIMT}, 1},
};

int fp4_backend_policy(int cc, fp4_backend *out, int cap) {
    for (size_t r = 0; r < sizeof k_policy / sizeof k_policy[0]; r++) {
        const policy_row *row = &k_policy[r];
        if (cc < row->cc_lo || cc > row->cc_hi) continue;
        for (int i = 0; i < row->count && i < cap; i++) out[i] = row->order[i];
        return row->count;
    }
    return 0;
}

/* ---- can-run predicates: (device, problem) -> NULL or the reason ---------------------- */

static const char *needs_gpu(const fp4_ctx *ctx, char *buf, size_t len) {
    if (ctx->device >= 0) return NULL;
    if (!fp4_built_with_cuda()) return "needs a CUDA device; this fp4gemm was built without CUDA";
    snprintf(buf, len, "needs a CUDA device; this context is on the CPU (device -1)");
    return buf;
}

const char *fp4_backend_why_not(const fp4_ctx *ctx, fp4_backend backend,
                                const fp4_gemm_desc *desc, char *buf, size_t len) {
    const int cc = ctx->info.compute_capability;
    const char *gpu = NULL;
    switch (backend) {
    case FP4_BACKEND_CPU_REF:
        if (ctx->device < 0) return NULL;
        snprintf(buf, len, "runs on CPU contexts (device -1); this context is on CUDA device %d",
                 ctx->device);
        return buf;
    case FP4_BACKEND_CUDA_SIMT:
        if ((gpu = needs_gpu(ctx, buf, len))) return gpu;
        if (!ctx->simt_runs) {
            snprintf(buf, len, "no kernel image for sm_%d in this build (built for %s)", cc,
                     fp4_built_cuda_archs());
            return buf;
        }
        if (desc && desc->m > (int64_t)0x7FFFFFFF * 64) { /* grid.x counts 64-row tiles */
            snprintf(buf, len, "m = %lld is more than 2^31 - 1 tiles of 64 rows",
                     (long long)desc->m);
            return buf;
        }
        return NULL;
    case FP4_BACKEND_CUDA_MMA:
        if ((gpu = needs_gpu(ctx, buf, len))) return gpu;
        return fp4_cuda_mma_why_not(ctx, ctx->mma_state, desc, -1, buf, len);
    case FP4_BACKEND_CUDA_WGMMA:
        if ((gpu = needs_gpu(ctx, buf, len))) return gpu;
        if (cc < FP4_CC_HOPPER || cc >= FP4_CC_BLACKWELL) {
            snprintf(buf, len, "needs sm_90 (Hopper); this device is sm_%d", cc);
            return buf;
        }
        return "not implemented yet";
    case FP4_BACKEND_CUBLASLT:
        if ((gpu = needs_gpu(ctx, buf, len))) return gpu;
        if (cc < FP4_CC_BLACKWELL) {
            snprintf(buf, len,
                     "needs FP4 tensor cores (sm_100 or newer); this device is sm_%d, where "
                     "cuBLASLt has no NVFP4 GEMM",
                     cc);
            return buf;
        }
        return "not implemented yet";
    case FP4_BACKEND_AUTO: return "auto is not a backend: it chooses one";
    }
    return "unknown backend value";
}

fp4_status fp4_backend_check(const fp4_ctx *ctx, fp4_backend backend, const fp4_gemm_desc *desc,
                             char *why, size_t why_len) {
    char local[256];
    char *buf = (why && why_len) ? why : local;
    const size_t len = (why && why_len) ? why_len : sizeof local;
    buf[0] = 0;
    if (!ctx) {
        snprintf(buf, len, "ctx is NULL");
        return FP4_ERR_INVALID_ARGUMENT;
    }
    if ((int)backend <= FP4_BACKEND_AUTO || (int)backend >= FP4_BACKEND_COUNT) {
        snprintf(buf, len, "backend = %d is not a concrete backend (auto chooses one)",
                 (int)backend);
        return FP4_ERR_INVALID_ARGUMENT;
    }
    if (desc) {
        const char *bad = fp4_gemm_desc_problem(desc, buf, len);
        if (bad) {
            if (bad != buf) snprintf(buf, len, "%s", bad);
            return FP4_ERR_INVALID_ARGUMENT;
        }
    }
    const char *reason = fp4_backend_why_not(ctx, backend, desc, buf, len);
    if (!reason) {
        buf[0] = 0;
        return FP4_OK;
    }
    if (reason != buf) snprintf(buf, len, "%s", reason);
    return FP4_ERR_NOT_SUPPORTED;
}

/* What AUTO runs for an already validated desc (or NULL): no argument checks and no message
 * formatting unless nothing can run, since fp4_gemm calls this on every AUTO GEMM. */
fp4_status fp4_select_backend_validated(fp4_ctx *ctx, const fp4_gemm_desc *desc,
                                        fp4_backend *out) {
    char why[256];
    if (ctx->env_backend != FP4_BACKEND_AUTO) {
        const char *reason = fp4_backend_why_not(ctx, ctx->env_backend, desc, why, sizeof why);
        if (reason)
            return FP4_FAIL(ctx, FP4_ERR_NOT_SUPPORTED, "FP4GEMM_BACKEND=%s: %s",
                            fp4_backend_name(ctx->env_backend), reason);
        *out = ctx->env_backend;
        return FP4_OK;
    }
    fp4_backend order[8];
    const int count = fp4_backend_policy(ctx->info.compute_capability, order, 8);
    for (int i = 0; i < count && i < 8; i++) {
        const char *reason = fp4_backend_why_not(ctx, order[i], desc, why, sizeof why);
        if (!reason) {
            *out = order[i];
            return FP4_OK;
        }
        fp4_log(FP4_LOG_INFO, "auto: skipping %s: %s", fp4_backend_name(order[i]), reason);
    }
    // nothing can run: say why for each
    char tried[768] = "";
    size_t used = 0;
    for (int i = 0; i < count && i < 8 && used < sizeof tried; i++) {
        const int n = snprintf(tried + used, sizeof tried - used, "%s%s: %s", used ? "; " : "",
                               fp4_backend_name(order[i]),
                               fp4_backend_why_not(ctx, order[i], desc, why, sizeof why));
        if (n > 0) used += (size_t)n;
    }
    return FP4_FAIL(ctx, FP4_ERR_NOT_SUPPORTED, "no backend can run this problem here (%s)",
                    count ? tried : "no policy for this device");
}

fp4_status fp4_gemm_select_backend(fp4_ctx *ctx, const fp4_gemm_desc *desc, fp4_backend *out) {
    if (!ctx) return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "fp4_gemm_select_backend: ctx is NULL");
    ctx->last_error[0] = 0;
    if (!out) return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "fp4_gemm_select_backend: out is NULL");
    char why[512];
    if (desc && fp4_gemm_desc_problem(desc, why, sizeof why))
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "fp4_gemm_select_backend: %s", why);
    return fp4_select_backend_validated(ctx, desc, out);
}

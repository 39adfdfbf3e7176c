/* dispatch.c - which tactic (backend, config) runs a GEMM: the policy table by compute
 * capability, the FP4GEMM_BACKEND override, and the public calls that check, list and select
 * tactics. The backends themselves are reached through their ops (src/registry.c). */
#include "backend.h"
#include "tune/tuning.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the policy ------------------------------------------------------------------------ */

/* The one table of automatic selection. Rows are matched top to bottom; AUTO walks a row's
 * backends in order and takes the first whose heuristic config can run the problem. A row may
 * name a backend that goes first for small M (decode sizes): on Hopper, cuda_mma (mma.sync,
 * split-K) beats cuda_wgmma's 128 x 64+ token tiles up to `small_m_max` tokens (docs/PERF.md,
 * measured on an H200). fp4_backend_policy reports the order for larger M. */
typedef struct policy_row {
    int cc_lo, cc_hi; /* compute capability range, inclusive; 0 = CPU */
    fp4_backend order[4];
    int count;
    int64_t small_m_max;      /* 0: no small-M rule */
    fp4_backend small_m_first; /* goes first when m <= small_m_max */
} policy_row;

static const policy_row k_policy[] = {
    {0, 0, {FP4_BACKEND_CPU, FP4_BACKEND_CPU_REF}, 2, 0, FP4_BACKEND_AUTO},
    {FP4_CC_BLACKWELL_GEFORCE, 129,
     {FP4_BACKEND_CUBLASLT, FP4_BACKEND_CUDA_MMA, FP4_BACKEND_CUDA_SIMT}, 3, 0, FP4_BACKEND_AUTO},
    {FP4_CC_BLACKWELL, 1000, {FP4_BACKEND_CUBLASLT, FP4_BACKEND_CUDA_MMA, FP4_BACKEND_CUDA_SIMT}, 3,
     0, FP4_BACKEND_AUTO},
    {FP4_CC_HOPPER, FP4_CC_BLACKWELL - 1,
     {FP4_BACKEND_CUDA_WGMMA, FP4_BACKEND_CUDA_MMA, FP4_BACKEND_CUDA_SIMT}, 3, 32,
     FP4_BACKEND_CUDA_MMA},
    {FP4_CC_AMPERE, FP4_CC_HOPPER - 1, {FP4_BACKEND_CUDA_MMA, FP4_BACKEND_CUDA_SIMT}, 2, 0,
     FP4_BACKEND_AUTO},
    {1, FP4_CC_AMPERE - 1, {FP4_BACKEND_CUDA_SIMT}, 1, 0, FP4_BACKEND_AUTO},
};

static const policy_row *policy_for(int cc) {
    for (size_t r = 0; r < sizeof k_policy / sizeof k_policy[0]; r++)
        if (cc >= k_policy[r].cc_lo && cc <= k_policy[r].cc_hi) return &k_policy[r];
    return NULL;
}

int fp4_backend_policy(int cc, fp4_backend *out, int cap) {
    const policy_row *row = policy_for(cc);
    if (!row) return 0;
    for (int i = 0; i < row->count && i < cap; i++) out[i] = row->order[i];
    return row->count;
}

enum { MAX_OPS = 16 };

/* The ops AUTO walks on ctx for desc (NULL: a large problem), in order (backends the registry
 * lacks are left out). */
static int policy_ops(const fp4_ctx *ctx, const fp4_gemm_desc *desc,
                      const fp4_backend_ops **out) {
    const policy_row *row = policy_for(ctx->info.compute_capability);
    if (!row) return 0;
    fp4_backend order[MAX_OPS];
    int n = 0;
    const int small = desc && row->small_m_max > 0 && desc->m <= row->small_m_max;
    if (small) order[n++] = row->small_m_first;
    for (int i = 0; i < row->count && n < MAX_OPS; i++)
        if (!small || row->order[i] != row->small_m_first) order[n++] = row->order[i];
    int count = 0;
    for (int i = 0; i < n; i++) {
        const fp4_backend_ops *ops = fp4_registry_find(order[i]);
        if (ops) out[count++] = ops;
    }
    return count;
}

/* ---- FP4GEMM_BACKEND ---------------------------------------------------------------------- */

/* Reported once per process: every context reads the same variable. */
static _Atomic int g_env_reported;

void fp4_read_env_backend(fp4_ctx *ctx) {
    ctx->env_tactic.backend = FP4_BACKEND_AUTO;
    ctx->env_tactic.config = -1;
    ctx->env_problem[0] = 0;
    const char *env = getenv("FP4GEMM_BACKEND");
    if (!env || !*env) return;
    fp4_tactic t;
    char why[900];
    if (fp4_parse_tactic(env, &t, why, sizeof why) == FP4_OK) {
        ctx->env_tactic = t;
        return;
    }
    /* not fatal: quantizing, explicit backends and everything else still work; only a GEMM
     * that leaves the choice to auto fails, saying this */
    snprintf(ctx->env_problem, sizeof ctx->env_problem, "FP4GEMM_BACKEND=%.60s: %.680s", env,
             why);
    if (!g_env_reported++)
        fp4_log(FP4_LOG_WARN, "%s; auto GEMMs will fail until it is fixed or unset",
                ctx->env_problem);
}

/* ---- checks --------------------------------------------------------------------------------- */

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
    const fp4_backend_ops *ops = fp4_registry_find(backend);
    if (!ops) {
        snprintf(buf, len, "backend = %d is not a concrete backend (auto chooses one)",
                 (int)backend);
        return FP4_ERR_INVALID_ARGUMENT;
    }
    fp4_gemm_desc d;
    int config = -1;
    if (desc) {
        const char *bad = fp4_gemm_desc_prepare(desc, &d, buf, len);
        if (bad) {
            if (bad != buf) snprintf(buf, len, "%s", bad);
            return FP4_ERR_INVALID_ARGUMENT;
        }
        if (d.backend == backend) config = d.config;
    }
    const char *reason = fp4_tactic_why_not(ctx, ops, desc ? &d : NULL, config, buf, len);
    if (!reason) {
        buf[0] = 0;
        return FP4_OK;
    }
    if (reason != buf) snprintf(buf, len, "%s", reason);
    return FP4_ERR_NOT_SUPPORTED;
}

/* ---- resolving a tactic ------------------------------------------------------------------- */

/* Appends to why[len] at *used (a no-op without why). */
static void say(char *why, size_t len, size_t *used, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static void say(char *why, size_t len, size_t *used, const char *fmt, ...) {
    if (!why || *used >= len) return;
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(why + *used, len - *used, fmt, ap);
    va_end(ap);
    if (n > 0) *used += (size_t)n < len - *used ? (size_t)n : len - *used - 1;
}

/* Records a failure in ctx and, with why, copies its message there. */
#define RESOLVE_FAIL(status, ...)                                                 \
    do {                                                                          \
        const fp4_status st_ = FP4_FAIL(ctx, (status), __VA_ARGS__);             \
        if (why) snprintf(why, why_len, "%s", ctx->last_error);                   \
        return st_;                                                               \
    } while (0)

/* The tuned table's tactic for d's bucket, if there is one and it can run d: 1 with *ops and
 * *config set. No allocation, no logging; formatting only with why. */
static int tuned_tactic(fp4_ctx *ctx, const fp4_gemm_desc *d, const fp4_backend_ops **ops,
                        int *config, char *why, size_t why_len, size_t *used) {
    fp4_tuning_key key;
    fp4_tuning_key_of(d, &key);
    const fp4_tuning_slot *slot = fp4_tuning_find(&ctx->tuning, &key);
    if (!slot) return 0;
    if (slot->tactic.backend == FP4_BACKEND_AUTO) { /* first-use tuning found nothing */
        if (why)
            say(why, why_len, used, "tuned entry for bucket m <= %lld: none (tuning found no "
                "verified tactic); ", (long long)key.m_bucket);
        return 0;
    }
    const fp4_backend_ops *o = fp4_registry_find(slot->tactic.backend);
    char buf[256];
    const char *reason = o ? fp4_tactic_why_not(ctx, o, d, slot->tactic.config, buf, sizeof buf)
                           : "no such backend";
    if (reason) { /* e.g. a config limited to smaller m than the bucket's top */
        if (why && o && slot->tactic.config >= 0)
            say(why, why_len, used, "tuned entry for bucket m <= %lld: %s/%s can't run it (%s); ",
                (long long)key.m_bucket, o->name, o->config_name(slot->tactic.config), reason);
        return 0;
    }
    *ops = o;
    *config = slot->tactic.config;
    if (why)
        say(why, why_len, used, "tuned: bucket m <= %lld, n = %lld, k = %lld: %s%s%s (%.2f us)",
            (long long)key.m_bucket, (long long)d->n, (long long)d->k, o->name,
            *config >= 0 ? "/" : "", *config >= 0 ? o->config_name(*config) : "", slot->us);
    return 1;
}

fp4_status fp4_resolve_tactic(fp4_ctx *ctx, const fp4_gemm_desc *d, fp4_tactic *out, char *why,
                              size_t why_len) {
    char buf[256];
    size_t used = 0;
    if (why && why_len) why[0] = 0;
    if (why && !why_len) why = NULL;
    const fp4_backend_ops *ops = NULL;
    int config = -1;

    if (d && d->backend != FP4_BACKEND_AUTO) {
        // 1. the descriptor's explicit backend (and config): that or an error
        ops = fp4_registry_find(d->backend);
        config = d->config;
        const char *reason = fp4_tactic_why_not(ctx, ops, d, config, buf, sizeof buf);
        if (reason) {
            if (config >= 0)
                RESOLVE_FAIL(FP4_ERR_NOT_SUPPORTED, "tactic %s/%s can't run this problem: %s",
                             ops->name, ops->config_name(config), reason);
            RESOLVE_FAIL(FP4_ERR_NOT_SUPPORTED, "backend %s can't run this problem: %s",
                         ops->name, reason);
        }
        say(why, why_len, &used, "explicit: desc->backend = %s", ops->name);
        if (config >= 0) say(why, why_len, &used, ", desc->config = %s", ops->config_name(config));
        if (ctx->env_problem[0] || ctx->env_tactic.backend != FP4_BACKEND_AUTO)
            say(why, why_len, &used, " (FP4GEMM_BACKEND ignored: the descriptor names a backend)");
    } else if (ctx->env_problem[0]) {
        // 2. FP4GEMM_BACKEND: not understood, and auto needs it
        RESOLVE_FAIL(FP4_ERR_INVALID_ARGUMENT, "%s", ctx->env_problem);
    } else if (ctx->env_tactic.backend != FP4_BACKEND_AUTO) {
        // 2. FP4GEMM_BACKEND names a backend or a tactic: that or an error
        ops = fp4_registry_find(ctx->env_tactic.backend);
        config = ctx->env_tactic.config;
        const char *reason = fp4_tactic_why_not(ctx, ops, d, config, buf, sizeof buf);
        if (reason)
            RESOLVE_FAIL(FP4_ERR_NOT_SUPPORTED, "FP4GEMM_BACKEND=%s%s%s: %s", ops->name,
                         config >= 0 ? "/" : "", config >= 0 ? ops->config_name(config) : "",
                         reason);
        say(why, why_len, &used, "FP4GEMM_BACKEND=%s%s%s", ops->name, config >= 0 ? "/" : "",
            config >= 0 ? ops->config_name(config) : "");
    } else if (d && ctx->tuning.count && tuned_tactic(ctx, d, &ops, &config, why, why_len, &used)) {
        // 3. auto, and the tuned table has an entry for this bucket that can run the problem
    } else {
        // 4. auto: the first backend of the policy that can run the problem
        const fp4_backend_ops *order[MAX_OPS];
        const int count = policy_ops(ctx, d, order);
        int i = 0;
        for (; i < count; i++)
            if (!fp4_tactic_why_not(ctx, order[i], d, -1, buf, sizeof buf)) break;
        if (i == count || why) {
            // say why each earlier backend was skipped (or, if none can run, every one)
            char tried[768] = "";
            size_t t = 0;
            for (int j = 0; j < (i == count ? count : i); j++)
                say(tried, sizeof tried, &t, "%s%s: %s", j ? "; " : "", order[j]->name,
                    fp4_tactic_why_not(ctx, order[j], d, -1, buf, sizeof buf));
            if (i == count)
                RESOLVE_FAIL(FP4_ERR_NOT_SUPPORTED, "no backend can run this problem here (%s)",
                             count ? tried : "no policy for this device");
            char device[32] = "the CPU";
            if (ctx->device >= 0)
                snprintf(device, sizeof device, "sm_%d", ctx->info.compute_capability);
            say(why, why_len, &used, "auto: policy for %s%s%s%s, first that can run: %s", device,
                t ? " (" : "", tried, t ? ")" : "", order[i]->name);
        }
        ops = order[i];
    }

    // the config: the one asked for, else the backend's heuristic for this problem
    if (config < 0 && d && fp4_config_count(ops) > 0) {
        config = ops->default_config(ctx, d);
        say(why, why_len, &used, "; %s heuristic for m = %lld: %s", ops->name, (long long)d->m,
            ops->config_name(config));
    } else if (config < 0 && fp4_config_count(ops) > 0) {
        say(why, why_len, &used, "; config chosen per problem by the %s heuristic", ops->name);
    }
    out->backend = ops->id;
    out->config = config;
    return FP4_OK;
}

/* ---- public calls ----------------------------------------------------------------------- */

fp4_status fp4_gemm_select(fp4_ctx *ctx, const fp4_gemm_desc *desc, fp4_tactic *out, char *why,
                           size_t why_len) {
    if (why && why_len) why[0] = 0;
    if (!ctx) {
        if (why && why_len) snprintf(why, why_len, "fp4_gemm_select: ctx is NULL");
        return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "fp4_gemm_select: ctx is NULL");
    }
    ctx->last_error[0] = 0;
    fp4_status st = FP4_OK;
    char buf[512];
    fp4_gemm_desc d;
    if (!out)
        st = FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "fp4_gemm_select: out is NULL");
    else if (desc && fp4_gemm_desc_prepare(desc, &d, buf, sizeof buf))
        st = FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "fp4_gemm_select: %s", buf);
    if (st != FP4_OK) {
        if (why && why_len) snprintf(why, why_len, "%s", ctx->last_error);
        return st;
    }
    fp4_tactic t;
    st = fp4_resolve_tactic(ctx, desc ? &d : NULL, &t, why, why_len);
    if (st == FP4_OK) *out = t;
    return st;
}

fp4_status fp4_gemm_select_backend(fp4_ctx *ctx, const fp4_gemm_desc *desc, fp4_backend *out) {
    if (!ctx) return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "fp4_gemm_select_backend: ctx is NULL");
    ctx->last_error[0] = 0;
    if (!out) return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "fp4_gemm_select_backend: out is NULL");
    char why[512];
    fp4_gemm_desc d;
    if (desc && fp4_gemm_desc_prepare(desc, &d, why, sizeof why))
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "fp4_gemm_select_backend: %s", why);
    if (desc) { /* what AUTO would run, whatever the descriptor names */
        d.backend = FP4_BACKEND_AUTO;
        d.config = -1;
    }
    fp4_tactic t;
    const fp4_status st = fp4_resolve_tactic(ctx, desc ? &d : NULL, &t, NULL, 0);
    if (st == FP4_OK) *out = t.backend;
    return st;
}

fp4_status fp4_gemm_list_tactics(fp4_ctx *ctx, const fp4_gemm_desc *desc, fp4_tactic *out,
                                 int cap, int *count) {
    const char *fn = "fp4_gemm_list_tactics";
    if (!ctx) return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "%s: ctx is NULL", fn);
    ctx->last_error[0] = 0;
    if (!count) return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "%s: count is NULL", fn);
    if (cap < 0) return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "%s: cap = %d is negative", fn, cap);
    if (!out && cap > 0)
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "%s: out is NULL with cap = %d", fn, cap);
    char buf[512];
    fp4_gemm_desc d;
    if (desc && fp4_gemm_desc_prepare(desc, &d, buf, sizeof buf))
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "%s: %s", fn, buf);

    // the policy's backends first, then the rest of the registry
    const fp4_backend_ops *order[MAX_OPS];
    int nops = policy_ops(ctx, desc ? &d : NULL, order);
    int nreg = 0;
    const fp4_backend_ops *const *reg = fp4_registry(&nreg);
    for (int r = 0; r < nreg; r++) {
        int listed = 0;
        for (int i = 0; i < nops; i++) listed |= order[i] == reg[r];
        if (!listed && nops < MAX_OPS) order[nops++] = reg[r];
    }
    int n = 0;
    for (int i = 0; i < nops; i++) {
        const fp4_backend_ops *ops = order[i];
        for (int c = 0; c < fp4_config_count(ops); c++) {
            if (fp4_tactic_why_not(ctx, ops, desc ? &d : NULL, c, buf, sizeof buf)) continue;
            if (n < cap) {
                out[n].backend = ops->id;
                out[n].config = c;
            }
            n++;
        }
    }
    *count = n;
    return FP4_OK;
}

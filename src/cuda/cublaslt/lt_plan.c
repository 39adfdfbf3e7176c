/* lt_plan.c - applies a cuBLASLt description (lt_plan.h) to cuBLASLt's handles, asks the
 * heuristic, and launches. The thin layer over cublasLt.h: every value comes from the
 * description, which tests/test_cublaslt_desc.c checks. */
#include "cuda/cublaslt/lt_plan.h"

#include <string.h>

void fp4_lt_plan_destroy(fp4_lt_plan *p) {
    if (p->lc) (void)cublasLtMatrixLayoutDestroy(p->lc);
    if (p->lb) (void)cublasLtMatrixLayoutDestroy(p->lb);
    if (p->la) (void)cublasLtMatrixLayoutDestroy(p->la);
    if (p->op) (void)cublasLtMatmulDescDestroy(p->op);
    memset(p, 0, sizeof *p);
}

#define LT_TRY(call)                                                                          \
    do {                                                                                      \
        st = (call);                                                                          \
        if (st != CUBLAS_STATUS_SUCCESS) {                                                    \
            *failed = #call;                                                                  \
            goto fail;                                                                        \
        }                                                                                     \
    } while (0)

static cublasStatus_t set_op(cublasLtMatmulDesc_t op, cublasLtMatmulDescAttributes_t attr,
                             const void *value, size_t size) {
    return cublasLtMatmulDescSetAttribute(op, attr, value, size);
}

cublasStatus_t fp4_lt_plan_make(cublasLtHandle_t lt, const fp4_lt_desc *desc,
                                size_t max_workspace, fp4_lt_plan *p, const char **failed) {
    memset(p, 0, sizeof *p);
    p->desc = *desc;
    const fp4_lt_desc *d = &p->desc;
    const int32_t pointer_mode = (int32_t)d->pointer_mode;
    cublasLtMatmulPreference_t pref = NULL;
    cublasStatus_t st = CUBLAS_STATUS_SUCCESS;
    const char *unused = NULL;
    if (!failed) failed = &unused;

    LT_TRY(cublasLtMatmulDescCreate(&p->op, d->compute_type, d->scale_type));
    LT_TRY(set_op(p->op, CUBLASLT_MATMUL_DESC_POINTER_MODE, &pointer_mode, sizeof pointer_mode));
    LT_TRY(set_op(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &d->transa, sizeof d->transa));
    LT_TRY(set_op(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &d->transb, sizeof d->transb));
#if FP4_LT_HAVE_NVFP4
    if (d->set_scale_modes) {
        const int32_t a_mode = (int32_t)d->a_scale_mode, b_mode = (int32_t)d->b_scale_mode;
        LT_TRY(set_op(p->op, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &a_mode, sizeof a_mode));
        LT_TRY(set_op(p->op, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &b_mode, sizeof b_mode));
    }
#endif
    LT_TRY(cublasLtMatrixLayoutCreate(&p->la, d->a.type, d->a.rows, d->a.cols, d->a.ld));
    LT_TRY(cublasLtMatrixLayoutCreate(&p->lb, d->b.type, d->b.rows, d->b.cols, d->b.ld));
    LT_TRY(cublasLtMatrixLayoutCreate(&p->lc, d->d.type, d->d.rows, d->d.cols, d->d.ld));

    // the heuristic: its best algorithms that fit the workspace, best first
    LT_TRY(cublasLtMatmulPreferenceCreate(&pref));
    const uint64_t max_ws = (uint64_t)max_workspace;
    LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                &max_ws, sizeof max_ws));
    cublasLtMatmulHeuristicResult_t results[FP4_LT_MAX_ALGOS];
    memset(results, 0, sizeof results);
    int count = 0;
    // NOTE: "no algorithm" is an answer, not a failure: the plan is kept with nalgo = 0
    p->heuristic_status = cublasLtMatmulAlgoGetHeuristic(lt, p->op, p->la, p->lb, p->lc, p->lc,
                                                         pref, FP4_LT_MAX_ALGOS, results, &count);
    (void)cublasLtMatmulPreferenceDestroy(pref);
    pref = NULL;
    p->heuristic_returned = count;
    for (int i = 0; p->heuristic_status == CUBLAS_STATUS_SUCCESS && i < count &&
                    i < FP4_LT_MAX_ALGOS; i++) {
        if (results[i].state != CUBLAS_STATUS_SUCCESS) continue;
        p->algo[p->nalgo] = results[i].algo;
        p->algo_workspace[p->nalgo] = results[i].workspaceSize;
        p->nalgo++;
    }
    if (p->heuristic_status == CUBLAS_STATUS_SUCCESS && p->nalgo == 0 && count > 0)
        p->heuristic_status = results[0].state; /* every result refused: say why */
    return CUBLAS_STATUS_SUCCESS;

fail:
    if (pref) (void)cublasLtMatmulPreferenceDestroy(pref);
    fp4_lt_plan_destroy(p);
    return st;
}

cublasStatus_t fp4_lt_plan_run(cublasLtHandle_t lt, fp4_lt_plan *p, int algo, const float *alpha,
                               const float *beta, const fp4_lt_operands *ops, void *workspace,
                               size_t workspace_bytes, cudaStream_t stream) {
    if (algo < 0 || algo >= p->nalgo || p->algo_workspace[algo] > workspace_bytes)
        return CUBLAS_STATUS_INVALID_VALUE;
    cublasStatus_t st;
    // the scale pointers are per call: set them on the plan's descriptor (a host-side store)
    if (ops->a_scale || ops->b_scale) {
        st = cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                                            &ops->a_scale, sizeof ops->a_scale);
        if (st != CUBLAS_STATUS_SUCCESS) return st;
        st = cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                                            &ops->b_scale, sizeof ops->b_scale);
        if (st != CUBLAS_STATUS_SUCCESS) return st;
    }
    return cublasLtMatmul(lt, p->op, alpha, ops->a, p->la, ops->b, p->lb, beta, ops->c, p->lc,
                          ops->d, p->lc, &p->algo[algo], workspace, p->algo_workspace[algo],
                          stream);
}

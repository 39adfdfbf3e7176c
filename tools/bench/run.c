/*
 * run.c - one point of `fp4gemm bench`, provider by provider: can it run here (a backend's
 * limits, a cuBLASLt algorithm)? is it correct (D poisoned, one launch, the library's
 * fp4_gemm_verify)? how fast (the library's fp4_measure over the rotated input sets)? A wrong
 * provider is FAILED and not timed; one too slow for the budget is SKIPPED here and at larger
 * M of the same (N, K). With --rounds R the providers timed in round 0 are timed R - 1 times
 * more, in turn, the order reversed every odd round; a row is its median round.
 */
#include "bench_cuda.h"
#include "cli_util.h"
#include "format.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- providers --------------------------------------------------------------------------- */

static void fp4_desc(const bench_cuda *bc, const operands *o, fp4_backend backend, int config,
                     int set, fp4_gemm_desc *d) {
    fp4_gemm_desc_init(d);
    d->m = o->m;
    d->n = o->n;
    d->k = o->k;
    d->a_dtype = FP4_DTYPE_E2M1;
    d->a = a_q(o, set);
    d->a_sf = a_sf(o, set);
    d->a_sf_layout = FP4_SF_SWIZZLED_128x4;
    d->b = b_q(o, set);
    d->b_sf = b_sf(o, set);
    d->b_sf_layout = FP4_SF_SWIZZLED_128x4;
    d->d_dtype = o->out_dtype;
    d->d = o->d;
    d->ldd = o->n;
    d->alpha = o->alpha;
    d->backend = backend;
    d->config = config;
    d->stream = bc->stream;
}

/* One GEMM of provider p on input set `set`, enqueued on the stream. */
static int launch(bench_cuda *bc, operands *o, const bench_provider *p, int set,
                  char *why) {
    switch (p->kind) {
    case BENCH_KIND_FP4: {
        fp4_gemm_desc d;
        fp4_desc(bc, o, p->backend, p->config, set, &d);
        TRY_FP4(bc->ctx, fp4_gemm(bc->ctx, &d), "fp4_gemm");
        return 0;
    }
    case BENCH_KIND_CUBLAS_BF16:
        return lt_run(bc, &o->plan_bf16, o->alpha, a_bf(o, set), NULL, b_bf(o, set), NULL, o->d,
                      why);
    case BENCH_KIND_CUBLAS_FP8:
        return lt_run(bc, &o->plan_fp8, o->alpha, a_f8(o, set),
                      (const float *)(bc->small + SMALL_F8_SCALE), b_f8(o, set),
                      (const float *)(bc->small + SMALL_F8_SCALE + 16), o->d, why);
    case BENCH_KIND_DEQUANT_CUBLAS: {
        uint16_t *a = o->scratch, *b = o->scratch + o->m * o->k; /* [m,k] and [n,k] BF16 */
        for (int which = 0; which < 2; which++) {
            fp4_dequant_desc dq;
            fp4_dequant_desc_init(&dq);
            dq.rows = which ? o->n : o->m;
            dq.k = o->k;
            dq.q = which ? b_q(o, set) : a_q(o, set);
            dq.sf = which ? b_sf(o, set) : a_sf(o, set);
            dq.sf_layout = FP4_SF_SWIZZLED_128x4;
            dq.global_scale = 1.0f;
            dq.out_dtype = FP4_DTYPE_BF16;
            dq.out = which ? b : a;
            dq.ld_out = o->k;
            dq.stream = bc->stream;
            TRY_FP4(bc->ctx, fp4_dequantize(bc->ctx, &dq), "fp4_dequantize");
        }
        return lt_run(bc, &o->plan_bf16, o->alpha, a, NULL, b, NULL, o->d, why);
    }
    case BENCH_KIND_CUBLASLT_FP4:
        return lt_run(bc, &o->plan_fp4, o->alpha, a_q(o, set), a_sf(o, set), b_q(o, set),
                      b_sf(o, set), o->d, why);
    case BENCH_KIND_OPENBLAS_F32:
        break; /* a CPU provider (cpu.c): never in a GPU run */
    }
    snprintf(why, WHY, "unknown provider kind %d", (int)p->kind);
    return -1;
}

/* Can p run this point? 0 yes (note may say more, e.g. what auto chose); 1 no, SKIPPED with
 * the reason in note; -1 an error (why). */
static int provider_ready(bench_cuda *bc, operands *o, const bench_provider *p, char *note,
                          size_t note_len, char *why) {
    lt_plan *plan = NULL;
    int *made = NULL;
    switch (p->kind) {
    case BENCH_KIND_FP4: {
        fp4_gemm_desc d;
        fp4_desc(bc, o, p->backend, p->config, 0, &d);
        char buf[WHY] = "";
        if (p->backend == FP4_BACKEND_AUTO) {
            fp4_tactic chosen;
            char name[96], how[WHY];
            const fp4_status st =
                cli_select(bc->ctx, &d, &chosen, name, sizeof name, how, sizeof how);
            if (st == FP4_ERR_NOT_SUPPORTED) {
                snprintf(note, note_len, "%.390s", fp4_last_error(bc->ctx));
                return 1;
            }
            if (st != FP4_OK) return bench_fail_fp4(why, bc->ctx, st, "selecting the backend");
            snprintf(note, note_len, "auto ran %s", name);
            return 0;
        }
        const fp4_status st = fp4_backend_check(bc->ctx, p->backend, &d, buf, sizeof buf);
        if (st == FP4_ERR_NOT_SUPPORTED) {
            snprintf(note, note_len, "%.390s", buf);
            return 1;
        }
        if (st != FP4_OK) {
            snprintf(why, WHY, "fp4_backend_check: %s: %.400s", fp4_status_name(st), buf);
            return -1;
        }
        return 0;
    }
    case BENCH_KIND_CUBLAS_BF16:
    case BENCH_KIND_DEQUANT_CUBLAS:
        plan = &o->plan_bf16;
        made = &o->plan_bf16_made;
        if (*made == -2)
            *made = lt_plan_make(bc, plan, CUDA_R_16BF, o->m, o->n, o->k, o->out_dtype, why);
        break;
    case BENCH_KIND_CUBLAS_FP8:
        plan = &o->plan_fp8;
        made = &o->plan_fp8_made;
        if (*made == -2)
            *made = lt_plan_make(bc, plan, CUDA_R_8F_E4M3, o->m, o->n, o->k, o->out_dtype, why);
        break;
    case BENCH_KIND_CUBLASLT_FP4:
        plan = &o->plan_fp4;
        made = &o->plan_fp4_made;
#if FP4_LT_HAVE_NVFP4
        if (*made == -2)
            *made = lt_plan_make(bc, plan, CUDA_R_4F_E2M1, o->m, o->n, o->k, o->out_dtype, why);
#else
        snprintf(note, note_len, "built with a cuBLASLt older than 12.8: no NVFP4");
        return 1;
#endif
        break;
    case BENCH_KIND_OPENBLAS_F32:
        snprintf(note, note_len, "a CPU provider (--device cpu)");
        return 1;
    }
    if (!made) {
        snprintf(why, WHY, "unknown provider kind %d", (int)p->kind);
        return -1;
    }
    if (*made < 0) {
        *made = -3; /* failed: don't retry */
        return -1;
    }
    if (*made == -3) {
        snprintf(why, WHY, "making the cuBLASLt plan failed earlier at this point");
        return -1;
    }
    if (!plan->ready) {
        snprintf(note, note_len, "%.390s", plan->why);
        return 1;
    }
    return 0;
}

/* Downloads the sampled elements of D. */
static int read_samples(bench_cuda *bc, const operands *o, double *out, char *why) {
    for (int i = 0; i < o->ns; i++) {
        uint8_t raw[4] = {0, 0, 0, 0};
        const size_t at = (size_t)(o->sm[i] * o->n + o->sn[i]) * (size_t)o->out_size;
        TRY_CUDA(cudaMemcpyAsync(raw, (const uint8_t *)o->d + at, (size_t)o->out_size,
                                 cudaMemcpyDeviceToHost, bc->stream));
        TRY_CUDA(cudaStreamSynchronize(bc->stream));
        uint16_t h;
        uint32_t u;
        memcpy(&h, raw, 2);
        memcpy(&u, raw, 4);
        out[i] = o->out_dtype == FP4_DTYPE_F32   ? (double)fp4_bits_f32(u)
                 : o->out_dtype == FP4_DTYPE_F16 ? (double)fp4_f16_to_f32(h)
                                                 : (double)fp4_bf16_to_f32(h);
    }
    return 0;
}

/* ---- correct before timed: the library's check ------------------------------------------ */

/* fp4_gemm_verify of D against the NVFP4 operands of set 0: what every provider but
 * cublas_fp8 computes (cublas_bf16 and dequant_cublas read the same values, decoded). */
static fp4_status verify_nvfp4(bench_cuda *bc, const operands *o, fp4_verify_result *v) {
    fp4_gemm_desc d;
    fp4_desc(bc, o, FP4_BACKEND_AUTO, -1, 0, &d);
    memset(v, 0, sizeof *v);
    v->struct_size = sizeof *v;
    return fp4_gemm_verify(bc->ctx, &d, BENCH_SAMPLES, o->seed, v);
}

/* Correctness: D poisoned with NaN, one launch on set 0, then the library's check (every
 * element finite, the samples within the project's one tolerance). cublas_fp8 is compared
 * with its own E4M3 operands (fp4_verify_samples, with the accumulation allowance of FP8
 * tensor cores); how far it lands from the NVFP4 reference is recorded. Returns 0 checked
 * (r->status FAILED if wrong), -1 on an error (why). */
static int check_provider(bench_cuda *bc, operands *o, const bench_provider *p, bench_result *r,
                          char *why) {
    const size_t d_bytes = (size_t)(o->m * o->n * o->out_size);
    TRY_CUDA(cudaMemsetAsync(o->d, 0xFF, d_bytes, bc->stream)); /* NaN in F32, F16 and BF16 */
    if (launch(bc, o, p, 0, why) != 0) return -1;
    fp4_verify_result v;
    TRY_FP4(bc->ctx, verify_nvfp4(bc, o, &v), "fp4_gemm_verify");
    if (v.nonfinite) {
        r->status = BENCH_FAILED;
        snprintf(r->note, sizeof r->note, "%.390s", v.message);
        return 0;
    }
    if (p->kind != BENCH_KIND_CUBLAS_FP8) {
        r->check_max_err = v.worst_ratio;
        r->check_rel_l2 = v.rel_l2;
        if (!v.passed) {
            r->status = BENCH_FAILED;
            snprintf(r->note, sizeof r->note, "%.390s", v.message);
        }
        return 0;
    }
    /* FP8: for the record, how far from the NVFP4 data; the verdict against its own data.
     * NOTE: Hopper's FP8 tensor cores accumulate with fewer bits than FP32 (about 2%
     * relative at K = 4096 without promotion, DeepSeek-V3), hence acc 2e-3 and l2 2e-2. */
    r->fp8_vs_nvfp4 = v.rel_l2;
    double out[BENCH_SAMPLES];
    if (read_samples(bc, o, out, why) != 0) return -1;
    fp4_verify_result v8;
    memset(&v8, 0, sizeof v8);
    v8.struct_size = sizeof v8;
    TRY_FP4(NULL, fp4_verify_samples(o->ns, out, o->ref8, o->ref8_abs, o->sm, o->sn, o->k,
                                     o->out_dtype, 2e-3, 2e-2, &v8), "fp4_verify_samples");
    r->check_max_err = v8.worst_ratio;
    r->check_rel_l2 = v8.rel_l2;
    if (!v8.passed) {
        r->status = BENCH_FAILED;
        snprintf(r->note, sizeof r->note, "%.390s", v8.message);
    }
    return 0;
}

/* ---- timed: the library's measure ---------------------------------------------------------- */

typedef struct launch_arg {
    bench_cuda *bc;
    operands *o;
    const bench_provider *p;
    char *why;
} launch_arg;

/* fp4_measure's launch: provider p on input set `set`, on bc->stream (fp4_measure's stream). */
static fp4_status launch_set(void *user, int set, struct CUstream_st *stream) {
    (void)stream;
    launch_arg *l = user;
    return launch(l->bc, l->o, l->p, set, l->why) == 0 ? FP4_OK : FP4_ERR_CUDA;
}

static void append_note(bench_result *r, const char *text) {
    const size_t used = strlen(r->note);
    snprintf(r->note + used, sizeof r->note - used, "%s%s", used ? "; " : "", text);
}

/* The history rule: a provider already too slow at a smaller M of the same (N, K) is too
 * slow here. Returns the largest such M, or 0. */
static int64_t slower_before(const bench_run *run, int provider, bench_shape s) {
    int64_t best = 0;
    for (int i = 0; i < run->nresults; i++) {
        const bench_result *h = &run->results[i];
        if (h->provider == provider && h->too_slow && h->shape.n == s.n && h->shape.k == s.k &&
            h->shape.m < s.m && h->shape.m > best)
            best = h->shape.m;
    }
    return best;
}

/* One timing of p with fp4_measure into m (too slow for the budget: m->too_slow). Returns 0,
 * or -1 on an error (why). */
static int measure_provider(bench_cuda *bc, const bench_run *run, operands *o,
                            const bench_provider *p, fp4_measure_result *m, char *why) {
    launch_arg l = {bc, o, p, why};
    fp4_measure_desc md;
    fp4_measure_desc_init(&md);
    md.launch = launch_set;
    md.user = &l;
    md.sets = o->sets[p->kind];
    md.set_bytes = o->in_bytes[p->kind];
    md.min_replays = run->opt->min_replays;
    md.budget_seconds = run->opt->max_point_seconds;
    md.stream = bc->stream;
    fp4_measure_result_init(m);
    why[0] = 0;
    const fp4_status st = fp4_measure(bc->ctx, &md, m);
    if (st != FP4_OK) {
        if (!why[0]) bench_fail_fp4(why, bc->ctx, st, "fp4_measure");
        return -1;
    }
    return 0;
}

/* The row from one timing (its median round): OK, or SKIPPED as too slow for the budget. */
static void take_timing(const bench_run *run, bench_result *r, const fp4_measure_result *m) {
    if (!bench_take_measure(r, m, run->opt->max_point_seconds)) return;
    r->graph = m->graph;
    r->cold = m->cold;
    if (!m->graph) append_note(r, m->note);
    if (!r->cold) append_note(r, "warm: the input sets span less than 5 L2 sizes");
}

/* The rates of a row (its roofline is report.c's, against the run's ceilings). */
static void fill_rates(const operands *o, const bench_provider *p, bench_result *r) {
    r->flops = 2.0 * (double)o->m * (double)o->n * (double)o->k;
    r->bytes = o->in_bytes[p->kind] + (double)(o->m * o->n * o->out_size);
    if (r->status != BENCH_OK || r->time_us <= 0) return;
    const double t = r->time_us * 1e-6;
    r->tflops = r->flops / t / 1e12;
    r->gbs = r->bytes / t / 1e9;
}

int bench_cuda_point(bench_cuda *bc, bench_run *run, bench_shape shape, char *why_out,
                     size_t why_len) {
    char why[WHY] = "";
    const int first = run->nresults, n = run->nproviders, nrounds = run->opt->rounds;
    for (int i = 0; i < n; i++) {
        bench_result *r = bench_add_result(run, i, shape);
        if (!r) {
            bench_copy_why(why_out, why_len, "out of host memory for the results");
            return -1;
        }
        r->status = BENCH_SKIPPED;
    }
    bench_result *res = run->results + first;

    operands *o = calloc(1, sizeof *o);
    fp4_measure_result *rounds = calloc((size_t)n * (size_t)nrounds, sizeof *rounds);
    int *timed = calloc((size_t)n, sizeof *timed); /* rounds timed of each provider; 0: not
                                                    * timed (SKIPPED, FAILED, over the budget) */
    if (!o || !rounds || !timed) {
        free(o);
        free(rounds);
        free(timed);
        bench_copy_why(why_out, why_len, "out of host memory");
        return -1;
    }
    o->m = shape.m;
    o->n = shape.n;
    o->k = shape.k;
    o->out_dtype = run->opt->out_dtype;
    o->out_size = fp4_dtype_size(o->out_dtype);
    o->plan_bf16_made = o->plan_fp8_made = o->plan_fp4_made = -2;

    int rc = 0;
    const int prep = bench_prepare_point(bc, run, o, why);
    if (prep != 0) {
        if (prep < 0 && !bench_context_alive(bc, why)) {
            rc = -1;
        } else {
            for (int i = 0; i < n; i++) {
                res[i].status = prep > 0 ? BENCH_SKIPPED : BENCH_FAILED;
                snprintf(res[i].note, sizeof res[i].note, "%s the operands: %.300s",
                         prep > 0 ? "no room for" : "could not make", why);
            }
        }
        goto done;
    }

    /* round 0, in the listed order: each provider checked, then timed (all of --rounds 1) */
    for (int i = 0; i < n; i++) {
        const bench_provider *p = &run->providers[i];
        bench_result *r = &res[i];
        bench_progress(run, p->name, shape, 0);
        char note[400] = "";
        int ready = provider_ready(bc, o, p, note, sizeof note, why);
        if (ready == 0) {
            const int64_t slow_m = slower_before(run, i, shape);
            if (slow_m) {
                r->too_slow = 1;
                snprintf(note, sizeof note, "too slow for the budget already at M=%lld",
                         (long long)slow_m);
                ready = 1;
            }
        }
        snprintf(r->note, sizeof r->note, "%s", note);
        if (ready > 0) {
            r->status = BENCH_SKIPPED;
            fill_rates(o, p, r);
            continue;
        }
        int step = ready;
        if (step == 0) step = check_provider(bc, o, p, r, why);
        if (step == 0 && r->status != BENCH_FAILED) {
            fp4_measure_result *m = &rounds[(size_t)i * nrounds];
            step = measure_provider(bc, run, o, p, m, why);
            if (step == 0 && m->too_slow)
                take_timing(run, r, m); /* SKIPPED: not timed again */
            else if (step == 0)
                timed[i] = 1;
        }
        if (step != 0) {
            r->status = BENCH_FAILED;
            snprintf(r->note, sizeof r->note, "error: %.240s", why);
            if (!bench_context_alive(bc, why)) {
                for (int j = i + 1; j < n; j++)
                    snprintf(res[j].note, sizeof res[j].note,
                             "not run: the CUDA context broke");
                rc = -1;
                goto done;
            }
        }
        fill_rates(o, p, r);
    }

    /* rounds 1..R-1: the providers timed in round 0, again, the order reversed every odd round */
    for (int round = 1; round < nrounds; round++)
        for (int turn = 0; turn < n; turn++) {
            const int i = bench_round_order(round, turn, n);
            const bench_provider *p = &run->providers[i];
            if (!timed[i]) continue;
            bench_progress(run, p->name, shape, round);
            if (measure_provider(bc, run, o, p, &rounds[(size_t)i * nrounds + round], why) == 0) {
                timed[i]++;
                continue;
            }
            timed[i] = 0;
            res[i].status = BENCH_FAILED;
            snprintf(res[i].note, sizeof res[i].note, "error in round %d/%d: %.240s", round + 1,
                     nrounds, why);
            if (!bench_context_alive(bc, why)) {
                rc = -1;
                goto done;
            }
        }
done:
    /* the rows: each timed provider's median round (of the rounds it got, if the run stopped;
     * round 0 is never over the budget here, so there is one) */
    for (int i = 0; i < n; i++) {
        if (!timed[i]) continue;
        const fp4_measure_result *mine = &rounds[(size_t)i * nrounds];
        take_timing(run, &res[i], bench_median_round(mine, timed[i]));
        bench_note_rounds(&res[i], mine, timed[i]);
        if (timed[i] < nrounds) {
            char cut[96];
            snprintf(cut, sizeof cut, "only %d of %d rounds: the CUDA context broke", timed[i],
                     nrounds);
            append_note(&res[i], cut);
        }
        fill_rates(o, &run->providers[i], &res[i]);
    }
    if (rc != 0) bench_copy_why(why_out, why_len, why);
    lt_plan_destroy(&o->plan_bf16);
    lt_plan_destroy(&o->plan_fp8);
    lt_plan_destroy(&o->plan_fp4);
    free(o);
    free(rounds);
    free(timed);
    return rc;
}

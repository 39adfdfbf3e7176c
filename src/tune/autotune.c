/* autotune.c - fp4_tune: every tactic that can run a problem, verified, then timed with
 * fp4_measure; the fastest goes into the context's tuned table. And the opt-in tuning of an
 * unseen bucket on first use (FP4_AUTOTUNE_ON_FIRST_USE). docs/tuning.md. */
#define _POSIX_C_SOURCE 200809L
#include "backend.h"
#include "format.h"
#include "tune/tune.h"
#include "tune/tuning.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_TACTICS 64
/* Launches estimated under this (microseconds) are short: plain launches of short work
 * measure the launch overhead more than the kernel, so they are estimated from a burst of 8
 * and the contenders are those within FP4_TUNE_CONTENDER_SHORT of the best estimate. */
#define FP4_TUNE_SHORT_US 50.0
#define FP4_TUNE_CONTENDER_SHORT 2.0
/* Above it, a tactic whose estimate is over this times the best estimate is cut untimed; over
 * FP4_TUNE_LONG_MS a launch (a single one then varies by well under 1%), over
 * FP4_TUNE_CONTENDER_LONG. */
#define FP4_TUNE_CONTENDER 1.3
#define FP4_TUNE_CONTENDER_LONG 1.15
/* A tactic whose first launches (or a launch at a smaller M of the shape) take over this
 * times the best estimate is cut there, without more launches. */
#define FP4_TUNE_CUT 3.0

void fp4_tune_options_init(fp4_tune_options *o) {
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->tactic_budget_seconds = 2.0;
    o->seed = 1;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct launch_ctx {
    fp4_ctx *ctx;
    fp4_gemm_desc desc; /* backend and config set */
    const fp4_tune_operands *ops;
} launch_ctx;

static fp4_status launch_gemm(void *user, int set, struct CUstream_st *stream) {
    launch_ctx *l = (launch_ctx *)user;
    fp4_gemm_desc d = l->desc;
    fp4_tune_point_at_set(&d, l->ops, set);
    d.stream = stream;
    return fp4_gemm(l->ctx, &d);
}

/* What one launch of a tactic took at some M of a shape: a lower bound of its launch at any
 * larger M of the same shape (more rows: no less work, the same weights read). `slow`: it was
 * cut there as too slow. */
typedef struct observation {
    int64_t m, n, k;
    fp4_dtype a_dtype, d_dtype;
    fp4_sf_layout a_sf, b_sf;
    fp4_tactic tactic;
    double us;
    int slow;
} observation;

typedef struct tune_run {
    fp4_ctx *ctx;
    const fp4_tune_options *opt;
    double start, deadline; /* deadline 0: none */
    int problem, problems;
    int done;               /* problems finished, for the time left */
    int judged;             /* tactics of this problem reported so far */
    int next_set;           /* the input set of the next estimate launch (rotating: cold) */
    fp4_tune_buffers buf;   /* the operands' buffers, kept from problem to problem */
    observation *seen;
    int nseen, seen_cap;
} tune_run;

static int same_point(const observation *o, const fp4_gemm_desc *d, fp4_tactic t) {
    return o->n == d->n && o->k == d->k && o->a_dtype == d->a_dtype && o->d_dtype == d->d_dtype &&
           o->a_sf == d->a_sf_layout && o->b_sf == d->b_sf_layout &&
           o->tactic.backend == t.backend && o->tactic.config == t.config;
}

/* Tactic t's time at the largest M <= d->m of d's shape seen in this run (0: none), that M,
 * and whether it was cut there as too slow. */
static double last_seen(const tune_run *r, const fp4_gemm_desc *d, fp4_tactic t, int64_t *at_m,
                        int *slow) {
    const observation *last = NULL;
    for (int i = 0; i < r->nseen; i++) {
        const observation *o = &r->seen[i];
        if (same_point(o, d, t) && o->m <= d->m && (!last || o->m > last->m)) last = o;
    }
    *at_m = last ? last->m : 0;
    *slow = last ? last->slow : 0;
    return last ? last->us : 0;
}

/* Remembers what tactic t took at d's M (replacing an earlier value at the same M). */
static void observe(tune_run *r, const fp4_gemm_desc *d, fp4_tactic t, double us, int slow) {
    for (int i = 0; i < r->nseen; i++) {
        observation *o = &r->seen[i];
        if (same_point(o, d, t) && o->m == d->m) {
            o->us = us;
            o->slow = slow;
            return;
        }
    }
    if (r->nseen == r->seen_cap) { /* no memory: nothing remembered, nothing skipped */
        const int cap = r->seen_cap ? 2 * r->seen_cap : 256;
        observation *more = realloc(r->seen, (size_t)cap * sizeof *more);
        if (!more) return;
        r->seen = more;
        r->seen_cap = cap;
    }
    observation o = {d->m, d->n, d->k, d->a_dtype, d->d_dtype, d->a_sf_layout, d->b_sf_layout,
                     t, us, slow};
    r->seen[r->nseen++] = o;
}

/* Appends to buf[len] at *used. */
static void append(char *buf, size_t len, size_t *used, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static void append(char *buf, size_t len, size_t *used, const char *fmt, ...) {
    if (*used >= len) return;
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(buf + *used, len - *used, fmt, ap);
    va_end(ap);
    if (n > 0) *used += (size_t)n < len - *used ? (size_t)n : len - *used - 1;
}

/* Each candidate is reported once, in the order judged. */
static void report(tune_run *r, fp4_tactic t, int count, double us, const char *skipped,
                   fp4_tactic best, double best_us) {
    const int index = r->judged++;
    if (!r->opt->progress) return;
    fp4_tune_progress p;
    memset(&p, 0, sizeof p);
    p.problem = r->problem;
    p.problems = r->problems;
    p.tactic = t;
    p.tactic_index = index;
    p.tactics = count;
    p.tactic_us = us;
    p.skipped = skipped;
    p.best = best;
    p.best_us = best_us;
    p.elapsed_s = now_s() - r->start;
    const double fraction = ((double)r->done + (double)(index + 1) / (count ? count : 1)) /
                            (double)r->problems;
    p.left_s = fraction > 0 ? p.elapsed_s / fraction - p.elapsed_s : 0;
    if (r->deadline > 0 && p.left_s > r->deadline - now_s()) p.left_s = r->deadline - now_s();
    if (p.left_s < 0) p.left_s = 0;
    r->opt->progress(r->opt->user, &p);
}

/* One problem's state while it is tuned. */
typedef struct problem_state {
    tune_run *r;
    fp4_tune_result *res;
    const fp4_tactic *cand;
    int count;
    fp4_tactic best;
    double best_us, best_measure_s;
    char failures[400];
    size_t fu;
} problem_state;

/* A candidate not timed: counted, reported, and listed in the message. */
static void drop(problem_state *ps, int i, int failed, const char *why) {
    char name[96];
    fp4_tactic_name(ps->cand[i], name, sizeof name);
    if (failed) ps->res->failed++;
    else ps->res->too_slow++;
    append(ps->failures, sizeof ps->failures, &ps->fu, "%s%s %s", ps->fu ? "; " : "", name, why);
    report(ps->r, ps->cand[i], ps->count, 0, why, ps->best, ps->best_us);
}

static int is_fatal(fp4_status s) { return s == FP4_ERR_CUDA || s == FP4_ERR_OUT_OF_MEMORY; }

/* Estimates one launch of the tactic in l (docs/tuning.md "Cost"): a warm-up launch, one
 * more, and if the faster of the two is over `cut_us`, stop there (*cut = 1); else, unless a
 * launch takes FP4_TUNE_LONG_MS or more (then the faster of the two is the estimate), a burst
 * of 8 launches (short ones: plain launches need many to say much) or 2 timed together. All
 * on rotated input sets. */
static fp4_status estimate(tune_run *r, launch_ctx *l, double cut_us, double *us, int *cut) {
    fp4_measure_desc md;
    fp4_measure_desc_init(&md);
    md.launch = launch_gemm;
    md.user = l;
    md.sets = l->ops->sets;
    md.stream = r->opt->stream;
    double w = 0, t1 = 0, burst = 0;
    fp4_status st = fp4_tune_time_launches(r->ctx, &md, r->next_set++ % md.sets, 1, &w);
    if (st == FP4_OK) st = fp4_tune_time_launches(r->ctx, &md, r->next_set++ % md.sets, 1, &t1);
    if (st != FP4_OK) return st;
    const double e = (w < t1 ? w : t1) * 1e3;
    *cut = cut_us > 0 && e > cut_us;
    if (*cut) {
        *us = e;
        return FP4_OK;
    }
    const int n = e < FP4_TUNE_SHORT_US ? 8 : e < FP4_TUNE_LONG_MS * 1e3 ? 2 : 0;
    st = fp4_tune_time_launches(r->ctx, &md, r->next_set % md.sets, n, &burst);
    r->next_set += n;
    if (st != FP4_OK) return st;
    /* the smaller of the second launch and the burst's mean: noise (a busy host, a late
     * first-use cost) only adds time */
    *us = n == 0 ? e : burst / n < t1 ? burst * 1e3 / n : t1 * 1e3;
    if (!(*us > 0)) *us = 1e-3;
    return FP4_OK;
}

/* Runs the tactic of l->desc once on D poisoned with NaN and checks it against the fp64
 * reference. FP4_OK with *passed set, or the failing call's status; *why says what failed. */
static fp4_status verify_tactic(tune_run *r, const launch_ctx *l, const fp4_tune_operands *o,
                                int *passed, char *why, size_t wlen) {
    fp4_ctx *ctx = r->ctx;
    fp4_gemm_desc run = l->desc;
    fp4_tune_point_at_set(&run, o, 0);
    *passed = 0;
    fp4_status gs = fp4_memset(ctx, o->d, 0xFF, o->d_bytes);
    if (gs != FP4_OK) return gs;
    gs = fp4_gemm(ctx, &run);
    fp4_verify_result v;
    memset(&v, 0, sizeof v);
    v.struct_size = sizeof v;
    if (gs == FP4_OK) gs = fp4_gemm_verify(ctx, &run, r->opt->verify_samples, r->opt->seed, &v);
    if (gs != FP4_OK) {
        snprintf(why, wlen, "failed: %s: %.220s", fp4_status_name(gs), ctx->last_error);
        return gs;
    }
    *passed = v.passed;
    if (!v.passed) snprintf(why, wlen, "wrong result: %.250s", v.message);
    return FP4_OK;
}

/* verify_tactic for candidate i, its time added to the result: 1 if it passed; 0 if it failed
 * or was wrong (dropped, with the reason); -1 on an error that is not the tactic's (*st). */
static int verified_or_dropped(problem_state *ps, const launch_ctx *l,
                               const fp4_tune_operands *o, int i, fp4_status *st, char *why,
                               size_t wlen) {
    int passed = 0;
    const double tv = now_s();
    const fp4_status vs = verify_tactic(ps->r, l, o, &passed, why, wlen);
    ps->res->verify_s += now_s() - tv;
    if (vs != FP4_OK && is_fatal(vs)) {
        *st = vs;
        return -1;
    }
    if (vs != FP4_OK || !passed) {
        drop(ps, i, 1, why);
        return 0;
    }
    return 1;
}

static fp4_status tune_one_body(tune_run *r, const fp4_gemm_desc *problem,
                                fp4_tune_result *res) {
    fp4_ctx *ctx = r->ctx;
    const fp4_tune_options *opt = r->opt;
    size_t mu = 0;
    char *msg = res->message;
    const size_t mlen = sizeof res->message;

    fp4_gemm_desc d = *problem;
    d.backend = FP4_BACKEND_AUTO;
    d.config = -1;
    d.stream = opt->stream;
    fp4_tactic cand[MAX_TACTICS];
    int count = 0;
    fp4_status st = fp4_gemm_list_tactics(ctx, &d, cand, MAX_TACTICS, &count);
    if (st != FP4_OK) return st;
    if (count > MAX_TACTICS) count = MAX_TACTICS;
    res->candidates = count;
    /* what untuned auto runs: always timed, for the comparison */
    res->heuristic.backend = FP4_BACKEND_AUTO;
    res->heuristic.config = -1;
    {
        const int64_t saved = ctx->tuning.count;
        ctx->tuning.count = 0; /* hide the table: the heuristic, not the last tuning */
        fp4_tactic h;
        if (fp4_resolve_tactic(ctx, &d, &h, NULL, 0) == FP4_OK) res->heuristic = h;
        ctx->tuning.count = saved;
        ctx->last_error[0] = 0;
    }
    if (count == 0) {
        append(msg, mlen, &mu, "no tactic can run this problem here");
        return FP4_OK;
    }

    fp4_tune_operands o;
    double t0 = now_s();
    st = fp4_tune_make_operands(ctx, &r->buf, &d, opt->seed, r->problem, &o);
    res->operands_s = now_s() - t0;
    if (st != FP4_OK) return st;

    problem_state ps;
    memset(&ps, 0, sizeof ps);
    ps.r = r;
    ps.res = res;
    ps.cand = cand;
    ps.count = count;
    ps.best.backend = FP4_BACKEND_AUTO;
    ps.best.config = -1;
    char why[300];
    double est[MAX_TACTICS], seen[MAX_TACTICS];
    int64_t seen_m[MAX_TACTICS];
    int alive[MAX_TACTICS], heur[MAX_TACTICS], order[MAX_TACTICS], slow[MAX_TACTICS];
    int verified[MAX_TACTICS];
    double min_est = 0;
    launch_ctx l = {ctx, d, &o};

    /* 1. estimates: the heuristic's tactic first (a good best estimate early), then the
     *    others, fastest at the previous M of this shape first (unseen ones before them). A
     *    tactic cut as too slow at the previous M, with a time there already over FP4_TUNE_CUT
     *    x the best estimate, is cut without a launch (a launch takes no less at a larger M);
     *    one whose first launches are over it stops there */
    for (int i = 0; i < count; i++) {
        alive[i] = 0;
        verified[i] = 0;
        heur[i] = cand[i].backend == res->heuristic.backend &&
                  cand[i].config == res->heuristic.config;
        seen[i] = last_seen(r, &d, cand[i], &seen_m[i], &slow[i]);
        order[i] = i;
    }
    for (int x = 1; x < count; x++) /* insertion sort: the heuristic, then by time seen */
        for (int y = x; y > 0; y--) {
            const int a = order[y - 1], b = order[y];
            if (heur[a] || (!heur[b] && seen[a] <= seen[b])) break;
            order[y - 1] = b;
            order[y] = a;
        }
    for (int j = 0; j < count && st == FP4_OK; j++) {
        const int i = order[j];
        if (r->deadline > 0 && now_s() > r->deadline) {
            drop(&ps, i, 0, "the time budget ran out");
            continue;
        }
        const double cut_us = heur[i] || min_est == 0 ? 0 : FP4_TUNE_CUT * min_est;
        if (cut_us > 0 && slow[i] && seen[i] > cut_us) { /* a lower bound of its time here */
            snprintf(why, sizeof why, "cut: %.1f us a launch at M = %lld already, over %.0fx the "
                     "best estimate here (%.1f us)", seen[i], (long long)seen_m[i], FP4_TUNE_CUT,
                     min_est);
            drop(&ps, i, 0, why);
            continue;
        }
        l.desc.backend = cand[i].backend;
        l.desc.config = cand[i].config;
        int cut = 0;
        const double te = now_s();
        const fp4_status gs = estimate(r, &l, cut_us, &est[i], &cut);
        res->estimate_s += now_s() - te;
        if (gs != FP4_OK) {
            if (is_fatal(gs)) { /* not the tactic's fault */
                st = gs;
                break;
            }
            snprintf(why, sizeof why, "failed: %s: %.220s", fp4_status_name(gs),
                     ctx->last_error);
            drop(&ps, i, 1, why);
            continue;
        }
        observe(r, &d, cand[i], est[i], cut);
        if (cut) {
            snprintf(why, sizeof why, "cut: a launch took %.1f us, over %.0fx the best estimate "
                     "(%.1f us)", est[i], FP4_TUNE_CUT, min_est);
            drop(&ps, i, 0, why);
            continue;
        }
        if (min_est == 0 || est[i] < min_est) {
            /* the best estimate cuts the others: it must come from a right tactic */
            const int v = verified_or_dropped(&ps, &l, &o, i, &st, why, sizeof why);
            if (v < 0) break;
            if (v == 0) continue;
            verified[i] = 1;
            min_est = est[i];
        }
        alive[i] = 1;
    }

    /* 2. the contenders, fastest estimate first: those within FP4_TUNE_CONTENDER of the best
     *    estimate (FP4_TUNE_CONTENDER_SHORT while launches are short: there plain launches
     *    say less; FP4_TUNE_CONTENDER_LONG for long ones), and always the heuristic (for the
     *    comparison with untuned auto). Each is run on a poisoned D and verified, then timed
     *    with a plan made from its estimate */
    int norder = 0;
    for (int i = 0; i < count; i++)
        if (alive[i]) order[norder++] = i;
    for (int x = 1; x < norder; x++) /* insertion sort by estimate */
        for (int y = x; y > 0 && est[order[y]] < est[order[y - 1]]; y--) {
            const int t = order[y];
            order[y] = order[y - 1];
            order[y - 1] = t;
        }
    const double factor = min_est < FP4_TUNE_SHORT_US              ? FP4_TUNE_CONTENDER_SHORT
                          : min_est < FP4_TUNE_LONG_MS * 1e3 ? FP4_TUNE_CONTENDER
                                                             : FP4_TUNE_CONTENDER_LONG;
    for (int j = 0; j < norder && st == FP4_OK; j++) {
        const int i = order[j];
        if (!heur[i] && est[i] > factor * min_est) {
            snprintf(why, sizeof why, "cut: estimated %.1f us a launch, over %.2fx the best "
                     "estimate (%.1f us)", est[i], factor, min_est);
            observe(r, &d, cand[i], est[i], 1);
            drop(&ps, i, 0, why);
            continue;
        }
        if (r->deadline > 0 && now_s() > r->deadline) {
            drop(&ps, i, 0, "the time budget ran out");
            continue;
        }
        l.desc.backend = cand[i].backend;
        l.desc.config = cand[i].config;

        /* verified (unless phase 1 did): one run on D poisoned with NaN, checked against the
         * fp64 reference */
        if (!verified[i]) {
            const int v = verified_or_dropped(&ps, &l, &o, i, &st, why, sizeof why);
            if (v < 0) break;
            if (v == 0) continue;
        }

        /* timed: the first (the best estimate) always, bounded by budget_seconds only; the
         * others within the tactic budget and, except the heuristic's, at most 3x what the
         * best one's timing took (at least 0.25 s) */
        fp4_tune_plan plan;
        const double planned_s = fp4_tune_quick_plan(est[i] / 1e3, o.sets, &plan);
        double budget = 0; /* none */
        if (ps.best_us > 0) {
            budget = opt->tactic_budget_seconds > 0 ? opt->tactic_budget_seconds : 2.0;
            const double cap = 3.0 * ps.best_measure_s > 0.25 ? 3.0 * ps.best_measure_s : 0.25;
            if (!heur[i] && cap < budget) budget = cap;
        }
        if (r->deadline > 0 && (budget == 0 || r->deadline - now_s() < budget))
            budget = r->deadline - now_s() > 0.001 ? r->deadline - now_s() : 0.001;
        if (budget > 0 && planned_s > budget) {
            snprintf(why, sizeof why, "too slow (about %.1f us a launch: its timing would take "
                     "%.2f s, over the %.2f s budget)", est[i], planned_s, budget);
            drop(&ps, i, 0, why);
            continue;
        }
        fp4_measure_desc md;
        fp4_measure_desc_init(&md);
        md.launch = launch_gemm;
        md.user = &l;
        md.sets = o.sets;
        md.set_bytes = o.set_bytes;
        md.stream = opt->stream;
        fp4_measure_result mr;
        fp4_measure_result_init(&mr);
        mr.estimate_us = est[i];
        const double tm = now_s();
        const fp4_status gs = fp4_tune_measure_planned(ctx, &md, &plan, &mr);
        const double took = now_s() - tm;
        res->measure_s += took;
        if (gs != FP4_OK) {
            if (is_fatal(gs)) {
                st = gs;
                break;
            }
            snprintf(why, sizeof why, "failed while timed: %s: %.200s", fp4_status_name(gs),
                     ctx->last_error);
            drop(&ps, i, 1, why);
            continue;
        }
        res->timed++;
        observe(r, &d, cand[i], mr.median_us, 0);
        if (heur[i]) res->heuristic_us = mr.median_us;
        if (ps.best_us == 0 || mr.median_us < ps.best_us) {
            ps.best = cand[i];
            ps.best_us = mr.median_us;
            ps.best_measure_s = took;
        }
        report(r, cand[i], count, mr.median_us, NULL, ps.best, ps.best_us);
    }
    if (st != FP4_OK) return st;

    if (ps.best_us > 0) {
        fp4_tuning_key key;
        fp4_tuning_key_of(&d, &key);
        st = fp4_tuning_put(ctx, &key, ps.best, ps.best_us);
        if (st != FP4_OK) return st;
        res->tuned = 1;
        res->best = ps.best;
        res->best_us = ps.best_us;
        char name[96];
        fp4_tactic_name(ps.best, name, sizeof name);
        append(msg, mlen, &mu, "%s: %.3f us (bucket m <= %lld; %d candidate%s", name, ps.best_us,
               (long long)key.m_bucket, count, count == 1 ? "" : "s");
        if (res->too_slow) append(msg, mlen, &mu, ", %d cut as too slow", res->too_slow);
        append(msg, mlen, &mu, ")");
    } else {
        append(msg, mlen, &mu, "not tuned: no tactic passed (%d candidate%s: %d failed, %d too "
               "slow)", count, count == 1 ? "" : "s", res->failed, res->too_slow);
    }
    if (ps.fu) append(msg, mlen, &mu, "; %s", ps.failures);
    return FP4_OK;
}

/* Tunes one prepared problem. FP4_OK unless something other than a tactic failed
 * (allocation, CUDA); res says how it went, and how long it took, on every return. */
static fp4_status tune_one(tune_run *r, const fp4_gemm_desc *problem, fp4_tune_result *res) {
    const double t_start = now_s();
    const fp4_status st = tune_one_body(r, problem, res);
    res->elapsed_s = now_s() - t_start;
    return st;
}

void fp4_tune_result_init(fp4_tune_result *result) {
    if (!result) return;
    memset(result, 0, sizeof *result);
    result->struct_size = sizeof *result;
}

/* fp4_tune_result's first release (0.1.x) ends at message */
#define TUNE_RESULT_MIN_SIZE FP4_STRUCT_END(fp4_tune_result, message)

/* Element i of the caller's results array, whose elements are `stride` bytes each. */
static fp4_tune_result *result_at(fp4_tune_result *results, size_t stride, int i) {
    return (fp4_tune_result *)(void *)((char *)results + (size_t)i * stride);
}

fp4_status fp4_tune(fp4_ctx *ctx, const fp4_gemm_desc *problems, int count,
                    const fp4_tune_options *options, fp4_tune_result *results) {
    const char *fn = "fp4_tune";
    if (!ctx) return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "%s: ctx is NULL", fn);
    ctx->last_error[0] = 0;
    if (!problems) return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "%s: problems is NULL", fn);
    if (count < 1) return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "%s: count = %d", fn, count);
    fp4_tune_options opt;
    fp4_tune_options_init(&opt);
    if (options) {
        if (options->struct_size != sizeof opt)
            return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT,
                            "%s: options->struct_size = %zu, expected %zu", fn,
                            options->struct_size, sizeof opt);
        opt = *options;
    }
    /* check every problem first: pointers are ours, so give the check stand-ins */
    char buf[512];
    size_t stride = sizeof *results;
    for (int i = 0; i < count; i++) {
        fp4_gemm_desc p = problems[i], d;
        p.a = p.a_sf = p.b = p.b_sf = (const void *)(uintptr_t)256;
        p.d = (void *)(uintptr_t)256;
        p.alpha_ptr = NULL;
        p.backend = FP4_BACKEND_AUTO;
        p.config = -1;
        if (fp4_gemm_desc_prepare(&p, &d, buf, sizeof buf))
            return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "%s: problems[%d]: %s", fn, i, buf);
        if (results) { /* the caller's elements are results[0].struct_size bytes apart */
            const size_t size = result_at(results, stride, i)->struct_size;
            char what[32];
            snprintf(what, sizeof what, "results[%d]", i);
            const fp4_status bad =
                fp4_out_struct_check(ctx, fn, what, "fp4_tune_result", size,
                                     TUNE_RESULT_MIN_SIZE, sizeof *results);
            if (bad != FP4_OK) return bad;
            if (i == 0) stride = size;
            else if (size != stride)
                return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT,
                                "%s: results[%d].struct_size = %zu differs from results[0]'s "
                                "%zu (one array, one element size)", fn, i, size, stride);
        }
    }
    tune_run r;
    memset(&r, 0, sizeof r);
    r.ctx = ctx;
    r.opt = &opt;
    r.start = now_s();
    r.deadline = opt.budget_seconds > 0 ? r.start + opt.budget_seconds : 0;
    r.problems = count;
    const int nested = ctx->tuning.tuning;
    ctx->tuning.tuning = 1;
    fp4_status st = FP4_OK;
    for (int i = 0; i < count && st == FP4_OK; i++) {
        /* a full result, of which the caller's element gets what fits */
        fp4_tune_result full, *res = &full;
        fp4_tune_result_init(res);
        fp4_gemm_desc p = problems[i], d;
        p.a = p.a_sf = p.b = p.b_sf = (const void *)(uintptr_t)256;
        p.d = (void *)(uintptr_t)256;
        p.alpha_ptr = NULL;
        p.backend = FP4_BACKEND_AUTO;
        p.config = -1;
        fp4_gemm_desc_prepare(&p, &d, buf, sizeof buf);
        d.alpha = 1.0f;
        r.problem = i;
        if (r.deadline > 0 && now_s() > r.deadline) {
            snprintf(res->message, sizeof res->message,
                     "not tuned: the budget of %.1f s ran out first", opt.budget_seconds);
        } else {
            r.judged = 0;
            st = tune_one(&r, &d, res);
            r.done++;
        }
        if (results) fp4_out_struct_fill(result_at(results, stride, i), res, sizeof *res);
    }
    fp4_tune_free_buffers(ctx, &r.buf);
    free(r.seen);
    ctx->tuning.tuning = nested;
    if (st == FP4_OK) ctx->last_error[0] = 0;
    return st;
}

fp4_status fp4_tuning_first_use(fp4_ctx *ctx, const fp4_gemm_desc *d) {
    if (ctx->tuning.tuning || ctx->env_problem[0] || ctx->env_tactic.backend != FP4_BACKEND_AUTO)
        return FP4_OK;
    fp4_tuning_key key;
    fp4_tuning_key_of(d, &key);
    if (fp4_tuning_find(&ctx->tuning, &key)) return FP4_OK;
    fp4_tune_options opt;
    fp4_tune_options_init(&opt);
    opt.stream = d->stream;
    fp4_tune_result res;
    fp4_tune_result_init(&res);
    const fp4_status st = fp4_tune(ctx, d, 1, &opt, &res);
    if (!res.tuned) { /* remember the miss, so that the next call does not tune again */
        const fp4_tactic none = {FP4_BACKEND_AUTO, -1};
        const fp4_status ps = fp4_tuning_put(ctx, &key, none, 0);
        if (st == FP4_OK && ps != FP4_OK) return ps;
    }
    if (st == FP4_OK) {
        fp4_log(FP4_LOG_INFO, "autotune on first use: m = %lld, n = %lld, k = %lld: %s",
                (long long)d->m, (long long)d->n, (long long)d->k, res.message);
        return FP4_OK;
    }
    if (st == FP4_ERR_OUT_OF_MEMORY) { /* the GEMM itself needs nothing: run the heuristic */
        fp4_log(FP4_LOG_WARN, "autotune on first use: m = %lld, n = %lld, k = %lld: %s; the "
                "heuristic runs instead", (long long)d->m, (long long)d->n, (long long)d->k,
                ctx->last_error);
        ctx->last_error[0] = 0;
        return FP4_OK;
    }
    return st; /* a CUDA error: the context's device is in trouble, say so */
}

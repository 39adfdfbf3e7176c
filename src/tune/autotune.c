/* autotune.c - fp4_tune: every tactic that can run a problem, verified, then timed with
 * fp4_measure; the fastest goes into the context's tuned table. And the opt-in tuning of an
 * unseen bucket on first use (FP4_AUTOTUNE_ON_FIRST_USE). docs/tuning.md. */
#define _POSIX_C_SOURCE 200809L
#include "backend.h"
#include "format.h"
#include "tune/tuning.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_TACTICS 64
/* Launches estimated under this (microseconds) are all timed: a few plain launches of short
 * work measure the launch overhead more than the kernel. */
#define FP4_TUNE_SHORT_US 50.0
/* Above it, a tactic whose estimate is over this times the best estimate is cut untimed. */
#define FP4_TUNE_CONTENDER 1.3
#define MAX_SET_BYTES_TOTAL ((double)(2LL << 30)) /* input sets of one problem, at most */

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

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Random bytes, eight per draw (the operands of a large problem are hundreds of MB). */
static void fill_bytes(uint8_t *p, int64_t n, uint64_t *s) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const uint64_t v = splitmix(s);
        memcpy(p + i, &v, 8);
    }
    for (; i < n; i++) p[i] = (uint8_t)splitmix(s);
}

static int64_t align256(int64_t x) { return (x + 255) / 256 * 256; }

/* The operands of one problem: `sets` copies of [A | A scales | B | B scales], and one D. */
typedef struct operands {
    void *base;   /* sets * set_stride bytes */
    void *d;
    int64_t a_off, asf_off, b_off, bsf_off, set_stride;
    double set_bytes; /* what one launch reads */
    int sets;
} operands;

typedef struct launch_ctx {
    fp4_ctx *ctx;
    fp4_gemm_desc desc; /* backend and config set */
    const operands *ops;
} launch_ctx;

static void point_at_set(fp4_gemm_desc *d, const operands *o, int set) {
    char *base = (char *)o->base + (int64_t)set * o->set_stride;
    d->a = base + o->a_off;
    d->a_sf = d->a_dtype == FP4_DTYPE_E2M1 ? base + o->asf_off : NULL;
    d->b = base + o->b_off;
    d->b_sf = base + o->bsf_off;
    d->d = o->d;
}

static fp4_status launch_gemm(void *user, int set, struct CUstream_st *stream) {
    launch_ctx *l = (launch_ctx *)user;
    fp4_gemm_desc d = l->desc;
    point_at_set(&d, l->ops, set);
    d.stream = stream;
    return fp4_gemm(l->ctx, &d);
}

static void free_operands(fp4_ctx *ctx, operands *o) {
    char keep[1024];
    memcpy(keep, ctx->last_error, sizeof keep); /* freeing must not hide the failure */
    if (o->base) fp4_free(ctx, o->base);
    if (o->d) fp4_free(ctx, o->d);
    memcpy(ctx->last_error, keep, sizeof keep);
    memset(o, 0, sizeof *o);
}

/* Seeded random operands for d (prepared), uploaded into every set. */
static fp4_status make_operands(fp4_ctx *ctx, const fp4_gemm_desc *d, uint64_t seed,
                                operands *o) {
    memset(o, 0, sizeof *o);
    const int w4a4 = d->a_dtype == FP4_DTYPE_E2M1;
    const int64_t a_bytes = w4a4 ? d->m * d->k / 2 : d->m * d->k * 2;
    const int64_t asf_bytes = w4a4 ? fp4_sf_bytes(d->m, d->k, d->a_sf_layout) : 0;
    const int64_t b_bytes = d->n * d->k / 2;
    const int64_t bsf_bytes = fp4_sf_bytes(d->n, d->k, d->b_sf_layout);
    o->a_off = 0;
    o->asf_off = align256(a_bytes);
    o->b_off = o->asf_off + align256(asf_bytes);
    o->bsf_off = o->b_off + align256(b_bytes);
    o->set_stride = o->bsf_off + align256(bsf_bytes);
    o->set_bytes = (double)(a_bytes + asf_bytes + b_bytes + bsf_bytes);
    int sets = fp4_measure_sets(ctx, o->set_bytes);
    while (sets > 1 && (double)sets * (double)o->set_stride > MAX_SET_BYTES_TOTAL) sets--;
    o->sets = sets;

    uint8_t *host = malloc((size_t)o->set_stride);
    if (!host)
        return FP4_FAIL(ctx, FP4_ERR_OUT_OF_MEMORY, "fp4_tune: %lld bytes of host memory",
                        (long long)o->set_stride);
    memset(host, 0, (size_t)o->set_stride);
    uint64_t s = seed;
    /* E2M1 bytes: any byte is two valid elements. E4M3 scales: 2^-2 .. 2^2 with random
     * mantissas (exponent field 5..9), so that D stays far from overflow at any K. */
    if (w4a4) {
        fill_bytes(host + o->a_off, a_bytes, &s);
        for (int64_t i = 0; i < asf_bytes; i++)
            host[o->asf_off + i] = (uint8_t)((5 + splitmix(&s) % 5) << 3 | (splitmix(&s) & 7));
    } else {
        for (int64_t i = 0; i < d->m * d->k; i++) {
            const float x = (float)((double)(splitmix(&s) >> 11) * 0x1p-53 * 2.0 - 1.0);
            fp4_store_from_f32(host + o->a_off, d->a_dtype, i, x);
        }
    }
    fill_bytes(host + o->b_off, b_bytes, &s);
    for (int64_t i = 0; i < bsf_bytes; i++)
        host[o->bsf_off + i] = (uint8_t)((5 + splitmix(&s) % 5) << 3 | (splitmix(&s) & 7));

    fp4_status st = fp4_malloc(ctx, &o->base, (int64_t)sets * o->set_stride);
    if (st == FP4_OK)
        st = fp4_malloc(ctx, &o->d, d->m * d->ldd * fp4_dtype_size(d->d_dtype));
    for (int i = 0; i < sets && st == FP4_OK; i++)
        st = fp4_upload(ctx, (char *)o->base + (int64_t)i * o->set_stride, host, o->set_stride);
    free(host);
    if (st != FP4_OK) free_operands(ctx, o);
    return st;
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

typedef struct tune_run {
    fp4_ctx *ctx;
    const fp4_tune_options *opt;
    double start, deadline; /* deadline 0: none */
    int problem, problems;
    int done;               /* problems finished, for the time left */
    int judged;             /* tactics of this problem reported so far */
} tune_run;

/* Each candidate is reported once, in the order judged (index says which, 0..count-1). */
static void report(tune_run *r, fp4_tactic t, int candidate, int count, double us,
                   const char *skipped, fp4_tactic best, double best_us) {
    (void)candidate;
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

/* Tunes one prepared problem. FP4_OK unless something other than a tactic failed
 * (allocation, CUDA); res says how it went. */
static fp4_status tune_one(tune_run *r, const fp4_gemm_desc *problem, fp4_tune_result *res) {
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

    operands o;
    st = make_operands(ctx, &d, opt->seed ^ (uint64_t)r->problem * 0x9E37ull, &o);
    if (st != FP4_OK) return st;

    fp4_tactic best = {FP4_BACKEND_AUTO, -1};
    double best_us = 0, best_measure_s = 0;
    char failures[400] = "";
    size_t fu = 0;
    char why[300];
    double est[MAX_TACTICS];
    int alive[MAX_TACTICS];
    double min_est = 0;
    launch_ctx l = {ctx, d, &o};

    /* 1. every candidate: run once on poisoned D, verify, and estimate one launch (fp4_measure
     *    with no budget to spend: it times a few launches and stops) */
    for (int i = 0; i < count && st == FP4_OK; i++) {
        alive[i] = 0;
        char name[96];
        fp4_tactic_name(cand[i], name, sizeof name);
        if (r->deadline > 0 && now_s() > r->deadline) {
            res->too_slow++;
            append(failures, sizeof failures, &fu, "%s%s: the time budget ran out",
                   fu ? "; " : "", name);
            report(r, cand[i], i, count, 0, "the time budget ran out", best, best_us);
            continue;
        }
        l.desc.backend = cand[i].backend;
        l.desc.config = cand[i].config;
        fp4_gemm_desc run = l.desc;
        point_at_set(&run, &o, 0);
        const char *skipped = NULL;
        st = fp4_memset(ctx, o.d, 0xFF, d.m * d.ldd * fp4_dtype_size(d.d_dtype));
        if (st != FP4_OK) break;
        fp4_status gs = fp4_gemm(ctx, &run);
        if (gs == FP4_OK) {
            fp4_verify_result v;
            memset(&v, 0, sizeof v);
            v.struct_size = sizeof v;
            gs = fp4_gemm_verify(ctx, &run, opt->verify_samples, opt->seed, &v);
            if (gs == FP4_OK && !v.passed) {
                snprintf(why, sizeof why, "wrong result: %.250s", v.message);
                skipped = why;
            }
        }
        fp4_measure_result mr;
        if (gs == FP4_OK && !skipped) {
            fp4_measure_desc md;
            fp4_measure_desc_init(&md);
            md.launch = launch_gemm;
            md.user = &l;
            md.sets = o.sets;
            md.set_bytes = o.set_bytes;
            md.stream = opt->stream;
            md.budget_seconds = 1e-9; /* the estimate only */
            memset(&mr, 0, sizeof mr);
            mr.struct_size = sizeof mr;
            gs = fp4_measure(ctx, &md, &mr);
        }
        if (gs != FP4_OK) {
            if (gs == FP4_ERR_CUDA || gs == FP4_ERR_OUT_OF_MEMORY) { /* not the tactic's fault */
                st = gs;
                break;
            }
            snprintf(why, sizeof why, "failed: %s: %.220s", fp4_status_name(gs),
                     ctx->last_error);
            skipped = why;
        }
        if (skipped) {
            res->failed++;
            append(failures, sizeof failures, &fu, "%s%s %s", fu ? "; " : "", name, skipped);
            report(r, cand[i], i, count, 0, skipped, best, best_us);
            continue;
        }
        alive[i] = 1;
        est[i] = mr.estimate_us > 0 ? mr.estimate_us : 1e-3;
        if (min_est == 0 || est[i] < min_est) min_est = est[i];
    }

    /* 2. time the contenders, fastest estimate first: every tactic while launches are short
     *    (there a few plain launches say little), else those within FP4_TUNE_CONTENDER of the
     *    best estimate, and always the heuristic (for the comparison with untuned auto) */
    int order[MAX_TACTICS], norder = 0;
    for (int i = 0; i < count; i++)
        if (alive[i]) order[norder++] = i;
    for (int x = 1; x < norder; x++) /* insertion sort by estimate */
        for (int y = x; y > 0 && est[order[y]] < est[order[y - 1]]; y--) {
            const int t = order[y];
            order[y] = order[y - 1];
            order[y - 1] = t;
        }
    for (int j = 0; j < norder && st == FP4_OK; j++) {
        const int i = order[j];
        char name[96];
        fp4_tactic_name(cand[i], name, sizeof name);
        const int is_heuristic = cand[i].backend == res->heuristic.backend &&
                                 cand[i].config == res->heuristic.config;
        if (!is_heuristic && min_est >= FP4_TUNE_SHORT_US && est[i] > FP4_TUNE_CONTENDER * min_est) {
            res->too_slow++;
            snprintf(why, sizeof why, "cut: estimated %.1f us a launch, over %.2fx the best "
                     "estimate (%.1f us)", est[i], FP4_TUNE_CONTENDER, min_est);
            append(failures, sizeof failures, &fu, "%s%s %s", fu ? "; " : "", name, why);
            report(r, cand[i], i, count, 0, why, best, best_us);
            continue;
        }
        if (r->deadline > 0 && now_s() > r->deadline) {
            res->too_slow++;
            append(failures, sizeof failures, &fu, "%s%s: the time budget ran out",
                   fu ? "; " : "", name);
            report(r, cand[i], i, count, 0, "the time budget ran out", best, best_us);
            continue;
        }
        l.desc.backend = cand[i].backend;
        l.desc.config = cand[i].config;
        fp4_measure_desc md;
        fp4_measure_desc_init(&md);
        md.launch = launch_gemm;
        md.user = &l;
        md.sets = o.sets;
        md.set_bytes = o.set_bytes;
        md.stream = opt->stream;
        /* the first (the best estimate) is always timed: without it there is no result; the
         * others within the tactic budget, and at most 3x what the best one's timing took */
        double budget = 0; /* none */
        if (best_us > 0) {
            budget = opt->tactic_budget_seconds > 0 ? opt->tactic_budget_seconds : 2.0;
            const double cut = 3.0 * best_measure_s > 0.25 ? 3.0 * best_measure_s : 0.25;
            if (!is_heuristic && cut < budget) budget = cut;
        }
        if (r->deadline > 0 && (budget == 0 || r->deadline - now_s() < budget))
            budget = r->deadline - now_s() > 0.001 ? r->deadline - now_s() : 0.001;
        md.budget_seconds = budget;
        fp4_measure_result mr;
        memset(&mr, 0, sizeof mr);
        mr.struct_size = sizeof mr;
        const double t0 = now_s();
        const fp4_status gs = fp4_measure(ctx, &md, &mr);
        const double took = now_s() - t0;
        if (gs != FP4_OK) {
            if (gs == FP4_ERR_CUDA || gs == FP4_ERR_OUT_OF_MEMORY) {
                st = gs;
                break;
            }
            res->failed++;
            snprintf(why, sizeof why, "failed while timed: %s: %.200s", fp4_status_name(gs),
                     ctx->last_error);
            append(failures, sizeof failures, &fu, "%s%s %s", fu ? "; " : "", name, why);
            report(r, cand[i], i, count, 0, why, best, best_us);
            continue;
        }
        if (mr.too_slow) {
            res->too_slow++;
            snprintf(why, sizeof why, "too slow (about %.1f us a launch: its timing would take "
                     "over the %.2f s budget)", mr.estimate_us, md.budget_seconds);
            append(failures, sizeof failures, &fu, "%s%s %s", fu ? "; " : "", name, why);
            report(r, cand[i], i, count, 0, why, best, best_us);
            continue;
        }
        if (is_heuristic) res->heuristic_us = mr.median_us;
        if (best_us == 0 || mr.median_us < best_us) {
            best = cand[i];
            best_us = mr.median_us;
            best_measure_s = took;
        }
        report(r, cand[i], i, count, mr.median_us, NULL, best, best_us);
    }
    free_operands(ctx, &o);
    if (st != FP4_OK) return st;

    if (best_us > 0) {
        fp4_tuning_key key;
        fp4_tuning_key_of(&d, &key);
        st = fp4_tuning_put(ctx, &key, best, best_us);
        if (st != FP4_OK) return st;
        res->tuned = 1;
        res->best = best;
        res->best_us = best_us;
        char name[96];
        fp4_tactic_name(best, name, sizeof name);
        append(msg, mlen, &mu, "%s: %.3f us (bucket m <= %lld; %d candidate%s", name, best_us,
               (long long)key.m_bucket, count, count == 1 ? "" : "s");
        if (res->too_slow) append(msg, mlen, &mu, ", %d cut as too slow", res->too_slow);
        append(msg, mlen, &mu, ")");
    } else {
        append(msg, mlen, &mu, "not tuned: no tactic passed (%d candidate%s: %d failed, %d too "
               "slow)", count, count == 1 ? "" : "s", res->failed, res->too_slow);
    }
    if (fu) append(msg, mlen, &mu, "; %s", failures);
    return FP4_OK;
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

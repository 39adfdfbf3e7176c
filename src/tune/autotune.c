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

/* E4M3 scales 2^-2 .. 2^2 with random mantissas (exponent field 5..9), so that D stays far
 * from overflow at any K; four per draw. */
static void fill_scales(uint8_t *p, int64_t n, uint64_t *s) {
    uint64_t v = 0;
    for (int64_t i = 0; i < n; i++) {
        if ((i & 3) == 0) v = splitmix(s);
        const unsigned bits = (unsigned)(v >> (16 * (i & 3)));
        p[i] = (uint8_t)((5 + (bits & 0xFFF) % 5) << 3 | (bits >> 12 & 7));
    }
}

static int64_t align256(int64_t x) { return (x + 255) / 256 * 256; }

/* The operands of one problem: `sets` copies of [A | A scales | B | B scales], and one D, in
 * the run's buffers (tune_run.pool, .dbuf). */
typedef struct operands {
    void *base;   /* sets * set_stride bytes */
    void *d;
    int64_t a_off, asf_off, b_off, bsf_off, set_stride, d_bytes;
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
    /* buffers kept from problem to problem (grown when a problem needs more) */
    uint8_t *host;          /* A and its scales of one set */
    int64_t host_bytes;
    uint8_t *host_b;        /* B and its scales, [B | pad | scales]: made once per weight */
    int64_t host_b_bytes, b_n, b_k;
    fp4_sf_layout b_layout;
    void *pool, *dbuf;
    int64_t pool_bytes, dbuf_bytes;
    observation *seen;
    int nseen, seen_cap;
} tune_run;

/* The run's buffers freed (fp4_tune's end), keeping a failure's message. */
static void free_buffers(tune_run *r) {
    char keep[1024];
    memcpy(keep, r->ctx->last_error, sizeof keep); /* freeing must not hide the failure */
    if (r->pool) fp4_free(r->ctx, r->pool);
    if (r->dbuf) fp4_free(r->ctx, r->dbuf);
    memcpy(r->ctx->last_error, keep, sizeof keep);
    free(r->host);
    free(r->host_b);
    free(r->seen);
    r->pool = r->dbuf = NULL;
    r->host = r->host_b = NULL;
    r->seen = NULL;
}

/* *buf holds at least `bytes` of the context's memory: a larger one replaces it, with room
 * to grow (twice the old size, up to the input sets' limit: a preset's M list grows). */
static fp4_status grow_device(fp4_ctx *ctx, void **buf, int64_t *have, int64_t bytes) {
    if (*have >= bytes) return FP4_OK;
    int64_t want = 2 * *have < (int64_t)MAX_SET_BYTES_TOTAL ? 2 * *have
                                                             : (int64_t)MAX_SET_BYTES_TOTAL;
    if (want < bytes) want = bytes;
    if (*buf) fp4_free(ctx, *buf);
    *buf = NULL;
    *have = 0;
    fp4_status st = fp4_malloc(ctx, buf, want);
    if (st == FP4_ERR_OUT_OF_MEMORY && want > bytes) { /* no room to spare: just what is asked */
        ctx->last_error[0] = 0;
        st = fp4_malloc(ctx, buf, want = bytes);
    }
    if (st == FP4_OK) *have = want;
    return st;
}

/* *buf holds at least `bytes` of host memory (the old contents are lost when it grows). */
static fp4_status grow_host(fp4_ctx *ctx, uint8_t **buf, int64_t *have, int64_t bytes) {
    if (*have >= bytes) return FP4_OK;
    free(*buf);
    *have = 0;
    if (!(*buf = malloc((size_t)bytes)))
        return FP4_FAIL(ctx, FP4_ERR_OUT_OF_MEMORY, "fp4_tune: %lld bytes of host memory",
                        (long long)bytes);
    *have = bytes;
    return FP4_OK;
}

/* Seeded random operands for d (prepared): one set made on the host and uploaded, the
 * others device-to-device copies of it (the same bytes at other addresses: cold in L2 all
 * the same, and far faster than uploads). B (the weight) is drawn from the seed and its shape
 * only, so the problems of one weight (a preset's M list) share the host copy made for the
 * first; A from the seed and the problem's index. */
static fp4_status make_operands(tune_run *r, const fp4_gemm_desc *d, uint64_t seed,
                                int problem, operands *o) {
    fp4_ctx *ctx = r->ctx;
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
    o->d_bytes = d->m * d->ldd * fp4_dtype_size(d->d_dtype);
    int sets = fp4_measure_sets(ctx, o->set_bytes);
    while (sets > 1 && (double)sets * (double)o->set_stride > MAX_SET_BYTES_TOTAL) sets--;
    o->sets = sets;

    /* A and its scales */
    fp4_status st = grow_host(ctx, &r->host, &r->host_bytes, o->b_off);
    if (st != FP4_OK) return st;
    uint8_t *host = r->host;
    memset(host, 0, (size_t)o->b_off);
    uint64_t s = seed ^ (uint64_t)problem * 0x9E37ull;
    /* E2M1 bytes: any byte is two valid elements */
    if (w4a4) {
        fill_bytes(host + o->a_off, a_bytes, &s);
        fill_scales(host + o->asf_off, asf_bytes, &s);
    } else {
        for (int64_t i = 0; i < d->m * d->k; i++) {
            const float x = (float)((double)(splitmix(&s) >> 11) * 0x1p-53 * 2.0 - 1.0);
            fp4_store_from_f32(host + o->a_off, d->a_dtype, i, x);
        }
    }
    /* B and its scales, unless the last problem's weight was this one */
    const int64_t b_part = o->set_stride - o->b_off;
    if (!r->host_b || r->b_n != d->n || r->b_k != d->k || r->b_layout != d->b_sf_layout) {
        r->b_n = 0;
        if ((st = grow_host(ctx, &r->host_b, &r->host_b_bytes, b_part)) != FP4_OK) return st;
        memset(r->host_b, 0, (size_t)b_part);
        uint64_t sb = seed ^ 0xB5ull ^ (uint64_t)d->n * 0x9E3779B97F4A7C15ull ^
                      (uint64_t)d->k * 0xBF58476D1CE4E5B9ull;
        fill_bytes(r->host_b, b_bytes, &sb);
        fill_scales(r->host_b + (o->bsf_off - o->b_off), bsf_bytes, &sb);
        r->b_n = d->n;
        r->b_k = d->k;
        r->b_layout = d->b_sf_layout;
    }

    st = grow_device(ctx, &r->pool, &r->pool_bytes, (int64_t)sets * o->set_stride);
    if (st == FP4_OK) st = grow_device(ctx, &r->dbuf, &r->dbuf_bytes, o->d_bytes);
    if (st != FP4_OK) return st;
    o->base = r->pool;
    o->d = r->dbuf;
    st = fp4_upload(ctx, o->base, host, o->b_off);
    if (st == FP4_OK) st = fp4_upload(ctx, (char *)o->base + o->b_off, r->host_b, b_part);
    /* sets [0, have) copied to [have, 2 have): log2(sets) copies */
    for (int have = 1; have < sets && st == FP4_OK; have *= 2) {
        const int n = have < sets - have ? have : sets - have;
        st = fp4_tune_copy(ctx, (char *)o->base + (int64_t)have * o->set_stride, o->base,
                           (int64_t)n * o->set_stride);
    }
    return st;
}

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

/* Tunes one prepared problem. FP4_OK unless something other than a tactic failed
 * (allocation, CUDA); res says how it went. */
static fp4_status tune_one(tune_run *r, const fp4_gemm_desc *problem, fp4_tune_result *res) {
    fp4_ctx *ctx = r->ctx;
    const fp4_tune_options *opt = r->opt;
    const double t_start = now_s();
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
        res->elapsed_s = now_s() - t_start;
        return FP4_OK;
    }

    operands o;
    double t0 = now_s();
    st = make_operands(r, &d, opt->seed, r->problem, &o);
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
    double min_est = 0;
    launch_ctx l = {ctx, d, &o};

    /* 1. estimates: the heuristic's tactic first (a good best estimate early), then the
     *    others, fastest at the previous M of this shape first (unseen ones before them). A
     *    tactic cut as too slow at the previous M, with a time there already over FP4_TUNE_CUT
     *    x the best estimate, is cut without a launch (a launch takes no less at a larger M);
     *    one whose first launches are over it stops there */
    for (int i = 0; i < count; i++) {
        alive[i] = 0;
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
        alive[i] = 1;
        if (min_est == 0 || est[i] < min_est) min_est = est[i];
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

        /* verified: one run on D poisoned with NaN, checked against the fp64 reference */
        fp4_gemm_desc run = l.desc;
        point_at_set(&run, &o, 0);
        const double tv = now_s();
        st = fp4_memset(ctx, o.d, 0xFF, o.d_bytes);
        if (st != FP4_OK) break;
        fp4_status gs = fp4_gemm(ctx, &run);
        fp4_verify_result v;
        memset(&v, 0, sizeof v);
        v.struct_size = sizeof v;
        if (gs == FP4_OK) gs = fp4_gemm_verify(ctx, &run, opt->verify_samples, opt->seed, &v);
        res->verify_s += now_s() - tv;
        if (gs != FP4_OK) {
            if (is_fatal(gs)) {
                st = gs;
                break;
            }
            snprintf(why, sizeof why, "failed: %s: %.220s", fp4_status_name(gs),
                     ctx->last_error);
            drop(&ps, i, 1, why);
            continue;
        }
        if (!v.passed) {
            snprintf(why, sizeof why, "wrong result: %.250s", v.message);
            drop(&ps, i, 1, why);
            continue;
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
        gs = fp4_tune_measure_planned(ctx, &md, &plan, &mr);
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
    res->elapsed_s = now_s() - t_start;
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
    res->elapsed_s = now_s() - t_start;
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
    free_buffers(&r);
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

/* cmd_gemm.c - `fp4gemm gemm`: one GEMM, on random inputs or on the user's own files.
 *
 *   1. the operands on the run device: random A and B (F32 drawn on the host) quantized there
 *      by the library (fp4_global_scale, fp4_quantize), or the files of 'fp4gemm quantize'
 *      with their global scales (--a/--a-sf/--a-gs, --b/--b-sf/--b-gs);
 *   2. the backend: the one asked for, or what the library selects (cli_select);
 *   3. --check: D poisoned with NaN, one GEMM, then fp4_gemm_verify (the project's one
 *      tolerance, against an fp64 dequantize-then-matmul of the same bytes, not a backend);
 *   4. the time: fp4_measure (docs/PERF.md's method: rotated copies of the operands, a CUDA
 *      graph of >= 10 launches, median/p20/p80 over >= 20 replays; the host clock on the CPU);
 *   5. --out: D written to a file. */
#include "cli_util.h"
#include "fp4gemm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const CMD = "gemm";

#define MAX_SETS 1024
#define SET_MEMORY_CAP ((double)(2LL << 30)) /* the rotated copies use at most 2 GiB */

typedef struct gemm_opts {
    int64_t m, n, k;
    fp4_tactic tactic; /* {AUTO, -1}: the library selects */
    fp4_dtype out_dtype;
    int w4a16;
    fp4_dtype a_dtype; /* W4A16 only */
    fp4_sf_layout layout;
    int device;
    int64_t seed, replays, samples;
    float max_seconds;
    int check;
    const char *a_path, *a_sf_path, *b_path, *b_sf_path, *out_path;
    float a_gs, b_gs;
    const char *weights, *layer; /* --weights/--layer: B is a real layer of a checkpoint */
    fp4_safetensors *ckpt;       /* opened by cmd_gemm */
} gemm_opts;

/* The operands of one input set on the run context, and their host copies. */
typedef struct operands {
    int64_t a_bytes, a_sf_bytes, b_bytes, b_sf_bytes;
    void *a, *a_sf, *b, *b_sf;           /* host: set 0 */
    void *dev[MAX_SETS][4];              /* per set: a, a_sf, b, b_sf on the run context */
    int sets;
    float gs_a, gs_b, alpha;             /* alpha = 1/(gs_a gs_b), W4A16 1/gs_b */
    float ws2_b;                         /* --weights: B's decode scale (alpha = ws2_b / gs_a) */
} operands;

/* x [rows, k] F32 (host) -> q, sf on the run context, quantized there with the tensor's own
 * global scale (computed there too). */
static int quantize_on_device(fp4_ctx *ctx, const float *x, int64_t rows, int64_t k,
                              fp4_sf_layout layout, const char *name, void *q, void *sf,
                              float *gs) {
    void *dev_x = NULL, *dev_gs = NULL;
    char what[96];
    snprintf(what, sizeof what, "quantizing %s on the run device", name);
    fp4_status st = cli_upload_new(ctx, x, rows * k * 4, &dev_x);
    if (st == FP4_OK) st = fp4_malloc(ctx, &dev_gs, sizeof(float));
    if (st == FP4_OK)
        st = fp4_global_scale(ctx, rows, k, FP4_DTYPE_F32, dev_x, k, dev_gs, NULL);
    if (st == FP4_OK) {
        fp4_quant_desc qd;
        fp4_quant_desc_init(&qd);
        qd.rows = rows;
        qd.k = k;
        qd.in_dtype = FP4_DTYPE_F32;
        qd.in = dev_x;
        qd.ld_in = k;
        qd.global_scale_ptr = dev_gs;
        qd.out_q = q;
        qd.out_sf = sf;
        qd.sf_layout = layout;
        st = fp4_quantize(ctx, &qd);
    }
    if (st == FP4_OK) st = fp4_synchronize(ctx, NULL);
    if (st == FP4_OK) st = fp4_download(ctx, gs, dev_gs, sizeof *gs);
    const int rc = st == FP4_OK ? CLI_OK : cli_lib_fail(CMD, what, st, ctx);
    fp4_free(ctx, dev_x);
    fp4_free(ctx, dev_gs);
    return rc;
}

static int read_operand(const char *path, int64_t bytes, const char *shape, void **host) {
    return cli_read_file(CMD, path, bytes, shape, host);
}

/* Set 0 of the operands on the run context: from the files, or random and quantized there;
 * then the host copies (downloaded) for the rotated sets. */
static int make_operands(fp4_ctx *ctx, const gemm_opts *o, operands *op) {
    const int64_t m = o->m, n = o->n, k = o->k;
    /* the random inputs are F32 on the host first: [m, k] and [n, k] must fit */
    if (cli_bytes(CMD, "A", m, k, 4) < 0 || cli_bytes(CMD, "B", n, k, 4) < 0) return CLI_USAGE;
    op->a_bytes = o->w4a16 ? m * k * fp4_dtype_size(o->a_dtype) : fp4_packed_bytes(m, k);
    op->a_sf_bytes = o->w4a16 ? 0 : fp4_sf_bytes(m, k, o->layout);
    op->b_bytes = fp4_packed_bytes(n, k);
    op->b_sf_bytes = fp4_sf_bytes(n, k, o->layout);
    op->gs_a = op->gs_b = 1.0f;
    fp4_status st = fp4_malloc(ctx, &op->dev[0][0], op->a_bytes);
    if (st == FP4_OK && op->a_sf_bytes) st = fp4_malloc(ctx, &op->dev[0][1], op->a_sf_bytes);
    /* --weights: the loader allocates B (below) */
    if (st == FP4_OK && !o->ckpt) st = fp4_malloc(ctx, &op->dev[0][2], op->b_bytes);
    if (st == FP4_OK && !o->ckpt) st = fp4_malloc(ctx, &op->dev[0][3], op->b_sf_bytes);
    if (st != FP4_OK) return cli_lib_fail(CMD, "allocating the operands", st, ctx);
    op->sets = 1;
    char shape[128];
    int rc = CLI_OK;

    /* A */
    if (o->a_path) {
        snprintf(shape, sizeof shape, o->w4a16 ? "[%lld, %lld] %s" : "[%lld, %lld/2] %s",
                 (long long)m, (long long)k, o->w4a16 ? fp4_dtype_name(o->a_dtype) : "packed E2M1");
        rc = read_operand(o->a_path, op->a_bytes, shape, &op->a);
        if (rc == CLI_OK && !o->w4a16) {
            snprintf(shape, sizeof shape, "%s E4M3 scales of [%lld, %lld]",
                     fp4_sf_layout_name(o->layout), (long long)m, (long long)k);
            rc = read_operand(o->a_sf_path, op->a_sf_bytes, shape, &op->a_sf);
            op->gs_a = o->a_gs;
        }
    } else {
        float *x = cli_alloc(CMD, m * k * 4, "the random A");
        if (!x) return CLI_FAIL;
        cli_rng rng;
        cli_rng_seed(&rng, (uint64_t)o->seed); /* activation-like: normal(0, 1), outliers */
        cli_fill_normal(&rng, x, m * k, 1.0f);
        if (o->w4a16) {
            op->a = cli_alloc(CMD, op->a_bytes, "A");
            if (op->a) cli_store_floats(x, m * k, o->a_dtype, op->a);
            else rc = CLI_FAIL;
        } else {
            rc = quantize_on_device(ctx, x, m, k, o->layout, "A", op->dev[0][0], op->dev[0][1],
                                    &op->gs_a);
        }
        free(x);
    }
    /* B */
    if (rc == CLI_OK && o->ckpt) { /* a ModelOpt NVFP4 layer, loaded in --layout */
        fp4_nvfp4_weight w;
        memset(&w, 0, sizeof w);
        w.struct_size = sizeof w;
        st = fp4_modelopt_load_weight(ctx, o->ckpt, o->layer, o->layout, &w);
        if (st != FP4_OK) return cli_lib_fail(CMD, "loading --layer", st, ctx);
        op->dev[0][2] = w.q; /* freed with the operands */
        op->dev[0][3] = w.sf;
        op->ws2_b = w.weight_scale_2;
    } else if (rc == CLI_OK && o->b_path) {
        snprintf(shape, sizeof shape, "[%lld, %lld/2] packed E2M1", (long long)n, (long long)k);
        rc = read_operand(o->b_path, op->b_bytes, shape, &op->b);
        snprintf(shape, sizeof shape, "%s E4M3 scales of [%lld, %lld]",
                 fp4_sf_layout_name(o->layout), (long long)n, (long long)k);
        if (rc == CLI_OK) rc = read_operand(o->b_sf_path, op->b_sf_bytes, shape, &op->b_sf);
        op->gs_b = o->b_gs;
    } else if (rc == CLI_OK) {
        float *x = cli_alloc(CMD, n * k * 4, "the random B");
        if (!x) return CLI_FAIL;
        cli_rng rng;
        cli_rng_seed(&rng, (uint64_t)o->seed ^ 0x5851F42D4C957F2Dull); /* weight-like */
        cli_fill_normal(&rng, x, n * k, 0.02f);
        rc = quantize_on_device(ctx, x, n, k, o->layout, "B", op->dev[0][2], op->dev[0][3],
                                &op->gs_b);
        free(x);
    }
    if (rc != CLI_OK) return rc;

    /* host copies of what was made on the device; uploads of what was read */
    void **host[4] = {&op->a, &op->a_sf, &op->b, &op->b_sf};
    const int64_t bytes[4] = {op->a_bytes, op->a_sf_bytes, op->b_bytes, op->b_sf_bytes};
    for (int i = 0; i < 4 && st == FP4_OK; i++) {
        if (!bytes[i]) continue;
        if (*host[i]) {
            st = fp4_upload(ctx, op->dev[0][i], *host[i], bytes[i]);
        } else {
            if (!(*host[i] = cli_alloc(CMD, bytes[i], "a host copy"))) return CLI_FAIL;
            st = fp4_download(ctx, *host[i], op->dev[0][i], bytes[i]);
        }
    }
    if (st != FP4_OK) return cli_lib_fail(CMD, "moving the operands", st, ctx);
    op->alpha = o->w4a16 ? 1.0f / op->gs_b : 1.0f / (op->gs_a * op->gs_b);
    if (op->ws2_b > 0.0f) { /* ModelOpt's decode scale: values are e2m1 * e4m3 * ws2 */
        op->gs_b = 1.0f / op->ws2_b;
        op->alpha = o->w4a16 ? op->ws2_b : op->ws2_b / op->gs_a;
    }
    if (!isfinite(op->alpha) || op->alpha == 0.0f)
        return cli_fail(CMD, CLI_FAIL, "alpha = 1 / (gs_a * gs_b) = 1 / (%g * %g) is not a "
                        "usable number", (double)op->gs_a, (double)op->gs_b);
    return CLI_OK;
}

/* More copies of set 0 (distinct addresses, the same bytes), so that a timed replay reads
 * inputs that are not in L2: as many as fp4_measure_sets asks, within SET_MEMORY_CAP. */
static void make_sets(fp4_ctx *ctx, operands *op) {
    const double set_bytes =
        (double)(op->a_bytes + op->a_sf_bytes + op->b_bytes + op->b_sf_bytes);
    int want = fp4_measure_sets(ctx, set_bytes);
    while (want > 1 && want * set_bytes > SET_MEMORY_CAP) want--;
    const void *host[4] = {op->a, op->a_sf, op->b, op->b_sf};
    const int64_t bytes[4] = {op->a_bytes, op->a_sf_bytes, op->b_bytes, op->b_sf_bytes};
    for (int s = 1; s < want && s < MAX_SETS; s++) {
        fp4_status st = FP4_OK;
        for (int i = 0; i < 4 && st == FP4_OK; i++)
            if (bytes[i]) st = cli_upload_new(ctx, host[i], bytes[i], &op->dev[s][i]);
        if (st != FP4_OK) { /* out of memory: fewer sets (the time says "warm") */
            for (int i = 0; i < 4; i++) fp4_free(ctx, op->dev[s][i]);
            memset(op->dev[s], 0, sizeof op->dev[s]);
            break;
        }
        op->sets = s + 1;
    }
}

static void free_operands(fp4_ctx *ctx, operands *op) {
    for (int s = 0; s < MAX_SETS && ctx; s++)
        for (int i = 0; i < 4; i++) fp4_free(ctx, op->dev[s][i]);
    free(op->a);
    free(op->a_sf);
    free(op->b);
    free(op->b_sf);
}

typedef struct launch_arg {
    fp4_ctx *ctx;
    fp4_gemm_desc desc;
    const operands *op;
} launch_arg;

/* fp4_measure's launch: the GEMM on input set `set`. */
static fp4_status launch_gemm(void *user, int set, struct CUstream_st *stream) {
    launch_arg *l = user;
    fp4_gemm_desc d = l->desc;
    d.a = l->op->dev[set][0];
    d.a_sf = l->op->dev[set][1];
    d.b = l->op->dev[set][2];
    d.b_sf = l->op->dev[set][3];
    d.stream = stream;
    return fp4_gemm(l->ctx, &d);
}

/* 3. D poisoned, one GEMM, the library's check. */
static int check_gemm(fp4_ctx *ctx, const gemm_opts *o, launch_arg *l, int64_t d_bytes) {
    fp4_status st = fp4_memset(ctx, l->desc.d, 0xFF, d_bytes); /* NaN in F32, F16, BF16 */
    if (st == FP4_OK) st = launch_gemm(l, 0, NULL);
    if (st != FP4_OK) return cli_lib_fail(CMD, fp4_backend_name(l->desc.backend), st, ctx);
    fp4_verify_result r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    const int64_t all = o->m * o->n;
    /* every element while that costs at most 2^28 multiply-adds (well under a second) */
    const double macs = (double)all * (double)o->k;
    const int samples = o->samples > 0 ? (int)o->samples : macs <= 268435456.0 ? (int)all : 4096;
    if ((st = fp4_gemm_verify(ctx, &l->desc, samples, (uint64_t)o->seed, &r)) != FP4_OK)
        return cli_lib_fail(CMD, "checking D", st, ctx);
    char which[96];
    if (r.samples >= all)
        snprintf(which, sizeof which, "all %lld elements", (long long)all);
    else
        snprintf(which, sizeof which, "%lld sampled elements of %lld", (long long)r.samples,
                 (long long)all);
    cli_say("check     %s, vs an fp64 dequantize-then-matmul: worst %.3gx the tolerance, "
            "rel L2 err %.3g (limit %.3g), %lld NaN/Inf: %s\n", which, r.worst_ratio, r.rel_l2,
            r.rel_l2_limit, (long long)r.nonfinite, r.passed ? "OK" : "FAIL");
    fflush(cli_msg());
    if (!r.passed) return cli_fail(CMD, CLI_FAIL, "check failed: %s", r.message);
    return CLI_OK;
}

/* 4. the time, as fp4_measure gives it. */
static int time_gemm(fp4_ctx *ctx, const gemm_opts *o, launch_arg *l, const operands *op) {
    fp4_measure_desc md;
    fp4_measure_desc_init(&md);
    md.launch = launch_gemm;
    md.user = l;
    md.sets = op->sets;
    md.set_bytes = (double)(op->a_bytes + op->a_sf_bytes + op->b_bytes + op->b_sf_bytes);
    md.min_replays = (int)o->replays;
    md.budget_seconds = (double)o->max_seconds;
    fp4_measure_result r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    const fp4_status st = fp4_measure(ctx, &md, &r);
    if (st != FP4_OK) return cli_lib_fail(CMD, fp4_backend_name(l->desc.backend), st, ctx);
    const double flops = 2.0 * (double)o->m * (double)o->n * (double)o->k;
    if (r.too_slow) {
        cli_say("time      about %.1f us per GEMM (estimated from a few runs: %d replays of %d "
                "would take over --max-seconds %g)\n", r.estimate_us, r.replays, r.launches,
                (double)o->max_seconds);
        if (r.estimate_us > 0)
            cli_say("speed     about %.3g TFLOP/s\n", flops / r.estimate_us / 1e6);
        return CLI_OK;
    }
    cli_say("time      %.2f us per GEMM: median of %d replays (p20 %.2f, p80 %.2f) of %d launches "
            "over %d input set%s%s, %s\n", r.median_us, r.replays, r.p20_us, r.p80_us, r.launches,
            r.sets, r.sets == 1 ? "" : "s",
            o->device >= 0 ? (r.cold ? " (cold: > 5 L2)" : " (warm)") : "",
            r.graph ? "one CUDA graph" : r.note);
    if (r.median_us > 0) cli_say("speed     %.3g TFLOP/s\n", flops / r.median_us / 1e6);
    return CLI_OK;
}

static int run_gemm(const gemm_opts *o) {
    fp4_ctx *run = NULL;
    operands *op = calloc(1, sizeof *op);
    void *dev_d = NULL, *d_host = NULL;
    int rc = CLI_OK;
    fp4_status st;
    if (!op) return cli_fail(CMD, CLI_FAIL, "out of memory");
    const int64_t d_bytes = cli_bytes(CMD, "D", o->m, o->n, fp4_dtype_size(o->out_dtype));
    if (d_bytes < 0) {
        free(op);
        return CLI_USAGE;
    }
    if ((st = fp4_create(&run, o->device)) != FP4_OK) {
        rc = cli_lib_fail(CMD, "creating a context", st, NULL);
        goto done;
    }
    if ((rc = make_operands(run, o, op)) != CLI_OK) goto done;
    if ((st = fp4_malloc(run, &dev_d, d_bytes)) != FP4_OK ||
        (st = fp4_memset(run, dev_d, 0xFF, d_bytes)) != FP4_OK) {
        rc = cli_lib_fail(CMD, "allocating D", st, run);
        goto done;
    }
    launch_arg l = {.ctx = run, .op = op};
    fp4_gemm_desc *desc = &l.desc;
    fp4_gemm_desc_init(desc);
    desc->m = o->m;
    desc->n = o->n;
    desc->k = o->k;
    desc->a_dtype = o->w4a16 ? o->a_dtype : FP4_DTYPE_E2M1;
    desc->a = op->dev[0][0];
    desc->a_sf = op->dev[0][1];
    desc->a_sf_layout = desc->b_sf_layout = o->layout;
    desc->b = op->dev[0][2];
    desc->b_sf = op->dev[0][3];
    desc->d_dtype = o->out_dtype;
    desc->d = dev_d;
    desc->alpha = op->alpha;

    /* 2. the tactic: the one asked for, or the library's selection; the library says why */
    char device_name[320], why[512], tactic_name[96];
    cli_describe_device(o->device, device_name, sizeof device_name);
    desc->backend = o->tactic.backend;
    desc->config = o->tactic.config;
    fp4_tactic chosen;
    if ((st = cli_select(run, desc, &chosen, tactic_name, sizeof tactic_name, why,
                         sizeof why)) != FP4_OK) {
        /* why names the backend or tactic asked for: "backend cuda_simt can't run this
         * problem: needs a CUDA device; ..." */
        if (o->tactic.backend != FP4_BACKEND_AUTO && st == FP4_ERR_NOT_SUPPORTED)
            rc = cli_fail(CMD, CLI_FAIL, "on %s: %s", device_name, why);
        else
            rc = cli_lib_fail(CMD, "choosing the backend", st, run);
        goto done;
    }
    desc->backend = chosen.backend; /* every run below is this tactic */
    desc->config = chosen.config;

    cli_say("gemm      M=%lld N=%lld K=%lld, ", (long long)o->m, (long long)o->n, (long long)o->k);
    if (o->w4a16)
        cli_say("W4A16 (A %s, B NVFP4)", fp4_dtype_name(o->a_dtype));
    else
        cli_say("W4A4 (A and B NVFP4)");
    cli_say(", %s scales, %s out, ", fp4_sf_layout_name(o->layout), fp4_dtype_name(o->out_dtype));
    if (o->a_path || o->b_path)
        cli_say("inputs %s%s%s", o->a_path ? "A from " : "", o->a_path ? o->a_path : "",
                o->a_path && o->b_path ? ", " : "");
    if (o->b_path) cli_say("B from %s", o->b_path);
    if (o->ckpt) cli_say("%sB = layer %s of %s", o->a_path ? ", " : "", o->layer, o->weights);
    if (!o->a_path || !(o->b_path || o->ckpt))
        cli_say("%sseed %lld", o->a_path || o->b_path || o->ckpt ? ", random A " : "",
                                          (long long)o->seed);
    if (o->ckpt) /* ModelOpt's decode scale */
        cli_say(o->w4a16 ? "\nscales    ws2_b (weight_scale_2) %.9g, alpha %.9g\n"
                         : "\nscales    gs_a %.9g, ws2_b (weight_scale_2) %.9g, alpha %.9g\n",
                o->w4a16 ? (double)op->ws2_b : (double)op->gs_a,
                o->w4a16 ? (double)op->alpha : (double)op->ws2_b, (double)op->alpha);
    else if (o->w4a16) /* A is not quantized: it has no global scale */
        cli_say("\nscales    gs_b %.9g, alpha %.9g\n", (double)op->gs_b, (double)op->alpha);
    else
        cli_say("\nscales    gs_a %.9g, gs_b %.9g, alpha %.9g\n", (double)op->gs_a,
                (double)op->gs_b, (double)op->alpha);
    cli_say("backend   %s (%s)\n", tactic_name, why);
    cli_say("device    %s\n", device_name);
    fflush(cli_msg());

    if (o->check && (rc = check_gemm(run, o, &l, d_bytes)) != CLI_OK) goto done;
    if (!o->check && (st = launch_gemm(&l, 0, NULL)) != FP4_OK) { /* D for --out */
        rc = cli_lib_fail(CMD, fp4_backend_name(desc->backend), st, run);
        goto done;
    }
    if (o->out_path) { /* D of the checked run (every timed run writes the same D) */
        if (!(d_host = cli_alloc(CMD, d_bytes, "D"))) {
            rc = CLI_FAIL;
            goto done;
        }
        if ((st = fp4_synchronize(run, NULL)) != FP4_OK ||
            (st = fp4_download(run, d_host, dev_d, d_bytes)) != FP4_OK) {
            rc = cli_lib_fail(CMD, "downloading D", st, run);
            goto done;
        }
        if ((rc = cli_write_file(CMD, o->out_path, d_host, d_bytes)) != CLI_OK) goto done;
        cli_say("wrote     %s (%lld bytes, [%lld, %lld] %s)\n", o->out_path,
                (long long)d_bytes, (long long)o->m, (long long)o->n,
                fp4_dtype_name(o->out_dtype));
    }
    if (o->max_seconds > 0) {
        make_sets(run, op);
        rc = time_gemm(run, o, &l, op);
    }

done:
    if (run) fp4_free(run, dev_d);
    free_operands(run, op);
    free(op);
    free(d_host);
    fp4_destroy(run);
    return rc;
}

static int cmd_gemm_checked(cli_command *cmdp, gemm_opts *op, int no_time);

int cmd_gemm(int argc, char **argv) {
    gemm_opts o = {.tactic = {FP4_BACKEND_AUTO, -1}, .out_dtype = FP4_DTYPE_BF16,
                   .a_dtype = FP4_DTYPE_BF16, .layout = FP4_SF_SWIZZLED_128x4,
                   .device = -2, .seed = 1, .replays = 0, .max_seconds = 10.0f};
    int no_time = 0;
    cli_opt opts[] = {
        {.name = "-m", .metavar = "M", .kind = CLI_INT, .dest = &o.m, .required = 1, .min = 1,
         .max = CLI_MAX_DIM, .help = "rows of A and D"},
        {.name = "-n", .metavar = "N", .kind = CLI_INT, .dest = &o.n, .min = 1,
         .max = CLI_MAX_DIM, .help = "rows of B (the weight), columns of D (required\nunless --weights)"},
        {.name = "-k", .metavar = "K", .kind = CLI_INT, .dest = &o.k, .min = 1,
         .max = CLI_MAX_DIM, .help = "the reduction length, a multiple of 16 (required\nunless --weights)"},
        {.name = "--backend", .metavar = "B", .kind = CLI_TACTIC, .dest = &o.tactic,
         .help = "auto, a backend (cpu_ref, cuda_simt, cuda_mma, ...)\n"
                 "or a tactic backend/config (cuda_simt/gemv_mr8;\n"
                 "'fp4gemm info' lists them) (default auto: see\n"
                 "'fp4gemm --help'); one that can't run fails with the\n"
                 "reason"},
        {.name = "--out-dtype", .metavar = "T", .kind = CLI_DTYPE, .dest = &o.out_dtype,
         .allowed = CLI_DT_FLOATS, .help = "D's type: bf16, f16 or f32 (default bf16)"},
        {.name = "--w4a16", .kind = CLI_FLAG, .dest = &o.w4a16,
         .help = "weight-only: A is BF16/F16, not NVFP4 (default off)"},
        {.name = "--a-dtype", .metavar = "T", .kind = CLI_DTYPE, .dest = &o.a_dtype,
         .allowed = CLI_DT_HALVES,
         .help = "A's type with --w4a16: bf16 or f16 (default bf16)"},
        {.name = "--layout", .metavar = "L", .kind = CLI_LAYOUT, .dest = &o.layout,
         .help = "scale layout of A and B: swizzled (128x4 tiles, as\n"
                 "cuBLASLt) or linear (default swizzled)"},
        {.name = "--device", .metavar = "D", .kind = CLI_DEVICE, .dest = &o.device,
         .help = "CUDA device number, or cpu (-1) (default: device 0\n"
                 "if there is a GPU, else the CPU)"},
        {.name = "--seed", .metavar = "S", .kind = CLI_INT, .dest = &o.seed, .min = 0,
         .max = INT64_MAX, .help = "seed of the random inputs and of the check's\n"
                                   "samples (default 1)"},
        {.name = "--a", .metavar = "PATH", .kind = CLI_STRING, .dest = &o.a_path,
         .help = "A from a file instead of random: the packed E2M1\n"
                 "[M, K/2] of 'fp4gemm quantize' (with --a-sf, --a-gs),\n"
                 "or with --w4a16 raw [M, K] elements of --a-dtype"},
        {.name = "--a-sf", .metavar = "PATH", .kind = CLI_STRING, .dest = &o.a_sf_path,
         .help = "A's E4M3 scales, in the layout of --layout"},
        {.name = "--a-gs", .metavar = "GS", .kind = CLI_FLOAT, .dest = &o.a_gs,
         .help = "A's encode global scale, as 'fp4gemm quantize'\n"
                 "printed it (the decimal or the f32 bits 0x...);\n"
                 "for --recipe modelopt files, 1/ws2 (the value it\n"
                 "prints for dequantize), not ws2"},
        {.name = "--b", .metavar = "PATH", .kind = CLI_STRING, .dest = &o.b_path,
         .help = "B from a file: the packed E2M1 [N, K/2] (with --b-sf,\n--b-gs)"},
        {.name = "--b-sf", .metavar = "PATH", .kind = CLI_STRING, .dest = &o.b_sf_path,
         .help = "B's E4M3 scales, in the layout of --layout"},
        {.name = "--b-gs", .metavar = "GS", .kind = CLI_FLOAT, .dest = &o.b_gs,
         .help = "B's encode global scale, as for --a-gs"},
        {.name = "--weights", .metavar = "PATH", .kind = CLI_STRING, .dest = &o.weights,
         .help = "B from a ModelOpt NVFP4 checkpoint (a .safetensors\nfile, an index .json or a "
                 "folder; 'fp4gemm\ncheckpoint'): the layer --layer, N and K its shape"},
        {.name = "--layer", .metavar = "NAME", .kind = CLI_STRING, .dest = &o.layer,
         .help = "the layer of --weights, e.g. model.layers.0.mlp.up_proj\n(its .weight, "
                 ".weight_scale, .weight_scale_2)"},
        {.name = "--out", .metavar = "PATH", .kind = CLI_STRING, .dest = &o.out_path,
         .help = "write D, raw [M, N] of --out-dtype ('-': stdout)"},
        {.name = "--check", .kind = CLI_FLAG, .dest = &o.check,
         .help = "check D (fp4_gemm_verify) before timing; exit 1 if\n"
                 "it fails (default off)"},
        {.name = "--samples", .metavar = "N", .kind = CLI_INT, .dest = &o.samples, .min = 1,
         .max = 100000000, .help = "elements --check compares (default: all when\n"
                                   "M*N*K <= 2^28, else 4096)"},
        {.name = "--replays", .metavar = "N", .kind = CLI_INT, .dest = &o.replays, .min = 20,
         .max = 100000, .help = "timed replays, at least (default 20)"},
        {.name = "--max-seconds", .metavar = "S", .kind = CLI_FLOAT, .dest = &o.max_seconds,
         .help = "time budget: when the measurement would take longer,\n"
                 "print the estimate of a few runs (default 10)"},
        {.name = "--no-time", .kind = CLI_FLAG, .dest = &no_time,
         .help = "run (and check) without timing"},
    };
    cli_command cmd = {
        .name = CMD,
        .usage = "-m M -n N -k K [options]",
        .about = "Runs D[M, N] = alpha * A[M, K] * B[N, K]^T and prints the backend, the device,\n"
                 "the time per GEMM and TFLOP/s. Random inputs unless --a/--b are given: A is\n"
                 "drawn as normal(0, 1) and B as normal(0, 0.02), each with about 1 in 64\n"
                 "values an outlier 20x larger; both are quantized to NVFP4 by the library on\n"
                 "the run device with their own global scale, and alpha = 1 / (gs_a * gs_b)\n"
                 "(W4A16: 1 / gs_b).",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .notes = "--check: D is filled with NaN, the GEMM runs once, and fp4_gemm_verify\n"
                 "compares it with an fp64 dequantize-then-matmul of the same NVFP4 bytes\n"
                 "(docs/PERF.md gives the one tolerance of the project), and scans all of D\n"
                 "for NaN/Inf. It uses the same alpha, so it can't tell a wrong --a-gs or\n"
                 "--b-gs. The time is fp4_measure's: on a GPU, a CUDA graph of >= 10\n"
                 "launches over copies of the operands spanning > 5 L2 sizes, median, p20\n"
                 "and p80 over >= 20 replays; on the CPU the same loop on the host clock.\n"
                 "Files as 'fp4gemm quantize' writes them, e.g.\n"
                 "  fp4gemm quantize --rows 4096 -k 4096 --in-dtype bf16 --in w.bin\n"
                 "      --out-q w.q --out-sf w.sf          (prints: global scale G ...)\n"
                 "  fp4gemm gemm -m 16 -n 4096 -k 4096 --b w.q --b-sf w.sf --b-gs G --check",
    };
    int rc = cli_parse(&cmd, argc, argv);
    if (rc != CLI_RUN) return rc;
    if (!o.weights != !o.layer)
        return cli_fail(CMD, CLI_USAGE, "--weights and --layer go together");
    if (o.weights && o.b_path) return cli_fail(CMD, CLI_USAGE, "--weights excludes --b");
    if (!o.weights && (!cli_find(&cmd, "-n")->given || !cli_find(&cmd, "-k")->given))
        return cli_fail(CMD, CLI_USAGE, "missing %s N (see 'fp4gemm gemm --help')",
                        cli_find(&cmd, "-n")->given ? "-k" : "-n");
    if (o.weights) { /* N and K from the layer's packed weight [N, K/2] */
        fp4_status st = fp4_safetensors_open(o.weights, &o.ckpt);
        if (st != FP4_OK) return cli_lib_fail(CMD, "opening --weights", st, NULL);
        char name[1100];
        fp4_st_tensor t;
        snprintf(name, sizeof name, "%s.weight", o.layer);
        const int64_t i = fp4_safetensors_find(o.ckpt, name);
        if (i < 0 || fp4_safetensors_tensor(o.ckpt, i, &t) != FP4_OK || t.ndim != 2 ||
            t.dtype != FP4_ST_U8) {
            fp4_safetensors_close(o.ckpt);
            return cli_fail(CMD, CLI_FAIL, "%s: no NVFP4 layer '%s' (%s: %s)", o.weights, o.layer,
                            name, i < 0 ? "missing" : "not a U8 [N, K/2] packed weight");
        }
        const int64_t n = t.shape[0], k = 2 * t.shape[1];
        if ((cli_find(&cmd, "-n")->given && o.n != n) || (cli_find(&cmd, "-k")->given && o.k != k)) {
            fp4_safetensors_close(o.ckpt);
            return cli_fail(CMD, CLI_USAGE, "-n/-k differ from layer %s's [N, K] = [%lld, %lld]",
                            o.layer, (long long)n, (long long)k);
        }
        o.n = n, o.k = k;
    }
    rc = cmd_gemm_checked(&cmd, &o, no_time);
    fp4_safetensors_close(o.ckpt);
    return rc;
}

/* The rest of cmd_gemm's checks, then the run. */
static int cmd_gemm_checked(cli_command *cmdp, gemm_opts *op, int no_time) {
    cli_command cmd = *cmdp;
    gemm_opts o = *op;
    int rc;
    if ((rc = cli_check_k(CMD, "-k", o.k)) != CLI_OK) return rc;
    if (cli_find(&cmd, "--a-dtype")->given && !o.w4a16)
        return cli_fail(CMD, CLI_USAGE, "--a-dtype applies only with --w4a16");
    const int a_sf = cli_find(&cmd, "--a-sf")->given, a_gs = cli_find(&cmd, "--a-gs")->given;
    const int b_sf = cli_find(&cmd, "--b-sf")->given, b_gs = cli_find(&cmd, "--b-gs")->given;
    if (o.w4a16 && (a_sf || a_gs))
        return cli_fail(CMD, CLI_USAGE, "--a-sf and --a-gs don't apply with --w4a16 (A is not "
                        "quantized)");
    if (!o.w4a16 && o.a_path && !(a_sf && a_gs))
        return cli_fail(CMD, CLI_USAGE, "--a needs --a-sf and --a-gs (the scales and the global "
                        "scale that 'fp4gemm quantize' wrote and printed)");
    if (!o.a_path && (a_sf || a_gs))
        return cli_fail(CMD, CLI_USAGE, "--a-sf and --a-gs need --a");
    if (o.b_path && !(b_sf && b_gs))
        return cli_fail(CMD, CLI_USAGE, "--b needs --b-sf and --b-gs (the scales and the global "
                        "scale that 'fp4gemm quantize' wrote and printed)");
    if (!o.b_path && (b_sf || b_gs))
        return cli_fail(CMD, CLI_USAGE, "--b-sf and --b-gs need --b");
    if (no_time && (cli_find(&cmd, "--replays")->given || cli_find(&cmd, "--max-seconds")->given))
        return cli_fail(CMD, CLI_USAGE, "--no-time excludes --replays and --max-seconds");
    if (no_time) o.max_seconds = 0.0f;
    const char *paths[1] = {o.out_path}, *names[1] = {"--out"};
    if (cli_check_outputs(CMD, paths, names, 1) != CLI_OK) return CLI_USAGE;
    const char *in_paths[4] = {o.a_path, o.a_sf_path, o.b_path, o.b_sf_path};
    const char *in_names[4] = {"--a", "--a-sf", "--b", "--b-sf"};
    if (cli_check_inputs(CMD, paths, names, 1, in_paths, in_names, 4) != CLI_OK)
        return CLI_USAGE;
    if (o.device == -2) o.device = cli_default_device();
    return run_gemm(&o);
}

/* cmd_gemm.c - `fp4gemm gemm`: one GEMM on random inputs. Quantize A and B on the CPU (the
 * reference quantizer), run on the chosen device and backend, time it, and with --check
 * compare D with cpu_ref on the same quantized bytes. */
#include "cli_util.h"
#include "fp4gemm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const CMD = "gemm";

typedef struct gemm_opts {
    int64_t m, n, k;
    fp4_backend backend;
    fp4_dtype out_dtype;
    int w4a16;
    fp4_dtype a_dtype; /* W4A16 only */
    fp4_sf_layout layout;
    int device;
    int64_t seed, iters, warmup;
    int check;
} gemm_opts;

/* The operands on the host, exactly as the run context and the reference both see them. */
typedef struct operands {
    void *a;       /* E2M1 [m, k/2] bytes, or BF16/F16 [m, k] elements (W4A16) */
    uint8_t *a_sf; /* fp4_sf_bytes(m, k, layout) bytes; NULL for W4A16 */
    uint8_t *b;    /* [n, k/2] bytes */
    uint8_t *b_sf; /* fp4_sf_bytes(n, k, layout) bytes */
    int64_t a_bytes, a_sf_bytes, b_bytes, b_sf_bytes;
    float alpha;   /* 1 / (gs_a * gs_b), or 1 / gs_b for W4A16 */
} operands;

static void free_operands(operands *op) {
    free(op->a);
    free(op->a_sf);
    free(op->b);
    free(op->b_sf);
}

/* x [rows, k] F32 -> q, sf (new buffers) and the global scale, on the CPU context. */
static int quantize_on_cpu(fp4_ctx *cpu, const float *x, int64_t rows, int64_t k,
                           fp4_sf_layout layout, const char *name, uint8_t **q, uint8_t **sf,
                           int64_t *q_bytes, int64_t *sf_bytes, float *gs) {
    char what[64];
    snprintf(what, sizeof what, "global scale of %s", name);
    fp4_status st = fp4_global_scale(cpu, rows, k, FP4_DTYPE_F32, x, k, gs, NULL);
    if (st != FP4_OK) return cli_lib_fail(CMD, what, st, cpu);
    *q_bytes = fp4_packed_bytes(rows, k);
    *sf_bytes = fp4_sf_bytes(rows, k, layout);
    *q = cli_alloc(CMD, *q_bytes, name);
    *sf = cli_alloc(CMD, *sf_bytes, name);
    if (!*q || !*sf) return CLI_FAIL;
    fp4_quant_desc qd;
    fp4_quant_desc_init(&qd);
    qd.rows = rows;
    qd.k = k;
    qd.in_dtype = FP4_DTYPE_F32;
    qd.in = x;
    qd.ld_in = k;
    qd.global_scale = *gs;
    qd.out_q = *q;
    qd.out_sf = *sf;
    qd.sf_layout = layout;
    snprintf(what, sizeof what, "quantizing %s", name);
    st = fp4_quantize(cpu, &qd);
    return st == FP4_OK ? CLI_OK : cli_lib_fail(CMD, what, st, cpu);
}

/* Random A [m, k] and B [n, k], quantized (A only converted, for W4A16). */
static int make_operands(fp4_ctx *cpu, const gemm_opts *o, operands *op) {
    const int64_t x_bytes = cli_bytes(CMD, "A or B", o->m > o->n ? o->m : o->n, o->k, 4);
    if (x_bytes < 0) return CLI_USAGE;
    float *x = cli_alloc(CMD, x_bytes, "the random inputs");
    if (!x) return CLI_FAIL;
    cli_rng rng;
    float gs_a = 1.0f, gs_b = 1.0f;
    int rc = CLI_OK;

    /* A: activation-like, normal(0, 1) with outliers */
    cli_rng_seed(&rng, (uint64_t)o->seed);
    cli_fill_normal(&rng, x, o->m * o->k, 1.0f);
    if (o->w4a16) {
        op->a_bytes = o->m * o->k * fp4_dtype_size(o->a_dtype);
        op->a = cli_alloc(CMD, op->a_bytes, "A");
        if (!op->a) rc = CLI_FAIL;
        else cli_store_floats(x, o->m * o->k, o->a_dtype, op->a);
    } else {
        uint8_t *q = NULL;
        rc = quantize_on_cpu(cpu, x, o->m, o->k, o->layout, "A", &q, &op->a_sf, &op->a_bytes,
                             &op->a_sf_bytes, &gs_a);
        op->a = q;
    }
    /* B: weight-like, normal(0, 0.02) with outliers, from its own stream */
    if (rc == CLI_OK) {
        cli_rng_seed(&rng, (uint64_t)o->seed ^ 0x5851F42D4C957F2Dull);
        cli_fill_normal(&rng, x, o->n * o->k, 0.02f);
        rc = quantize_on_cpu(cpu, x, o->n, o->k, o->layout, "B", &op->b, &op->b_sf, &op->b_bytes,
                             &op->b_sf_bytes, &gs_b);
    }
    free(x);
    op->alpha = o->w4a16 ? 1.0f / gs_b : 1.0f / (gs_a * gs_b);
    return rc;
}

#define MAX_SAMPLED_ROWS 32
/* NOTE: cpu_ref is the obvious triple loop, about 25 ns per multiply-add on one core, so a
 * full check stops at 2^27 multiply-adds (a few seconds); above it, a sample of rows. */
#define FULL_CHECK_LIMIT 134217728.0

/* The rows --check compares: all M of them, or when M*N*K > 2^27 an evenly spaced sample
 * (first and last included) of at most 32 rows and, when N*K allows, 2^27 multiply-adds,
 * written into rows[]. Returns how many. */
static int64_t sample_rows(const gemm_opts *o, int64_t rows[MAX_SAMPLED_ROWS]) {
    const double nk = (double)o->n * (double)o->k;
    if ((double)o->m * nk <= FULL_CHECK_LIMIT) return o->m;
    int64_t s = o->m < MAX_SAMPLED_ROWS ? o->m : MAX_SAMPLED_ROWS;
    while (s > 2 && (double)s * nk > FULL_CHECK_LIMIT) s /= 2;
    if (s == o->m) return o->m;
    for (int64_t i = 0; i < s; i++) rows[i] = i * (o->m - 1) / (s - 1);
    return s;
}

/* Row i of the checked ones. */
static int64_t checked_row(const gemm_opts *o, const int64_t *rows, int64_t count, int64_t i) {
    return count == o->m ? i : rows[i];
}

/* The tolerance on ||D - ref||_2 / ||ref||_2: the output type's rounding, and for F32 the
 * order of the FP32 additions over K. */
static double tolerance(fp4_dtype out, int64_t k) {
    if (out == FP4_DTYPE_BF16) return 1e-2;
    if (out == FP4_DTYPE_F16) return 2e-3;
    return 1e-5 * fmax(1.0, sqrt((double)k / 4096.0));
}

/* D's checked rows (d_rows: [count, n] in out_dtype) against cpu_ref on the same bytes. */
static int check_against_reference(fp4_ctx *cpu, const gemm_opts *o, const operands *op,
                                   const int64_t *rows, int64_t count, const void *d_rows) {
    const int sampled = count < o->m;
    const int64_t a_row = o->w4a16 ? o->k * fp4_dtype_size(o->a_dtype) : o->k / 2;
    const int64_t sf_bytes = o->w4a16 ? 0 : fp4_sf_bytes(count, o->k, o->layout);
    uint8_t *a = (uint8_t *)op->a, *a_sf = op->a_sf;
    float *ref = cli_alloc(CMD, count * o->n * 4, "the reference output");
    int rc = ref ? CLI_OK : CLI_FAIL;
    if (rc == CLI_OK && sampled) {
        /* the sampled rows of A, with their scales re-packed for `count` rows */
        a = cli_alloc(CMD, count * a_row, "the sampled rows of A");
        a_sf = sf_bytes ? calloc(1, (size_t)sf_bytes) : NULL;
        if (!a || (sf_bytes && !a_sf)) rc = cli_fail(CMD, CLI_FAIL, "out of memory for the check");
        for (int64_t i = 0; rc == CLI_OK && i < count; i++) {
            memcpy(a + i * a_row, (const uint8_t *)op->a + rows[i] * a_row, (size_t)a_row);
            for (int64_t kb = 0; sf_bytes && kb < o->k / 16; kb++)
                a_sf[fp4_sf_offset(i, kb, o->k, o->layout)] =
                    op->a_sf[fp4_sf_offset(rows[i], kb, o->k, o->layout)];
        }
    }
    if (rc == CLI_OK) {
        fp4_gemm_desc rd;
        fp4_gemm_desc_init(&rd);
        rd.m = count;
        rd.n = o->n;
        rd.k = o->k;
        rd.a_dtype = o->w4a16 ? o->a_dtype : FP4_DTYPE_E2M1;
        rd.a = a;
        rd.a_sf = a_sf;
        rd.a_sf_layout = rd.b_sf_layout = o->layout;
        rd.b = op->b;
        rd.b_sf = op->b_sf;
        rd.d_dtype = FP4_DTYPE_F32;
        rd.d = ref;
        rd.alpha = op->alpha;
        rd.backend = FP4_BACKEND_CPU_REF;
        const fp4_status st = fp4_gemm(cpu, &rd);
        if (st != FP4_OK) rc = cli_lib_fail(CMD, "reference GEMM (cpu_ref)", st, cpu);
    }
    if (rc == CLI_OK) {
        double err2 = 0, ref2 = 0, max_abs = 0;
        int64_t bad = 0, bad_at = -1;
        for (int64_t i = 0; i < count * o->n; i++) {
            const double got = cli_load_float(d_rows, o->out_dtype, i), want = ref[i];
            if (!isfinite(got)) {
                if (!bad++) bad_at = i;
                continue;
            }
            err2 += (got - want) * (got - want);
            ref2 += want * want;
            max_abs = fmax(max_abs, fabs(got - want));
        }
        const double rel = ref2 > 0 ? sqrt(err2 / ref2) : (err2 > 0 ? INFINITY : 0.0);
        const double tol = tolerance(o->out_dtype, o->k);
        char which[96];
        if (sampled)
            snprintf(which, sizeof which, "%lld sampled rows of %lld", (long long)count,
                     (long long)o->m);
        else if (o->m == 1)
            snprintf(which, sizeof which, "the one row");
        else
            snprintf(which, sizeof which, "all %lld rows", (long long)o->m);
        if (bad) {
            printf("check     FAIL: %lld of %lld outputs are NaN or Inf (first at row %lld, "
                   "column %lld; %s)\n", (long long)bad, (long long)(count * o->n),
                   (long long)checked_row(o, rows, count, bad_at / o->n),
                   (long long)(bad_at % o->n), which);
            rc = cli_fail(CMD, CLI_FAIL, "check failed: %lld non-finite outputs", (long long)bad);
        } else {
            const int ok = rel <= tol;
            printf("check     max abs err %.3g, rel err %.3g %s %.0e (%s, vs cpu_ref): %s\n",
                   max_abs, rel, ok ? "<=" : ">", tol, which, ok ? "OK" : "FAIL");
            if (!ok)
                rc = cli_fail(CMD, CLI_FAIL, "check failed: rel err %.3g > tolerance %.0e", rel,
                              tol);
        }
    }
    if (a != op->a) free(a);
    if (a_sf != op->a_sf) free(a_sf);
    free(ref);
    return rc;
}

static int run_gemm(const gemm_opts *o) {
    fp4_ctx *cpu = NULL, *run = NULL;
    operands op;
    memset(&op, 0, sizeof op);
    void *dev_a = NULL, *dev_a_sf = NULL, *dev_b = NULL, *dev_b_sf = NULL, *dev_d = NULL;
    void *d_rows = NULL;
    int rc = CLI_OK;
    fp4_status st;
    const int64_t esize = fp4_dtype_size(o->out_dtype);

    if ((st = fp4_create(&cpu, -1)) != FP4_OK || (st = fp4_create(&run, o->device)) != FP4_OK) {
        rc = cli_lib_fail(CMD, "creating a context", st, NULL);
        goto done;
    }
    const int64_t d_bytes = cli_bytes(CMD, "D", o->m, o->n, esize);
    if (d_bytes < 0) {
        rc = CLI_USAGE;
        goto done;
    }
    if ((rc = make_operands(cpu, o, &op)) != CLI_OK) goto done;

    /* the operands on the run context; D poisoned with NaN so unwritten elements fail */
    if ((st = cli_upload_new(run, op.a, op.a_bytes, &dev_a)) != FP4_OK ||
        (op.a_sf && (st = cli_upload_new(run, op.a_sf, op.a_sf_bytes, &dev_a_sf)) != FP4_OK) ||
        (st = cli_upload_new(run, op.b, op.b_bytes, &dev_b)) != FP4_OK ||
        (st = cli_upload_new(run, op.b_sf, op.b_sf_bytes, &dev_b_sf)) != FP4_OK ||
        (st = fp4_malloc(run, &dev_d, d_bytes)) != FP4_OK ||
        (st = fp4_memset(run, dev_d, 0xFF, d_bytes)) != FP4_OK) {
        rc = cli_lib_fail(CMD, "preparing the operands", st, run);
        goto done;
    }
    fp4_gemm_desc desc;
    fp4_gemm_desc_init(&desc);
    desc.m = o->m;
    desc.n = o->n;
    desc.k = o->k;
    desc.a_dtype = o->w4a16 ? o->a_dtype : FP4_DTYPE_E2M1;
    desc.a = dev_a;
    desc.a_sf = dev_a_sf;
    desc.a_sf_layout = desc.b_sf_layout = o->layout;
    desc.b = dev_b;
    desc.b_sf = dev_b_sf;
    desc.d_dtype = o->out_dtype;
    desc.d = dev_d;
    desc.alpha = op.alpha;

    /* the backend: the one requested, or what auto picks; the label says which */
    char device_name[320], why[512];
    cli_describe_device(o->device, device_name, sizeof device_name);
    const char *env = getenv("FP4GEMM_BACKEND");
    const char *how = "requested";
    desc.backend = o->backend;
    if (o->backend == FP4_BACKEND_AUTO) {
        if ((st = fp4_gemm_select_backend(run, &desc, &desc.backend)) != FP4_OK) {
            rc = cli_lib_fail(CMD, "choosing the backend", st, run);
            goto done;
        }
        how = env && *env && strcmp(env, "auto") ? "auto, set by FP4GEMM_BACKEND" : "auto";
    } else if ((st = fp4_backend_check(run, o->backend, &desc, why, sizeof why)) != FP4_OK) {
        rc = cli_fail(CMD, CLI_FAIL, "backend %s can't run this on %s: %s",
                      fp4_backend_name(o->backend), device_name, why);
        goto done;
    }

    /* warm-up, then the timed runs */
    const int64_t iters = o->iters > 0 ? o->iters : (o->device >= 0 ? 10 : 1);
    const int64_t warmup = o->warmup >= 0 ? o->warmup : (o->device >= 0 ? 1 : 0);
    for (int64_t i = 0; i < warmup && st == FP4_OK; i++) st = fp4_gemm(run, &desc);
    if (st == FP4_OK) st = fp4_synchronize(run, NULL);
    const double t0 = cli_seconds();
    for (int64_t i = 0; i < iters && st == FP4_OK; i++) st = fp4_gemm(run, &desc);
    if (st == FP4_OK) st = fp4_synchronize(run, NULL);
    const double seconds = (cli_seconds() - t0) / (double)iters;
    if (st != FP4_OK) {
        rc = cli_lib_fail(CMD, fp4_backend_name(desc.backend), st, run);
        goto done;
    }

    printf("gemm      M=%lld N=%lld K=%lld, ", (long long)o->m, (long long)o->n, (long long)o->k);
    if (o->w4a16)
        printf("W4A16 (A %s, B NVFP4)", fp4_dtype_name(o->a_dtype));
    else
        printf("W4A4 (A and B NVFP4)");
    printf(", %s scales, %s out, seed %lld\n", fp4_sf_layout_name(o->layout),
           fp4_dtype_name(o->out_dtype), (long long)o->seed);
    printf("backend   %s (%s)\n", fp4_backend_name(desc.backend), how);
    printf("device    %s\n", device_name);
    printf("time      %.1f us per GEMM (mean of %lld run%s after %lld warm-up)\n",
           seconds * 1e6, (long long)iters, iters == 1 ? "" : "s", (long long)warmup);
    if (seconds > 0)
        printf("speed     %.3g TFLOP/s\n",
               2.0 * (double)o->m * (double)o->n * (double)o->k / seconds / 1e12);
    fflush(stdout);
    if (!o->check) goto done;

    int64_t rows[MAX_SAMPLED_ROWS];
    const int64_t count = sample_rows(o, rows);
    d_rows = cli_alloc(CMD, count * o->n * esize, "the output");
    if (!d_rows) {
        rc = CLI_FAIL;
        goto done;
    }
    const int64_t row_bytes = o->n * esize;
    if (count == o->m)
        st = fp4_download(run, d_rows, dev_d, d_bytes);
    for (int64_t i = 0; count < o->m && i < count && st == FP4_OK; i++)
        st = fp4_download(run, (char *)d_rows + i * row_bytes, (char *)dev_d + rows[i] * row_bytes,
                          row_bytes);
    if (st != FP4_OK) {
        rc = cli_lib_fail(CMD, "downloading D", st, run);
        goto done;
    }
    rc = check_against_reference(cpu, o, &op, rows, count, d_rows);

done:
    if (run) {
        fp4_free(run, dev_a);
        fp4_free(run, dev_a_sf);
        fp4_free(run, dev_b);
        fp4_free(run, dev_b_sf);
        fp4_free(run, dev_d);
    }
    free(d_rows);
    free_operands(&op);
    fp4_destroy(run);
    fp4_destroy(cpu);
    return rc;
}

int cmd_gemm(int argc, char **argv) {
    gemm_opts o = {.backend = FP4_BACKEND_AUTO, .out_dtype = FP4_DTYPE_BF16,
                   .a_dtype = FP4_DTYPE_BF16, .layout = FP4_SF_SWIZZLED_128x4,
                   .device = -2, .seed = 1, .iters = -1, .warmup = -1};
    cli_opt opts[] = {
        {.name = "-m", .metavar = "M", .kind = CLI_INT, .dest = &o.m, .required = 1, .min = 1,
         .max = CLI_MAX_DIM, .help = "rows of A and D"},
        {.name = "-n", .metavar = "N", .kind = CLI_INT, .dest = &o.n, .required = 1, .min = 1,
         .max = CLI_MAX_DIM, .help = "rows of B (the weight), columns of D"},
        {.name = "-k", .metavar = "K", .kind = CLI_INT, .dest = &o.k, .required = 1, .min = 1,
         .max = CLI_MAX_DIM, .help = "the reduction length, a multiple of 16"},
        {.name = "--backend", .metavar = "B", .kind = CLI_BACKEND, .dest = &o.backend,
         .help = "auto, cpu_ref, cuda_simt, cuda_mma, cuda_wgmma or\n"
                 "cublaslt (default auto: see 'fp4gemm --help'); a\n"
                 "named backend that can't run fails with the reason"},
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
         .max = INT64_MAX, .help = "seed of the random inputs (default 1)"},
        {.name = "--iters", .metavar = "N", .kind = CLI_INT, .dest = &o.iters, .min = 1,
         .max = 1000000000, .help = "timed runs (default 10 on a GPU, 1 on the CPU)"},
        {.name = "--warmup", .metavar = "N", .kind = CLI_INT, .dest = &o.warmup, .min = 0,
         .max = 1000000000, .help = "untimed runs first (default 1 on a GPU, 0 on the\nCPU)"},
        {.name = "--check", .kind = CLI_FLAG, .dest = &o.check,
         .help = "compare D with cpu_ref on the same quantized inputs;\n"
                 "exit 1 if the relative error is above the tolerance\n"
                 "or any output is NaN/Inf (default off)"},
    };
    cli_command cmd = {
        .name = CMD,
        .usage = "-m M -n N -k K [options]",
        .about = "Runs D[M, N] = alpha * A[M, K] * B[N, K]^T once on random inputs and prints the\n"
                 "backend used, the device, the time per GEMM and TFLOP/s.\n"
                 "A is drawn as normal(0, 1) and B as normal(0, 0.02), each with about 1 in 64\n"
                 "values an outlier 20x larger; both are quantized to NVFP4 on the CPU with\n"
                 "their own global scale, and alpha = 1 / (gs_a * gs_b) (W4A16: 1 / gs_b).",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .notes = "--check tolerance on ||D - ref||_2 / ||ref||_2: bf16 1e-2, f16 2e-3,\n"
                 "f32 1e-5 * max(1, sqrt(K / 4096)). D is filled with NaN before the run.\n"
                 "When M*N*K > 2^27 the check compares a sample of 2 to 32 rows (the first,\n"
                 "the last and evenly spaced ones between; all N columns) and says so.",
    };
    int rc = cli_parse(&cmd, argc, argv);
    if (rc != CLI_RUN) return rc;
    if ((rc = cli_check_k(CMD, "-k", o.k)) != CLI_OK) return rc;
    if (cli_find(&cmd, "--a-dtype")->given && !o.w4a16)
        return cli_fail(CMD, CLI_USAGE, "--a-dtype applies only with --w4a16");
    if (o.device == -2) o.device = cli_default_device();
    return run_gemm(&o);
}

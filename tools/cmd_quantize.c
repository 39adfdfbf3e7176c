/* cmd_quantize.c - the file commands: `fp4gemm quantize` (F32/F16/BF16 -> packed E2M1 +
 * E4M3 scales), `fp4gemm dequantize` (the way back) and `fp4gemm gen-input` (a seeded random
 * input file, for tests and examples). Files are raw little-endian arrays, row-major. */
#include "cli_util.h"
#include "fp4gemm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEVICE_HELP "CUDA device number, or cpu (-1) (default cpu)"
#define LAYOUT_HELP \
    "scale layout: swizzled (128x4 tiles, as cuBLASLt) or\nlinear (default swizzled)"

#define OUTPUT_FILE_NOTES                                                                   \
    "Output files are written to a unique temporary in the same folder, then renamed\n"    \
    "over PATH once complete: a failure leaves an older PATH as it was. /dev/null, a\n"    \
    "FIFO or another special file is written in place; a symlink is followed (the\n"      \
    "file it points to is replaced); '-' is stdout (messages then go to stderr). Two\n"   \
    "outputs naming one file, or an output naming an input, are refused."
#define OUTPUT_NOTES OUTPUT_FILE_NOTES "\nGS may be given as its f32 bits: 0x43066666."

/* "[4, 64] f32": the shape of a file, for messages. */
static void describe(char *buf, size_t len, int64_t rows, int64_t cols, const char *what) {
    snprintf(buf, len, "[%lld, %lld] %s", (long long)rows, (long long)cols, what);
}

/* ---- shared by quantize and dequantize --------------------------------------------------- */

/* The options both commands take: the rows, K, the scale layout and the device. */
static cli_opt opt_rows(int64_t *dest, const char *help) {
    return (cli_opt){.name = "--rows", .metavar = "R", .kind = CLI_INT, .dest = dest,
                     .required = 1, .min = 1, .max = CLI_MAX_DIM, .help = help};
}

static cli_opt opt_k(int64_t *dest) {
    return (cli_opt){.name = "-k", .metavar = "K", .kind = CLI_INT, .dest = dest, .required = 1,
                     .min = 1, .max = CLI_MAX_DIM, .help = "elements per row, a multiple of 16"};
}

static cli_opt opt_layout(fp4_sf_layout *dest) {
    return (cli_opt){.name = "--layout", .metavar = "L", .kind = CLI_LAYOUT, .dest = dest,
                     .help = LAYOUT_HELP};
}

static cli_opt opt_device(int *dest) {
    return (cli_opt){.name = "--device", .metavar = "D", .kind = CLI_DEVICE, .dest = dest,
                     .help = DEVICE_HELP};
}

/* Completes cmd with its options, parses argv and checks that *k is a multiple of 16.
 * Returns CLI_RUN when the command should run, else its exit code. */
static int parse_with_k(cli_command *cmd, cli_opt *opts, int n_opts, int argc, char **argv,
                        const int64_t *k) {
    cmd->opts = opts;
    cmd->n_opts = n_opts;
    int rc = cli_parse(cmd, argc, argv);
    if (rc != CLI_RUN) return rc;
    if ((rc = cli_check_k(cmd->name, "-k", *k)) != CLI_OK) return rc;
    return CLI_RUN;
}

/* fp4_create for `cmd`: CLI_OK, or the failure reported and its exit code. */
static int open_context(const char *cmd, int device, fp4_ctx **ctx) {
    const fp4_status st = fp4_create(ctx, device);
    return st == FP4_OK ? CLI_OK : cli_lib_fail(cmd, "creating a context", st, NULL);
}

/* Frees the n device buffers (NULL ones too) and destroys the context; ctx may be NULL. */
static void close_context(fp4_ctx *ctx, void *const *dev, int n) {
    if (ctx)
        for (int i = 0; i < n; i++) fp4_free(ctx, dev[i]);
    fp4_destroy(ctx);
}

/* ---- quantize ---------------------------------------------------------------------------- */

typedef struct quant_opts {
    int64_t rows, k;
    fp4_dtype in_dtype;
    const char *in, *out_q, *out_sf;
    fp4_sf_layout layout;
    float global_scale;
    int auto_global_scale;
    int device;
    const char *recipe_name;  /* --recipe */
    fp4_quant_recipe recipe;
} quant_opts;

static int run_quantize(const char *cmd, const quant_opts *o, cli_command *parsed) {
    const int64_t in_bytes =
        cli_bytes(cmd, "the input", o->rows, o->k, fp4_dtype_size(o->in_dtype));
    const int64_t q_bytes = fp4_packed_bytes(o->rows, o->k);
    const int64_t sf_bytes = fp4_sf_bytes(o->rows, o->k, o->layout);
    if (in_bytes < 0 || q_bytes < 0 || sf_bytes < 0) return CLI_USAGE;
    char shape[96];
    describe(shape, sizeof shape, o->rows, o->k, fp4_dtype_name(o->in_dtype));
    void *in = NULL, *q = NULL, *sf = NULL;
    void *dev_in = NULL, *dev_q = NULL, *dev_sf = NULL, *dev_gs = NULL, *dev_flag = NULL;
    fp4_ctx *ctx = NULL;
    uint32_t nonfinite = 0;
    float gs = o->global_scale;
    const int from_amax = !cli_find(parsed, "--global-scale")->given;
    fp4_status st = FP4_OK;
    int rc = cli_read_file(cmd, o->in, in_bytes, shape, &in);
    if (rc != CLI_OK) goto done;
    q = cli_alloc(cmd, q_bytes, "the packed output");
    sf = cli_alloc(cmd, sf_bytes, "the scales");
    if (!q || !sf) {
        rc = CLI_FAIL;
        goto done;
    }
    if ((rc = open_context(cmd, o->device, &ctx)) != CLI_OK) goto done;
    const char *step = "uploading the input";
    if ((st = cli_upload_new(ctx, in, in_bytes, &dev_in)) != FP4_OK) goto lib_failed;
    step = "allocating";
    if ((st = fp4_malloc(ctx, &dev_q, q_bytes)) != FP4_OK ||
        (st = fp4_malloc(ctx, &dev_sf, sf_bytes)) != FP4_OK ||
        (st = fp4_malloc(ctx, &dev_gs, sizeof(float))) != FP4_OK ||
        (st = cli_upload_new(ctx, &nonfinite, sizeof nonfinite, &dev_flag)) != FP4_OK)
        goto lib_failed;
    const int modelopt = o->recipe == FP4_QUANT_RECIPE_MODELOPT;
    if (from_amax && modelopt) { /* ModelOpt's decode scale ws2 = amax / 2688 */
        step = "computing the global scale";
        const fp4_tensor_ref t = {o->rows, o->k, o->in_dtype, dev_in, o->k};
        if ((st = fp4_modelopt_global_scale(ctx, &t, 1, dev_gs, NULL)) != FP4_OK ||
            (st = fp4_download(ctx, &gs, dev_gs, sizeof gs)) != FP4_OK)
            goto lib_failed;
        if (!(gs > 0.0f) || !isfinite(gs)) {
            rc = cli_fail(cmd, CLI_FAIL, "%s: amax is %s, so ModelOpt's ws2 = amax / 2688 is %g: "
                          "give one with --global-scale", o->in, gs > 0.0f ? "Inf" : "0",
                          (double)gs);
            goto done;
        }
    } else if (from_amax) {
        step = "computing the global scale";
        if ((st = fp4_global_scale(ctx, o->rows, o->k, o->in_dtype, dev_in, o->k, dev_gs, NULL)) !=
                FP4_OK ||
            (st = fp4_download(ctx, &gs, dev_gs, sizeof gs)) != FP4_OK)
            goto lib_failed;
        if (!(gs > 0.0f) || !isfinite(gs)) {
            rc = cli_fail(cmd, CLI_FAIL, "%s: amax is Inf, so no global scale fits: give one "
                          "with --global-scale", o->in);
            goto done;
        }
    }
    fp4_quant_desc qd;
    fp4_quant_desc_init(&qd);
    qd.rows = o->rows;
    qd.k = o->k;
    qd.in_dtype = o->in_dtype;
    qd.in = dev_in;
    qd.ld_in = o->k;
    qd.global_scale = gs;
    qd.out_q = dev_q;
    qd.out_sf = dev_sf;
    qd.sf_layout = o->layout;
    qd.nonfinite_flag = dev_flag;
    qd.recipe = o->recipe;
    step = "quantizing";
    if ((st = fp4_quantize(ctx, &qd)) != FP4_OK || (st = fp4_synchronize(ctx, NULL)) != FP4_OK)
        goto lib_failed;
    step = "downloading the result";
    if ((st = fp4_download(ctx, q, dev_q, q_bytes)) != FP4_OK ||
        (st = fp4_download(ctx, sf, dev_sf, sf_bytes)) != FP4_OK ||
        (st = fp4_download(ctx, &nonfinite, dev_flag, sizeof nonfinite)) != FP4_OK)
        goto lib_failed;

    /* both files or neither; an older file is replaced only once both are complete */
    const cli_output outs[2] = {{o->out_q, q, q_bytes}, {o->out_sf, sf, sf_bytes}};
    if ((rc = cli_write_files(cmd, outs, 2)) != CLI_OK) goto done;
    if (modelopt)
        cli_say("recipe modelopt: decode global scale ws2 %.9g (f32 bits 0x%08X)%s; dequantize "
                "(or gemm --a-gs/--b-gs) with %.9g (1/ws2)\n", (double)gs, (unsigned)cli_f32_bits(gs),
                from_amax ? ", from the input's amax: amax / (6 * 448)" : "", 1.0 / (double)gs);
    else
        cli_say("global scale %.9g (f32 bits 0x%08X)%s\n", (double)gs, (unsigned)cli_f32_bits(gs),
                from_amax ? ", from the input's amax: 448 * 6 / amax" : "");
    cli_say("wrote %s (%lld bytes, [%lld, %lld] packed E2M1) and %s (%lld bytes, %s E4M3 scales)\n",
            o->out_q, (long long)q_bytes, (long long)o->rows, (long long)(o->k / 2), o->out_sf,
            (long long)sf_bytes, fp4_sf_layout_name(o->layout));
    if (nonfinite)
        cli_fail(cmd, CLI_OK, "warning: %s has NaN or Inf values (NaN was quantized to 0, Inf "
                 "saturated)", o->in);
    goto done;

lib_failed:
    rc = cli_lib_fail(cmd, step, st, ctx);
done:
    close_context(ctx, (void *const[]){dev_in, dev_q, dev_sf, dev_gs, dev_flag}, 5);
    free(in);
    free(q);
    free(sf);
    return rc;
}

int cmd_quantize(int argc, char **argv) {
    const char *cmd_name = "quantize";
    quant_opts o = {.in_dtype = FP4_DTYPE_F32, .layout = FP4_SF_SWIZZLED_128x4, .device = -1,
                    .recipe = FP4_QUANT_RECIPE_FLASHINFER};
    cli_opt opts[] = {
        opt_rows(&o.rows, "rows of the input"),
        opt_k(&o.k),
        {.name = "--in-dtype", .metavar = "T", .kind = CLI_DTYPE, .dest = &o.in_dtype,
         .required = 1, .allowed = CLI_DT_FLOATS, .help = "the input's type: f32, f16 or bf16"},
        {.name = "--in", .metavar = "PATH", .kind = CLI_STRING, .dest = &o.in, .required = 1,
         .help = "the input, [R, K] elements: exactly R*K*size bytes"},
        {.name = "--out-q", .metavar = "PATH", .kind = CLI_STRING, .dest = &o.out_q,
         .required = 1, .help = "the packed E2M1 output, [R, K/2] bytes"},
        {.name = "--out-sf", .metavar = "PATH", .kind = CLI_STRING, .dest = &o.out_sf,
         .required = 1, .help = "the E4M3 scale output: R*K/16 bytes (swizzled:\n"
                                "padded to 128 rows and 4 scales per row)"},
        opt_layout(&o.layout),
        {.name = "--global-scale", .metavar = "GS", .kind = CLI_FLOAT, .dest = &o.global_scale,
         .help = "the global scale to use: flashinfer, the encode\nscale (x ~ e2m1 * e4m3 / GS); "
                 "modelopt, the\ndecode scale ws2 (x ~ e2m1 * e4m3 * GS)"},
        {.name = "--auto-global-scale", .kind = CLI_FLAG, .dest = &o.auto_global_scale,
         .help = "GS from amax(input) (the default): flashinfer\n448 * 6 / amax, modelopt amax / "
                 "2688"},
        {.name = "--recipe", .metavar = "NAME", .kind = CLI_STRING, .dest = &o.recipe_name,
         .help = "flashinfer (default: FlashInfer's and Transformer\nEngine's bytes) or modelopt "
                 "(ModelOpt's\ncheckpoint bytes); see docs/format.md"},
        opt_device(&o.device),
    };
    cli_command cmd = {
        .name = cmd_name,
        .usage = "--rows R -k K --in-dtype T --in PATH\n--out-q PATH --out-sf PATH [options]",
        .about = "Quantizes a raw little-endian [R, K] F32/F16/BF16 file to NVFP4: packed E2M1\n"
                 "values (two per byte, the even element in the low nibble) and one E4M3 scale\n"
                 "per 16 elements, as in docs/format.md. Prints the global scale it used; pass\n"
                 "it to 'fp4gemm dequantize' (the decimal or the f32 bits). Outputs: see below.",
        .notes = OUTPUT_NOTES,
    };
    const int rc = parse_with_k(&cmd, opts, (int)(sizeof opts / sizeof opts[0]), argc, argv, &o.k);
    if (rc != CLI_RUN) return rc;
    if (o.recipe_name && fp4_quant_recipe_from_name(o.recipe_name, &o.recipe) != FP4_OK)
        return cli_fail(cmd_name, CLI_USAGE, "--recipe %s: not a recipe (flashinfer or modelopt)",
                        o.recipe_name);
    if (o.auto_global_scale && cli_find(&cmd, "--global-scale")->given)
        return cli_fail(cmd_name, CLI_USAGE, "--global-scale and --auto-global-scale exclude "
                        "each other");
    const char *paths[2] = {o.out_q, o.out_sf}, *names[2] = {"--out-q", "--out-sf"};
    if (cli_check_outputs(cmd_name, paths, names, 2) != CLI_OK) return CLI_USAGE;
    const char *in_paths[1] = {o.in}, *in_names[1] = {"--in"};
    if (cli_check_inputs(cmd_name, paths, names, 2, in_paths, in_names, 1) != CLI_OK)
        return CLI_USAGE;
    return run_quantize(cmd_name, &o, &cmd);
}

/* ---- dequantize -------------------------------------------------------------------------- */

typedef struct dequant_opts {
    int64_t rows, k;
    const char *in_q, *in_sf, *out;
    fp4_sf_layout layout;
    float global_scale;
    fp4_dtype out_dtype;
    int device;
} dequant_opts;

static int run_dequantize(const char *cmd, const dequant_opts *o) {
    const int64_t q_bytes = fp4_packed_bytes(o->rows, o->k);
    const int64_t sf_bytes = fp4_sf_bytes(o->rows, o->k, o->layout);
    const int64_t out_bytes =
        cli_bytes(cmd, "the output", o->rows, o->k, fp4_dtype_size(o->out_dtype));
    if (q_bytes < 0 || sf_bytes < 0 || out_bytes < 0) return CLI_USAGE;
    char q_shape[96], sf_shape[96];
    describe(q_shape, sizeof q_shape, o->rows, o->k / 2, "packed E2M1 bytes");
    snprintf(sf_shape, sizeof sf_shape, "%s E4M3 scales of [%lld, %lld]",
             fp4_sf_layout_name(o->layout), (long long)o->rows, (long long)o->k);
    void *q = NULL, *sf = NULL, *out = NULL;
    void *dev_q = NULL, *dev_sf = NULL, *dev_out = NULL;
    fp4_ctx *ctx = NULL;
    fp4_status st = FP4_OK;
    int rc = cli_read_file(cmd, o->in_q, q_bytes, q_shape, &q);
    if (rc == CLI_OK) rc = cli_read_file(cmd, o->in_sf, sf_bytes, sf_shape, &sf);
    if (rc == CLI_OK && !(out = cli_alloc(cmd, out_bytes, "the output"))) rc = CLI_FAIL;
    if (rc != CLI_OK) goto done;
    if ((rc = open_context(cmd, o->device, &ctx)) != CLI_OK) goto done;
    if ((st = cli_upload_new(ctx, q, q_bytes, &dev_q)) != FP4_OK ||
        (st = cli_upload_new(ctx, sf, sf_bytes, &dev_sf)) != FP4_OK ||
        (st = fp4_malloc(ctx, &dev_out, out_bytes)) != FP4_OK) {
        rc = cli_lib_fail(cmd, "uploading the input", st, ctx);
        goto done;
    }
    fp4_dequant_desc dd;
    fp4_dequant_desc_init(&dd);
    dd.rows = o->rows;
    dd.k = o->k;
    dd.q = dev_q;
    dd.sf = dev_sf;
    dd.sf_layout = o->layout;
    dd.global_scale = o->global_scale;
    dd.out_dtype = o->out_dtype;
    dd.out = dev_out;
    dd.ld_out = o->k;
    if ((st = fp4_dequantize(ctx, &dd)) != FP4_OK || (st = fp4_synchronize(ctx, NULL)) != FP4_OK ||
        (st = fp4_download(ctx, out, dev_out, out_bytes)) != FP4_OK) {
        rc = cli_lib_fail(cmd, "dequantizing", st, ctx);
        goto done;
    }
    if ((rc = cli_write_file(cmd, o->out, out, out_bytes)) != CLI_OK) goto done;
    cli_say("wrote %s (%lld bytes, [%lld, %lld] %s)\n", o->out, (long long)out_bytes,
            (long long)o->rows, (long long)o->k, fp4_dtype_name(o->out_dtype));
done:
    close_context(ctx, (void *const[]){dev_q, dev_sf, dev_out}, 3);
    free(q);
    free(sf);
    free(out);
    return rc;
}

int cmd_dequantize(int argc, char **argv) {
    const char *cmd_name = "dequantize";
    dequant_opts o = {.layout = FP4_SF_SWIZZLED_128x4, .out_dtype = FP4_DTYPE_F32, .device = -1};
    cli_opt opts[] = {
        opt_rows(&o.rows, "rows of the tensor"),
        opt_k(&o.k),
        {.name = "--in-q", .metavar = "PATH", .kind = CLI_STRING, .dest = &o.in_q, .required = 1,
         .help = "the packed E2M1 values, [R, K/2] bytes"},
        {.name = "--in-sf", .metavar = "PATH", .kind = CLI_STRING, .dest = &o.in_sf,
         .required = 1, .help = "the E4M3 scales, in the layout of --layout"},
        opt_layout(&o.layout),
        {.name = "--global-scale", .metavar = "GS", .kind = CLI_FLOAT, .dest = &o.global_scale,
         .required = 1, .help = "the encode global scale that quantize printed:\n"
                                "x = e2m1 * e4m3 / GS (1 gives e2m1 * e4m3)"},
        {.name = "--out-dtype", .metavar = "T", .kind = CLI_DTYPE, .dest = &o.out_dtype,
         .allowed = CLI_DT_FLOATS, .help = "the output's type: f32, f16 or bf16 (default f32)"},
        {.name = "--out", .metavar = "PATH", .kind = CLI_STRING, .dest = &o.out, .required = 1,
         .help = "the output, [R, K] elements"},
        opt_device(&o.device),
    };
    cli_command cmd = {
        .name = cmd_name,
        .usage = "--rows R -k K --in-q PATH --in-sf PATH\n--global-scale GS --out PATH [options]",
        .about = "Decodes NVFP4 files (as 'fp4gemm quantize' writes them) back to a raw\n"
                 "little-endian [R, K] F32/F16/BF16 file.",
        .notes = OUTPUT_NOTES,
    };
    const int rc = parse_with_k(&cmd, opts, (int)(sizeof opts / sizeof opts[0]), argc, argv, &o.k);
    if (rc != CLI_RUN) return rc;
    const char *paths[1] = {o.out}, *names[1] = {"--out"};
    if (cli_check_outputs(cmd_name, paths, names, 1) != CLI_OK) return CLI_USAGE;
    const char *in_paths[2] = {o.in_q, o.in_sf}, *in_names[2] = {"--in-q", "--in-sf"};
    if (cli_check_inputs(cmd_name, paths, names, 1, in_paths, in_names, 2) != CLI_OK)
        return CLI_USAGE;
    return run_dequantize(cmd_name, &o);
}

/* ---- gen-input --------------------------------------------------------------------------- */

int cmd_gen_input(int argc, char **argv) {
    const char *cmd_name = "gen-input";
    int64_t rows = 0, k = 0, seed = 1;
    fp4_dtype dtype = FP4_DTYPE_F32;
    float scale = 1.0f;
    const char *out_path = NULL;
    cli_opt opts[] = {
        {.name = "--rows", .metavar = "R", .kind = CLI_INT, .dest = &rows, .required = 1,
         .min = 1, .max = CLI_MAX_DIM, .help = "rows"},
        {.name = "-k", .metavar = "K", .kind = CLI_INT, .dest = &k, .required = 1, .min = 1,
         .max = CLI_MAX_DIM, .help = "elements per row"},
        {.name = "--dtype", .metavar = "T", .kind = CLI_DTYPE, .dest = &dtype,
         .allowed = CLI_DT_FLOATS, .help = "f32, f16 or bf16 (default f32)"},
        {.name = "--seed", .metavar = "S", .kind = CLI_INT, .dest = &seed, .min = 0,
         .max = INT64_MAX, .help = "seed (default 1)"},
        {.name = "--scale", .metavar = "X", .kind = CLI_FLOAT, .dest = &scale,
         .help = "standard deviation (default 1)"},
        {.name = "--out", .metavar = "PATH", .kind = CLI_STRING, .dest = &out_path,
         .required = 1, .help = "the output, [R, K] elements"},
    };
    cli_command cmd = {
        .name = cmd_name,
        .usage = "--rows R -k K --out PATH [options]",
        .about = "Writes a raw little-endian [R, K] file of seeded random values, normal(0,\n"
                 "scale) with about 1 in 64 an outlier 20x larger (as 'fp4gemm gemm' draws A):\n"
                 "an input for 'fp4gemm quantize' in tests and examples. The same seed gives\n"
                 "the same file on every machine.",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .notes = OUTPUT_FILE_NOTES,
    };
    int rc = cli_parse(&cmd, argc, argv);
    if (rc != CLI_RUN) return rc;
    const char *paths[1] = {out_path}, *names[1] = {"--out"};
    if (cli_check_outputs(cmd_name, paths, names, 1) != CLI_OK) return CLI_USAGE;
    const int64_t n = rows * k;
    const int64_t f32_bytes = cli_bytes(cmd_name, "the output", rows, k, 4);
    if (f32_bytes < 0) return CLI_USAGE;
    const int64_t out_bytes = n * fp4_dtype_size(dtype);
    float *x = cli_alloc(cmd_name, f32_bytes, "the values");
    void *out = (!x || dtype == FP4_DTYPE_F32) ? (void *)x
                                                : cli_alloc(cmd_name, out_bytes, "the output");
    if (!x || !out) {
        free(x);
        return CLI_FAIL;
    }
    cli_rng rng;
    cli_rng_seed(&rng, (uint64_t)seed);
    cli_fill_normal(&rng, x, n, scale);
    if (out != x) cli_store_floats(x, n, dtype, out);
    rc = cli_write_file(cmd_name, out_path, out, out_bytes);
    if (rc == CLI_OK)
        cli_say("wrote %s (%lld bytes, [%lld, %lld] %s)\n", out_path, (long long)out_bytes,
                (long long)rows, (long long)k, fp4_dtype_name(dtype));
    if (out != x) free(out);
    free(x);
    return rc;
}

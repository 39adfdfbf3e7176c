/* cmd_checkpoint.c - `fp4gemm checkpoint`: safetensors checkpoints and their NVFP4 layers in
 * NVIDIA ModelOpt's format (docs/format.md "Checkpoints").
 *   inspect PATH              the tensors, which layers are NVFP4, their scales' statistics
 *   quantize IN OUT           BF16/F16/F32 -> ModelOpt NVFP4 (cmd_ckpt_quantize.c)
 *   verify NVFP4 [--against ORIGINAL]   every NVFP4 layer dequantized and checked */
#include "ckpt_config.h"
#include "cli_util.h"
#include "format.h" /* fp4_e4m3_decode */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- shared helpers (ckpt_config.h) ------------------------------------------------------ */

void ckpt_folder(const char *path, char *dir, size_t len) {
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        snprintf(dir, len, "%s", path);
        return;
    }
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, len, ".");
    else snprintf(dir, len, "%.*s", (int)(slash == path ? 1 : slash - path), path);
}

double ckpt_element(const fp4_st_tensor *t, int64_t i) {
    switch (t->dtype) {
    case FP4_ST_F32: {
        float v;
        memcpy(&v, (const uint8_t *)t->data + 4 * i, 4);
        return v;
    }
    case FP4_ST_F16:
    case FP4_ST_BF16: {
        uint16_t h;
        memcpy(&h, (const uint8_t *)t->data + 2 * i, 2);
        return t->dtype == FP4_ST_F16 ? cli_f16_to_f32(h) : cli_bf16_to_f32(h);
    }
    default: return NAN;
    }
}

void ckpt_shape(const fp4_st_tensor *t, char *buf, size_t len) {
    size_t used = (size_t)snprintf(buf, len, "[");
    for (int d = 0; d < t->ndim && used < len; d++)
        used += (size_t)snprintf(buf + used, len - used, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    if (used < len) snprintf(buf + used, len - used, "]");
}

int ckpt_is_nvfp4_weight(const fp4_safetensors *st, const fp4_st_tensor *t, char *layer, size_t len) {
    const size_t n = strlen(t->name);
    if (t->dtype != FP4_ST_U8 || n <= 7 || strcmp(t->name + n - 7, ".weight") || n - 7 >= len)
        return 0;
    snprintf(layer, len, "%.*s", (int)(n - 7), t->name);
    char scale[1100];
    snprintf(scale, sizeof scale, "%s.weight_scale", layer);
    return fp4_safetensors_find(st, scale) >= 0;
}

/* Leading positional arguments: argv[1..want] must not be options. On success argc and argv
 * are shifted past them (argv[0] kept). CLI_RUN, CLI_OK after --help, CLI_USAGE. */
static int take_positionals(cli_command *cmd, int *argc, char ***argv, int want, const char **pos) {
    for (int i = 1; i < *argc; i++)
        if (!strcmp((*argv)[i], "--help") || !strcmp((*argv)[i], "-h")) {
            cli_print_help(cmd, stdout);
            return CLI_OK;
        }
    for (int i = 0; i < want; i++) {
        if (1 + i >= *argc || (*argv)[1 + i][0] == '-')
            return cli_fail(cmd->name, CLI_USAGE, "usage: fp4gemm %s %s (see --help)", cmd->name,
                            cmd->usage);
        pos[i] = (*argv)[1 + i];
    }
    (*argv)[want] = (*argv)[0];
    *argv += want;
    *argc -= want;
    return CLI_RUN;
}

static int open_ckpt(const char *cmd, const char *path, fp4_safetensors **st) {
    const fp4_status s = fp4_safetensors_open(path, st);
    return s == FP4_OK ? CLI_OK : cli_lib_fail(cmd, "opening the checkpoint", s, NULL);
}

/* ---- inspect ------------------------------------------------------------------------------ */

typedef struct scale_stats {
    double min, max; /* over the finite scales */
    int64_t zero, nan, saturated, count;
} scale_stats;

static scale_stats stats_of(const fp4_st_tensor *sf) {
    scale_stats s = {INFINITY, -INFINITY, 0, 0, 0, sf->bytes};
    const uint8_t *p = sf->data;
    for (int64_t i = 0; i < sf->bytes; i++) {
        const double v = fp4_e4m3_decode(p[i]);
        if (isnan(v)) s.nan++;
        else {
            if (v == 0) s.zero++;
            if ((p[i] & 0x7F) == 0x7E) s.saturated++;
            s.min = fmin(s.min, v);
            s.max = fmax(s.max, v);
        }
    }
    return s;
}

static float scalar_of(const fp4_safetensors *st, const char *layer, const char *suffix) {
    char name[1100];
    fp4_st_tensor t;
    snprintf(name, sizeof name, "%s%s", layer, suffix);
    const int64_t i = fp4_safetensors_find(st, name);
    if (i < 0 || fp4_safetensors_tensor(st, i, &t) != FP4_OK || t.dtype != FP4_ST_F32 || t.numel != 1)
        return NAN;
    float v;
    memcpy(&v, t.data, 4);
    return v;
}

static int cmd_inspect(int argc, char **argv) {
    const char *CMD = "checkpoint inspect";
    int quiet = 0;
    cli_opt opts[] = {{.name = "--layers-only", .kind = CLI_FLAG, .dest = &quiet,
                       .help = "list the NVFP4 layers only, not every tensor"}};
    cli_command cmd = {.name = CMD, .usage = "PATH [--layers-only]",
                       .about = "Lists a safetensors checkpoint (a .safetensors file, a sharded\n"
                                "checkpoint's index .json, or a folder holding either): every tensor\n"
                                "with its dtype, shape and bytes; then its NVFP4 layers in ModelOpt's\n"
                                "format (<layer>.weight U8 [N, K/2], .weight_scale F8_E4M3 [N, K/16],\n"
                                ".weight_scale_2, .input_scale) with their scale statistics; then the\n"
                                "quantization config (hf_quant_config.json) found beside it.",
                       .opts = opts, .n_opts = 1,
                       .notes = "Every header is validated before anything is read; a corrupt file is\n"
                                "reported with what is wrong (exit 1)."};
    const char *pos[1] = {NULL};
    int rc = take_positionals(&cmd, &argc, &argv, 1, pos);
    if (rc != CLI_RUN || (rc = cli_parse(&cmd, argc, argv)) != CLI_RUN) return rc;
    fp4_safetensors *st = NULL;
    if ((rc = open_ckpt(CMD, pos[0], &st)) != CLI_OK) return rc;
    const int64_t n = fp4_safetensors_count(st);
    int64_t total = 0;
    fp4_st_tensor t;
    for (int64_t i = 0; i < n; i++) fp4_safetensors_tensor(st, i, &t), total += t.bytes;
    printf("checkpoint %s: %lld tensors, %.1f MB of data\n", pos[0], (long long)n, total / 1e6);
    for (int64_t i = 0; i < fp4_safetensors_metadata_count(st); i++) {
        const char *k = fp4_safetensors_metadata_key(st, i);
        printf("metadata   %s = %.200s\n", k, fp4_safetensors_metadata(st, k));
    }
    char shape[128], layer[1024];
    if (!quiet) {
        printf("%-56s %-8s %-16s %12s\n", "tensor", "dtype", "shape", "bytes");
        for (int64_t i = 0; i < n; i++) {
            fp4_safetensors_tensor(st, i, &t);
            ckpt_shape(&t, shape, sizeof shape);
            printf("%-56s %-8s %-16s %12lld\n", t.name, fp4_st_dtype_name(t.dtype), shape,
                   (long long)t.bytes);
        }
    }
    int64_t layers = 0;
    for (int64_t i = 0; i < n; i++) {
        fp4_safetensors_tensor(st, i, &t);
        if (!ckpt_is_nvfp4_weight(st, &t, layer, sizeof layer)) continue;
        if (!layers++)
            printf("NVFP4 layers (ModelOpt):\n%-48s %-13s %-10s %-10s %-21s %s\n", "layer",
                   "N x K", "ws2", "input_scl", "scales min .. max", "zero NaN 448");
        char sname[1100];
        fp4_st_tensor sf;
        snprintf(sname, sizeof sname, "%s.weight_scale", layer);
        fp4_safetensors_tensor(st, fp4_safetensors_find(st, sname), &sf);
        const scale_stats s = stats_of(&sf);
        char nk[40];
        snprintf(nk, sizeof nk, "%lld x %lld", (long long)t.shape[0],
                 (long long)(t.ndim == 2 ? 2 * t.shape[1] : 0));
        char in_scale[32] = "-";
        const float is = scalar_of(st, layer, ".input_scale");
        if (!isnan(is)) snprintf(in_scale, sizeof in_scale, "%.4g", (double)is);
        printf("%-48s %-13s %-10.4g %-10s %-9.3g .. %-9.3g %lld %lld %lld\n", layer, nk,
               (double)scalar_of(st, layer, ".weight_scale_2"), in_scale, s.min, s.max,
               (long long)s.zero, (long long)s.nan, (long long)s.saturated);
    }
    printf("%lld NVFP4 layer%s\n", (long long)layers, layers == 1 ? "" : "s");
    char dir[4096], cfg[4200], summary[800];
    ckpt_folder(pos[0], dir, sizeof dir);
    snprintf(cfg, sizeof cfg, "%s/hf_quant_config.json", dir);
    if (ckpt_read_quant_config(cfg, summary, sizeof summary))
        printf("quant config %s: %s\n", cfg, summary);
    fp4_safetensors_close(st);
    return CLI_OK;
}

/* ---- verify ------------------------------------------------------------------------------- */

/* The format's bound on a layer's relative (Frobenius) error, docs/format.md "Checkpoints":
 * per block, |x - q| <= max(|x|, u) / 4 with u the block's unit (vmax/6 up to E4M3's 1/16),
 * so ||x - q||^2 <= ||x||^2 / 16 + 16 u^2 <= ||x||^2 (1/16 + 1/31.9): 0.306. */
#define NVFP4_REL_ERR_BOUND 0.31

typedef struct verify_row {
    double rel, snr, max_abs;
    int64_t nonfinite, nan_scales, saturated;
    int bad;
} verify_row;

static int verify_layer(fp4_ctx *ctx, const fp4_safetensors *st, const fp4_safetensors *orig,
                        const char *layer, double bound, verify_row *r) {
    const char *CMD = "checkpoint verify";
    memset(r, 0, sizeof *r);
    r->rel = r->snr = NAN;
    fp4_nvfp4_weight w;
    memset(&w, 0, sizeof w);
    w.struct_size = sizeof w;
    fp4_status s = fp4_modelopt_load_weight(ctx, st, layer, FP4_SF_LINEAR, &w);
    if (s != FP4_OK) {
        cli_lib_fail(CMD, "loading", s, ctx);
        return r->bad = 1;
    }
    const int64_t n = w.n, k = w.k;
    float *deq = cli_alloc(CMD, n * k * 4, "the dequantized weight");
    if (!deq) {
        fp4_nvfp4_weight_free(ctx, &w);
        return r->bad = 1;
    }
    fp4_dequant_desc d;
    fp4_dequant_desc_init(&d);
    d.rows = n, d.k = k, d.q = w.q, d.sf = w.sf, d.out = deq; /* e2m1 * e4m3, exact in f32 */
    s = fp4_dequantize(ctx, &d);
    const uint8_t *sf = w.sf;
    for (int64_t i = 0; i < n * k / 16; i++) {
        r->nan_scales += isnan(fp4_e4m3_decode(sf[i]));
        r->saturated += (sf[i] & 0x7F) == 0x7E;
    }
    fp4_st_tensor o;
    char name[1100];
    snprintf(name, sizeof name, "%s.weight", layer);
    const int64_t oi = orig ? fp4_safetensors_find(orig, name) : -1;
    const int have_orig = oi >= 0 && fp4_safetensors_tensor(orig, oi, &o) == FP4_OK &&
                          o.ndim == 2 && o.shape[0] == n && o.shape[1] == k &&
                          (o.dtype == FP4_ST_F32 || o.dtype == FP4_ST_F16 || o.dtype == FP4_ST_BF16);
    if (orig && !have_orig) {
        cli_fail(CMD, CLI_FAIL, "%s: no F32/F16/BF16 [%lld, %lld] %s in the original", layer,
                 (long long)n, (long long)k, name);
        r->bad = 1;
    }
    double err2 = 0, ref2 = 0;
    for (int64_t i = 0; s == FP4_OK && i < n * k; i++) {
        const double v = (double)deq[i] * (double)w.weight_scale_2;
        if (!isfinite(v)) r->nonfinite++;
        if (have_orig) {
            const double x = ckpt_element(&o, i), e = v - x;
            err2 += e * e;
            ref2 += x * x;
            r->max_abs = fmax(r->max_abs, fabs(e));
        }
    }
    if (have_orig) {
        r->rel = ref2 > 0 ? sqrt(err2 / ref2) : (err2 > 0 ? INFINITY : 0);
        r->snr = err2 > 0 ? 10 * log10(ref2 / err2) : INFINITY;
        if (!(r->rel <= bound)) r->bad = 1;
    }
    if (s != FP4_OK) cli_lib_fail(CMD, "dequantizing", s, ctx);
    /* 448 is the largest scale, which the block holding amax gets (amax / (6 * amax/2688)):
     * counted, not flagged */
    if (s != FP4_OK || r->nonfinite || r->nan_scales) r->bad = 1;
    free(deq);
    fp4_nvfp4_weight_free(ctx, &w);
    return r->bad;
}

static int cmd_verify(int argc, char **argv) {
    const char *CMD = "checkpoint verify";
    const char *against = NULL;
    float bound = (float)NVFP4_REL_ERR_BOUND;
    cli_opt opts[] = {
        {.name = "--against", .metavar = "ORIGINAL", .kind = CLI_STRING, .dest = &against,
         .help = "the checkpoint it was quantized from (F32/F16/BF16\nweights of the same names)"},
        {.name = "--max-rel-err", .metavar = "E", .kind = CLI_FLOAT, .dest = &bound,
         .help = "fail a layer whose relative error is over E\n(default 0.31: the format's bound)"},
    };
    cli_command cmd = {.name = CMD, .usage = "NVFP4 [--against ORIGINAL] [--max-rel-err E]",
                       .about = "Dequantizes every NVFP4 layer of a ModelOpt checkpoint (e2m1 * e4m3 *\n"
                                "weight_scale_2) and reports per layer, against the original weights,\n"
                                "the relative error ||W - Wq|| / ||W|| (Frobenius), the SNR in dB, the\n"
                                "largest absolute error and the scales at 448 (the block holding amax has\n"
                                "one); and flags NaN scales, non-finite values, a weight_scale_2 that is\n"
                                "not a positive finite number, and a layer that can't be read.",
                       .opts = opts, .n_opts = 2,
                       .notes = "The bound: per 16-element block with unit u = vmax/6, each element is\n"
                                "off by at most max(|x|, u)/4, so a layer's relative error is at most\n"
                                "sqrt(1/16 + 1/31.9) = 0.306 (docs/format.md). Gaussian-like weights give\n"
                                "about 0.1 (SNR about 20 dB). Exit 1 when a layer is flagged or over E."};
    const char *pos[1] = {NULL};
    int rc = take_positionals(&cmd, &argc, &argv, 1, pos);
    if (rc != CLI_RUN || (rc = cli_parse(&cmd, argc, argv)) != CLI_RUN) return rc;
    fp4_safetensors *st = NULL, *orig = NULL;
    fp4_ctx *ctx = NULL;
    if ((rc = open_ckpt(CMD, pos[0], &st)) != CLI_OK) return rc;
    if (against && (rc = open_ckpt(CMD, against, &orig)) != CLI_OK) goto done;
    fp4_status s = fp4_create(&ctx, -1);
    if (s != FP4_OK) {
        rc = cli_lib_fail(CMD, "creating a context", s, NULL);
        goto done;
    }
    printf("%-48s %-13s %-10s %-8s %-7s %-10s %-4s %s\n", "layer", "N x K", "ws2", "rel_err",
           "SNR dB", "max|err|", "448", "flags");
    int64_t layers = 0, flagged = 0;
    double worst = 0, min_snr = INFINITY;
    fp4_st_tensor t;
    char layer[1024];
    for (int64_t i = 0; i < fp4_safetensors_count(st); i++) {
        fp4_safetensors_tensor(st, i, &t);
        if (!ckpt_is_nvfp4_weight(st, &t, layer, sizeof layer)) continue;
        verify_row r;
        layers++;
        flagged += verify_layer(ctx, st, orig, layer, bound, &r);
        if (!isnan(r.rel)) worst = fmax(worst, r.rel), min_snr = fmin(min_snr, r.snr);
        char nk[40], flags[160] = "";
        snprintf(nk, sizeof nk, "%lld x %lld", (long long)t.shape[0], (long long)(2 * t.shape[1]));
        if (r.nan_scales) snprintf(flags + strlen(flags), 40, "NaN-scales:%lld ", (long long)r.nan_scales);
        if (r.nonfinite) snprintf(flags + strlen(flags), 40, "non-finite:%lld ", (long long)r.nonfinite);
        if (!isnan(r.rel) && !(r.rel <= bound)) snprintf(flags + strlen(flags), 40, "over-%g ", (double)bound);
        if (r.bad && !flags[0]) snprintf(flags, sizeof flags, "unreadable");
        printf("%-48s %-13s %-10.4g %-8.4f %-7.2f %-10.3g %-4lld %s\n", layer, nk,
               (double)scalar_of(st, layer, ".weight_scale_2"), r.rel, r.snr, r.max_abs,
               (long long)r.saturated, flags[0] ? flags : "ok");
    }
    if (orig)
        printf("%lld NVFP4 layers checked against %s: relative error max %.4f (bound %g), SNR min "
               "%.2f dB; %lld flagged\n", (long long)layers, against, worst, (double)bound,
               min_snr, (long long)flagged);
    else
        printf("%lld NVFP4 layers checked (no --against: scales and values only); %lld flagged\n",
               (long long)layers, (long long)flagged);
    rc = flagged ? CLI_FAIL : layers ? CLI_OK : cli_fail(CMD, CLI_FAIL, "%s has no NVFP4 layer", pos[0]);
done:
    fp4_destroy(ctx);
    fp4_safetensors_close(st);
    fp4_safetensors_close(orig);
    return rc;
}

/* ---- the command -------------------------------------------------------------------------- */

int cmd_checkpoint(int argc, char **argv) {
    static const char *const help =
        "usage: fp4gemm checkpoint <inspect|quantize|verify> ... [--help]\n"
        "\n"
        "Safetensors checkpoints and their NVFP4 layers in NVIDIA ModelOpt's format (what\n"
        "vLLM's and SGLang's modelopt_fp4 load):\n"
        "  <layer>.weight          U8 [N, K/2]: E2M1 pairs, the even k in the low nibble\n"
        "  <layer>.weight_scale    F8_E4M3 [N, K/16]: one scale per 16, linear layout\n"
        "  <layer>.weight_scale_2  F32: the decode global scale; .input_scale likewise\n"
        "\n"
        "  inspect PATH             tensors, NVFP4 layers, scale statistics, config\n"
        "  quantize IN OUT [opts]   BF16/F16/F32 -> ModelOpt NVFP4 (the modelopt recipe)\n"
        "  verify NVFP4 [--against ORIGINAL]   per-layer error, SNR and flags\n"
        "\n"
        "PATH, IN, ORIGINAL: a .safetensors file, a sharded checkpoint's index .json,\n"
        "or a folder holding model.safetensors.index.json or model.safetensors.\n"
        "The GEMM of one layer: fp4gemm gemm --weights PATH --layer NAME -m M --check\n";
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(help, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (!fp4_built_with_safetensors())
        return cli_fail("checkpoint", CLI_FAIL, "this fp4gemm was built without cJSON: no "
                        "checkpoint support (install libcjson-dev and rebuild)");
    if (!strcmp(argv[1], "inspect")) return cmd_inspect(argc - 1, argv + 1);
    if (!strcmp(argv[1], "quantize")) return cmd_ckpt_quantize(argc - 1, argv + 1);
    if (!strcmp(argv[1], "verify")) return cmd_verify(argc - 1, argv + 1);
    return cli_fail("checkpoint", CLI_USAGE, "unknown subcommand '%s' (inspect, quantize, verify)",
                    argv[1]);
}

/* cmd_ckpt_quantize.c - `fp4gemm checkpoint quantize IN OUT`: a BF16/F16/F32 safetensors
 * checkpoint -> a ModelOpt-compatible NVFP4 one, with the library's `modelopt` recipe (the
 * bytes NVIDIA ModelOpt's export writes: docs/format.md):
 *   1. each 2-D <layer>.weight of F32/F16/BF16 with K a multiple of 16, whose layer matches no
 *      --exclude pattern, is quantized on the run device (the GPU when there is one):
 *      ws2 = fp4_modelopt_global_scale (over the --fuse group when the layer is in one: computed
 *      for the group's first member, reused for the others), then
 *      fp4_quantize (recipe modelopt, linear scales);
 *   2. it is written as <layer>.weight U8 [N, K/2], .weight_scale F8_E4M3 [N, K/16] and
 *      .weight_scale_2 F32 []; every other tensor is copied as it is (from the memory map);
 *   3. OUT/model.safetensors (atomically), OUT/hf_quant_config.json and, when IN's folder has
 *      one, OUT/config.json with quantization_config. */
#define _POSIX_C_SOURCE 200809L
#include "ckpt_config.h"
#include "cli_util.h"

#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const CMD = "checkpoint quantize";
#define MAX_PATTERNS 64

static const char *const k_default_excludes[] = {"*embed*", "lm_head", "*.lm_head"};

typedef struct qopts {
    const char *in, *out;
    const char *exclude[MAX_PATTERNS];
    int n_exclude;
    const char *fuse[MAX_PATTERNS]; /* "q_proj,k_proj,v_proj" */
    int n_fuse;
    int device, no_default_excludes;
} qopts;

static int excluded(const qopts *o, const char *layer) {
    for (int i = 0; i < o->n_exclude; i++)
        if (fnmatch(o->exclude[i], layer, 0) == 0) return 1;
    return 0;
}

/* Should tensor t be quantized? Sets *skip_reason for a 2-D float weight that is not. */
static int quantizable(const qopts *o, const fp4_st_tensor *t, char *layer, size_t len,
                       int *is_excluded) {
    const size_t n = strlen(t->name);
    *is_excluded = 0;
    if (n <= 7 || strcmp(t->name + n - 7, ".weight") || t->ndim != 2 || n - 7 >= len) return 0;
    if (t->dtype != FP4_ST_F32 && t->dtype != FP4_ST_F16 && t->dtype != FP4_ST_BF16) return 0;
    snprintf(layer, len, "%.*s", (int)(n - 7), t->name);
    if (excluded(o, layer)) return !(*is_excluded = 1);
    return t->shape[0] >= 1 && t->shape[1] >= 16 && t->shape[1] % 16 == 0;
}

static fp4_dtype lib_dtype(fp4_st_dtype d) {
    return d == FP4_ST_F32 ? FP4_DTYPE_F32 : d == FP4_ST_F16 ? FP4_DTYPE_F16 : FP4_DTYPE_BF16;
}

/* The parent of layer: its name up to the last '.' (included), "" when it has none. */
static int parent_len(const char *layer) {
    const char *dot = strrchr(layer, '.');
    return dot ? (int)(dot - layer + 1) : 0;
}

/* The members of layer's --fuse group present in st (the layer itself when in none), and
 * the group's index in o->fuse in *group (-1 when in none). */
static int fuse_group(const qopts *o, const fp4_safetensors *st, const char *layer,
                      fp4_st_tensor *members, int cap, int *group) {
    const int plen = parent_len(layer);
    const char *leaf = layer + plen;
    *group = -1;
    for (int g = 0; g < o->n_fuse; g++) {
        char list[512];
        snprintf(list, sizeof list, "%s", o->fuse[g]);
        int in_group = 0;
        for (char *s = strtok(list, ","); s; s = strtok(NULL, ","))
            in_group |= !strcmp(s, leaf);
        if (!in_group) continue;
        *group = g;
        int n = 0;
        snprintf(list, sizeof list, "%s", o->fuse[g]);
        for (char *s = strtok(list, ","); s && n < cap; s = strtok(NULL, ",")) {
            char name[1100];
            snprintf(name, sizeof name, "%.*s%s.weight", plen, layer, s);
            const int64_t i = fp4_safetensors_find(st, name);
            if (i >= 0 && fp4_safetensors_tensor(st, i, &members[n]) == FP4_OK) n++;
        }
        return n;
    }
    char name[1100];
    snprintf(name, sizeof name, "%s.weight", layer);
    return fp4_safetensors_tensor(st, fp4_safetensors_find(st, name), &members[0]) == FP4_OK;
}

/* The ws2 of each --fuse group met so far: one group is one --fuse list under one parent
 * ("model.layers.0.self_attn."), whose members share the ws2 computed for the first of them. */
typedef struct group_ws2 {
    int group;         /* index in qopts.fuse */
    char parent[1024]; /* the layer name up to its last '.', included */
    float ws2;
} group_ws2;

typedef struct group_ws2s {
    group_ws2 *items;
    int n, cap;
} group_ws2s;

/* The ws2 of layer's group (group >= 0) if it was computed, else NULL. */
static const float *group_ws2_find(const group_ws2s *c, int group, const char *layer) {
    const int plen = parent_len(layer);
    for (int i = 0; i < c->n; i++)
        if (c->items[i].group == group && (int)strlen(c->items[i].parent) == plen &&
            !strncmp(c->items[i].parent, layer, (size_t)plen))
            return &c->items[i].ws2;
    return NULL;
}

/* Remembers the ws2 of layer's group; out of memory, it is not remembered (and is computed
 * again for the next member: the same value). */
static void group_ws2_add(group_ws2s *c, int group, const char *layer, float ws2) {
    if (c->n == c->cap) {
        const int cap = c->cap ? 2 * c->cap : 16;
        group_ws2 *more = realloc(c->items, (size_t)cap * sizeof *more);
        if (!more) return;
        c->items = more;
        c->cap = cap;
    }
    group_ws2 *e = &c->items[c->n++];
    e->group = group;
    snprintf(e->parent, sizeof e->parent, "%.*s", parent_len(layer), layer);
    e->ws2 = ws2;
}

/* One layer: ws2 over its group (computed for the group's first member, then reused), the
 * quantization on ctx's device; q, sf (host, linear). */
static int quantize_layer(fp4_ctx *ctx, const qopts *o, const fp4_safetensors *st,
                          const fp4_st_tensor *t, const char *layer, group_ws2s *groups,
                          uint8_t *q, uint8_t *sf, float *ws2) {
    fp4_st_tensor members[8];
    int group;
    int nm = fuse_group(o, st, layer, members, 8, &group);
    const float *known = group >= 0 ? group_ws2_find(groups, group, layer) : NULL;
    if (known) { /* the group's ws2 is known: the layer itself is all that is needed */
        members[0] = *t;
        nm = 1;
    }
    void *dev[8] = {0}, *dev_q = NULL, *dev_sf = NULL, *dev_ws2 = NULL;
    fp4_tensor_ref refs[8];
    int self = 0;
    fp4_status s = FP4_OK;
    for (int i = 0; i < nm && s == FP4_OK; i++) {
        if (members[i].ndim != 2 || members[i].shape[1] % 16 || members[i].dtype != t->dtype ||
            fp4_st_dtype_size(members[i].dtype) == 0) {
            cli_fail(CMD, CLI_FAIL, "%s: --fuse group member %s is not a %s [*, %lld]", layer,
                     members[i].name, fp4_st_dtype_name(t->dtype), (long long)t->shape[1]);
            s = FP4_ERR_INVALID_ARGUMENT;
            break;
        }
        if (!strcmp(members[i].name, t->name)) self = i;
        s = cli_upload_new(ctx, members[i].data, members[i].bytes, &dev[i]); /* aligned copy */
        refs[i] = (fp4_tensor_ref){members[i].shape[0], members[i].shape[1],
                                   lib_dtype(members[i].dtype), dev[i], members[i].shape[1]};
    }
    const int64_t n = t->shape[0], k = t->shape[1];
    if (s == FP4_OK && known) {
        *ws2 = *known;
    } else if (s == FP4_OK) {
        s = fp4_malloc(ctx, &dev_ws2, 4);
        if (s == FP4_OK) s = fp4_modelopt_global_scale(ctx, refs, nm, dev_ws2, NULL);
        if (s == FP4_OK) s = fp4_synchronize(ctx, NULL);
        if (s == FP4_OK) s = fp4_download(ctx, ws2, dev_ws2, 4);
        /* an all-zero weight: ModelOpt's ws2 = 0 would write NaN scales; 1 gives zeros that
         * decode to 0 (and the scales ModelOpt gives all-zero blocks, 1.0) */
        if (s == FP4_OK && *ws2 == 0.0f) *ws2 = 1.0f;
        if (s == FP4_OK && !isfinite(*ws2)) {
            cli_fail(CMD, CLI_FAIL, "%s: the weight holds Inf (ws2 = amax / 2688 is Inf): not "
                     "quantized", layer);
            s = FP4_ERR_INVALID_ARGUMENT;
        }
        if (s == FP4_OK && group >= 0) group_ws2_add(groups, group, layer, *ws2);
    }
    if (s == FP4_OK) s = fp4_malloc(ctx, &dev_q, n * k / 2);
    if (s == FP4_OK) s = fp4_malloc(ctx, &dev_sf, n * k / 16);
    if (s == FP4_OK) {
        fp4_quant_desc d;
        fp4_quant_desc_init(&d);
        d.rows = n, d.k = k, d.in_dtype = lib_dtype(t->dtype), d.in = dev[self], d.ld_in = k;
        d.global_scale = *ws2, d.out_q = dev_q, d.out_sf = dev_sf, d.sf_layout = FP4_SF_LINEAR;
        d.recipe = FP4_QUANT_RECIPE_MODELOPT;
        s = fp4_quantize(ctx, &d);
    }
    if (s == FP4_OK) s = fp4_synchronize(ctx, NULL);
    if (s == FP4_OK) s = fp4_download(ctx, q, dev_q, n * k / 2);
    if (s == FP4_OK) s = fp4_download(ctx, sf, dev_sf, n * k / 16);
    const int rc = s == FP4_OK ? CLI_OK
                   : s == FP4_ERR_INVALID_ARGUMENT && !fp4_last_error(ctx)[0] ? CLI_FAIL
                                                                              : cli_lib_fail(CMD, layer, s, ctx);
    for (int i = 0; i < nm; i++) fp4_free(ctx, dev[i]);
    fp4_free(ctx, dev_q);
    fp4_free(ctx, dev_sf);
    fp4_free(ctx, dev_ws2);
    return rc;
}

static int run_quantize(qopts *o) {
    fp4_safetensors *st = NULL;
    fp4_ctx *ctx = NULL;
    {   /* OUT/model.safetensors and OUT/config.json would replace the input's own */
        char in_dir[4096];
        struct stat si, so;
        ckpt_folder(o->in, in_dir, sizeof in_dir);
        if (stat(in_dir, &si) == 0 && stat(o->out, &so) == 0 && si.st_dev == so.st_dev &&
            si.st_ino == so.st_ino)
            return cli_fail(CMD, CLI_USAGE, "OUT %s is the input's folder: its model.safetensors "
                            "and config.json would be replaced; give the output its own folder",
                            o->out);
    }
    fp4_status s = fp4_safetensors_open(o->in, &st);
    if (s != FP4_OK) return cli_lib_fail(CMD, "opening the input", s, NULL);
    const int64_t count = fp4_safetensors_count(st);
    /* the output list: every tensor, a quantized one as three */
    fp4_st_tensor *out = calloc((size_t)(3 * count + 1), sizeof *out);
    char **names = calloc((size_t)(3 * count + 1), sizeof *names);
    void **bufs = calloc((size_t)(3 * count + 1), sizeof *bufs);
    const char **excl = calloc((size_t)(count + 1), sizeof *excl);
    int64_t n_out = 0, n_bufs = 0, layers = 0, to_do = 0, params = 0;
    int n_excl = 0, rc = CLI_OK;
    group_ws2s groups = {NULL, 0, 0};
    char layer[1024], path[4200], dir[4096], cfg[4200];
    fp4_st_tensor t;
    if (!out || !names || !bufs || !excl) {
        rc = cli_fail(CMD, CLI_FAIL, "out of memory");
        goto done;
    }
    for (int64_t i = 0; i < count; i++) {
        int ex;
        fp4_safetensors_tensor(st, i, &t);
        to_do += quantizable(o, &t, layer, sizeof layer, &ex);
    }
    if ((s = fp4_create(&ctx, o->device)) != FP4_OK) {
        rc = cli_lib_fail(CMD, "creating a context", s, NULL);
        goto done;
    }
    char device[320];
    cli_describe_device(o->device, device, sizeof device);
    const int tty = isatty(fileno(stderr));
    const double t0 = cli_seconds();
    for (int64_t i = 0; i < count && rc == CLI_OK; i++) {
        int ex;
        fp4_safetensors_tensor(st, i, &t);
        if (!quantizable(o, &t, layer, sizeof layer, &ex)) {
            if (ex) excl[n_excl++] = t.name; /* <layer>.weight: the layer name is before it */
            out[n_out++] = t;
            continue;
        }
        const int64_t n = t.shape[0], k = t.shape[1];
        uint8_t *q = malloc((size_t)(n * k / 2)), *sf = malloc((size_t)(n * k / 16));
        float *ws2 = malloc(4);
        bufs[n_bufs++] = q, bufs[n_bufs++] = sf, bufs[n_bufs++] = ws2;
        if (!q || !sf || !ws2) {
            rc = cli_fail(CMD, CLI_FAIL, "out of memory for %s", layer);
            break;
        }
        if ((rc = quantize_layer(ctx, o, st, &t, layer, &groups, q, sf, ws2)) != CLI_OK) break;
        static const char *const suffix[3] = {".weight", ".weight_scale", ".weight_scale_2"};
        for (int j = 0; j < 3; j++) {
            const size_t len = strlen(layer) + 20;
            if (!(names[n_out] = malloc(len))) {
                rc = cli_fail(CMD, CLI_FAIL, "out of memory");
                break;
            }
            snprintf(names[n_out], len, "%s%s", layer, suffix[j]);
            fp4_st_tensor *e = &out[n_out++];
            memset(e, 0, sizeof *e);
            e->name = names[n_out - 1];
            e->dtype = j == 0 ? FP4_ST_U8 : j == 1 ? FP4_ST_F8_E4M3 : FP4_ST_F32;
            e->ndim = j == 2 ? 0 : 2;
            e->shape[0] = n;
            e->shape[1] = j == 0 ? k / 2 : k / 16;
            e->data = j == 0 ? (void *)q : j == 1 ? (void *)sf : (void *)ws2;
        }
        layers++;
        params += n * k;
        fprintf(stderr, tty ? "\r[%lld/%lld] %-60.60s" : "[%lld/%lld] %s [%lld, %lld] %s -> NVFP4, "
                "ws2 %.6g\n", (long long)layers, (long long)to_do, layer, (long long)n, (long long)k,
                fp4_st_dtype_name(t.dtype), (double)*ws2);
    }
    if (tty) fprintf(stderr, "\n");
    if (rc != CLI_OK) goto done;
    const double secs = cli_seconds() - t0;
    if (mkdir(o->out, 0755) != 0 && errno != EEXIST) {
        rc = cli_fail(CMD, CLI_FAIL, "%s: %s", o->out, strerror(errno));
        goto done;
    }
    snprintf(path, sizeof path, "%s/model.safetensors", o->out);
    const char *meta[4] = {"format", "pt", "quantized_by", "fp4gemm checkpoint quantize (recipe modelopt)"};
    if ((s = fp4_safetensors_write(path, out, n_out, meta, 2)) != FP4_OK) {
        rc = cli_lib_fail(CMD, "writing", s, NULL);
        goto done;
    }
    /* exclude_modules: the layers of the excluded 2-D weights */
    char **ex_layers = calloc((size_t)(n_excl + 1), sizeof *ex_layers);
    for (int i = 0; ex_layers && i < n_excl; i++)
        if ((ex_layers[i] = strdup(excl[i]))) ex_layers[i][strlen(ex_layers[i]) - 7] = 0;
    ckpt_folder(o->in, dir, sizeof dir);
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    char written[128];
    rc = ckpt_write_configs(CMD, o->out, access(cfg, R_OK) == 0 ? cfg : NULL,
                            (const char *const *)ex_layers, ex_layers ? n_excl : 0, written,
                            sizeof written);
    for (int i = 0; ex_layers && i < n_excl; i++) free(ex_layers[i]);
    free(ex_layers);
    if (rc != CLI_OK) goto done;
    struct stat sb;
    stat(path, &sb);
    cli_say("quantized %lld linear layers (%lld weights) with the modelopt recipe on %s in %.2f s; "
            "copied %lld other tensors (%d 2-D weights excluded)\n", (long long)layers,
            (long long)params, device, secs, (long long)(n_out - 3 * layers), n_excl);
    cli_say("wrote %s (%lld bytes), %s in %s\n", path, (long long)sb.st_size, written, o->out);
done:
    for (int64_t i = 0; names && i < n_out; i++) free(names[i]);
    for (int64_t i = 0; bufs && i < n_bufs; i++) free(bufs[i]);
    free(out), free(names), free(bufs), free(excl), free(groups.items);
    fp4_destroy(ctx);
    fp4_safetensors_close(st);
    return rc;
}

int cmd_ckpt_quantize(int argc, char **argv) {
    qopts o = {.device = -2};
    /* the default excludes are appended after the user's: room kept for them */
    enum { N_DEFAULT = sizeof k_default_excludes / sizeof *k_default_excludes };
    cli_strings excl = {o.exclude, 0, MAX_PATTERNS - N_DEFAULT}, fuse = {o.fuse, 0, MAX_PATTERNS};
    cli_opt opts[] = {
        {.name = "--exclude", .metavar = "PATTERN", .kind = CLI_STRINGS, .dest = &excl,
         .help = "leave layers matching PATTERN (a shell glob on the\nlayer name, e.g. "
                 "'*.mlp.gate') unquantized; repeatable.\nAlways added: *embed*, lm_head, *.lm_head"},
        {.name = "--fuse", .metavar = "A,B,..", .kind = CLI_STRINGS, .dest = &fuse,
         .help = "sibling layers that share one weight_scale_2 (the\nmax of their amax, as "
                 "ModelOpt does for fused\nprojections): e.g. q_proj,k_proj,v_proj; repeatable"},
        {.name = "--device", .metavar = "D", .kind = CLI_DEVICE, .dest = &o.device,
         .help = "where to quantize: a CUDA device or cpu (default:\ndevice 0 if there is a GPU, "
                 "else the CPU); the bytes\nare the same"},
    };
    cli_command cmd = {
        .name = CMD, .usage = "IN OUT [--exclude PATTERN]... [--fuse A,B]...\n[--device D]",
        .about = "Quantizes a BF16/F16/F32 safetensors checkpoint to NVIDIA ModelOpt's NVFP4\n"
                 "format with the modelopt recipe (the bytes ModelOpt's export writes; see\n"
                 "docs/format.md): every 2-D <layer>.weight with K a multiple of 16 becomes\n"
                 "  <layer>.weight          U8 [N, K/2]\n"
                 "  <layer>.weight_scale    F8_E4M3 [N, K/16]\n"
                 "  <layer>.weight_scale_2  F32, fp32(amax / 2688)\n"
                 "and norms, biases, embeddings and excluded layers are copied as they are.\n"
                 "IN: a .safetensors file, an index .json or a folder. OUT: a folder (made if\n"
                 "missing; not IN's own) that gets model.safetensors, hf_quant_config.json\n"
                 "and, when IN's folder has a config.json, config.json with\n"
                 "quantization_config.",
        .opts = opts, .n_opts = 3,
        .notes = "No input_scale is written: static activation scales need calibration data,\n"
                 "which this command does not have (quantize activations at run time). A\n"
                 "sharded input is written as one file. A progress line per layer goes to stderr."};
    int rc = CLI_RUN;
    const char *pos[2];
    char **args = argv;
    for (int i = 1; i < argc; i++)
        if (!strcmp(args[i], "--help") || !strcmp(args[i], "-h")) {
            cli_print_help(&cmd, stdout);
            return CLI_OK;
        }
    if (argc < 3 || args[1][0] == '-' || args[2][0] == '-')
        rc = cli_fail(CMD, CLI_USAGE, "usage: fp4gemm %s IN OUT [options] (see --help)", CMD);
    if (rc == CLI_RUN) {
        pos[0] = args[1], pos[1] = args[2];
        args[2] = args[0];
        rc = cli_parse(&cmd, argc - 2, args + 2);
    }
    if (rc == CLI_RUN) {
        o.n_exclude = excl.n;
        o.n_fuse = fuse.n;
        for (int i = 0; i < N_DEFAULT; i++) o.exclude[o.n_exclude++] = k_default_excludes[i];
        o.in = pos[0], o.out = pos[1];
        if (o.device == -2) o.device = cli_default_device();
        rc = run_quantize(&o);
    }
    return rc;
}

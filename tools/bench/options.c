/*
 * options.c - what `fp4gemm bench` runs: the presets of weight shapes, the M list, explicit
 * --shapes, and --providers by name (from the one provider table, providers.c).
 */
#include "bench_internal.h"
#include "cli_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD bench_cmd_name

/* The command in messages: "bench", or "tune" when `fp4gemm tune` reads shapes with these. */
const char *bench_cmd_name = "bench";

/* ---- shapes ---------------------------------------------------------------------------------- */

typedef struct preset {
    const char *name;
    const char *about;
    int count;
    int64_t nk[8][2]; /* (N, K): the weight is [N, K] */
} preset;

static const preset k_presets[] = {
    {"deepseek-r1", "DeepSeek-R1 linear layers", 8,
     {{1024, 7168}, {7168, 512}, {7168, 4608}, {9216, 7168}, {512, 7168}, {7168, 256},
      {7168, 2304}, {4608, 7168}}},
    {"llama3.1-8b", "Llama 3.1 8B: qkv, o, gate+up, down", 4,
     {{6144, 4096}, {4096, 4096}, {28672, 4096}, {4096, 14336}}},
    {"llama3.3-70b", "Llama 3.3 70B: qkv, o, gate+up, down", 4,
     {{10240, 8192}, {8192, 8192}, {57344, 8192}, {8192, 28672}}},
};
#define N_PRESETS ((int)(sizeof k_presets / sizeof k_presets[0]))

static const int64_t k_default_m[] = {1,   2,   4,    8,    16,   32,   64,   128,
                                      256, 512, 1024, 2048, 3072, 4096, 8192, 16384};
#define N_DEFAULT_M ((int)(sizeof k_default_m / sizeof k_default_m[0]))

static int cmp_i64(const void *x, const void *y) {
    const int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

/* Parses "1,2,4" into a sorted list without repeats. CLI_OK or CLI_USAGE after a message. */
static int parse_m_list(const char *text, int64_t **out, int *count) {
    int cap = 1;
    for (const char *p = text; *p; p++) cap += *p == ',';
    int64_t *m = calloc((size_t)cap, sizeof *m);
    if (!m) return cli_fail(CMD, CLI_FAIL, "out of memory");
    int n = 0;
    const char *p = text;
    for (;;) {
        const char *end = strchr(p, ',');
        const size_t len = end ? (size_t)(end - p) : strlen(p);
        char item[32];
        const char *why = "not an integer";
        if (len == 0 || len >= sizeof item ||
            (memcpy(item, p, len), item[len] = 0,
             cli_parse_i64(item, 1, CLI_MAX_DIM, &m[n], &why) != 0)) {
            free(m);
            return cli_fail(CMD, CLI_USAGE, "--m-list %s: '%.*s': %s (expected M >= 1, e.g. 1,16,128)",
                            text, (int)len, p, why);
        }
        n++;
        if (!end) break;
        p = end + 1;
    }
    qsort(m, (size_t)n, sizeof *m, cmp_i64);
    int unique = 0;
    for (int i = 0; i < n; i++)
        if (unique == 0 || m[i] != m[unique - 1]) m[unique++] = m[i];
    *out = m;
    *count = unique;
    return CLI_OK;
}

/* Parses "M,N,K;M,N,K". CLI_OK or CLI_USAGE after a message. */
static int parse_shapes(const char *text, bench_shape **out, int *count) {
    int cap = 1;
    for (const char *p = text; *p; p++) cap += *p == ';';
    bench_shape *s = calloc((size_t)cap, sizeof *s);
    if (!s) return cli_fail(CMD, CLI_FAIL, "out of memory");
    int n = 0;
    const char *p = text;
    for (;;) {
        const char *end = strchr(p, ';');
        const size_t len = end ? (size_t)(end - p) : strlen(p);
        char item[96];
        int64_t v[3] = {0, 0, 0};
        int ok = len > 0 && len < sizeof item;
        if (ok) {
            memcpy(item, p, len);
            item[len] = 0;
            char *save = item;
            for (int j = 0; j < 3 && ok; j++) {
                char *comma = strchr(save, ',');
                if (j < 2 && !comma) ok = 0;
                if (j == 2 && comma) ok = 0;
                if (!ok) break;
                if (comma) *comma = 0;
                const char *why = NULL;
                ok = cli_parse_i64(save, 1, CLI_MAX_DIM, &v[j], &why) == 0;
                save = comma ? comma + 1 : save;
            }
        }
        if (!ok) {
            free(s);
            return cli_fail(CMD, CLI_USAGE,
                            "--shapes: '%.*s' is not M,N,K with positive integers (e.g. "
                            "\"16,4096,4096;128,6144,4096\")",
                            (int)len, p);
        }
        if (v[2] % 16 != 0) {
            free(s);
            return cli_fail(CMD, CLI_USAGE, "--shapes: '%.*s': K = %lld is not a multiple of 16",
                            (int)len, p, (long long)v[2]);
        }
        s[n].m = v[0];
        s[n].n = v[1];
        s[n].k = v[2];
        n++;
        if (!end) break;
        p = end + 1;
    }
    *out = s;
    *count = n;
    return CLI_OK;
}
/* The table row named `name` (exactly), or -1. */
static int find_row(const bench_provider *cat, int ncat, const char *name, size_t len) {
    for (int i = 0; i < ncat; i++)
        if (strlen(cat[i].name) == len && strncmp(cat[i].name, name, len) == 0) return i;
    return -1;
}

/* A tactic name ("cuda_simt/gemv_mr8", any case) as a row: found, or added after the rows of
 * the table as a copy of its backend's row with that config. -1 if it is not a GPU tactic, -2 if
 * it is one but the table is full. */
static int tactic_row(bench_provider *cat, int *ncat, const char *text, size_t len) {
    char token[96], name[96];
    fp4_tactic t;
    if (len >= sizeof token) return -1;
    memcpy(token, text, len);
    token[len] = 0;
    if (fp4_tactic_from_name(token, &t) != FP4_OK || fp4_tactic_name(t, name, sizeof name) != FP4_OK)
        return -1;
    const int known = find_row(cat, *ncat, name, strlen(name));
    if (known >= 0) return known;
    int base = -1;
    for (int i = 0; i < *ncat && base < 0; i++)
        if (cat[i].kind == BENCH_KIND_FP4 && cat[i].backend == t.backend && cat[i].config < 0)
            base = i;
    const size_t name_len = strlen(name);
    if (base < 0 || t.backend == FP4_BACKEND_AUTO || name_len >= sizeof cat[0].name) return -1;
    if (*ncat >= BENCH_MAX_PROVIDERS) return -2; /* a tactic, but the table is full */
    cat[*ncat] = cat[base];
    memcpy(cat[*ncat].name, name, name_len + 1);
    cat[*ncat].config = t.config;
    return (*ncat)++;
}

int bench_parse_providers(const char *text, bench_provider *cat, int *ncat, int *chosen,
                          int *nchosen) {
    *nchosen = 0;
    const char *p = text;
    for (;;) {
        const char *end = strchr(p, ',');
        const size_t len = end ? (size_t)(end - p) : strlen(p);
        int found = find_row(cat, *ncat, p, len);
        if (found < 0) found = tactic_row(cat, ncat, p, len);
        if (found == -2)
            return cli_fail(CMD, CLI_USAGE, "--providers: at most %d providers and tactics in one "
                            "run ('%.*s' is one too many)", BENCH_MAX_PROVIDERS, (int)len, p);
        if (found < 0) {
            char names[512] = "";
            size_t used = 0;
            for (int i = 0; i < *ncat && used < sizeof names; i++)
                used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "",
                                         cat[i].name);
            if (len == strlen("cpu_ref") && strncmp(p, "cpu_ref", len) == 0)
                return cli_fail(CMD, CLI_USAGE,
                                "--providers: cpu_ref is the CPU reference, not a GPU provider "
                                "(it checks the others)");
            return cli_fail(CMD, CLI_USAGE,
                            "--providers: unknown provider '%.*s' (known: %s, or a GPU tactic "
                            "such as cuda_simt/gemv_mr8: see 'fp4gemm info')",
                            (int)len, p, names);
        }
        int dup = 0;
        for (int i = 0; i < *nchosen; i++) dup |= chosen[i] == found;
        if (!dup) chosen[(*nchosen)++] = found;
        if (!end) break;
        p = end + 1;
    }
    return CLI_OK;
}

int bench_make_shapes(const char *shapes_arg, const char *preset_name, const char *m_list,
                      bench_options *opt, char *shapes_text, size_t len) {
    if (shapes_arg && (preset_name || m_list))
        return cli_fail(CMD, CLI_USAGE, "give --shapes, or --preset and --m-list, not both");
    if (shapes_arg) {
        if (parse_shapes(shapes_arg, &opt->shapes, &opt->nshapes) != CLI_OK) return CLI_USAGE;
        snprintf(shapes_text, len, "--shapes %.400s: %d points", shapes_arg,
                 opt->nshapes);
    } else {
        const preset *pre = NULL;
        const char *want = preset_name ? preset_name : "llama3.1-8b";
        for (int i = 0; i < N_PRESETS; i++)
            if (strcmp(k_presets[i].name, want) == 0) pre = &k_presets[i];
        if (!pre)
            return cli_fail(CMD, CLI_USAGE,
                            "--preset %s: unknown (deepseek-r1, llama3.1-8b, llama3.3-70b)", want);
        int64_t *ms = NULL;
        int nm = 0;
        if (m_list) {
            if (parse_m_list(m_list, &ms, &nm) != CLI_OK) return CLI_USAGE;
        } else {
            ms = malloc(sizeof k_default_m);
            if (!ms) return cli_fail(CMD, CLI_FAIL, "out of memory");
            memcpy(ms, k_default_m, sizeof k_default_m);
            nm = N_DEFAULT_M;
        }
        opt->shapes = calloc((size_t)(pre->count * nm), sizeof *opt->shapes);
        if (!opt->shapes) {
            free(ms);
            return cli_fail(CMD, CLI_FAIL, "out of memory");
        }
        for (int s = 0; s < pre->count; s++)
            for (int i = 0; i < nm; i++) {
                bench_shape *sh = &opt->shapes[opt->nshapes++];
                sh->m = ms[i];
                sh->n = pre->nk[s][0];
                sh->k = pre->nk[s][1];
            }
        opt->preset = pre->name;
        snprintf(opt->m_list_text, sizeof opt->m_list_text, "%s",
                 m_list ? m_list : "1,2,4,...,2048,3072,4096,8192,16384");
        snprintf(shapes_text, len, "preset %s (%s): %d (N, K) x %d M = %d points",
                 pre->name, pre->about, pre->count, nm, opt->nshapes);
        free(ms);
    }
    return CLI_OK;
}

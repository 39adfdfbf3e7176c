/*
 * bench.c - `fp4gemm bench`: options, shapes and providers by name, then the run one point at
 * a time (bench_cuda.c does the GPU work), the aligned table on stdout, the summary, and the
 * CSV, JSON and SVG (bench_svg.c) files. The method is in docs/PERF.md.
 */
#define _POSIX_C_SOURCE 200809L
#include "bench.h"
#include "bench_internal.h"
#include "cli_util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CMD "bench"

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

/* ---- providers --------------------------------------------------------------------------- */

/* Every provider the bench knows, in the order of the table: the GPU backends of the library
 * (cpu_ref is not one), auto, then the baselines. */
static int provider_catalog(bench_provider *out) {
    int n = 0;
    for (int b = 0; b < FP4_BACKEND_COUNT; b++) {
        if (b == FP4_BACKEND_AUTO || b == FP4_BACKEND_CPU_REF) continue;
        snprintf(out[n].name, sizeof out[n].name, "%s", fp4_backend_name((fp4_backend)b));
        out[n].kind = BENCH_KIND_FP4;
        out[n].backend = (fp4_backend)b;
        n++;
    }
    snprintf(out[n].name, sizeof out[n].name, "%s", fp4_backend_name(FP4_BACKEND_AUTO));
    out[n].kind = BENCH_KIND_FP4;
    out[n].backend = FP4_BACKEND_AUTO;
    n++;
    static const struct {
        const char *name;
        bench_kind kind;
    } baselines[] = {{"cublas_bf16", BENCH_KIND_CUBLAS_BF16},
                     {"cublas_fp8", BENCH_KIND_CUBLAS_FP8},
                     {"dequant_cublas", BENCH_KIND_DEQUANT_CUBLAS}};
    for (int i = 0; i < 3; i++) {
        snprintf(out[n].name, sizeof out[n].name, "%s", baselines[i].name);
        out[n].kind = baselines[i].kind;
        out[n].backend = FP4_BACKEND_AUTO;
        n++;
    }
    return n;
}

static const char *provider_about(const bench_provider *p, char *buf, size_t len) {
    switch (p->kind) {
    case BENCH_KIND_FP4:
        if (p->backend == FP4_BACKEND_AUTO)
            return "fp4_gemm, backend auto: what a user of the library gets";
        snprintf(buf, len, "fp4_gemm, backend %.31s: NVFP4 A and B", p->name);
        return buf;
    case BENCH_KIND_CUBLAS_BF16:
        return "cuBLASLt BF16 GEMM on the dequantized operands: a Hopper user without FP4";
    case BENCH_KIND_CUBLAS_FP8: return "cuBLASLt FP8 E4M3 GEMM, per-tensor scales, TN layout";
    case BENCH_KIND_DEQUANT_CUBLAS:
        return "fp4_dequantize A and B to BF16 + cuBLASLt BF16 GEMM, timed together";
    }
    return "?";
}

/* Parses --providers into `chosen` (indexes into the catalog). CLI_OK or CLI_USAGE. */
static int parse_providers(const char *text, const bench_provider *cat, int ncat, int *chosen,
                           int *nchosen) {
    *nchosen = 0;
    const char *p = text;
    for (;;) {
        const char *end = strchr(p, ',');
        const size_t len = end ? (size_t)(end - p) : strlen(p);
        int found = -1;
        for (int i = 0; i < ncat; i++)
            if (strlen(cat[i].name) == len && strncmp(cat[i].name, p, len) == 0) found = i;
        if (found < 0) {
            char names[512] = "";
            size_t used = 0;
            for (int i = 0; i < ncat && used < sizeof names; i++)
                used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "",
                                         cat[i].name);
            if (len == strlen("cpu_ref") && strncmp(p, "cpu_ref", len) == 0)
                return cli_fail(CMD, CLI_USAGE,
                                "--providers: cpu_ref is the CPU reference, not a GPU provider "
                                "(it checks the others)");
            return cli_fail(CMD, CLI_USAGE, "--providers: unknown provider '%.*s' (known: %s)",
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

/* ---- without CUDA: the GPU half says so ------------------------------------------------------ */

#ifndef FP4GEMM_HAVE_CUDA
struct bench_cuda {
    int unused;
};
static const char k_no_cuda[] = "this fp4gemm was built without CUDA";
int bench_cuda_open(int device, bench_device *dev, bench_cuda **out, char *why, size_t len) {
    (void)device;
    (void)dev;
    *out = NULL;
    snprintf(why, len, "%s", k_no_cuda);
    return -1;
}
void bench_cuda_close(bench_cuda *bc) { (void)bc; }
int bench_cuda_provider_check(bench_cuda *bc, const bench_provider *p, char *why, size_t len) {
    (void)bc;
    (void)p;
    snprintf(why, len, "%s", k_no_cuda);
    return -1;
}
int bench_cuda_ceilings(bench_cuda *bc, bench_device *dev, char *why, size_t len) {
    (void)bc;
    (void)dev;
    snprintf(why, len, "%s", k_no_cuda);
    return -1;
}
int bench_cuda_point(bench_cuda *bc, bench_run *run, bench_shape shape, char *why, size_t len) {
    (void)bc;
    (void)run;
    (void)shape;
    snprintf(why, len, "%s", k_no_cuda);
    return -1;
}
#endif

/* Why this machine can't run the bench on `device`, or NULL if it might. */
static const char *no_device_reason(int device, char *buf, size_t len) {
    if (!fp4_built_with_cuda()) return "this fp4gemm was built without CUDA";
    int count = 0;
    if (fp4_device_count(&count) != FP4_OK) count = 0;
    if (count == 0)
        return "no CUDA device is visible (no GPU, no driver, or CUDA_VISIBLE_DEVICES hides it)";
    if (device >= count) {
        snprintf(buf, len, "CUDA device %d does not exist (%d visible)", device, count);
        return buf;
    }
    return NULL;
}

/* ---- text ------------------------------------------------------------------------------------ */

void bench_text_printf(bench_text *t, const char *fmt, ...) {
    if (t->failed) return;
    for (;;) {
        const size_t room = t->cap - t->len;
        va_list ap;
        va_start(ap, fmt);
        const int n = vsnprintf(t->data ? t->data + t->len : NULL, t->data ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if (t->data && (size_t)n < room) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap * 2 : 4096;
        while (cap - t->len <= (size_t)n) cap *= 2;
        char *grown = realloc(t->data, cap);
        if (!grown) {
            t->failed = 1;
            return;
        }
        t->data = grown;
        t->cap = cap;
    }
}

void bench_text_xml(bench_text *t, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': bench_text_printf(t, "&amp;"); break;
        case '<': bench_text_printf(t, "&lt;"); break;
        case '>': bench_text_printf(t, "&gt;"); break;
        case '"': bench_text_printf(t, "&quot;"); break;
        default: bench_text_printf(t, "%c", *s);
        }
    }
}

void bench_text_free(bench_text *t) {
    free(t->data);
    memset(t, 0, sizeof *t);
}

static void csv_string(bench_text *t, const char *s) {
    bench_text_printf(t, "\"");
    for (; *s; s++) bench_text_printf(t, *s == '"' ? "\"\"" : "%c", *s);
    bench_text_printf(t, "\"");
}

static void json_string(bench_text *t, const char *s) {
    bench_text_printf(t, "\"");
    for (; *s; s++) {
        const unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            bench_text_printf(t, "\\%c", c);
        else if (c < 0x20)
            bench_text_printf(t, "\\u%04x", c);
        else
            bench_text_printf(t, "%c", c);
    }
    bench_text_printf(t, "\"");
}

/* A number, or null when it is not known (v <= 0 or not finite, unless zero_ok). */
static void json_number(bench_text *t, double v, int known) {
    if (known && isfinite(v))
        bench_text_printf(t, "%.6g", v);
    else
        bench_text_printf(t, "null");
}

static int write_text(const char *path, bench_text *t) {
    if (t->failed) return cli_fail(CMD, CLI_FAIL, "%s: out of memory while writing it", path);
    return cli_write_file(CMD, path, t->data ? t->data : "", (int64_t)t->len);
}

/* ---- the run's records --------------------------------------------------------------------------- */

bench_result *bench_add_result(bench_run *run, int provider, bench_shape shape) {
    if (run->nresults == run->cap) {
        const int cap = run->cap ? run->cap * 2 : 256;
        bench_result *grown = realloc(run->results, (size_t)cap * sizeof *grown);
        if (!grown) return NULL;
        run->results = grown;
        run->cap = cap;
    }
    bench_result *r = &run->results[run->nresults++];
    memset(r, 0, sizeof *r);
    r->provider = provider;
    r->shape = shape;
    return r;
}

int bench_baseline_index(const bench_run *run) {
    for (int i = 0; i < run->nproviders; i++)
        if (run->providers[i].kind == BENCH_KIND_CUBLAS_BF16) return i;
    return -1;
}

void bench_progress(const bench_run *run, const char *provider, bench_shape s) {
    if (!run->opt->progress) return;
    fprintf(stderr, "\r\033[K[%d/%d] M=%lld N=%lld K=%lld %s", run->point_index + 1, run->npoints,
            (long long)s.m, (long long)s.n, (long long)s.k, provider);
    fflush(stderr);
}

static const char *status_name(bench_status s) {
    return s == BENCH_OK ? "OK" : s == BENCH_FAILED ? "FAILED" : "SKIPPED";
}

/* The speedups of one point's rows over its cublas_bf16 row. */
static void fill_speedups(bench_run *run, int first, int count) {
    const int base = bench_baseline_index(run);
    const bench_result *b = NULL;
    for (int i = first; i < first + count; i++)
        if (run->results[i].provider == base && run->results[i].status == BENCH_OK)
            b = &run->results[i];
    for (int i = first; i < first + count; i++) {
        bench_result *r = &run->results[i];
        r->speedup = (b && r->status == BENCH_OK && r->time_us > 0) ? b->time_us / r->time_us : 0;
    }
}

/* ---- the table ---------------------------------------------------------------------------------- */

/* 3 significant digits, at most 8 characters. */
static const char *fmt3(char *buf, size_t len, double v) {
    if (!(v > 0) || !isfinite(v))
        snprintf(buf, len, "-");
    else if (v < 10)
        snprintf(buf, len, "%.2f", v);
    else if (v < 100)
        snprintf(buf, len, "%.1f", v);
    else
        snprintf(buf, len, "%.0f", v);
    return buf;
}

static void print_table_header(void) {
    printf("%-15s %6s %6s %6s %10s %9s %9s %8s %8s %6s %8s  %s\n", "provider", "M", "N", "K",
           "time_us", "p20_us", "p80_us", "TFLOP/s", "GB/s", "roof%", "vs_bf16", "note");
}

static void print_row(const bench_run *run, const bench_result *r) {
    printf("%-15s %6lld %6lld %6lld", run->providers[r->provider].name, (long long)r->shape.m,
           (long long)r->shape.n, (long long)r->shape.k);
    if (r->status != BENCH_OK) {
        printf("  %s: %s\n", status_name(r->status), r->note);
        return;
    }
    char tf[16], gb[16], roof[16], sp[16] = "-";
    if (r->speedup > 0) snprintf(sp, sizeof sp, "%.2fx", r->speedup);
    printf(" %10.2f %9.2f %9.2f %8s %8s %6s %8s%s%s\n", r->time_us, r->p20_us, r->p80_us,
           fmt3(tf, sizeof tf, r->tflops), fmt3(gb, sizeof gb, r->gbs),
           fmt3(roof, sizeof roof, r->roofline_pct), sp, r->note[0] ? "  " : "", r->note);
}

static void print_header(const bench_run *run, const char *shapes_text) {
    const bench_device *d = &run->dev;
    printf("fp4gemm bench on %s (device %d, sm_%d, %d SMs, L2 %.1f MiB, %.1f GiB", d->name,
           d->device, d->cc, d->sm_count, (double)d->l2_bytes / 1048576.0,
           (double)d->memory_bytes / 1073741824.0);
    if (d->sm_clock_mhz) printf(", SM clock %d MHz", d->sm_clock_mhz);
    if (d->mem_clock_mhz) printf(", memory clock %d MHz", d->mem_clock_mhz);
    printf(")\n");
    printf("  %s; fp4gemm %s (CUDA archs %s); CUDA runtime %d.%d, driver %d.%d; cuBLASLt "
           "%ld.%ld.%ld\n",
           run->date, fp4_version(), fp4_built_cuda_archs(), d->runtime_version / 1000,
           d->runtime_version % 1000 / 10, d->driver_version / 1000,
           d->driver_version % 1000 / 10, d->cublaslt_version / 10000,
           d->cublaslt_version / 100 % 100, d->cublaslt_version % 100);
    printf("  ceilings measured now on %s: device-to-device copy ", d->name);
    if (d->copy_gbs > 0)
        printf("%.0f GB/s (%.2f GiB, read + write)", d->copy_gbs,
               (double)d->copy_bytes / 1073741824.0);
    else
        printf("not measured");
    printf("; cuBLASLt BF16 8192^3 ");
    if (d->bf16_tflops > 0)
        printf("%.0f TFLOP/s (random data)\n", d->bf16_tflops);
    else
        printf("not measured\n");
    if (d->quant_gbs > 0 && d->copy_gbs > 0)
        printf("  quantizer on %s, BF16 [%lld, %lld], bytes read + written: fp4_global_scale "
               "%.0f GB/s (%.0f%% of copy), fp4_quantize (swizzled) %.0f GB/s (%.0f%%), "
               "fp4_dequantize (to BF16) %.0f GB/s (%.0f%%)\n",
               d->name, (long long)d->quant_rows, (long long)d->quant_k, d->amax_gbs,
               100 * d->amax_gbs / d->copy_gbs, d->quant_gbs, 100 * d->quant_gbs / d->copy_gbs,
               d->dequant_gbs, 100 * d->dequant_gbs / d->copy_gbs);
    if (d->ceiling_note[0]) printf("  ceilings: %s\n", d->ceiling_note);
    printf("  method: each provider checked before timing (all outputs finite, %d sampled "
           "outputs vs a double reference); CUDA graph of >= %d launches, each on the next "
           "input set, sets spanning >= %.0fx L2 (cold weights); median, p20, p80 of >= %d "
           "replays; time per GEMM = replay / launches\n",
           BENCH_SAMPLES, BENCH_MIN_LAUNCHES, BENCH_L2_FACTOR, run->opt->min_replays);
    printf("  shapes: %s; D in %s; every provider computes D = A B^T / (gs_a gs_b) on the same "
           "NVFP4 data\n",
           shapes_text, fp4_dtype_name(run->opt->out_dtype));
    printf("  providers:");
    for (int i = 0; i < run->nproviders; i++) printf(" %s", run->providers[i].name);
    printf("\n");
    for (int i = 0; i < run->nunavailable; i++) printf("  not run here: %s\n", run->unavailable[i]);
    fflush(stdout);
}

/* ---- the summary ----------------------------------------------------------------------------------- */

typedef struct provider_summary {
    int ok, failed, skipped, with_speedup;
    double log_sum, geomean;
    const bench_result *worst, *best, *peak;
} provider_summary;

static provider_summary summarize(const bench_run *run, int provider) {
    provider_summary s;
    memset(&s, 0, sizeof s);
    for (int i = 0; i < run->nresults; i++) {
        const bench_result *r = &run->results[i];
        if (r->provider != provider) continue;
        if (r->status == BENCH_OK) s.ok++;
        if (r->status == BENCH_FAILED) s.failed++;
        if (r->status == BENCH_SKIPPED) s.skipped++;
        if (r->status != BENCH_OK) continue;
        if (!s.peak || r->tflops > s.peak->tflops) s.peak = r;
        if (!(r->speedup > 0)) continue;
        s.with_speedup++;
        s.log_sum += log(r->speedup);
        if (!s.worst || r->speedup < s.worst->speedup) s.worst = r;
        if (!s.best || r->speedup > s.best->speedup) s.best = r;
    }
    s.geomean = s.with_speedup ? exp(s.log_sum / s.with_speedup) : 0.0;
    return s;
}

static const char *at_shape(char *buf, size_t len, const bench_result *r) {
    snprintf(buf, len, "%lldx%lldx%lld", (long long)r->shape.m, (long long)r->shape.n,
             (long long)r->shape.k);
    return buf;
}

static void print_summary(const bench_run *run) {
    printf("\nsummary on %s: speedup = cublas_bf16 time / provider time at the same point "
           "(geometric mean over the points both ran; shapes are MxNxK)\n",
           run->dev.name);
    printf("%-15s %4s %4s %4s %8s %8s %-18s %8s %-18s %8s %s\n", "provider", "ok", "fail", "skip",
           "geomean", "worst", "at", "best", "at", "peak", "TFLOP/s at");
    for (int p = 0; p < run->nproviders; p++) {
        const provider_summary s = summarize(run, p);
        char g[16] = "-", w[16] = "-", b[16] = "-", wa[48] = "", ba[48] = "", pk[16] = "-",
             pa[48] = "";
        if (s.with_speedup) {
            snprintf(g, sizeof g, "%.2fx", s.geomean);
            snprintf(w, sizeof w, "%.2fx", s.worst->speedup);
            snprintf(b, sizeof b, "%.2fx", s.best->speedup);
            at_shape(wa, sizeof wa, s.worst);
            at_shape(ba, sizeof ba, s.best);
        }
        if (s.peak) {
            fmt3(pk, sizeof pk, s.peak->tflops);
            at_shape(pa, sizeof pa, s.peak);
        }
        printf("%-15s %4d %4d %4d %8s %8s %-18s %8s %-18s %8s %s\n", run->providers[p].name, s.ok,
               s.failed, s.skipped, g, w, wa, b, ba, pk, pa);
    }
}

/* ---- CSV and JSON ------------------------------------------------------------------------------------ */

static void write_csv(const bench_run *run, bench_text *t) {
    bench_text_printf(t, "device,provider,m,n,k,out_dtype,status,time_us,p20_us,p80_us,tflops,"
                         "gbs,roofline_pct,speedup_vs_cublas_bf16,launches,sets,replays,timing,"
                         "cold,check_max_err,check_rel_l2,note\n");
    for (int i = 0; i < run->nresults; i++) {
        const bench_result *r = &run->results[i];
        csv_string(t, run->dev.name);
        bench_text_printf(t, ",%s,%lld,%lld,%lld,%s,%s,", run->providers[r->provider].name,
                          (long long)r->shape.m, (long long)r->shape.n, (long long)r->shape.k,
                          fp4_dtype_name(run->opt->out_dtype), status_name(r->status));
        if (r->status == BENCH_OK)
            bench_text_printf(t, "%.4f,%.4f,%.4f,%.4f,%.2f,%.2f,", r->time_us, r->p20_us,
                              r->p80_us, r->tflops, r->gbs, r->roofline_pct);
        else
            bench_text_printf(t, ",,,,,,");
        if (r->speedup > 0)
            bench_text_printf(t, "%.4f", r->speedup);
        if (r->status == BENCH_OK)
            bench_text_printf(t, ",%d,%d,%d,%s,%d,", r->launches, r->sets, r->replays,
                              r->graph ? "graph" : "stream", r->cold);
        else
            bench_text_printf(t, ",,,,,,");
        if (r->status == BENCH_OK || r->check_rel_l2 > 0)
            bench_text_printf(t, "%.3g,%.3g,", r->check_max_err, r->check_rel_l2);
        else
            bench_text_printf(t, ",,");
        csv_string(t, r->note);
        bench_text_printf(t, "\n");
    }
}

static void write_json(const bench_run *run, const char *shapes_text, bench_text *t) {
    const bench_device *d = &run->dev;
    const bench_options *o = run->opt;
    bench_text_printf(t, "{\n  \"tool\": \"fp4gemm bench\",\n  \"version\": ");
    json_string(t, fp4_version());
    bench_text_printf(t, ",\n  \"date\": ");
    json_string(t, run->date);
    bench_text_printf(t, ",\n  \"device\": {\"name\": ");
    json_string(t, d->name);
    bench_text_printf(t,
                      ", \"index\": %d, \"compute_capability\": %d, \"sm_count\": %d, "
                      "\"l2_bytes\": %lld, \"memory_bytes\": %lld, \"sm_clock_mhz\": %d, "
                      "\"memory_clock_mhz\": %d, \"cuda_runtime\": %d, \"cuda_driver\": %d, "
                      "\"cublaslt\": %ld, \"cuda_archs\": ",
                      d->device, d->cc, d->sm_count, (long long)d->l2_bytes,
                      (long long)d->memory_bytes, d->sm_clock_mhz, d->mem_clock_mhz,
                      d->runtime_version, d->driver_version, d->cublaslt_version);
    json_string(t, fp4_built_cuda_archs());
    bench_text_printf(t, "},\n  \"ceilings\": {\"copy_gbs\": ");
    json_number(t, d->copy_gbs, d->copy_gbs > 0);
    bench_text_printf(t, ", \"copy_bytes\": %lld, \"bf16_tflops\": ", (long long)d->copy_bytes);
    json_number(t, d->bf16_tflops, d->bf16_tflops > 0);
    bench_text_printf(t, ", \"bf16_shape\": [8192, 8192, 8192], \"quantizer_shape\": [%lld, %lld]",
                      (long long)d->quant_rows, (long long)d->quant_k);
    bench_text_printf(t, ", \"global_scale_gbs\": ");
    json_number(t, d->amax_gbs, d->amax_gbs > 0);
    bench_text_printf(t, ", \"quantize_gbs\": ");
    json_number(t, d->quant_gbs, d->quant_gbs > 0);
    bench_text_printf(t, ", \"dequantize_gbs\": ");
    json_number(t, d->dequant_gbs, d->dequant_gbs > 0);
    bench_text_printf(t, ", \"note\": ");
    json_string(t, d->ceiling_note);
    bench_text_printf(t,
                      "},\n  \"method\": {\"min_launches\": %d, \"min_replays\": %d, "
                      "\"max_replays\": %d, \"l2_factor\": %g, \"max_sets\": %d, "
                      "\"samples\": %d, \"max_point_seconds\": %g, \"timing\": ",
                      BENCH_MIN_LAUNCHES, o->min_replays, BENCH_MAX_REPLAYS, BENCH_L2_FACTOR,
                      BENCH_MAX_SETS, BENCH_SAMPLES, o->max_point_seconds);
    json_string(t, "CUDA graph of >= min_launches launches, each on the next rotated input set; "
                   "median, p20, p80 of the replays timed with CUDA events; per GEMM = replay / "
                   "launches");
    bench_text_printf(t, "},\n  \"config\": {\"shapes\": ");
    json_string(t, shapes_text);
    bench_text_printf(t, ", \"preset\": ");
    if (o->preset)
        json_string(t, o->preset);
    else
        bench_text_printf(t, "null");
    bench_text_printf(t, ", \"out_dtype\": \"%s\", \"seed\": %llu, \"providers\": [",
                      fp4_dtype_name(o->out_dtype), (unsigned long long)o->seed);
    for (int i = 0; i < run->nproviders; i++) {
        bench_text_printf(t, "%s", i ? ", " : "");
        json_string(t, run->providers[i].name);
    }
    bench_text_printf(t, "], \"unavailable\": [");
    for (int i = 0; i < run->nunavailable; i++) {
        bench_text_printf(t, "%s", i ? ", " : "");
        json_string(t, run->unavailable[i]);
    }
    bench_text_printf(t, "]},\n  \"aborted\": ");
    if (run->aborted)
        json_string(t, run->abort_reason);
    else
        bench_text_printf(t, "null");
    bench_text_printf(t, ",\n  \"wall_seconds\": %.1f,\n  \"results\": [\n", run->wall_seconds);
    for (int i = 0; i < run->nresults; i++) {
        const bench_result *r = &run->results[i];
        const int ok = r->status == BENCH_OK;
        bench_text_printf(t, "    {\"provider\": ");
        json_string(t, run->providers[r->provider].name);
        bench_text_printf(t, ", \"m\": %lld, \"n\": %lld, \"k\": %lld, \"status\": \"%s\"",
                          (long long)r->shape.m, (long long)r->shape.n, (long long)r->shape.k,
                          status_name(r->status));
        bench_text_printf(t, ", \"time_us\": ");
        json_number(t, r->time_us, ok);
        bench_text_printf(t, ", \"p20_us\": ");
        json_number(t, r->p20_us, ok);
        bench_text_printf(t, ", \"p80_us\": ");
        json_number(t, r->p80_us, ok);
        bench_text_printf(t, ", \"tflops\": ");
        json_number(t, r->tflops, ok);
        bench_text_printf(t, ", \"gbs\": ");
        json_number(t, r->gbs, ok);
        bench_text_printf(t, ", \"roofline_pct\": ");
        json_number(t, r->roofline_pct, ok && r->roofline_pct > 0);
        bench_text_printf(t, ", \"speedup_vs_cublas_bf16\": ");
        json_number(t, r->speedup, r->speedup > 0);
        bench_text_printf(t, ", \"flops\": %.6g, \"bytes\": %.6g", r->flops, r->bytes);
        if (ok)
            bench_text_printf(t,
                              ", \"launches\": %d, \"sets\": %d, \"replays\": %d, \"timing\": "
                              "\"%s\", \"cold\": %s",
                              r->launches, r->sets, r->replays, r->graph ? "graph" : "stream",
                              r->cold ? "true" : "false");
        bench_text_printf(t, ", \"check_max_err\": ");
        json_number(t, r->check_max_err, ok || r->check_rel_l2 > 0);
        bench_text_printf(t, ", \"check_rel_l2\": ");
        json_number(t, r->check_rel_l2, ok || r->check_rel_l2 > 0);
        if (r->fp8_vs_nvfp4 > 0) bench_text_printf(t, ", \"fp8_vs_nvfp4_rel_l2\": %.4g", r->fp8_vs_nvfp4);
        bench_text_printf(t, ", \"note\": ");
        json_string(t, r->note);
        bench_text_printf(t, "}%s\n", i + 1 < run->nresults ? "," : "");
    }
    bench_text_printf(t, "  ],\n  \"summary\": [\n");
    for (int p = 0; p < run->nproviders; p++) {
        const provider_summary s = summarize(run, p);
        bench_text_printf(t, "    {\"provider\": ");
        json_string(t, run->providers[p].name);
        bench_text_printf(t, ", \"ok\": %d, \"failed\": %d, \"skipped\": %d, \"geomean_speedup\": ",
                          s.ok, s.failed, s.skipped);
        json_number(t, s.geomean, s.with_speedup > 0);
        bench_text_printf(t, ", \"points_with_speedup\": %d", s.with_speedup);
        if (s.worst)
            bench_text_printf(t, ", \"worst\": {\"speedup\": %.4g, \"m\": %lld, \"n\": %lld, "
                                 "\"k\": %lld}",
                              s.worst->speedup, (long long)s.worst->shape.m,
                              (long long)s.worst->shape.n, (long long)s.worst->shape.k);
        if (s.best)
            bench_text_printf(t, ", \"best\": {\"speedup\": %.4g, \"m\": %lld, \"n\": %lld, "
                                 "\"k\": %lld}",
                              s.best->speedup, (long long)s.best->shape.m,
                              (long long)s.best->shape.n, (long long)s.best->shape.k);
        if (s.peak)
            bench_text_printf(t, ", \"peak\": {\"tflops\": %.4g, \"m\": %lld, \"n\": %lld, "
                                 "\"k\": %lld}",
                              s.peak->tflops, (long long)s.peak->shape.m,
                              (long long)s.peak->shape.n, (long long)s.peak->shape.k);
        bench_text_printf(t, "}%s\n", p + 1 < run->nproviders ? "," : "");
    }
    bench_text_printf(t, "  ]\n}\n");
}

/* ---- the command ---------------------------------------------------------------------------------- */

static int list_providers(const bench_provider *cat, int ncat, int device) {
    char buf[512], about[128];
    const char *no_dev = no_device_reason(device, buf, sizeof buf);
    bench_cuda *bc = NULL;
    bench_device dev;
    memset(&dev, 0, sizeof dev);
    char open_why[512] = "";
    if (!no_dev && bench_cuda_open(device, &dev, &bc, open_why, sizeof open_why) != 0)
        no_dev = open_why;
    if (no_dev)
        printf("fp4gemm bench providers: none can run here, no usable CUDA device: %s\n", no_dev);
    else
        printf("fp4gemm bench providers on %s (device %d, sm_%d):\n", dev.name, device, dev.cc);
    printf("  %-15s %-5s %s\n", "provider", "here", "what it runs / why it can't run here");
    for (int i = 0; i < ncat; i++) {
        char why[512] = "";
        int ok = 0;
        if (no_dev)
            snprintf(why, sizeof why, "needs a CUDA device");
        else
            ok = bench_cuda_provider_check(bc, &cat[i], why, sizeof why) == 0;
        printf("  %-15s %-5s %s\n", cat[i].name, ok ? "yes" : "no",
               provider_about(&cat[i], about, sizeof about));
        if (!ok) printf("  %-15s %-5s why not: %s\n", "", "", why);
    }
    bench_cuda_close(bc);
    return CLI_OK;
}

static const char k_about[] =
    "Times every fp4gemm backend that can run on the GPU, and auto, against the baselines a\n"
    "Hopper user would pick instead (cuBLASLt BF16 and FP8, dequantize + BF16 GEMM), on the\n"
    "same NVFP4 data, checking every provider against a double-precision reference first.\n"
    "Prints an aligned table (time per GEMM, TFLOP/s, GB/s, % of the measured roofline,\n"
    "speedup over cublas_bf16) and a summary on stdout; needs a CUDA device.";

static const char k_notes[] =
    "providers: cuda_simt, cuda_mma, cuda_wgmma, cublaslt (fp4_gemm on that backend, where it\n"
    "  can run), auto (fp4_gemm's own choice), cublas_bf16 (cuBLASLt BF16 on the dequantized\n"
    "  operands), cublas_fp8 (cuBLASLt FP8 E4M3, per-tensor scales), dequant_cublas\n"
    "  (fp4_dequantize + cuBLASLt BF16, timed together). --list-providers says which run here.\n"
    "\n"
    "method (docs/PERF.md): ceilings measured first (device-to-device copy, cuBLASLt BF16\n"
    "8192^3); per point, each provider runs once on a NaN-poisoned D and is checked (every\n"
    "output finite, 68 sampled outputs against a double reference) - a wrong one is FAILED and\n"
    "not timed; then a CUDA graph of >= 10 launches, each on the next of the rotated input sets\n"
    "(>= 5x L2 of inputs per replay: cold weights), replayed >= --replays times between CUDA\n"
    "events; time per GEMM = median replay / launches (p20, p80 too). A provider whose timing\n"
    "would exceed --max-point-seconds at a point is SKIPPED there, and at larger M.\n"
    "\n"
    "exit status: 0 every provider that ran was correct; 1 a provider FAILED, no CUDA device,\n"
    "or a CUDA error; 2 bad usage (and --autotune, until the autotuner exists).";

int cmd_bench(int argc, char **argv) {
    const char *preset_name = NULL, *m_list = NULL, *shapes_arg = NULL, *providers_arg = NULL;
    const char *csv = NULL, *json = NULL, *svg = NULL;
    fp4_dtype out_dtype = FP4_DTYPE_BF16;
    int list = 0, autotune = 0;
    float max_seconds = 2.0f;
    int64_t replays = BENCH_MIN_REPLAYS, device = 0, seed = 1;
    cli_opt opts[] = {
        {.name = "--preset", .metavar = "NAME", .kind = CLI_STRING, .dest = &preset_name,
         .help = "(N, K) weight shapes x the M list: deepseek-r1,\n"
                 "llama3.1-8b or llama3.3-70b (default llama3.1-8b)"},
        {.name = "--m-list", .metavar = "LIST", .kind = CLI_STRING, .dest = &m_list,
         .help = "M values, e.g. 1,16,128 (default 1,2,4,...,2048,\n"
                 "3072,4096,8192,16384)"},
        {.name = "--shapes", .metavar = "LIST", .kind = CLI_STRING, .dest = &shapes_arg,
         .help = "explicit problems \"M,N,K;M,N,K\" instead of a preset"},
        {.name = "--out-dtype", .metavar = "T", .kind = CLI_DTYPE, .dest = &out_dtype,
         .help = "type of D: bf16, f16 or f32 (default bf16)", .allowed = CLI_DT_FLOATS},
        {.name = "--providers", .metavar = "LIST", .kind = CLI_STRING, .dest = &providers_arg,
         .help = "comma-separated providers (default: every one\nthat can run here)"},
        {.name = "--list-providers", .kind = CLI_FLAG, .dest = &list,
         .help = "list the providers, which can run here and why\nnot; then exit"},
        {.name = "--max-point-seconds", .metavar = "S", .kind = CLI_FLOAT, .dest = &max_seconds,
         .help = "skip a provider at a point when its timing would\ntake longer (default 2)"},
        {.name = "--replays", .metavar = "N", .kind = CLI_INT, .dest = &replays,
         .help = "timed graph replays per point, at least\n(default 20; cheap points get up to 100)",
         .min = BENCH_MIN_REPLAYS, .max = 100000},
        {.name = "--device", .metavar = "N", .kind = CLI_INT, .dest = &device,
         .help = "CUDA device (default 0)", .min = 0, .max = 1023},
        {.name = "--seed", .metavar = "N", .kind = CLI_INT, .dest = &seed,
         .help = "seed of the random operands (default 1)", .min = 0, .max = INT64_MAX},
        {.name = "--csv", .metavar = "FILE", .kind = CLI_STRING, .dest = &csv,
         .help = "also write every row as CSV"},
        {.name = "--json", .metavar = "FILE", .kind = CLI_STRING, .dest = &json,
         .help = "also write the run (device, ceilings, rows, summary)\nas JSON"},
        {.name = "--svg", .metavar = "FILE", .kind = CLI_STRING, .dest = &svg,
         .help = "also draw speedup over cublas_bf16 vs M, one panel\nper (N, K), as SVG"},
        {.name = "--autotune", .kind = CLI_FLAG, .dest = &autotune,
         .help = "run the autotuner before timing (not available\nyet: exits 2)"},
    };
    cli_command command = {CMD, "[options]", k_about, opts, (int)(sizeof opts / sizeof opts[0]),
                           k_notes};
    const int parsed = cli_parse(&command, argc, argv);
    if (parsed != CLI_RUN) return parsed;
    if (autotune)
        return cli_fail(CMD, CLI_USAGE,
                        "--autotune: the autotuner is not available yet (run without it)");

    /* shapes */
    if (shapes_arg && (preset_name || m_list))
        return cli_fail(CMD, CLI_USAGE, "give --shapes, or --preset and --m-list, not both");
    bench_options opt;
    memset(&opt, 0, sizeof opt);
    char shapes_text[512];
    if (shapes_arg) {
        if (parse_shapes(shapes_arg, &opt.shapes, &opt.nshapes) != CLI_OK) return CLI_USAGE;
        snprintf(shapes_text, sizeof shapes_text, "--shapes %.400s: %d points", shapes_arg,
                 opt.nshapes);
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
        opt.shapes = calloc((size_t)(pre->count * nm), sizeof *opt.shapes);
        if (!opt.shapes) {
            free(ms);
            return cli_fail(CMD, CLI_FAIL, "out of memory");
        }
        for (int s = 0; s < pre->count; s++)
            for (int i = 0; i < nm; i++) {
                bench_shape *sh = &opt.shapes[opt.nshapes++];
                sh->m = ms[i];
                sh->n = pre->nk[s][0];
                sh->k = pre->nk[s][1];
            }
        opt.preset = pre->name;
        snprintf(opt.m_list_text, sizeof opt.m_list_text, "%s",
                 m_list ? m_list : "1,2,4,...,2048,3072,4096,8192,16384");
        snprintf(shapes_text, sizeof shapes_text, "preset %s (%s): %d (N, K) x %d M = %d points",
                 pre->name, pre->about, pre->count, nm, opt.nshapes);
        free(ms);
    }
    opt.out_dtype = out_dtype;
    opt.device = (int)device;
    opt.seed = (uint64_t)seed;
    opt.max_point_seconds = max_seconds;
    opt.min_replays = (int)replays;
    opt.csv_path = csv;
    opt.json_path = json;
    opt.svg_path = svg;
    opt.providers = providers_arg;
    opt.progress = isatty(fileno(stderr));

    /* providers by name */
    bench_provider cat[BENCH_MAX_PROVIDERS];
    const int ncat = provider_catalog(cat);
    int chosen[BENCH_MAX_PROVIDERS], nchosen = 0;
    if (providers_arg) {
        if (parse_providers(providers_arg, cat, ncat, chosen, &nchosen) != CLI_OK) {
            free(opt.shapes);
            return CLI_USAGE;
        }
    } else {
        for (int i = 0; i < ncat; i++) chosen[nchosen++] = i;
    }
    if (list) {
        free(opt.shapes);
        return list_providers(cat, ncat, opt.device);
    }

    /* the device */
    char buf[512];
    const char *no_dev = no_device_reason(opt.device, buf, sizeof buf);
    if (no_dev) {
        free(opt.shapes);
        return cli_fail(CMD, CLI_FAIL, "needs a CUDA device: %s", no_dev);
    }
    bench_run run;
    memset(&run, 0, sizeof run);
    run.opt = &opt;
    bench_cuda *bc = NULL;
    char why[512] = "";
    if (bench_cuda_open(opt.device, &run.dev, &bc, why, sizeof why) != 0) {
        free(opt.shapes);
        return cli_fail(CMD, CLI_FAIL, "needs a usable CUDA device: %s", why);
    }
    for (int i = 0; i < nchosen; i++) {
        const bench_provider *p = &cat[chosen[i]];
        if (bench_cuda_provider_check(bc, p, why, sizeof why) == 0)
            run.providers[run.nproviders++] = *p;
        else
            snprintf(run.unavailable[run.nunavailable++], sizeof run.unavailable[0], "%s (%.280s)",
                     p->name, why);
    }
    int rc = CLI_OK;
    if (run.nproviders == 0) {
        rc = cli_fail(CMD, CLI_FAIL, "none of the providers can run on %s (see --list-providers)",
                      run.dev.name);
        goto out;
    }
    const double t0 = cli_seconds();
    {
        const time_t now = time(NULL);
        struct tm utc;
        if (gmtime_r(&now, &utc))
            strftime(run.date, sizeof run.date, "%Y-%m-%d %H:%M:%S UTC", &utc);
    }
    if (bench_cuda_ceilings(bc, &run.dev, why, sizeof why) != 0) {
        rc = cli_fail(CMD, CLI_FAIL, "measuring the ceilings on %s: %s", run.dev.name, why);
        goto out;
    }
    print_header(&run, shapes_text);

    /* the points */
    run.npoints = opt.nshapes;
    for (int s = 0; s < opt.nshapes && !run.aborted; s++) {
        const bench_shape sh = opt.shapes[s];
        if (s == 0 || sh.n != opt.shapes[s - 1].n || sh.k != opt.shapes[s - 1].k) {
            printf("\n");
            print_table_header();
        }
        run.point_index = s;
        const int first = run.nresults;
        if (bench_cuda_point(bc, &run, sh, why, sizeof why) != 0) {
            run.aborted = 1;
            snprintf(run.abort_reason, sizeof run.abort_reason, "at M=%lld N=%lld K=%lld: %.400s",
                     (long long)sh.m, (long long)sh.n, (long long)sh.k, why);
        }
        fill_speedups(&run, first, run.nresults - first);
        if (opt.progress) fprintf(stderr, "\r\033[K");
        for (int i = first; i < run.nresults; i++) print_row(&run, &run.results[i]);
        fflush(stdout);
    }
    run.wall_seconds = cli_seconds() - t0;
    print_summary(&run);

    int ok = 0, failed = 0, skipped = 0;
    for (int i = 0; i < run.nresults; i++) {
        ok += run.results[i].status == BENCH_OK;
        failed += run.results[i].status == BENCH_FAILED;
        skipped += run.results[i].status == BENCH_SKIPPED;
    }
    if (run.aborted) printf("\nbench: STOPPED EARLY %s\n", run.abort_reason);
    printf("\nbench: %d rows in %.1f s on %s: %d OK, %d FAILED, %d SKIPPED\n", run.nresults,
           run.wall_seconds, run.dev.name, ok, failed, skipped);
    fflush(stdout);
    if (failed || run.aborted) rc = CLI_FAIL;

    /* the files */
    if (csv) {
        bench_text t = {0};
        write_csv(&run, &t);
        if (write_text(csv, &t) != CLI_OK) rc = CLI_FAIL;
        bench_text_free(&t);
    }
    if (json) {
        bench_text t = {0};
        write_json(&run, shapes_text, &t);
        if (write_text(json, &t) != CLI_OK) rc = CLI_FAIL;
        bench_text_free(&t);
    }
    if (svg) {
        bench_text t = {0};
        bench_svg(&run, &t);
        if (write_text(svg, &t) != CLI_OK) rc = CLI_FAIL;
        bench_text_free(&t);
    }
    if (failed) fprintf(stderr, "fp4gemm bench: %d FAILED rows (see the table)\n", failed);
out:
    bench_cuda_close(bc);
    free(run.results);
    free(opt.shapes);
    return rc;
}

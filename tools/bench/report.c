/*
 * report.c - what `fp4gemm bench` tells: the header (the card, the ceilings, the method), one
 * aligned row per (provider, point), the summary, the roofline of a row, and the CSV and JSON
 * texts. Row names and JSON fields are stable: scripts compare runs by them.
 */
#include "bench_internal.h"
#include "cli_util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* `, "key": v`, or null where the measurement is missing (v <= 0 means not measured). */
static void json_measured(bench_text *t, const char *key, double v) {
    bench_text_printf(t, ", \"%s\": ", key);
    json_number(t, v, v > 0);
}

/* ---- the run's records --------------------------------------------------------------------------- */

int bench_take_measure(bench_result *r, const fp4_measure_result *m, double max_point_seconds) {
    if (m->too_slow) {
        const double est_ms = m->estimate_us * 1e-3;
        r->status = BENCH_SKIPPED;
        r->too_slow = 1;
        snprintf(r->note, sizeof r->note,
                 "too slow for the budget: %.3f ms per GEMM, so %d replays of %d launches "
                 "would take about %.1f s > --max-point-seconds %g",
                 est_ms, m->replays, m->launches,
                 est_ms * m->launches * (m->replays + 1) / 1e3, max_point_seconds);
        return 0;
    }
    r->status = BENCH_OK;
    r->time_us = m->median_us;
    r->p20_us = m->p20_us;
    r->p80_us = m->p80_us;
    r->launches = m->launches;
    r->sets = m->sets;
    r->replays = m->replays;
    return 1;
}

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
        if (run->providers[i].kind ==
            (run->on_cpu ? BENCH_KIND_OPENBLAS_F32 : BENCH_KIND_CUBLAS_BF16))
            return i;
    return -1;
}

void bench_progress(const bench_run *run, const char *provider, bench_shape s, int round) {
    if (!run->opt->progress) return;
    fprintf(stderr, "\r\033[K[%d/%d] M=%lld N=%lld K=%lld %s", run->point_index + 1, run->npoints,
            (long long)s.m, (long long)s.n, (long long)s.k, provider);
    if (run->opt->rounds > 1) fprintf(stderr, " round %d/%d", round + 1, run->opt->rounds);
    fflush(stderr);
}

/* ---- rounds ------------------------------------------------------------------------------ */

int bench_round_order(int round, int i, int n) { return round % 2 == 0 ? i : n - 1 - i; }

const fp4_measure_result *bench_median_round(const fp4_measure_result *rounds, int n) {
    const fp4_measure_result *timed[BENCH_MAX_ROUNDS]; /* sorted by median */
    int count = 0;
    for (int i = 0; i < n && i < BENCH_MAX_ROUNDS; i++) {
        if (rounds[i].too_slow) continue;
        int at = count++;
        for (; at > 0 && timed[at - 1]->median_us > rounds[i].median_us; at--)
            timed[at] = timed[at - 1];
        timed[at] = &rounds[i];
    }
    return count ? timed[(count - 1) / 2] : NULL;
}

void bench_note_rounds(bench_result *r, const fp4_measure_result *rounds, int n) {
    if (n <= 1) return;
    double lo = 0, hi = 0;
    int count = 0;
    for (int i = 0; i < n; i++) {
        if (rounds[i].too_slow) continue;
        if (count == 0 || rounds[i].median_us < lo) lo = rounds[i].median_us;
        if (count == 0 || rounds[i].median_us > hi) hi = rounds[i].median_us;
        count++;
    }
    const size_t used = strlen(r->note);
    if (count == n)
        snprintf(r->note + used, sizeof r->note - used, "%s%d rounds: %.2f..%.2f us",
                 used ? "; " : "", n, lo, hi);
    else
        snprintf(r->note + used, sizeof r->note - used,
                 "%s%d of %d rounds timed (%d over the budget): %.2f..%.2f us", used ? "; " : "",
                 count, n, n - count, lo, hi);
}

const char *bench_status_name(bench_status s) {
    return s == BENCH_OK ? "OK" : s == BENCH_FAILED ? "FAILED" : "SKIPPED";
}

/* The speedups of one point's rows over its cublas_bf16 row. */
void bench_fill_speedups(bench_run *run, int first, int count) {
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

void bench_print_table_header(const bench_run *run) {
    cli_say("%-15s %6s %6s %6s %10s %9s %9s %8s %8s %6s %8s  %s\n", "provider", "M", "N", "K",
            "time_us", "p20_us", "p80_us", "TFLOP/s", "GB/s", "roof%",
            run->on_cpu ? "vs_blas" : "vs_bf16", "note");
}

void bench_print_row(const bench_run *run, const bench_result *r) {
    cli_say("%-15s %6lld %6lld %6lld", run->providers[r->provider].name, (long long)r->shape.m,
            (long long)r->shape.n, (long long)r->shape.k);
    if (r->status != BENCH_OK) {
        cli_say("  %s: %s\n", bench_status_name(r->status), r->note);
        return;
    }
    char tf[16], gb[16], roof[16], sp[16] = "-";
    if (r->speedup > 0) snprintf(sp, sizeof sp, "%.2fx", r->speedup);
    cli_say(" %10.2f %9.2f %9.2f %8s %8s %6s %8s%s%s\n", r->time_us, r->p20_us, r->p80_us,
            fmt3(tf, sizeof tf, r->tflops), fmt3(gb, sizeof gb, r->gbs),
            fmt3(roof, sizeof roof, r->roofline_pct), sp, r->note[0] ? "  " : "", r->note);
}

/* The header's line on --rounds: how often each provider was timed at a point, and how. */
static void print_rounds(const bench_run *run) {
    const int n = run->opt->rounds;
    if (n == 1)
        cli_say("  rounds: 1 per point (--rounds 1): each provider checked, then timed once, in "
                "the listed order; compare rows with --rounds 3 or more\n");
    else
        cli_say("  rounds: %d per point (--rounds %d): each provider checked once, then timed %d "
                "times in turn, the listed order in rounds 1, 3, ... and the reverse in rounds "
                "2, 4, ...; a row is its median round (the lower middle one for an even count), "
                "p20 and p80 that round's\n",
                n, n, n);
}

/* The header of a run on the CPU: the machine, the ceilings, the method. */
static void print_cpu_header(const bench_run *run, const char *shapes_text) {
    const bench_device *d = &run->dev;
    cli_say("fp4gemm bench on the CPU: %s (%d threads, last-level cache %.1f MiB, %.1f GiB)\n",
            d->name, d->sm_count, (double)d->l2_bytes / 1048576.0,
            (double)d->memory_bytes / 1073741824.0);
    cli_say("  %s; fp4gemm %s; %s\n", run->date, fp4_version(), run->cpu_facts);
    cli_say("  ceilings measured now: DRAM read ");
    if (d->copy_gbs > 0)
        cli_say("%.1f GB/s (%.2f GiB, every thread summing its share)", d->copy_gbs,
                (double)d->copy_bytes / 1073741824.0);
    else
        cli_say("not measured");
    cli_say("; FP32 FMA peak ");
    if (d->bf16_tflops > 0)
        cli_say("%.0f GFLOP/s\n", d->bf16_tflops * 1e3);
    else
        cli_say("not measured\n");
    if (d->ceiling_note[0]) cli_say("  ceilings: %s\n", d->ceiling_note);
    cli_say("  roof%%: max(2MNK / FMA peak, bytes / DRAM read) / time; a ceiling a row beats is "
            "raised to that row's rate first, so roof%% <= 100%%. NOTE: a shared machine: other "
            "processes' load shows as noise\n");
    cli_say("  method: each provider checked before timing (all outputs finite, %d sampled "
            "outputs vs a double reference); >= %d launches per replay, each on the next input "
            "set, sets spanning >= 4x the last-level cache (cold weights); median, p20, p80 of "
            ">= %d replays on the host clock; time per GEMM = replay / launches\n",
            BENCH_SAMPLES, BENCH_MIN_LAUNCHES, run->opt->min_replays);
    print_rounds(run);
    cli_say("  shapes: %s; D in %s (openblas_f32: F32); every provider computes D = A B^T / "
            "4096 on the same NVFP4 data (W4A4, swizzled scales)\n",
            shapes_text, fp4_dtype_name(run->opt->out_dtype));
    cli_say("  providers:");
    for (int i = 0; i < run->nproviders; i++) cli_say(" %s", run->providers[i].name);
    cli_say("\n");
    for (int i = 0; i < run->nunavailable; i++)
        cli_say("  not run here: %s\n", run->unavailable[i]);
    fflush(cli_msg());
}

void bench_print_header(const bench_run *run, const char *shapes_text) {
    if (run->on_cpu) {
        print_cpu_header(run, shapes_text);
        return;
    }
    const bench_device *d = &run->dev;
    cli_say("fp4gemm bench on %s (device %d, sm_%d, %d SMs, L2 %.1f MiB, %.1f GiB", d->name,
            d->device, d->cc, d->sm_count, (double)d->l2_bytes / 1048576.0,
            (double)d->memory_bytes / 1073741824.0);
    if (d->sm_clock_mhz) cli_say(", SM clock %d MHz", d->sm_clock_mhz);
    if (d->mem_clock_mhz) cli_say(", memory clock %d MHz", d->mem_clock_mhz);
    cli_say(")\n");
    cli_say("  %s; fp4gemm %s (CUDA archs %s); CUDA runtime %d.%d, driver %d.%d; cuBLASLt "
            "%ld.%ld.%ld\n",
            run->date, fp4_version(), fp4_built_cuda_archs(), d->runtime_version / 1000,
            d->runtime_version % 1000 / 10, d->driver_version / 1000,
            d->driver_version % 1000 / 10, d->cublaslt_version / 10000,
            d->cublaslt_version / 100 % 100, d->cublaslt_version % 100);
    cli_say("  ceilings measured now on %s: device-to-device copy ", d->name);
    if (d->copy_gbs > 0)
        cli_say("%.0f GB/s (%.2f GiB, read + write)", d->copy_gbs,
                (double)d->copy_bytes / 1073741824.0);
    else
        cli_say("not measured");
    cli_say("; cuBLASLt BF16 8192^3 ");
    if (d->bf16_tflops > 0)
        cli_say("%.0f TFLOP/s (random data)", d->bf16_tflops);
    else
        cli_say("not measured");
    cli_say("; cuBLASLt FP8 8192^3 ");
    if (d->fp8_tflops > 0)
        cli_say("%.0f TFLOP/s\n", d->fp8_tflops);
    else
        cli_say("not measured\n");
    cli_say("  roof%%: max(2MNK / compute ceiling, bytes / copy ceiling) / time; the compute "
            "ceiling is FP8's for cublas_fp8, BF16's for the others; a ceiling a row beats is "
            "raised to that row's rate first, so roof%% <= 100%%\n");
    if (d->quant_gbs > 0 && d->copy_gbs > 0)
        cli_say("  quantizer on %s, BF16 [%lld, %lld], bytes read + written: fp4_global_scale "
                "%.0f GB/s (%.0f%% of copy), fp4_quantize (swizzled) %.0f GB/s (%.0f%%), "
                "fp4_dequantize (to BF16) %.0f GB/s (%.0f%%)\n",
                d->name, (long long)d->quant_rows, (long long)d->quant_k, d->amax_gbs,
                100 * d->amax_gbs / d->copy_gbs, d->quant_gbs, 100 * d->quant_gbs / d->copy_gbs,
                d->dequant_gbs, 100 * d->dequant_gbs / d->copy_gbs);
    if (d->empty_kernel_us > 0)
        cli_say("  quantizer at decode sizes (BF16, swizzled; graph replays as above): 1 x 4096 "
                "%.2f us (%.2fx an empty kernel), 16 x 16384 %.2f us (%.2fx); an empty kernel "
                "%.2f us\n",
                d->quant_1x4096_us, d->quant_1x4096_us / d->empty_kernel_us,
                d->quant_16x16384_us, d->quant_16x16384_us / d->empty_kernel_us,
                d->empty_kernel_us);
    if (d->ceiling_note[0]) cli_say("  ceilings: %s\n", d->ceiling_note);
    cli_say("  method: each provider checked before timing (all outputs finite, %d sampled "
            "outputs vs a double reference); CUDA graph of >= %d launches, each on the next "
            "input set, sets spanning >= %.0fx L2 (cold weights); median, p20, p80 of >= %d "
            "replays; time per GEMM = replay / launches\n",
            BENCH_SAMPLES, BENCH_MIN_LAUNCHES, BENCH_L2_FACTOR, run->opt->min_replays);
    print_rounds(run);
    cli_say("  shapes: %s; D in %s; every provider computes D = A B^T / (gs_a gs_b) on the same "
            "NVFP4 data\n",
            shapes_text, fp4_dtype_name(run->opt->out_dtype));
    cli_say("  providers:");
    for (int i = 0; i < run->nproviders; i++) cli_say(" %s", run->providers[i].name);
    cli_say("\n");
    for (int i = 0; i < run->nunavailable; i++)
        cli_say("  not run here: %s\n", run->unavailable[i]);
    fflush(cli_msg());
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

void bench_print_summary(const bench_run *run) {
    cli_say("\nsummary on %s: speedup = %s time / provider time at the same point "
            "(geometric mean over the points both ran; shapes are MxNxK)\n",
            run->dev.name, bench_baseline_name(run));
    cli_say("%-15s %4s %4s %4s %8s %8s %-18s %8s %-18s %8s %s\n", "provider", "ok", "fail", "skip",
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
        cli_say("%-15s %4d %4d %4d %8s %8s %-18s %8s %-18s %8s %s\n", run->providers[p].name, s.ok,
                s.failed, s.skipped, g, w, wa, b, ba, pk, pa);
    }
}

/* ---- CSV and JSON ------------------------------------------------------------------------------------ */

void bench_write_csv(const bench_run *run, bench_text *t) {
    bench_text_printf(t, "device,provider,m,n,k,out_dtype,status,time_us,p20_us,p80_us,tflops,"
                         "gbs,roofline_pct,speedup_vs_%s,launches,sets,replays,timing,"
                         "cold,check_max_err,check_rel_l2,note\n", bench_baseline_name(run));
    for (int i = 0; i < run->nresults; i++) {
        const bench_result *r = &run->results[i];
        csv_string(t, run->dev.name);
        bench_text_printf(t, ",%s,%lld,%lld,%lld,%s,%s,", run->providers[r->provider].name,
                          (long long)r->shape.m, (long long)r->shape.n, (long long)r->shape.k,
                          fp4_dtype_name(run->opt->out_dtype), bench_status_name(r->status));
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

void bench_write_json(const bench_run *run, const char *shapes_text, bench_text *t) {
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
    if (run->on_cpu) {
        /* on the CPU: copy_gbs is the DRAM read bandwidth, bf16_tflops the FP32 FMA peak */
        bench_text_printf(t, ", \"cpu\": ");
        json_string(t, run->cpu_facts);
    }
    bench_text_printf(t, "},\n  \"ceilings\": {\"copy_gbs\": ");
    json_number(t, d->copy_gbs, d->copy_gbs > 0);
    bench_text_printf(t, ", \"copy_bytes\": %lld, \"bf16_tflops\": ", (long long)d->copy_bytes);
    json_number(t, d->bf16_tflops, d->bf16_tflops > 0);
    json_measured(t, "fp8_tflops", d->fp8_tflops);
    bench_text_printf(t, ", \"roofline\": {\"bf16_tflops\": ");
    json_number(t, run->roof_bf16_tflops, run->roof_bf16_tflops > 0);
    json_measured(t, "fp8_tflops", run->roof_fp8_tflops);
    json_measured(t, "copy_gbs", run->roof_copy_gbs);
    bench_text_printf(t, ", \"note\": ");
    json_string(t, run->roof_note);
    bench_text_printf(t, "}");
    bench_text_printf(t, ", \"bf16_shape\": [8192, 8192, 8192], \"quantizer_shape\": [%lld, %lld]",
                      (long long)d->quant_rows, (long long)d->quant_k);
    json_measured(t, "global_scale_gbs", d->amax_gbs);
    json_measured(t, "quantize_gbs", d->quant_gbs);
    json_measured(t, "dequantize_gbs", d->dequant_gbs);
    json_measured(t, "quantize_1x4096_us", d->quant_1x4096_us);
    json_measured(t, "quantize_16x16384_us", d->quant_16x16384_us);
    json_measured(t, "empty_kernel_us", d->empty_kernel_us);
    bench_text_printf(t, ", \"note\": ");
    json_string(t, d->ceiling_note);
    bench_text_printf(t,
                      "},\n  \"method\": {\"min_launches\": %d, \"min_replays\": %d, "
                      "\"max_replays\": %d, \"l2_factor\": %g, \"max_sets\": %d, "
                      "\"samples\": %d, \"max_point_seconds\": %g, \"rounds\": %d, "
                      "\"timing\": ",
                      BENCH_MIN_LAUNCHES, o->min_replays, BENCH_MAX_REPLAYS, BENCH_L2_FACTOR,
                      BENCH_MAX_SETS, BENCH_SAMPLES, o->max_point_seconds, o->rounds);
    json_string(t, "CUDA graph of >= min_launches launches, each on the next rotated input set; "
                   "median, p20, p80 of the replays timed with CUDA events; per GEMM = replay / "
                   "launches (fp4_measure); checked first with fp4_gemm_verify");
    bench_text_printf(t, ", \"rounds_method\": ");
    json_string(t, "each provider checked once, then timed `rounds` times per point in turn, the "
                   "listed order in rounds 1, 3, ... and the reverse in rounds 2, 4, ...; a row "
                   "is the round whose median is the median of the rounds' (the lower middle one "
                   "for an even count): time, p20, p80, replays and launches all of that round");
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
                          bench_status_name(r->status));
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
        if (ok && r->roof_ceiling)
            bench_text_printf(t, ", \"roof_ceiling\": \"%s\", \"roof_ceiling_value\": %.6g",
                              r->roof_ceiling, r->roof_ceiling_value);
        bench_text_printf(t, ", \"speedup_vs_%s\": ", bench_baseline_name(run));
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

/* ---- the roofline ---------------------------------------------------------------------- */

void bench_fill_roofline(bench_run *run, bench_result *r) {
    if (r->status != BENCH_OK || r->time_us <= 0) return;
    const bench_provider *p = &run->providers[r->provider];
    const int fp8 = p->ceiling == BENCH_CEIL_FP8 && run->roof_fp8_tflops > 0;
    double *compute = fp8 ? &run->roof_fp8_tflops : &run->roof_bf16_tflops;
    const char *cname = run->on_cpu ? "f32_fma" : fp8 ? "fp8" : "bf16";
    /* a row faster than a ceiling measured at the start raises it: the ceiling is the best
     * rate this card showed in the run, so roof% can't exceed 100% */
    if (*compute > 0 && r->tflops > *compute) {
        const size_t used = strlen(run->roof_note);
        snprintf(run->roof_note + used, sizeof run->roof_note - used,
                 "%s%s ceiling raised to %.0f %s by %s at %lldx%lldx%lld", used ? "; " : "",
                 cname, run->on_cpu ? r->tflops * 1e3 : r->tflops,
                 run->on_cpu ? "GFLOP/s" : "TFLOP/s", p->name, (long long)r->shape.m,
                 (long long)r->shape.n, (long long)r->shape.k);
        *compute = r->tflops;
    }
    if (run->roof_copy_gbs > 0 && r->gbs > run->roof_copy_gbs) {
        const size_t used = strlen(run->roof_note);
        snprintf(run->roof_note + used, sizeof run->roof_note - used,
                 "%s%s ceiling raised to %.0f GB/s by %s at %lldx%lldx%lld", used ? "; " : "",
                 run->on_cpu ? "DRAM read" : "copy", r->gbs, p->name, (long long)r->shape.m, (long long)r->shape.n,
                 (long long)r->shape.k);
        run->roof_copy_gbs = r->gbs;
    }
    const double t = r->time_us * 1e-6;
    const double compute_s = *compute > 0 ? r->flops / (*compute * 1e12) : 0.0;
    const double memory_s = run->roof_copy_gbs > 0 ? r->bytes / (run->roof_copy_gbs * 1e9) : 0.0;
    if (compute_s <= 0 && memory_s <= 0) return;
    r->roof_ceiling = compute_s >= memory_s ? cname : run->on_cpu ? "dram_read" : "copy";
    r->roof_ceiling_value = compute_s >= memory_s ? *compute : run->roof_copy_gbs;
    r->roofline_pct = 100.0 * (compute_s >= memory_s ? compute_s : memory_s) / t;
    if (r->roofline_pct > 100.0) r->roofline_pct = 100.0; /* the last bits of rounding only */
}

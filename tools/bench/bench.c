/*
 * bench.c - `fp4gemm bench`: the command. Parses the options (options.c), opens the device and
 * measures the ceilings (device.c), runs one point at a time (run.c), prints each point's
 * rows and the summary (report.c), and writes the CSV, JSON and SVG files. The method is in
 * docs/PERF.md. With --device cpu (the default without a GPU) the session and the points are
 * cpu.c's: the CPU providers, OpenBLAS as the baseline, the CPU's ceilings.
 */
#define _POSIX_C_SOURCE 200809L
#include "bench.h"
#include "bench_internal.h"
#include "cli_util.h"
#include "tune_shapes.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CMD "bench"

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
fp4_ctx *bench_cuda_context(bench_cuda *bc) {
    (void)bc;
    return NULL;
}
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

static int write_text(const char *path, bench_text *t) {
    if (t->failed) return cli_fail(CMD, CLI_FAIL, "%s: out of memory while writing it", path);
    return cli_write_file(CMD, path, t->data ? t->data : "", (int64_t)t->len);
}

/* ---- the command ---------------------------------------------------------------------------------- */

/* Does provider p belong to a run on the CPU (on_cpu) or on a GPU? */
static int provider_here(const bench_provider *p, int on_cpu) {
    return p->where == BENCH_WHERE_BOTH || (p->where == BENCH_WHERE_CPU) == (on_cpu != 0);
}

static int list_cpu_providers(const bench_provider *cat, int ncat) {
    bench_device dev;
    bench_cpu *bc = NULL;
    char why[512] = "";
    if (bench_cpu_open(&dev, &bc, why, sizeof why) != 0)
        return cli_fail(CMD, CLI_FAIL, "the CPU: %s", why);
    char facts[512];
    cli_say("fp4gemm bench providers on the CPU, %s (%s):\n", dev.name,
            bench_cpu_facts(bc, facts, sizeof facts));
    cli_say("  %-15s %-5s %s\n", "provider", "here", "what it runs / why it can't run here");
    for (int i = 0; i < ncat; i++) {
        why[0] = 0;
        const int ok = bench_cpu_provider_check(bc, &cat[i], why, sizeof why) == 0;
        cli_say("  %-15s %-5s %s\n", cat[i].name, ok ? "yes" : "no", cat[i].about);
        if (!ok) cli_say("  %-15s %-5s why not: %s\n", "", "", why);
    }
    bench_cpu_close(bc);
    return CLI_OK;
}

static int list_providers(const bench_provider *cat, int ncat, int device) {
    if (device < 0) return list_cpu_providers(cat, ncat);
    char buf[512];
    const char *no_dev = no_device_reason(device, buf, sizeof buf);
    bench_cuda *bc = NULL;
    bench_device dev;
    memset(&dev, 0, sizeof dev);
    char open_why[512] = "";
    if (!no_dev && bench_cuda_open(device, &dev, &bc, open_why, sizeof open_why) != 0)
        no_dev = open_why;
    if (no_dev)
        cli_say("fp4gemm bench providers: none can run here, no usable CUDA device: %s\n", no_dev);
    else
        cli_say("fp4gemm bench providers on %s (device %d, sm_%d):\n", dev.name, device, dev.cc);
    cli_say("  %-15s %-5s %s\n", "provider", "here", "what it runs / why it can't run here");
    for (int i = 0; i < ncat; i++) {
        char why[512] = "";
        int ok = 0;
        if (!provider_here(&cat[i], 0))
            snprintf(why, sizeof why, "a CPU provider (--device cpu)");
        else if (no_dev)
            snprintf(why, sizeof why, "needs a CUDA device");
        else
            ok = bench_cuda_provider_check(bc, &cat[i], why, sizeof why) == 0;
        cli_say("  %-15s %-5s %s\n", cat[i].name, ok ? "yes" : "no",
                cat[i].about);
        if (!ok) cli_say("  %-15s %-5s why not: %s\n", "", "", why);
    }
    bench_cuda_close(bc);
    return CLI_OK;
}

static const char k_about[] =
    "Times every fp4gemm backend that can run on the GPU, and auto, against the baselines a\n"
    "Hopper user would pick instead (cuBLASLt BF16 and FP8, dequantize + BF16 GEMM), on the\n"
    "same NVFP4 data, checking every provider against a double-precision reference first.\n"
    "Prints an aligned table (time per GEMM, TFLOP/s, GB/s, % of the measured roofline,\n"
    "speedup over cublas_bf16) and a summary on stdout.\n"
    "On the CPU (--device cpu, the default without a GPU): the cpu backend, cpu_ref and auto\n"
    "against OpenBLAS sgemm (sgemv at M = 1) on the dequantized F32 operands, with the measured\n"
    "DRAM read bandwidth and FP32 FMA peak as the ceilings.";

static const char k_notes[] =
    "providers: cuda_simt, cuda_mma, cuda_wgmma, cublaslt (fp4_gemm on that backend, where it\n"
    "  can run), auto (fp4_gemm's own choice), cublas_bf16 (cuBLASLt BF16 on the dequantized\n"
    "  operands), cublas_fp8 (cuBLASLt FP8 E4M3, per-tensor scales), cublaslt_fp4 (cuBLASLt's\n"
    "  NVFP4 GEMM called directly; sm_100+), dequant_cublas (fp4_dequantize + cuBLASLt BF16,\n"
    "  timed together). On the CPU: cpu, cpu_ref, auto and openblas_f32 (when built with\n"
    "  OpenBLAS). --list-providers says which run here.\n"
    "\n"
    "on the CPU, by default the shapes 1, 16, 64, 256 x (4096, 4096) and 1, 16, 64 x\n"
    "(14336, 4096) and --max-point-seconds 30; input sets span >= 4x the last-level cache.\n"
    "\n"
    "method (docs/PERF.md): ceilings measured first (device-to-device copy, cuBLASLt BF16 and\n"
    "FP8 8192^3); per point, each provider runs once on a NaN-poisoned D and is checked with\n"
    "the library's fp4_gemm_verify (every output finite, 68 sampled outputs against an fp64\n"
    "reference) - a wrong one is FAILED and not timed; then fp4_measure: a CUDA graph of >= 10\n"
    "launches, each on the next of the rotated input sets\n"
    "(>= 5x L2 of inputs per replay: cold weights), replayed >= --replays times between CUDA\n"
    "events; time per GEMM = median replay / launches (p20, p80 too). A provider whose timing\n"
    "would exceed --max-point-seconds at a point is SKIPPED there, and at larger M.\n"
    "\n"
    "exit status: 0 every provider that ran was correct; 1 a provider FAILED, no CUDA device,\n"
    "or a CUDA error; 2 bad usage.\n"
    "\n"
    "--autotune: before timing, the library's autotuner (fp4_tune, as 'fp4gemm tune') tunes\n"
    "every point on the session's context, so that auto runs the tuned tactic of each point\n"
    "(the seed's benchmark wraps its providers in FlashInfer's autotune() the same way). A\n"
    "table loaded from FP4GEMM_TUNING_FILE is used without --autotune.";

/* The end of a run: the summary, the verdict line, the files. CLI_OK, or CLI_FAIL when a
 * provider FAILED, the run stopped early or a file could not be written. */
static int finish_run(bench_run *run, const char *shapes_text) {
    const char *csv = run->opt->csv_path, *json = run->opt->json_path, *svg = run->opt->svg_path;
    int rc = CLI_OK;
    bench_print_summary(run);
    if (run->roof_note[0]) cli_say("roofline: %s\n", run->roof_note);

    int ok = 0, failed = 0, skipped = 0;
    for (int i = 0; i < run->nresults; i++) {
        ok += run->results[i].status == BENCH_OK;
        failed += run->results[i].status == BENCH_FAILED;
        skipped += run->results[i].status == BENCH_SKIPPED;
    }
    if (run->aborted) cli_say("\nbench: STOPPED EARLY %s\n", run->abort_reason);
    cli_say("\nbench: %d rows in %.1f s on %s: %d OK, %d FAILED, %d SKIPPED\n", run->nresults,
            run->wall_seconds, run->dev.name, ok, failed, skipped);
    fflush(cli_msg());
    if (failed || run->aborted) rc = CLI_FAIL;

    /* the files */
    if (csv) {
        bench_text t = {0};
        bench_write_csv(run, &t);
        if (write_text(csv, &t) != CLI_OK) rc = CLI_FAIL;
        bench_text_free(&t);
    }
    if (json) {
        bench_text t = {0};
        bench_write_json(run, shapes_text, &t);
        if (write_text(json, &t) != CLI_OK) rc = CLI_FAIL;
        bench_text_free(&t);
    }
    if (svg) {
        bench_text t = {0};
        bench_svg(run, &t);
        if (write_text(svg, &t) != CLI_OK) rc = CLI_FAIL;
        bench_text_free(&t);
    }
    if (failed) fprintf(stderr, "fp4gemm bench: %d FAILED rows (see the table)\n", failed);
    return rc;
}

/* `fp4gemm bench` on the CPU (cpu.c): the same flow as on a GPU. */
static int bench_on_cpu(bench_options *opt, const bench_provider *cat, const int *chosen,
                        int nchosen, const char *shapes_text) {
    bench_run run;
    memset(&run, 0, sizeof run);
    run.opt = opt;
    run.on_cpu = 1;
    bench_cpu *bc = NULL;
    char why[512] = "";
    if (bench_cpu_open(&run.dev, &bc, why, sizeof why) != 0)
        return cli_fail(CMD, CLI_FAIL, "the CPU: %s", why);
    bench_cpu_facts(bc, run.cpu_facts, sizeof run.cpu_facts);
    for (int i = 0; i < nchosen; i++) {
        const bench_provider *p = &cat[chosen[i]];
        if (bench_cpu_provider_check(bc, p, why, sizeof why) == 0)
            run.providers[run.nproviders++] = *p;
        else
            snprintf(run.unavailable[run.nunavailable++], sizeof run.unavailable[0], "%.30s (%.280s)",
                     p->name, why);
    }
    int rc = CLI_OK;
    if (run.nproviders == 0) {
        rc = cli_fail(CMD, CLI_FAIL, "none of the providers can run on the CPU (see --list-providers)");
        goto out;
    }
    const double t0 = cli_seconds();
    {
        const time_t now = time(NULL);
        struct tm utc;
        if (gmtime_r(&now, &utc)) strftime(run.date, sizeof run.date, "%Y-%m-%d %H:%M:%S UTC", &utc);
    }
    bench_cpu_ceilings(bc, &run.dev, why, sizeof why);
    run.roof_bf16_tflops = run.dev.bf16_tflops;
    run.roof_copy_gbs = run.dev.copy_gbs;
    bench_print_header(&run, shapes_text);
    run.npoints = opt->nshapes;
    for (int s = 0; s < opt->nshapes && !run.aborted; s++) {
        const bench_shape sh = opt->shapes[s];
        if (s == 0 || sh.n != opt->shapes[s - 1].n || sh.k != opt->shapes[s - 1].k) {
            cli_say("\n");
            bench_print_table_header(&run);
        }
        run.point_index = s;
        const int first = run.nresults;
        if (bench_cpu_point(bc, &run, sh, why, sizeof why) != 0) {
            run.aborted = 1;
            snprintf(run.abort_reason, sizeof run.abort_reason, "at M=%lld N=%lld K=%lld: %.400s",
                     (long long)sh.m, (long long)sh.n, (long long)sh.k, why);
        }
        bench_fill_speedups(&run, first, run.nresults - first);
        for (int i = first; i < run.nresults; i++) bench_fill_roofline(&run, &run.results[i]);
        if (opt->progress) fprintf(stderr, "\r\033[K");
        for (int i = first; i < run.nresults; i++) bench_print_row(&run, &run.results[i]);
        fflush(cli_msg());
    }
    run.wall_seconds = cli_seconds() - t0;
    rc = finish_run(&run, shapes_text);
out:
    bench_cpu_close(bc);
    free(run.results);
    return rc;
}

int cmd_bench(int argc, char **argv) {
    const char *preset_name = NULL, *m_list = NULL, *shapes_arg = NULL, *providers_arg = NULL;
    const char *csv = NULL, *json = NULL, *svg = NULL;
    fp4_dtype out_dtype = FP4_DTYPE_BF16;
    int list = 0, autotune = 0;
    float max_seconds = -1.0f; /* 2 on a GPU, 30 on the CPU */
    int device = -2;            /* device 0 if there is a GPU, else the CPU */
    int64_t replays = BENCH_MIN_REPLAYS, seed = 1;
    const char *rounds_arg = NULL; /* parsed below: the error then names the range */
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
         .help = "skip a provider at a point when its timing would\ntake longer (default 2; 30 on the CPU)"},
        {.name = "--replays", .metavar = "N", .kind = CLI_INT, .dest = &replays,
         .help = "timed graph replays per point, at least\n(default 20; cheap points get up to 100)",
         .min = BENCH_MIN_REPLAYS, .max = 100000},
        {.name = "--rounds", .metavar = "1..20", .kind = CLI_STRING, .dest = &rounds_arg,
         .help = "time each point's providers this often, in turn and\n"
                 "alternating order; a row = its median round (default 1)"},
        {.name = "--device", .metavar = "D", .kind = CLI_DEVICE, .dest = &device,
         .help = "CUDA device number, or cpu (-1) (default: device 0\nif there is a GPU, else the CPU)"},
        {.name = "--seed", .metavar = "N", .kind = CLI_INT, .dest = &seed,
         .help = "seed of the random operands (default 1)", .min = 0, .max = INT64_MAX},
        {.name = "--csv", .metavar = "FILE", .kind = CLI_STRING, .dest = &csv,
         .help = "also write every row as CSV"},
        {.name = "--json", .metavar = "FILE", .kind = CLI_STRING, .dest = &json,
         .help = "also write the run (device, ceilings, rows, summary)\nas JSON"},
        {.name = "--svg", .metavar = "FILE", .kind = CLI_STRING, .dest = &svg,
         .help = "also draw speedup over cublas_bf16 vs M, one panel\nper (N, K), as SVG"},
        {.name = "--autotune", .kind = CLI_FLAG, .dest = &autotune,
         .help = "tune every point first, so that auto runs the\nfastest verified tactic (see below)"},
    };
    cli_command command = {CMD, "[options]", k_about, opts, (int)(sizeof opts / sizeof opts[0]),
                           k_notes};
    const int parsed = cli_parse(&command, argc, argv);
    if (parsed != CLI_RUN) return parsed;

    int64_t rounds = 1;
    const char *rounds_why = NULL;
    if (rounds_arg && cli_parse_i64(rounds_arg, 1, BENCH_MAX_ROUNDS, &rounds, &rounds_why) != 0)
        return cli_fail(CMD, CLI_USAGE, "--rounds %s: must be an integer from 1 to %d",
                        rounds_arg, BENCH_MAX_ROUNDS);

    if (device == -2) device = cli_default_device();
    const int on_cpu = device < 0;
    if (max_seconds < 0) max_seconds = on_cpu ? 30.0f : 2.0f;
    if (on_cpu && !shapes_arg && !preset_name && !m_list)
        shapes_arg = "1,4096,4096;16,4096,4096;64,4096,4096;256,4096,4096;1,14336,4096;"
                     "16,14336,4096;64,14336,4096";

    /* shapes */
    bench_options opt;
    memset(&opt, 0, sizeof opt);
    char shapes_text[512];
    int made = bench_make_shapes(shapes_arg, preset_name, m_list, &opt, shapes_text,
                                 sizeof shapes_text);
    if (made != CLI_OK) {
        free(opt.shapes);
        return made;
    }
    const char *paths[3] = {csv, json, svg}, *names[3] = {"--csv", "--json", "--svg"};
    if (cli_check_outputs(CMD, paths, names, 3) != CLI_OK) {
        free(opt.shapes);
        return CLI_USAGE;
    }
    opt.out_dtype = out_dtype;
    opt.device = (int)device;
    opt.seed = (uint64_t)seed;
    opt.max_point_seconds = max_seconds;
    opt.min_replays = (int)replays;
    opt.rounds = (int)rounds;
    opt.csv_path = csv;
    opt.json_path = json;
    opt.svg_path = svg;
    opt.providers = providers_arg;
    opt.progress = isatty(fileno(stderr));

    /* providers by name */
    bench_provider cat[BENCH_MAX_PROVIDERS];
    int ncat = bench_provider_table(cat);
    int chosen[BENCH_MAX_PROVIDERS], nchosen = 0;
    if (providers_arg) {
        if (bench_parse_providers(providers_arg, cat, &ncat, chosen, &nchosen) != CLI_OK) {
            free(opt.shapes);
            return CLI_USAGE;
        }
    } else {
        for (int i = 0; i < ncat; i++)
            if (provider_here(&cat[i], on_cpu)) chosen[nchosen++] = i;
    }
    if (list) {
        free(opt.shapes);
        return list_providers(cat, ncat, opt.device);
    }

    if (on_cpu) {
        const int rc = bench_on_cpu(&opt, cat, chosen, nchosen, shapes_text);
        free(opt.shapes);
        return rc;
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
        if (!provider_here(p, 0))
            snprintf(run.unavailable[run.nunavailable++], sizeof run.unavailable[0],
                     "%.30s (a CPU provider; this run is on a GPU: --device cpu)", p->name);
        else if (bench_cuda_provider_check(bc, p, why, sizeof why) == 0)
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
    run.roof_bf16_tflops = run.dev.bf16_tflops;
    run.roof_fp8_tflops = run.dev.fp8_tflops;
    run.roof_copy_gbs = run.dev.copy_gbs;
    if (autotune) {
        tune_setup setup = {FP4_DTYPE_E2M1, opt.out_dtype, FP4_SF_SWIZZLED_128x4, 0, /* as the runs */
                            opt.max_point_seconds, opt.seed, 1};
        int tuned = 0;
        fp4_ctx *tctx = bench_cuda_context(bc);
        cli_say("autotune: %d points on %s\n", opt.nshapes, run.dev.name);
        const double ts = cli_seconds();
        if (tune_shapes(CMD, tctx, opt.shapes, opt.nshapes, &setup, &tuned) != CLI_OK) {
            rc = CLI_FAIL;
            goto out;
        }
        cli_say("autotune: %d of %d points tuned in %.1f s\n", tuned, opt.nshapes,
                cli_seconds() - ts);
    }
    bench_print_header(&run, shapes_text);

    /* the points */
    run.npoints = opt.nshapes;
    for (int s = 0; s < opt.nshapes && !run.aborted; s++) {
        const bench_shape sh = opt.shapes[s];
        if (s == 0 || sh.n != opt.shapes[s - 1].n || sh.k != opt.shapes[s - 1].k) {
            cli_say("\n");
            bench_print_table_header(&run);
        }
        run.point_index = s;
        const int first = run.nresults;
        if (bench_cuda_point(bc, &run, sh, why, sizeof why) != 0) {
            run.aborted = 1;
            snprintf(run.abort_reason, sizeof run.abort_reason, "at M=%lld N=%lld K=%lld: %.400s",
                     (long long)sh.m, (long long)sh.n, (long long)sh.k, why);
        }
        bench_fill_speedups(&run, first, run.nresults - first);
        for (int i = first; i < run.nresults; i++) bench_fill_roofline(&run, &run.results[i]);
        if (opt.progress) fprintf(stderr, "\r\033[K");
        for (int i = first; i < run.nresults; i++) bench_print_row(&run, &run.results[i]);
        fflush(cli_msg());
    }
    run.wall_seconds = cli_seconds() - t0;
    if (finish_run(&run, shapes_text) != CLI_OK) rc = CLI_FAIL;
out:
    bench_cuda_close(bc);
    free(run.results);
    free(opt.shapes);
    return rc;
}

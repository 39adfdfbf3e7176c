/* cmd_tune.c - `fp4gemm tune`: runs the library's autotuner (fp4_tune) on a preset's shapes or
 * explicit ones and writes the tuning cache (docs/tuning.md) that FP4GEMM_TUNING_FILE or
 * fp4_tuning_load gives a context. Also the tuning step of `fp4gemm bench --autotune`. */
#define _POSIX_C_SOURCE 200809L
#include "cli_util.h"
#include "fp4gemm.h"
#include "tune_shapes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct progress_state {
    const bench_shape *shapes;
    int tty;
    int last_problem;
} progress_state;

static void on_progress(void *user, const fp4_tune_progress *p) {
    progress_state *ps = (progress_state *)user;
    const bench_shape *sh = &ps->shapes[p->problem];
    char best[160] = "none yet";
    if (p->best_us > 0) {
        char name[96];
        if (fp4_tactic_name(p->best, name, sizeof name) != FP4_OK) snprintf(name, sizeof name, "?");
        snprintf(best, sizeof best, "%s %.2f us", name, p->best_us);
    }
    const int last = p->tactic_index + 1 == p->tactics;
    if (!ps->tty && !last) return; /* a log: one line per problem */
    fprintf(stderr, "%stune: problem %d of %d (M=%lld N=%lld K=%lld), tactic %d of %d, best %s; "
            "%.0f s elapsed, ~%.0f s left%s",
            ps->tty ? "\r\033[K" : "", p->problem + 1, p->problems, (long long)sh->m,
            (long long)sh->n, (long long)sh->k, p->tactic_index + 1, p->tactics, best,
            p->elapsed_s, p->left_s, ps->tty ? "" : "\n");
    fflush(stderr);
}

int tune_shapes(const char *cmd, fp4_ctx *ctx, const bench_shape *shapes, int n,
                const tune_setup *setup, int *tuned) {
    *tuned = 0;
    fp4_gemm_desc *probs = calloc((size_t)n, sizeof *probs);
    fp4_tune_result *res = calloc((size_t)n, sizeof *res);
    if (!probs || !res) {
        free(probs);
        free(res);
        return cli_fail(cmd, CLI_FAIL, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        fp4_gemm_desc_init(&probs[i]);
        probs[i].m = shapes[i].m;
        probs[i].n = shapes[i].n;
        probs[i].k = shapes[i].k;
        probs[i].a_dtype = setup->a_dtype;
        probs[i].a_sf_layout = probs[i].b_sf_layout = setup->sf_layout;
        probs[i].d_dtype = setup->out_dtype;
        res[i].struct_size = sizeof res[i];
    }
    progress_state ps = {shapes, isatty(fileno(stderr)), -1};
    fp4_tune_options opt;
    fp4_tune_options_init(&opt);
    opt.budget_seconds = setup->budget_seconds;
    if (setup->tactic_seconds > 0) opt.tactic_budget_seconds = setup->tactic_seconds;
    opt.seed = setup->seed;
    opt.progress = on_progress;
    opt.user = &ps;
    const double t0 = cli_seconds();
    const fp4_status st = fp4_tune(ctx, probs, n, &opt, res);
    if (ps.tty) fprintf(stderr, "\r\033[K");
    if (st != FP4_OK) {
        free(probs);
        free(res);
        return cli_lib_fail(cmd, "fp4_tune", st, ctx);
    }
    int count = 0;
    double speedup_sum = 0;
    int speedups = 0;
    /* where the time went, over the whole run */
    double operands_s = 0, estimate_s = 0, verify_s = 0, measure_s = 0;
    int timed = 0, cut = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        operands_s += res[i].operands_s;
        estimate_s += res[i].estimate_s;
        verify_s += res[i].verify_s;
        measure_s += res[i].measure_s;
        timed += res[i].timed;
        cut += res[i].too_slow;
        failed += res[i].failed;
    }
    const double total_s = cli_seconds() - t0;
    double other_s = total_s - operands_s - estimate_s - verify_s - measure_s;
    if (other_s < 0) other_s = 0;
    for (int i = 0; i < n; i++) {
        count += res[i].tuned;
        if (setup->quiet) continue;
        char best[96] = "-", heur[96] = "-";
        if (res[i].tuned) fp4_tactic_name(res[i].best, best, sizeof best);
        fp4_tactic_name(res[i].heuristic, heur, sizeof heur);
        if (res[i].tuned && res[i].heuristic_us > 0) {
            speedup_sum += res[i].heuristic_us / res[i].best_us;
            speedups++;
            cli_say("%6lld %6lld %6lld  %-22s %10.2f us   untuned auto %-22s %10.2f us  %5.2fx\n",
                    (long long)shapes[i].m, (long long)shapes[i].n, (long long)shapes[i].k, best,
                    res[i].best_us, heur, res[i].heuristic_us,
                    res[i].heuristic_us / res[i].best_us);
        } else {
            cli_say("%6lld %6lld %6lld  %-22s %10.2f us   %s\n", (long long)shapes[i].m,
                    (long long)shapes[i].n, (long long)shapes[i].k, best, res[i].best_us,
                    res[i].message);
        }
        if (res[i].tuned && (res[i].failed || res[i].too_slow))
            cli_say("%20s  %s\n", "", res[i].message);
    }
    if (!setup->quiet)
        cli_say("%s: %d of %d problems tuned in %.1f s (operands %.1f s, estimates %.1f s, "
                "verify %.1f s, timing %.1f s, other %.1f s; %d tactics timed, %d cut, %d "
                "failed)%s", cmd, count, n, total_s, operands_s, estimate_s, verify_s,
                measure_s, other_s, timed, cut, failed, speedups ? "" : "\n");
    if (!setup->quiet && speedups)
        cli_say("; mean speedup over untuned auto %.3fx\n", speedup_sum / speedups);
    *tuned = count;
    free(probs);
    free(res);
    return CLI_OK;
}

static const char k_about[] =
    "Finds the fastest tactic (backend and kernel config) for each problem and writes them to\n"
    "a tuning cache. Each tactic that can run a problem is estimated from a few launches on\n"
    "random NVFP4 data; the contenders (near the best estimate, and the heuristic's choice)\n"
    "are checked against an fp64 reference (a wrong one is skipped and reported), then timed\n"
    "as 'fp4gemm bench' times (CUDA graph replays over cold input sets, median; fewer replays\n"
    "for long launches); the fastest wins. Load the file with FP4GEMM_TUNING_FILE=FILE (or\n"
    "fp4_tuning_load): auto then runs the tuned tactic of each problem's bucket (M rounded up\n"
    "to 1, 2, 4, .., 256, then multiples of 256 to 4096, then powers of two; N, K, dtypes and\n"
    "layouts exact).";

static const char k_notes[] =
    "A progress line goes to stderr (problem i of n, best so far, time left); one line per\n"
    "problem, the winner against untuned auto, goes to stdout, then a summary: the time, and\n"
    "where it went (operands, estimates, verify, timing, other), tactics timed and cut.\n"
    "Tactics far slower than the best are cut after a launch or two. The file holds the\n"
    "entries of this device only (with --merge, also the entries FILE already had for it) and\n"
    "is written atomically. Without a GPU the CPU backends are tuned (device cpu).\n"
    "docs/tuning.md.\n"
    "exit status: 0 every problem tuned; 1 some problem could not be tuned, or an error;\n"
    "2 bad usage.";

int cmd_tune(int argc, char **argv) {
    const char *cmd = "tune";
    const char *preset_name = NULL, *m_list = NULL, *shapes_arg = NULL, *out = NULL;
    fp4_dtype out_dtype = FP4_DTYPE_BF16, a_dtype = FP4_DTYPE_E2M1;
    fp4_sf_layout layout = FP4_SF_SWIZZLED_128x4; /* as `fp4gemm gemm`, bench and FlashInfer */
    int device = cli_default_device(), merge = 0;
    float budget = 0, tactic_seconds = 2.0f;
    int64_t seed = 1;
    cli_opt opts[] = {
        {.name = "--preset", .metavar = "NAME", .kind = CLI_STRING, .dest = &preset_name,
         .help = "(N, K) weight shapes x the M list: deepseek-r1,\n"
                 "llama3.1-8b or llama3.3-70b (default llama3.1-8b)"},
        {.name = "--m-list", .metavar = "LIST", .kind = CLI_STRING, .dest = &m_list,
         .help = "M values, e.g. 1,16,128 (default 1,2,4,...,2048,\n"
                 "3072,4096,8192,16384)"},
        {.name = "--shapes", .metavar = "LIST", .kind = CLI_STRING, .dest = &shapes_arg,
         .help = "explicit problems \"M,N,K;M,N,K\" instead of a preset"},
        {.name = "--out", .metavar = "FILE", .kind = CLI_STRING, .dest = &out, .required = 1,
         .help = "the tuning cache to write (required)"},
        {.name = "--merge", .kind = CLI_FLAG, .dest = &merge,
         .help = "keep FILE's entries for this device that this run\ndoes not retune"},
        {.name = "--out-dtype", .metavar = "T", .kind = CLI_DTYPE, .dest = &out_dtype,
         .help = "type of D: bf16, f16 or f32 (default bf16)", .allowed = CLI_DT_FLOATS},
        {.name = "--a-dtype", .metavar = "T", .kind = CLI_DTYPE, .dest = &a_dtype,
         .help = "type of A: e2m1 (W4A4), bf16 or f16 (W4A16)\n(default e2m1)",
         .allowed = CLI_DT(FP4_DTYPE_E2M1) | CLI_DT_HALVES},
        {.name = "--sf-layout", .metavar = "L", .kind = CLI_LAYOUT, .dest = &layout,
         .help = "scale layout of A and B: linear or swizzled\n(default swizzled, as 'fp4gemm gemm' and\nbench; a cache entry serves only its layout)"},
        {.name = "--device", .metavar = "D", .kind = CLI_DEVICE, .dest = &device,
         .help = "cpu or a CUDA device (default 0 if there is one,\nelse cpu)"},
        {.name = "--budget", .metavar = "S", .kind = CLI_FLOAT, .dest = &budget,
         .help = "stop after S seconds; problems not reached stay\nuntuned (default none)"},
        {.name = "--tactic-seconds", .metavar = "S", .kind = CLI_FLOAT, .dest = &tactic_seconds,
         .help = "the longest one tactic's timing may take; slower\ntactics are cut (default 2)"},
        {.name = "--seed", .metavar = "N", .kind = CLI_INT, .dest = &seed,
         .help = "seed of the random operands (default 1)", .min = 0, .max = INT64_MAX},
    };
    cli_command command = {cmd, "--out FILE [options]", k_about, opts,
                           (int)(sizeof opts / sizeof opts[0]), k_notes};
    const int parsed = cli_parse(&command, argc, argv);
    if (parsed != CLI_RUN) return parsed;
    if (strcmp(out, "-") == 0)
        return cli_fail(cmd, CLI_USAGE, "--out -: the cache is written atomically to a file "
                        "(a rename), not to stdout");

    bench_options bo;
    memset(&bo, 0, sizeof bo);
    char shapes_text[512];
    bench_cmd_name = cmd;
    const int made = bench_make_shapes(shapes_arg, preset_name, m_list, &bo, shapes_text,
                                       sizeof shapes_text);
    bench_cmd_name = "bench";
    if (made != CLI_OK) {
        free(bo.shapes);
        return made;
    }
    fp4_ctx *ctx = NULL;
    fp4_status st = fp4_create(&ctx, device);
    if (st != FP4_OK) {
        free(bo.shapes);
        return cli_lib_fail(cmd, "fp4_create", st, NULL);
    }
    fp4_tuning_clear(ctx); /* FP4GEMM_TUNING_FILE may have loaded one: start clean */
    if (merge && access(out, F_OK) == 0 && (st = fp4_tuning_load(ctx, out)) != FP4_OK) {
        const int rc = cli_lib_fail(cmd, "--merge: loading the existing file", st, ctx);
        fp4_destroy(ctx);
        free(bo.shapes);
        return rc;
    }
    char label[320];
    cli_describe_device(device, label, sizeof label);
    cli_say("fp4gemm tune on %s: %s\n", label, shapes_text);
    tune_setup setup = {a_dtype, out_dtype, layout, budget, tactic_seconds, (uint64_t)seed, 0};
    int tuned = 0;
    int rc = tune_shapes(cmd, ctx, bo.shapes, bo.nshapes, &setup, &tuned);
    if (rc == CLI_OK) {
        st = fp4_tuning_save(ctx, out);
        if (st != FP4_OK) {
            rc = cli_lib_fail(cmd, "writing the cache", st, ctx);
        } else {
            fp4_tuning_info info;
            info.struct_size = sizeof info;
            fp4_tuning_get_info(ctx, &info);
            cli_say("wrote %s: %lld entries for %s\n", out, (long long)info.entries,
                    info.device_key);
            if (tuned < bo.nshapes) rc = CLI_FAIL;
        }
    }
    fp4_destroy(ctx);
    free(bo.shapes);
    return rc;
}

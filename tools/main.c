/* main.c - the `fp4gemm` program: top-level help and version, dispatch to the subcommands. */
#include "bench/bench.h"
#include "cli_util.h"
#include "fp4gemm.h"

#include <stdio.h>
#include <string.h>

int cmd_info(int argc, char **argv);       /* cmd_info.c */
int cmd_gemm(int argc, char **argv);       /* cmd_gemm.c */
int cmd_quantize(int argc, char **argv);   /* cmd_quantize.c */
int cmd_dequantize(int argc, char **argv); /* cmd_quantize.c */
int cmd_gen_input(int argc, char **argv);  /* cmd_quantize.c */
int cmd_tune(int argc, char **argv);       /* cmd_tune.c */
int cmd_checkpoint(int argc, char **argv); /* cmd_checkpoint.c */

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
    const char *summary;
} command;

static const command k_commands[] = {
    {"info", cmd_info, "version, build, devices, and which backend can run where and why"},
    {"gemm", cmd_gemm, "run one random NVFP4 GEMM: backend, time, TFLOP/s, error (--check)"},
    {"quantize", cmd_quantize, "F32/F16/BF16 file -> packed E2M1 file + E4M3 scale file"},
    {"dequantize", cmd_dequantize, "packed E2M1 file + E4M3 scale file -> F32/F16/BF16 file"},
    {"bench", cmd_bench, "benchmark every backend against the baselines"},
    {"tune", cmd_tune, "autotune: the fastest checked tactic per problem, to a cache file"},
    {"checkpoint", cmd_checkpoint, "safetensors checkpoints: inspect, quantize to NVFP4, verify"},
    {"gen-input", cmd_gen_input, "write a seeded random F32/F16/BF16 file (tests, examples)"},
};
#define N_COMMANDS ((int)(sizeof k_commands / sizeof k_commands[0]))

/* The policy classes shown in --help: one compute capability stands for each class. */
static const struct {
    int cc;
    const char *label;
} k_policy_classes[] = {
    {0, "no GPU (the CPU)"},
    {75, "sm_70 .. sm_75"},
    {80, "sm_80 .. sm_89"},
    {90, "sm_90 (Hopper)"},
    {100, "sm_100, 103, 110"},
    {120, "sm_120, 121"},
};

static void print_help(FILE *out) {
    fprintf(out,
            "usage: fp4gemm [--help|--version] <command> [options]\n"
            "\n"
            "fp4gemm runs NVFP4 GEMMs (E2M1 values with one E4M3 scale per 16, and an FP32\n"
            "global scale) on NVIDIA GPUs and the CPU, and checks them against a reference.\n"
            "\n"
            "commands:\n");
    for (int i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-12s%s\n", k_commands[i].name, k_commands[i].summary);
    fprintf(out,
            "\n"
            "Run 'fp4gemm <command> --help' for its options.\n"
            "\n"
            "backend selection (--backend auto, the default): the first backend of the\n"
            "device's list that can run the problem:\n");
    for (size_t i = 0; i < sizeof k_policy_classes / sizeof k_policy_classes[0]; i++) {
        char order[256];
        cli_policy_string(k_policy_classes[i].cc, order, sizeof order);
        fprintf(out, "  %-20s%s\n", k_policy_classes[i].label, order);
    }
    fprintf(out,
            "  (on sm_90, cuda_mma goes first for M <= 32: decode sizes, where its split-K\n"
            "  mma.sync kernels beat cuda_wgmma's 64- to 256-token tiles)\n"
            "'fp4gemm info' shows why each backend can or can't run on this machine.\n"
            "\n"
            "overrides:\n"
            "  --backend NAME          run exactly NAME; if it can't run, fail saying why\n"
            "  FP4GEMM_BACKEND=NAME    read by the library (not by this tool) when a context\n"
            "                          is created: a backend or tactic name used instead of\n"
            "                          the list when the request is auto; one that can't run\n"
            "                          fails with the reason (docs/backends.md); 'fp4gemm\n"
            "                          info' and 'fp4gemm gemm' say what was selected, why\n"
            "  FP4GEMM_TUNING_FILE=F   a tuning cache ('fp4gemm tune'), read by the library:\n"
            "                          auto runs its tactic for each problem it has\n"
            "                          (docs/tuning.md); 'fp4gemm info' says if one is loaded\n"
            "  FP4GEMM_LOG_LEVEL=L     the library's log level: error, warn (default), info\n"
            "                          (contexts made, GPU images missing), debug (every\n"
            "                          failure's detail) or off; any case\n"
            "\n"
            "exit codes: 0 ok, 1 failure (including a failed --check), 2 bad usage\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "fp4gemm: missing command (see 'fp4gemm --help')\n");
        return CLI_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        print_help(stdout);
        return CLI_OK;
    }
    if (strcmp(name, "--version") == 0) {
        printf("fp4gemm %s\n", fp4_version());
        return CLI_OK;
    }
    for (int i = 0; i < N_COMMANDS; i++) {
        if (strcmp(name, k_commands[i].name) != 0) continue;
        /* the library reports a FP4GEMM_LOG_LEVEL that is no level only when the level is
         * first needed, which a run that logs nothing never does: ask for it now, so that a
         * typo (FP4GEMM_LOG_LEVEL=verbose) is reported on every command */
        (void)fp4_get_log_level();
        return k_commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "fp4gemm: %s '%s' (see 'fp4gemm --help')\n",
            name[0] == '-' ? "unknown option" : "unknown command", name);
    return CLI_USAGE;
}

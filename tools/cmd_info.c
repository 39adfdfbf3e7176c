/* cmd_info.c - `fp4gemm info`: version, build, devices, and for the CPU and each device every
 * backend with "can run" or the reason it can't, and what auto picks. */
#include "cli_util.h"
#include "fp4gemm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The backends of one context (device -1: the CPU). Returns CLI_OK or CLI_FAIL. */
static int print_backends(int device) {
    char label[320];
    cli_describe_device(device, label, sizeof label);
    printf("\n%s\n", device < 0 ? "CPU (device -1)" : label);
    fp4_ctx *ctx = NULL;
    const fp4_status st = fp4_create(&ctx, device);
    if (st != FP4_OK) {
        printf("  no context: %s [%s]\n", fp4_last_error(NULL), fp4_status_name(st));
        return CLI_FAIL;
    }
    char order[256];
    cli_policy_string(fp4_ctx_compute_capability(ctx), order, sizeof order);
    printf("  %-12s %s\n", "auto order", order);
    if (device < 0)
        printf("  %-12s %s kernels, %d thread%s%s\n", "cpu backend", fp4_ctx_cpu_simd(ctx),
               fp4_ctx_num_threads(ctx), fp4_ctx_num_threads(ctx) == 1 ? "" : "s",
               fp4_built_with_openmp() ? " (OpenMP: OMP_NUM_THREADS)" : " (built without OpenMP)");
    for (int b = FP4_BACKEND_AUTO + 1; b < FP4_BACKEND_COUNT; b++) {
        char why[512];
        const fp4_status can = fp4_backend_check(ctx, (fp4_backend)b, NULL, why, sizeof why);
        printf("  %-12s %s%s\n", fp4_backend_name((fp4_backend)b),
               can == FP4_OK ? "can run" : "no: ", can == FP4_OK ? "" : why);
    }
    fp4_tactic tactics[64];
    int count = 0;
    if (fp4_gemm_list_tactics(ctx, NULL, tactics, 64, &count) == FP4_OK) {
        printf("  %-12s", "tactics");
        for (int i = 0; i < count && i < 64; i++) {
            char name[96];
            if (fp4_tactic_name(tactics[i], name, sizeof name) == FP4_OK)
                printf("%s%s", i ? ", " : " ", name);
        }
        printf("%s\n", count ? "" : " none");
    }
    fp4_tactic pick;
    char why[512], name[96];
    if (cli_select(ctx, NULL, &pick, name, sizeof name, why, sizeof why) == FP4_OK)
        printf("  %-12s %s (%s)\n", "auto picks", name, why);
    else
        printf("  %-12s nothing: %s\n", "auto picks", fp4_last_error(ctx));
    fp4_tuning_info tuning;
    tuning.struct_size = sizeof tuning;
    if (fp4_tuning_get_info(ctx, &tuning) == FP4_OK) {
        if (tuning.file[0])
            printf("  %-12s %s: %lld entries for %s%s", "tuning", tuning.file,
                   (long long)tuning.entries, tuning.device_key,
                   tuning.ignored ? "" : "\n");
        else
            printf("  %-12s none loaded (entries for %s; 'fp4gemm tune', then\n"
                   "  %-12s FP4GEMM_TUNING_FILE=FILE)\n",
                   "tuning", tuning.device_key, "");
        if (tuning.file[0] && tuning.ignored)
            printf("; %lld entries for another device or version ignored\n",
                   (long long)tuning.ignored);
    }
    fp4_destroy(ctx);
    return CLI_OK;
}

int cmd_info(int argc, char **argv) {
    cli_command cmd = {
        .name = "info",
        .usage = "[--help]",
        .about = "Prints the version, how this fp4gemm was built, the CUDA devices, and for the\n"
                 "CPU and each device every backend with 'can run' or the reason it can't,\n"
                 "the automatic-selection order and what auto picks.",
        .opts = NULL,
        .n_opts = 0,
        .notes = "auto picks the first backend of the order that can run; FP4GEMM_BACKEND,\n"
                 "read by the library, replaces the order (see 'fp4gemm --help'). 'tuning' says\n"
                 "whether FP4GEMM_TUNING_FILE loaded a tuning cache, and for which device.",
    };
    const int rc = cli_parse(&cmd, argc, argv);
    if (rc != CLI_RUN) return rc;

    int status = CLI_OK;
    printf("fp4gemm %s\n", fp4_version());
    if (fp4_built_with_cuda())
        printf("build:    CUDA, architectures %s\n", fp4_built_cuda_archs());
    else
        printf("build:    CPU only (built without CUDA)\n");

    int count = 0;
    const fp4_status st = fp4_device_count(&count);
    if (st != FP4_OK) {
        printf("devices:  query failed: %s [%s]\n", fp4_last_error(NULL), fp4_status_name(st));
        count = 0;
        status = CLI_FAIL;
    } else if (count == 0) {
        printf("devices:  none%s\n", fp4_built_with_cuda() ? " (no CUDA device or driver)" : "");
    } else {
        printf("devices:  %d\n", count);
    }
    for (int d = 0; d < count; d++) {
        fp4_device_info info;
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        const fp4_status qs = fp4_device_query(d, &info);
        if (qs != FP4_OK) {
            printf("  %d: query failed: %s [%s]\n", d, fp4_last_error(NULL), fp4_status_name(qs));
            status = CLI_FAIL;
            continue;
        }
        printf("  %d: %s, sm_%d, %d SMs, %.1f MiB L2, %.1f GiB memory", d, info.name,
               info.compute_capability, info.sm_count, (double)info.l2_bytes / (1 << 20),
               (double)info.memory_bytes / (1 << 30));
        if (info.memory_bandwidth_gbs > 0) printf(", %.0f GB/s", info.memory_bandwidth_gbs);
        printf("\n");
    }

    if (print_backends(-1) != CLI_OK) status = CLI_FAIL;
    for (int d = 0; d < count; d++)
        if (print_backends(d) != CLI_OK) status = CLI_FAIL;
    return status;
}

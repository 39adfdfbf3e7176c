/* fuzz_tuning.c - libFuzzer target for the tuning cache loader (fp4_tuning_load_buffer).
 * Properties: no crash, leak or undefined behaviour on any input; a rejected input leaves the
 * table as it was (empty) with a message; an accepted input survives a save and reload with
 * the same entries (the writer and the reader agree).
 * Build and run: tests/fuzz/run.sh (CI: a short run; docs/tuning.md). */
#include "fp4gemm.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static fp4_ctx *g_ctx;
static char g_path[256];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fp4_set_log_level(FP4_LOG_OFF);
    if (fp4_create(&g_ctx, -1) != FP4_OK) abort();
    snprintf(g_path, sizeof g_path, "/tmp/fuzz_tuning_%d.txt", (int)getpid());
    return 0;
}

static int64_t entries(void) {
    fp4_tuning_info info;
    info.struct_size = sizeof info;
    if (fp4_tuning_get_info(g_ctx, &info) != FP4_OK) abort();
    return info.entries;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fp4_tuning_clear(g_ctx);
    const fp4_status st = fp4_tuning_load_buffer(g_ctx, (const char *)data, size, "fuzz");
    if (st != FP4_OK) {
        if (st != FP4_ERR_INVALID_ARGUMENT || !fp4_last_error(g_ctx)[0] || entries() != 0)
            abort(); /* rejected: a message and an untouched table */
        return 0;
    }
    const int64_t n = entries();
    if (n > 0) { /* round trip through the writer */
        if (fp4_tuning_save(g_ctx, g_path) != FP4_OK) abort();
        fp4_tuning_clear(g_ctx);
        if (fp4_tuning_load(g_ctx, g_path) != FP4_OK || entries() != n) abort();
        unlink(g_path);
    }
    return 0;
}

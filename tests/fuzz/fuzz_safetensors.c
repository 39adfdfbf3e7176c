/* fuzz_safetensors.c - libFuzzer target for the safetensors reader (fp4_safetensors_open_buffer:
 * the header's length, its JSON parsed by cJSON, every dtype, shape and offset check).
 * Properties: no crash, leak or undefined behaviour on any input; a refused input gives
 * FP4_ERR_INVALID_ARGUMENT (or OUT_OF_MEMORY), a NULL handle and a message; an accepted one
 * has tensors sorted by name, each inside the input with bytes = numel * dtype size and found
 * by name, every data byte readable (ASan checks the reads), the tensors tiling the data
 * section; and it survives the writer: written to a file and opened again, the same names,
 * dtypes, shapes and bytes. Build and run: FUZZ_TARGET=safetensors tests/fuzz/run.sh. */
#include "fp4gemm.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_path[256];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fp4_set_log_level(FP4_LOG_OFF);
    if (!fp4_built_with_safetensors()) abort(); /* nothing to fuzz: the build lacks cJSON */
    /* tmpfs when there is one: the writer's fsync costs nothing there */
    snprintf(g_path, sizeof g_path, "%s/fuzz_st_%d.safetensors",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (int)getpid());
    return 0;
}

static void check_accepted(const fp4_safetensors *st, const uint8_t *data, size_t size) {
    const int64_t n = fp4_safetensors_count(st);
    fp4_st_tensor *t = calloc((size_t)(n ? n : 1), sizeof *t);
    if (!t) abort();
    int64_t covered = 0;
    volatile uint8_t sink = 0;
    for (int64_t i = 0; i < n; i++) {
        if (fp4_safetensors_tensor(st, i, &t[i]) != FP4_OK) abort();
        const uint8_t *p = t[i].data;
        int64_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) numel *= t[i].shape[d];
        if (numel != t[i].numel || t[i].bytes != numel * fp4_st_dtype_size(t[i].dtype)) abort();
        if (p < data || p + t[i].bytes > data + size) abort();
        if (t[i].file_offset != (int64_t)(p - data)) abort();
        if (i && strcmp(t[i - 1].name, t[i].name) >= 0) abort();
        if (fp4_safetensors_find(st, t[i].name) != i) abort();
        for (int64_t b = 0; b < t[i].bytes; b++) sink ^= p[b];
        covered += t[i].bytes;
    }
    (void)sink;
    uint64_t header_len = 0; /* the tensors tile the data section exactly */
    for (int i = 7; i >= 0; i--) header_len = header_len << 8 | data[i];
    if (covered != (int64_t)size - 8 - (int64_t)header_len) abort();
    /* the writer and the reader agree */
    if (fp4_safetensors_write(g_path, t, n, NULL, 0) != FP4_OK) abort();
    fp4_safetensors *again = NULL;
    if (fp4_safetensors_open(g_path, &again) != FP4_OK || fp4_safetensors_count(again) != n)
        abort();
    for (int64_t i = 0; i < n; i++) {
        fp4_st_tensor r;
        if (fp4_safetensors_tensor(again, i, &r) != FP4_OK || strcmp(r.name, t[i].name) ||
            r.dtype != t[i].dtype || r.ndim != t[i].ndim ||
            memcmp(r.shape, t[i].shape, sizeof r.shape) || r.bytes != t[i].bytes ||
            (r.bytes && memcmp(r.data, t[i].data, (size_t)r.bytes)))
            abort();
    }
    fp4_safetensors_close(again);
    unlink(g_path);
    free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fp4_safetensors *st = (fp4_safetensors *)&st; /* must become NULL on refusal */
    const fp4_status s = fp4_safetensors_open_buffer(data, (int64_t)size, "fuzz", &st);
    if (s != FP4_OK) {
        if ((s != FP4_ERR_INVALID_ARGUMENT && s != FP4_ERR_OUT_OF_MEMORY) || st != NULL ||
            !fp4_last_error(NULL)[0])
            abort();
        return 0;
    }
    check_accepted(st, data, size);
    fp4_safetensors_close(st);
    return 0;
}

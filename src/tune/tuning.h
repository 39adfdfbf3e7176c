/*
 * tuning.h - the tuned table of a context and its cache file (src/tune/tuning_table.c,
 * tuning_file.c) and the autotuner (autotune.c). Not installed. docs/tuning.md describes the
 * file format and the rules.
 */
#ifndef FP4_TUNING_H
#define FP4_TUNING_H

#include "internal.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FP4_TUNING_FORMAT_VERSION 1
#define FP4_TUNING_MAX_FILE_BYTES (16 << 20)
#define FP4_TUNING_MAX_LINE 4096
#define FP4_TUNING_MAX_ENTRIES 100000

/* The bucket key of a prepared descriptor. */
void fp4_tuning_key_of(const fp4_gemm_desc *desc, fp4_tuning_key *key);

/* The slot of key, or NULL: no allocation, no logging (fp4_gemm's hot path). */
const fp4_tuning_slot *fp4_tuning_find(const fp4_tuning_table *table, const fp4_tuning_key *key);

/* Inserts or replaces key's entry (may grow the table). FP4_OK or FP4_ERR_OUT_OF_MEMORY
 * (recorded in ctx). */
fp4_status fp4_tuning_put(fp4_ctx *ctx, const fp4_tuning_key *key, fp4_tactic tactic, double us);

/* Frees the table's memory (fp4_destroy). */
void fp4_tuning_free(fp4_tuning_table *table);

/* The device part of the key as it appears in a file: the name with '"', '\\' and control
 * characters replaced by '_' (at most 255 bytes). */
void fp4_tuning_device_name(const fp4_ctx *ctx, char *buf, size_t len);

/* fp4_create: loads FP4GEMM_TUNING_FILE if set (a failure is a warning). */
void fp4_tuning_load_env(fp4_ctx *ctx);

/* fp4_gemm in FP4_AUTOTUNE_ON_FIRST_USE mode: tunes desc's bucket if it has no entry. FP4_OK
 * also when tuning found nothing (the bucket then holds the heuristic's tactic). */
fp4_status fp4_tuning_first_use(fp4_ctx *ctx, const fp4_gemm_desc *desc);

#ifdef __cplusplus
}
#endif
#endif /* FP4_TUNING_H */

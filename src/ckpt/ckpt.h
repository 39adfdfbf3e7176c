/* ckpt.h - what the checkpoint files (src/ckpt/) share: the open checkpoint and the dtype
 * table. The format and its checks are in include/fp4gemm.h ("Checkpoints"). */
#ifndef FP4_CKPT_H
#define FP4_CKPT_H

#include "internal.h"

#include <stddef.h>
#include <stdint.h>

#define FP4_ST_NO_CJSON                                                                    \
    "built without cJSON: the safetensors reader and writer are not available (install "  \
    "libcjson-dev and rebuild)"

/* One mapped file of a checkpoint. */
typedef struct fp4_st_shard {
    char *path;          /* as opened (or the buffer's origin) */
    const uint8_t *base; /* the whole file */
    int64_t size;
    int mapped;          /* 1: munmap base at close; 0: a caller's buffer */
} fp4_st_shard;

struct fp4_safetensors {
    fp4_st_shard *shards;
    int n_shards;
    fp4_st_tensor *tensors; /* sorted by name; names in `names` */
    int64_t count;
    char **names;           /* count strings (owned) */
    char **meta;            /* 2 * n_meta strings: key, value (owned) */
    int64_t n_meta;
};

/* Appends the tensors and (when the checkpoint has none yet) the metadata of one mapped file
 * to st, after validating its whole header. FP4_OK, or the failure recorded in
 * fp4_last_error(NULL) naming `shard->path`. (safetensors.c) */
fp4_status fp4_st_parse_file(fp4_safetensors *st, int shard_index);
/* Sorts st's tensors by name and rejects duplicates (safetensors.c). */
fp4_status fp4_st_finish(fp4_safetensors *st);

/* Dtype by its safetensors name ("F32"): 0 and *out set, or -1. */
int fp4_st_dtype_parse(const char *name, fp4_st_dtype *out);

#endif /* FP4_CKPT_H */

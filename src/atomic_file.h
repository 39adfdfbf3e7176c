/* atomic_file.h - a file written whole or not at all (src/atomic_file.c), for the library's
 * own writers: the tuning file (src/tune/tuning_file.c) and the safetensors writer
 * (src/ckpt/st_write.c). Not installed. */
#ifndef FP4_ATOMIC_FILE_H
#define FP4_ATOMIC_FILE_H

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The step that failed, for the caller's message. */
typedef enum fp4_atomic_step {
    FP4_ATOMIC_CREATE, /* mkstemp: no temporary could be made in the target's folder */
    FP4_ATOMIC_OPEN,   /* fdopen of the temporary (tmp names it; it is removed already) */
    FP4_ATOMIC_WRITE,  /* the caller's writes, fflush, fsync or fclose */
    FP4_ATOMIC_RENAME  /* the rename over the target */
} fp4_atomic_step;

typedef struct fp4_atomic_file {
    FILE *f;              /* the temporary, open for writing */
    char tmp[4200];       /* its name: ".NAME.XXXXXX" in the target's folder */
    fp4_atomic_step step; /* set when a call fails */
} fp4_atomic_file;

/* Creates the temporary for `path` (mode 0644: mkstemp's 0600 would hide a cache or a
 * checkpoint from other users) and opens it in af->f. 0, or an errno value with af->step
 * CREATE or OPEN and nothing left on disk. */
int fp4_atomic_begin(fp4_atomic_file *af, const char *path);

/* Ends what fp4_atomic_begin started. write_err: 0 when the caller's writes to af->f went
 * well, else the errno of the one that failed. Flushes the temporary to disk (fflush, fsync),
 * closes it and renames it over path; on any failure, or a write_err, it is removed and path
 * is left as it was. 0, or an errno value (never 0 on failure: EIO when errno had none) with
 * af->step WRITE or RENAME. */
int fp4_atomic_finish(fp4_atomic_file *af, const char *path, int write_err);

#ifdef __cplusplus
}
#endif
#endif /* FP4_ATOMIC_FILE_H */

/* atomic_file.c - write to a temporary in the target's folder (so that rename is atomic),
 * flush it to disk, rename it over the target: a reader sees the old file or the new one,
 * never half of one, and a failure leaves the old file as it was. atomic_file.h. */
#define _POSIX_C_SOURCE 200809L
#include "atomic_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fp4_atomic_begin(fp4_atomic_file *af, const char *path) {
    af->f = NULL;
    af->step = FP4_ATOMIC_CREATE;
    const char *slash = strrchr(path, '/');
    const int dir_len = slash ? (int)(slash - path + 1) : 0;
    const int n = snprintf(af->tmp, sizeof af->tmp, "%.*s.%s.XXXXXX", dir_len, path,
                           slash ? slash + 1 : path);
    if (n < 0 || (size_t)n >= sizeof af->tmp) return ENAMETOOLONG;
    const int fd = mkstemp(af->tmp);
    if (fd < 0) return errno ? errno : EIO;
    (void)fchmod(fd, 0644);
    af->f = fdopen(fd, "wb");
    if (!af->f) {
        const int err = errno ? errno : EIO;
        close(fd);
        unlink(af->tmp);
        af->step = FP4_ATOMIC_OPEN;
        return err;
    }
    return 0;
}

int fp4_atomic_finish(fp4_atomic_file *af, const char *path, int write_err) {
    int err = write_err;
    af->step = FP4_ATOMIC_WRITE;
    /* a write that failed earlier (ferror) left its errno: the best account there is of it */
    if (!err && (fflush(af->f) != 0 || ferror(af->f))) err = errno ? errno : EIO;
    if (!err && fsync(fileno(af->f)) != 0) err = errno ? errno : EIO;
    if (fclose(af->f) != 0 && !err) err = errno ? errno : EIO;
    af->f = NULL;
    if (!err && rename(af->tmp, path) != 0) {
        err = errno ? errno : EIO;
        af->step = FP4_ATOMIC_RENAME;
    }
    if (err) unlink(af->tmp);
    return err;
}

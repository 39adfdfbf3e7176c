/* cli_files.c - the tool's output files, made safe (issue 7, point 9):
 *   - a regular file (or a new one) is written to a unique temporary in the same folder
 *     (".NAME.XXXXXX", mkstemp), flushed to disk, then renamed over PATH: a reader never sees
 *     a half-written file, a failed or killed run never leaves a fixed-name PATH.tmp, and what
 *     the user had is replaced only once every output of the command is complete;
 *   - a special file (/dev/null, a FIFO, a terminal, a socket) is written in place, never
 *     replaced;
 *   - a symlink is followed deliberately: the file it points to is replaced, the link stays
 *     (a link to a missing file is refused: where to create it is ambiguous);
 *   - "-" is stdout (the command's messages then go to stderr);
 *   - two outputs of one command naming the same file are refused before anything runs, and
 *     so is an output that is one of the command's inputs (quantize --in x --out-q x).
 */
#define _XOPEN_SOURCE 700 /* realpath, mkstemp, fchmod */

#include "cli_util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static FILE *g_msg; /* NULL: stdout */

FILE *cli_msg(void) { return g_msg ? g_msg : stdout; }

int cli_say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const int n = vfprintf(cli_msg(), fmt, ap);
    va_end(ap);
    return n;
}

/* ---- where an output goes ------------------------------------------------------------------ */

typedef enum target_kind { TARGET_STDOUT, TARGET_SPECIAL, TARGET_REPLACE } target_kind;

typedef struct target {
    target_kind kind;
    char path[PATH_MAX];     /* the file written or replaced (the symlink's target) */
    char tmp[PATH_MAX + 16]; /* TARGET_REPLACE: the temporary, "" when none is open */
    int fd;
    mode_t mode;             /* of the replaced file, or 0666 & ~umask for a new one */
} target;

/* Splits path into its folder ("." when it has none) and its last component. */
static void split_path(const char *path, char *dir, size_t dir_len, const char **base) {
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(dir, dir_len, ".");
        *base = path;
    } else if (slash == path) {
        snprintf(dir, dir_len, "/");
        *base = slash + 1;
    } else {
        snprintf(dir, dir_len, "%.*s", (int)(slash - path), path);
        *base = slash + 1;
    }
}

/* Fills t for `path`. CLI_OK, or the error printed and CLI_FAIL. */
static int resolve(const char *cmd, const char *path, target *t) {
    memset(t, 0, sizeof *t);
    t->fd = -1;
    if (strcmp(path, "-") == 0) {
        t->kind = TARGET_STDOUT;
        snprintf(t->path, sizeof t->path, "-");
        return CLI_OK;
    }
    if (!*path) return cli_fail(cmd, CLI_FAIL, "an empty output path");
    if (strlen(path) >= sizeof t->path) return cli_fail(cmd, CLI_FAIL, "%s: path too long", path);
    struct stat ls, st;
    const int have = lstat(path, &ls) == 0;
    if (have && stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
        /* a special file, also behind a link (/dev/stdout -> a pipe): written in place */
        t->kind = TARGET_SPECIAL;
        snprintf(t->path, sizeof t->path, "%s", path);
        return CLI_OK;
    }
    if (have && S_ISLNK(ls.st_mode)) {
        char *real = realpath(path, NULL);
        if (!real)
            return cli_fail(cmd, CLI_FAIL, "%s: a symlink to a missing file (%s): give the "
                            "target's path", path, strerror(errno));
        snprintf(t->path, sizeof t->path, "%s", real);
        free(real);
    } else {
        snprintf(t->path, sizeof t->path, "%s", path);
    }
    if (stat(t->path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) return cli_fail(cmd, CLI_FAIL, "%s: is a directory", path);
        if (!S_ISREG(st.st_mode)) {
            t->kind = TARGET_SPECIAL; /* /dev/null, a FIFO, a terminal: written in place */
            return CLI_OK;
        }
        t->mode = st.st_mode & 07777;
    } else {
        const mode_t mask = umask(0);
        umask(mask);
        t->mode = 0666 & ~mask;
    }
    t->kind = TARGET_REPLACE;
    return CLI_OK;
}

/* ---- the temporaries: removed if the process is interrupted -------------------------------- */

#define MAX_OUTPUTS 8
static char g_tmp_names[MAX_OUTPUTS][PATH_MAX + 16];
static volatile sig_atomic_t g_tmp_count;

static void remove_temporaries_and_die(int sig) {
    for (int i = 0; i < g_tmp_count; i++)
        if (g_tmp_names[i][0]) unlink(g_tmp_names[i]); /* async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig);
}

static void guard_signals(int on) {
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on ? remove_temporaries_and_die : SIG_DFL;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
}

static int write_all(int fd, const void *data, int64_t bytes) {
    const char *p = data;
    while (bytes > 0) {
        const size_t chunk = bytes > (1 << 30) ? (size_t)1 << 30 : (size_t)bytes;
        const ssize_t n = write(fd, p, chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n;
        bytes -= n;
    }
    return 0;
}

/* Creates t's temporary and writes data to it. CLI_OK or CLI_FAIL (printed; nothing left). */
static int write_temporary(const char *cmd, const char *shown, target *t, int slot,
                           const void *data, int64_t bytes) {
    char dir[PATH_MAX];
    const char *base;
    split_path(t->path, dir, sizeof dir, &base);
    if (snprintf(t->tmp, sizeof t->tmp, "%s/.%s.XXXXXX", dir, base) >= (int)sizeof t->tmp)
        return cli_fail(cmd, CLI_FAIL, "%s: path too long", shown);
    const int fd = mkstemp(t->tmp);
    if (fd < 0) {
        const int err = errno;
        t->tmp[0] = 0;
        return cli_fail(cmd, CLI_FAIL, "cannot write %s (a temporary in %s): %s", shown, dir,
                        strerror(err));
    }
    snprintf(g_tmp_names[slot], sizeof g_tmp_names[slot], "%s", t->tmp);
    int ok = fchmod(fd, t->mode) == 0 && write_all(fd, data, bytes) == 0 && fsync(fd) == 0;
    const int err = errno;
    ok = close(fd) == 0 && ok;
    if (!ok) {
        unlink(t->tmp);
        t->tmp[0] = 0;
        return cli_fail(cmd, CLI_FAIL, "%s: write failed: %s (nothing written)", shown,
                        strerror(err ? err : EIO));
    }
    return CLI_OK;
}

static int write_in_place(const char *cmd, const char *shown, const target *t, const void *data,
                          int64_t bytes) {
    if (t->kind == TARGET_STDOUT) {
        fflush(stdout);
        if (write_all(STDOUT_FILENO, data, bytes) != 0)
            return cli_fail(cmd, CLI_FAIL, "writing to stdout: %s", strerror(errno));
        return CLI_OK;
    }
    const int fd = open(t->path, O_WRONLY | O_TRUNC);
    if (fd < 0) return cli_fail(cmd, CLI_FAIL, "cannot write %s: %s", shown, strerror(errno));
    int ok = write_all(fd, data, bytes) == 0;
    const int err = errno;
    ok = close(fd) == 0 && ok;
    return ok ? CLI_OK
              : cli_fail(cmd, CLI_FAIL, "%s: write failed: %s", shown, strerror(err ? err : EIO));
}

int cli_write_files(const char *cmd, const cli_output *outs, int n) {
    if (n < 1 || n > MAX_OUTPUTS) return cli_fail(cmd, CLI_FAIL, "internal: %d outputs", n);
    target t[MAX_OUTPUTS];
    for (int i = 0; i < n; i++)
        if (resolve(cmd, outs[i].path, &t[i]) != CLI_OK) return CLI_FAIL;
    /* 1. every replaced file's new content, complete, in its temporary */
    memset(g_tmp_names, 0, sizeof g_tmp_names);
    g_tmp_count = n;
    guard_signals(1);
    int rc = CLI_OK;
    for (int i = 0; i < n && rc == CLI_OK; i++)
        if (t[i].kind == TARGET_REPLACE)
            rc = write_temporary(cmd, outs[i].path, &t[i], i, outs[i].data, outs[i].bytes);
    /* 2. the special files and stdout, which can't be taken back */
    for (int i = 0; i < n && rc == CLI_OK; i++)
        if (t[i].kind != TARGET_REPLACE)
            rc = write_in_place(cmd, outs[i].path, &t[i], outs[i].data, outs[i].bytes);
    /* 3. the renames (or, after a failure, the temporaries removed: the old files stay) */
    for (int i = 0; i < n; i++) {
        if (t[i].kind != TARGET_REPLACE || !t[i].tmp[0]) continue;
        if (rc == CLI_OK && rename(t[i].tmp, t[i].path) != 0)
            rc = cli_fail(cmd, CLI_FAIL, "%s: rename of %s failed: %s", outs[i].path, t[i].tmp,
                          strerror(errno));
        else if (rc == CLI_OK)
            t[i].tmp[0] = 0;
        if (t[i].tmp[0]) unlink(t[i].tmp);
    }
    guard_signals(0);
    g_tmp_count = 0;
    return rc;
}

int cli_write_file(const char *cmd, const char *path, const void *data, int64_t bytes) {
    const cli_output out = {.path = path, .data = data, .bytes = bytes};
    return cli_write_files(cmd, &out, 1);
}

/* ---- checked up front -------------------------------------------------------------------- */

/* A name for the file `path` will write: "-", or the canonical path of the file (the
 * symlink's target; for a new file, the canonical folder plus the name). */
static void canonical(const char *path, char *out, size_t len, struct stat *st, int *exists) {
    *exists = 0;
    if (strcmp(path, "-") == 0) {
        snprintf(out, len, "-");
        return;
    }
    char *real = realpath(path, NULL);
    if (real) {
        snprintf(out, len, "%s", real);
        free(real);
        *exists = stat(path, st) == 0;
        return;
    }
    char dir[PATH_MAX];
    const char *base;
    split_path(path, dir, sizeof dir, &base);
    char *rdir = realpath(dir, NULL);
    snprintf(out, len, "%s/%s", rdir ? rdir : dir, base);
    free(rdir);
}

int cli_check_outputs(const char *cmd, const char *const *paths, const char *const *opts, int n) {
    for (int i = 0; i < n; i++) {
        if (!paths[i]) continue;
        struct stat so, sp;
        if (strcmp(paths[i], "-") == 0 ||
            (fstat(STDOUT_FILENO, &so) == 0 && stat(paths[i], &sp) == 0 &&
             so.st_dev == sp.st_dev && so.st_ino == sp.st_ino))
            g_msg = stderr; /* the output is stdout ("-", /dev/stdout): messages elsewhere */
        for (int j = 0; j < i; j++) {
            if (!paths[j]) continue;
            char a[PATH_MAX + 256], b[PATH_MAX + 256];
            struct stat sa, sb;
            int ea, eb;
            canonical(paths[i], a, sizeof a, &sa, &ea);
            canonical(paths[j], b, sizeof b, &sb, &eb);
            const int same = strcmp(a, b) == 0 ||
                             (ea && eb && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino);
            const int discard = ea && S_ISCHR(sa.st_mode) && strcmp(a, "/dev/null") == 0;
            if (same && !discard)
                return cli_fail(cmd, CLI_USAGE, "%s %s and %s %s are the same file: give each "
                                "output its own path", opts[j], paths[j], opts[i], paths[i]);
        }
    }
    return CLI_OK;
}

int cli_check_inputs(const char *cmd, const char *const *outs, const char *const *out_opts,
                     int n_out, const char *const *ins, const char *const *in_opts, int n_in) {
    for (int i = 0; i < n_out; i++) {
        struct stat so;
        /* a new file, "-", /dev/null or a FIFO can't be a regular input */
        if (!outs[i] || strcmp(outs[i], "-") == 0 || stat(outs[i], &so) != 0 ||
            !S_ISREG(so.st_mode))
            continue;
        for (int j = 0; j < n_in; j++) {
            struct stat si;
            if (ins[j] && stat(ins[j], &si) == 0 && si.st_dev == so.st_dev &&
                si.st_ino == so.st_ino)
                return cli_fail(cmd, CLI_USAGE, "%s %s is the input %s %s: give the output "
                                "its own path", out_opts[i], outs[i], in_opts[j], ins[j]);
        }
    }
    return CLI_OK;
}

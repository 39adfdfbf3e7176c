/* log.c - the library's only way to print: a level and an optional callback.
 *
 * Thread safety (docs/threads.md): everything here is process-wide and may be used from any
 * thread at any time.
 *   - The level is one atomic int. FP4GEMM_LOG_LEVEL is parsed once (pthread_once) when the
 *     level is first needed, unless fp4_set_log_level came first: an explicit level always
 *     wins over the environment.
 *   - The callback and its user pointer are one pair behind a read-write lock: a message is
 *     delivered under the read lock (so callbacks of several threads run at the same time),
 *     fp4_set_log_callback swaps the pair under the write lock. So when fp4_set_log_callback
 *     returns, no call of the old callback is running or will start: its `user` may be freed.
 *   - A message logged from inside the callback on the same thread (the callback called the
 *     library, which logged) is dropped rather than re-entering the lock.
 */
#define _POSIX_C_SOURCE 200809L /* pthread_rwlock_t under -std=c11 */
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

/* The level, or LEVEL_UNSET until it is read from the environment or set. */
enum { LEVEL_UNSET = -100 };
static _Atomic int g_level = LEVEL_UNSET;

static pthread_once_t g_env_once = PTHREAD_ONCE_INIT;
static char g_env_bad[48];          /* a FP4GEMM_LOG_LEVEL that is no level (written once) */
static _Atomic int g_env_bad_pending; /* 1 until the warning about it has been logged */

static pthread_rwlock_t g_fn_lock = PTHREAD_RWLOCK_INITIALIZER;
static fp4_log_fn g_fn;   /* guarded by g_fn_lock */
static void *g_user;      /* guarded by g_fn_lock */
static _Thread_local int g_in_callback;

/* Runs once per process: FP4GEMM_LOG_LEVEL -> g_level, unless a level was set already. */
static void read_env_level(void) { /* fp4_log_level_parse: records and logs nothing (that
                                    * would come back here) */
    fp4_log_level from_env = FP4_LOG_WARN;
    const char *env = getenv("FP4GEMM_LOG_LEVEL");
    if (env && *env && fp4_log_level_parse(env, &from_env) != FP4_OK) {
        from_env = FP4_LOG_WARN;
        snprintf(g_env_bad, sizeof g_env_bad, "%.40s", env);
        atomic_store(&g_env_bad_pending, 1);
    }
    int expected = LEVEL_UNSET; /* a fp4_set_log_level before this wins */
    atomic_compare_exchange_strong(&g_level, &expected, (int)from_env);
}

static fp4_log_level current_level(void) {
    pthread_once(&g_env_once, read_env_level);
    /* the warning is logged outside the once-routine (fp4_log comes back here), by the one
     * thread that takes the pending flag */
    if (atomic_load_explicit(&g_env_bad_pending, memory_order_relaxed) &&
        atomic_exchange(&g_env_bad_pending, 0))
        fp4_log(FP4_LOG_WARN,
                "FP4GEMM_LOG_LEVEL=%s is not a log level (off, error, warn, info, debug; any "
                "case): using warn",
                g_env_bad);
    return (fp4_log_level)atomic_load(&g_level);
}

void fp4_set_log_level(fp4_log_level level) {
    if (level < FP4_LOG_OFF) level = FP4_LOG_OFF;
    if (level > FP4_LOG_DEBUG) level = FP4_LOG_DEBUG;
    atomic_store(&g_level, (int)level);
}

fp4_log_level fp4_get_log_level(void) { return current_level(); }

void fp4_set_log_callback(fp4_log_fn fn, void *user) {
    /* NOTE: called from inside the callback this would wait for itself; the header forbids it,
     * and the thread-local flag turns the deadlock into a no-op. */
    if (g_in_callback) return;
    pthread_rwlock_wrlock(&g_fn_lock);
    g_fn = fn;
    g_user = user;
    pthread_rwlock_unlock(&g_fn_lock);
}

void fp4_log(fp4_log_level level, const char *fmt, ...) {
    if (level == FP4_LOG_OFF || level > current_level() || g_in_callback) return;
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_rwlock_rdlock(&g_fn_lock);
    if (g_fn) {
        g_in_callback = 1;
        g_fn(level, msg, g_user);
        g_in_callback = 0;
    } else {
        /* one fprintf is one locked write on the stream: lines of threads do not interleave */
        fprintf(stderr, "fp4gemm %s: %s\n", fp4_log_level_name(level), msg);
    }
    pthread_rwlock_unlock(&g_fn_lock);
}

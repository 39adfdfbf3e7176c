/* log.c - the library's only way to print: a level and an optional callback. */
#include "internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

/* The level, or LEVEL_UNSET until it is read from the environment or set. Atomic: threads
 * may log while another sets the level. */
enum { LEVEL_UNSET = -100 };
static _Atomic int g_level = LEVEL_UNSET;
static fp4_log_fn g_fn;
static void *g_user;

static fp4_log_level current_level(void) {
    int level = atomic_load(&g_level);
    if (level == LEVEL_UNSET) {
        fp4_log_level from_env = FP4_LOG_WARN;
        const char *env = getenv("FP4GEMM_LOG_LEVEL");
        const int bad = env && *env && fp4_log_level_from_name(env, &from_env) != FP4_OK;
        if (bad) from_env = FP4_LOG_WARN;
        int expected = LEVEL_UNSET;
        /* the first reader wins (and reports a bad value, once); a concurrent
         * fp4_set_log_level wins over both */
        const int first = atomic_compare_exchange_strong(&g_level, &expected, (int)from_env);
        level = atomic_load(&g_level);
        if (first && bad)
            fp4_log(FP4_LOG_WARN,
                    "FP4GEMM_LOG_LEVEL=%.40s is not a log level (off, error, warn, info, debug; "
                    "any case): using warn",
                    env);
    }
    return (fp4_log_level)level;
}

void fp4_set_log_level(fp4_log_level level) {
    if (level < FP4_LOG_OFF) level = FP4_LOG_OFF;
    if (level > FP4_LOG_DEBUG) level = FP4_LOG_DEBUG;
    atomic_store(&g_level, (int)level);
}

fp4_log_level fp4_get_log_level(void) { return current_level(); }

void fp4_set_log_callback(fp4_log_fn fn, void *user) {
    g_fn = fn;
    g_user = user;
}

void fp4_log(fp4_log_level level, const char *fmt, ...) {
    if (level == FP4_LOG_OFF || level > current_level()) return;
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (g_fn) {
        g_fn(level, msg, g_user);
    } else {
        fprintf(stderr, "fp4gemm %s: %s\n", fp4_log_level_name(level), msg);
    }
}

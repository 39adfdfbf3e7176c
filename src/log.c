/* log.c - the library's only way to print: a level and an optional callback. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>

static fp4_log_level g_level;
static int g_level_set; /* 0 until the level was read from the environment or set */
static fp4_log_fn g_fn;
static void *g_user;

static fp4_log_level current_level(void) {
    if (!g_level_set) {
        g_level = FP4_LOG_WARN;
        fp4_log_level from_env;
        const char *env = getenv("FP4GEMM_LOG_LEVEL");
        if (env && fp4_log_level_from_name(env, &from_env) == FP4_OK) g_level = from_env;
        g_level_set = 1;
    }
    return g_level;
}

void fp4_set_log_level(fp4_log_level level) {
    if (level < FP4_LOG_OFF) level = FP4_LOG_OFF;
    if (level > FP4_LOG_DEBUG) level = FP4_LOG_DEBUG;
    g_level = level;
    g_level_set = 1;
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

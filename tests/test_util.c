#include "test_util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>

static const char *g_suite = "test";
static int g_passed, g_failed, g_skipped;

void tu_rng_seed(tu_rng *rng, uint64_t seed) { rng->state = seed; }

uint64_t tu_rng_u64(tu_rng *rng) {
    uint64_t z = (rng->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double tu_rng_uniform(tu_rng *rng) { return (double)(tu_rng_u64(rng) >> 11) * 0x1.0p-53; }

float tu_rng_normal(tu_rng *rng) {
    double u1 = tu_rng_uniform(rng);
    const double u2 = tu_rng_uniform(rng);
    if (u1 < 1e-300) u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

int64_t tu_rng_range(tu_rng *rng, int64_t lo, int64_t hi) {
    return lo + (int64_t)(tu_rng_u64(rng) % (uint64_t)(hi - lo + 1));
}

void tu_fill_activations(tu_rng *rng, float *x, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++) {
        float v = tu_rng_normal(rng) * scale;
        if ((tu_rng_u64(rng) & 63) == 0) v *= 20.0f;
        x[i] = v;
    }
}

void tu_fill_bytes(tu_rng *rng, uint8_t *p, int64_t n) {
    for (int64_t i = 0; i < n; i++) p[i] = (uint8_t)(tu_rng_u64(rng) >> 56);
}

void tu_fill_scales(tu_rng *rng, uint8_t *p, int64_t n, int lo_exp, int hi_exp) {
    for (int64_t i = 0; i < n; i++) {
        /* e4m3 exponent field e in 1..15 is 2^(e-7); mantissa 0..7 (avoid 0x7F, NaN) */
        int e = (int)tu_rng_range(rng, lo_exp + 7, hi_exp + 7);
        if (e < 1) e = 1;
        if (e > 15) e = 15;
        int m = (int)tu_rng_range(rng, 0, 7);
        if (e == 15 && m == 7) m = 6;
        p[i] = (uint8_t)((e << 3) | m);
    }
}

int tu_quick(void) {
    const char *q = getenv("FP4GEMM_TEST_QUICK");
    return q && *q && strcmp(q, "0") != 0;
}

uint64_t tu_seed(uint64_t fallback) {
    const char *s = getenv("FP4GEMM_TEST_SEED");
    if (s && *s) return strtoull(s, NULL, 0);
    return fallback;
}

void tu_begin(const char *suite, uint64_t seed) {
    g_suite = suite;
    printf("%s: seed %llu (set FP4GEMM_TEST_SEED to change)\n", suite, (unsigned long long)seed);
    fflush(stdout);
}

int tu_case(int ok, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf(ok ? " OK\n" : " FAIL\n");
    fflush(stdout);
    if (ok)
        g_passed++;
    else
        g_failed++;
    return ok;
}

void tu_skip(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("SKIP: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    g_skipped++;
}

int tu_finish(void) {
    printf("%s: %d passed, %d failed, %d skipped\n", g_suite, g_passed, g_failed, g_skipped);
    fflush(stdout);
    if (g_failed) return 1;
    if (g_passed == 0 && g_skipped > 0) return 77;
    return 0;
}

int tu_ok(fp4_status st, const fp4_ctx *ctx, const char *what) {
    if (st == FP4_OK) return 1;
    printf("  %s: %s: %s\n", what, fp4_status_name(st), fp4_last_error(ctx));
    return 0;
}

int tu_count_hidden_files(const char *path) {
    DIR *dir = opendir(path);
    if (!dir) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(dir));)
        if (e->d_name[0] == '.' && strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(dir);
    return n;
}

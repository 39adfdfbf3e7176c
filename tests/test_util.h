/*
 * test_util.h - what every test driver shares: a seeded generator, input fillers, one line
 * per case, and the closing "N passed, N failed, N skipped" line. The exit code is the
 * verdict: 0 all passed, 1 a case failed, 77 everything was skipped.
 */
#ifndef FP4_TEST_UTIL_H
#define FP4_TEST_UTIL_H

#include "fp4gemm.h"

#include <stdint.h>

/* splitmix64: small, seedable, the same sequence everywhere. */
typedef struct tu_rng {
    uint64_t state;
} tu_rng;

void tu_rng_seed(tu_rng *rng, uint64_t seed);
uint64_t tu_rng_u64(tu_rng *rng);
double tu_rng_uniform(tu_rng *rng);     /* [0, 1) */
float tu_rng_normal(tu_rng *rng);       /* standard normal */
int64_t tu_rng_range(tu_rng *rng, int64_t lo, int64_t hi); /* [lo, hi] */

/* Activation-like values: normal(0, scale), with about 1 in 64 an outlier 20x larger. */
void tu_fill_activations(tu_rng *rng, float *x, int64_t n, float scale);
/* Random bytes (packed E2M1 codes of every value). */
void tu_fill_bytes(tu_rng *rng, uint8_t *p, int64_t n);
/* Random E4M3 scale bytes, finite and positive, exponents in [lo_exp, hi_exp] (-9..8). */
void tu_fill_scales(tu_rng *rng, uint8_t *p, int64_t n, int lo_exp, int hi_exp);

/* The seed of this run: FP4GEMM_TEST_SEED if set, else `fallback`. Printed by tu_begin. */
uint64_t tu_seed(uint64_t fallback);
/* FP4GEMM_TEST_QUICK set and not "0": the GPU tests' small sizes, for compute-sanitizer. */
int tu_quick(void);
/* Entries of folder `dir` whose names start with '.' (but for . and ..): the temporaries
 * ".NAME.XXXXXX" that src/atomic_file.c's writers leave behind when they fail to clean up.
 * -1 if the folder can't be read. */
int tu_count_hidden_files(const char *dir);
void tu_begin(const char *suite, uint64_t seed);

/* One case: prints "<name> OK" or "<name> FAIL" (name is printf-formatted) and counts it. */
int tu_case(int ok, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Prints "SKIP: <reason>" and counts a skipped case. */
void tu_skip(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* Prints "<suite>: N passed, N failed, N skipped" and returns the exit code. */
int tu_finish(void);

/* Checks a status; on failure prints it with the context's last error and returns 0. */
int tu_ok(fp4_status st, const fp4_ctx *ctx, const char *what);

#endif /* FP4_TEST_UTIL_H */

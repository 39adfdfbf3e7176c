/* tune_shapes.h - the autotuning step that `fp4gemm tune` and `fp4gemm bench --autotune`
 * share (tools/cmd_tune.c). */
#ifndef FP4_TUNE_SHAPES_H
#define FP4_TUNE_SHAPES_H

#include "bench/bench_internal.h"
#include "fp4gemm.h"

typedef struct tune_setup {
    fp4_dtype a_dtype, out_dtype;
    fp4_sf_layout sf_layout;   /* of A and B */
    double budget_seconds;     /* the whole run; 0: none */
    double tactic_seconds;     /* one tactic's timing at most */
    uint64_t seed;
    int quiet;                 /* no per-problem lines on stdout */
} tune_setup;

/* Tunes every shape on ctx (its table gets the winners), with a progress line on stderr
 * (problem i of n, best so far, time left) and one line per problem on cli_msg(). Returns
 * CLI_OK, or CLI_FAIL after a message (a library error; problems that no tactic passed are
 * reported but not failures). *tuned gets how many problems were tuned. */
int tune_shapes(const char *cmd, fp4_ctx *ctx, const bench_shape *shapes, int n,
                const tune_setup *setup, int *tuned);

#endif

/* bench.h - `fp4gemm bench`: the benchmark of every backend against the baselines. */
#ifndef FP4_BENCH_H
#define FP4_BENCH_H

/* Entry point of the subcommand; argv[0] is "bench". Returns the process exit code
 * (0 ok, 1 failure, 2 bad usage). */
int cmd_bench(int argc, char **argv);

#endif

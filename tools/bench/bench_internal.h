/*
 * bench_internal.h - what the files of `fp4gemm bench` share. Not part of the library; the
 * bench includes only the public fp4gemm.h and src/format.h of the library's headers.
 *
 *   bench.c       the command: its options, the run one point at a time, the exit status
 *   options.c     presets, --m-list, --shapes, --providers
 *   providers.c   THE provider table: every fact about a provider is in its one row
 *   report.c      the table, the header, the summary, the roofline, CSV and JSON
 *   svg.c         the SVG chart (speedup over cublas_bf16 vs M, one panel per (N, K))
 *   CUDA only (bench_cuda.h): device.c (the session, provider checks, ceilings),
 *   operands.c (the rotated input sets of a point, the FP8 reference), run.c (per provider:
 *   ready?, checked with fp4_gemm_verify, timed with fp4_measure in --rounds rounds),
 *   cublaslt.c (the cuBLASLt BF16/FP8 plans of the baselines), kernels.cu (the few device
 *   kernels of the bench).
 *
 * The timing method and the tolerance are the library's (fp4_measure, fp4_gemm_verify,
 * fp4_verify_samples): the same for the bench, `fp4gemm gemm` and the autotuner. In a build
 * without CUDA the bench_cuda_* calls are stubs in bench.c that say so.
 */
#ifndef FP4_BENCH_INTERNAL_H
#define FP4_BENCH_INTERNAL_H

#include "fp4gemm.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* the table's rows plus the tactics --providers names: every config of every backend fits */
#define BENCH_MAX_PROVIDERS 48
/* the library's method (fp4gemm.h, fp4_measure), named here for the report */
#define BENCH_MIN_LAUNCHES FP4_MEASURE_MIN_LAUNCHES /* launches in one graph, at least */
#define BENCH_MIN_REPLAYS FP4_MEASURE_MIN_REPLAYS   /* timed graph replays, at least */
#define BENCH_MAX_REPLAYS FP4_MEASURE_MAX_REPLAYS   /* cheap points get more, up to this */
#define BENCH_MAX_SETS FP4_MEASURE_MAX_SETS         /* rotated input sets, at most */
#define BENCH_L2_FACTOR FP4_MEASURE_L2_FACTOR       /* one replay spans >= this many L2s */
#define BENCH_SAMPLES 68        /* sampled output elements checked: 64 random + 4 corners */
#define BENCH_MAX_ROUNDS 20     /* --rounds: timings of each provider at a point, at most */

/* What a provider runs. */
typedef enum bench_kind {
    BENCH_KIND_FP4 = 0,            /* fp4_gemm on one backend (or AUTO): NVFP4 A and B */
    BENCH_KIND_CUBLAS_BF16 = 1,    /* cuBLASLt BF16 GEMM on the dequantized operands */
    BENCH_KIND_CUBLAS_FP8 = 2,     /* cuBLASLt FP8 E4M3 GEMM, per-tensor scales, TN */
    BENCH_KIND_DEQUANT_CUBLAS = 3, /* fp4_dequantize A and B to BF16 + the BF16 GEMM, together */
    BENCH_KIND_CUBLASLT_FP4 = 4,   /* cuBLASLt's NVFP4 GEMM called directly (sm_100+) */
    BENCH_KIND_OPENBLAS_F32 = 5    /* CPU: OpenBLAS sgemm (sgemv at M = 1) on dequantized F32 */
} bench_kind;
#define BENCH_KIND_COUNT 6

/* Where a provider runs: the bench runs either on a GPU or on the CPU (--device cpu). */
typedef enum bench_where {
    BENCH_WHERE_GPU = 0,
    BENCH_WHERE_CPU = 1,
    BENCH_WHERE_BOTH = 2 /* auto */
} bench_where;

/* The compute ceiling a provider's roof% is measured against. */
typedef enum bench_ceiling {
    BENCH_CEIL_BF16 = 0, /* cuBLASLt BF16 8192^3: NVFP4 on Hopper decodes to BF16/F16 MMAs */
    BENCH_CEIL_FP8 = 1   /* cuBLASLt FP8 8192^3: FP8 tensor cores run twice as fast */
    /* on the CPU every provider has the one compute ceiling, the measured FP32 FMA peak, kept
     * where the BF16 one is on a GPU (bench_device.bf16_tflops) and named "f32_fma" */
} bench_ceiling;

/* One row of the provider table (providers.c). */
typedef struct bench_provider {
    char name[48];         /* "cuda_wgmma", "auto", "cublas_bf16", "cuda_simt/gemv_mr8" */
    bench_kind kind;
    fp4_backend backend;   /* BENCH_KIND_FP4 only */
    int config;            /* BENCH_KIND_FP4 only: the backend's config (tactic), -1 heuristic */
    const char *about;     /* what one timed launch is, for --list-providers */
    double in_bytes;       /* input bytes per element of A and B, scales included: NVFP4
                            * 0.5625, FP8 1, BF16 2 (dequant_cublas reads NVFP4) */
    bench_ceiling ceiling; /* the compute ceiling of its roof% */
    const char *svg_style; /* SVG stroke attributes of its line */
    bench_where where;     /* GPU (default) or CPU runs */
} bench_provider;

/* ---- providers.c ---------------------------------------------------------------------- */
/* Copies the table into out (BENCH_MAX_PROVIDERS rows) in the order of the report: the GPU
 * backends, auto, then the baselines. Returns the count. */
int bench_provider_table(bench_provider *out);
/* Input bytes per element of A and B of a kind (the first row of that kind). */
double bench_kind_in_bytes(bench_kind kind);
const char *bench_ceiling_name(bench_ceiling c); /* "bf16", "fp8" */

typedef struct bench_shape {
    int64_t m, n, k;
} bench_shape;

typedef enum bench_status {
    BENCH_OK = 0,      /* checked and timed */
    BENCH_FAILED = 1,  /* wrong output, or an error while running: not timed */
    BENCH_SKIPPED = 2  /* can't run this point here, or too slow for the time budget */
} bench_status;

typedef struct bench_result {
    int provider;          /* index into bench_run.providers */
    bench_shape shape;
    bench_status status;
    int too_slow;          /* SKIPPED because of --max-point-seconds */
    char note[400];        /* the reason of FAILED/SKIPPED, else remarks ("auto: cuda_wgmma") */
    double time_us, p20_us, p80_us; /* per GEMM: replay time / launches */
    double flops, bytes;   /* 2*M*N*K; the operand bytes of this provider (A, B, scales, D) */
    double tflops, gbs, roofline_pct;
    double speedup;        /* time of cublas_bf16 / this time; 0 when not known */
    int launches, sets, replays;
    int graph;             /* 1: timed as CUDA graph replays; 0: plain stream launches */
    int cold;              /* 1: the sets of one replay span >= BENCH_L2_FACTOR L2 sizes */
    const char *roof_ceiling; /* the ceiling roof% used: "bf16", "fp8" or "copy" */
    double roof_ceiling_value; /* its value then: TFLOP/s, or GB/s for copy */
    double check_max_err;  /* max |out - ref| / tolerance over the samples (<= 1 passes) */
    double check_rel_l2;   /* ||out - ref|| / ||ref|| over the samples */
    double fp8_vs_nvfp4;   /* cublas_fp8 only: rel L2 distance to the NVFP4 reference */
} bench_result;

typedef struct bench_options {
    bench_shape *shapes;
    int nshapes;
    const char *preset;     /* NULL with --shapes */
    char m_list_text[256];  /* the M list as given, for the record */
    const char *providers;  /* --providers, NULL for the default */
    fp4_dtype out_dtype;
    int device;
    uint64_t seed;
    double max_point_seconds;
    int min_replays;
    int rounds;             /* --rounds, 1..BENCH_MAX_ROUNDS: each provider timed this often
                             * per point, in turn; a row is its median round */
    const char *csv_path, *json_path, *svg_path;
    int progress;           /* stderr is a terminal */
} bench_options;

typedef struct bench_device {
    char name[256];
    int device, cc, sm_count;
    int sm_clock_mhz, mem_clock_mhz; /* 0 if unknown */
    int64_t l2_bytes, memory_bytes, free_bytes;
    int runtime_version, driver_version;
    long cublaslt_version;
    /* On the CPU (device -1): name = the CPU model, sm_count = threads, l2_bytes = the
     * last-level cache, copy_gbs = DRAM read bandwidth, bf16_tflops = the FP32 FMA peak. */
    double copy_gbs;        /* measured: device-to-device copy, bytes read + written */
    int64_t copy_bytes;
    double bf16_tflops;     /* measured: cuBLASLt BF16 8192^3 on random data */
    double fp8_tflops;      /* measured: cuBLASLt FP8 E4M3 8192^3 on random data (0: none) */
    char ceiling_note[256]; /* why a ceiling is missing */
    /* the library's own memory-bound kernels on one BF16 [quant_rows, quant_k] tensor:
     * bytes read + written per second (0 if not measured) */
    int64_t quant_rows, quant_k;
    double amax_gbs, quant_gbs, dequant_gbs;
    /* decode-size quantize (BF16 1 x 4096 and 16 x 16384, swizzled) against an empty kernel,
     * each timed the same way (graph replays): microseconds per call (0 if not measured) */
    double quant_1x4096_us, quant_16x16384_us, empty_kernel_us;
} bench_device;

/* Everything an output (table, CSV, JSON, SVG) needs. */
typedef struct bench_run {
    const bench_options *opt;
    bench_device dev;
    char date[64];          /* "2026-11-28 12:00:00 UTC" */
    bench_provider providers[BENCH_MAX_PROVIDERS];
    int nproviders;
    char unavailable[BENCH_MAX_PROVIDERS][320]; /* "cublaslt: <why>" */
    int nunavailable;
    bench_result *results;
    int nresults, cap;
    int point_index, npoints; /* for the progress line */
    double wall_seconds;
    int aborted;            /* the CUDA context broke: the run stopped early */
    char abort_reason[512];
    /* the roofline's ceilings: the measured ones, raised to any rate a row achieved above
     * them (so that roof% <= 100% by construction); a note says which were raised */
    double roof_bf16_tflops, roof_fp8_tflops, roof_copy_gbs;
    char roof_note[256];
    int on_cpu;             /* the run is on the CPU: baseline openblas_f32, CPU ceilings */
    char cpu_facts[512];    /* on the CPU: threads, SIMD, OPENBLAS_CORETYPE, OpenBLAS build */
} bench_run;

/* The name of the baseline speedups are taken over: cublas_bf16, or openblas_f32 on the CPU. */
const char *bench_baseline_name(const bench_run *run);

/* Index of the provider named cublas_bf16 in run, or -1. */
int bench_baseline_index(const bench_run *run);

/* A growing text (CSV, JSON, SVG), written to its file in one go. On out-of-memory `failed`
 * is set and later appends are dropped. */
typedef struct bench_text {
    char *data;
    size_t len, cap;
    int failed;
} bench_text;

void bench_text_printf(bench_text *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Appends s with the XML escapes (&, <, >, "). */
void bench_text_xml(bench_text *t, const char *s);
void bench_text_free(bench_text *t);

/* ---- report.c --------------------------------------------------------------------------- */
/* The text outputs; CSV/JSON/SVG text is built in a bench_text and written with
 * cli_write_file. */
void bench_print_header(const bench_run *run, const char *shapes_text);
void bench_print_table_header(const bench_run *run);
void bench_print_row(const bench_run *run, const bench_result *r);
void bench_print_summary(const bench_run *run);
void bench_write_csv(const bench_run *run, bench_text *t);
void bench_write_json(const bench_run *run, const char *shapes_text, bench_text *t);
/* Speedups over the point's cublas_bf16 row, for the rows [first, first + count). */
void bench_fill_speedups(bench_run *run, int first, int count);
/* The roofline of a timed row: roof% = max(flops / compute ceiling, bytes / copy ceiling) /
 * time, with the provider's compute ceiling (FP8 for FP8 providers); a ceiling below what
 * the row achieved is first raised to it (run->roof_note says so), so roof% <= 100%. */
void bench_fill_roofline(bench_run *run, bench_result *r);
const char *bench_status_name(bench_status s);

/* ---- options.c ---------------------------------------------------------------------------- */
extern const char *bench_cmd_name; /* the command its messages name: "bench" (default), "tune" */
/* Fills opt->shapes from --shapes, or from the preset (default llama3.1-8b) x --m-list, and
 * describes them in shapes_text. CLI_OK, or CLI_USAGE/CLI_FAIL after the message. */
int bench_make_shapes(const char *shapes_arg, const char *preset_name, const char *m_list,
                      bench_options *opt, char *shapes_text, size_t len);
/* Parses --providers into indexes of the table. A tactic name ("cuda_simt/gemv_mr8") that is
 * not a row adds one to the table (*n grows, at most BENCH_MAX_PROVIDERS rows). CLI_OK or
 * CLI_USAGE after the message. */
int bench_parse_providers(const char *text, bench_provider *table, int *n, int *chosen,
                          int *nchosen);

/* ---- svg.c ---------------------------------------------------------------------------- */
/* Draws the chart into t. */
void bench_svg(const bench_run *run, bench_text *t);

/* ---- device.c, run.c (CUDA; stubs in bench.c without CUDA) ------------------------------- */
typedef struct bench_cuda bench_cuda;

/* Opens the device (context, stream, cuBLASLt, events) and fills dev (not the ceilings).
 * Returns 0, or -1 with the reason in why. */
int bench_cuda_open(int device, bench_device *dev, bench_cuda **out, char *why, size_t why_len);
void bench_cuda_close(bench_cuda *bc); /* accepts NULL */
/* The fp4gemm context the session's fp4 providers run on (its tuned table: --autotune). */
fp4_ctx *bench_cuda_context(bench_cuda *bc);
/* Can `p` run on this device at all? 0 if so, else -1 and why. */
int bench_cuda_provider_check(bench_cuda *bc, const bench_provider *p, char *why, size_t why_len);
/* Measures the copy bandwidth and the cuBLASLt BF16 and FP8 rates into dev. Returns 0, or -1 if the
 * CUDA context broke (a missing ceiling alone is not an error: see dev->ceiling_note). */
int bench_cuda_ceilings(bench_cuda *bc, bench_device *dev, char *why, size_t why_len);
/* Runs every provider of run on one shape, appending one result per provider to run.
 * Returns 0, or -1 if the CUDA context broke (the run must stop; why says how). */
int bench_cuda_point(bench_cuda *bc, bench_run *run, bench_shape shape, char *why,
                     size_t why_len);

/* ---- cpu.c: the same session on the CPU (device -1) ------------------------------------------ */
typedef struct bench_cpu bench_cpu;
int bench_cpu_open(bench_device *dev, bench_cpu **out, char *why, size_t why_len);
void bench_cpu_close(bench_cpu *bc); /* accepts NULL */
/* One line: kernel set, threads, OPENBLAS_CORETYPE, the OpenBLAS build (or "not built"). */
const char *bench_cpu_facts(bench_cpu *bc, char *buf, size_t len);
int bench_cpu_provider_check(bench_cpu *bc, const bench_provider *p, char *why, size_t why_len);
int bench_cpu_ceilings(bench_cpu *bc, bench_device *dev, char *why, size_t why_len);
int bench_cpu_point(bench_cpu *bc, bench_run *run, bench_shape shape, char *why, size_t why_len);

/* ---- bench.c, report.c ---------------------------------------------------------------- */
/* Appends a result (zeroed but for provider and shape) and returns it. NULL without memory. */
bench_result *bench_add_result(bench_run *run, int provider, bench_shape shape);
/* Takes fp4_measure's result into r (GPU and CPU runs alike): SKIPPED with a note when the
 * point would exceed --max-point-seconds (returns 0), else OK with its median, p20, p80 and
 * counts (returns 1). */
int bench_take_measure(bench_result *r, const fp4_measure_result *m, double max_point_seconds);
/* Progress on stderr (only when it is a terminal): "[12/64] M=1024 ... cuda_wgmma round 2/3"
 * (`round` counts from 0 and is printed from 1, only with --rounds > 1). */
void bench_progress(const bench_run *run, const char *provider, bench_shape shape, int round);

/* ---- rounds (--rounds R, report.c): every provider of a point is checked and timed in round
 * 0, in the listed order; those timed are timed again in rounds 1..R-1, the order reversed
 * on every odd round, so that no provider is always first. */
/* The provider timed at step i (0..n-1) of round `round`. */
int bench_round_order(int round, int i, int n);
/* Of n measurements of one provider (rounds over the budget left out), the one whose median
 * is the median of their medians: the lower of the two middle ones for an even count, so that
 * time, p20 and p80 of a row all come from one round. NULL when none was timed. */
const fp4_measure_result *bench_median_round(const fp4_measure_result *rounds, int n);
/* With more than one round, appends to r's note the range of the round medians ("3 rounds:
 * 8.37..9.50 us"), and how many were over the budget. */
void bench_note_rounds(bench_result *r, const fp4_measure_result *rounds, int n);

#endif /* FP4_BENCH_INTERNAL_H */

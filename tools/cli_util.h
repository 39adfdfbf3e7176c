/*
 * cli_util.h - what the subcommands of the `fp4gemm` tool share: one table-driven option
 * parser (with --help generated from the table), strict number parsing, one-line errors,
 * whole-file I/O with safe output files (cli_files.c), a seeded generator, host BF16/F16 conversion, timing.
 *
 * Exit codes of every subcommand: 0 ok, 1 failure, 2 bad usage.
 */
#ifndef FP4_CLI_UTIL_H
#define FP4_CLI_UTIL_H

#include "fp4gemm.h"

#include <stdint.h>
#include <stdio.h>

enum {
    CLI_OK = 0,
    CLI_FAIL = 1,
    CLI_USAGE = 2,
    CLI_RUN = -1 /* cli_parse: the options are good, run the command */
};

/* The largest M, N, K or row count the tool accepts (products are checked separately). */
#define CLI_MAX_DIM INT64_C(2147483647)

/* ---- errors: one line on stderr, "fp4gemm <cmd>: <message>" ------------------------------ */

/* Prints the message and returns `code`, so that `return cli_fail(cmd, CLI_USAGE, ...)`. */
int cli_fail(const char *cmd, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* A failed library call: "fp4gemm <cmd>: <what>: <fp4_last_error> [FP4_ERR_...]". Returns 1. */
int cli_lib_fail(const char *cmd, const char *what, fp4_status st, const fp4_ctx *ctx);

/* ---- options ----------------------------------------------------------------------------- */

typedef enum cli_kind {
    CLI_FLAG,    /* int: 1 when given; takes no value */
    CLI_INT,     /* int64_t in [min, max] */
    CLI_FLOAT,   /* float: finite and > 0 (decimal, C hex float, or 0x + 8 digits: f32 bits) */
    CLI_STRING,  /* const char *: non-empty */
    CLI_STRINGS, /* cli_strings: a repeatable non-empty string, each one appended */
    CLI_DEVICE,  /* int: "cpu" or -1 for the CPU, 0.. a CUDA device */
    CLI_TACTIC,  /* fp4_tactic: "auto", a backend or "backend/config" (fp4_tactic_from_name) */
    CLI_DTYPE,   /* fp4_dtype, by name; only those whose bit (1 << dtype) is in `allowed` */
    CLI_LAYOUT   /* fp4_sf_layout: "swizzled" or "linear" */
} cli_kind;

#define CLI_DT(d) (1u << (d))
#define CLI_DT_FLOATS (CLI_DT(FP4_DTYPE_F32) | CLI_DT(FP4_DTYPE_F16) | CLI_DT(FP4_DTYPE_BF16))
#define CLI_DT_HALVES (CLI_DT(FP4_DTYPE_F16) | CLI_DT(FP4_DTYPE_BF16))

/* The values of a CLI_STRINGS option, in the order given: at most `cap` (more: a usage error). */
typedef struct cli_strings {
    const char **items;
    int n, cap;
} cli_strings;

typedef struct cli_opt {
    const char *name;    /* as typed: "-k" (also "-k16", "-k=16") or "--rows" (also "--rows=16") */
    const char *metavar; /* "K", shown in --help; NULL for a flag */
    cli_kind kind;
    void *dest;          /* where the value goes; its type is given by `kind` */
    const char *help;    /* one or more lines ('\n'), ending with the default */
    int required;
    int64_t min, max;    /* CLI_INT: accepted range */
    unsigned allowed;    /* CLI_DTYPE: accepted dtypes */
    int given;           /* set by cli_parse */
} cli_opt;

typedef struct cli_command {
    const char *name;    /* "gemm" */
    const char *usage;   /* "-m M -n N -k K [options]" */
    const char *about;   /* what the command does, a few lines */
    cli_opt *opts;
    int n_opts;
    const char *notes;   /* printed after the options, or NULL */
} cli_command;

/* Parses argv[1..argc-1] (argv[0] is the command name) into the options' destinations.
 * Returns CLI_RUN when the command should run, CLI_OK after printing --help, or CLI_USAGE
 * after printing one error line. */
int cli_parse(cli_command *cmd, int argc, char **argv);
void cli_print_help(const cli_command *cmd, FILE *out);
/* The option named `name` of cmd (a programming error aborts if there is none). */
cli_opt *cli_find(cli_command *cmd, const char *name);

/* Strict conversions: the whole text, no blanks, no overflow. 0 on success, else -1 with
 * the reason in *why ("not an integer", ...). */
int cli_parse_i64(const char *text, int64_t min, int64_t max, int64_t *out, const char **why);
/* A finite f32 > 0: decimal or C hex float (denormals kept), or "0x" and exactly 8 hex
 * digits, read as the f32 bits (what the tool prints as "f32 bits 0x43066666"). */
int cli_parse_positive_float(const char *text, float *out, const char **why);

/* K must be a whole number of 16-element blocks: CLI_OK, or CLI_USAGE after the message
 * "fp4gemm <cmd>: -k 24: K must be a multiple of 16". */
int cli_check_k(const char *cmd, const char *opt, int64_t k);

/* a * b * c as bytes, or -1 (after an error line) when it exceeds what a buffer can be. */
int64_t cli_bytes(const char *cmd, const char *what, int64_t a, int64_t b, int64_t c);

/* ---- memory and files -------------------------------------------------------------------- */

/* malloc that reports: NULL after "fp4gemm <cmd>: out of memory: N bytes for <what>". */
void *cli_alloc(const char *cmd, int64_t bytes, const char *what);
/* Reads `path`, which must hold exactly `bytes` bytes, into a new buffer (*out, to free).
 * `shape` describes the expected size in the error ("[4, 64] f32"). CLI_OK or CLI_FAIL. */
int cli_read_file(const char *cmd, const char *path, int64_t bytes, const char *shape,
                  void **out);
/* Output files (tools/cli_files.c): a regular or new PATH is written to a unique temporary
 * in its folder and renamed over PATH once complete; a special file (/dev/null, a FIFO) is
 * written in place; a symlink is followed (its target replaced, the link kept; a dangling
 * one refused); "-" is stdout. CLI_OK, or CLI_FAIL after the message, PATH untouched. */
int cli_write_file(const char *cmd, const char *path, const void *data, int64_t bytes);

typedef struct cli_output {
    const char *path;
    const void *data;
    int64_t bytes;
} cli_output;

/* All n outputs of a command, or none: every temporary is complete before the first rename,
 * and a failure removes them all, so the user's older files stay as they were. */
int cli_write_files(const char *cmd, const cli_output *outs, int n);

/* Up front, before any work: refuses (CLI_USAGE, one line naming both options) two outputs
 * that are the same file (the same name, another spelling, a symlink or hard link to it;
 * /dev/null twice is allowed). opts[i] names the option of paths[i]; NULL paths are skipped.
 * An output "-" (or another name of stdout, /dev/stdout) sends the command's messages to
 * stderr from now on (see cli_msg). */
int cli_check_outputs(const char *cmd, const char *const *paths, const char *const *opts, int n);
/* Up front too: refuses (CLI_USAGE, one line naming both options) an output that is the same
 * file as one of the command's inputs (any spelling, a symlink or hard link to it), which
 * would be replaced by the command's result. NULL paths are skipped. */
int cli_check_inputs(const char *cmd, const char *const *outs, const char *const *out_opts,
                     int n_out, const char *const *ins, const char *const *in_opts, int n_in);

/* Where a command's messages go: stdout, or stderr when an output is stdout ("-"). */
FILE *cli_msg(void);
/* printf to cli_msg(). */
int cli_say(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* fp4_malloc + fp4_upload: a copy of host[bytes] in the context's memory, in *dev. */
fp4_status cli_upload_new(fp4_ctx *ctx, const void *host, int64_t bytes, void **dev);

/* ---- random inputs ----------------------------------------------------------------------- */

/* splitmix64 with Box-Muller normals: the same sequence on every machine. */
typedef struct cli_rng {
    uint64_t state;
    int has_spare;
    double spare;
} cli_rng;

void cli_rng_seed(cli_rng *rng, uint64_t seed);
uint64_t cli_rng_u64(cli_rng *rng);
double cli_rng_uniform(cli_rng *rng); /* [0, 1) */
double cli_rng_normal(cli_rng *rng);  /* standard normal */
/* normal(0, scale) values; about 1 in 64 is an outlier 20x larger, as activations have. */
void cli_fill_normal(cli_rng *rng, float *x, int64_t n, float scale);

/* ---- host conversions (round to nearest even) -------------------------------------------- */

uint16_t cli_f32_to_bf16(float x);
uint16_t cli_f32_to_f16(float x);
float cli_bf16_to_f32(uint16_t h);
float cli_f16_to_f32(uint16_t h);
/* dst[i] = src[i] in dtype (F32, F16 or BF16). */
void cli_store_floats(const float *src, int64_t n, fp4_dtype dtype, void *dst);
/* Element i of an F32, F16 or BF16 array, as float. */
float cli_load_float(const void *src, fp4_dtype dtype, int64_t i);
uint32_t cli_f32_bits(float x);

/* What fp4_gemm would run for desc (desc->backend and config, else the library's override
 * from the environment, else the policy; desc NULL: a generic problem), as fp4_gemm_select
 * says: the tactic, its name ("cuda_simt/gemv_mr8") and why, in words. The tool never reads
 * the environment itself. */
fp4_status cli_select(fp4_ctx *ctx, const fp4_gemm_desc *desc, fp4_tactic *out, char *name,
                      size_t name_len, char *why, size_t why_len);

/* ---- devices and time -------------------------------------------------------------------- */

/* The first CUDA device if there is one, else -1 (the CPU). */
int cli_default_device(void);
/* "CPU" or "NVIDIA H100 80GB HBM3 (sm_90, device 0)". */
void cli_describe_device(int device, char *buf, size_t len);
double cli_seconds(void); /* monotonic wall clock */
/* The automatic-selection order for a compute capability (0: the CPU), from the library's
 * table: "cuda_wgmma > cuda_mma > cuda_simt". */
void cli_policy_string(int compute_capability, char *buf, size_t len);

#endif /* FP4_CLI_UTIL_H */

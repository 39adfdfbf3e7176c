/* cli_util.c - option parsing, numbers, files, random inputs, conversions and timing for
 * the fp4gemm tool's subcommands. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, stat */

#include "cli_util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* ---- errors ------------------------------------------------------------------------------ */

int cli_fail(const char *cmd, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fp4gemm %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

int cli_lib_fail(const char *cmd, const char *what, fp4_status st, const fp4_ctx *ctx) {
    const char *detail = fp4_last_error(ctx);
    if (!detail || !*detail) detail = fp4_status_message(st);
    return cli_fail(cmd, CLI_FAIL, "%s: %s [%s]", what, detail, fp4_status_name(st));
}

/* ---- numbers ----------------------------------------------------------------------------- */

int cli_parse_i64(const char *text, int64_t min, int64_t max, int64_t *out, const char **why) {
    static char range[96];
    if (!*text || isspace((unsigned char)text[0])) {
        *why = "not an integer";
        return -1;
    }
    char *end = NULL;
    errno = 0;
    const long long v = strtoll(text, &end, 10);
    if (end == text || *end) {
        *why = "not an integer";
        return -1;
    }
    if (errno == ERANGE || v < min || v > max) {
        if (max == INT64_MAX)
            snprintf(range, sizeof range, "must be >= %lld", (long long)min);
        else
            snprintf(range, sizeof range, "must be between %lld and %lld", (long long)min,
                     (long long)max);
        *why = range;
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

int cli_parse_positive_float(const char *text, float *out, const char **why) {
    char *end = NULL;
    if (!*text || isspace((unsigned char)text[0])) {
        *why = "not a number";
        return -1;
    }
    float v;
    if ((text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) && !strpbrk(text, "pP")) {
        /* "0x43066666": the f32 bits, as the tool prints them ("f32 bits 0x43066666") */
        size_t digits = 0;
        while (isxdigit((unsigned char)text[2 + digits])) digits++;
        if (digits != 8 || text[2 + digits]) {
            *why = "a hex value must be the 8 hex digits of the f32 bits (0x43066666, as "
                   "'quantize' prints them) or a C hex float with a p exponent (0x1.0cp+7)";
            return -1;
        }
        const uint32_t bits = (uint32_t)strtoul(text + 2, NULL, 16);
        memcpy(&v, &bits, 4);
    } else {
        errno = 0;
        v = strtof(text, &end);
        if (end == text || *end) {
            *why = "not a number";
            return -1;
        }
        /* ERANGE also flags a denormal result, which is a valid f32 and is kept */
        if (errno == ERANGE && v == 0.0f) {
            *why = "underflows to 0 in f32 (the smallest is 1.4e-45)";
            return -1;
        }
        if (errno == ERANGE && isinf(v)) {
            *why = "overflows f32 (the largest is 3.4028235e38)";
            return -1;
        }
    }
    if (!isfinite(v) || !(v > 0.0f)) {
        *why = "must be a finite number > 0";
        return -1;
    }
    *out = v;
    return 0;
}

int cli_check_k(const char *cmd, const char *opt, int64_t k) {
    if (k % 16 == 0) return CLI_OK;
    return cli_fail(cmd, CLI_USAGE, "%s %lld: K must be a multiple of 16 (one E4M3 scale per 16 "
                    "elements)", opt, (long long)k);
}

int64_t cli_bytes(const char *cmd, const char *what, int64_t a, int64_t b, int64_t c) {
    /* a, b <= CLI_MAX_DIM, so a * b fits; c is an element size or 1 */
    const int64_t ab = a * b;
    if (ab > INT64_MAX / 4 / c) {
        cli_fail(cmd, CLI_USAGE, "%s: %lld x %lld elements is too large", what, (long long)a,
                 (long long)b);
        return -1;
    }
    return ab * c;
}

/* ---- options ----------------------------------------------------------------------------- */

static const char *kind_metavar(const cli_opt *o) { return o->metavar ? o->metavar : "VALUE"; }

static void print_wrapped(FILE *out, const char *text, int indent) {
    for (const char *p = text; *p; p++) {
        fputc(*p, out);
        if (*p == '\n' && p[1]) fprintf(out, "%*s", indent, "");
    }
    fputc('\n', out);
}

void cli_print_help(const cli_command *cmd, FILE *out) {
    enum { COL = 24 };
    const int usage_indent = (int)strlen("usage: fp4gemm  ") + (int)strlen(cmd->name);
    fprintf(out, "usage: fp4gemm %s ", cmd->name);
    print_wrapped(out, cmd->usage, usage_indent);
    fputc('\n', out);
    print_wrapped(out, cmd->about, 0);
    fprintf(out, "\noptions:\n");
    for (int i = 0; i < cmd->n_opts; i++) {
        const cli_opt *o = &cmd->opts[i];
        char left[64];
        if (o->kind == CLI_FLAG)
            snprintf(left, sizeof left, "  %s", o->name);
        else
            snprintf(left, sizeof left, "  %s %s", o->name, kind_metavar(o));
        if ((int)strlen(left) >= COL - 1)
            fprintf(out, "%s\n%*s", left, COL, "");
        else
            fprintf(out, "%-*s", COL, left);
        print_wrapped(out, o->help, COL);
    }
    fprintf(out, "%-*s%s\n", COL, "  -h, --help", "print this help and exit");
    if (cmd->notes) {
        fputc('\n', out);
        print_wrapped(out, cmd->notes, 0);
    }
}

cli_opt *cli_find(cli_command *cmd, const char *name) {
    for (int i = 0; i < cmd->n_opts; i++)
        if (strcmp(cmd->opts[i].name, name) == 0) return &cmd->opts[i];
    fprintf(stderr, "fp4gemm %s: internal error: no option %s\n", cmd->name, name);
    abort();
}

/* Does `arg` name option o? Sets *value to an attached value ("--x=V", "-kV") or NULL. */
static int matches(const cli_opt *o, const char *arg, const char **value) {
    const size_t len = strlen(o->name);
    *value = NULL;
    if (strncmp(arg, o->name, len) != 0) return 0;
    if (arg[len] == 0) return 1;
    const int is_long = o->name[1] == '-';
    if (is_long && arg[len] == '=') {
        *value = arg + len + 1;
        return 1;
    }
    if (!is_long) {
        *value = arg + len + (arg[len] == '='); /* "-k16" or "-k=16" */
        return 1;
    }
    return 0;
}

static int store_value(const cli_command *cmd, cli_opt *o, const char *v) {
    const char *why = NULL;
    int64_t i64 = 0;
    switch (o->kind) {
    case CLI_FLAG: *(int *)o->dest = 1; return CLI_OK;
    case CLI_INT:
        if (cli_parse_i64(v, o->min, o->max, &i64, &why) != 0) break;
        *(int64_t *)o->dest = i64;
        return CLI_OK;
    case CLI_FLOAT:
        if (cli_parse_positive_float(v, (float *)o->dest, &why) != 0) break;
        return CLI_OK;
    case CLI_STRING:
        if (!*v) {
            why = "must not be empty";
            break;
        }
        *(const char **)o->dest = v;
        return CLI_OK;
    case CLI_STRINGS: {
        cli_strings *list = (cli_strings *)o->dest;
        if (!*v) {
            why = "must not be empty";
            break;
        }
        if (list->n >= list->cap)
            return cli_fail(cmd->name, CLI_USAGE, "%s: at most %d of them", o->name, list->cap);
        list->items[list->n++] = v;
        return CLI_OK;
    }
    case CLI_DEVICE:
        if (strcmp(v, "cpu") == 0) {
            *(int *)o->dest = -1;
            return CLI_OK;
        }
        if (cli_parse_i64(v, -1, 1023, &i64, &why) != 0) {
            why = "expected 'cpu', -1 (the CPU) or a CUDA device number";
            break;
        }
        *(int *)o->dest = (int)i64;
        return CLI_OK;
    case CLI_TACTIC: {
        fp4_tactic t;
        if (fp4_tactic_from_name(v, &t) != FP4_OK) {
            static char names[400];
            snprintf(names, sizeof names, "%s", fp4_last_error(NULL)); /* lists the names */
            why = names[0] ? names : "not a backend or tactic name";
            break;
        }
        *(fp4_tactic *)o->dest = t;
        return CLI_OK;
    }
    case CLI_DTYPE: {
        fp4_dtype d;
        if (fp4_dtype_from_name(v, &d) != FP4_OK || !(o->allowed & CLI_DT(d))) {
            why = o->allowed == CLI_DT_HALVES ? "expected bf16 or f16"
                                              : "expected f32, f16 or bf16";
            break;
        }
        *(fp4_dtype *)o->dest = d;
        return CLI_OK;
    }
    case CLI_LAYOUT: {
        fp4_sf_layout l;
        if (fp4_sf_layout_from_name(v, &l) != FP4_OK) {
            why = "expected swizzled or linear";
            break;
        }
        *(fp4_sf_layout *)o->dest = l;
        return CLI_OK;
    }
    }
    return cli_fail(cmd->name, CLI_USAGE, "%s %s: %s", o->name, v, why ? why : "bad value");
}

int cli_parse(cli_command *cmd, int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            cli_print_help(cmd, stdout);
            return CLI_OK;
        }
        cli_opt *o = NULL;
        const char *value = NULL;
        if (arg[0] == '-' && arg[1])
            for (int j = 0; j < cmd->n_opts && !o; j++)
                if (matches(&cmd->opts[j], arg, &value)) o = &cmd->opts[j];
        if (!o) {
            return cli_fail(cmd->name, CLI_USAGE, "%s '%s' (see 'fp4gemm %s --help')",
                            arg[0] == '-' ? "unknown option" : "unexpected argument", arg,
                            cmd->name);
        }
        if (o->kind == CLI_FLAG && value)
            return cli_fail(cmd->name, CLI_USAGE, "%s takes no value", o->name);
        if (o->kind != CLI_FLAG && !value) {
            if (i + 1 >= argc)
                return cli_fail(cmd->name, CLI_USAGE, "%s needs a value (%s)", o->name,
                                kind_metavar(o));
            value = argv[++i];
        }
        const int rc = store_value(cmd, o, value);
        if (rc != CLI_OK) return rc;
        o->given = 1;
    }
    for (int j = 0; j < cmd->n_opts; j++) {
        const cli_opt *o = &cmd->opts[j];
        if (o->required && !o->given)
            return cli_fail(cmd->name, CLI_USAGE, "missing %s %s (see 'fp4gemm %s --help')",
                            o->name, kind_metavar(o), cmd->name);
    }
    return CLI_RUN;
}

/* ---- memory and files -------------------------------------------------------------------- */

void *cli_alloc(const char *cmd, int64_t bytes, const char *what) {
    void *p = (bytes > 0 && (uint64_t)bytes <= SIZE_MAX) ? malloc((size_t)bytes) : NULL;
    if (!p)
        cli_fail(cmd, CLI_FAIL, "out of memory: %lld bytes for %s", (long long)bytes, what);
    return p;
}

int cli_read_file(const char *cmd, const char *path, int64_t bytes, const char *shape,
                  void **out) {
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) return cli_fail(cmd, CLI_FAIL, "%s: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode)) return cli_fail(cmd, CLI_FAIL, "%s: not a regular file", path);
    if ((long long)sb.st_size != bytes)
        return cli_fail(cmd, CLI_FAIL, "%s: expected %lld bytes (%s), the file has %lld", path,
                        (long long)bytes, shape, (long long)sb.st_size);
    FILE *f = fopen(path, "rb");
    if (!f) return cli_fail(cmd, CLI_FAIL, "%s: %s", path, strerror(errno));
    void *buf = cli_alloc(cmd, bytes, path);
    if (!buf) {
        fclose(f);
        return CLI_FAIL;
    }
    const size_t got = fread(buf, 1, (size_t)bytes, f);
    const int err = ferror(f);
    fclose(f);
    if (got != (size_t)bytes) {
        free(buf);
        return cli_fail(cmd, CLI_FAIL, "%s: read failed: %s", path,
                        err ? strerror(errno) : "file shrank while reading");
    }
    *out = buf;
    return CLI_OK;
}

fp4_status cli_upload_new(fp4_ctx *ctx, const void *host, int64_t bytes, void **dev) {
    fp4_status st = fp4_malloc(ctx, dev, bytes);
    if (st == FP4_OK) st = fp4_upload(ctx, *dev, host, bytes);
    return st;
}

/* ---- random inputs ----------------------------------------------------------------------- */

void cli_rng_seed(cli_rng *rng, uint64_t seed) {
    rng->state = seed;
    rng->has_spare = 0;
    rng->spare = 0.0;
}

uint64_t cli_rng_u64(cli_rng *rng) {
    uint64_t z = (rng->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double cli_rng_uniform(cli_rng *rng) { return (double)(cli_rng_u64(rng) >> 11) * 0x1.0p-53; }

double cli_rng_normal(cli_rng *rng) {
    if (rng->has_spare) {
        rng->has_spare = 0;
        return rng->spare;
    }
    const double two_pi = 6.283185307179586476925;
    const double u1 = 1.0 - cli_rng_uniform(rng); /* (0, 1]: log is finite */
    const double u2 = cli_rng_uniform(rng);
    const double r = sqrt(-2.0 * log(u1));
    rng->spare = r * sin(two_pi * u2);
    rng->has_spare = 1;
    return r * cos(two_pi * u2);
}

void cli_fill_normal(cli_rng *rng, float *x, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++) {
        double v = cli_rng_normal(rng) * scale;
        if ((cli_rng_u64(rng) & 63) == 0) v *= 20.0;
        x[i] = (float)v;
    }
}

/* ---- host conversions -------------------------------------------------------------------- */

uint32_t cli_f32_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

static float bits_f32(uint32_t u) {
    float x;
    memcpy(&x, &u, 4);
    return x;
}

uint16_t cli_f32_to_bf16(float x) {
    const uint32_t u = cli_f32_bits(x);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1)) >> 16);
}

float cli_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t cli_f32_to_f16(float x) {
    const uint32_t u = cli_f32_bits(x);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    const uint32_t a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return (uint16_t)(sign | 0x7E00);  /* NaN */
    if (a >= 0x477FF000u) return (uint16_t)(sign | 0x7C00); /* rounds past 65504: Inf */
    if (a < 0x38800000u) {
        /* subnormal or zero: round |x| * 2^24 to an integer, ties to even */
        const float s = bits_f32(a) * 16777216.0f; /* exact */
        uint32_t i = (uint32_t)s;
        const float frac = s - (float)i;
        if (frac > 0.5f || (frac == 0.5f && (i & 1))) i++;
        return (uint16_t)(sign | i);
    }
    /* normal: rebias the exponent (127 -> 15), keep 10 mantissa bits, ties to even */
    uint32_t r = (a >> 13) - (112u << 10);
    const uint32_t rest = a & 0x1FFFu;
    if (rest > 0x1000u || (rest == 0x1000u && (r & 1))) r++;
    return (uint16_t)(sign | r);
}

float cli_f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    const uint32_t exp = (h >> 10) & 0x1F;
    const uint32_t mant = h & 0x3FF;
    if (exp == 0x1F) return bits_f32(sign | 0x7F800000u | (mant << 13));
    if (exp == 0) {
        const float m = (float)mant * 0x1.0p-24f;
        return sign ? -m : m;
    }
    return bits_f32(sign | ((exp + 112u) << 23) | (mant << 13));
}

void cli_store_floats(const float *src, int64_t n, fp4_dtype dtype, void *dst) {
    if (dtype == FP4_DTYPE_F32) {
        memcpy(dst, src, (size_t)n * 4);
        return;
    }
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++)
        h[i] = dtype == FP4_DTYPE_BF16 ? cli_f32_to_bf16(src[i]) : cli_f32_to_f16(src[i]);
}

float cli_load_float(const void *src, fp4_dtype dtype, int64_t i) {
    if (dtype == FP4_DTYPE_F32) return ((const float *)src)[i];
    const uint16_t h = ((const uint16_t *)src)[i];
    return dtype == FP4_DTYPE_BF16 ? cli_bf16_to_f32(h) : cli_f16_to_f32(h);
}

/* ---- devices and time -------------------------------------------------------------------- */

int cli_default_device(void) {
    int count = 0;
    if (fp4_device_count(&count) != FP4_OK) return -1;
    return count > 0 ? 0 : -1;
}

void cli_describe_device(int device, char *buf, size_t len) {
    if (device < 0) {
        snprintf(buf, len, "CPU");
        return;
    }
    fp4_device_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    if (fp4_device_query(device, &info) != FP4_OK) {
        snprintf(buf, len, "CUDA device %d", device);
        return;
    }
    snprintf(buf, len, "%s (sm_%d, device %d)", info.name, info.compute_capability, device);
}

double cli_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cli_policy_string(int compute_capability, char *buf, size_t len) {
    fp4_backend order[FP4_BACKEND_COUNT];
    const int n = fp4_backend_policy(compute_capability, order, FP4_BACKEND_COUNT);
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < n && i < FP4_BACKEND_COUNT && used < len; i++) {
        const int w = snprintf(buf + used, len - used, "%s%s", i ? " > " : "",
                               fp4_backend_name(order[i]));
        if (w > 0) used += (size_t)w;
    }
    if (n == 0) snprintf(buf, len, "(none)");
}

fp4_status cli_select(fp4_ctx *ctx, const fp4_gemm_desc *desc, fp4_tactic *out, char *name,
                      size_t name_len, char *why, size_t why_len) {
    const fp4_status st = fp4_gemm_select(ctx, desc, out, why, why_len);
    if (st != FP4_OK) return st;
    if (fp4_tactic_name(*out, name, name_len) != FP4_OK)
        snprintf(name, name_len, "%s", fp4_backend_name(out->backend));
    return FP4_OK;
}

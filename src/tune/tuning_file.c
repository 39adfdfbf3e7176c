/* tuning_file.c - the tuning cache file (docs/tuning.md): a versioned line format, read
 * strictly (a file with any malformed line is rejected whole), written atomically
 * (src/atomic_file.c). */
#define _POSIX_C_SOURCE 200809L
#include "atomic_file.h"
#include "tune/tuning.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- parsing --------------------------------------------------------------------------- */

typedef struct parsed_entry {
    fp4_tuning_key key;
    fp4_tactic tactic;
    double us;
} parsed_entry;

typedef struct cursor {
    const char *p, *end; /* the rest of the line */
} cursor;

static int is_space(char c) { return c == ' ' || c == '\t'; }

/* The next blank-separated token; 0 at the end of the line. */
static int next_token(cursor *c, const char **tok, size_t *len) {
    while (c->p < c->end && is_space(*c->p)) c->p++;
    if (c->p >= c->end) return 0;
    *tok = c->p;
    while (c->p < c->end && !is_space(*c->p)) c->p++;
    *len = (size_t)(c->p - *tok);
    return 1;
}

/* A "quoted" device name (no escapes; printable ASCII or UTF-8 bytes, no '"' or '\\'). */
static int next_quoted(cursor *c, char *out, size_t cap) {
    while (c->p < c->end && is_space(*c->p)) c->p++;
    if (c->p >= c->end || *c->p != '"') return 0;
    c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != '"') {
        const unsigned char ch = (unsigned char)*c->p;
        if (ch < 0x20 || ch == 0x7F || ch == '\\' || n + 1 >= cap) return 0;
        out[n++] = (char)ch;
        c->p++;
    }
    if (c->p >= c->end) return 0;
    c->p++; /* the closing quote */
    if (c->p < c->end && !is_space(*c->p)) return 0;
    out[n] = 0;
    return 1;
}

/* A decimal integer token in [lo, hi] (digits only, no sign, at most 19 digits). */
static int parse_int(const char *tok, size_t len, int64_t lo, int64_t hi, int64_t *out) {
    if (len == 0 || len > 19) return 0;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (tok[i] < '0' || tok[i] > '9') return 0;
        const int d = tok[i] - '0';
        if (v > (INT64_MAX - d) / 10) return 0;
        v = v * 10 + d;
    }
    if (v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

/* A positive finite decimal number token ("12.5", "1e3"), below 1e12. */
static int parse_us(const char *tok, size_t len, double *out) {
    char buf[64];
    if (len == 0 || len >= sizeof buf) return 0;
    for (size_t i = 0; i < len; i++) {
        const char ch = tok[i];
        if (!((ch >= '0' && ch <= '9') || ch == '.' || ch == 'e' || ch == 'E' || ch == '-' ||
              ch == '+'))
            return 0;
    }
    memcpy(buf, tok, len);
    buf[len] = 0;
    char *endp = NULL;
    errno = 0;
    const double v = strtod(buf, &endp);
    if (errno || endp != buf + len || !isfinite(v) || !(v > 0) || v >= 1e12) return 0;
    *out = v;
    return 1;
}

/* A token as a NUL-terminated string (at most cap - 1 bytes). */
static int token_str(const char *tok, size_t len, char *out, size_t cap) {
    if (len >= cap) return 0;
    memcpy(out, tok, len);
    out[len] = 0;
    return 1;
}

typedef struct parse_state {
    fp4_ctx *ctx;
    char device[256];
    int cc, sms;
    parsed_entry *entries;
    int64_t count, cap;
    int64_t foreign; /* entries for another device key */
    int64_t total;   /* entry lines */
    char err[400];
} parse_state;

#define BAD(...) (snprintf(s->err, sizeof s->err, __VA_ARGS__), 0)

/* One "entry" line after the keyword. 1 if good (kept or counted as foreign), else 0 with
 * s->err set. */
static int parse_entry(parse_state *s, cursor *c) {
    char name[256], version[32], tactic_name[96], dtn[16];
    const char *tok = NULL;
    size_t len = 0;
    int64_t cc, sms, mb, n, k;
    if (!next_quoted(c, name, sizeof name))
        return BAD("the device name is not a \"quoted\" string of at most 255 printable bytes");
    if (!next_token(c, &tok, &len) || !parse_int(tok, len, 0, 10000, &cc))
        return BAD("compute capability: expected an integer 0..10000");
    if (!next_token(c, &tok, &len) || !parse_int(tok, len, 0, 1000000, &sms))
        return BAD("SM count: expected an integer 0..1000000");
    if (!next_token(c, &tok, &len) || !token_str(tok, len, version, sizeof version))
        return BAD("library version: expected a token of at most 31 bytes");
    if (!next_token(c, &tok, &len) || !parse_int(tok, len, 1, INT64_C(1) << 62, &mb) ||
        fp4_tuning_bucket_m(mb) != mb)
        return BAD("M bucket: expected a bucket value (1, 2, 4, .., 256, 512, 768, .., 4096, "
                   "8192, ..)");
    if (!next_token(c, &tok, &len) || !parse_int(tok, len, 1, INT32_MAX, &n))
        return BAD("N: expected an integer 1..2147483647");
    if (!next_token(c, &tok, &len) || !parse_int(tok, len, 16, INT32_MAX, &k) || k % 16)
        return BAD("K: expected a multiple of 16 in 16..2147483647");
    fp4_tuning_key key;
    memset(&key, 0, sizeof key);
    key.m_bucket = mb;
    key.n = n;
    key.k = k;
    static const char *const what[4] = {"A dtype", "A scale layout", "B scale layout",
                                        "D dtype"};
    int32_t *fields[4] = {&key.a_dtype, &key.a_sf_layout, &key.b_sf_layout, &key.d_dtype};
    for (int f = 0; f < 4; f++) {
        if (!next_token(c, &tok, &len) || !token_str(tok, len, dtn, sizeof dtn))
            return BAD("%s: missing or too long", what[f]);
        int ok = 0;
        if (f == 1 || f == 2) {
            fp4_sf_layout l;
            ok = fp4_sf_layout_from_name(dtn, &l) == FP4_OK;
            if (ok) *fields[f] = (int32_t)l;
        } else {
            fp4_dtype d;
            ok = fp4_dtype_from_name(dtn, &d) == FP4_OK;
            if (ok && f == 0)
                ok = d == FP4_DTYPE_E2M1 || d == FP4_DTYPE_BF16 || d == FP4_DTYPE_F16;
            if (ok && f == 3)
                ok = d == FP4_DTYPE_F32 || d == FP4_DTYPE_BF16 || d == FP4_DTYPE_F16;
            if (ok) *fields[f] = (int32_t)d;
        }
        if (!ok)
            return BAD("%s: '%s' is not one of %s", what[f], dtn,
                       f == 0   ? "e2m1, bf16, f16"
                       : f == 3 ? "f32, f16, bf16"
                                : "linear, swizzled");
    }
    if (key.a_dtype != FP4_DTYPE_E2M1 && key.a_sf_layout != 0)
        return BAD("A scale layout: 'linear' expected for a W4A16 entry (A has no scales)");
    if (!next_token(c, &tok, &len) || !token_str(tok, len, tactic_name, sizeof tactic_name))
        return BAD("tactic: missing or longer than 95 bytes");
    double us = 0;
    if (!next_token(c, &tok, &len) || !parse_us(tok, len, &us))
        return BAD("median: expected a positive decimal number of microseconds below 1e12");
    if (next_token(c, &tok, &len)) return BAD("unexpected text after the median");
    s->total++;

    if (strcmp(name, s->device) != 0 || cc != s->cc || sms != s->sms ||
        strcmp(version, fp4_version()) != 0) {
        s->foreign++;
        return 1; /* another device or library version: its tactic names need not be ours */
    }
    fp4_tactic t;
    char why[800];
    if (fp4_parse_tactic(tactic_name, &t, why, sizeof why) != FP4_OK || t.config < 0 ||
        t.backend == FP4_BACKEND_AUTO)
        return BAD("tactic '%s' is not a backend/config of this library", tactic_name);
    if (s->count == s->cap) {
        const int64_t cap = s->cap ? s->cap * 2 : 64;
        parsed_entry *e = realloc(s->entries, (size_t)cap * sizeof *e);
        if (!e) return BAD("out of memory");
        s->entries = e;
        s->cap = cap;
    }
    parsed_entry *e = &s->entries[s->count++];
    e->key = key;
    e->tactic = t;
    e->us = us;
    return 1;
}

fp4_status fp4_tuning_load_buffer(fp4_ctx *ctx, const char *text, size_t len, const char *origin) {
    if (!ctx)
        return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "fp4_tuning_load_buffer: ctx is NULL");
    ctx->last_error[0] = 0;
    if (!text && len)
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "fp4_tuning_load_buffer: text is NULL");
    const char *src = origin ? origin : "tuning data";
    if (len > FP4_TUNING_MAX_FILE_BYTES)
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT,
                        "%.300s: %zu bytes, over the %d-byte limit of a tuning file: ignored",
                        src, len, FP4_TUNING_MAX_FILE_BYTES);
    parse_state st;
    memset(&st, 0, sizeof st);
    st.ctx = ctx;
    parse_state *s = &st;
    fp4_tuning_device_name(ctx, st.device, sizeof st.device);
    st.cc = ctx->info.compute_capability;
    st.sms = ctx->info.sm_count;

    int64_t line_no = 0, end_count = -1;
    int header = 0, ok = 1;
    const char *p = text, *stop = text + len;
    while (ok && p < stop) {
        const char *eol = memchr(p, '\n', (size_t)(stop - p));
        const char *line_end = eol ? eol : stop;
        line_no++;
        cursor c = {p, line_end};
        if (c.end > c.p && c.end[-1] == '\r') c.end--;
        p = eol ? eol + 1 : stop;
        if (c.end - c.p > FP4_TUNING_MAX_LINE) {
            ok = BAD("line longer than %d bytes", FP4_TUNING_MAX_LINE);
            break;
        }
        if (memchr(c.p, 0, (size_t)(c.end - c.p))) {
            ok = BAD("a NUL byte: this is not a text file");
            break;
        }
        const char *tok = NULL;
        size_t tl = 0;
        if (!next_token(&c, &tok, &tl) || tok[0] == '#') continue; /* blank or comment */
        if (!header) {
            int64_t v = 0;
            if (tl != 14 || memcmp(tok, "fp4gemm-tuning", 14) != 0) {
                ok = BAD("not an fp4gemm tuning file (its first line must be "
                         "'fp4gemm-tuning %d')",
                         FP4_TUNING_FORMAT_VERSION);
                break;
            }
            if (!next_token(&c, &tok, &tl) || !parse_int(tok, tl, 0, 1000000, &v) ||
                next_token(&c, &tok, &tl)) {
                ok = BAD("the header must be 'fp4gemm-tuning <format version>'");
                break;
            }
            if (v != FP4_TUNING_FORMAT_VERSION) {
                ok = BAD("format version %lld; this library reads version %d",
                         (long long)v, FP4_TUNING_FORMAT_VERSION);
                break;
            }
            header = 1;
            continue;
        }
        if (end_count >= 0) {
            ok = BAD("text after the 'end' line");
            break;
        }
        if (tl == 5 && memcmp(tok, "entry", 5) == 0) {
            if (st.total >= FP4_TUNING_MAX_ENTRIES) {
                ok = BAD("more than %d entries", FP4_TUNING_MAX_ENTRIES);
                break;
            }
            ok = parse_entry(s, &c);
        } else if (tl == 3 && memcmp(tok, "end", 3) == 0) {
            if (!next_token(&c, &tok, &tl) ||
                !parse_int(tok, tl, 0, FP4_TUNING_MAX_ENTRIES, &end_count) ||
                next_token(&c, &tok, &tl)) {
                ok = BAD("the last line must be 'end <number of entries>'");
                break;
            }
            if (end_count != st.total) {
                ok = BAD("'end %lld' but the file has %lld entries: truncated or edited",
                         (long long)end_count, (long long)st.total);
                break;
            }
        } else {
            ok = BAD("'%.*s' is not a line kind of the format (entry, end, # comment)",
                     (int)(tl > 40 ? 40 : tl), tok);
        }
    }
    if (ok && !header) {
        line_no = 0;
        ok = BAD("empty: no 'fp4gemm-tuning %d' header", FP4_TUNING_FORMAT_VERSION);
    } else if (ok && end_count < 0) {
        line_no = 0;
        ok = BAD("no 'end' line: the file is truncated");
    }
    if (!ok) {
        free(st.entries);
        if (line_no > 0)
            return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT,
                            "%.300s:%lld: %s; the tuning file is ignored", src,
                            (long long)line_no, st.err);
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "%.300s: %s; the tuning file is ignored",
                        src, st.err);
    }
    /* all good: merge (the table only grows; a failed allocation leaves what was merged) */
    fp4_status status = FP4_OK;
    for (int64_t i = 0; i < st.count && status == FP4_OK; i++)
        status = fp4_tuning_put(ctx, &st.entries[i].key, st.entries[i].tactic, st.entries[i].us);
    free(st.entries);
    if (status != FP4_OK) return status;
    ctx->tuning.ignored = st.foreign;
    snprintf(ctx->tuning.file, sizeof ctx->tuning.file, "%s", src);
    if (st.foreign) {
        char key[384];
        fp4_tuning_info info;
        info.struct_size = sizeof info;
        fp4_tuning_get_info(ctx, &info);
        snprintf(key, sizeof key, "%s", info.device_key);
        fp4_log(FP4_LOG_WARN,
                "%.300s: %lld of %lld entries are for another device or library version "
                "(this context: %s): ignored",
                src, (long long)st.foreign, (long long)st.total, key);
    }
    fp4_log(FP4_LOG_INFO, "%.300s: %lld tuned entries loaded", src, (long long)st.count);
    return FP4_OK;
}

fp4_status fp4_tuning_load(fp4_ctx *ctx, const char *path) {
    if (!ctx) return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "fp4_tuning_load: ctx is NULL");
    ctx->last_error[0] = 0;
    if (!path || !*path)
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "fp4_tuning_load: path is %s",
                        path ? "empty" : "NULL");
    FILE *f = fopen(path, "rb");
    if (!f)
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "tuning file %.300s: %s", path,
                        strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "tuning file %.300s: not a regular file",
                        path);
    }
    /* read at most one byte over the limit: enough to know it is too long */
    const size_t cap = (size_t)FP4_TUNING_MAX_FILE_BYTES + 1;
    size_t want = sb.st_size > 0 && (uint64_t)sb.st_size < cap ? (size_t)sb.st_size + 1 : cap;
    char *buf = malloc(want);
    if (!buf) {
        fclose(f);
        return FP4_FAIL(ctx, FP4_ERR_OUT_OF_MEMORY, "tuning file %.300s: %zu bytes", path, want);
    }
    size_t got = 0, n;
    while (got < want && (n = fread(buf + got, 1, want - got, f)) > 0) got += n;
    const int read_error = ferror(f);
    fclose(f);
    if (read_error) {
        free(buf);
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "tuning file %.300s: read error", path);
    }
    const fp4_status st = fp4_tuning_load_buffer(ctx, buf, got, path);
    free(buf);
    return st;
}

void fp4_tuning_load_env(fp4_ctx *ctx) {
    const char *path = getenv("FP4GEMM_TUNING_FILE");
    if (!path || !*path) return;
    if (fp4_tuning_load(ctx, path) != FP4_OK)
        fp4_log(FP4_LOG_WARN, "FP4GEMM_TUNING_FILE: %s", ctx->last_error);
    ctx->last_error[0] = 0;
}

/* ---- writing ------------------------------------------------------------------------- */

static int cmp_slots(const void *a, const void *b) {
    const fp4_tuning_key *x = &((const fp4_tuning_slot *)a)->key;
    const fp4_tuning_key *y = &((const fp4_tuning_slot *)b)->key;
    const int64_t xs[7] = {x->n, x->k, x->a_dtype, x->a_sf_layout, x->b_sf_layout, x->d_dtype,
                           x->m_bucket};
    const int64_t ys[7] = {y->n, y->k, y->a_dtype, y->a_sf_layout, y->b_sf_layout, y->d_dtype,
                           y->m_bucket};
    for (int i = 0; i < 7; i++)
        if (xs[i] != ys[i]) return xs[i] < ys[i] ? -1 : 1;
    return 0;
}

fp4_status fp4_tuning_save(fp4_ctx *ctx, const char *path) {
    if (!ctx) return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "fp4_tuning_save: ctx is NULL");
    ctx->last_error[0] = 0;
    if (!path || !*path)
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "fp4_tuning_save: path is %s",
                        path ? "empty" : "NULL");
    const size_t plen = strlen(path);
    if (plen > 4000)
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "fp4_tuning_save: path too long");
    /* the entries, sorted so that the file is stable */
    const fp4_tuning_table *t = &ctx->tuning;
    fp4_tuning_slot *sorted = NULL;
    if (t->count) {
        sorted = malloc((size_t)t->count * sizeof *sorted);
        if (!sorted)
            return FP4_FAIL(ctx, FP4_ERR_OUT_OF_MEMORY, "fp4_tuning_save: %lld entries",
                            (long long)t->count);
        int64_t j = 0;
        for (int64_t i = 0; i < t->cap; i++)
            if (t->slots[i].used) sorted[j++] = t->slots[i];
        qsort(sorted, (size_t)t->count, sizeof *sorted, cmp_slots);
    }
    fp4_atomic_file af;
    const int open_err = fp4_atomic_begin(&af, path);
    if (open_err) {
        free(sorted);
        if (af.step == FP4_ATOMIC_CREATE)
            return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT,
                            "fp4_tuning_save: can't create a temporary file next to %.300s: %s",
                            path, strerror(open_err));
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "fp4_tuning_save: %.300s: %s", af.tmp,
                        strerror(open_err));
    }
    FILE *f = af.f;
    char name[256];
    fp4_tuning_device_name(ctx, name, sizeof name);
    fprintf(f,
            "fp4gemm-tuning %d\n"
            "# fp4gemm %s tuning cache (docs/tuning.md). One line per bucket:\n"
            "# entry \"device\" cc sms version m_bucket n k a_dtype a_sf b_sf d_dtype tactic "
            "median_us\n",
            FP4_TUNING_FORMAT_VERSION, fp4_version());
    int64_t written = 0;
    for (int64_t i = 0; i < t->count; i++) {
        const fp4_tuning_slot *sl = &sorted[i];
        char tname[96];
        /* a bucket that first-use tuning could not tune holds the heuristic with no time:
         * not a result worth keeping */
        if (!(sl->us > 0 && sl->us < 1e12)) continue;
        if (fp4_tactic_name(sl->tactic, tname, sizeof tname) != FP4_OK) continue;
        fprintf(f, "entry \"%s\" %d %d %s %lld %lld %lld %s %s %s %s %s %.6g\n", name,
                ctx->info.compute_capability, ctx->info.sm_count, fp4_version(),
                (long long)sl->key.m_bucket, (long long)sl->key.n, (long long)sl->key.k,
                fp4_dtype_name((fp4_dtype)sl->key.a_dtype),
                fp4_sf_layout_name((fp4_sf_layout)sl->key.a_sf_layout),
                fp4_sf_layout_name((fp4_sf_layout)sl->key.b_sf_layout),
                fp4_dtype_name((fp4_dtype)sl->key.d_dtype), tname,
                sl->us);
        written++;
    }
    fprintf(f, "end %lld\n", (long long)written);
    free(sorted);
    const int err = fp4_atomic_finish(&af, path, 0); /* fprintf's failures: in ferror(f) */
    if (err)
        return FP4_FAIL(ctx, FP4_ERR_INVALID_ARGUMENT, "fp4_tuning_save: %.300s: %s", path,
                        strerror(err));
    return FP4_OK;
}

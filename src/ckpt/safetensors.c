/* safetensors.c - the safetensors reader: one file's header validated whole (its JSON parsed
 * by cJSON) before any tensor is handed out, and the dtype table. The rules checked are the
 * format's (huggingface/safetensors, safetensors/src/tensor.rs: `validate` and
 * `read_metadata`), listed in include/fp4gemm.h; st_open.c maps the files and reads sharded
 * checkpoints' index. */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include "ckpt/ckpt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef FP4GEMM_HAVE_CJSON
#include <cjson/cJSON.h>
#endif

static const struct {
    const char *name;
    int64_t size;
} k_st_dtypes[FP4_ST_DTYPE_COUNT] = {
    {"BOOL", 1}, {"U8", 1},   {"I8", 1},   {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"F8_E8M0", 1},
    {"I16", 2},  {"U16", 2},  {"F16", 2},  {"BF16", 2},    {"I32", 4},     {"U32", 4},
    {"F32", 4},  {"I64", 8},  {"U64", 8},  {"F64", 8},     {"C64", 8},
};

const char *fp4_st_dtype_name(fp4_st_dtype dtype) {
    return (unsigned)dtype < FP4_ST_DTYPE_COUNT ? k_st_dtypes[dtype].name : "?";
}

int64_t fp4_st_dtype_size(fp4_st_dtype dtype) {
    return (unsigned)dtype < FP4_ST_DTYPE_COUNT ? k_st_dtypes[dtype].size : 0;
}

int fp4_st_dtype_parse(const char *name, fp4_st_dtype *out) {
    for (int i = 0; i < FP4_ST_DTYPE_COUNT; i++)
        if (strcmp(name, k_st_dtypes[i].name) == 0) {
            *out = (fp4_st_dtype)i;
            return 0;
        }
    return -1;
}

int fp4_built_with_safetensors(void) {
#ifdef FP4GEMM_HAVE_CJSON
    return 1;
#else
    return 0;
#endif
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(((const fp4_st_tensor *)a)->name, ((const fp4_st_tensor *)b)->name);
}

fp4_status fp4_st_finish(fp4_safetensors *st) {
    if (st->count > 1) qsort(st->tensors, (size_t)st->count, sizeof *st->tensors, cmp_names);
    for (int64_t i = 1; i < st->count; i++)
        if (strcmp(st->tensors[i].name, st->tensors[i - 1].name) == 0)
            return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT,
                            "%.300s: tensor \"%.200s\" appears twice (also in %.300s)",
                            st->tensors[i].file, st->tensors[i].name, st->tensors[i - 1].file);
    return FP4_OK;
}

#ifdef FP4GEMM_HAVE_CJSON

#define MAX_EXACT_INT 9007199254740992.0 /* 2^53: every integer below is exact in a double */

/* A JSON number that is a non-negative integer below 2^53. */
static int json_uint(const cJSON *v, int64_t *out) {
    if (!cJSON_IsNumber(v)) return 0;
    const double d = v->valuedouble;
    if (!(d >= 0.0) || d >= MAX_EXACT_INT || d != floor(d)) return 0;
    *out = (int64_t)d;
    return 1;
}

typedef struct span {
    int64_t begin, end;
    const char *name;
} span;

static int cmp_spans(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

#define BAD(...) (snprintf(err, errlen, __VA_ARGS__), 0)

/* The __metadata__ object: string values only. Kept when st has none yet. */
static int parse_metadata(fp4_safetensors *st, const cJSON *obj, char *err, size_t errlen) {
    if (!cJSON_IsObject(obj)) return BAD("\"__metadata__\" is not an object");
    int64_t n = 0;
    for (const cJSON *c = obj->child; c; c = c->next, n++)
        if (!cJSON_IsString(c) || !c->string)
            return BAD("\"__metadata__\" entry \"%.200s\" is not a string",
                       c->string ? c->string : "?");
    if (st->n_meta || n == 0) return 1;
    st->meta = calloc((size_t)(2 * n), sizeof *st->meta);
    if (!st->meta) return BAD("out of memory");
    for (const cJSON *c = obj->child; c; c = c->next) {
        char *k = strdup(c->string), *v = strdup(c->valuestring);
        st->meta[2 * st->n_meta] = k;
        st->meta[2 * st->n_meta + 1] = v;
        st->n_meta++;
        if (!k || !v) return BAD("out of memory");
    }
    return 1;
}

/* One tensor entry: its fields checked, its numel and bytes computed. */
static int parse_entry(const cJSON *e, fp4_st_tensor *t, span *sp, int64_t data_size, char *err,
                       size_t errlen) {
    const char *name = e->string;
    if (!cJSON_IsObject(e)) return BAD("tensor \"%.200s\": not an object", name);
    const cJSON *dt = NULL, *shape = NULL, *offs = NULL;
    for (const cJSON *f = e->child; f; f = f->next) {
        const cJSON **slot = NULL;
        if (f->string && strcmp(f->string, "dtype") == 0) slot = &dt;
        else if (f->string && strcmp(f->string, "shape") == 0) slot = &shape;
        else if (f->string && strcmp(f->string, "data_offsets") == 0) slot = &offs;
        if (!slot)
            return BAD("tensor \"%.200s\": unknown field \"%.60s\" (the format has dtype, shape, "
                       "data_offsets)", name, f->string ? f->string : "?");
        if (*slot) return BAD("tensor \"%.200s\": field \"%s\" given twice", name, f->string);
        *slot = f;
    }
    if (!dt || !shape || !offs)
        return BAD("tensor \"%.200s\": missing \"%s\"", name,
                   !dt ? "dtype" : !shape ? "shape" : "data_offsets");
    if (!cJSON_IsString(dt) || fp4_st_dtype_parse(dt->valuestring, &t->dtype) != 0)
        return BAD("tensor \"%.200s\": dtype %s%.40s%s is not a safetensors dtype (BOOL, U8, I8, "
                   "F8_E5M2, F8_E4M3, F8_E8M0, I16, U16, F16, BF16, I32, U32, F32, I64, U64, F64, "
                   "C64)", name, cJSON_IsString(dt) ? "\"" : "", cJSON_IsString(dt) ?
                   dt->valuestring : "(not a string)", cJSON_IsString(dt) ? "\"" : "");
    if (!cJSON_IsArray(shape)) return BAD("tensor \"%.200s\": shape is not an array", name);
    const int ndim = cJSON_GetArraySize(shape);
    if (ndim > FP4_ST_MAX_DIMS)
        return BAD("tensor \"%.200s\": %d dimensions, more than the %d this library reads", name,
                   ndim, FP4_ST_MAX_DIMS);
    t->ndim = ndim;
    t->numel = 1;
    int i = 0;
    for (const cJSON *d = shape->child; d; d = d->next, i++) {
        int64_t v;
        if (!json_uint(d, &v))
            return BAD("tensor \"%.200s\": dimension %d is not a non-negative integer below 2^53",
                       name, i);
        t->shape[i] = v;
        if (v && t->numel > INT64_MAX / v)
            return BAD("tensor \"%.200s\": the shape's element count overflows int64", name);
        t->numel *= v;
    }
    const int64_t esize = fp4_st_dtype_size(t->dtype);
    if (t->numel > INT64_MAX / esize)
        return BAD("tensor \"%.200s\": its byte size overflows int64", name);
    t->bytes = t->numel * esize;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        !json_uint(offs->child, &sp->begin) || !json_uint(offs->child->next, &sp->end))
        return BAD("tensor \"%.200s\": data_offsets is not [begin, end] (two non-negative "
                   "integers)", name);
    if (sp->begin > sp->end)
        return BAD("tensor \"%.200s\": data_offsets [%lld, %lld] end before they begin", name,
                   (long long)sp->begin, (long long)sp->end);
    if (sp->end > data_size)
        return BAD("tensor \"%.200s\": data_offsets [%lld, %lld] run past the data section "
                   "(%lld bytes)", name, (long long)sp->begin, (long long)sp->end,
                   (long long)data_size);
    if (sp->end - sp->begin != t->bytes) {
        char dims[160] = "";
        size_t used = 0;
        for (int d = 0; d < ndim && used < sizeof dims - 24; d++)
            used += (size_t)snprintf(dims + used, sizeof dims - used, "%s%lld", d ? ", " : "",
                                     (long long)t->shape[d]);
        return BAD("tensor \"%.200s\": data_offsets [%lld, %lld] hold %lld bytes, but %s [%s] "
                   "needs %lld", name, (long long)sp->begin, (long long)sp->end,
                   (long long)(sp->end - sp->begin), fp4_st_dtype_name(t->dtype), dims,
                   (long long)t->bytes);
    }
    return 1;
}

/* Every tensor of the header, checked, appended to st; then the tiling of the data. */
static int parse_root(fp4_safetensors *st, const cJSON *root, const fp4_st_shard *sh,
                      int64_t header_len, char *err, size_t errlen) {
    const uint8_t *data = sh->base + 8 + header_len;
    const int64_t data_size = sh->size - 8 - header_len;
    int64_t n = 0, seen_meta = 0;
    for (const cJSON *c = root->child; c; c = c->next) n++;
    span *spans = calloc((size_t)(n ? n : 1), sizeof *spans);
    fp4_st_tensor *grown = realloc(st->tensors, (size_t)(st->count + n + 1) * sizeof *grown);
    char **names = realloc(st->names, (size_t)(st->count + n + 1) * sizeof *names);
    if (grown) st->tensors = grown;
    if (names) st->names = names;
    if (!spans || !grown || !names) {
        free(spans);
        return BAD("out of memory");
    }
    int ok = 1;
    int64_t ns = 0;
    for (const cJSON *c = root->child; c && ok; c = c->next) {
        if (!c->string) {
            ok = BAD("a header entry without a name");
        } else if (strcmp(c->string, "__metadata__") == 0) {
            ok = seen_meta++ ? BAD("\"__metadata__\" given twice")
                             : parse_metadata(st, c, err, errlen);
        } else if (!c->string[0]) {
            ok = BAD("a tensor with an empty name");
        } else {
            fp4_st_tensor *t = &st->tensors[st->count];
            memset(t, 0, sizeof *t);
            ok = parse_entry(c, t, &spans[ns], data_size, err, errlen);
            if (ok) {
                char *name = strdup(c->string);
                if (!name) {
                    ok = BAD("out of memory");
                    break;
                }
                st->names[st->count] = name;
                t->name = name;
                t->file = sh->path;
                t->data = data + spans[ns].begin;
                t->file_offset = 8 + header_len + spans[ns].begin;
                spans[ns].name = name;
                st->count++;
                ns++;
            }
        }
    }
    if (ok) { /* the tensors tile the data section: no hole, no overlap, nothing after */
        qsort(spans, (size_t)ns, sizeof *spans, cmp_spans);
        int64_t at = 0;
        for (int64_t i = 0; i < ns && ok; i++) {
            if (spans[i].begin < at)
                ok = BAD("tensor \"%.200s\": data_offsets [%lld, %lld] overlap the previous "
                         "tensor's (which ends at %lld)", spans[i].name, (long long)spans[i].begin,
                         (long long)spans[i].end, (long long)at);
            else if (spans[i].begin > at)
                ok = BAD("tensor \"%.200s\": data_offsets begin at %lld, leaving a hole of %lld "
                         "bytes before them", spans[i].name, (long long)spans[i].begin,
                         (long long)(spans[i].begin - at));
            at = spans[i].end;
        }
        if (ok && at != data_size)
            ok = BAD("the tensors cover %lld bytes of data but the file has %lld after the header",
                     (long long)at, (long long)data_size);
    }
    free(spans);
    return ok;
}

fp4_status fp4_st_parse_file(fp4_safetensors *st, int shard_index) {
    const fp4_st_shard *sh = &st->shards[shard_index];
    const char *src = sh->path;
    if (sh->size < 8)
        return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "%.300s: %lld bytes: too short for a "
                        "safetensors file (8 bytes of header length, then the header)", src,
                        (long long)sh->size);
    uint64_t len = 0;
    for (int i = 7; i >= 0; i--) len = len << 8 | sh->base[i]; /* little-endian */
    if (len > FP4_ST_MAX_HEADER_BYTES)
        return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "%.300s: header length %llu is over the "
                        "format's limit (%d bytes): not a safetensors file, or a corrupt one",
                        src, (unsigned long long)len, FP4_ST_MAX_HEADER_BYTES);
    if ((int64_t)len > sh->size - 8)
        return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "%.300s: header length %llu runs past the "
                        "end of the file (%lld bytes): truncated or not a safetensors file", src,
                        (unsigned long long)len, (long long)sh->size);
    const char *hdr = (const char *)sh->base + 8;
    if (len < 2 || hdr[0] != '{')
        return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "%.300s: the header (%llu bytes) does not "
                        "begin with '{': not a safetensors file", src, (unsigned long long)len);
    if (memchr(hdr, 0, (size_t)len))
        return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "%.300s: a NUL byte in the JSON header",
                        src);
    char *buf = malloc((size_t)len + 1); /* a NUL-terminated copy for cJSON */
    if (!buf)
        return FP4_FAIL(NULL, FP4_ERR_OUT_OF_MEMORY, "%.300s: %llu bytes for the header", src,
                        (unsigned long long)len);
    memcpy(buf, hdr, (size_t)len);
    buf[len] = 0;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, (size_t)len, &end, 0);
    if (!root) {
        const long long at = end && end >= buf ? (long long)(end - buf) : -1;
        free(buf);
        return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "%.300s: the header is not valid JSON "
                        "(error near byte %lld of %llu)", src, at, (unsigned long long)len);
    }
    for (const char *p = end; p && p < buf + len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            const long long at = (long long)(p - buf);
            cJSON_Delete(root);
            free(buf);
            return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "%.300s: text after the header's "
                            "JSON object (at byte %lld)", src, at);
        }
    char err[600] = "";
    int ok = cJSON_IsObject(root) ? parse_root(st, root, sh, (int64_t)len, err, sizeof err)
                                  : (snprintf(err, sizeof err, "the header is not a JSON object"),
                                     0);
    cJSON_Delete(root);
    free(buf);
    if (!ok)
        return FP4_FAIL(NULL, strcmp(err, "out of memory") ? FP4_ERR_INVALID_ARGUMENT
                                                           : FP4_ERR_OUT_OF_MEMORY,
                        "%.300s: %s", src, err);
    return FP4_OK;
}

#else /* no cJSON */

fp4_status fp4_st_parse_file(fp4_safetensors *st, int shard_index) {
    (void)st;
    (void)shard_index;
    return FP4_FAIL(NULL, FP4_ERR_NOT_SUPPORTED, FP4_ST_NO_CJSON);
}

#endif

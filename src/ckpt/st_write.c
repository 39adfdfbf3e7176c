/* st_write.c - the safetensors writer: the header built with cJSON (integers written as
 * exact decimal text), padded with spaces to 8 bytes, the data streamed from the caller's
 * buffers, all into a temporary file in the target's folder that is flushed and renamed over
 * the target (src/atomic_file.c, as the tuning file is written). */
#define _POSIX_C_SOURCE 200809L
#include "atomic_file.h"
#include "ckpt/ckpt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef FP4GEMM_HAVE_CJSON
#include <cjson/cJSON.h>

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Checks every entry and fills their sizes into bytes[]: NULL if good, else the problem. */
static const char *check_entries(const fp4_st_tensor *t, int64_t count, int64_t *bytes,
                                 char *why, size_t len) {
    const char **names = malloc((size_t)(count ? count : 1) * sizeof *names);
    if (!names) return "out of memory";
    const char *bad = NULL;
    for (int64_t i = 0; i < count && !bad; i++) {
        names[i] = t[i].name;
        int64_t numel = 1;
        if (!t[i].name || !t[i].name[0] || !strcmp(t[i].name, "__metadata__"))
            snprintf(why, len, "tensor %lld: the name is NULL, empty or \"__metadata__\"",
                     (long long)i), bad = why;
        else if (fp4_st_dtype_size(t[i].dtype) == 0 || t[i].ndim < 0 || t[i].ndim > FP4_ST_MAX_DIMS)
            snprintf(why, len, "tensor \"%.200s\": bad dtype or ndim", t[i].name), bad = why;
        for (int d = 0; !bad && d < t[i].ndim; d++) {
            const int64_t v = t[i].shape[d];
            if (v < 0 || (v && numel > INT64_MAX / v))
                snprintf(why, len, "tensor \"%.200s\": bad dimension %d", t[i].name, d), bad = why;
            else numel *= v;
        }
        const int64_t es = fp4_st_dtype_size(t[i].dtype);
        if (!bad && numel > INT64_MAX / (es ? es : 1))
            snprintf(why, len, "tensor \"%.200s\": size overflows", t[i].name), bad = why;
        if (!bad) bytes[i] = numel * es;
        if (!bad && bytes[i] && !t[i].data)
            snprintf(why, len, "tensor \"%.200s\": data is NULL", t[i].name), bad = why;
    }
    if (!bad && count > 1) {
        qsort(names, (size_t)count, sizeof *names, cmp_str);
        for (int64_t i = 1; i < count && !bad; i++)
            if (!strcmp(names[i], names[i - 1]))
                snprintf(why, len, "tensor \"%.200s\" given twice", names[i]), bad = why;
    }
    free(names);
    return bad;
}

static cJSON *int_raw(int64_t v) {
    char buf[24];
    snprintf(buf, sizeof buf, "%lld", (long long)v);
    return cJSON_CreateRaw(buf);
}

/* The header JSON (unpadded), or NULL when out of memory. */
static char *build_header(const fp4_st_tensor *t, int64_t count, const int64_t *bytes,
                          const char *const *meta, int64_t n_meta) {
    cJSON *root = cJSON_CreateObject();
    int ok = root != NULL;
    if (ok && n_meta > 0) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        ok = m != NULL;
        for (int64_t i = 0; ok && i < n_meta; i++)
            ok = cJSON_AddStringToObject(m, meta[2 * i], meta[2 * i + 1]) != NULL;
    }
    int64_t at = 0;
    for (int64_t i = 0; ok && i < count; i++) {
        cJSON *e = cJSON_CreateObject(), *shape = cJSON_CreateArray(), *offs = cJSON_CreateArray();
        ok = e && shape && offs && cJSON_AddStringToObject(e, "dtype", fp4_st_dtype_name(t[i].dtype));
        for (int d = 0; ok && d < t[i].ndim; d++) ok = cJSON_AddItemToArray(shape, int_raw(t[i].shape[d]));
        ok = ok && cJSON_AddItemToArray(offs, int_raw(at)) &&
             cJSON_AddItemToArray(offs, int_raw(at + bytes[i]));
        if (ok) {
            cJSON_AddItemToObject(e, "shape", shape);
            cJSON_AddItemToObject(e, "data_offsets", offs);
            cJSON_AddItemToObject(root, t[i].name, e);
        } else {
            cJSON_Delete(e);
            cJSON_Delete(shape);
            cJSON_Delete(offs);
        }
        at += bytes[i];
    }
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return text;
}

fp4_status fp4_safetensors_write(const char *path, const fp4_st_tensor *tensors, int64_t count,
                                 const char *const *meta, int64_t n_meta) {
    if (!path || !*path || (!tensors && count) || count < 0 || n_meta < 0 || (!meta && n_meta))
        return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "fp4_safetensors_write: NULL or negative "
                        "argument");
    for (int64_t i = 0; i < 2 * n_meta; i++)
        if (!meta[i])
            return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "fp4_safetensors_write: metadata "
                            "string %lld is NULL", (long long)i);
    if (strlen(path) > 4000)
        return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "fp4_safetensors_write: path too long");
    int64_t *bytes = calloc((size_t)(count ? count : 1), sizeof *bytes);
    if (!bytes) return FP4_FAIL(NULL, FP4_ERR_OUT_OF_MEMORY, "fp4_safetensors_write");
    char why[400];
    const char *bad = check_entries(tensors, count, bytes, why, sizeof why);
    if (bad) {
        free(bytes);
        return FP4_FAIL(NULL, strcmp(bad, "out of memory") ? FP4_ERR_INVALID_ARGUMENT
                                                           : FP4_ERR_OUT_OF_MEMORY,
                        "fp4_safetensors_write %.300s: %s", path, bad);
    }
    char *header = build_header(tensors, count, bytes, meta, n_meta);
    if (!header) {
        free(bytes);
        return FP4_FAIL(NULL, FP4_ERR_OUT_OF_MEMORY, "fp4_safetensors_write: the header");
    }
    const size_t hlen = strlen(header), padded = (hlen + 7) / 8 * 8;
    fp4_atomic_file af;
    int err = fp4_atomic_begin(&af, path);
    if (!err) {
        FILE *f = af.f;
        uint8_t len8[8];
        for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)padded >> (8 * i));
        int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(header, 1, hlen, f) == hlen;
        for (size_t i = hlen; ok && i < padded; i++) ok = fputc(' ', f) != EOF;
        for (int64_t i = 0; ok && i < count; i++)
            ok = bytes[i] == 0 || fwrite(tensors[i].data, 1, (size_t)bytes[i], f) == (size_t)bytes[i];
        err = fp4_atomic_finish(&af, path, ok ? 0 : errno ? errno : EIO);
    }
    free(header);
    free(bytes);
    if (err)
        return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "fp4_safetensors_write %.300s: %s", path,
                        strerror(err));
    return FP4_OK;
}

#else /* no cJSON */

fp4_status fp4_safetensors_write(const char *path, const fp4_st_tensor *tensors, int64_t count,
                                 const char *const *meta, int64_t n_meta) {
    (void)path, (void)tensors, (void)count, (void)meta, (void)n_meta;
    return FP4_FAIL(NULL, FP4_ERR_NOT_SUPPORTED, FP4_ST_NO_CJSON);
}

#endif

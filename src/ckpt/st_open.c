/* st_open.c - opening a checkpoint: a .safetensors file mapped read-only, a folder, or a
 * sharded checkpoint's index (model.safetensors.index.json, {"weight_map": {name: shard}}),
 * and the accessors of the open handle. Each file's header is validated by safetensors.c. */
#define _POSIX_C_SOURCE 200809L
#include "ckpt/ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef FP4GEMM_HAVE_CJSON
#include <cjson/cJSON.h>
#endif

#define MAX_INDEX_BYTES (64 << 20) /* an index JSON larger than this is refused */

void fp4_safetensors_close(fp4_safetensors *st) {
    if (!st) return;
    for (int i = 0; i < st->n_shards; i++) {
        if (st->shards[i].mapped && st->shards[i].base)
            munmap((void *)st->shards[i].base, (size_t)st->shards[i].size);
        free(st->shards[i].path);
    }
    for (int64_t i = 0; i < st->count; i++) free(st->names[i]);
    for (int64_t i = 0; i < 2 * st->n_meta; i++) free(st->meta[i]);
    free(st->shards);
    free(st->tensors);
    free(st->names);
    free(st->meta);
    free(st);
}

static fp4_safetensors *new_handle(int n_shards) {
    fp4_safetensors *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    st->shards = calloc((size_t)n_shards, sizeof *st->shards);
    if (!st->shards) {
        free(st);
        return NULL;
    }
    st->n_shards = n_shards;
    return st;
}

fp4_status fp4_safetensors_open_buffer(const void *data, int64_t size, const char *origin,
                                       fp4_safetensors **out) {
    if (!out) return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "fp4_safetensors_open_buffer: out is NULL");
    *out = NULL;
    if ((!data && size) || size < 0)
        return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT,
                        "fp4_safetensors_open_buffer: data is NULL or size < 0");
    if (!fp4_built_with_safetensors()) return FP4_FAIL(NULL, FP4_ERR_NOT_SUPPORTED, FP4_ST_NO_CJSON);
    fp4_safetensors *st = new_handle(1);
    if (!st || !(st->shards[0].path = strdup(origin ? origin : "safetensors buffer"))) {
        fp4_safetensors_close(st);
        return FP4_FAIL(NULL, FP4_ERR_OUT_OF_MEMORY, "fp4_safetensors_open_buffer");
    }
    static const uint8_t nothing[8];
    st->shards[0].base = data ? data : nothing;
    st->shards[0].size = size;
    fp4_status s = fp4_st_parse_file(st, 0);
    if (s == FP4_OK) s = fp4_st_finish(st);
    if (s != FP4_OK) {
        fp4_safetensors_close(st);
        return s;
    }
    *out = st;
    return FP4_OK;
}

#ifdef FP4GEMM_HAVE_CJSON
/* Maps `path` read-only into sh (sh->path set by the caller). */
static fp4_status map_file(fp4_st_shard *sh) {
    const int fd = open(sh->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "%.300s: %s", sh->path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "%.300s: not a regular file", sh->path);
    }
    sh->size = (int64_t)sb.st_size;
    if (sh->size < 8) { /* too short: the parser says so (and mmap of 0 bytes would fail) */
        close(fd);
        static const uint8_t nothing[8];
        sh->base = nothing;
        return FP4_OK;
    }
    void *p = mmap(NULL, (size_t)sh->size, PROT_READ, MAP_PRIVATE, fd, 0);
    const int err = errno;
    close(fd);
    if (p == MAP_FAILED)
        return FP4_FAIL(NULL, FP4_ERR_OUT_OF_MEMORY, "%.300s: mmap of %lld bytes: %s", sh->path,
                        (long long)sh->size, strerror(err));
    sh->base = p;
    sh->mapped = 1;
    return FP4_OK;
}

static fp4_status open_single(const char *path, fp4_safetensors **out) {
    fp4_safetensors *st = new_handle(1);
    if (!st || !(st->shards[0].path = strdup(path))) {
        fp4_safetensors_close(st);
        return FP4_FAIL(NULL, FP4_ERR_OUT_OF_MEMORY, "fp4_safetensors_open");
    }
    fp4_status s = map_file(&st->shards[0]);
    if (s == FP4_OK) s = fp4_st_parse_file(st, 0);
    if (s == FP4_OK) s = fp4_st_finish(st);
    if (s != FP4_OK) {
        fp4_safetensors_close(st);
        return s;
    }
    *out = st;
    return FP4_OK;
}

/* The whole (small) file at path, NUL-terminated, in *out: a buffer of the file's size, and a
 * file whose size changes while it is read is refused (one byte more is asked for, to see a
 * file that grew). */
static fp4_status read_small(const char *path, char **out, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "%.300s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "%.300s: not a regular file", path);
    }
    if (sb.st_size > MAX_INDEX_BYTES) {
        fclose(f);
        return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "%.300s: over 64 MiB: not an index", path);
    }
    const size_t size = (size_t)sb.st_size;
    char *buf = malloc(size + 1);
    if (!buf) {
        fclose(f);
        return FP4_FAIL(NULL, FP4_ERR_OUT_OF_MEMORY, "%.300s: %zu bytes", path, size + 1);
    }
    const size_t n = fread(buf, 1, size + 1, f);
    const int bad = ferror(f);
    fclose(f);
    if (bad || n != size) {
        free(buf);
        return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "%.300s: %s", path,
                        bad ? "read error" : "its size changed while it was read");
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return FP4_OK;
}

/* A shard name of an index: a plain file name in the index's folder. */
static int shard_name_ok(const char *s) {
    return s[0] && !strchr(s, '/') && !strchr(s, '\\') && strcmp(s, ".") && strcmp(s, "..");
}

static fp4_status open_index(const char *path, fp4_safetensors **out) {
    char *text = NULL;
    size_t len = 0;
    fp4_status s = read_small(path, &text, &len);
    if (s != FP4_OK) return s;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    const cJSON *map = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "weight_map")
                                            : NULL;
    if (!cJSON_IsObject(map)) {
        cJSON_Delete(root);
        return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "%.300s: not a sharded checkpoint index "
                        "(a JSON object with a \"weight_map\" object)", path);
    }
    /* the distinct shard names, in order of first use */
    int n_shards = 0, cap = 0;
    const char **shard_names = NULL;
    int64_t entries = 0;
    s = FP4_OK;
    for (const cJSON *e = map->child; e && s == FP4_OK; e = e->next, entries++) {
        if (!cJSON_IsString(e) || !e->string || !shard_name_ok(e->valuestring)) {
            s = FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "%.300s: weight_map entry \"%.200s\": the "
                         "shard must be a file name in the index's folder (no '/', no \"..\")",
                         path, e->string ? e->string : "?");
            break;
        }
        int found = 0;
        for (int i = 0; i < n_shards && !found; i++) found = !strcmp(shard_names[i], e->valuestring);
        if (found) continue;
        if (n_shards == cap) {
            cap = cap ? 2 * cap : 8;
            const char **g = realloc(shard_names, (size_t)cap * sizeof *g);
            if (!g) {
                s = FP4_FAIL(NULL, FP4_ERR_OUT_OF_MEMORY, "%.300s", path);
                break;
            }
            shard_names = g;
        }
        shard_names[n_shards++] = e->valuestring;
    }
    fp4_safetensors *st = s == FP4_OK ? new_handle(n_shards ? n_shards : 1) : NULL;
    if (s == FP4_OK && !st) s = FP4_FAIL(NULL, FP4_ERR_OUT_OF_MEMORY, "%.300s", path);
    if (st) st->n_shards = n_shards;
    const char *slash = strrchr(path, '/');
    const size_t dir_len = slash ? (size_t)(slash - path + 1) : 0;
    for (int i = 0; s == FP4_OK && i < n_shards; i++) {
        const size_t n = dir_len + strlen(shard_names[i]) + 1;
        if (!(st->shards[i].path = malloc(n))) {
            s = FP4_FAIL(NULL, FP4_ERR_OUT_OF_MEMORY, "%.300s", path);
            break;
        }
        snprintf(st->shards[i].path, n, "%.*s%s", (int)dir_len, path, shard_names[i]);
        s = map_file(&st->shards[i]);
        if (s == FP4_OK) s = fp4_st_parse_file(st, i);
    }
    if (s == FP4_OK) s = fp4_st_finish(st);
    /* the map and the shards agree: each mapped name in its shard, once; nothing unmapped */
    char *seen = s == FP4_OK ? calloc((size_t)(st->count + 1), 1) : NULL;
    if (s == FP4_OK && !seen) s = FP4_FAIL(NULL, FP4_ERR_OUT_OF_MEMORY, "%.300s", path);
    for (const cJSON *e = map->child; e && s == FP4_OK; e = e->next) {
        const int64_t i = fp4_safetensors_find(st, e->string);
        const char *want = e->valuestring;
        const char *got = i >= 0 ? strrchr(st->tensors[i].file, '/') : NULL;
        got = got ? got + 1 : i >= 0 ? st->tensors[i].file : NULL;
        if (i < 0 || strcmp(got, want) != 0)
            s = FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "%.300s: weight_map puts \"%.200s\" in "
                         "%.200s, but %s", path, e->string, want, i < 0 ? "no shard has it" :
                         "it is in another shard");
        else if (seen[i]++)
            s = FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "%.300s: weight_map names \"%.200s\" twice",
                         path, e->string);
    }
    if (s == FP4_OK && entries != st->count)
        s = FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "%.300s: the shards hold %lld tensors but "
                     "weight_map lists %lld", path, (long long)st->count, (long long)entries);
    free(seen);
    free(shard_names);
    cJSON_Delete(root);
    if (s != FP4_OK) {
        fp4_safetensors_close(st);
        return s;
    }
    *out = st;
    return FP4_OK;
}

static int ends_with(const char *s, const char *suffix) {
    const size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}
#endif

fp4_status fp4_safetensors_open(const char *path, fp4_safetensors **out) {
    if (!out) return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "fp4_safetensors_open: out is NULL");
    *out = NULL;
    if (!path || !*path)
        return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "fp4_safetensors_open: path is %s",
                        path ? "empty" : "NULL");
#ifndef FP4GEMM_HAVE_CJSON
    return FP4_FAIL(NULL, FP4_ERR_NOT_SUPPORTED, FP4_ST_NO_CJSON);
#else
    struct stat sb;
    if (stat(path, &sb) != 0)
        return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "%.300s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        char buf[4200];
        if (strlen(path) > 4000)
            return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "fp4_safetensors_open: path too long");
        snprintf(buf, sizeof buf, "%s/model.safetensors.index.json", path);
        if (stat(buf, &sb) == 0) return open_index(buf, out);
        snprintf(buf, sizeof buf, "%s/model.safetensors", path);
        if (stat(buf, &sb) == 0) return open_single(buf, out);
        return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "%.300s: a folder with neither "
                        "model.safetensors.index.json nor model.safetensors", path);
    }
    return ends_with(path, ".json") ? open_index(path, out) : open_single(path, out);
#endif
}

int64_t fp4_safetensors_count(const fp4_safetensors *st) { return st ? st->count : 0; }

fp4_status fp4_safetensors_tensor(const fp4_safetensors *st, int64_t index, fp4_st_tensor *out) {
    if (!st || !out)
        return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "fp4_safetensors_tensor: NULL argument");
    if (index < 0 || index >= st->count)
        return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "fp4_safetensors_tensor: index %lld not "
                        "in [0, %lld)", (long long)index, (long long)st->count);
    *out = st->tensors[index];
    return FP4_OK;
}

int64_t fp4_safetensors_find(const fp4_safetensors *st, const char *name) {
    if (!st || !name) return -1;
    int64_t lo = 0, hi = st->count; /* binary search: the tensors are sorted by name */
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        const int c = strcmp(st->tensors[mid].name, name);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

int64_t fp4_safetensors_metadata_count(const fp4_safetensors *st) { return st ? st->n_meta : 0; }

const char *fp4_safetensors_metadata_key(const fp4_safetensors *st, int64_t index) {
    return st && index >= 0 && index < st->n_meta ? st->meta[2 * index] : NULL;
}

const char *fp4_safetensors_metadata(const fp4_safetensors *st, const char *key) {
    for (int64_t i = 0; st && key && i < st->n_meta; i++)
        if (st->meta[2 * i] && strcmp(st->meta[2 * i], key) == 0) return st->meta[2 * i + 1];
    return NULL;
}

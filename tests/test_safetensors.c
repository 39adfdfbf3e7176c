/* test_safetensors.c - the safetensors reader and writer and the ModelOpt NVFP4 loader
 * (src/ckpt/): a round trip of every dtype through the writer and the mapped reader; every
 * rule of the format broken once, each by a small generated file that must be refused with
 * FP4_ERR_INVALID_ARGUMENT and a message naming the fault; sharded checkpoints and their
 * index's faults; the loader against fp4_quantize's own bytes and fp4_sf_convert, and its
 * faults. SKIP (77) when the library was built without cJSON. */
#define _POSIX_C_SOURCE 200809L
#include "fp4gemm.h"
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[256];

/* The writer's temporaries left in g_dir (".NAME.XXXXXX": src/atomic_file.c). */
static int count_temporaries(void) { return tu_count_hidden_files(g_dir); }

/* A file image: 8-byte length, the header text (hlen bytes; 0: strlen), then `data_len`
 * bytes of i & 0xFF. */
static uint8_t *image_n(const char *header, size_t hlen, int64_t data_len, int64_t *size) {
    const size_t h = hlen ? hlen : strlen(header);
    *size = 8 + (int64_t)h + data_len;
    uint8_t *p = malloc((size_t)*size + 1);
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(p + 8, header, h);
    for (int64_t i = 0; i < data_len; i++) p[8 + h + i] = (uint8_t)i;
    return p;
}

static uint8_t *image(const char *header, int64_t data_len, int64_t *size) {
    return image_n(header, 0, data_len, size);
}

/* The header must be refused with a message containing `needle`. */
static void expect_bad(const char *what, const char *header, int64_t data_len, const char *needle) {
    int64_t size;
    uint8_t *p = image(header, data_len, &size);
    fp4_safetensors *st = (fp4_safetensors *)p; /* must be overwritten with NULL */
    const fp4_status s = fp4_safetensors_open_buffer(p, size, "bad.safetensors", &st);
    const char *msg = fp4_last_error(NULL);
    const int ok = s == FP4_ERR_INVALID_ARGUMENT && st == NULL && strstr(msg, needle) &&
                   strstr(msg, "bad.safetensors");
    tu_case(ok, "refused: %-38s %s", what, ok ? "" : msg);
    fp4_safetensors_close(s == FP4_OK ? st : NULL);
    free(p);
}

static void test_bad_headers(void) {
    const char *t = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}";
    int64_t size;
    uint8_t *p = image(t, 16, &size);
    fp4_safetensors *st = NULL;
    tu_case(fp4_safetensors_open_buffer(p, size, "good", &st) == FP4_OK &&
                fp4_safetensors_count(st) == 1, "the well-formed base case opens");
    fp4_safetensors_close(st);
    /* the length field */
    p[0] = 0xFF, p[1] = 0xFF, p[2] = 0xFF, p[3] = 0xFF;
    tu_case(fp4_safetensors_open_buffer(p, size, "x", &st) == FP4_ERR_INVALID_ARGUMENT &&
                strstr(fp4_last_error(NULL), "over the format's limit"), "refused: a huge header length");
    memset(p, 0, 8);
    p[0] = (uint8_t)(strlen(t) + 17);
    tu_case(fp4_safetensors_open_buffer(p, size, "x", &st) == FP4_ERR_INVALID_ARGUMENT &&
                strstr(fp4_last_error(NULL), "past the end"), "refused: a header past the end");
    tu_case(fp4_safetensors_open_buffer(p, 5, "x", &st) == FP4_ERR_INVALID_ARGUMENT &&
                strstr(fp4_last_error(NULL), "too short"), "refused: a 5-byte file");
    free(p);
    expect_bad("not JSON", "{\"a\":", 0, "not valid JSON");
    expect_bad("not an object", "[1,2]", 0, "does not begin with '{'");
    expect_bad("text after the object", "{}  x", 0, "text after");
    expect_bad("entry not an object", "{\"a\":3}", 0, "not an object");
    expect_bad("unknown dtype", "{\"a\":{\"dtype\":\"F31\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
               "not a safetensors dtype");
    expect_bad("dtype not a string", "{\"a\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
               "not a safetensors dtype");
    expect_bad("missing shape", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "missing \"shape\"");
    expect_bad("unknown field", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}",
               4, "unknown field");
    expect_bad("field twice", "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],"
               "\"data_offsets\":[0,4]}}", 4, "given twice");
    expect_bad("negative dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
               "non-negative integer");
    expect_bad("fractional dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}",
               4, "non-negative integer");
    expect_bad("9 dims", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}",
               1, "9 dimensions");
    expect_bad("element count overflow", "{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,"
               "4294967296],\"data_offsets\":[0,1]}}", 1, "overflows");
    expect_bad("byte size overflow", "{\"a\":{\"dtype\":\"F64\",\"shape\":[4611686018427387,4096],"
               "\"data_offsets\":[0,1]}}", 1, "overflows");
    expect_bad("offsets not a pair", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
               "[begin, end]");
    expect_bad("offsets reversed", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4,
               "end before");
    expect_bad("offsets past the data", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
               4, "past the data section");
    expect_bad("size mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 16,
               "needs 16");
    expect_bad("overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap");
    expect_bad("hole", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "hole");
    expect_bad("bytes after the last", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
               9, "cover 4 bytes");
    expect_bad("duplicate name", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
               "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2, "appears twice");
    expect_bad("empty name", "{\"\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
               "empty name");
    expect_bad("metadata not strings", "{\"__metadata__\":{\"a\":1}}", 0, "not a string");
    expect_bad("metadata twice", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, "given twice");
    {
        static const char nul[] = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}\0 ";
        int64_t n;
        uint8_t *q = image_n(nul, sizeof nul - 1, 1, &n);
        fp4_safetensors *h = NULL;
        tu_case(fp4_safetensors_open_buffer(q, n, "nul", &h) == FP4_ERR_INVALID_ARGUMENT && !h &&
                    strstr(fp4_last_error(NULL), "a NUL byte"), "refused: a NUL byte in the header");
        free(q);
    }
}

/* Writes n tensors of every dtype, reads them back through the map. */
static void test_round_trip(tu_rng *rng) {
    fp4_st_tensor t[FP4_ST_DTYPE_COUNT + 1];
    uint8_t *bufs[FP4_ST_DTYPE_COUNT + 1];
    char names[FP4_ST_DTYPE_COUNT + 1][32];
    memset(t, 0, sizeof t);
    int n = 0;
    for (int d = 0; d < FP4_ST_DTYPE_COUNT; d++, n++) {
        snprintf(names[n], sizeof names[n], "t%02d.%s", 30 - d, fp4_st_dtype_name((fp4_st_dtype)d));
        t[n].name = names[n];
        t[n].dtype = (fp4_st_dtype)d;
        t[n].ndim = 1 + d % 3;
        for (int i = 0; i < t[n].ndim; i++) t[n].shape[i] = tu_rng_range(rng, 1, 7);
        int64_t bytes = fp4_st_dtype_size(t[n].dtype);
        for (int i = 0; i < t[n].ndim; i++) bytes *= t[n].shape[i];
        bufs[n] = malloc((size_t)bytes);
        tu_fill_bytes(rng, bufs[n], bytes);
        t[n].data = bufs[n];
    }
    snprintf(names[n], sizeof names[n], "scalar");   /* a 0-dim tensor */
    t[n] = (fp4_st_tensor){.name = names[n], .dtype = FP4_ST_F32, .ndim = 0};
    static const float one = 1.0f;
    t[n].data = &one;
    bufs[n++] = NULL;
    char path[320];
    snprintf(path, sizeof path, "%s/rt.safetensors", g_dir);
    const char *meta[4] = {"format", "pt", "note", "round \"trip\""};
    fp4_status s = fp4_safetensors_write(path, t, n, meta, 2);
    tu_case(s == FP4_OK, "write %d tensors of every dtype %s", n, s ? fp4_last_error(NULL) : "");
    fp4_safetensors *st = NULL;
    s = fp4_safetensors_open(path, &st);
    int ok = s == FP4_OK && fp4_safetensors_count(st) == n;
    for (int i = 0; ok && i < n; i++) {
        fp4_st_tensor r;
        const int64_t j = fp4_safetensors_find(st, t[i].name);
        ok = j >= 0 && fp4_safetensors_tensor(st, j, &r) == FP4_OK && r.dtype == t[i].dtype &&
             r.ndim == t[i].ndim && !memcmp(r.shape, t[i].shape, sizeof r.shape) &&
             !memcmp(r.data, t[i].data, (size_t)r.bytes);
        if (ok && i == 0) ok = r.file_offset % 8 == 0; /* the data section starts 8-aligned */
    }
    fp4_st_tensor first, last;
    ok = ok && fp4_safetensors_tensor(st, 0, &first) == FP4_OK &&
         fp4_safetensors_tensor(st, n - 1, &last) == FP4_OK && strcmp(first.name, last.name) < 0;
    ok = ok && fp4_safetensors_metadata_count(st) == 2 &&
         !strcmp(fp4_safetensors_metadata(st, "note"), "round \"trip\"") &&
         fp4_safetensors_find(st, "nope") == -1 &&
         fp4_safetensors_tensor(st, n, &first) == FP4_ERR_INVALID_ARGUMENT;
    tu_case(ok, "read back: names sorted, dtypes, shapes, bytes, metadata");
    fp4_safetensors_close(st);
    /* writer refusals */
    fp4_st_tensor dup[2] = {t[0], t[0]};
    tu_case(fp4_safetensors_write(path, dup, 2, NULL, 0) == FP4_ERR_INVALID_ARGUMENT &&
                strstr(fp4_last_error(NULL), "twice"), "write refuses a duplicate name");
    fp4_st_tensor neg = t[1];
    neg.shape[0] = -3;
    tu_case(fp4_safetensors_write(path, &neg, 1, NULL, 0) == FP4_ERR_INVALID_ARGUMENT,
            "write refuses a negative dimension");
    char nodir[320];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/x.safetensors", g_dir);
    tu_case(fp4_safetensors_write(nodir, t, 1, NULL, 0) == FP4_ERR_INVALID_ARGUMENT &&
                strstr(fp4_last_error(NULL), "No such file"), "write into a missing folder fails with the reason");
    /* the old file is intact after that failure; open of a missing file says why */
    tu_case(fp4_safetensors_open(nodir, &st) == FP4_ERR_INVALID_ARGUMENT && st == NULL &&
                strstr(fp4_last_error(NULL), "No such file"), "open of a missing file says why");
    /* written through a temporary (src/atomic_file.c): readable by others, nothing left over
     * when the rename fails (a directory in the way, which stays) */
    struct stat sb;
    tu_case(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0644 && count_temporaries() == 0,
            "the written file is mode 0644 and no temporary is left (mode %o)",
            (unsigned)(sb.st_mode & 0777));
    char adir[320];
    snprintf(adir, sizeof adir, "%s/adir.safetensors", g_dir);
    mkdir(adir, 0755);
    tu_case(fp4_safetensors_write(adir, t, 1, NULL, 0) == FP4_ERR_INVALID_ARGUMENT &&
                strstr(fp4_last_error(NULL), adir) && stat(adir, &sb) == 0 &&
                S_ISDIR(sb.st_mode) && count_temporaries() == 0,
            "write onto a directory fails naming it, the directory stays, no temporary left: %s",
            fp4_last_error(NULL));
    rmdir(adir);
    for (int i = 0; i < n; i++) free(bufs[i]);
}

static void write_text(const char *name, const char *text) {
    char path[320];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
}

static void test_sharded(void) {
    char sub[300], path[320];
    snprintf(sub, sizeof sub, "%s/sharded", g_dir);
    mkdir(sub, 0755);
    const uint8_t bytes[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    fp4_st_tensor a = {.name = "a.weight", .dtype = FP4_ST_U8, .ndim = 1, .shape = {4}, .data = bytes};
    fp4_st_tensor b = {.name = "b.weight", .dtype = FP4_ST_U8, .ndim = 1, .shape = {4}, .data = bytes + 4};
    snprintf(path, sizeof path, "%s/s1.safetensors", sub);
    fp4_safetensors_write(path, &a, 1, NULL, 0);
    snprintf(path, sizeof path, "%s/s2.safetensors", sub);
    fp4_safetensors_write(path, &b, 1, NULL, 0);
    fp4_st_tensor bc[2] = {b, a};
    bc[1].name = "c.weight";
    snprintf(path, sizeof path, "%s/s3.safetensors", sub);
    fp4_safetensors_write(path, bc, 2, NULL, 0);
    write_text("sharded/model.safetensors.index.json",
               "{\"metadata\":{\"total_size\":8},\"weight_map\":{\"a.weight\":\"s1.safetensors\","
               "\"b.weight\":\"s2.safetensors\"}}");
    fp4_safetensors *st = NULL;
    fp4_st_tensor r;
    fp4_status s = fp4_safetensors_open(sub, &st); /* the folder finds the index */
    int ok = s == FP4_OK && fp4_safetensors_count(st) == 2 &&
             fp4_safetensors_tensor(st, 1, &r) == FP4_OK && !strcmp(r.name, "b.weight") &&
             ((const uint8_t *)r.data)[0] == 5 && strstr(r.file, "s2.safetensors");
    tu_case(ok, "sharded: a folder with an index opens both shards %s", s ? fp4_last_error(NULL) : "");
    fp4_safetensors_close(st);
    static const struct {
        const char *what, *json, *needle;
    } bad[] = {
        {"no weight_map", "{\"x\":1}", "weight_map"},
        {"a path in a shard name", "{\"weight_map\":{\"a.weight\":\"../s1.safetensors\"}}", "no '/'"},
        {"a missing shard", "{\"weight_map\":{\"a.weight\":\"s9.safetensors\",\"b.weight\":\"s2.safetensors\"}}",
         "No such file"},
        {"a tensor in another shard", "{\"weight_map\":{\"a.weight\":\"s2.safetensors\",\"b.weight\":"
         "\"s1.safetensors\"}}", "another shard"},
        {"a tensor the shards lack", "{\"weight_map\":{\"a.weight\":\"s1.safetensors\",\"c.weight\":"
         "\"s2.safetensors\",\"b.weight\":\"s2.safetensors\"}}", "no shard has it"},
        {"a shard's tensor not in the map", "{\"weight_map\":{\"b.weight\":\"s3.safetensors\"}}",
         "weight_map lists 1"},
        {"a name twice in the map", "{\"weight_map\":{\"a.weight\":\"s1.safetensors\",\"a.weight\":"
         "\"s1.safetensors\"}}", "twice"},
        {"not JSON", "{\"weight_map\":", "weight_map"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text("sharded/bad.index.json", bad[i].json);
        snprintf(path, sizeof path, "%s/bad.index.json", sub);
        st = (fp4_safetensors *)path;
        s = fp4_safetensors_open(path, &st);
        const int good = s == FP4_ERR_INVALID_ARGUMENT && st == NULL &&
                         strstr(fp4_last_error(NULL), bad[i].needle);
        tu_case(good, "sharded refused: %-32s %s", bad[i].what, good ? "" : fp4_last_error(NULL));
        if (s == FP4_OK) fp4_safetensors_close(st);
    }
    snprintf(path, sizeof path, "%s/empty", g_dir);
    mkdir(path, 0755);
    tu_case(fp4_safetensors_open(path, &st) == FP4_ERR_INVALID_ARGUMENT &&
                strstr(fp4_last_error(NULL), "neither"), "a folder without a checkpoint is refused");
    /* the index is read into a buffer of its size: one over 64 MiB (sparse) is refused
     * unread, and one whose size is not what stat said (a /proc file: size 0, some text) is
     * refused, not read past */
    snprintf(path, sizeof path, "%s/huge.index.json", sub);
    FILE *f = fopen(path, "wb");
    const int made = f && ftruncate(fileno(f), (64 << 20) + 1) == 0;
    if (f) fclose(f);
    tu_case(made && fp4_safetensors_open(path, &st) == FP4_ERR_INVALID_ARGUMENT && st == NULL &&
                strstr(fp4_last_error(NULL), "over 64 MiB: not an index"),
            "an index over 64 MiB is refused: %s", fp4_last_error(NULL));
    unlink(path);
    snprintf(path, sizeof path, "%s/grows.index.json", sub);
    struct stat sb;
    if (stat("/proc/self/status", &sb) != 0 || sb.st_size != 0 || symlink("/proc/self/status", path)) {
        tu_skip("no /proc/self/status of size 0 to link: the size-change case is not run");
    } else {
        tu_case(fp4_safetensors_open(path, &st) == FP4_ERR_INVALID_ARGUMENT && st == NULL &&
                    strstr(fp4_last_error(NULL), "its size changed while it was read"),
                "an index whose size is not what stat says is refused: %s", fp4_last_error(NULL));
        unlink(path);
    }
}

void test_loader(tu_rng *rng, const char *dir); /* test_safetensors_loader.c */

int main(void) {
    const uint64_t seed = tu_seed(16);
    tu_begin("test_safetensors", seed);
    if (!fp4_built_with_safetensors()) {
        fp4_safetensors *st = NULL;
        tu_case(fp4_safetensors_open("x", &st) == FP4_ERR_NOT_SUPPORTED &&
                    strstr(fp4_last_error(NULL), "built without cJSON"),
                "without cJSON the calls say so");
        tu_skip("built without cJSON (libcjson-dev): no checkpoint support to test");
        return tu_finish();
    }
    snprintf(g_dir, sizeof g_dir, "/tmp/fp4_test_st_%d", (int)getpid());
    mkdir(g_dir, 0755);
    tu_rng rng;
    tu_rng_seed(&rng, seed);
    test_bad_headers();
    test_round_trip(&rng);
    test_sharded();
    test_loader(&rng, g_dir);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    return tu_finish();
}

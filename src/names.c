/* names.c - status, dtype, layout, backend, tactic and log-level names; version and build
 * facts. Names are matched ignoring ASCII case. */
#include "backend.h"

#include <stdio.h>
#include <string.h>

#define FP4_STR2(x) #x
#define FP4_STR(x) FP4_STR2(x)

const char *fp4_version(void) {
    return FP4_STR(FP4GEMM_VERSION_MAJOR) "." FP4_STR(FP4GEMM_VERSION_MINOR) "." FP4_STR(
        FP4GEMM_VERSION_PATCH);
}

int fp4_built_with_cuda(void) {
#ifdef FP4GEMM_HAVE_CUDA
    return 1;
#else
    return 0;
#endif
}

const char *fp4_built_cuda_archs(void) { return FP4GEMM_CUDA_ARCHS; }

const char *fp4_status_name(fp4_status status) {
    switch (status) {
    case FP4_OK: return "FP4_OK";
    case FP4_ERR_INVALID_ARGUMENT: return "FP4_ERR_INVALID_ARGUMENT";
    case FP4_ERR_NOT_SUPPORTED: return "FP4_ERR_NOT_SUPPORTED";
    case FP4_ERR_OUT_OF_MEMORY: return "FP4_ERR_OUT_OF_MEMORY";
    case FP4_ERR_CUDA: return "FP4_ERR_CUDA";
    case FP4_ERR_NO_DEVICE: return "FP4_ERR_NO_DEVICE";
    case FP4_ERR_INTERNAL: return "FP4_ERR_INTERNAL";
    }
    return "FP4_ERR_UNKNOWN_STATUS";
}

const char *fp4_status_message(fp4_status status) {
    switch (status) {
    case FP4_OK: return "success";
    case FP4_ERR_INVALID_ARGUMENT: return "invalid argument";
    case FP4_ERR_NOT_SUPPORTED: return "not supported by the requested backend on this device";
    case FP4_ERR_OUT_OF_MEMORY: return "out of memory";
    case FP4_ERR_CUDA: return "a CUDA call failed";
    case FP4_ERR_NO_DEVICE: return "no such CUDA device, or no CUDA in this build";
    case FP4_ERR_INTERNAL: return "internal error in fp4gemm (please report it)";
    }
    return "unknown status value";
}

/* One table per enum: index = value. */
static const char *const k_dtype_names[FP4_DTYPE_COUNT] = {"f32", "f16", "bf16", "e2m1", "e4m3"};
static const char *const k_layout_names[FP4_SF_LAYOUT_COUNT] = {"linear", "swizzled"};
static const char *const k_log_names[5] = {"off", "error", "warn", "info", "debug"};

static const char *name_of(const char *const *table, int count, int value) {
    return (value >= 0 && value < count) ? table[value] : "?";
}

/* a == b, ignoring ASCII case; b is lower case, at most b_len bytes of a are compared */
static int same_name(const char *a, size_t a_len, const char *b) {
    if (strlen(b) != a_len) return 0;
    for (size_t i = 0; i < a_len; i++) {
        const char c = (a[i] >= 'A' && a[i] <= 'Z') ? (char)(a[i] - 'A' + 'a') : a[i];
        if (c != b[i]) return 0;
    }
    return 1;
}

/* Writes "a, b, c" (the table's names) into buf. */
static void list_names(const char *const *table, int count, char *buf, size_t len) {
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < count && used < len; i++) {
        const int n = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", table[i]);
        if (n > 0) used += (size_t)n;
    }
}

fp4_status fp4_name_fail(const char *fn, const char *kind, const char *name, const void *out,
                         const char *valid) {
    if (!name || !out)
        return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "%s: %s is NULL; valid %s names: %s", fn,
                        name ? "out" : "name", kind, valid);
    return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT,
                    "%s: \"%.60s\" is not a %s name; valid names (any case): %s", fn, name, kind,
                    valid);
}

/* Finds name in table (silently); INVALID_ARGUMENT for NULL or an unknown name. */
static fp4_status value_of(const char *const *table, int count, const char *name,
                           const void *out, int *value) {
    if (!name || !out) return FP4_ERR_INVALID_ARGUMENT;
    for (int i = 0; i < count; i++) {
        if (same_name(name, strlen(name), table[i])) {
            *value = i;
            return FP4_OK;
        }
    }
    return FP4_ERR_INVALID_ARGUMENT;
}

/* value_of, and on failure the message with the table's names in fp4_last_error(NULL). */
static fp4_status value_of_or_fail(const char *fn, const char *kind, const char *const *table,
                                   int count, const char *name, const void *out, int *value) {
    if (value_of(table, count, name, out, value) == FP4_OK) return FP4_OK;
    char valid[256];
    list_names(table, count, valid, sizeof valid);
    return fp4_name_fail(fn, kind, name, out, valid);
}

const char *fp4_dtype_name(fp4_dtype dtype) {
    return name_of(k_dtype_names, FP4_DTYPE_COUNT, (int)dtype);
}

fp4_status fp4_dtype_from_name(const char *name, fp4_dtype *out) {
    int v = 0;
    const fp4_status st = value_of_or_fail("fp4_dtype_from_name", "dtype", k_dtype_names,
                                           FP4_DTYPE_COUNT, name, out, &v);
    if (st == FP4_OK) *out = (fp4_dtype)v;
    return st;
}

const char *fp4_sf_layout_name(fp4_sf_layout layout) {
    return name_of(k_layout_names, FP4_SF_LAYOUT_COUNT, (int)layout);
}

fp4_status fp4_sf_layout_from_name(const char *name, fp4_sf_layout *out) {
    int v = 0;
    const fp4_status st = value_of_or_fail("fp4_sf_layout_from_name", "scale layout",
                                           k_layout_names, FP4_SF_LAYOUT_COUNT, name, out, &v);
    if (st == FP4_OK) *out = (fp4_sf_layout)v;
    return st;
}

/* Backend names are the registry's (src/registry.c); "auto" is not a backend. */
const char *fp4_backend_name(fp4_backend backend) {
    if (backend == FP4_BACKEND_AUTO) return "auto";
    const fp4_backend_ops *ops = fp4_registry_find(backend);
    return ops ? ops->name : "?";
}

/* The backend named by name[0..len), or NULL; AUTO is reported through *is_auto. */
static const fp4_backend_ops *backend_named(const char *name, size_t len, int *is_auto) {
    *is_auto = same_name(name, len, "auto");
    int count = 0;
    const fp4_backend_ops *const *reg = fp4_registry(&count);
    for (int i = 0; i < count; i++)
        if (same_name(name, len, reg[i]->name)) return reg[i];
    return NULL;
}

/* "auto, cpu_ref, ..." (the built backends) into buf */
static void list_backend_names(char *buf, size_t len) {
    int count = 0;
    const fp4_backend_ops *const *reg = fp4_registry(&count);
    int n = snprintf(buf, len, "auto");
    size_t used = n > 0 ? (size_t)n : 0;
    for (int i = 0; i < count && used < len; i++) {
        n = snprintf(buf + used, len - used, ", %s", reg[i]->name);
        if (n > 0) used += (size_t)n;
    }
}

fp4_status fp4_backend_from_name(const char *name, fp4_backend *out) {
    int is_auto = 0;
    const fp4_backend_ops *ops =
        (name && out) ? backend_named(name, strlen(name), &is_auto) : NULL;
    if (!ops && !is_auto) {
        char valid[256];
        list_backend_names(valid, sizeof valid);
        return fp4_name_fail("fp4_backend_from_name", "backend", name, out, valid);
    }
    *out = ops ? ops->id : FP4_BACKEND_AUTO;
    return FP4_OK;
}

/* ---- tactics ----------------------------------------------------------------------------- */

fp4_status fp4_tactic_name(fp4_tactic t, char *buf, size_t len) {
    if (!buf || len == 0)
        return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "fp4_tactic_name: buf is NULL or len 0");
    buf[0] = 0;
    const fp4_backend_ops *ops = fp4_registry_find(t.backend);
    if (t.backend == FP4_BACKEND_AUTO && t.config == -1) {
        if (len < 5)
            return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT, "fp4_tactic_name: len = %zu is too "
                            "small for \"auto\"", len);
        snprintf(buf, len, "auto");
        return FP4_OK;
    }
    if (!ops)
        return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT,
                        "fp4_tactic_name: backend = %d%s is not a backend", (int)t.backend,
                        t.backend == FP4_BACKEND_AUTO ? " (auto) with a config" : "");
    if (t.config < -1 || t.config >= fp4_config_count(ops))
        return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT,
                        "fp4_tactic_name: config = %d is not a config of %s (it has %d; -1 is "
                        "its heuristic)",
                        t.config, ops->name, fp4_config_count(ops));
    const int n = t.config < 0 ? snprintf(buf, len, "%s", ops->name)
                               : snprintf(buf, len, "%s/%s", ops->name, ops->config_name(t.config));
    if (n < 0 || (size_t)n >= len) {
        buf[0] = 0;
        return FP4_FAIL(NULL, FP4_ERR_INVALID_ARGUMENT,
                        "fp4_tactic_name: len = %zu is too small (%d bytes needed)", len, n + 1);
    }
    return FP4_OK;
}

/* Writes every valid tactic name, comma-separated, into buf. */
static void list_tactic_names(char *buf, size_t len) {
    size_t used = 0;
    int count = 0;
    const fp4_backend_ops *const *reg = fp4_registry(&count);
    int n = snprintf(buf, len, "auto");
    used = n > 0 ? (size_t)n : 0;
    for (int i = 0; i < count && used < len; i++) {
        n = snprintf(buf + used, len - used, ", %s", reg[i]->name);
        if (n > 0) used += (size_t)n;
        for (int c = 0; c < fp4_config_count(reg[i]) && used < len; c++) {
            n = snprintf(buf + used, len - used, ", %s/%s", reg[i]->name, reg[i]->config_name(c));
            if (n > 0) used += (size_t)n;
        }
    }
}

/* Writes the problem into why[why_len] and returns INVALID_ARGUMENT. */
#define PARSE_FAIL(...)                                                  \
    (((why && why_len) ? (void)snprintf(why, why_len, __VA_ARGS__) : (void)0), \
     FP4_ERR_INVALID_ARGUMENT)

fp4_status fp4_parse_tactic(const char *name, fp4_tactic *out, char *why, size_t why_len) {
    if (why && why_len) why[0] = 0;
    if (!name || !out)
        return PARSE_FAIL("fp4_tactic_from_name: %s is NULL", name ? "out" : "name");
    const char *slash = strchr(name, '/');
    const size_t blen = slash ? (size_t)(slash - name) : strlen(name);
    int is_auto = 0;
    const fp4_backend_ops *ops = backend_named(name, blen, &is_auto);
    char valid[700];
    if (!ops && !(is_auto && !slash)) {
        list_tactic_names(valid, sizeof valid);
        return PARSE_FAIL("\"%.60s\" is not a backend or tactic name; valid names: %s", name,
                          valid);
    }
    if (!slash) {
        out->backend = ops ? ops->id : FP4_BACKEND_AUTO;
        out->config = -1;
        return FP4_OK;
    }
    for (int c = 0; c < fp4_config_count(ops); c++) {
        if (same_name(slash + 1, strlen(slash + 1), ops->config_name(c))) {
            out->backend = ops->id;
            out->config = c;
            return FP4_OK;
        }
    }
    size_t used = 0;
    valid[0] = 0;
    for (int c = 0; c < fp4_config_count(ops) && used < sizeof valid; c++) {
        const int n = snprintf(valid + used, sizeof valid - used, "%s%s/%s", c ? ", " : "",
                               ops->name, ops->config_name(c));
        if (n > 0) used += (size_t)n;
    }
    if (fp4_config_count(ops) == 0 && !fp4_built_with_cuda() && ops->id != FP4_BACKEND_CPU_REF)
        return PARSE_FAIL("\"%.60s\": %s's configs are not in this build (built without CUDA)",
                          name, ops->name);
    return PARSE_FAIL("\"%.60s\": %s has no config \"%.40s\"; %s%s", name, ops->name, slash + 1,
                      fp4_config_count(ops) ? "its tactics: " : "it has no configs yet: use ",
                      fp4_config_count(ops) ? valid : ops->name);
}

fp4_status fp4_tactic_from_name(const char *name, fp4_tactic *out) {
    char why[900];
    const fp4_status st = fp4_parse_tactic(name, out, why, sizeof why);
    if (st != FP4_OK) return FP4_FAIL(NULL, st, "%s", why);
    return FP4_OK;
}

const char *fp4_log_level_name(fp4_log_level level) {
    return name_of(k_log_names, 5, (int)level + 1);
}

fp4_status fp4_log_level_parse(const char *name, fp4_log_level *out) {
    int v = 0;
    const fp4_status st = value_of(k_log_names, 5, name, out, &v);
    if (st == FP4_OK) *out = (fp4_log_level)(v - 1);
    return st;
}

fp4_status fp4_log_level_from_name(const char *name, fp4_log_level *out) {
    int v = 0;
    const fp4_status st =
        value_of_or_fail("fp4_log_level_from_name", "log level", k_log_names, 5, name, out, &v);
    if (st == FP4_OK) *out = (fp4_log_level)(v - 1);
    return st;
}

int64_t fp4_dtype_size(fp4_dtype dtype) {
    switch (dtype) {
    case FP4_DTYPE_F32: return 4;
    case FP4_DTYPE_F16: return 2;
    case FP4_DTYPE_BF16: return 2;
    case FP4_DTYPE_E4M3: return 1;
    case FP4_DTYPE_E2M1: return 0;
    }
    return 0;
}

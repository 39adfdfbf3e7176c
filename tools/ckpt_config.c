/* ckpt_config.c - the JSON files beside a checkpoint, as NVIDIA ModelOpt's export writes them
 * (docs/format.md "ModelOpt NVFP4 checkpoints"): hf_quant_config.json
 *   {"producer": {...}, "quantization": {"quant_algo": "NVFP4", "kv_cache_quant_algo": null,
 *    "group_size": 16, "exclude_modules": [...]}}
 * and config.json's "quantization_config" (convert_hf_quant_config_format: config_groups,
 * ignore, quant_algo, producer, quant_method "modelopt"). cJSON, as the library uses it. */
#define _POSIX_C_SOURCE 200809L /* fileno */
#include "ckpt_config.h"
#include "cli_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifdef FP4GEMM_HAVE_CJSON
#include <cjson/cJSON.h>

#define MAX_CONFIG_BYTES (64 << 20) /* a config file larger than this is not read */

/* The whole file, NUL-terminated, in a buffer of its size; NULL if it can't be read, is not
 * a regular file, is over MAX_CONFIG_BYTES, or its size changes while it is read (one byte
 * more is asked for, to see a file that grew). */
static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > MAX_CONFIG_BYTES) {
        fclose(f);
        return NULL;
    }
    const size_t size = (size_t)sb.st_size;
    char *buf = malloc(size + 1);
    const size_t n = buf ? fread(buf, 1, size + 1, f) : 0;
    const int bad = !buf || ferror(f) || n != size;
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    return buf;
}

static cJSON *producer(void) {
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "name", "fp4gemm");
    cJSON_AddStringToObject(p, "version", fp4_version());
    return p;
}

static cJSON *string_array(const char *const *items, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(items[i]));
    return a;
}

static cJSON *fp4_group(void) { /* {"dynamic": false, "num_bits": 4, "type": "float", "group_size": 16} */
    cJSON *g = cJSON_CreateObject();
    cJSON_AddFalseToObject(g, "dynamic");
    cJSON_AddNumberToObject(g, "num_bits", 4);
    cJSON_AddStringToObject(g, "type", "float");
    cJSON_AddNumberToObject(g, "group_size", 16);
    return g;
}

/* config.json's text: in_config's object with "quantization_config" as ModelOpt's export
 * sets it. NULL after the message (CLI_FAIL) when in_config is not a JSON object. */
static char *quantized_config(const char *cmd, const char *in_config, const char *const *excluded,
                              int n_excluded) {
    char *in = slurp(in_config);
    cJSON *cfg = in ? cJSON_Parse(in) : NULL;
    free(in);
    if (!cJSON_IsObject(cfg)) {
        cJSON_Delete(cfg);
        cli_fail(cmd, CLI_FAIL, "%s: not a JSON object: config.json and hf_quant_config.json "
                 "not written", in_config);
        return NULL;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(cfg, "quantization_config");
    cJSON *qc = cJSON_AddObjectToObject(cfg, "quantization_config");
    cJSON *groups = cJSON_AddObjectToObject(qc, "config_groups");
    cJSON *g0 = cJSON_AddObjectToObject(groups, "group_0");
    cJSON_AddItemToObject(g0, "input_activations", fp4_group());
    cJSON_AddItemToObject(g0, "weights", fp4_group());
    const char *linear = "Linear";
    cJSON_AddItemToObject(g0, "targets", string_array(&linear, 1));
    cJSON_AddItemToObject(qc, "ignore", string_array(excluded, n_excluded));
    cJSON_AddStringToObject(qc, "quant_algo", "NVFP4");
    cJSON_AddItemToObject(qc, "producer", producer());
    cJSON_AddStringToObject(qc, "quant_method", "modelopt");
    char *text = cJSON_Print(cfg);
    cJSON_Delete(cfg);
    if (!text) cli_fail(cmd, CLI_FAIL, "out of memory for config.json");
    return text;
}

int ckpt_write_configs(const char *cmd, const char *out_dir, const char *in_config,
                       const char *const *excluded, int n_excluded, char *written, size_t len) {
    written[0] = 0;
    /* hf_quant_config.json */
    cJSON *hf = cJSON_CreateObject();
    cJSON_AddItemToObject(hf, "producer", producer());
    cJSON *q = cJSON_AddObjectToObject(hf, "quantization");
    cJSON_AddStringToObject(q, "quant_algo", "NVFP4");
    cJSON_AddNullToObject(q, "kv_cache_quant_algo");
    cJSON_AddNumberToObject(q, "group_size", 16);
    cJSON_AddItemToObject(q, "exclude_modules", string_array(excluded, n_excluded));
    char *hf_text = cJSON_Print(hf);
    cJSON_Delete(hf);
    if (!hf_text) return cli_fail(cmd, CLI_FAIL, "out of memory for hf_quant_config.json");
    /* config.json with quantization_config, when there is an input config */
    char *cfg_text = in_config ? quantized_config(cmd, in_config, excluded, n_excluded) : NULL;
    if (in_config && !cfg_text) {
        free(hf_text);
        return CLI_FAIL;
    }
    /* both files or neither (cli_write_files): an older pair is replaced only once both are
     * complete */
    char hf_path[4200], cfg_path[4200];
    snprintf(hf_path, sizeof hf_path, "%s/hf_quant_config.json", out_dir);
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", out_dir);
    const int n_files = cfg_text ? 2 : 1;
    const cli_output outs[2] = {{hf_path, hf_text, (int64_t)strlen(hf_text)},
                                {cfg_path, cfg_text, cfg_text ? (int64_t)strlen(cfg_text) : 0}};
    const int rc = cli_write_files(cmd, outs, n_files);
    free(hf_text);
    free(cfg_text);
    if (rc == CLI_OK)
        snprintf(written, len, "%s", n_files == 2 ? "hf_quant_config.json, config.json"
                                                  : "hf_quant_config.json");
    return rc;
}

int ckpt_read_quant_config(const char *path, char *summary, size_t len) {
    char *text = slurp(path);
    if (!text) return 0;
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(root, "quantization");
    if (!q) q = cJSON_GetObjectItemCaseSensitive(root, "quantization_config"); /* config.json */
    if (!cJSON_IsObject(q)) {
        snprintf(summary, len, "%s: no \"quantization\" object", path);
        cJSON_Delete(root);
        return 1;
    }
    const cJSON *algo = cJSON_GetObjectItemCaseSensitive(q, "quant_algo");
    const cJSON *gs = cJSON_GetObjectItemCaseSensitive(q, "group_size");
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(q, "exclude_modules");
    if (!ex) ex = cJSON_GetObjectItemCaseSensitive(q, "ignore");
    const cJSON *prod = cJSON_GetObjectItemCaseSensitive(root, "producer");
    const cJSON *pname = cJSON_GetObjectItemCaseSensitive(prod, "name");
    const cJSON *pver = cJSON_GetObjectItemCaseSensitive(prod, "version");
    char *ex_text = ex ? cJSON_PrintUnformatted(ex) : NULL;
    snprintf(summary, len, "quant_algo %s, group_size %g, exclude_modules %.300s%s%s%s%s",
             cJSON_IsString(algo) ? algo->valuestring : "?",
             cJSON_IsNumber(gs) ? gs->valuedouble : 0.0, ex_text ? ex_text : "[]",
             cJSON_IsString(pname) ? ", producer " : "",
             cJSON_IsString(pname) ? pname->valuestring : "", cJSON_IsString(pver) ? " " : "",
             cJSON_IsString(pver) ? pver->valuestring : "");
    free(ex_text);
    cJSON_Delete(root);
    return 1;
}

#else

int ckpt_write_configs(const char *cmd, const char *out_dir, const char *in_config,
                       const char *const *excluded, int n_excluded, char *written, size_t len) {
    (void)out_dir, (void)in_config, (void)excluded, (void)n_excluded;
    snprintf(written, len, "%s", "");
    return cli_fail(cmd, CLI_FAIL, "built without cJSON: the config files can't be written");
}

int ckpt_read_quant_config(const char *path, char *summary, size_t len) {
    (void)path;
    snprintf(summary, len, "(built without cJSON: not read)");
    return 1;
}

#endif

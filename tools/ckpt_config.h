/* ckpt_config.h - what `fp4gemm checkpoint` shares between its files (cmd_checkpoint.c,
 * cmd_ckpt_quantize.c, ckpt_config.c). */
#ifndef FP4_CKPT_CONFIG_H
#define FP4_CKPT_CONFIG_H

#include "fp4gemm.h"

#include <stddef.h>
#include <stdint.h>

/* Writes out_dir/hf_quant_config.json (ModelOpt's layout: quant_algo NVFP4, group_size 16,
 * the excluded modules) and, when in_config (a config.json) is given, out_dir/config.json
 * with "quantization_config" as ModelOpt's export sets it: both or neither (cli_write_files;
 * an in_config that is not a JSON object writes neither). `written` gets the names written.
 * CLI_OK or CLI_FAIL after the message. */
int ckpt_write_configs(const char *cmd, const char *out_dir, const char *in_config,
                       const char *const *excluded, int n_excluded, char *written, size_t len);
/* One line describing hf_quant_config.json (or config.json's quantization_config) at path;
 * 0 when the file can't be read. */
int ckpt_read_quant_config(const char *path, char *summary, size_t len);

/* The folder a checkpoint path names: the path itself for a folder, else its parent ("."). */
void ckpt_folder(const char *path, char *dir, size_t len);
/* Element i of an F32/F16/BF16 safetensors tensor, as a double; NaN for other dtypes. */
double ckpt_element(const fp4_st_tensor *t, int64_t i);
/* "[384, 1536]" */
void ckpt_shape(const fp4_st_tensor *t, char *buf, size_t len);
/* 1 if `name` is <layer>.weight of an NVFP4 layer of st (U8 with a <layer>.weight_scale);
 * layer[] gets the layer's name. */
int ckpt_is_nvfp4_weight(const fp4_safetensors *st, const fp4_st_tensor *t, char *layer, size_t len);

int cmd_ckpt_quantize(int argc, char **argv); /* cmd_ckpt_quantize.c */

#endif /* FP4_CKPT_CONFIG_H */

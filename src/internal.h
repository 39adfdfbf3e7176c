/*
 * internal.h - what the library's own files share: the context, error reporting, logging,
 * and the entry points of each backend. Not installed; users include fp4gemm.h only.
 *
 * Division of labour: src/api.c validates every argument of every public call (so that a
 * backend sees only valid, fully defaulted descriptors: ld_in/ld_out/ldd are never 0, alpha
 * is resolved by the backend from alpha/alpha_ptr), then calls the CPU reference
 * (src/quant_ref.c) or the CUDA side (the .cu files in src/cuda/) below; a GEMM goes to the
 * backend that src/dispatch.c resolves, through its ops table (src/backend.h).
 */
#ifndef FP4_INTERNAL_H
#define FP4_INTERNAL_H

#include "fp4gemm.h"

#include <stdarg.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Compute-capability thresholds. */
enum {
    FP4_CC_VOLTA = 70,
    FP4_CC_AMPERE = 80,
    FP4_CC_HOPPER = 90,
    FP4_CC_BLACKWELL = 100, /* sm_100, sm_103, sm_110 */
    FP4_CC_BLACKWELL_GEFORCE = 120 /* sm_120, sm_121 */
};

/* The tuned table of a context (src/tune/tuning_table.c): open addressing, linear probing,
 * capacity a power of two kept at most half full. Lookups never allocate. */
typedef struct fp4_tuning_key {
    int64_t m_bucket, n, k;
    int32_t a_dtype, a_sf_layout, b_sf_layout, d_dtype;
} fp4_tuning_key;
typedef struct fp4_tuning_slot {
    fp4_tuning_key key;
    fp4_tactic tactic;
    double us;  /* the tuned median (microseconds) */
    int used;
} fp4_tuning_slot;
typedef struct fp4_tuning_table {
    fp4_tuning_slot *slots; /* NULL while empty */
    int64_t cap, count;
    int64_t ignored;        /* other devices' entries in the last load */
    char file[1024];        /* the last file loaded, or "" */
    fp4_autotune_mode mode;
    int tuning;             /* 1 while fp4_tune runs on this context (no nested first use) */
} fp4_tuning_table;

struct fp4_ctx {
    int device;              /* -1: CPU */
    fp4_device_info info;    /* zeroed for the CPU */
    fp4_tactic env_tactic;   /* FP4GEMM_BACKEND at creation: {AUTO, -1} if unset or "auto" */
    char env_problem[768];   /* why FP4GEMM_BACKEND was not understood, or "" */
    void *backend_state[FP4_BACKEND_COUNT];           /* made by each backend's init */
    char backend_init_error[FP4_BACKEND_COUNT][192]; /* "" unless its init failed */
    char last_error[1024];
    fp4_tuning_table tuning; /* src/tune/: the tuned tactics, consulted by auto */
};

/* Records a failure in ctx (which may be NULL) and returns `status`. The message gets
 * " (file:line)" appended, unless it already ends with such a location (it wraps the message
 * of an inner failure, whose location is kept), and is logged at debug level. */
fp4_status fp4_fail_at(fp4_ctx *ctx, fp4_status status, const char *file, int line,
                       const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
#define FP4_FAIL(ctx, status, ...) fp4_fail_at((ctx), (status), __FILE__, __LINE__, __VA_ARGS__)

/* Output structs (fp4_device_info, fp4_measure_result, fp4_verify_result, fp4_tune_result,
 * fp4_tuning_info) are versioned by their leading struct_size, like the descriptors: a caller
 * built against an older fp4gemm.h passes a smaller struct_size, which is accepted down to
 * min_size (the end of the last field the struct had in its first release) and gets only the
 * fields that fit; a larger one than cur_size is a newer header than this library. Checks
 * `size` (the caller's struct_size of the struct `type` named `what` in messages of `fn`);
 * records the failure in ctx (may be NULL) and returns INVALID_ARGUMENT, else FP4_OK. */
fp4_status fp4_out_struct_check(fp4_ctx *ctx, const char *fn, const char *what, const char *type,
                                size_t size, size_t min_size, size_t cur_size);
/* Copies the fields of `full` (this library's struct, full_size bytes, struct_size first)
 * that fit in the caller's struct `out` (out->struct_size bytes, already checked) into it,
 * leaving out->struct_size as the caller set it. */
void fp4_out_struct_fill(void *out, const void *full, size_t full_size);
/* The end of `field` in `type`: a struct's minimum struct_size is the end of its last field. */
#define FP4_STRUCT_END(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))

/* A *_from_name failure: records "fn: \"name\" is not a <kind> name; valid names (any
 * case): <valid>" (or that name/out is NULL) in fp4_last_error(NULL) and returns
 * FP4_ERR_INVALID_ARGUMENT. */
fp4_status fp4_name_fail(const char *fn, const char *kind, const char *name, const void *out,
                         const char *valid);
/* fp4_log_level_from_name without recording a failure (for the logger's own FP4GEMM_LOG_LEVEL,
 * read where logging a failure would recurse). */
fp4_status fp4_log_level_parse(const char *name, fp4_log_level *out);

void fp4_log(fp4_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The argument check of a GEMM descriptor (src/api.c), shared by every call that takes one:
 * copies *in into *out upgraded to today's struct (an older, smaller struct_size gets the
 * missing fields defaulted), checks it, and defaults ldd. NULL if valid, else the problem,
 * written into buf. */
const char *fp4_gemm_desc_prepare(const fp4_gemm_desc *in, fp4_gemm_desc *out, char *buf,
                                  size_t len);

/* fp4_tactic_from_name without touching fp4_last_error: the problem goes to why[why_len]
 * (src/names.c). */
fp4_status fp4_parse_tactic(const char *name, fp4_tactic *out, char *why, size_t why_len);

/* Reads FP4GEMM_BACKEND into ctx->env_tactic / ctx->env_problem (src/dispatch.c). */
void fp4_read_env_backend(fp4_ctx *ctx);

/* What fp4_gemm runs for a prepared desc: desc->backend/config, else FP4GEMM_BACKEND, else
 * the policy; the config from the heuristic when -1. FP4_OK and *out, or a failure recorded
 * in ctx. With why != NULL, also says why (fp4_gemm_select); without, formats nothing unless
 * it fails (fp4_gemm's hot path). */
fp4_status fp4_resolve_tactic(fp4_ctx *ctx, const fp4_gemm_desc *desc, fp4_tactic *out,
                              char *why, size_t why_len);

/* ---- CPU reference (arguments already validated) -------------------------------------- */

/* Reads element i of a row of F32/F16/BF16 values as float. */
float fp4_load_as_f32(const void *base, fp4_dtype dtype, int64_t index);
/* Stores x into element i of an F32/F16/BF16 array, rounding to nearest even. */
void fp4_store_from_f32(void *base, fp4_dtype dtype, int64_t index, float x);

/* Quantizes with desc->recipe and its global scale gs (the encode gs for flashinfer, the
 * decode ws2 for modelopt). Returns 1 if a non-finite input element was seen. */
int fp4_ref_quantize(const fp4_quant_desc *desc, float gs);
void fp4_ref_dequantize(const fp4_dequant_desc *desc, float gs);
/* amax over |x| (NaN ignored); the global scales it gives (gs, ModelOpt's ws2): format.h. */
float fp4_ref_amax(int64_t rows, int64_t k, fp4_dtype dtype, const void *in, int64_t ld_in);
/* The cpu_ref GEMM (src/cpu/cpu_ref.c). */
void fp4_ref_gemm(const fp4_gemm_desc *desc, float alpha);
/* fp4_sf_convert on host memory (src/api.c): one loop over the destination, padding 0. */
void fp4_ref_sf_convert(int64_t rows, int64_t k, const void *src, fp4_sf_layout src_layout,
                        void *dst, fp4_sf_layout dst_layout);

/* ---- CUDA side (src/cuda/); stubs in src/no_cuda.c when built without CUDA ------------- */

fp4_status fp4_cuda_device_count(int *count);
fp4_status fp4_cuda_device_query(int device, fp4_device_info *info);
/* Selects the device and fills ctx->info (the backends' own set-up: their init). */
fp4_status fp4_cuda_ctx_init(fp4_ctx *ctx);
fp4_status fp4_cuda_set_device(fp4_ctx *ctx);
fp4_status fp4_cuda_malloc(fp4_ctx *ctx, void **ptr, int64_t bytes);
fp4_status fp4_cuda_free(fp4_ctx *ctx, void *ptr);
fp4_status fp4_cuda_upload(fp4_ctx *ctx, void *dst, const void *src, int64_t bytes);
/* dst[0, bytes) = src[0, bytes), both on ctx's device; done when it returns. */
fp4_status fp4_cuda_copy_device(fp4_ctx *ctx, void *dst, const void *src, int64_t bytes);
fp4_status fp4_cuda_download(fp4_ctx *ctx, void *dst, const void *src, int64_t bytes);
fp4_status fp4_cuda_memset(fp4_ctx *ctx, void *dst, int value, int64_t bytes);
fp4_status fp4_cuda_synchronize(fp4_ctx *ctx, struct CUstream_st *stream);

fp4_status fp4_cuda_quantize(fp4_ctx *ctx, const fp4_quant_desc *desc);
fp4_status fp4_cuda_dequantize(fp4_ctx *ctx, const fp4_dequant_desc *desc);
fp4_status fp4_cuda_global_scale(fp4_ctx *ctx, int64_t rows, int64_t k, fp4_dtype in_dtype,
                                 const void *in, int64_t ld_in, float *gs_out,
                                 struct CUstream_st *stream);
/* ws2 of a group of validated tensors (an ld of 0 means k), stream-ordered. */
fp4_status fp4_cuda_modelopt_global_scale(fp4_ctx *ctx, const fp4_tensor_ref *tensors, int count,
                                          float *ws2_out, struct CUstream_st *stream);
fp4_status fp4_cuda_sf_convert(fp4_ctx *ctx, int64_t rows, int64_t k, const void *src,
                               fp4_sf_layout src_layout, void *dst, fp4_sf_layout dst_layout,
                               struct CUstream_st *stream);

#ifdef __cplusplus
}
#endif
#endif /* FP4_INTERNAL_H */

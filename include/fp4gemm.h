/*
 * fp4gemm.h - the public C API of fp4gemm, an NVFP4 GEMM library.
 *
 * C11. Compiles without CUDA headers. The format, layouts and the GEMM are defined in
 * docs/format.md (the NVFP4 contract). In short:
 *   - E2M1 elements, two per byte (even k in the low nibble), rows of K/2 bytes;
 *   - one E4M3 scale per 16 elements along K, in a LINEAR [rows, K/16] or the
 *     SWIZZLED_128x4 layout that cuBLASLt and CUTLASS use;
 *   - D[M, N] = alpha * sum_k A[m, k] * B[n, k], A and B row-major with K contiguous.
 *
 * Conventions:
 *   - every call returns an fp4_status; FP4_OK is 0;
 *   - a context lives on one device: device -1 is the CPU, 0.. a CUDA device. Every pointer
 *     given to a context-taking call lives where the context's device is (host memory for
 *     the CPU, device memory for a GPU), unless its comment says otherwise;
 *   - the GPU compute calls (fp4_gemm, fp4_quantize, fp4_dequantize, the global scales,
 *     fp4_sf_convert) are asynchronous on the given stream (NULL = the legacy default
 *     stream), allocate nothing and never synchronize, so they can be captured in a CUDA
 *     graph; the context, memory, measuring and checking calls allocate or synchronize
 *     (listed under "Threads" below);
 *   - the library never prints except through the logger (see fp4_set_log_level) and never
 *     exits; the detail of the last failure is kept in the context (fp4_last_error).
 */
#ifndef FP4GEMM_H
#define FP4GEMM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is compiled with hidden symbols; what this header declares is what it exports. */
#if defined(__GNUC__) && !defined(_WIN32)
#pragma GCC visibility push(default)
#endif

struct CUstream_st; /* cudaStream_t without the CUDA headers */

#define FP4GEMM_VERSION_MAJOR 0
#define FP4GEMM_VERSION_MINOR 1
#define FP4GEMM_VERSION_PATCH 0

/* ---------------------------------------------------------------------------------------
 * Status. The numeric values are pinned: they never change meaning.
 * ------------------------------------------------------------------------------------- */
typedef enum fp4_status {
    FP4_OK = 0,
    FP4_ERR_INVALID_ARGUMENT = 1, /* a NULL pointer, a bad size, an unknown enum value */
    FP4_ERR_NOT_SUPPORTED = 2,    /* valid, but the requested backend can't run it here */
    FP4_ERR_OUT_OF_MEMORY = 3,    /* host or device allocation failed */
    FP4_ERR_CUDA = 4,             /* a CUDA runtime or library call failed */
    FP4_ERR_NO_DEVICE = 5,        /* no such CUDA device, or no CUDA in this build */
    FP4_ERR_INTERNAL = 6          /* a bug in fp4gemm: please report it */
} fp4_status;

const char *fp4_status_name(fp4_status status);    /* "FP4_ERR_INVALID_ARGUMENT" */
const char *fp4_status_message(fp4_status status); /* "invalid argument" */
const char *fp4_version(void);                     /* "0.1.0" */

/* Build facts: 1 when compiled with CUDA; the CUDA architectures compiled in
 * ("80;90a;100a;120a"), or "" without CUDA. */
int fp4_built_with_cuda(void);
const char *fp4_built_cuda_archs(void);

/* ---------------------------------------------------------------------------------------
 * Enumerations, each with name <-> string conversion. *_name gives the lower-case name, or
 * "?" for a bad value. *_from_name ignores case ("CPU_REF", "Info") and returns
 * FP4_ERR_INVALID_ARGUMENT for an unknown name (or a NULL argument), leaving *out unchanged
 * and setting fp4_last_error(NULL) to what is wrong and the list of valid names ("fp4_dtype_
 * from_name: \"fp32\" is not a dtype name; valid names (any case): f32, f16, bf16, e2m1,
 * e4m3"), as fp4_tactic_from_name and fp4_quant_recipe_from_name do. Success leaves
 * fp4_last_error(NULL) as it was.
 * ------------------------------------------------------------------------------------- */
typedef enum fp4_dtype {
    FP4_DTYPE_F32 = 0,  /* "f32"  */
    FP4_DTYPE_F16 = 1,  /* "f16"  */
    FP4_DTYPE_BF16 = 2, /* "bf16" */
    FP4_DTYPE_E2M1 = 3, /* "e2m1": packed, two per byte */
    FP4_DTYPE_E4M3 = 4  /* "e4m3": OCP e4m3fn byte */
} fp4_dtype;
#define FP4_DTYPE_COUNT 5

typedef enum fp4_sf_layout {
    FP4_SF_LINEAR = 0,        /* "linear":   [rows, K/16] bytes, row-major */
    FP4_SF_SWIZZLED_128x4 = 1 /* "swizzled": 128-row x 4-k-block tiles of 512 bytes */
} fp4_sf_layout;
#define FP4_SF_LAYOUT_COUNT 2

typedef enum fp4_backend {
    FP4_BACKEND_AUTO = 0,       /* "auto": first in the policy for the device that can run */
    FP4_BACKEND_CPU_REF = 1,    /* "cpu_ref": the reference, double accumulation */
    FP4_BACKEND_CUDA_SIMT = 2,  /* "cuda_simt": CUDA cores, any GPU the build has an image
                                 * for (the source is sm_70-clean; CUDA 13 builds sm_75+) */
    FP4_BACKEND_CUDA_MMA = 3,   /* "cuda_mma": mma.sync tensor cores, sm_80+ */
    FP4_BACKEND_CUDA_WGMMA = 4, /* "cuda_wgmma": Hopper warpgroup MMA, sm_90a */
    FP4_BACKEND_CUBLASLT = 5,   /* "cublaslt": native FP4 through cuBLASLt, sm_100+ */
    FP4_BACKEND_CPU = 6         /* "cpu": SIMD + OpenMP on the CPU, auto's choice there */
} fp4_backend;
#define FP4_BACKEND_COUNT 7

typedef enum fp4_log_level {
    FP4_LOG_OFF = -1,
    FP4_LOG_ERROR = 0,
    FP4_LOG_WARN = 1, /* the default */
    FP4_LOG_INFO = 2,
    FP4_LOG_DEBUG = 3
} fp4_log_level;

const char *fp4_dtype_name(fp4_dtype dtype);
fp4_status fp4_dtype_from_name(const char *name, fp4_dtype *out);
const char *fp4_sf_layout_name(fp4_sf_layout layout);
fp4_status fp4_sf_layout_from_name(const char *name, fp4_sf_layout *out);
const char *fp4_backend_name(fp4_backend backend);
fp4_status fp4_backend_from_name(const char *name, fp4_backend *out);
const char *fp4_log_level_name(fp4_log_level level);
fp4_status fp4_log_level_from_name(const char *name, fp4_log_level *out);

/* Bytes per element of an unpacked dtype (4, 2, 2, -, 1); 0 for E2M1 and bad values. */
int64_t fp4_dtype_size(fp4_dtype dtype);

/* ---------------------------------------------------------------------------------------
 * Logging. Messages at or above the level go to the callback, or to stderr when no
 * callback is set. Initial level: FP4GEMM_LOG_LEVEL (off|error|warn|info|debug, any case),
 * else warn; a value that is not a level is reported once, as a warning naming the valid
 * ones, when the level is first needed (a level set before that wins over the variable).
 * Process-wide, and safe from any thread at any time (see "Threads" below).
 * The callback runs on the thread whose call logged, possibly on several threads at once: it
 * must be thread-safe itself. It must not call fp4_set_log_callback (ignored there); messages
 * that library calls made from inside the callback would log are dropped. When
 * fp4_set_log_callback returns, the previous callback is neither running nor called again, so
 * its `user` may be freed.
 * ------------------------------------------------------------------------------------- */
typedef void (*fp4_log_fn)(fp4_log_level level, const char *message, void *user);
void fp4_set_log_level(fp4_log_level level);
fp4_log_level fp4_get_log_level(void);
void fp4_set_log_callback(fp4_log_fn fn, void *user); /* NULL restores stderr */

/* ---------------------------------------------------------------------------------------
 * Sizes and scale-factor offsets, in bytes. All return -1 for invalid arguments (rows < 1,
 * k < 16, k not a multiple of 16, a bad layout, overflow). fp4_sf_bytes of SWIZZLED_128x4
 * pads rows up to a multiple of 128 and k/16 up to a multiple of 4 (the layout's tiles).
 * ------------------------------------------------------------------------------------- */
int64_t fp4_packed_bytes(int64_t rows, int64_t k);                      /* rows * k/2 */
int64_t fp4_sf_bytes(int64_t rows, int64_t k, fp4_sf_layout layout);    /* padded for swizzled */
/* Byte offset of the scale of (row, k-block kb) in a scale buffer for [rows, k]. */
int64_t fp4_sf_offset(int64_t row, int64_t kb, int64_t k, fp4_sf_layout layout);

/* ---------------------------------------------------------------------------------------
 * Devices and contexts.
 *
 * Threads (docs/threads.md has the whole contract and what was tested). In cuBLAS's terms:
 *   - A context is externally synchronized: calls that take the same fp4_ctx must not run at
 *     the same time; one thread at a time (a context may move between threads, as long as the
 *     hand-over is synchronized, e.g. by a mutex). fp4_last_error(ctx) belongs to whichever
 *     thread made the last call. Exceptions, callable at any time from any thread while the
 *     context lives: fp4_ctx_device, fp4_ctx_compute_capability, fp4_backend_check and
 *     fp4_measure_sets (they read what fp4_create set up, and cublaslt's plan cache behind a
 *     lock). fp4_destroy must not overlap any call on the context.
 *   - GPU work of one context must be ordered on the device too: the cuda_mma backend keeps a
 *     split-K workspace per context, and cublaslt cuBLASLt's workspace, so two fp4_gemm calls
 *     of one context whose work may run at the same time (different streams without an event
 *     between them, or two replays of CUDA graphs that captured them) race. Use one context
 *     per stream that runs GEMMs concurrently. A graph that captured fp4_gemm uses its
 *     context's workspace: replay it only while the context lives, and not concurrently with
 *     other GEMM work of that context.
 *   - Separate contexts are fully independent: any number of threads, each with its own
 *     context (on the same device or not, on its own stream), may call the library at once.
 *   - Process-wide state is safe from any thread at any time: the log level and callback,
 *     fp4_device_count, fp4_device_query, the backend registry and policy, the name and size
 *     functions, fp4_last_error(NULL) (thread-local: the failures of calls without a context
 *     on the calling thread). Environment variables are read with getenv: FP4GEMM_LOG_LEVEL
 *     once, FP4GEMM_BACKEND by each fp4_create; do not change them (setenv) while other
 *     threads may create contexts or log.
 *   - CUDA graph capture: fp4_gemm, fp4_quantize, fp4_dequantize, fp4_global_scale,
 *     fp4_modelopt_global_scale and fp4_sf_convert only enqueue work on their stream (kernels,
 *     cudaMemsetAsync): they may be captured in any capture mode (cublaslt: once the shape
 *     has run or been checked on the context before the capture; docs/backends.md). The calls
 *     that allocate, copy or synchronize (fp4_create, fp4_destroy, fp4_malloc, fp4_free,
 *     fp4_upload, fp4_download, fp4_memset, fp4_synchronize, fp4_measure, fp4_gemm_verify,
 *     fp4_count_nonfinite) are what cudaStreamCaptureModeGlobal forbids in every thread while
 *     ANY thread captures in that mode. When other threads use the library during a capture,
 *     capture with cudaStreamCaptureModeThreadLocal, on a stream created with
 *     cudaStreamNonBlocking (fp4_upload and fp4_memset wait for the legacy default stream,
 *     which waits for every blocking stream).
 * ------------------------------------------------------------------------------------- */
/* Output structs (fp4_device_info, fp4_measure_result, fp4_verify_result, fp4_tune_result,
 * fp4_tuning_info) are versioned by struct_size, their first field: set it with the struct's
 * *_init (or to sizeof). A caller built against an older fp4gemm.h (a smaller struct_size,
 * at least the struct's first release's, which for all of them is 0.1.x's: the end of their
 * last field today) gets the fields its struct has; the library never writes past
 * struct_size and leaves struct_size as the caller set it. A larger struct_size (a header
 * newer than this library) or one smaller than the first release's is
 * FP4_ERR_INVALID_ARGUMENT, with "newer fp4gemm.h" (or the minimum size) in
 * fp4_last_error, and the struct untouched. */
typedef struct fp4_device_info {
    size_t struct_size;    /* sizeof(fp4_device_info); fp4_device_info_init sets it */
    int device;            /* CUDA ordinal */
    char name[256];        /* "NVIDIA H200" */
    int compute_capability; /* major * 10 + minor: 90 = Hopper, 100 = Blackwell */
    int sm_count;
    int64_t l2_bytes;
    int64_t memory_bytes;
    double memory_bandwidth_gbs; /* from the memory clock and bus width; 0 if unknown */
} fp4_device_info;

/* Number of CUDA devices; 0 (and FP4_OK) without CUDA or without a driver, and when the
 * runtime fails (logged). FP4_ERR_INVALID_ARGUMENT for a NULL count. */
fp4_status fp4_device_count(int *count);
/* Zeroes *info and sets struct_size (NULL: nothing). */
void fp4_device_info_init(fp4_device_info *info);
/* Fills *info for CUDA device `device` (0 .. count-1). info->struct_size: see "Output
 * structs" above. Errors (detail in fp4_last_error(NULL)): FP4_ERR_INVALID_ARGUMENT for NULL
 * info, a struct_size too large (newer header) or too small, or device < 0; FP4_ERR_NO_DEVICE for no such device or a build without CUDA;
 * FP4_ERR_CUDA. Does not create a context. */
fp4_status fp4_device_query(int device, fp4_device_info *info);

typedef struct fp4_ctx fp4_ctx;

/* device -1: the CPU. device >= 0: that CUDA device, made current on the calling thread by
 * every call that takes the context. Reads FP4GEMM_BACKEND (a value that names nothing is
 * logged as a warning and fails only GEMMs left to auto; docs/backends.md). Allocates: the
 * context, and on a GPU each backend's state (cuda_mma's split-K workspace, 32 MiB + 64 KiB of
 * device memory on sm_80+; cuda_wgmma's, 96 MiB + 64 KiB on sm_90; cublaslt's handle and
 * 32 MiB workspace on sm_100+); a backend
 * whose set-up fails is reported as unable to run, it does not fail fp4_create. On failure
 * *ctx is NULL and fp4_last_error(NULL) has the detail: FP4_ERR_INVALID_ARGUMENT (NULL ctx,
 * device < -1), FP4_ERR_NO_DEVICE (no such device, or a build without CUDA), FP4_ERR_CUDA,
 * FP4_ERR_OUT_OF_MEMORY. */
fp4_status fp4_create(fp4_ctx **ctx, int device);
void fp4_destroy(fp4_ctx *ctx); /* accepts NULL */
int fp4_ctx_device(const fp4_ctx *ctx);
/* major*10+minor of the context's GPU, 0 for the CPU. */
int fp4_ctx_compute_capability(const fp4_ctx *ctx);
/* The last failure on this context: "fp4_gemm: k = 24 is not a multiple of 16 (src/api.c:120)"
 * or "" after success. Valid until the next call on the context. Accepts NULL. */
const char *fp4_last_error(const fp4_ctx *ctx);

/* Threads of the `cpu` backend's GEMMs on this context (cpu_ref and the GPU backends use
 * one host thread). threads 0 (the default) = OpenMP's default: OMP_NUM_THREADS, else one per
 * core; n > 0 = n threads. The result's bits do not depend on it (work is split by output
 * tiles, never along k). Like every call on a context, one at a time (docs/threads.md). In a
 * build without OpenMP (fp4_built_with_openmp() == 0) the setting is kept but one thread runs.
 * Errors: FP4_ERR_INVALID_ARGUMENT for a NULL ctx or threads < 0. */
fp4_status fp4_ctx_set_num_threads(fp4_ctx *ctx, int threads);
/* The number of threads the next `cpu` GEMM on ctx may use (the setting, else OpenMP's
 * default; 1 without OpenMP); ctx may be NULL (OpenMP's default). Problems under about 1e6
 * multiply-adds run on the calling thread. */
int fp4_ctx_num_threads(const fp4_ctx *ctx);
/* The kernel set the `cpu` backend runs on ctx (NULL: on a new context): "avx512",
 * "avx2" (with FMA), "neon" or "generic" (portable C): the widest this CPU has, chosen at run
 * time, or the one the environment variable FP4GEMM_CPU_SIMD (auto, avx512, avx2, neon,
 * generic; read at fp4_create) names if the CPU has it. Every set computes the same bits. */
const char *fp4_ctx_cpu_simd(const fp4_ctx *ctx);
/* 1 when the library was compiled with OpenMP (the `cpu` backend's threads). */
int fp4_built_with_openmp(void);

/* Memory on the context's device (plain malloc/free for the CPU; cudaMalloc/cudaFree on a GPU),
 * aligned as malloc and cudaMalloc align (16 bytes or more: what the backends' alignment rules
 * ask). fp4_malloc of 0 bytes is FP4_ERR_INVALID_ARGUMENT; copies and fp4_memset of 0 bytes do
 * nothing. Copies and fp4_memset are synchronous (they wait for the legacy default stream:
 * see "Threads" above); fp4_synchronize waits for `stream` (NULL: the legacy default stream)
 * and does nothing on the CPU. Errors: FP4_ERR_INVALID_ARGUMENT (NULL ctx or pointer,
 * bytes < 0), FP4_ERR_OUT_OF_MEMORY, FP4_ERR_CUDA. */
fp4_status fp4_malloc(fp4_ctx *ctx, void **ptr, int64_t bytes);
fp4_status fp4_free(fp4_ctx *ctx, void *ptr); /* accepts NULL */
fp4_status fp4_upload(fp4_ctx *ctx, void *dst, const void *host_src, int64_t bytes);
fp4_status fp4_download(fp4_ctx *ctx, void *host_dst, const void *src, int64_t bytes);
fp4_status fp4_memset(fp4_ctx *ctx, void *dst, int value, int64_t bytes);
fp4_status fp4_synchronize(fp4_ctx *ctx, struct CUstream_st *stream);

/* ---------------------------------------------------------------------------------------
 * Quantization: [rows, k] F32/F16/BF16 -> packed E2M1 [rows, k/2] + E4M3 scales.
 * Bit-exact with docs/format.md on every backend, for each recipe.
 * ------------------------------------------------------------------------------------- */

/* Quantization recipes: the ecosystem's quantizers, each reproduced bit for bit. They share
 * the format and differ in the order of their float operations (so in rounding ties), in
 * degenerate blocks and in the global scale they take. docs/format.md gives each step and
 * the sources (file and commit) it was checked against. */
typedef enum fp4_quant_recipe {
    /* "flashinfer" (the default): FlashInfer's exact fp4_quantize path, which is Transformer
     * Engine's NVFP4 cast. global_scale is the ENCODE scale gs = 448*6/amax (what
     * fp4_global_scale computes); values decode as e2m1 * e4m3 / gs. */
    FP4_QUANT_RECIPE_FLASHINFER = 0,
    /* "modelopt": NVIDIA ModelOpt's checkpoint export (NVFP4QTensor.quantize). global_scale
     * is the DECODE scale ws2 = amax/2688 (weight_scale_2 or input_scale in a checkpoint, what
     * fp4_modelopt_global_scale computes), NOT 1/gs: values decode as e2m1 * e4m3 * ws2. */
    FP4_QUANT_RECIPE_MODELOPT = 1
} fp4_quant_recipe;
#define FP4_QUANT_RECIPE_COUNT 2

/* "flashinfer", "modelopt"; "?" for a bad value. from_name ignores case and returns
 * FP4_ERR_INVALID_ARGUMENT for an unknown name (or a NULL argument), *out unchanged and the
 * valid names in fp4_last_error(NULL), like the other *_from_name. */
const char *fp4_quant_recipe_name(fp4_quant_recipe recipe);
fp4_status fp4_quant_recipe_from_name(const char *name, fp4_quant_recipe *out);

/* Descriptor versioning (fp4_quant_desc, fp4_dequant_desc, fp4_gemm_desc): struct_size is
 * the sizeof the caller was compiled with. Fields are only ever added at the end, so a caller
 * built against an older fp4gemm.h (struct_size = that release's sizeof; 0.1.0's ends at
 * `stream`) is accepted and the fields it does not know get the values *_desc_init gives
 * them. A larger struct_size (a newer header than this library), or one that is no release's
 * size, is rejected with FP4_ERR_INVALID_ARGUMENT. */
typedef struct fp4_quant_desc {
    size_t struct_size;       /* sizeof(fp4_quant_desc); fp4_quant_desc_init sets it */
    int64_t rows, k;          /* k a multiple of 16 */
    fp4_dtype in_dtype;       /* F32, F16 or BF16 */
    const void *in;           /* [rows, ld_in] elements */
    int64_t ld_in;            /* elements between row starts; 0 means k */
    /* The global scale, > 0 and finite. ITS MEANING DEPENDS ON `recipe`:
     *   FLASHINFER: the encode scale gs = 448*6/amax (see fp4_global_scale);
     *   MODELOPT:   the decode scale ws2 = amax/2688 (see fp4_modelopt_global_scale). */
    float global_scale;
    /* If not NULL, the global scale is read from here (context memory) when the kernel runs,
     * unchecked. FLASHINFER never writes a NaN scale byte (0x7F): a block scale that comes
     * out NaN (an Inf in the block times gs = 0, what fp4_global_scale gives a tensor with an
     * Inf; or a NaN gs) saturates to 448 (0x7E) as an overflow does. With gs = 0 the tensor
     * then decodes to 0 (every other block's scale is 0). MODELOPT writes what ModelOpt
     * writes, NaN scales included (docs/format.md). */
    const float *global_scale_ptr;
    void *out_q;              /* [rows, k/2] bytes */
    void *out_sf;             /* fp4_sf_bytes(rows, k, sf_layout) bytes, padding written as 0 */
    fp4_sf_layout sf_layout;
    uint32_t *nonfinite_flag; /* optional (context memory): set to 1 if an input was NaN/Inf */
    struct CUstream_st *stream;
    /* Added after 0.1.0; a caller built against 0.1.0 (struct_size ending at `stream`) gets
     * FLASHINFER. FLASHINFER unless you must match ModelOpt's bytes. */
    fp4_quant_recipe recipe;
} fp4_quant_desc;

typedef struct fp4_dequant_desc {
    size_t struct_size;       /* sizeof(fp4_dequant_desc) */
    int64_t rows, k;
    const void *q;            /* [rows, k/2] bytes */
    const void *sf;
    fp4_sf_layout sf_layout;
    float global_scale;       /* encode gs: out = e2m1 * e4m3 / gs. Use 1 for e2m1 * e4m3
                                 (modelopt-recipe data decodes as e2m1 * e4m3 * ws2: 1/ws2
                                 here rounds differently, within a couple of ulps) */
    const float *global_scale_ptr; /* optional, context memory */
    fp4_dtype out_dtype;      /* F32, F16 or BF16 */
    void *out;                /* [rows, ld_out] elements */
    int64_t ld_out;           /* 0 means k */
    struct CUstream_st *stream;
} fp4_dequant_desc;

/* zeroes, sets struct_size, gs = 1, F32 input, linear scales, recipe FLASHINFER */
void fp4_quant_desc_init(fp4_quant_desc *desc);
/* zeroes, sets struct_size, gs = 1, F32 output, linear scales */
void fp4_dequant_desc_init(fp4_dequant_desc *desc);
/* Quantizes desc->in with desc->recipe. FP4_ERR_INVALID_ARGUMENT (detail in fp4_last_error)
 * for a bad descriptor: struct_size neither sizeof(fp4_quant_desc) nor 0.1.0's, an unknown
 * recipe, a global scale by value that is not positive and finite, bad sizes, NULL or
 * misaligned pointers. Asynchronous on a GPU. */
fp4_status fp4_quantize(fp4_ctx *ctx, const fp4_quant_desc *desc);
/* Decodes desc->q with desc->sf (as fp4_quantize writes them, scales in desc->sf_layout) into
 * desc->out: out[r, c] = fp32(e2m1 * e4m3 / global_scale) (the product is exact; a NaN scale
 * gives NaN; docs/format.md), then rounded to nearest even into out_dtype. The same bits on
 * every backend. FP4_ERR_INVALID_ARGUMENT (detail in fp4_last_error) for a bad descriptor:
 * struct_size, rows < 1, k not a positive multiple of 16, ld_out < k, a dtype or layout out of
 * range, a global scale by value that is not positive and finite, NULL or misaligned
 * pointers. Asynchronous on a GPU. */
fp4_status fp4_dequantize(fp4_ctx *ctx, const fp4_dequant_desc *desc);

/* The encode global scale of a [rows, k] tensor `in` (ld_in elements between row starts; 0
 * means k): gs = 448*6 / amax (NaN ignored; 1 if amax == 0;
 * FLT_MAX if the quotient overflows), written to *gs_out (context memory, stream-ordered on a
 * GPU). A tensor with an Inf has amax = Inf and so gs = 0, as the formula gives: fp4_quantize
 * rejects gs = 0 given by value; given through global_scale_ptr it makes the whole tensor
 * decode to 0 (blocks with an Inf get scale 448; see fp4_quant_desc) and sets nonfinite_flag.
 * Remove Infs, or pass a global scale of your own. */
fp4_status fp4_global_scale(fp4_ctx *ctx, int64_t rows, int64_t k, fp4_dtype in_dtype,
                            const void *in, int64_t ld_in, float *gs_out,
                            struct CUstream_st *stream);

/* A [rows, k] F32/F16/BF16 tensor in context memory, one of a group that a call takes. */
typedef struct fp4_tensor_ref {
    int64_t rows, k;   /* rows >= 1; k a multiple of 16 */
    fp4_dtype dtype;   /* F32, F16 or BF16 */
    const void *data;  /* [rows, ld] elements */
    int64_t ld;        /* elements between row starts; 0 means k */
} fp4_tensor_ref;

/* ModelOpt's decode global scale of a group of `count` tensors that share one: a single
 * weight or activation, or the projections that a fused layer stores with one scale (q/k/v,
 * gate/up: ModelOpt's export takes the max of their amax first):
 *     ws2 = fp32(amax / 2688),  amax = max over the group of |x| (NaN ignored)
 * bit for bit as nvidia-modelopt computes weight_scale_2 (amax / (6 * 448) in float32; see
 * docs/format.md). Written to *ws2_out (context memory; stream-ordered on a GPU). Pass it as
 * the global_scale of a FP4_QUANT_RECIPE_MODELOPT quantization. An all-zero group gives
 * ws2 = 0 (ModelOpt's value too, with which it would write NaN scales): fp4_quantize rejects
 * 0 by value, so quantize such a tensor with any positive ws2, e.g. 1. A group with an Inf
 * gives Inf. FP4_ERR_INVALID_ARGUMENT for count < 1, a NULL pointer, or a bad tensor (its
 * index is in fp4_last_error). */
fp4_status fp4_modelopt_global_scale(fp4_ctx *ctx, const fp4_tensor_ref *tensors, int count,
                                     float *ws2_out, struct CUstream_st *stream);

/* Rewrites the E4M3 scale factors of a [rows, k] tensor from src_layout into dst_layout:
 * LINEAR ([rows, k/16] bytes, row-major; ModelOpt checkpoints) <-> SWIZZLED_128x4 (the tiles
 * of 128 rows x 4 k-blocks that cuBLASLt and CUTLASS read; docs/format.md). The same layout
 * on both sides is a copy. src holds fp4_sf_bytes(rows, k, src_layout) bytes (swizzled
 * padding is not read), dst gets fp4_sf_bytes(rows, k, dst_layout) bytes with the swizzled
 * padding written as 0; scale (row, kb) of src lands at fp4_sf_offset(row, kb, k,
 * dst_layout). Bytes are moved, never decoded (NaN scales stay NaN).
 * src and dst are context memory and must not overlap. Stream-ordered on a GPU, with no
 * allocation or synchronization (graph-capturable); synchronous on the CPU.
 * Errors: FP4_ERR_INVALID_ARGUMENT for a NULL pointer, rows < 1, k not a positive multiple of
 * 16, a bad layout, sizes overflowing int64, or overlapping buffers. */
fp4_status fp4_sf_convert(fp4_ctx *ctx, int64_t rows, int64_t k, const void *src,
                          fp4_sf_layout src_layout, void *dst, fp4_sf_layout dst_layout,
                          struct CUstream_st *stream);

/* ---------------------------------------------------------------------------------------
 * GEMM: D[m, n] = alpha * sum_k A[m, k] * B[n, k].
 *   W4A4:  a_dtype = E2M1, A [m, k/2] bytes with scales a_sf; alpha = 1/(gs_a*gs_b).
 *   W4A16: a_dtype = BF16 or F16, A [m, k] elements, a_sf unused; alpha = 1/gs_b.
 * ------------------------------------------------------------------------------------- */
typedef struct fp4_gemm_desc {
    size_t struct_size;       /* sizeof(fp4_gemm_desc); fp4_gemm_desc_init sets it */
    int64_t m, n, k;          /* m, n >= 1; k a multiple of 16 */
    fp4_dtype a_dtype;        /* E2M1 (W4A4), BF16 or F16 (W4A16) */
    const void *a;            /* E2M1: [m, k/2] bytes; BF16/F16: [m, k] elements */
    const void *a_sf;         /* E2M1 only */
    fp4_sf_layout a_sf_layout;
    const void *b;            /* [n, k/2] bytes: the weight as stored */
    const void *b_sf;
    fp4_sf_layout b_sf_layout;
    fp4_dtype d_dtype;        /* F32, F16 or BF16 */
    void *d;                  /* [m, ldd] elements */
    int64_t ldd;              /* >= n; 0 means n */
    float alpha;
    const float *alpha_ptr;   /* if not NULL, alpha is read from here (context memory) */
    fp4_backend backend;      /* FP4_BACKEND_AUTO unless you must have one */
    struct CUstream_st *stream;
    /* -- added after 0.1.0 (a 0.1.0 caller's struct ends above: "Descriptor versioning") -- */
    int config;               /* the backend's config (kernel variant) to run: see fp4_tactic.
                               * -1 (what fp4_gemm_desc_init sets): the backend's heuristic.
                               * >= 0 needs an explicit backend. */
} fp4_gemm_desc;

/* Zeroes, sets struct_size, W4A4 with linear scales, BF16 output, alpha = 1, auto, config -1. */
void fp4_gemm_desc_init(fp4_gemm_desc *desc);

/* Runs the GEMM on the tactic fp4_gemm_select names: desc->backend (and desc->config) if not
 * AUTO, else FP4GEMM_BACKEND, else the policy. An explicitly named backend or config that
 * can't run the problem returns FP4_ERR_NOT_SUPPORTED with the reason in fp4_last_error,
 * never a substitute; a config number the backend does not have is FP4_ERR_INVALID_ARGUMENT.
 * With AUTO and an FP4GEMM_BACKEND that names no backend or tactic, FP4_ERR_INVALID_ARGUMENT
 * (the explicit backend of a descriptor ignores the variable). */
fp4_status fp4_gemm(fp4_ctx *ctx, const fp4_gemm_desc *desc);

/* Can `backend` run `desc` on this context? FP4_OK if so; otherwise FP4_ERR_NOT_SUPPORTED
 * (or FP4_ERR_INVALID_ARGUMENT for a bad desc) and the reason in why[why_len]. A pure
 * function of the device and the problem. desc may be NULL: then only the device is judged.
 * With a desc, the config judged is desc->config when desc->backend is `backend`, else the
 * heuristic's. backend must not be AUTO. */
fp4_status fp4_backend_check(const fp4_ctx *ctx, fp4_backend backend, const fp4_gemm_desc *desc,
                             char *why, size_t why_len);

/* DEPRECATED: use fp4_gemm_select, which gives the same backend (as out->backend) when desc is
 * NULL or its backend is AUTO, and also the config and why. Kept working, unchanged, for
 * existing callers; it may be removed in a later major release.
 * What AUTO would run for desc (NULL: for a generic problem), whatever desc->backend says:
 * the backend FP4GEMM_BACKEND names (read at fp4_create) if it is set, else the first backend
 * of the context's policy (fp4_backend_policy) that can run it. FP4_ERR_NOT_SUPPORTED if none
 * can (or the variable's backend can't); FP4_ERR_INVALID_ARGUMENT for a bad desc or a
 * FP4GEMM_BACKEND that names nothing. */
fp4_status fp4_gemm_select_backend(fp4_ctx *ctx, const fp4_gemm_desc *desc, fp4_backend *out);

/* The ordered policy AUTO walks for a compute capability (0 = CPU): writes up to `cap`
 * backends into out and returns how many there are. This is the order for large problems; on
 * Hopper (sm_90), cuda_mma moves first for M <= 32 tokens (decode sizes, where its split-K
 * beats cuda_wgmma; fp4_gemm_select reports the order used for a given problem). */
int fp4_backend_policy(int compute_capability, fp4_backend *out, int cap);

/* ---------------------------------------------------------------------------------------
 * Tactics: a backend and one of its configs (a kernel variant with its tile shape), named
 * "backend/config": "cpu_ref/default", "cuda_simt/tiled", "cuda_simt/gemv_mr8". Config numbers
 * index the backend's list (stable within a release; names are stable across releases).
 * config -1 is the backend's heuristic, named by the backend alone ("cuda_simt"); {AUTO, -1}
 * is "auto". docs/backends.md lists every backend's configs and their limits.
 * ------------------------------------------------------------------------------------- */
typedef struct fp4_tactic {
    fp4_backend backend;
    int config; /* -1: the heuristic's choice */
} fp4_tactic;

/* Writes the tactic's name into buf[len] (NUL-terminated). FP4_ERR_INVALID_ARGUMENT (buf
 * set to "" when len > 0) for a NULL buf, a backend or config that does not exist, or a
 * buffer too small (64 bytes is enough for every name); detail in fp4_last_error(NULL). */
fp4_status fp4_tactic_name(fp4_tactic tactic, char *buf, size_t len);

/* Parses "backend" or "backend/config", ignoring case: "cuda_simt" = {CUDA_SIMT, -1},
 * "auto" = {AUTO, -1}. An unknown backend or config: FP4_ERR_INVALID_ARGUMENT, *out
 * unchanged, and fp4_last_error(NULL) lists the valid names. */
fp4_status fp4_tactic_from_name(const char *name, fp4_tactic *out);

/* Every tactic that can run desc on ctx (desc NULL: that can run on the device at all), as
 * fp4_backend_check would judge each: the backends of the context's policy in order, then
 * any other backend, each with its configs in the order of its list. desc->backend and
 * desc->config are ignored, and so is FP4GEMM_BACKEND. Writes up to cap tactics into out
 * (which may be NULL when cap is 0) and the number that can run into *count.
 * Errors: FP4_ERR_INVALID_ARGUMENT for a NULL ctx or count, cap < 0, out NULL with cap > 0,
 * or a bad desc. */
fp4_status fp4_gemm_list_tactics(fp4_ctx *ctx, const fp4_gemm_desc *desc, fp4_tactic *out,
                                 int cap, int *count);

/* What fp4_gemm would run for desc, and why: desc->backend (with desc->config), else
 * FP4GEMM_BACKEND (a backend or a tactic name, read at fp4_create), else the first backend of
 * the context's policy that can run desc; then the config: the one asked for, else the
 * backend's heuristic for desc. With desc NULL the problem is unknown: the backend is judged
 * on the device only and out->config is -1 unless one was asked for. why[why_len] (may be
 * NULL) gets one line, e.g. "auto: policy for sm_90 (cuda_wgmma: needs swizzled (128x4)
 * weight scales: ...), first that can run: cuda_mma; cuda_mma heuristic for m = 300: m32_r2".
 * On failure
 * (FP4_ERR_NOT_SUPPORTED: nothing can run; FP4_ERR_INVALID_ARGUMENT: a bad desc or a bad
 * FP4GEMM_BACKEND that auto needed) why and fp4_last_error say why. */
fp4_status fp4_gemm_select(fp4_ctx *ctx, const fp4_gemm_desc *desc, fp4_tactic *out,
                           char *why, size_t why_len);


/* ---------------------------------------------------------------------------------------
 * Measuring and checking (src/tune/): the one timing method and the one tolerance of the
 * project, used by `fp4gemm bench`, `fp4gemm gemm` and the autotuner. docs/PERF.md gives the
 * method. NOTE: unlike the calls above, these may allocate (host and device memory, CUDA
 * events and graphs) and synchronize the stream: call them outside a CUDA graph capture,
 * never from inside one.
 * ------------------------------------------------------------------------------------- */

/* One launch of the work being measured: enqueue it on `stream` (NULL on the CPU; on a GPU
 * the desc's stream, or fp4_measure's own when that is NULL) reading input set `set`
 * (0 <= set < the desc's sets), and return FP4_OK, or a failure that stops the measurement
 * (fp4_measure returns it). Called many times, also during a stream capture: it must only
 * enqueue work on `stream` (no synchronization, no allocation). */
typedef fp4_status (*fp4_launch_fn)(void *user, int set, struct CUstream_st *stream);

#define FP4_MEASURE_MIN_LAUNCHES 10 /* launches per replay (one CUDA graph), at least */
#define FP4_MEASURE_MIN_REPLAYS 20  /* timed replays, at least */
#define FP4_MEASURE_MAX_REPLAYS 100 /* cheap work gets more replays, up to this */
#define FP4_MEASURE_MAX_SETS 1024   /* rotated input sets, at most */
#define FP4_MEASURE_L2_FACTOR 5.0   /* the sets of one replay span >= this many L2 sizes */

/* fp4_measure_desc is not versioned yet: its struct_size must be exactly this header's sizeof
 * (any other is FP4_ERR_INVALID_ARGUMENT). fp4_measure_result and fp4_verify_result are
 * output structs, versioned as "Output structs" (above fp4_device_info) says. */
typedef struct fp4_measure_desc {
    size_t struct_size;     /* sizeof(fp4_measure_desc); fp4_measure_desc_init sets it */
    fp4_launch_fn launch;   /* required */
    void *user;             /* passed to launch */
    int sets;               /* input sets the caller made (>= 1): launch i reads set i % sets.
                             * Ask fp4_measure_sets how many make the inputs cold. */
    double set_bytes;       /* input bytes one launch reads (A, B, scales): for `cold`; 0 if
                             * unknown (then cold = 0) */
    int min_replays;        /* timed replays, at least; 0 means FP4_MEASURE_MIN_REPLAYS; at
                             * least FP4_MEASURE_MIN_REPLAYS */
    double budget_seconds;  /* if the whole measurement would take longer (estimated from a
                             * few launches), nothing more is run and result->too_slow = 1;
                             * <= 0: no budget */
    struct CUstream_st *stream; /* GPU contexts: the stream launches go to. NULL: the legacy
                                 * stream can't be captured, so fp4_measure waits for it, makes
                                 * a stream of its own and passes that to launch */
} fp4_measure_desc;

typedef struct fp4_measure_result {
    size_t struct_size;     /* sizeof(fp4_measure_result); fp4_measure_result_init sets it */
    int too_slow;           /* 1: over the budget, not timed (median etc. are 0) */
    double estimate_us;     /* one launch, from the warm-up launches (microseconds) */
    double median_us, p20_us, p80_us; /* per launch: replay time / launches, over the replays */
    int launches;           /* per replay: max(FP4_MEASURE_MIN_LAUNCHES, sets) */
    int sets, replays;
    int graph;              /* 1: replays of one CUDA graph; 0: plain launches (host clock on
                             * the CPU; on a GPU when capture failed: see note) */
    int cold;               /* 1: sets * set_bytes >= FP4_MEASURE_L2_FACTOR * the L2 size
                             * (always 0 on the CPU) */
    char note[256];         /* "no graph (capture failed: ...)", "host clock", or "" */
} fp4_measure_result;

void fp4_measure_desc_init(fp4_measure_desc *desc); /* zeroes, sets struct_size, sets = 1 */
void fp4_measure_result_init(fp4_measure_result *result); /* zeroes, sets struct_size */

/* How many input sets of `set_bytes` each make the inputs of one replay cold: the smallest
 * S in [2, FP4_MEASURE_MAX_SETS] with S * set_bytes >= FP4_MEASURE_L2_FACTOR * L2 bytes of the
 * context's GPU. 1 for a CPU context (no L2 rotation there), and for set_bytes <= 0 or NULL
 * ctx. The caller may make fewer (memory); fp4_measure then reports cold = 0. */
int fp4_measure_sets(const fp4_ctx *ctx, double set_bytes);

/* Times desc->launch as docs/PERF.md says. On a GPU: one warm-up launch, up to 3 more to
 * estimate one launch (CUDA events), the budget check, then L = max(10, sets) launches,
 * launch i on set i % sets, captured into one CUDA graph (thread-local stream capture; plain
 * launches if capture fails), one warm-up replay and R replays back to back between events,
 * R = min_replays raised until the replays take about 50 ms (at most 100). Per launch time =
 * replay time / L; median, p20 and p80 (linear interpolation) over the R replays. On the CPU
 * the same loop without a graph, timed with the host's monotonic clock.
 * Errors: INVALID_ARGUMENT (NULL, bad struct_size: a result's as "Output structs" says, no
 * launch, sets < 1), the launch's own
 * failure, CUDA (event or graph calls), OUT_OF_MEMORY. Synchronizes desc->stream. */
fp4_status fp4_measure(fp4_ctx *ctx, const fp4_measure_desc *desc, fp4_measure_result *result);

/* The verdict of a check of D (fp4_gemm_verify, fp4_verify_samples). */
typedef struct fp4_verify_result {
    size_t struct_size;     /* sizeof(fp4_verify_result); fp4_verify_result_init sets it */
    int passed;             /* 1: every sample within tolerance, rel_l2 within its limit, and
                             * no NaN/Inf anywhere in D */
    int64_t samples;        /* elements compared */
    int64_t bad_samples;    /* of which over the tolerance (or not finite) */
    int64_t nonfinite;      /* NaN/Inf elements in the whole of D (fp4_gemm_verify's scan) */
    double worst_ratio;     /* max |d - ref| / tolerance over the samples (<= 1 passes) */
    int64_t worst_m, worst_n;
    double worst_d, worst_ref, worst_tol;
    double rel_l2;          /* ||d - ref||_2 / ||ref||_2 over the samples */
    double rel_l2_limit;
    char message[512];      /* the verdict in one line */
} fp4_verify_result;

void fp4_verify_result_init(fp4_verify_result *result); /* zeroes, sets struct_size */

/* The one tolerance of the project, for D = alpha * sum_k a_k b_k given in a type of unit
 * roundoff u (2^-8 BF16, 2^-11 F16, 2^-24 F32), S = |alpha| * sum_k |a_k b_k| of the element
 * and rms the RMS of the sampled references:
 *     |d - ref| <= 2u (|ref| + rms) + acc * S                    for every sample
 *     ||d - ref||_2 / ||ref||_2 <= 2u + l2                       over the samples
 * acc = 0 and l2 = 0 select the bound every fp4gemm backend must meet, FP32 accumulation:
 * acc = 2 * K * 2^-24 (K FP32 additions, each off by at most one unit in the last place of a
 * partial sum <= S, truncating accumulators included), l2 = 1e-3 (16x the random-walk error
 * of FP32 sums at K = 2^20; a dropped k-block costs about 4/sqrt(K) of ||ref||).
 * 2u(|ref| + rms) is D's own rounding and a split-K reduction in D's type. The reference is
 * fp64 (exact for NVFP4 operands up to the order of additions). */

/* Checks `count` samples computed elsewhere: d[i] against ref[i], S = abs_sum[i] (already
 * times |alpha|), at (m[i], n[i]) (for the message; may be NULL). k is the reduction length,
 * d_dtype D's type (F32, F16, BF16). acc, l2 as above (0: the FP32 default); a baseline that
 * accumulates with fewer bits (FP8 tensor cores) passes its own. Never fails on a wrong D:
 * that is result->passed = 0. Errors: INVALID_ARGUMENT. Host memory, no context. */
fp4_status fp4_verify_samples(int64_t count, const double *d, const double *ref,
                              const double *abs_sum, const int64_t *m, const int64_t *n,
                              int64_t k, fp4_dtype d_dtype, double acc, double l2,
                              fp4_verify_result *result);

/* Checks the D a GEMM wrote (desc->d, after the GEMM ran on desc->stream) against an fp64
 * reference of desc's own operands (decoded with docs/format.md's definitions, not by a
 * backend): the 4 corners and `samples` - 4 elements drawn from `seed` (splitmix64; every
 * element when samples >= m * n), with the tolerance above (FP32 default), plus a scan of
 * all of D for NaN/Inf. Poison D with NaN (memset 0xFF) before the GEMM so that an unwritten
 * element is caught. samples <= 0 means 68. Works on CPU and GPU contexts: on a GPU it
 * synchronizes desc->stream, downloads the scales, the sampled rows of A and B and the
 * sampled elements of D (with more than 256 samples, A, B and D whole when they total at most
 * 1 GiB), and allocates a few bytes for the scan. Host memory: the samples, and for every
 * element M x K doubles. desc->backend is ignored. Returns FP4_OK when the check ran
 * (result->passed says how it went); INVALID_ARGUMENT for a bad desc; CUDA, OUT_OF_MEMORY. */
fp4_status fp4_gemm_verify(fp4_ctx *ctx, const fp4_gemm_desc *desc, int samples, uint64_t seed,
                           fp4_verify_result *result);

/* *count = NaN/Inf elements of a [rows, cols] F32/F16/BF16 matrix with leading dimension ld
 * (elements) in the context's memory. On a GPU: a device scan on `stream`, synchronized.
 * Errors: INVALID_ARGUMENT, CUDA, OUT_OF_MEMORY. */
fp4_status fp4_count_nonfinite(fp4_ctx *ctx, const void *x, fp4_dtype dtype, int64_t rows,
                               int64_t cols, int64_t ld, struct CUstream_st *stream,
                               int64_t *count);

/* ---------------------------------------------------------------------------------------
 * Autotuning and the tuning cache (src/tune/, docs/tuning.md). A context keeps a table of
 * tuned tactics, one per problem bucket; fp4_gemm with AUTO (no FP4GEMM_BACKEND) runs the
 * bucket's tuned tactic when there is one that can run the problem, else the policy and the
 * heuristic, and fp4_gemm_select's reason then begins with "tuned". The lookup allocates,
 * logs and formats nothing. A bucket is the problem with M rounded up (fp4_tuning_bucket_m),
 * N and K exact, A's dtype, both scale layouts and D's dtype. The table belongs to the
 * context's device: its key is the device name, compute capability, SM count and this
 * library's version; a cache file's entries for another key are ignored (one warning).
 * NOTE: fp4_tune, and fp4_gemm in FP4_AUTOTUNE_ON_FIRST_USE mode on a bucket it has not seen,
 * allocate and synchronize (like fp4_measure): never inside a CUDA graph capture. The table
 * is not locked: tune, load or clear while no other thread uses the context.
 * ------------------------------------------------------------------------------------- */

/* The bucket of M: powers of two up to 256 (1, 2, 4, ..., 256), then multiples of 256 up to
 * 4096, then powers of two (8192, 16384, ...): the smallest of those >= m. -1 for m < 1 or an
 * m whose bucket overflows int64. */
int64_t fp4_tuning_bucket_m(int64_t m);

/* The progress of fp4_tune, given to its callback after each tactic is judged. */
typedef struct fp4_tune_progress {
    int problem, problems;   /* 0-based index of the problem being tuned, and how many */
    fp4_tactic tactic;       /* the tactic just judged */
    int tactic_index, tactics; /* its index among the problem's candidates, and how many */
    double tactic_us;        /* its median (microseconds per launch); 0 if skipped */
    const char *skipped;     /* NULL, or why it was skipped ("wrong result: ...", "too slow") */
    fp4_tactic best;         /* the problem's fastest so far ({AUTO, -1} if none yet) */
    double best_us;          /* its median; 0 if none yet */
    double elapsed_s;        /* since fp4_tune began */
    double left_s;           /* estimated time left (from the time per problem so far) */
} fp4_tune_progress;
typedef void (*fp4_tune_progress_fn)(void *user, const fp4_tune_progress *progress);

typedef struct fp4_tune_options {
    size_t struct_size;        /* sizeof(fp4_tune_options); fp4_tune_options_init sets it */
    double budget_seconds;     /* the whole call; problems not reached are left untuned
                                * (result->tuned = 0). <= 0: no limit. Default 0 */
    double tactic_budget_seconds; /* the most one tactic's timing may take (planned from its
                                * estimate), except the first timed (the best estimate), which is
                                * bounded by budget_seconds only; a tactic other than the
                                * heuristic's is also cut when it would take over 3x the best
                                * one's timing (at least 0.25 s). Default 2 */
    int verify_samples;        /* fp4_gemm_verify's samples; <= 0: its default (68) */
    uint64_t seed;             /* the random operands and the samples. Default 1 */
    fp4_tune_progress_fn progress; /* may be NULL */
    void *user;
    struct CUstream_st *stream; /* GPU: the stream the GEMMs run on (NULL: fp4_measure's own) */
} fp4_tune_options;

/* The outcome of one problem. */
typedef struct fp4_tune_result {
    size_t struct_size;        /* sizeof(fp4_tune_result); fp4_tune_result_init sets it.
                                * An output struct (above fp4_device_info): an array of older,
                                * smaller results is read with results[0].struct_size as the
                                * element size, which every element must have */
    int tuned;                 /* 1: best is in the table now */
    fp4_tactic best;           /* the fastest verified tactic */
    double best_us;            /* its median, microseconds per launch */
    fp4_tactic heuristic;      /* what untuned auto runs, and its median (0 if not timed) */
    double heuristic_us;
    int candidates;            /* tactics that can run the problem */
    int failed;                /* of which failed to run or failed verification */
    int too_slow;              /* of which were cut by the budget */
    char message[512];         /* one line: the winner, or why nothing was tuned, and every
                                * failed tactic with its reason */
    /* Where this problem's time went, in seconds (added in 0.1.x after message: an older,
     * smaller struct simply lacks them). The phases sum to elapsed_s up to the bookkeeping
     * between them (listing tactics, the progress callback, the table) */
    double elapsed_s;          /* the whole problem */
    double operands_s;         /* random operands: generated on the host, uploaded once, copied
                                * on the device into the other input sets */
    double estimate_s;         /* every candidate's estimate launches */
    double verify_s;           /* the contenders' checked runs (poisoned D, fp4_gemm_verify) */
    double measure_s;          /* the contenders' timed replays */
    int timed;                 /* tactics timed (the others were cut as too slow, failed, or
                                * not reached) */
} fp4_tune_result;

void fp4_tune_options_init(fp4_tune_options *options);
void fp4_tune_result_init(fp4_tune_result *result); /* zeroes, sets struct_size */

/* Tunes `count` problems (docs/tuning.md). For each, every tactic fp4_gemm_list_tactics gives
 * is estimated from a few plain launches on seeded random operands: the heuristic's tactic
 * first, then the others, each stopped after 2 launches when over 3x the best estimate (or
 * not launched at all when it was cut so at the previous, smaller M of the same shape in this
 * call: a launch takes no less at a larger M). The contenders - those estimated within 1.3x
 * of the best (2x while launches are under 50 us, 1.15x from 1 ms), and always the
 * heuristic's tactic - are
 * each run once on a NaN-poisoned D and checked with fp4_gemm_verify (a tactic that fails or
 * is wrong is skipped and reported in the result), then timed with fp4_measure's method
 * (docs/PERF.md: CUDA graph replays over input sets rotated to be cold in L2, median per
 * launch) with a replay count planned from the estimate (about 10 ms of replays, at least 5
 * replays and 20 launches); slower ones are cut untimed (too_slow). The fastest median wins
 * and goes into the context's table under the problem's bucket, replacing what was there.
 * The result also says where the time went (elapsed_s and its phases). Give the problems of
 * one shape in increasing M to benefit from the cuts of the smaller ones. Only m, n, k,
 * a_dtype, a_sf_layout, b_sf_layout and d_dtype of each problem are read (its pointers,
 * backend, config and stream are ignored, so they may be NULL); the problem is timed at its
 * own m, which stands for its bucket. options may be NULL (the defaults). results may be NULL,
 * else holds count results, each with struct_size set. Allocates the operands on the
 * context's device (for the largest problem's sizes, times the input sets: at most 2 GiB,
 * kept from problem to problem and freed at the end) and synchronizes.
 * Errors: INVALID_ARGUMENT (NULL ctx or problems, count < 1, a bad problem: its index is in
 * fp4_last_error), OUT_OF_MEMORY, CUDA. A problem that no tactic can run, or that all fail,
 * is not an error: its result says so (tuned = 0). */
fp4_status fp4_tune(fp4_ctx *ctx, const fp4_gemm_desc *problems, int count,
                    const fp4_tune_options *options, fp4_tune_result *results);

/* Modes of fp4_set_autotune. */
typedef enum fp4_autotune_mode {
    FP4_AUTOTUNE_OFF = 0,          /* the default: fp4_gemm never tunes */
    FP4_AUTOTUNE_ON_FIRST_USE = 1  /* an AUTO fp4_gemm whose bucket has no entry tunes it first
                                    * (fp4_tune with default options on the descriptor's
                                    * stream), as FlashInfer's `with autotune():` does. That
                                    * call allocates and synchronizes: NOT graph-capturable
                                    * (warm every bucket up before capturing). A bucket whose
                                    * tuning finds nothing (or runs out of memory: a warning)
                                    * runs the heuristic's tactic and is not tuned again; a CUDA
                                    * error while tuning is fp4_gemm's error. */
} fp4_autotune_mode;

/* Sets the context's mode. FP4_ERR_INVALID_ARGUMENT for a NULL ctx or an unknown mode. */
fp4_status fp4_set_autotune(fp4_ctx *ctx, fp4_autotune_mode mode);

/* Loads a tuning cache file (docs/tuning.md) into the context's table: its entries for this
 * context's device and library version are added (replacing entries of the same bucket);
 * the others are counted and ignored, with one warning through the logger. A file that is
 * not a tuning file, has another format version, is truncated (no matching "end" line),
 * longer than 16 MiB, or has any malformed line is rejected whole: FP4_ERR_INVALID_ARGUMENT
 * with the path, the line number and what is wrong in fp4_last_error, and the table is left
 * as it was. Other errors: INVALID_ARGUMENT (NULL ctx or path, file can't be opened: the
 * system's reason), OUT_OF_MEMORY. fp4_create loads FP4GEMM_TUNING_FILE when that is set and
 * not empty; there a failure is a warning through the logger, never a failed fp4_create. */
fp4_status fp4_tuning_load(fp4_ctx *ctx, const char *path);

/* fp4_tuning_load on the `len` bytes at `text` (need not be NUL-terminated); `origin` (may be
 * NULL) names them in messages. */
fp4_status fp4_tuning_load_buffer(fp4_ctx *ctx, const char *text, size_t len,
                                  const char *origin);

/* Writes the context's table (its entries only) to `path` atomically: a temporary file in the
 * same folder, flushed to disk, then renamed over path, so that a reader sees the old file or
 * the new one, never a part; on failure the temporary file is removed and path is untouched.
 * Errors: INVALID_ARGUMENT (NULL), and FP4_ERR_INTERNAL is never used for I/O: a file that
 * can't be written is FP4_ERR_INVALID_ARGUMENT with the system's reason. */
fp4_status fp4_tuning_save(fp4_ctx *ctx, const char *path);

/* Empties the context's table. FP4_ERR_INVALID_ARGUMENT for a NULL ctx. */
fp4_status fp4_tuning_clear(fp4_ctx *ctx);

typedef struct fp4_tuning_info {
    size_t struct_size;    /* sizeof(fp4_tuning_info); fp4_tuning_info_init sets it */
    int64_t entries;       /* in the table */
    int64_t ignored;       /* entries of other devices or versions skipped by the last load */
    char file[1024];       /* the last file loaded into the table, or "" */
    char device_key[384];  /* the key its entries carry: "NVIDIA H200" sm_90 132 SMs 0.1.0 */
    fp4_autotune_mode mode;
} fp4_tuning_info;

void fp4_tuning_info_init(fp4_tuning_info *info); /* zeroes, sets struct_size */
/* What the context's table holds. FP4_ERR_INVALID_ARGUMENT for NULL or a bad struct_size (an
 * output struct: see above fp4_device_info). */
fp4_status fp4_tuning_get_info(const fp4_ctx *ctx, fp4_tuning_info *info);

/* ---------------------------------------------------------------------------------------
 * Checkpoints (src/ckpt/, docs/format.md "Checkpoints"): safetensors files, read through a
 * read-only memory map and validated whole before anything is read, and NVIDIA ModelOpt's
 * NVFP4 layers in them. Host calls, no context (except the weight loader), that never print:
 * a failure returns a status and leaves its detail in fp4_last_error(NULL) (thread-local),
 * e.g. "model.safetensors: tensor \"a.weight\": data_offsets [0, 96] hold 96 bytes, but
 * F32 [4, 8] needs 128". The header is parsed with cJSON (Debian: libcjson-dev); a library
 * built without it returns FP4_ERR_NOT_SUPPORTED ("built without cJSON") from every call.
 * An open checkpoint is read-only: any number of threads may read one handle at once.
 *
 * The safetensors format (huggingface/safetensors, docs/format.md): 8 bytes, the header's
 * length N as a little-endian uint64; N bytes of UTF-8 JSON (an object; trailing spaces
 * allowed), each key a tensor name mapped to {"dtype", "shape", "data_offsets": [begin, end]}
 * (offsets in bytes from the end of the header), plus an optional "__metadata__" object of
 * string values; then the data. Checked before use: N <= 100 MB and within the file, the JSON
 * shape, dtype names, non-negative integer dims (at most FP4_ST_MAX_DIMS) whose product times
 * the dtype size fits int64 and equals end - begin, unique names, and offsets that tile the
 * data section exactly (sorted by begin: the first at 0, each at the previous end, the last
 * at the file's end: no holes, no overlaps). Anything else is FP4_ERR_INVALID_ARGUMENT.
 * ------------------------------------------------------------------------------------- */
#define FP4_ST_MAX_DIMS 8
#define FP4_ST_MAX_HEADER_BYTES 100000000 /* the safetensors reference's limit */

/* The dtypes of the safetensors format, by their names there ("F32", "F8_E4M3", ...). */
typedef enum fp4_st_dtype {
    FP4_ST_BOOL = 0, FP4_ST_U8 = 1, FP4_ST_I8 = 2, FP4_ST_F8_E5M2 = 3, FP4_ST_F8_E4M3 = 4,
    FP4_ST_F8_E8M0 = 5, FP4_ST_I16 = 6, FP4_ST_U16 = 7, FP4_ST_F16 = 8, FP4_ST_BF16 = 9,
    FP4_ST_I32 = 10, FP4_ST_U32 = 11, FP4_ST_F32 = 12, FP4_ST_I64 = 13, FP4_ST_U64 = 14,
    FP4_ST_F64 = 15, FP4_ST_C64 = 16
} fp4_st_dtype;
#define FP4_ST_DTYPE_COUNT 17

/* "F32", "BF16", ... as the format spells them; "?" for a bad value. */
const char *fp4_st_dtype_name(fp4_st_dtype dtype);
/* Bytes per element (1, 2, 4 or 8); 0 for a bad value. */
int64_t fp4_st_dtype_size(fp4_st_dtype dtype);

/* One tensor of an open checkpoint. Pointers stay valid until fp4_safetensors_close. */
typedef struct fp4_st_tensor {
    const char *name;      /* "model.layers.0.mlp.up_proj.weight" */
    fp4_st_dtype dtype;
    int ndim;              /* 0 (a scalar: one element) .. FP4_ST_MAX_DIMS */
    int64_t shape[FP4_ST_MAX_DIMS]; /* row-major, the last dimension contiguous; 0 past ndim */
    int64_t numel;         /* product of the dims (1 for a scalar) */
    int64_t bytes;         /* numel * fp4_st_dtype_size(dtype) */
    int64_t file_offset;   /* of its first byte in its file (8 + N + begin) */
    const void *data;      /* the bytes, mapped read-only (little-endian elements) */
    const char *file;      /* the file it is in (a shard of a sharded checkpoint) */
} fp4_st_tensor;

typedef struct fp4_safetensors fp4_safetensors; /* an open checkpoint */

/* 1 when the library was built with cJSON (the checkpoint calls work), else 0. */
int fp4_built_with_safetensors(void);

/* Opens a checkpoint: a .safetensors file; a sharded checkpoint's index JSON
 * ("model.safetensors.index.json": {"weight_map": {tensor name: shard file name}}, shard
 * names relative to the index's folder, no '/' or "..", every mapped tensor in its shard and
 * every tensor of a shard in the map); or a folder holding model.safetensors.index.json or
 * else model.safetensors. Every file is mapped read-only (mmap) and validated (above) before
 * *out is set; a tensor name in two shards is an error. On failure *out is NULL.
 * Errors: FP4_ERR_INVALID_ARGUMENT (NULL argument, a file that can't be opened: the system's
 * reason, a corrupt or hostile file: what is wrong, where), FP4_ERR_OUT_OF_MEMORY,
 * FP4_ERR_NOT_SUPPORTED (built without cJSON). */
fp4_status fp4_safetensors_open(const char *path, fp4_safetensors **out);
/* The same on `size` bytes at `data` (one file's image, not copied: it must outlive the
 * handle); `origin` (may be NULL) names it in messages. */
fp4_status fp4_safetensors_open_buffer(const void *data, int64_t size, const char *origin,
                                       fp4_safetensors **out);
void fp4_safetensors_close(fp4_safetensors *st); /* unmaps; accepts NULL */

/* Number of tensors (over all shards); 0 for NULL. */
int64_t fp4_safetensors_count(const fp4_safetensors *st);
/* Tensor `index` (0 .. count-1, in name order, strcmp) into *out. FP4_ERR_INVALID_ARGUMENT
 * for NULL or an index out of range. */
fp4_status fp4_safetensors_tensor(const fp4_safetensors *st, int64_t index, fp4_st_tensor *out);
/* Index of the tensor named `name`, or -1 if there is none (not an error: nothing recorded). */
int64_t fp4_safetensors_find(const fp4_safetensors *st, const char *name);
/* The __metadata__ entries (of the first file that has any: a sharded checkpoint's shards
 * in the order the index first names them): count, then key i in the file's order (NULL past
 * the end).
 * fp4_safetensors_metadata gives the value of `key`, or NULL. */
int64_t fp4_safetensors_metadata_count(const fp4_safetensors *st);
const char *fp4_safetensors_metadata_key(const fp4_safetensors *st, int64_t index);
const char *fp4_safetensors_metadata(const fp4_safetensors *st, const char *key);

/* Writes a safetensors file of `count` tensors (name, dtype, ndim, shape and data of each are
 * read; numel/bytes/offsets are computed; data may be NULL only for 0 bytes) in the given
 * order, with `n_meta` __metadata__ pairs (meta[2i] key, meta[2i+1] value; meta may be NULL
 * when n_meta is 0). The header is padded with spaces to a multiple of 8 bytes, so the data
 * starts 8-byte aligned. Atomic: a temporary file in the same folder, flushed to disk, then
 * renamed over path; on failure path is untouched and the temporary removed.
 * Errors: FP4_ERR_INVALID_ARGUMENT (NULL, count < 0, an empty, duplicate or "__metadata__"
 * name, a bad dtype, ndim or dim, a size overflow, I/O with the system's reason),
 * FP4_ERR_OUT_OF_MEMORY, FP4_ERR_NOT_SUPPORTED (built without cJSON). */
fp4_status fp4_safetensors_write(const char *path, const fp4_st_tensor *tensors, int64_t count,
                                 const char *const *meta, int64_t n_meta);

/* An NVFP4 linear layer of a ModelOpt checkpoint, ready for fp4_gemm as its B operand. */
typedef struct fp4_nvfp4_weight {
    size_t struct_size;    /* sizeof(fp4_nvfp4_weight); set it before loading */
    int64_t n, k;          /* output features (rows of B), input features (K) */
    void *q;               /* [n, k/2] bytes, packed E2M1, in the context's memory */
    void *sf;              /* fp4_sf_bytes(n, k, sf_layout) bytes of E4M3 scales, context memory */
    fp4_sf_layout sf_layout;
    float weight_scale_2;  /* ModelOpt's decode global scale ws2: W ~ e2m1 * e4m3 * ws2 */
    float input_scale;     /* the activation's decode scale (<layer>.input_scale), 0 if absent */
} fp4_nvfp4_weight;

/* Loads layer `layer` ("model.layers.0.self_attn.q_proj") of a ModelOpt NVFP4 checkpoint
 * (docs/format.md "ModelOpt NVFP4 checkpoints", checked against nvidia-modelopt's export):
 *   <layer>.weight          U8 [N, K/2]: E2M1 pairs, the even k in the low nibble;
 *   <layer>.weight_scale    F8_E4M3 (or U8) [N, K/16]: one scale per 16 along K, linear layout;
 *   <layer>.weight_scale_2  F32, a scalar ([] or [1]): ws2 > 0 and finite;
 *   <layer>.input_scale     F32 scalar, optional;
 * K a multiple of 16. The bytes are copied into memory of ctx's device (fp4_malloc) and the
 * scales rewritten into `layout` (fp4_sf_convert), synchronized. For the GEMM of activations
 * A quantized with the modelopt recipe and decode scale ws2_a, alpha = ws2_a * ws2; with an
 * encode scale gs_a (flashinfer recipe), alpha = ws2 / gs_a. Free with fp4_nvfp4_weight_free.
 * out->struct_size must be sizeof(fp4_nvfp4_weight). Errors: FP4_ERR_INVALID_ARGUMENT (NULL,
 * no such layer, a tensor missing or of the wrong dtype or shape, a bad ws2: the detail in
 * fp4_last_error(ctx)), FP4_ERR_OUT_OF_MEMORY, FP4_ERR_CUDA, FP4_ERR_NOT_SUPPORTED (no cJSON). */
fp4_status fp4_modelopt_load_weight(fp4_ctx *ctx, const fp4_safetensors *ckpt, const char *layer,
                                    fp4_sf_layout layout, fp4_nvfp4_weight *out);
/* Frees q and sf (context memory) and zeroes them; accepts NULL or a zeroed weight. */
void fp4_nvfp4_weight_free(fp4_ctx *ctx, fp4_nvfp4_weight *weight);

#if defined(__GNUC__) && !defined(_WIN32)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif /* FP4GEMM_H */

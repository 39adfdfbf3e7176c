/*
 * bench_cuda.c - the CUDA half of `fp4gemm bench`: the device, the measured ceilings, the
 * operands of one point, the providers, the check against the reference, and the timing.
 *
 * One point (M, N, K), step by step:
 *   1. plan the rotated input sets: each provider rotates over enough sets that one graph
 *      replay touches >= BENCH_L2_FACTOR L2 sizes of inputs (cold weights), capped by memory;
 *   2. make the operands on the device: random BF16 activations A and weights B, quantized by
 *      the library (fp4_global_scale of set 0, fp4_quantize, swizzled scales) into NVFP4 sets;
 *      dequantized by the library (global scale 1: exactly e2m1 * e4m3) into the BF16 sets of
 *      cublas_bf16; BF16 -> E4M3 with one per-tensor scale into the sets of cublas_fp8.
 *      Every provider computes D = alpha * A B^T with alpha = 1 / (gs_a * gs_b);
 *   3. the reference on sampled elements, in double on the host, from the bytes downloaded
 *      once (the NVFP4 bytes; for cublas_fp8 its own E4M3 bytes and scales);
 *   4. per provider: run once on a NaN-poisoned D, check every element is finite and the
 *      samples match; estimate the cost; capture a CUDA graph of >= BENCH_MIN_LAUNCHES
 *      launches, each on the next input set; replay it, timed with events; per-GEMM time =
 *      replay time / launches. A provider that is wrong is FAILED and not timed.
 */
#define _POSIX_C_SOURCE 200809L
#include "bench_internal.h"
#include "bench_kernels.h"
#include "format.h"

#include <cuda_runtime_api.h>
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes" /* cublasLt.h declares f() prototypes */
#endif
#include <cublasLt.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define WHY 512                        /* every internal `why` buffer has this size */
#define LT_WORKSPACE ((size_t)32 << 20) /* cuBLASLt workspace: NVIDIA's advice for Hopper */
#define ALIGN 256                      /* of every sub-buffer of the arena */
#define MEM_RESERVE ((int64_t)768 << 20) /* device memory left free for cuBLAS, the library */
#define TARGET_TIMED_MS 50.0           /* cheap points get more replays, up to this much */

/* ---- errors ------------------------------------------------------------------------------ */

static int fail_cuda(char *why, cudaError_t err, const char *what) {
    (void)cudaGetLastError(); /* clear a non-sticky error so that it is not blamed twice */
    snprintf(why, WHY, "%s: %s (%s)", what, cudaGetErrorString(err), cudaGetErrorName(err));
    return -1;
}

static int fail_lt(char *why, cublasStatus_t st, const char *what) {
    snprintf(why, WHY, "%s: %s (cuBLAS status %d)", what, cublasLtGetStatusString(st), (int)st);
    return -1;
}

static int fail_fp4(char *why, const fp4_ctx *ctx, fp4_status st, const char *what) {
    snprintf(why, WHY, "%s: %s: %s", what, fp4_status_name(st), fp4_last_error(ctx));
    return -1;
}

#define TRY_CUDA(call)                                                                        \
    do {                                                                                      \
        const cudaError_t try_err_ = (call);                                                  \
        if (try_err_ != cudaSuccess) return fail_cuda(why, try_err_, #call);                  \
    } while (0)
#define TRY_LT(call)                                                                          \
    do {                                                                                      \
        const cublasStatus_t try_st_ = (call);                                                \
        if (try_st_ != CUBLAS_STATUS_SUCCESS) return fail_lt(why, try_st_, #call);            \
    } while (0)
#define TRY_FP4(ctx, call, what)                                                              \
    do {                                                                                      \
        const fp4_status try_st_ = (call);                                                    \
        if (try_st_ != FP4_OK) return fail_fp4(why, (ctx), try_st_, (what));                  \
    } while (0)

static void copy_why(char *dst, size_t len, const char *src) {
    if (dst && len) snprintf(dst, len, "%s", src);
}

/* ---- the session ---------------------------------------------------------------------------- */

/* Offsets in the small device buffer `small`. */
enum {
    SMALL_GS = 0,          /* float[2]: encode global scales of A and B (set 0) */
    SMALL_AMAX = 16,       /* float: amax for the FP8 scale */
    SMALL_F8_SCALE = 32,   /* float at +0 (A) and +16 (B): FP8 decode scales (cuBLASLt's) */
    SMALL_F8_INV = 64,     /* float at +0 (A) and +16 (B): their inverses, used to encode */
    SMALL_NONFINITE = 96,  /* unsigned long long: NaN/Inf outputs */
    SMALL_BYTES = 4096
};

struct bench_cuda {
    fp4_ctx *ctx;
    int device;
    cudaStream_t stream;
    cublasLtHandle_t lt;
    void *workspace;       /* LT_WORKSPACE bytes */
    uint8_t *small;        /* SMALL_BYTES */
    cudaEvent_t *events;
    int nevents;
    int64_t l2_bytes;
    double copy_gbs, bf16_tflops;
    void *arena;           /* one point's buffers; grown as needed, never shrunk */
    size_t arena_bytes;
};

static int ensure_events(bench_cuda *bc, int count, char *why) {
    if (count <= bc->nevents) return 0;
    cudaEvent_t *grown = realloc(bc->events, (size_t)count * sizeof *grown);
    if (!grown) {
        snprintf(why, WHY, "out of host memory for %d CUDA events", count);
        return -1;
    }
    bc->events = grown;
    while (bc->nevents < count) {
        TRY_CUDA(cudaEventCreate(&bc->events[bc->nevents]));
        bc->nevents++;
    }
    return 0;
}

static int device_attribute(enum cudaDeviceAttr attr, int device) {
    int value = 0;
    if (cudaDeviceGetAttribute(&value, attr, device) != cudaSuccess) {
        (void)cudaGetLastError();
        value = 0;
    }
    return value;
}

static int open_session(bench_cuda *bc, int device, bench_device *dev, char *why) {
    fp4_status st = fp4_create(&bc->ctx, device);
    if (st != FP4_OK) return fail_fp4(why, NULL, st, "fp4_create");
    bc->device = device;
    TRY_CUDA(cudaSetDevice(device));
    TRY_CUDA(cudaStreamCreateWithFlags(&bc->stream, cudaStreamNonBlocking));
    TRY_LT(cublasLtCreate(&bc->lt));
    TRY_CUDA(cudaMalloc(&bc->workspace, LT_WORKSPACE));
    TRY_CUDA(cudaMalloc((void **)&bc->small, SMALL_BYTES));
    TRY_CUDA(cudaMemset(bc->small, 0, SMALL_BYTES));
    if (ensure_events(bc, BENCH_MAX_REPLAYS + 1, why) != 0) return -1;

    fp4_device_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    st = fp4_device_query(device, &info);
    if (st != FP4_OK) return fail_fp4(why, NULL, st, "fp4_device_query");
    memset(dev, 0, sizeof *dev);
    snprintf(dev->name, sizeof dev->name, "%s", info.name);
    dev->device = device;
    dev->cc = info.compute_capability;
    dev->sm_count = info.sm_count;
    dev->l2_bytes = info.l2_bytes;
    dev->memory_bytes = info.memory_bytes;
    dev->sm_clock_mhz = device_attribute(cudaDevAttrClockRate, device) / 1000;
    dev->mem_clock_mhz = device_attribute(cudaDevAttrMemoryClockRate, device) / 1000;
    size_t free_b = 0, total_b = 0;
    TRY_CUDA(cudaMemGetInfo(&free_b, &total_b));
    dev->free_bytes = (int64_t)free_b;
    if (cudaRuntimeGetVersion(&dev->runtime_version) != cudaSuccess) dev->runtime_version = 0;
    if (cudaDriverGetVersion(&dev->driver_version) != cudaSuccess) dev->driver_version = 0;
    (void)cudaGetLastError();
    dev->cublaslt_version = (long)cublasLtGetVersion();
    bc->l2_bytes = info.l2_bytes > 0 ? info.l2_bytes : ((int64_t)50 << 20);
    return 0;
}

int bench_cuda_open(int device, bench_device *dev, bench_cuda **out, char *why_out,
                    size_t why_len) {
    char why[WHY] = "";
    *out = NULL;
    bench_cuda *bc = calloc(1, sizeof *bc);
    if (!bc) {
        copy_why(why_out, why_len, "out of host memory");
        return -1;
    }
    if (open_session(bc, device, dev, why) != 0) {
        copy_why(why_out, why_len, why);
        bench_cuda_close(bc);
        return -1;
    }
    *out = bc;
    return 0;
}

void bench_cuda_close(bench_cuda *bc) {
    if (!bc) return;
    if (bc->stream) (void)cudaStreamSynchronize(bc->stream);
    for (int i = 0; i < bc->nevents; i++) (void)cudaEventDestroy(bc->events[i]);
    free(bc->events);
    if (bc->arena) (void)cudaFree(bc->arena);
    if (bc->small) (void)cudaFree(bc->small);
    if (bc->workspace) (void)cudaFree(bc->workspace);
    if (bc->lt) (void)cublasLtDestroy(bc->lt);
    if (bc->stream) (void)cudaStreamDestroy(bc->stream);
    (void)cudaGetLastError();
    fp4_destroy(bc->ctx);
    free(bc);
}

/* After a failure: can the run go on? A sticky error (a kernel that faulted) breaks the CUDA
 * context for good; a non-sticky one (a bad argument, out of memory) is cleared. */
static int context_alive(bench_cuda *bc, char *why) {
    (void)cudaGetLastError();
    cudaError_t err = cudaStreamSynchronize(bc->stream);
    if (err == cudaSuccess) err = cudaDeviceSynchronize();
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        err = cudaDeviceSynchronize();
    }
    if (err == cudaSuccess) {
        void *probe = NULL;
        err = cudaMalloc(&probe, 256);
        if (err == cudaSuccess) err = cudaFree(probe);
    }
    if (err == cudaSuccess) return 1;
    snprintf(why, WHY, "the CUDA context is broken, no further GPU work is possible: %s (%s)",
             cudaGetErrorString(err), cudaGetErrorName(err));
    return 0;
}

int bench_cuda_provider_check(bench_cuda *bc, const bench_provider *p, char *why,
                              size_t why_len) {
    const int cc = fp4_ctx_compute_capability(bc->ctx);
    char buf[WHY] = "";
    switch (p->kind) {
    case BENCH_KIND_FP4:
        if (p->backend == FP4_BACKEND_AUTO) {
            fp4_backend chosen;
            const fp4_status st = fp4_gemm_select_backend(bc->ctx, NULL, &chosen);
            if (st == FP4_OK) return 0;
            snprintf(buf, sizeof buf, "%s", fp4_last_error(bc->ctx));
        } else if (fp4_backend_check(bc->ctx, p->backend, NULL, buf, sizeof buf) == FP4_OK) {
            return 0;
        }
        break;
    case BENCH_KIND_CUBLAS_BF16:
    case BENCH_KIND_DEQUANT_CUBLAS:
        if (cc >= 80) return 0;
        snprintf(buf, sizeof buf, "cuBLASLt BF16 GEMMs need sm_80 or newer; this device is sm_%d",
                 cc);
        break;
    case BENCH_KIND_CUBLAS_FP8:
        if (cc >= 89) return 0;
        snprintf(buf, sizeof buf,
                 "cuBLASLt FP8 E4M3 GEMMs need sm_89 or newer; this device is sm_%d", cc);
        break;
    }
    copy_why(why, why_len, buf);
    return -1;
}

/* ---- cuBLASLt: row-major D[M,N] = A[M,K] B[N,K]^T as the TN GEMM D^T = B A^T --------------- */

/* NOTE: cuBLASLt's heuristic can return an algorithm that cublasLtMatmul then refuses
 * (NOT_SUPPORTED, seen for FP8 on an H200 with cuBLAS 13.1): keep a few and use the first
 * that runs, as NVIDIA's samples advise. */
enum { LT_ALGOS = 8 };

typedef struct lt_plan {
    int ready;                  /* an algorithm was found */
    char why[WHY];              /* why not, when not */
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc; /* cuBLASLt's A (our B), B (our A), C = D */
    cublasLtMatmulAlgo_t algo[LT_ALGOS]; /* the heuristic's candidates, best first */
    size_t workspace[LT_ALGOS];
    int nalgo, cur;              /* how many; the one in use */
} lt_plan;

static void lt_plan_destroy(lt_plan *p) {
    if (p->lc) (void)cublasLtMatrixLayoutDestroy(p->lc);
    if (p->lb) (void)cublasLtMatrixLayoutDestroy(p->lb);
    if (p->la) (void)cublasLtMatrixLayoutDestroy(p->la);
    if (p->op) (void)cublasLtMatmulDescDestroy(p->op);
    memset(p, 0, sizeof *p);
}

static cudaDataType_t lt_out_type(fp4_dtype out) {
    return out == FP4_DTYPE_F32 ? CUDA_R_32F : out == FP4_DTYPE_F16 ? CUDA_R_16F : CUDA_R_16BF;
}

/* Builds the plan. Returns 0 when it is ready, 1 when cuBLASLt has no algorithm for it (the
 * reason in p->why: the provider is SKIPPED), -1 on an error (in why). In column-major terms
 * (cuBLASLt's): our row-major B [N,K] is a K x N matrix with ld K, used transposed (T); our A
 * [M,K] is K x M with ld K, not transposed (N); D [M,N] row-major is N x M with ld N. This TN
 * form is the one FP8 GEMMs require on Hopper; the BF16 baseline uses it too. With FP8, the
 * per-tensor decode scales are device pointers: cuBLASLt's A scale is our B's. */
static int lt_plan_make(bench_cuda *bc, lt_plan *p, cudaDataType_t in_type, int64_t m,
                        int64_t n, int64_t k, fp4_dtype out, const float *scale_a,
                        const float *scale_b, char *why) {
    lt_plan_destroy(p);
    const cudaDataType_t out_type = lt_out_type(out);
    TRY_LT(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t trans_a = CUBLAS_OP_T, trans_b = CUBLAS_OP_N;
    TRY_LT(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a,
                                          sizeof trans_a));
    TRY_LT(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b,
                                          sizeof trans_b));
    if (scale_a && scale_b) {
        TRY_LT(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                                              &scale_b, sizeof scale_b));
        TRY_LT(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                                              &scale_a, sizeof scale_a));
    }
    TRY_LT(cublasLtMatrixLayoutCreate(&p->la, in_type, (uint64_t)k, (uint64_t)n, k));
    TRY_LT(cublasLtMatrixLayoutCreate(&p->lb, in_type, (uint64_t)k, (uint64_t)m, k));
    TRY_LT(cublasLtMatrixLayoutCreate(&p->lc, out_type, (uint64_t)n, (uint64_t)m, n));

    cublasLtMatmulPreference_t pref = NULL;
    TRY_LT(cublasLtMatmulPreferenceCreate(&pref));
    const uint64_t max_ws = LT_WORKSPACE;
    cublasStatus_t st = cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &max_ws, sizeof max_ws);
    cublasLtMatmulHeuristicResult_t results[LT_ALGOS];
    memset(results, 0, sizeof results);
    int count = 0;
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulAlgoGetHeuristic(bc->lt, p->op, p->la, p->lb, p->lc, p->lc, pref,
                                            LT_ALGOS, results, &count);
    (void)cublasLtMatmulPreferenceDestroy(pref);
    p->nalgo = 0;
    p->cur = 0;
    for (int i = 0; st == CUBLAS_STATUS_SUCCESS && i < count && i < LT_ALGOS; i++) {
        if (results[i].state != CUBLAS_STATUS_SUCCESS) continue;
        p->algo[p->nalgo] = results[i].algo;
        p->workspace[p->nalgo] = results[i].workspaceSize;
        p->nalgo++;
    }
    if (st != CUBLAS_STATUS_SUCCESS || p->nalgo < 1) {
        snprintf(p->why, sizeof p->why,
                 "cuBLASLt has no %s GEMM algorithm with %s output for M=%lld N=%lld K=%lld "
                 "on this device (cublasLtMatmulAlgoGetHeuristic: %s, %d algorithms)",
                 in_type == CUDA_R_8F_E4M3 ? "FP8 E4M3" : "BF16", fp4_dtype_name(out),
                 (long long)m, (long long)n, (long long)k,
                 st == CUBLAS_STATUS_SUCCESS ? cublasLtGetStatusString(results[0].state)
                                             : cublasLtGetStatusString(st),
                 count);
        return 1;
    }
    p->ready = 1;
    return 0;
}

/* D = alpha * a b^T with our row-major a [m,k] and b [n,k]. */
static int lt_run(bench_cuda *bc, lt_plan *p, float alpha, const void *a, const void *b,
                  void *d, char *why) {
    const float beta = 0.0f;
    for (;;) {
        const cublasStatus_t st =
            cublasLtMatmul(bc->lt, p->op, &alpha, b, p->la, a, p->lb, &beta, d, p->lc, d, p->lc,
                           &p->algo[p->cur], bc->workspace, p->workspace[p->cur], bc->stream);
        if (st == CUBLAS_STATUS_SUCCESS) return 0;
        if (st != CUBLAS_STATUS_NOT_SUPPORTED || p->cur + 1 >= p->nalgo)
            return fail_lt(why, st, "cublasLtMatmul (every candidate algorithm)");
        p->cur++; /* refused before launching anything: try the next candidate */
    }
}

/* ---- timing helpers ----------------------------------------------------------------------- */

static int cmp_double(const void *x, const void *y) {
    const double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Percentile q in [0, 1] of sorted v[n], linearly interpolated. */
static double percentile(const double *v, int n, double q) {
    if (n <= 0) return 0.0;
    const double pos = q * (double)(n - 1);
    const int lo = (int)pos;
    if (lo >= n - 1) return v[n - 1];
    return v[lo] + (pos - (double)lo) * (v[lo + 1] - v[lo]);
}

static int elapsed_ms(cudaEvent_t start, cudaEvent_t stop, double *ms, char *why) {
    float f = 0.0f;
    TRY_CUDA(cudaEventElapsedTime(&f, start, stop));
    *ms = (double)f;
    return 0;
}

/* ---- ceilings -------------------------------------------------------------------------------- */

static void release(void **p) {
    if (*p) (void)cudaFree(*p);
    *p = NULL;
}

/* Device-to-device copy bandwidth, bytes read + written: median of 10 copies of >= 1 GiB
 * (less when memory is short). Returns -1 on an error, with why. */
static int measure_copy(bench_cuda *bc, bench_device *dev, char *why) {
    size_t free_b = 0, total_b = 0;
    TRY_CUDA(cudaMemGetInfo(&free_b, &total_b));
    size_t bytes = (size_t)1 << 30;
    const size_t usable = free_b > (size_t)MEM_RESERVE ? free_b - (size_t)MEM_RESERVE : 0;
    while (bytes > ((size_t)64 << 20) && 2 * bytes > usable) bytes >>= 1;
    if (2 * bytes > usable) {
        snprintf(why, WHY, "not enough free device memory for the copy ceiling");
        return -1;
    }
    void *src = NULL, *dst = NULL;
    int rc = -1;
    enum { COPIES = 10 };
    double ms[COPIES];
    cudaError_t err = cudaMalloc(&src, bytes);
    if (err == cudaSuccess) err = cudaMalloc(&dst, bytes);
    if (err == cudaSuccess) err = cudaMemsetAsync(src, 0x5A, bytes, bc->stream);
    for (int i = 0; i < 2 && err == cudaSuccess; i++) /* warm-up */
        err = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, bc->stream);
    for (int i = 0; i < COPIES && err == cudaSuccess; i++) {
        err = cudaEventRecord(bc->events[i], bc->stream);
        if (err == cudaSuccess)
            err = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, bc->stream);
        if (err == cudaSuccess) err = cudaEventRecord(bc->events[i + 1], bc->stream);
        if (err == cudaSuccess) err = cudaStreamSynchronize(bc->stream);
        if (err == cudaSuccess && elapsed_ms(bc->events[i], bc->events[i + 1], &ms[i], why) != 0)
            goto done;
    }
    if (err != cudaSuccess) {
        fail_cuda(why, err, "the copy ceiling (cudaMalloc/cudaMemcpyAsync)");
        goto done;
    }
    qsort(ms, COPIES, sizeof ms[0], cmp_double);
    const double med = percentile(ms, COPIES, 0.5);
    dev->copy_bytes = (int64_t)bytes;
    dev->copy_gbs = med > 0 ? 2.0 * (double)bytes / (med * 1e-3) / 1e9 : 0.0;
    rc = 0;
done:
    release(&src);
    release(&dst);
    return rc;
}

/* cuBLASLt BF16 GEMM rate on 8192^3 random data: median of 10 timed runs after 3 warm-ups. */
static int measure_bf16(bench_cuda *bc, bench_device *dev, char *why) {
    const int64_t s = 8192;
    const size_t bytes = (size_t)(s * s * 2);
    void *a = NULL, *b = NULL, *d = NULL;
    lt_plan plan;
    memset(&plan, 0, sizeof plan);
    int rc = -1;
    enum { RUNS = 10 };
    double ms[RUNS];
    cudaError_t err = cudaMalloc(&a, bytes);
    if (err == cudaSuccess) err = cudaMalloc(&b, bytes);
    if (err == cudaSuccess) err = cudaMalloc(&d, bytes);
    if (err == cudaSuccess) err = bench_fill_bf16(a, s * s, 0xA11CEull, 1.0f, 0, bc->stream);
    if (err == cudaSuccess) err = bench_fill_bf16(b, s * s, 0xB0Bull, 1.0f, 0, bc->stream);
    if (err != cudaSuccess) {
        fail_cuda(why, err, "the BF16 ceiling (cudaMalloc or the fill kernel)");
        goto done;
    }
    const int made = lt_plan_make(bc, &plan, CUDA_R_16BF, s, s, s, FP4_DTYPE_BF16, NULL, NULL, why);
    if (made != 0) {
        if (made > 0) snprintf(why, WHY, "%s", plan.why);
        goto done;
    }
    for (int i = 0; i < 3; i++)
        if (lt_run(bc, &plan, 1.0f, a, b, d, why) != 0) goto done;
    for (int i = 0; i < RUNS; i++) {
        if ((err = cudaEventRecord(bc->events[i], bc->stream)) != cudaSuccess) break;
        if (lt_run(bc, &plan, 1.0f, a, b, d, why) != 0) goto done;
        if ((err = cudaEventRecord(bc->events[i + 1], bc->stream)) != cudaSuccess) break;
        if ((err = cudaStreamSynchronize(bc->stream)) != cudaSuccess) break;
        if (elapsed_ms(bc->events[i], bc->events[i + 1], &ms[i], why) != 0) goto done;
    }
    if (err != cudaSuccess) {
        fail_cuda(why, err, "the BF16 ceiling (events or synchronize)");
        goto done;
    }
    qsort(ms, RUNS, sizeof ms[0], cmp_double);
    const double med = percentile(ms, RUNS, 0.5);
    dev->bf16_tflops = med > 0 ? 2.0 * (double)s * (double)s * (double)s / (med * 1e-3) / 1e12 : 0;
    rc = 0;
done:
    lt_plan_destroy(&plan);
    release(&a);
    release(&b);
    release(&d);
    return rc;
}

/* Median milliseconds of `runs` timed calls of one library call (after one warm-up). */
typedef fp4_status (*timed_call)(bench_cuda *bc, void *arg);

static int time_library_call(bench_cuda *bc, timed_call call, void *arg, double *median_ms,
                             char *why) {
    enum { RUNS = 10 };
    double ms[RUNS];
    TRY_FP4(bc->ctx, call(bc, arg), "the quantizer measurement (warm-up)");
    for (int i = 0; i < RUNS; i++) {
        TRY_CUDA(cudaEventRecord(bc->events[i], bc->stream));
        TRY_FP4(bc->ctx, call(bc, arg), "the quantizer measurement");
        TRY_CUDA(cudaEventRecord(bc->events[i + 1], bc->stream));
        TRY_CUDA(cudaStreamSynchronize(bc->stream));
        if (elapsed_ms(bc->events[i], bc->events[i + 1], &ms[i], why) != 0) return -1;
    }
    qsort(ms, RUNS, sizeof ms[0], cmp_double);
    *median_ms = percentile(ms, RUNS, 0.5);
    return 0;
}

typedef struct quant_bufs {
    int64_t rows, k;
    uint16_t *x;   /* [rows, k] BF16 input */
    uint8_t *q;    /* [rows, k/2] */
    uint8_t *sf;   /* swizzled scales */
    uint16_t *y;   /* [rows, k] BF16 dequantized */
    float *gs;     /* device: the global scale */
} quant_bufs;

static fp4_status call_global_scale(bench_cuda *bc, void *arg) {
    quant_bufs *b = (quant_bufs *)arg;
    return fp4_global_scale(bc->ctx, b->rows, b->k, FP4_DTYPE_BF16, b->x, b->k, b->gs, bc->stream);
}

static fp4_status call_quantize(bench_cuda *bc, void *arg) {
    quant_bufs *b = (quant_bufs *)arg;
    fp4_quant_desc d;
    fp4_quant_desc_init(&d);
    d.rows = b->rows;
    d.k = b->k;
    d.in_dtype = FP4_DTYPE_BF16;
    d.in = b->x;
    d.global_scale_ptr = b->gs;
    d.out_q = b->q;
    d.out_sf = b->sf;
    d.sf_layout = FP4_SF_SWIZZLED_128x4;
    d.stream = bc->stream;
    return fp4_quantize(bc->ctx, &d);
}

static fp4_status call_dequantize(bench_cuda *bc, void *arg) {
    quant_bufs *b = (quant_bufs *)arg;
    fp4_dequant_desc d;
    fp4_dequant_desc_init(&d);
    d.rows = b->rows;
    d.k = b->k;
    d.q = b->q;
    d.sf = b->sf;
    d.sf_layout = FP4_SF_SWIZZLED_128x4;
    d.global_scale_ptr = b->gs;
    d.out_dtype = FP4_DTYPE_BF16;
    d.out = b->y;
    d.stream = bc->stream;
    return fp4_dequantize(bc->ctx, &d);
}

/* The library's memory-bound kernels (global scale, quantize, dequantize) on a BF16
 * [8192, 8192] activation-like tensor (128 MiB: far past L2), in bytes read + written per
 * second, to compare with the copy ceiling. */
static int measure_quantizer(bench_cuda *bc, bench_device *dev, char *why) {
    quant_bufs b = {.rows = 8192, .k = 8192};
    const double elems = (double)b.rows * (double)b.k;
    int rc = -1;
    cudaError_t err = cudaMalloc((void **)&b.x, (size_t)(elems * 2));
    if (err == cudaSuccess) err = cudaMalloc((void **)&b.y, (size_t)(elems * 2));
    if (err == cudaSuccess) err = cudaMalloc((void **)&b.q, (size_t)(elems / 2));
    if (err == cudaSuccess)
        err = cudaMalloc((void **)&b.sf, (size_t)fp4_sf_bytes(b.rows, b.k, FP4_SF_SWIZZLED_128x4));
    if (err == cudaSuccess) err = cudaMalloc((void **)&b.gs, sizeof(float));
    if (err == cudaSuccess) err = bench_fill_bf16(b.x, b.rows * b.k, 0x9A17ull, 1.0f, 1, bc->stream);
    if (err != cudaSuccess) {
        fail_cuda(why, err, "the quantizer measurement (cudaMalloc or the fill kernel)");
        goto done;
    }
    double ms_amax, ms_quant, ms_dequant;
    if (time_library_call(bc, call_global_scale, &b, &ms_amax, why) != 0) goto done;
    if (time_library_call(bc, call_quantize, &b, &ms_quant, why) != 0) goto done;
    if (time_library_call(bc, call_dequantize, &b, &ms_dequant, why) != 0) goto done;
    const double packed = elems / 2 + elems / 16; /* E2M1 bytes + E4M3 scales */
    dev->quant_rows = b.rows;
    dev->quant_k = b.k;
    dev->amax_gbs = 2 * elems / (ms_amax * 1e-3) / 1e9;
    dev->quant_gbs = (2 * elems + packed) / (ms_quant * 1e-3) / 1e9;
    dev->dequant_gbs = (packed + 2 * elems) / (ms_dequant * 1e-3) / 1e9;
    rc = 0;
done:
    release((void **)&b.x);
    release((void **)&b.y);
    release((void **)&b.q);
    release((void **)&b.sf);
    release((void **)&b.gs);
    return rc;
}

int bench_cuda_ceilings(bench_cuda *bc, bench_device *dev, char *why_out, size_t why_len) {
    char why[WHY] = "";
    dev->ceiling_note[0] = 0;
    if (measure_copy(bc, dev, why) != 0) {
        if (!context_alive(bc, why)) goto broken;
        snprintf(dev->ceiling_note, sizeof dev->ceiling_note, "copy ceiling not measured: %.200s",
                 why);
    }
    if (measure_bf16(bc, dev, why) != 0) {
        if (!context_alive(bc, why)) goto broken;
        const size_t used = strlen(dev->ceiling_note);
        snprintf(dev->ceiling_note + used, sizeof dev->ceiling_note - used,
                 "%sBF16 ceiling not measured: %.200s", used ? "; " : "", why);
    }
    if (measure_quantizer(bc, dev, why) != 0) {
        if (!context_alive(bc, why)) goto broken;
        const size_t used = strlen(dev->ceiling_note);
        snprintf(dev->ceiling_note + used, sizeof dev->ceiling_note - used,
                 "%squantizer not measured: %.200s", used ? "; " : "", why);
    }
    bc->copy_gbs = dev->copy_gbs;
    bc->bf16_tflops = dev->bf16_tflops;
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) dev->free_bytes = (int64_t)free_b;
    (void)cudaGetLastError();
    return 0;
broken:
    copy_why(why_out, why_len, why);
    return -1;
}

/* ---- the operands of one point ---------------------------------------------------------------- */

typedef struct operands {
    int64_t m, n, k;
    fp4_dtype out_dtype;
    int64_t out_size;
    /* NVFP4 sets, each [a_q | a_sf | b_q | b_sf] (swizzled scales) */
    uint8_t *q;
    size_t q_stride, q_off_asf, q_off_bq, q_off_bsf;
    /* BF16 sets [a | b] (exactly e2m1 * e4m3) and E4M3 sets [a | b] */
    uint8_t *bf, *f8;
    size_t bf_stride, bf_off_b, f8_stride, f8_off_b;
    int nq, nbf, nf8;        /* sets made of each */
    uint16_t *scratch;       /* (m + n) * k BF16: the generator's source; dequant_cublas' A, B */
    void *d;                 /* [m, n] out_dtype, ldd = n */
    int sets[4];             /* sets each kind rotates over, by bench_kind */
    double in_bytes[4];      /* input bytes one launch reads, by bench_kind */
    float alpha;             /* 1 / (gs_a * gs_b), every provider */
    float gs[2], f8_scale[2];
    int ns;                  /* samples */
    int64_t sm[BENCH_SAMPLES], sn[BENCH_SAMPLES];
    double ref[BENCH_SAMPLES], ref_abs[BENCH_SAMPLES];   /* from the NVFP4 bytes */
    double ref8[BENCH_SAMPLES], ref8_abs[BENCH_SAMPLES]; /* from the E4M3 bytes and scales */
    lt_plan plan_bf16, plan_fp8;
    int plan_bf16_made, plan_fp8_made; /* lt_plan_make's result, or -2 before it ran */
} operands;

static uint8_t *a_q(const operands *o, int s) { return o->q + (size_t)s * o->q_stride; }
static uint8_t *a_sf(const operands *o, int s) { return a_q(o, s) + o->q_off_asf; }
static uint8_t *b_q(const operands *o, int s) { return a_q(o, s) + o->q_off_bq; }
static uint8_t *b_sf(const operands *o, int s) { return a_q(o, s) + o->q_off_bsf; }
static uint16_t *a_bf(const operands *o, int s) {
    return (uint16_t *)(o->bf + (size_t)s * o->bf_stride);
}
static uint16_t *b_bf(const operands *o, int s) {
    return (uint16_t *)(o->bf + (size_t)s * o->bf_stride + o->bf_off_b);
}
static uint8_t *a_f8(const operands *o, int s) { return o->f8 + (size_t)s * o->f8_stride; }
static uint8_t *b_f8(const operands *o, int s) { return a_f8(o, s) + o->f8_off_b; }

static size_t align_up(size_t x) { return (x + ALIGN - 1) / ALIGN * ALIGN; }

static int run_has_kind(const bench_run *run, bench_kind kind) {
    for (int i = 0; i < run->nproviders; i++)
        if (run->providers[i].kind == kind) return 1;
    return 0;
}

/* Device bytes of the point's buffers for the set counts in o. */
static size_t arena_need(const operands *o) {
    const size_t mk = (size_t)(o->m * o->k), nk = (size_t)(o->n * o->k);
    return (size_t)o->nq * o->q_stride + (size_t)o->nbf * o->bf_stride +
           (size_t)o->nf8 * o->f8_stride + align_up((mk + nk) * 2) +
           align_up((size_t)(o->m * o->n * o->out_size));
}

static int max3(int a, int b, int c) { return a > b ? (a > c ? a : c) : (b > c ? b : c); }

/* Decides the set counts (1.), grows the arena and carves it. Returns 0, 1 when the point
 * does not fit in device memory (why says so), or -1 on a CUDA error. */
static int plan_operands(bench_cuda *bc, const bench_run *run, operands *o, char *why) {
    const int64_t m = o->m, n = o->n, k = o->k;
    o->q_off_asf = align_up((size_t)(m * k / 2));
    o->q_off_bq = o->q_off_asf + align_up((size_t)fp4_sf_bytes(m, k, FP4_SF_SWIZZLED_128x4));
    o->q_off_bsf = o->q_off_bq + align_up((size_t)(n * k / 2));
    o->q_stride = o->q_off_bsf + align_up((size_t)fp4_sf_bytes(n, k, FP4_SF_SWIZZLED_128x4));
    o->bf_off_b = align_up((size_t)(m * k * 2));
    o->bf_stride = o->bf_off_b + align_up((size_t)(n * k * 2));
    o->f8_off_b = align_up((size_t)(m * k));
    o->f8_stride = o->f8_off_b + align_up((size_t)(n * k));

    /* the bytes one launch must read: A, B and their scales, in the provider's format */
    const double fp4_bytes = (double)(m + n) * (double)k * (0.5 + 1.0 / 16.0);
    o->in_bytes[BENCH_KIND_FP4] = fp4_bytes;
    o->in_bytes[BENCH_KIND_DEQUANT_CUBLAS] = fp4_bytes;
    o->in_bytes[BENCH_KIND_CUBLAS_BF16] = (double)(m + n) * (double)k * 2.0;
    o->in_bytes[BENCH_KIND_CUBLAS_FP8] = (double)(m + n) * (double)k;
    int want[4];
    for (int kind = 0; kind < 4; kind++) {
        const double sets = ceil(BENCH_L2_FACTOR * (double)bc->l2_bytes / o->in_bytes[kind]);
        want[kind] = sets < 2 ? 2 : sets > BENCH_MAX_SETS ? BENCH_MAX_SETS : (int)sets;
        if (!run_has_kind(run, (bench_kind)kind)) want[kind] = 0;
    }
    const int fp4_sets = max3(want[BENCH_KIND_FP4], want[BENCH_KIND_DEQUANT_CUBLAS], 0);
    o->nbf = want[BENCH_KIND_CUBLAS_BF16];
    o->nf8 = want[BENCH_KIND_CUBLAS_FP8];
    o->nq = max3(fp4_sets, o->nbf, o->nf8);

    size_t free_b = 0, total_b = 0;
    TRY_CUDA(cudaMemGetInfo(&free_b, &total_b));
    const double budget =
        0.9 * ((double)free_b + (double)bc->arena_bytes - (double)MEM_RESERVE);
    /* too big: fewer sets (warm weights, said in the row's note) until it fits */
    while ((double)arena_need(o) > budget && (o->nq > 1 || o->nbf > 1 || o->nf8 > 1)) {
        o->nq = o->nq > 1 ? o->nq * 3 / 4 : 1;
        o->nbf = o->nbf > 1 ? o->nbf * 3 / 4 : o->nbf;
        o->nf8 = o->nf8 > 1 ? o->nf8 * 3 / 4 : o->nf8;
        if (o->nbf > o->nq) o->nbf = o->nq;
        if (o->nf8 > o->nq) o->nf8 = o->nq;
    }
    const size_t need = arena_need(o);
    if ((double)need > budget) {
        snprintf(why, WHY,
                 "needs %.2f GiB of device memory even with one input set; %.2f GiB are free",
                 (double)need / 1073741824.0, (double)free_b / 1073741824.0);
        return 1;
    }
    o->sets[BENCH_KIND_FP4] = want[BENCH_KIND_FP4] < o->nq ? want[BENCH_KIND_FP4] : o->nq;
    o->sets[BENCH_KIND_DEQUANT_CUBLAS] =
        want[BENCH_KIND_DEQUANT_CUBLAS] < o->nq ? want[BENCH_KIND_DEQUANT_CUBLAS] : o->nq;
    o->sets[BENCH_KIND_CUBLAS_BF16] = o->nbf;
    o->sets[BENCH_KIND_CUBLAS_FP8] = o->nf8;

    if (need > bc->arena_bytes) {
        release(&bc->arena);
        bc->arena_bytes = 0;
        const cudaError_t err = cudaMalloc(&bc->arena, need);
        if (err != cudaSuccess) {
            (void)cudaGetLastError();
            snprintf(why, WHY, "cudaMalloc of %.2f GiB for the operands: %s",
                     (double)need / 1073741824.0, cudaGetErrorString(err));
            return err == cudaErrorMemoryAllocation ? 1 : -1;
        }
        bc->arena_bytes = need;
    }
    uint8_t *at = bc->arena;
    o->q = at;
    at += (size_t)o->nq * o->q_stride;
    o->bf = at;
    at += (size_t)o->nbf * o->bf_stride;
    o->f8 = at;
    at += (size_t)o->nf8 * o->f8_stride;
    o->scratch = (uint16_t *)at;
    at += align_up((size_t)((m + n) * k * 2));
    o->d = at;
    return 0;
}

/* splitmix64: the host side of the seeds. */
static uint64_t mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Makes every set of one operand (2.): which = 0 for A (rows m, activations with outliers),
 * 1 for B (rows n, weights). */
static int make_operand(bench_cuda *bc, operands *o, int which, uint64_t seed, char *why) {
    const int64_t rows = which ? o->n : o->m, k = o->k;
    float *gs = (float *)(bc->small + SMALL_GS) + which;
    float *amax = (float *)(bc->small + SMALL_AMAX);
    /* NOTE: each FP8 scale in its own 16-byte slot: cuBLASLt's FP8 kernels may load them
     * with wide loads */
    float *f8_scale = (float *)(bc->small + SMALL_F8_SCALE + 16 * which);
    float *f8_inv = (float *)(bc->small + SMALL_F8_INV + 16 * which);
    uint16_t *src = o->scratch;
    for (int s = 0; s < o->nq; s++) {
        const uint64_t set_seed = mix64(seed ^ mix64(((uint64_t)which << 32) | (uint64_t)s));
        TRY_CUDA(bench_fill_bf16(src, rows * k, set_seed, which ? 0.02f : 1.0f, !which,
                                 bc->stream));
        /* one encode scale for every set, from set 0, so that alpha is one number */
        if (s == 0)
            TRY_FP4(bc->ctx,
                    fp4_global_scale(bc->ctx, rows, k, FP4_DTYPE_BF16, src, k, gs, bc->stream),
                    "fp4_global_scale");
        fp4_quant_desc qd;
        fp4_quant_desc_init(&qd);
        qd.rows = rows;
        qd.k = k;
        qd.in_dtype = FP4_DTYPE_BF16;
        qd.in = src;
        qd.ld_in = k;
        qd.global_scale_ptr = gs;
        qd.out_q = which ? b_q(o, s) : a_q(o, s);
        qd.out_sf = which ? b_sf(o, s) : a_sf(o, s);
        qd.sf_layout = FP4_SF_SWIZZLED_128x4;
        qd.stream = bc->stream;
        TRY_FP4(bc->ctx, fp4_quantize(bc->ctx, &qd), "fp4_quantize");
        if (s >= o->nbf && s >= o->nf8) continue;

        /* the exact BF16 values e2m1 * e4m3 (global scale 1; alpha carries 1/gs) */
        uint16_t *bf = s < o->nbf ? (which ? b_bf(o, s) : a_bf(o, s)) : src;
        fp4_dequant_desc dq;
        fp4_dequant_desc_init(&dq);
        dq.rows = rows;
        dq.k = k;
        dq.q = qd.out_q;
        dq.sf = qd.out_sf;
        dq.sf_layout = FP4_SF_SWIZZLED_128x4;
        dq.global_scale = 1.0f;
        dq.out_dtype = FP4_DTYPE_BF16;
        dq.out = bf;
        dq.ld_out = k;
        dq.stream = bc->stream;
        TRY_FP4(bc->ctx, fp4_dequantize(bc->ctx, &dq), "fp4_dequantize");
        if (s >= o->nf8) continue;
        if (s == 0) {
            TRY_CUDA(bench_amax_bf16(bf, rows * k, amax, bc->stream));
            TRY_CUDA(bench_fp8_scales(amax, f8_scale, f8_inv, bc->stream));
        }
        TRY_CUDA(bench_bf16_to_e4m3(bf, which ? b_f8(o, s) : a_f8(o, s), rows * k, f8_inv,
                                    bc->stream));
    }
    return 0;
}

/* The sampled elements: 64 random (m, n) and the four corners. */
static void pick_samples(operands *o, uint64_t seed) {
    uint64_t state = seed;
    o->ns = 0;
    const int64_t corners[4][2] = {{0, 0}, {0, o->n - 1}, {o->m - 1, 0}, {o->m - 1, o->n - 1}};
    for (int i = 0; i < 4; i++) {
        o->sm[o->ns] = corners[i][0];
        o->sn[o->ns] = corners[i][1];
        o->ns++;
    }
    while (o->ns < BENCH_SAMPLES) {
        state = mix64(state);
        o->sm[o->ns] = (int64_t)(state % (uint64_t)o->m);
        state = mix64(state);
        o->sn[o->ns] = (int64_t)(state % (uint64_t)o->n);
        o->ns++;
    }
}

/* Copies device bytes to the host, ordered after the work on the bench's stream.
 * NOTE: the stream is non-blocking, so a plain cudaMemcpy (legacy stream) would not wait. */
static int download(bench_cuda *bc, const void *src, size_t bytes, void *host, char *why) {
    TRY_CUDA(cudaMemcpyAsync(host, src, bytes, cudaMemcpyDeviceToHost, bc->stream));
    TRY_CUDA(cudaStreamSynchronize(bc->stream));
    return 0;
}

/* sum_j a[j] b[j] in double, and sum_j |a[j] b[j]| into *sum_abs. */
static double dot(const double *a, const double *b, int64_t k, double *sum_abs) {
    double sum = 0.0, abs_sum = 0.0;
    for (int64_t j = 0; j < k; j++) {
        sum += a[j] * b[j];
        abs_sum += fabs(a[j] * b[j]);
    }
    *sum_abs = abs_sum;
    return sum;
}

static void decode_nvfp4_row(const uint8_t *q_row, const uint8_t *sf, int64_t row, int64_t k,
                             double *out) {
    for (int64_t i = 0; i < k; i++)
        out[i] = (double)fp4_e2m1_decode(fp4_get_nibble(q_row, i)) *
                 (double)fp4_e4m3_decode(sf[fp4_sf_offset_swizzled(row, i / 16, k)]);
}

/* The reference on the samples (3.): ref = alpha * sum_k a*b in double, and ref_abs =
 * |alpha| * sum_k |a*b|, the scale of the rounding errors an FP32 accumulation can make. */
static int make_reference(bench_cuda *bc, operands *o, char *why) {
    const int64_t k = o->k;
    const size_t sfa_bytes = (size_t)fp4_sf_bytes(o->m, k, FP4_SF_SWIZZLED_128x4);
    const size_t sfb_bytes = (size_t)fp4_sf_bytes(o->n, k, FP4_SF_SWIZZLED_128x4);
    uint8_t *sfa = malloc(sfa_bytes), *sfb = malloc(sfb_bytes), *row = malloc((size_t)k);
    double *ra = malloc((size_t)k * sizeof(double)), *rb = malloc((size_t)k * sizeof(double));
    int rc = -1;
    if (!sfa || !sfb || !row || !ra || !rb) {
        snprintf(why, WHY, "out of host memory for the reference");
        goto done;
    }
    if (download(bc, a_sf(o, 0), sfa_bytes, sfa, why) != 0) goto done;
    if (download(bc, b_sf(o, 0), sfb_bytes, sfb, why) != 0) goto done;
    const double alpha = (double)o->alpha;
    for (int i = 0; i < o->ns; i++) {
        if (download(bc, a_q(o, 0) + o->sm[i] * (k / 2), (size_t)(k / 2), row, why) != 0)
            goto done;
        decode_nvfp4_row(row, sfa, o->sm[i], k, ra);
        if (download(bc, b_q(o, 0) + o->sn[i] * (k / 2), (size_t)(k / 2), row, why) != 0)
            goto done;
        decode_nvfp4_row(row, sfb, o->sn[i], k, rb);
        double sum_abs;
        o->ref[i] = alpha * dot(ra, rb, k, &sum_abs);
        o->ref_abs[i] = fabs(alpha) * sum_abs;
    }
    if (o->nf8 > 0) {
        const double scale = alpha * (double)o->f8_scale[0] * (double)o->f8_scale[1];
        for (int i = 0; i < o->ns; i++) {
            if (download(bc, a_f8(o, 0) + o->sm[i] * k, (size_t)k, row, why) != 0) goto done;
            for (int64_t j = 0; j < k; j++) ra[j] = (double)fp4_e4m3_decode(row[j]);
            if (download(bc, b_f8(o, 0) + o->sn[i] * k, (size_t)k, row, why) != 0) goto done;
            for (int64_t j = 0; j < k; j++) rb[j] = (double)fp4_e4m3_decode(row[j]);
            double sum_abs;
            o->ref8[i] = scale * dot(ra, rb, k, &sum_abs);
            o->ref8_abs[i] = fabs(scale) * sum_abs;
        }
    }
    rc = 0;
done:
    free(sfa);
    free(sfb);
    free(row);
    free(ra);
    free(rb);
    return rc;
}

/* Steps 1-3 for a point. 0 ok; 1 the point can't be prepared (why: all SKIPPED); -1 error. */
static int prepare_point(bench_cuda *bc, const bench_run *run, operands *o, char *why) {
    const int rc = plan_operands(bc, run, o, why);
    if (rc != 0) return rc;
    const uint64_t seed = mix64(run->opt->seed ^ mix64((uint64_t)o->m * 0x100000001B3ull ^
                                                       (uint64_t)o->n << 20 ^ (uint64_t)o->k));
    if (make_operand(bc, o, 0, seed, why) != 0) return -1;
    if (make_operand(bc, o, 1, seed, why) != 0) return -1;
    TRY_CUDA(cudaMemcpyAsync(o->gs, bc->small + SMALL_GS, sizeof o->gs, cudaMemcpyDeviceToHost,
                             bc->stream));
    for (int w = 0; w < 2; w++)
        TRY_CUDA(cudaMemcpyAsync(&o->f8_scale[w], bc->small + SMALL_F8_SCALE + 16 * w,
                                 sizeof(float), cudaMemcpyDeviceToHost, bc->stream));
    TRY_CUDA(cudaStreamSynchronize(bc->stream));
    o->alpha = 1.0f / (o->gs[0] * o->gs[1]);
    if (!isfinite(o->alpha) || o->alpha == 0.0f) {
        snprintf(why, WHY, "alpha = 1/(gs_a*gs_b) = 1/(%g*%g) is not usable", (double)o->gs[0],
                 (double)o->gs[1]);
        return -1;
    }
    pick_samples(o, seed);
    return make_reference(bc, o, why);
}

/* ---- providers --------------------------------------------------------------------------- */

static void fp4_desc(const bench_cuda *bc, const operands *o, fp4_backend backend, int set,
                     fp4_gemm_desc *d) {
    fp4_gemm_desc_init(d);
    d->m = o->m;
    d->n = o->n;
    d->k = o->k;
    d->a_dtype = FP4_DTYPE_E2M1;
    d->a = a_q(o, set);
    d->a_sf = a_sf(o, set);
    d->a_sf_layout = FP4_SF_SWIZZLED_128x4;
    d->b = b_q(o, set);
    d->b_sf = b_sf(o, set);
    d->b_sf_layout = FP4_SF_SWIZZLED_128x4;
    d->d_dtype = o->out_dtype;
    d->d = o->d;
    d->ldd = o->n;
    d->alpha = o->alpha;
    d->backend = backend;
    d->stream = bc->stream;
}

/* One GEMM of provider p on input set `set`, enqueued on the stream. */
static int launch(bench_cuda *bc, operands *o, const bench_provider *p, int set,
                  char *why) {
    switch (p->kind) {
    case BENCH_KIND_FP4: {
        fp4_gemm_desc d;
        fp4_desc(bc, o, p->backend, set, &d);
        TRY_FP4(bc->ctx, fp4_gemm(bc->ctx, &d), "fp4_gemm");
        return 0;
    }
    case BENCH_KIND_CUBLAS_BF16:
        return lt_run(bc, &o->plan_bf16, o->alpha, a_bf(o, set), b_bf(o, set), o->d, why);
    case BENCH_KIND_CUBLAS_FP8:
        return lt_run(bc, &o->plan_fp8, o->alpha, a_f8(o, set), b_f8(o, set), o->d, why);
    case BENCH_KIND_DEQUANT_CUBLAS: {
        uint16_t *a = o->scratch, *b = o->scratch + o->m * o->k; /* [m,k] and [n,k] BF16 */
        for (int which = 0; which < 2; which++) {
            fp4_dequant_desc dq;
            fp4_dequant_desc_init(&dq);
            dq.rows = which ? o->n : o->m;
            dq.k = o->k;
            dq.q = which ? b_q(o, set) : a_q(o, set);
            dq.sf = which ? b_sf(o, set) : a_sf(o, set);
            dq.sf_layout = FP4_SF_SWIZZLED_128x4;
            dq.global_scale = 1.0f;
            dq.out_dtype = FP4_DTYPE_BF16;
            dq.out = which ? b : a;
            dq.ld_out = o->k;
            dq.stream = bc->stream;
            TRY_FP4(bc->ctx, fp4_dequantize(bc->ctx, &dq), "fp4_dequantize");
        }
        return lt_run(bc, &o->plan_bf16, o->alpha, a, b, o->d, why);
    }
    }
    snprintf(why, WHY, "unknown provider kind %d", (int)p->kind);
    return -1;
}

/* Can p run this point? 0 yes (note may say more, e.g. what auto chose); 1 no, SKIPPED with
 * the reason in note; -1 an error (why). */
static int provider_ready(bench_cuda *bc, operands *o, const bench_provider *p, char *note,
                          size_t note_len, char *why) {
    lt_plan *plan = NULL;
    int *made = NULL;
    switch (p->kind) {
    case BENCH_KIND_FP4: {
        fp4_gemm_desc d;
        fp4_desc(bc, o, p->backend, 0, &d);
        char buf[WHY] = "";
        if (p->backend == FP4_BACKEND_AUTO) {
            fp4_backend chosen;
            const fp4_status st = fp4_gemm_select_backend(bc->ctx, &d, &chosen);
            if (st == FP4_ERR_NOT_SUPPORTED) {
                snprintf(note, note_len, "%.390s", fp4_last_error(bc->ctx));
                return 1;
            }
            if (st != FP4_OK) return fail_fp4(why, bc->ctx, st, "fp4_gemm_select_backend");
            snprintf(note, note_len, "auto ran %s", fp4_backend_name(chosen));
            return 0;
        }
        const fp4_status st = fp4_backend_check(bc->ctx, p->backend, &d, buf, sizeof buf);
        if (st == FP4_ERR_NOT_SUPPORTED) {
            snprintf(note, note_len, "%.390s", buf);
            return 1;
        }
        if (st != FP4_OK) {
            snprintf(why, WHY, "fp4_backend_check: %s: %.400s", fp4_status_name(st), buf);
            return -1;
        }
        return 0;
    }
    case BENCH_KIND_CUBLAS_BF16:
    case BENCH_KIND_DEQUANT_CUBLAS:
        plan = &o->plan_bf16;
        made = &o->plan_bf16_made;
        if (*made == -2)
            *made = lt_plan_make(bc, plan, CUDA_R_16BF, o->m, o->n, o->k, o->out_dtype, NULL,
                                 NULL, why);
        break;
    case BENCH_KIND_CUBLAS_FP8:
        plan = &o->plan_fp8;
        made = &o->plan_fp8_made;
        if (*made == -2)
            *made = lt_plan_make(bc, plan, CUDA_R_8F_E4M3, o->m, o->n, o->k, o->out_dtype,
                                 (const float *)(bc->small + SMALL_F8_SCALE),
                                 (const float *)(bc->small + SMALL_F8_SCALE + 16), why);
        break;
    }
    if (!made) {
        snprintf(why, WHY, "unknown provider kind %d", (int)p->kind);
        return -1;
    }
    if (*made < 0) {
        *made = -3; /* failed: don't retry */
        return -1;
    }
    if (*made == -3) {
        snprintf(why, WHY, "making the cuBLASLt plan failed earlier at this point");
        return -1;
    }
    if (!plan->ready) {
        snprintf(note, note_len, "%.390s", plan->why);
        return 1;
    }
    return 0;
}

/* Unit roundoff of the output type. */
static double unit_roundoff(fp4_dtype out) {
    return out == FP4_DTYPE_BF16 ? ldexp(1.0, -8) : out == FP4_DTYPE_F16 ? ldexp(1.0, -11)
                                                                       : ldexp(1.0, -24);
}

/* Downloads the sampled elements of D. */
static int read_samples(bench_cuda *bc, const operands *o, double *out, char *why) {
    for (int i = 0; i < o->ns; i++) {
        uint8_t raw[4] = {0, 0, 0, 0};
        const size_t at = (size_t)(o->sm[i] * o->n + o->sn[i]) * (size_t)o->out_size;
        TRY_CUDA(cudaMemcpyAsync(raw, (const uint8_t *)o->d + at, (size_t)o->out_size,
                                 cudaMemcpyDeviceToHost, bc->stream));
        TRY_CUDA(cudaStreamSynchronize(bc->stream));
        uint16_t h;
        uint32_t u;
        memcpy(&h, raw, 2);
        memcpy(&u, raw, 4);
        out[i] = o->out_dtype == FP4_DTYPE_F32   ? (double)fp4_bits_f32(u)
                 : o->out_dtype == FP4_DTYPE_F16 ? (double)fp4_f16_to_f32(h)
                                                 : (double)fp4_bf16_to_f32(h);
    }
    return 0;
}

/* Compares the samples with a reference. Tolerance per element:
 *   2u (|ref| + rms(ref)) + acc * ref_abs
 * with u the unit roundoff of the output type (the final rounding, and a split-K reduction
 * in the output type), acc the relative error of the accumulation against sum |a*b|. The
 * relative L2 error over the samples must also stay under 2u + l2_extra. NaN never passes.
 * Returns 1 if it passes; the verdict's detail goes to note. */
static int compare(const operands *o, const double *out, const double *ref, const double *ref_abs,
                   double acc, double l2_extra, bench_result *r, char *note, size_t note_len) {
    const double u = unit_roundoff(o->out_dtype);
    double sum_ref2 = 0.0, sum_err2 = 0.0;
    for (int i = 0; i < o->ns; i++) sum_ref2 += ref[i] * ref[i];
    const double rms = sqrt(sum_ref2 / (double)o->ns);
    int bad = 0, worst = 0;
    double worst_ratio = 0.0;
    for (int i = 0; i < o->ns; i++) {
        const double err = fabs(out[i] - ref[i]);
        const double tol = 2.0 * u * (fabs(ref[i]) + rms) + acc * ref_abs[i] + 1e-30;
        const double ratio = isfinite(err) ? err / tol : INFINITY;
        if (!(err <= tol)) bad++;
        if (!(ratio <= worst_ratio)) {
            worst_ratio = ratio;
            worst = i;
        }
        sum_err2 += isfinite(err) ? err * err : INFINITY;
    }
    const double rel_l2 = sum_ref2 > 0 ? sqrt(sum_err2 / sum_ref2) : sqrt(sum_err2);
    const double l2_limit = 2.0 * u + l2_extra;
    r->check_max_err = worst_ratio;
    r->check_rel_l2 = rel_l2;
    if (bad == 0 && rel_l2 <= l2_limit) return 1;
    snprintf(note, note_len,
             "wrong output: %d of %d sampled elements off; worst at (m=%lld, n=%lld): %.6g, "
             "reference %.6g (%.3gx the tolerance); relative L2 error %.3g (limit %.3g)",
             bad, o->ns, (long long)o->sm[worst], (long long)o->sn[worst], out[worst], ref[worst],
             worst_ratio, rel_l2, l2_limit);
    return 0;
}

/* Correctness (4., first half): D poisoned with NaN, one launch on set 0, then every element
 * must be finite and the samples must match. Returns 0 checked (r->status FAILED if wrong),
 * -1 on an error (why). *launch_ms: the launch's time, an upper bound of later ones. */
static int check_provider(bench_cuda *bc, operands *o, const bench_provider *p, bench_result *r,
                          double *launch_ms, char *why) {
    const size_t d_bytes = (size_t)(o->m * o->n * o->out_size);
    TRY_CUDA(cudaMemsetAsync(o->d, 0xFF, d_bytes, bc->stream)); /* NaN in F32, F16 and BF16 */
    TRY_CUDA(cudaEventRecord(bc->events[0], bc->stream));
    if (launch(bc, o, p, 0, why) != 0) return -1;
    TRY_CUDA(cudaEventRecord(bc->events[1], bc->stream));
    TRY_CUDA(cudaStreamSynchronize(bc->stream));
    if (elapsed_ms(bc->events[0], bc->events[1], launch_ms, why) != 0) return -1;

    unsigned long long *count_dev = (unsigned long long *)(bc->small + SMALL_NONFINITE);
    unsigned long long nonfinite = 0;
    TRY_CUDA(bench_count_nonfinite(o->d, (int)o->out_dtype, o->m, o->n, o->n, count_dev,
                                   bc->stream));
    TRY_CUDA(cudaMemcpyAsync(&nonfinite, count_dev, sizeof nonfinite, cudaMemcpyDeviceToHost,
                             bc->stream));
    TRY_CUDA(cudaStreamSynchronize(bc->stream));
    if (nonfinite) {
        r->status = BENCH_FAILED;
        snprintf(r->note, sizeof r->note,
                 "wrong output: %llu of %lld elements are NaN/Inf: unwritten (D was poisoned "
                 "with NaN before the run) or overflowed",
                 nonfinite, (long long)(o->m * o->n));
        return 0;
    }
    double out[BENCH_SAMPLES];
    if (read_samples(bc, o, out, why) != 0) return -1;
    int ok;
    if (p->kind == BENCH_KIND_CUBLAS_FP8) {
        /* against its own E4M3 operands; FP8 tensor cores accumulate with fewer bits */
        ok = compare(o, out, o->ref8, o->ref8_abs, 2e-3, 2e-2, r, r->note, sizeof r->note);
        double e2 = 0.0, r2 = 0.0; /* for the record: how far FP8 lands from the NVFP4 data */
        for (int i = 0; i < o->ns; i++) {
            e2 += (out[i] - o->ref[i]) * (out[i] - o->ref[i]);
            r2 += o->ref[i] * o->ref[i];
        }
        r->fp8_vs_nvfp4 = r2 > 0 ? sqrt(e2 / r2) : 0.0;
    } else {
        ok = compare(o, out, o->ref, o->ref_abs, 1e-4, 1e-3, r, r->note, sizeof r->note);
    }
    if (!ok) r->status = BENCH_FAILED;
    return 0;
}

/* Captures `launches` launches, each on the next input set, into a graph. Returns 1 with
 * *exec, or 0 (the reason in note) when the provider can't be captured: then it is timed as
 * plain stream launches. */
static int capture(bench_cuda *bc, operands *o, const bench_provider *p, int launches,
                   int sets, cudaGraphExec_t *exec, char *note, size_t note_len) {
    char why[WHY] = "";
    cudaGraph_t graph = NULL;
    *exec = NULL;
    cudaError_t err = cudaStreamBeginCapture(bc->stream, cudaStreamCaptureModeThreadLocal);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        snprintf(note, note_len, "no graph (cudaStreamBeginCapture: %s)", cudaGetErrorString(err));
        return 0;
    }
    int ok = 1;
    for (int l = 0; l < launches && ok; l++) ok = launch(bc, o, p, l % sets, why) == 0;
    err = cudaStreamEndCapture(bc->stream, &graph);
    if (ok && err == cudaSuccess && graph) err = cudaGraphInstantiate(exec, graph, 0);
    if (graph) (void)cudaGraphDestroy(graph);
    if (ok && err == cudaSuccess) return 1;
    (void)cudaGetLastError();
    *exec = NULL;
    snprintf(note, note_len, "no graph (capture failed: %.200s)",
             ok ? cudaGetErrorString(err) : why);
    return 0;
}

static void append_note(bench_result *r, const char *text) {
    const size_t used = strlen(r->note);
    snprintf(r->note + used, sizeof r->note - used, "%s%s", used ? "; " : "", text);
}

/* The history rule: a provider already too slow at a smaller M of the same (N, K) is too
 * slow here. Returns the largest such M, or 0. */
static int64_t slower_before(const bench_run *run, int provider, bench_shape s) {
    int64_t best = 0;
    for (int i = 0; i < run->nresults; i++) {
        const bench_result *h = &run->results[i];
        if (h->provider == provider && h->too_slow && h->shape.n == s.n && h->shape.k == s.k &&
            h->shape.m < s.m && h->shape.m > best)
            best = h->shape.m;
    }
    return best;
}

/* Timing (4., second half). Returns 0 (r filled: OK or SKIPPED as too slow), -1 on error. */
static int time_provider(bench_cuda *bc, const bench_run *run, operands *o,
                         const bench_provider *p, bench_result *r, double check_ms, char *why) {
    const int sets = o->sets[p->kind];
    const int launches = sets > BENCH_MIN_LAUNCHES ? sets : BENCH_MIN_LAUNCHES;
    const int min_replays = run->opt->min_replays;
    const double budget_s = run->opt->max_point_seconds;

    /* estimate one launch from a few more (the check's launch paid the first-use costs) */
    const int n_est = check_ms < 200.0 ? 3 : 1;
    TRY_CUDA(cudaEventRecord(bc->events[0], bc->stream));
    for (int i = 0; i < n_est; i++)
        if (launch(bc, o, p, (i + 1) % sets, why) != 0) return -1;
    TRY_CUDA(cudaEventRecord(bc->events[1], bc->stream));
    TRY_CUDA(cudaStreamSynchronize(bc->stream));
    double est_ms = 0.0;
    if (elapsed_ms(bc->events[0], bc->events[1], &est_ms, why) != 0) return -1;
    est_ms /= n_est;

    const double replay_ms = est_ms * launches;
    int replays = replay_ms > 0 ? (int)(TARGET_TIMED_MS / replay_ms) : BENCH_MAX_REPLAYS;
    const int max_replays = min_replays > BENCH_MAX_REPLAYS ? min_replays : BENCH_MAX_REPLAYS;
    if (replays > max_replays) replays = max_replays;
    if (replays < min_replays) replays = min_replays;
    const double est_s = replay_ms * (replays + 1) / 1e3; /* + the warm-up replay */
    if (est_s > budget_s) {
        r->status = BENCH_SKIPPED;
        r->too_slow = 1;
        snprintf(r->note, sizeof r->note,
                 "too slow for the budget: %.3f ms per GEMM, so %d replays of %d launches "
                 "would take about %.1f s > --max-point-seconds %g",
                 est_ms, replays, launches, est_s, budget_s);
        return 0;
    }
    if (ensure_events(bc, replays + 1, why) != 0) return -1;

    char graph_note[WHY] = "";
    cudaGraphExec_t exec = NULL;
    const int graph = capture(bc, o, p, launches, sets, &exec, graph_note, sizeof graph_note);
    int rc = -1;
    double *ms = malloc((size_t)replays * sizeof *ms);
    if (!ms) {
        snprintf(why, WHY, "out of host memory");
        goto done;
    }
    /* one warm-up replay, then `replays` replays back to back between events */
    for (int r_i = -1; r_i < replays; r_i++) {
        if (r_i >= 0) {
            const cudaError_t err = cudaEventRecord(bc->events[r_i], bc->stream);
            if (err != cudaSuccess) {
                fail_cuda(why, err, "cudaEventRecord");
                goto done;
            }
        }
        if (graph) {
            const cudaError_t err = cudaGraphLaunch(exec, bc->stream);
            if (err != cudaSuccess) {
                fail_cuda(why, err, "cudaGraphLaunch");
                goto done;
            }
        } else {
            for (int l = 0; l < launches; l++)
                if (launch(bc, o, p, l % sets, why) != 0) goto done;
        }
        if (r_i < 0) {
            const cudaError_t err = cudaStreamSynchronize(bc->stream);
            if (err != cudaSuccess) {
                fail_cuda(why, err, "the warm-up replay");
                goto done;
            }
        }
    }
    {
        cudaError_t err = cudaEventRecord(bc->events[replays], bc->stream);
        if (err == cudaSuccess) err = cudaStreamSynchronize(bc->stream);
        if (err != cudaSuccess) {
            fail_cuda(why, err, "the timed replays");
            goto done;
        }
    }
    for (int i = 0; i < replays; i++) {
        if (elapsed_ms(bc->events[i], bc->events[i + 1], &ms[i], why) != 0) goto done;
        ms[i] = ms[i] * 1e3 / launches; /* us per GEMM */
    }
    qsort(ms, (size_t)replays, sizeof *ms, cmp_double);
    r->status = BENCH_OK;
    r->time_us = percentile(ms, replays, 0.5);
    r->p20_us = percentile(ms, replays, 0.2);
    r->p80_us = percentile(ms, replays, 0.8);
    r->launches = launches;
    r->sets = sets;
    r->replays = replays;
    r->graph = graph;
    r->cold = (double)sets * o->in_bytes[p->kind] >= BENCH_L2_FACTOR * (double)bc->l2_bytes;
    if (!graph) append_note(r, graph_note);
    if (!r->cold) append_note(r, "warm: the input sets span less than 5 L2 sizes");
    rc = 0;
done:
    free(ms);
    if (exec) (void)cudaGraphExecDestroy(exec);
    return rc;
}

/* The derived numbers of a timed row. */
static void fill_rates(const bench_cuda *bc, const operands *o, const bench_provider *p,
                       bench_result *r) {
    r->flops = 2.0 * (double)o->m * (double)o->n * (double)o->k;
    r->bytes = o->in_bytes[p->kind] + (double)(o->m * o->n * o->out_size);
    if (r->status != BENCH_OK || r->time_us <= 0) return;
    const double t = r->time_us * 1e-6;
    r->tflops = r->flops / t / 1e12;
    r->gbs = r->bytes / t / 1e9;
    double floor_s = 0.0;
    if (bc->bf16_tflops > 0) floor_s = r->flops / (bc->bf16_tflops * 1e12);
    if (bc->copy_gbs > 0 && r->bytes / (bc->copy_gbs * 1e9) > floor_s)
        floor_s = r->bytes / (bc->copy_gbs * 1e9);
    r->roofline_pct = 100.0 * floor_s / t;
}

int bench_cuda_point(bench_cuda *bc, bench_run *run, bench_shape shape, char *why_out,
                     size_t why_len) {
    char why[WHY] = "";
    const int first = run->nresults;
    for (int i = 0; i < run->nproviders; i++) {
        bench_result *r = bench_add_result(run, i, shape);
        if (!r) {
            copy_why(why_out, why_len, "out of host memory for the results");
            return -1;
        }
        r->status = BENCH_SKIPPED;
    }
    bench_result *res = run->results + first;

    operands *o = calloc(1, sizeof *o);
    if (!o) {
        copy_why(why_out, why_len, "out of host memory");
        return -1;
    }
    o->m = shape.m;
    o->n = shape.n;
    o->k = shape.k;
    o->out_dtype = run->opt->out_dtype;
    o->out_size = fp4_dtype_size(o->out_dtype);
    o->plan_bf16_made = o->plan_fp8_made = -2;

    int rc = 0;
    const int prep = prepare_point(bc, run, o, why);
    if (prep != 0) {
        if (prep < 0 && !context_alive(bc, why)) {
            rc = -1;
        } else {
            for (int i = 0; i < run->nproviders; i++) {
                res[i].status = prep > 0 ? BENCH_SKIPPED : BENCH_FAILED;
                snprintf(res[i].note, sizeof res[i].note, "%s the operands: %.300s",
                         prep > 0 ? "no room for" : "could not make", why);
            }
        }
        goto done;
    }

    for (int i = 0; i < run->nproviders; i++) {
        const bench_provider *p = &run->providers[i];
        bench_result *r = &res[i];
        bench_progress(run, p->name, shape);
        char note[400] = "";
        int ready = provider_ready(bc, o, p, note, sizeof note, why);
        if (ready == 0) {
            const int64_t slow_m = slower_before(run, i, shape);
            if (slow_m) {
                r->too_slow = 1;
                snprintf(note, sizeof note, "too slow for the budget already at M=%lld",
                         (long long)slow_m);
                ready = 1;
            }
        }
        snprintf(r->note, sizeof r->note, "%s", note);
        if (ready > 0) {
            r->status = BENCH_SKIPPED;
            fill_rates(bc, o, p, r);
            continue;
        }
        double check_ms = 0.0;
        int step = ready;
        if (step == 0) step = check_provider(bc, o, p, r, &check_ms, why);
        if (step == 0 && r->status != BENCH_FAILED)
            step = time_provider(bc, run, o, p, r, check_ms, why);
        if (step != 0) {
            r->status = BENCH_FAILED;
            snprintf(r->note, sizeof r->note, "error: %.240s", why);
            if (!context_alive(bc, why)) {
                for (int j = i + 1; j < run->nproviders; j++)
                    snprintf(res[j].note, sizeof res[j].note,
                             "not run: the CUDA context broke");
                rc = -1;
                goto done;
            }
        }
        fill_rates(bc, o, p, r);
    }
done:
    if (rc != 0) copy_why(why_out, why_len, why);
    lt_plan_destroy(&o->plan_bf16);
    lt_plan_destroy(&o->plan_fp8);
    free(o);
    return rc;
}

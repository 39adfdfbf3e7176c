/*
 * device.c - the CUDA session of `fp4gemm bench` (context, stream, cuBLASLt handle), which
 * providers can run on the device, and the ceilings measured at the start of a run: the
 * device-to-device copy, cuBLASLt BF16 and FP8 GEMMs at 8192^3, and the library's quantizer
 * kernels. Every timing is the library's fp4_measure.
 */
#define _POSIX_C_SOURCE 200809L
#include "bench_cuda.h"
#include "cli_util.h"
#include "kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors ------------------------------------------------------------------------------ */

int bench_fail_cuda(char *why, cudaError_t err, const char *what) {
    (void)cudaGetLastError(); /* clear a non-sticky error so that it is not blamed twice */
    snprintf(why, WHY, "%s: %s (%s)", what, cudaGetErrorString(err), cudaGetErrorName(err));
    return -1;
}

int bench_fail_lt(char *why, cublasStatus_t st, const char *what) {
    snprintf(why, WHY, "%s: %s (cuBLAS status %d)", what, cublasLtGetStatusString(st), (int)st);
    return -1;
}

int bench_fail_fp4(char *why, const fp4_ctx *ctx, fp4_status st, const char *what) {
    snprintf(why, WHY, "%s: %s: %s", what, fp4_status_name(st), fp4_last_error(ctx));
    return -1;
}

void bench_copy_why(char *dst, size_t len, const char *src) {
    if (dst && len) snprintf(dst, len, "%s", src);
}

/* ---- the session ---------------------------------------------------------------------- */

static int device_attribute(enum cudaDeviceAttr attr, int device) {
    int value = 0;
    if (cudaDeviceGetAttribute(&value, attr, device) != cudaSuccess) {
        (void)cudaGetLastError();
        value = 0;
    }
    return value;
}

fp4_ctx *bench_cuda_context(bench_cuda *bc) { return bc ? bc->ctx : NULL; }

static int open_session(bench_cuda *bc, int device, bench_device *dev, char *why) {
    fp4_status st = fp4_create(&bc->ctx, device);
    if (st != FP4_OK) return bench_fail_fp4(why, NULL, st, "fp4_create");
    bc->device = device;
    TRY_CUDA(cudaSetDevice(device));
    TRY_CUDA(cudaStreamCreateWithFlags(&bc->stream, cudaStreamNonBlocking));
    TRY_LT(cublasLtCreate(&bc->lt));
    TRY_CUDA(cudaMalloc(&bc->workspace, LT_WORKSPACE));
    TRY_CUDA(cudaMalloc((void **)&bc->small, SMALL_BYTES));
    TRY_CUDA(cudaMemset(bc->small, 0, SMALL_BYTES));

    fp4_device_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    st = fp4_device_query(device, &info);
    if (st != FP4_OK) return bench_fail_fp4(why, NULL, st, "fp4_device_query");
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
        bench_copy_why(why_out, why_len, "out of host memory");
        return -1;
    }
    if (open_session(bc, device, dev, why) != 0) {
        bench_copy_why(why_out, why_len, why);
        bench_cuda_close(bc);
        return -1;
    }
    *out = bc;
    return 0;
}

void bench_cuda_close(bench_cuda *bc) {
    if (!bc) return;
    if (bc->stream) (void)cudaStreamSynchronize(bc->stream);
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
int bench_context_alive(bench_cuda *bc, char *why) {
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
            fp4_tactic chosen;
            char name[96], how[WHY];
            const fp4_status st =
                cli_select(bc->ctx, NULL, &chosen, name, sizeof name, how, sizeof how);
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
    case BENCH_KIND_CUBLASLT_FP4:
        if (!FP4_LT_HAVE_NVFP4) {
            snprintf(buf, sizeof buf, "built with cuBLASLt %d, older than 12.8: no NVFP4 GEMM",
                     (int)CUBLAS_VERSION);
            break;
        }
        if (cc >= 100) return 0;
        snprintf(buf, sizeof buf,
                 "cuBLASLt's NVFP4 GEMM needs FP4 tensor cores (sm_100 or newer); this device "
                 "is sm_%d",
                 cc);
        break;
    case BENCH_KIND_OPENBLAS_F32:
        snprintf(buf, sizeof buf, "a CPU provider (--device cpu)");
        break;
    }
    bench_copy_why(why, why_len, buf);
    return -1;
}

/* ---- ceilings: timed with the library's fp4_measure (one set: these are not about L2) ---- */

void bench_release(void **p) {
    if (*p) (void)cudaFree(*p);
    *p = NULL;
}

/* The median milliseconds of one launch of `fn` by fp4_measure (>= 10 launches in a CUDA
 * graph, >= 20 replays). 0, or -1 with why. */
static int measure_ms(bench_cuda *bc, fp4_launch_fn fn, void *arg, double *ms, char *why) {
    fp4_measure_desc md;
    fp4_measure_desc_init(&md);
    md.launch = fn;
    md.user = arg;
    md.stream = bc->stream;
    fp4_measure_result r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    why[0] = 0; /* a failing launch writes its own reason */
    const fp4_status st = fp4_measure(bc->ctx, &md, &r);
    if (st != FP4_OK) {
        if (!why[0]) bench_fail_fp4(why, bc->ctx, st, "fp4_measure");
        return -1;
    }
    *ms = r.median_us * 1e-3;
    return 0;
}

typedef struct copy_arg {
    void *dst, *src;
    size_t bytes;
    int sm_count;
    char *why;
} copy_arg;

static fp4_status launch_copy(void *arg, int set, struct CUstream_st *stream) {
    (void)set;
    copy_arg *c = arg;
    const cudaError_t err = bench_copy_sm(c->dst, c->src, (int64_t)c->bytes, c->sm_count, stream);
    if (err == cudaSuccess) return FP4_OK;
    bench_fail_cuda(c->why, err, "the copy kernel");
    return FP4_ERR_CUDA;
}

/* Device-to-device copy bandwidth, bytes read + written, of >= 1 GiB (less when memory is
 * short). Returns -1 on an error, with why. */
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
    copy_arg c = {NULL, NULL, bytes, dev->sm_count, why};
    int rc = -1;
    double ms = 0.0;
    cudaError_t err = cudaMalloc(&c.src, bytes);
    if (err == cudaSuccess) err = cudaMalloc(&c.dst, bytes);
    if (err == cudaSuccess) err = cudaMemsetAsync(c.src, 0x5A, bytes, bc->stream);
    if (err != cudaSuccess) {
        bench_fail_cuda(why, err, "the copy ceiling (cudaMalloc)");
        goto done;
    }
    if (measure_ms(bc, launch_copy, &c, &ms, why) != 0) goto done;
    dev->copy_bytes = (int64_t)bytes;
    dev->copy_gbs = ms > 0 ? 2.0 * (double)bytes / (ms * 1e-3) / 1e9 : 0.0;
    rc = 0;
done:
    bench_release(&c.src);
    bench_release(&c.dst);
    return rc;
}

typedef struct gemm_arg {
    bench_cuda *bc;
    lt_plan *plan;
    const void *a, *a_scale, *b, *b_scale;
    void *d;
    char *why;
} gemm_arg;

static fp4_status launch_lt(void *arg, int set, struct CUstream_st *stream) {
    (void)set;
    (void)stream; /* the plan runs on bc->stream, the stream fp4_measure was given */
    gemm_arg *g = arg;
    return lt_run(g->bc, g->plan, 1.0f, g->a, g->a_scale, g->b, g->b_scale, g->d, g->why) == 0 ? FP4_OK : FP4_ERR_CUDA;
}

/* A cuBLASLt GEMM rate on 8192^3 random data, BF16 or FP8 E4M3 (scales 1). TFLOP/s into
 * *tflops; -1 on an error (why). */
static int measure_lt(bench_cuda *bc, int fp8, double *tflops, char *why) {
    const int64_t s = 8192;
    const size_t elem = fp8 ? 1 : 2;
    const size_t bytes = (size_t)(s * s) * elem;
    void *a = NULL, *b = NULL, *d = NULL, *tmp = NULL;
    lt_plan plan;
    memset(&plan, 0, sizeof plan);
    int rc = -1;
    double ms = 0.0;
    float *one = (float *)(bc->small + SMALL_CEIL_FP8);
    const float ones[5] = {1.0f, 0.0f, 0.0f, 0.0f, 1.0f}; /* at +0 and +16 */
    cudaError_t err = cudaMalloc(&a, bytes);
    if (err == cudaSuccess) err = cudaMalloc(&b, bytes);
    if (err == cudaSuccess) err = cudaMalloc(&d, (size_t)(s * s) * 2);
    if (err == cudaSuccess && fp8) err = cudaMalloc(&tmp, (size_t)(s * s) * 2);
    if (err == cudaSuccess && fp8)
        err = cudaMemcpyAsync(one, ones, sizeof ones, cudaMemcpyHostToDevice, bc->stream);
    for (int w = 0; w < 2 && err == cudaSuccess; w++) {
        uint16_t *dst = fp8 ? (uint16_t *)tmp : (uint16_t *)(w ? b : a);
        err = bench_fill_bf16(dst, s * s, w ? 0xB0Bull : 0xA11CEull, 1.0f, 0, bc->stream);
        if (err == cudaSuccess && fp8)
            err = bench_bf16_to_e4m3(dst, (uint8_t *)(w ? b : a), s * s, one, bc->stream);
    }
    if (err == cudaSuccess) err = cudaStreamSynchronize(bc->stream);
    if (err != cudaSuccess) {
        bench_fail_cuda(why, err, fp8 ? "the FP8 ceiling (cudaMalloc or the fill kernels)"
                                      : "the BF16 ceiling (cudaMalloc or the fill kernel)");
        goto done;
    }
    const int made =
        lt_plan_make(bc, &plan, fp8 ? CUDA_R_8F_E4M3 : CUDA_R_16BF, s, s, s, FP4_DTYPE_BF16, why);
    if (made != 0) {
        if (made > 0) snprintf(why, WHY, "%s", plan.why);
        goto done;
    }
    gemm_arg g = {bc, &plan, a, fp8 ? one : NULL, b, fp8 ? one + 4 : NULL, d, why};
    if (measure_ms(bc, launch_lt, &g, &ms, why) != 0) goto done;
    *tflops = ms > 0 ? 2.0 * (double)s * (double)s * (double)s / (ms * 1e-3) / 1e12 : 0;
    rc = 0;
done:
    lt_plan_destroy(&plan);
    bench_release(&a);
    bench_release(&b);
    bench_release(&d);
    bench_release(&tmp);
    return rc;
}

static int measure_bf16(bench_cuda *bc, bench_device *dev, char *why) {
    return measure_lt(bc, 0, &dev->bf16_tflops, why);
}

/* FP8 tensor cores: sm_89 and newer. */
static int measure_fp8(bench_cuda *bc, bench_device *dev, char *why) {
    if (fp4_ctx_compute_capability(bc->ctx) < 89) {
        snprintf(why, WHY, "no FP8 tensor cores before sm_89");
        return -1;
    }
    return measure_lt(bc, 1, &dev->fp8_tflops, why);
}

typedef struct quant_bufs {
    bench_cuda *bc;
    int64_t rows, k;
    uint16_t *x;   /* [rows, k] BF16 input */
    uint8_t *q;    /* [rows, k/2] */
    uint8_t *sf;   /* swizzled scales */
    uint16_t *y;   /* [rows, k] BF16 dequantized */
    float *gs;     /* device: the global scale */
} quant_bufs;

static fp4_status call_global_scale(void *arg, int set, struct CUstream_st *stream) {
    (void)set;
    quant_bufs *b = (quant_bufs *)arg;
    bench_cuda *bc = b->bc;
    return fp4_global_scale(bc->ctx, b->rows, b->k, FP4_DTYPE_BF16, b->x, b->k, b->gs, stream);
}

static fp4_status call_quantize(void *arg, int set, struct CUstream_st *stream) {
    (void)set;
    quant_bufs *b = (quant_bufs *)arg;
    bench_cuda *bc = b->bc;
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
    d.stream = stream;
    return fp4_quantize(bc->ctx, &d);
}

static fp4_status call_dequantize(void *arg, int set, struct CUstream_st *stream) {
    (void)set;
    quant_bufs *b = (quant_bufs *)arg;
    bench_cuda *bc = b->bc;
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
    d.stream = stream;
    return fp4_dequantize(bc->ctx, &d);
}

static fp4_status launch_empty(void *arg, int set, struct CUstream_st *stream) {
    (void)arg;
    (void)set;
    return bench_empty_kernel(stream) == cudaSuccess ? FP4_OK : FP4_ERR_CUDA;
}

/* The library's memory-bound kernels (global scale, quantize, dequantize) on a BF16
 * [8192, 8192] activation-like tensor (128 MiB: far past L2), in bytes read + written per
 * second, to compare with the copy ceiling. */
static int measure_quantizer(bench_cuda *bc, bench_device *dev, char *why) {
    quant_bufs b = {.bc = bc, .rows = 8192, .k = 8192};
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
        bench_fail_cuda(why, err, "the quantizer measurement (cudaMalloc or the fill kernel)");
        goto done;
    }
    double ms_amax, ms_quant, ms_dequant;
    if (measure_ms(bc, call_global_scale, &b, &ms_amax, why) != 0) goto done;
    if (measure_ms(bc, call_quantize, &b, &ms_quant, why) != 0) goto done;
    if (measure_ms(bc, call_dequantize, &b, &ms_dequant, why) != 0) goto done;
    const double packed = elems / 2 + elems / 16; /* E2M1 bytes + E4M3 scales */
    dev->quant_rows = b.rows;
    dev->quant_k = b.k;
    dev->amax_gbs = 2 * elems / (ms_amax * 1e-3) / 1e9;
    dev->quant_gbs = (2 * elems + packed) / (ms_quant * 1e-3) / 1e9;
    dev->dequant_gbs = (packed + 2 * elems) / (ms_dequant * 1e-3) / 1e9;
    /* decode sizes: what one quantize costs next to an empty launch (the buffers are larger) */
    double ms_1, ms_16, ms_empty;
    b.rows = 1;
    b.k = 4096;
    if (measure_ms(bc, call_quantize, &b, &ms_1, why) != 0) goto done;
    b.rows = 16;
    b.k = 16384;
    if (measure_ms(bc, call_quantize, &b, &ms_16, why) != 0) goto done;
    if (measure_ms(bc, launch_empty, NULL, &ms_empty, why) != 0) goto done;
    dev->quant_1x4096_us = ms_1 * 1e3;
    dev->quant_16x16384_us = ms_16 * 1e3;
    dev->empty_kernel_us = ms_empty * 1e3;
    rc = 0;
done:
    bench_release((void **)&b.x);
    bench_release((void **)&b.y);
    bench_release((void **)&b.q);
    bench_release((void **)&b.sf);
    bench_release((void **)&b.gs);
    return rc;
}

int bench_cuda_ceilings(bench_cuda *bc, bench_device *dev, char *why_out, size_t why_len) {
    char why[WHY] = "";
    dev->ceiling_note[0] = 0;
    if (measure_copy(bc, dev, why) != 0) {
        if (!bench_context_alive(bc, why)) goto broken;
        snprintf(dev->ceiling_note, sizeof dev->ceiling_note, "copy ceiling not measured: %.200s",
                 why);
    }
    if (measure_bf16(bc, dev, why) != 0) {
        if (!bench_context_alive(bc, why)) goto broken;
        const size_t used = strlen(dev->ceiling_note);
        snprintf(dev->ceiling_note + used, sizeof dev->ceiling_note - used,
                 "%sBF16 ceiling not measured: %.200s", used ? "; " : "", why);
    }
    if (measure_fp8(bc, dev, why) != 0) {
        if (!bench_context_alive(bc, why)) goto broken;
        const size_t used = strlen(dev->ceiling_note);
        snprintf(dev->ceiling_note + used, sizeof dev->ceiling_note - used,
                 "%sFP8 ceiling not measured: %.200s", used ? "; " : "", why);
    }
    if (measure_quantizer(bc, dev, why) != 0) {
        if (!bench_context_alive(bc, why)) goto broken;
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
    bench_copy_why(why_out, why_len, why);
    return -1;
}

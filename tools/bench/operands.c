/*
 * operands.c - the operands of one point (M, N, K), made on the device, the same for every
 * provider:
 *   1. the rotated input sets: each kind of provider rotates over enough sets that one graph
 *      replay touches >= 5 L2 sizes of inputs (fp4_measure_sets), capped by free memory;
 *   2. random BF16 activations A and weights B, quantized by the library (fp4_global_scale of
 *      set 0, fp4_quantize, swizzled scales) into the NVFP4 sets; dequantized by the library
 *      (global scale 1: exactly e2m1 * e4m3) into the BF16 sets of cublas_bf16; BF16 -> E4M3
 *      with one per-tensor scale into the FP8 sets of cublas_fp8. Every provider computes
 *      D = alpha * A B^T with alpha = 1 / (gs_a * gs_b);
 *   3. the sampled elements and, for cublas_fp8, the fp64 reference of its own E4M3 data.
 */
#include "bench_cuda.h"
#include "format.h"
#include "kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN 256 /* of every sub-buffer of the arena */

uint8_t *a_q(const operands *o, int s) { return o->q + (size_t)s * o->q_stride; }
uint8_t *a_sf(const operands *o, int s) { return a_q(o, s) + o->q_off_asf; }
uint8_t *b_q(const operands *o, int s) { return a_q(o, s) + o->q_off_bq; }
uint8_t *b_sf(const operands *o, int s) { return a_q(o, s) + o->q_off_bsf; }
uint16_t *a_bf(const operands *o, int s) {
    return (uint16_t *)(o->bf + (size_t)s * o->bf_stride);
}
uint16_t *b_bf(const operands *o, int s) {
    return (uint16_t *)(o->bf + (size_t)s * o->bf_stride + o->bf_off_b);
}
uint8_t *a_f8(const operands *o, int s) { return o->f8 + (size_t)s * o->f8_stride; }
uint8_t *b_f8(const operands *o, int s) { return a_f8(o, s) + o->f8_off_b; }

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

    /* the bytes one launch must read: A, B and their scales, in the provider's format, and
     * the sets that make them cold (the library's rule: fp4_measure_sets) */
    int want[BENCH_KIND_COUNT];
    for (int kind = 0; kind < BENCH_KIND_COUNT; kind++) {
        o->in_bytes[kind] = (double)(m + n) * (double)k * bench_kind_in_bytes((bench_kind)kind);
        want[kind] = run_has_kind(run, (bench_kind)kind)
                         ? fp4_measure_sets(bc->ctx, o->in_bytes[kind]) : 0;
    }
    const int fp4_sets = max3(want[BENCH_KIND_FP4], want[BENCH_KIND_DEQUANT_CUBLAS],
                              want[BENCH_KIND_CUBLASLT_FP4]);
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
    o->sets[BENCH_KIND_CUBLASLT_FP4] =
        want[BENCH_KIND_CUBLASLT_FP4] < o->nq ? want[BENCH_KIND_CUBLASLT_FP4] : o->nq;
    o->sets[BENCH_KIND_CUBLAS_BF16] = o->nbf;
    o->sets[BENCH_KIND_CUBLAS_FP8] = o->nf8;

    if (need > bc->arena_bytes) {
        bench_release(&bc->arena);
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

/* The sampled elements: the four corners and 64 random (m, n), drawn as fp4_gemm_verify draws
 * them from the same seed, so that every provider is compared at the same elements. */
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

/* The FP8 reference on the samples (3.): ref8 = alpha * s_a * s_b * sum_k a*b in double from
 * cublas_fp8's own E4M3 bytes and scales, ref8_abs = |that scale| * sum_k |a*b|. The NVFP4
 * providers are checked by the library (fp4_gemm_verify) from the NVFP4 bytes. */
static int make_fp8_reference(bench_cuda *bc, operands *o, char *why) {
    const int64_t k = o->k;
    uint8_t *row = malloc((size_t)k);
    double *ra = malloc((size_t)k * sizeof(double)), *rb = malloc((size_t)k * sizeof(double));
    int rc = -1;
    if (!row || !ra || !rb) {
        snprintf(why, WHY, "out of host memory for the reference");
        goto done;
    }
    const double scale = (double)o->alpha * (double)o->f8_scale[0] * (double)o->f8_scale[1];
    for (int i = 0; i < o->ns; i++) {
        if (download(bc, a_f8(o, 0) + o->sm[i] * k, (size_t)k, row, why) != 0) goto done;
        for (int64_t j = 0; j < k; j++) ra[j] = (double)fp4_e4m3_decode(row[j]);
        if (download(bc, b_f8(o, 0) + o->sn[i] * k, (size_t)k, row, why) != 0) goto done;
        for (int64_t j = 0; j < k; j++) rb[j] = (double)fp4_e4m3_decode(row[j]);
        double sum_abs;
        o->ref8[i] = scale * dot(ra, rb, k, &sum_abs);
        o->ref8_abs[i] = fabs(scale) * sum_abs;
    }
    rc = 0;
done:
    free(row);
    free(ra);
    free(rb);
    return rc;
}

/* Steps 1-3 for a point. 0 ok; 1 the point can't be prepared (why: all SKIPPED); -1 error. */
int bench_prepare_point(bench_cuda *bc, const bench_run *run, operands *o, char *why) {
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
    o->seed = seed;
    pick_samples(o, seed);
    return o->nf8 > 0 ? make_fp8_reference(bc, o, why) : 0;
}

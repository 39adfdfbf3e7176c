/*
 * gemm_example.c - the README's example as a whole program: quantize activations x [M, K] and
 * a weight w [N, K] to NVFP4, then D = x * w^T (BF16) from the NVFP4 operands.
 *
 *   gemm_example        # on the CPU
 *   gemm_example 0      # on CUDA device 0 (a build with CUDA)
 *
 * Build it against an installed fp4gemm (README, "Using the library"):
 *   cc gemm_example.c $(pkg-config --cflags --libs fp4gemm) -o gemm_example
 * or in CMake: find_package(fp4gemm) and target_link_libraries(app PRIVATE fp4gemm::fp4gemm).
 *
 * It checks D against the product of the unquantized x and w. NVFP4 keeps each element to
 * about one part in ten (E2M1, one E4M3 scale per 16), so the relative squared error
 * ||D - ref||^2 / ||ref||^2 is about 0.02 for this data (0.04 allowed); a wrong layout or
 * scale gives 1 or more. (Squared, so that the example needs no libm.) Exit code 0 when it ran
 * and the check passed, 1 otherwise.
 */
#include <fp4gemm.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { M = 16, N = 256, K = 1024 };

/* Uniform in [-1, 1), from a 64-bit LCG: the same numbers everywhere. */
static float next_uniform(uint64_t *state) {
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)(*state >> 40) * (1.0f / 8388608.0f) - 1.0f;
}

static float bf16_to_float(uint16_t h) {
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Quantize host floats [rows, K] into context memory: q [rows, K/2], sf swizzled; *gs is the
 * encode global scale. The input goes to the context's device first. */
static fp4_status quantize(fp4_ctx *ctx, const float *host, int64_t rows, void *q, void *sf,
                           float *gs) {
    const int64_t bytes = rows * K * (int64_t)sizeof(float);
    void *in = NULL;
    float *gs_dev = NULL;
    fp4_status st = fp4_malloc(ctx, &in, bytes);
    if (st == FP4_OK) st = fp4_malloc(ctx, (void **)&gs_dev, sizeof(float));
    if (st == FP4_OK) st = fp4_upload(ctx, in, host, bytes);
    if (st == FP4_OK) st = fp4_global_scale(ctx, rows, K, FP4_DTYPE_F32, in, 0, gs_dev, NULL);
    if (st == FP4_OK) st = fp4_download(ctx, gs, gs_dev, sizeof(float));
    if (st == FP4_OK) {
        fp4_quant_desc qd;
        fp4_quant_desc_init(&qd);
        qd.rows = rows;
        qd.k = K;
        qd.in_dtype = FP4_DTYPE_F32;
        qd.in = in;
        qd.global_scale = *gs;
        qd.out_q = q;   /* rows * K/2 bytes */
        qd.out_sf = sf; /* fp4_sf_bytes(rows, K, FP4_SF_SWIZZLED_128x4) bytes */
        qd.sf_layout = FP4_SF_SWIZZLED_128x4;
        st = fp4_quantize(ctx, &qd);
    }
    fp4_free(ctx, gs_dev);
    fp4_free(ctx, in);
    return st;
}

int main(int argc, char **argv) {
    const int device = argc > 1 ? atoi(argv[1]) : -1; /* -1: the CPU; 0..: a CUDA device */
    fp4_ctx *ctx = NULL;
    if (fp4_create(&ctx, device) != FP4_OK) {
        fprintf(stderr, "fp4_create: %s\n", fp4_last_error(NULL));
        return 1;
    }

    /* random activations and weight on the host */
    float *x = malloc(sizeof(float) * M * K), *w = malloc(sizeof(float) * N * K);
    uint16_t *d_host = malloc(sizeof(uint16_t) * M * N);
    if (!x || !w || !d_host) {
        fprintf(stderr, "out of host memory\n");
        return 1;
    }
    uint64_t rng = 1;
    for (int64_t i = 0; i < (int64_t)M * K; i++) x[i] = next_uniform(&rng);
    for (int64_t i = 0; i < (int64_t)N * K; i++) w[i] = next_uniform(&rng);

    /* NVFP4 operands in context memory (device memory on a GPU, host memory on the CPU) */
    void *a_q = NULL, *a_sf = NULL, *w_q = NULL, *w_sf = NULL, *d = NULL;
    float gs_x = 0, gs_w = 0;
    fp4_status st = fp4_malloc(ctx, &a_q, fp4_packed_bytes(M, K));
    if (st == FP4_OK) st = fp4_malloc(ctx, &a_sf, fp4_sf_bytes(M, K, FP4_SF_SWIZZLED_128x4));
    if (st == FP4_OK) st = fp4_malloc(ctx, &w_q, fp4_packed_bytes(N, K));
    if (st == FP4_OK) st = fp4_malloc(ctx, &w_sf, fp4_sf_bytes(N, K, FP4_SF_SWIZZLED_128x4));
    if (st == FP4_OK) st = fp4_malloc(ctx, &d, (int64_t)sizeof(uint16_t) * M * N);
    if (st == FP4_OK) st = quantize(ctx, x, M, a_q, a_sf, &gs_x);
    if (st == FP4_OK) st = quantize(ctx, w, N, w_q, w_sf, &gs_w);

    /* D = A * W^T: A and W as stored, [M, K/2] and [N, K/2] bytes, K contiguous */
    if (st == FP4_OK) {
        fp4_gemm_desc g;
        fp4_gemm_desc_init(&g);
        g.m = M;
        g.n = N;
        g.k = K;
        g.a = a_q;
        g.a_sf = a_sf;
        g.a_sf_layout = FP4_SF_SWIZZLED_128x4;
        g.b = w_q;
        g.b_sf = w_sf;
        g.b_sf_layout = FP4_SF_SWIZZLED_128x4;
        g.d = d;
        g.d_dtype = FP4_DTYPE_BF16;
        g.alpha = 1.0f / (gs_x * gs_w); /* undo both encode global scales */
        st = fp4_gemm(ctx, &g);
    }
    if (st == FP4_OK) st = fp4_synchronize(ctx, NULL);
    if (st == FP4_OK) st = fp4_download(ctx, d_host, d, (int64_t)sizeof(uint16_t) * M * N);
    if (st != FP4_OK) fprintf(stderr, "error: %s\n", fp4_last_error(ctx));

    int ok = st == FP4_OK;
    if (ok) {
        /* compare with the product of the unquantized inputs */
        double diff2 = 0, ref2 = 0;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double ref = 0;
                for (int64_t k = 0; k < K; k++) ref += (double)x[i * K + k] * w[j * K + k];
                const double got = bf16_to_float(d_host[i * N + j]);
                diff2 += (got - ref) * (got - ref);
                ref2 += ref * ref;
            }
        const double rel2 = diff2 / ref2;
        ok = rel2 <= 0.04; /* NaN fails too */
        printf("fp4gemm %s on %s: D[%d x %d] = x[%d x %d] * w^T in NVFP4, D[0][0] = %.4f\n",
               fp4_version(), device < 0 ? "the CPU" : "a GPU", M, N, M, K,
               bf16_to_float(d_host[0]));
        printf("relative squared error to the unquantized product: %.4f (<= 0.04): %s\n", rel2,
               ok ? "OK" : "FAILED");
    }
    fp4_free(ctx, d);
    fp4_free(ctx, w_sf);
    fp4_free(ctx, w_q);
    fp4_free(ctx, a_sf);
    fp4_free(ctx, a_q);
    fp4_destroy(ctx);
    free(d_host);
    free(w);
    free(x);
    return ok ? 0 : 1;
}

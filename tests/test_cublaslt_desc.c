/*
 * test_cublaslt_desc.c - the cuBLASLt descriptors of the `cublaslt` backend (and of the bench's
 * cuBLASLt baselines), checked on any machine: no GPU, no cuBLASLt call, only cublasLt.h.
 *
 * The description (src/cuda/cublaslt/lt_plan.h: fp4_lt_describe, fp4_lt_swap_operands,
 * fp4_cublaslt_problem, fp4_cublaslt_layout_why_not) is checked against what cuBLASLt
 * documents (docs/backends.md lists the sources):
 *   - the values of the enums it uses, as cublasLt.h / library_types.h pin them;
 *   - an NVFP4 GEMM is A and B of CUDA_R_4F_E2M1 with CUBLASLT_MATMUL_MATRIX_SCALE_VEC16_UE4M3
 *     scale modes, CUBLAS_COMPUTE_32F with CUDA_R_32F scale type, "TN" (transa = T,
 *     transb = N), as NVIDIA's LtNvfp4Matmul sample sets them;
 *   - the operand swap computes our row-major D = A B^T under cuBLASLt's column-major
 *     definition of D = op(A) op(B) (checked by evaluating that definition on the layouts);
 *   - the VEC16 scale tensors: blocks of 16 along each operand's innermost dimension (K), in
 *     cuBLASLt's 128x4 tiled layout over (outer dimension, k-block) -- our swizzled layout of
 *     the operand with rows = the layout's outer dimension;
 *   - the layout rules the backend checks before asking cuBLASLt.
 */
#include "test_util.h"

#include <stdio.h>

#ifdef FP4_TEST_NO_CUBLASLT_H

int main(void) {
    tu_begin("test_cublaslt_desc", 0);
    tu_skip("cublasLt.h not found (no CUDA toolkit): the cuBLASLt descriptors can't be checked");
    return tu_finish();
}

#else

#include "cuda/cublaslt/lt_plan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if !FP4_LT_HAVE_NVFP4
int main(void) {
    tu_begin("test_cublaslt_desc", 0);
    tu_skip("cublasLt.h is cuBLAS %d, older than 12.8: no NVFP4 in it", (int)CUBLAS_VERSION);
    return tu_finish();
}
#else

/* The enum values cuBLASLt pins (cublasLt.h, library_types.h of CUDA 12.8+; nvmath-python's
 * bindings list the same numbers). */
static void test_enum_values(void) {
    tu_case(CUDA_R_4F_E2M1 == 33 && CUDA_R_8F_E4M3 == 28 && CUDA_R_16BF == 14 &&
                CUDA_R_16F == 2 && CUDA_R_32F == 0,
            "cudaDataType values: E2M1 33, E4M3 28, 16BF 14, 16F 2, 32F 0");
    tu_case(CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F == 0 &&
                CUBLASLT_MATMUL_MATRIX_SCALE_VEC16_UE4M3 == 1,
            "cublasLtMatmulMatrixScale_t: SCALAR_32F 0, VEC16_UE4M3 1");
    tu_case(CUBLASLT_POINTER_MODE_HOST == 0 && CUBLASLT_POINTER_MODE_DEVICE == 1,
            "cublasLtPointerMode_t: HOST 0, DEVICE 1");
    tu_case(CUBLASLT_MATMUL_DESC_A_SCALE_MODE == 31 && CUBLASLT_MATMUL_DESC_B_SCALE_MODE == 32 &&
                CUBLASLT_MATMUL_DESC_A_SCALE_POINTER == 17 &&
                CUBLASLT_MATMUL_DESC_B_SCALE_POINTER == 18,
            "matmul desc attributes: A/B_SCALE_MODE 31/32, A/B_SCALE_POINTER 17/18");
}

/* A valid NVFP4 desc (pointers are never dereferenced here: 16-byte aligned fakes). */
static void nvfp4_desc(fp4_gemm_desc *d) {
    fp4_gemm_desc_init(d);
    d->m = 3;
    d->n = 256;
    d->k = 4096;
    d->a_dtype = FP4_DTYPE_E2M1;
    d->a = (const void *)(uintptr_t)0x10000;
    d->a_sf = (const void *)(uintptr_t)0x20000;
    d->a_sf_layout = FP4_SF_SWIZZLED_128x4;
    d->b = (const void *)(uintptr_t)0x30000;
    d->b_sf = (const void *)(uintptr_t)0x40000;
    d->b_sf_layout = FP4_SF_SWIZZLED_128x4;
    d->d_dtype = FP4_DTYPE_BF16;
    d->d = (void *)(uintptr_t)0x50000;
    d->ldd = 264;
}

static int matrix_is(const fp4_lt_matrix *x, cudaDataType_t type, uint64_t rows, uint64_t cols,
                     int64_t ld) {
    return x->type == type && x->rows == rows && x->cols == cols && x->ld == ld;
}

static void test_nvfp4_description(void) {
    fp4_gemm_desc g;
    nvfp4_desc(&g);
    const fp4_lt_problem p = fp4_cublaslt_problem(&g);
    tu_case(p.m == 3 && p.n == 256 && p.k == 4096 && p.in_type == CUDA_R_4F_E2M1 &&
                p.block_scaled == 1 && p.d_dtype == FP4_DTYPE_BF16 && p.ldd == 264 &&
                p.alpha_on_device == 0,
            "cublaslt problem of an NVFP4 desc: E2M1, block-scaled, shape, ldd, alpha by value");
    fp4_lt_desc d;
    memset(&d, 0xA5, sizeof d);
    const char *why = fp4_lt_describe(&p, &d);
    tu_case(why == NULL, "describe NVFP4 m=3 n=256 k=4096 bf16 ldd=264: described (%s)",
            why ? why : "ok");
    if (why) return;
    tu_case(d.compute_type == CUBLAS_COMPUTE_32F && d.scale_type == CUDA_R_32F,
            "NVFP4: compute CUBLAS_COMPUTE_32F, scale type (alpha, beta) CUDA_R_32F");
    tu_case(d.transa == CUBLAS_OP_T && d.transb == CUBLAS_OP_N,
            "NVFP4: TN (transa = T, transb = N), the layout FP4 requires");
    tu_case(d.set_scale_modes == 1 && d.a_scale_mode == CUBLASLT_MATMUL_MATRIX_SCALE_VEC16_UE4M3 &&
                d.b_scale_mode == CUBLASLT_MATMUL_MATRIX_SCALE_VEC16_UE4M3,
            "NVFP4: A and B scale modes VEC16_UE4M3 (one UE4M3 per 16 elements)");
    tu_case(d.pointer_mode == CUBLASLT_POINTER_MODE_HOST, "alpha by value: pointer mode HOST");
    tu_case(matrix_is(&d.a, CUDA_R_4F_E2M1, 4096, 256, 4096),
            "cuBLASLt's A = our B [n=256, k] row-major: E2M1, %llu x %llu, ld %lld (want 4096 x 256, "
            "ld 4096)",
            (unsigned long long)d.a.rows, (unsigned long long)d.a.cols, (long long)d.a.ld);
    tu_case(matrix_is(&d.b, CUDA_R_4F_E2M1, 4096, 3, 4096),
            "cuBLASLt's B = our A [m=3, k] row-major: E2M1, %llu x %llu, ld %lld (want 4096 x 3, "
            "ld 4096)",
            (unsigned long long)d.b.rows, (unsigned long long)d.b.cols, (long long)d.b.ld);
    tu_case(matrix_is(&d.d, CUDA_R_16BF, 256, 3, 264) && matrix_is(&d.c, CUDA_R_16BF, 256, 3, 264),
            "cuBLASLt's C = D = our D [m=3, ldd=264] row-major: 16BF, 256 x 3, ld 264");

    g.alpha_ptr = (const float *)(uintptr_t)0x60000;
    const fp4_lt_problem pd = fp4_cublaslt_problem(&g);
    tu_case(pd.alpha_on_device == 1 && fp4_lt_describe(&pd, &d) == NULL &&
                d.pointer_mode == CUBLASLT_POINTER_MODE_DEVICE,
            "alpha by device pointer: pointer mode DEVICE (alpha and beta device pointers)");

    static const struct {
        fp4_dtype dt;
        cudaDataType_t lt;
    } outs[] = {{FP4_DTYPE_F32, CUDA_R_32F}, {FP4_DTYPE_F16, CUDA_R_16F}, {FP4_DTYPE_BF16, CUDA_R_16BF}};
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
        g.d_dtype = outs[i].dt;
        const fp4_lt_problem po = fp4_cublaslt_problem(&g);
        const int ok = fp4_lt_describe(&po, &d) == NULL && d.d.type == outs[i].lt &&
                       d.c.type == outs[i].lt;
        tu_case(ok, "output %s: C and D of cuBLASLt type %d", fp4_dtype_name(outs[i].dt),
                (int)outs[i].lt);
    }
}

/* Evaluates cuBLASLt's definition D = alpha op(A) op(B) (column-major, element (i, j) of a
 * matrix X with leading dimension ld at X[i + j * ld]; op(X) = X or X^T) on float arrays
 * that stand for the operands, as the description and the operand swap lay them out, and
 * compares with our row-major D[m][n] = sum_k A[m][k] B[n][k] at D[m * ldd + n]. */
static void test_operand_swap(void) {
    const int64_t m = 5, n = 7, k = 32, ldd = 9;
    float A[5 * 32], B[7 * 32], D[5 * 9], ref[5 * 9];
    tu_rng rng;
    tu_rng_seed(&rng, 11);
    for (int64_t i = 0; i < m * k; i++) A[i] = (float)tu_rng_range(&rng, -6, 6);
    for (int64_t i = 0; i < n * k; i++) B[i] = (float)tu_rng_range(&rng, -6, 6);
    for (int64_t i = 0; i < m * ldd; i++) D[i] = ref[i] = NAN;
    for (int64_t r = 0; r < m; r++)
        for (int64_t c = 0; c < n; c++) {
            double s = 0.0;
            for (int64_t l = 0; l < k; l++) s += (double)A[r * k + l] * (double)B[c * k + l];
            ref[r * ldd + c] = (float)s;
        }
    const fp4_lt_problem p = {m, n, k, CUDA_R_4F_E2M1, 1, FP4_DTYPE_F32, ldd, 0};
    fp4_lt_desc d;
    if (!tu_case(fp4_lt_describe(&p, &d) == NULL, "describe m=5 n=7 k=32 ldd=9")) return;
    const uint8_t a_sf[1] = {1}, b_sf[1] = {2};
    const fp4_lt_operands o = fp4_lt_swap_operands(A, a_sf, B, b_sf, D);
    tu_case(o.a == B && o.a_scale == b_sf && o.b == A && o.b_scale == a_sf && o.c == D && o.d == D,
            "operand swap: cuBLASLt's A = our B (with b_sf), B = our A (with a_sf), C = D = d");
    const float *la = o.a, *lb = o.b;
    float *ld_ = o.d;
    // D (rows x cols = d.d) = op(A) (d.d.rows x k) op(B) (k x d.d.cols)
    const uint64_t rows = d.d.rows, cols = d.d.cols;
    const uint64_t inner = d.transa == CUBLAS_OP_T ? d.a.rows : d.a.cols;
    int shapes_ok = inner == (uint64_t)k &&
                    (d.transa == CUBLAS_OP_T ? d.a.cols : d.a.rows) == rows &&
                    (d.transb == CUBLAS_OP_N ? d.b.rows : d.b.cols) == inner &&
                    (d.transb == CUBLAS_OP_N ? d.b.cols : d.b.rows) == cols;
    tu_case(shapes_ok, "op(A) is %llu x %llu, op(B) %llu x %llu: the product is defined",
            (unsigned long long)rows, (unsigned long long)inner, (unsigned long long)inner,
            (unsigned long long)cols);
    if (!shapes_ok) return;
    for (uint64_t i = 0; i < rows; i++)
        for (uint64_t j = 0; j < cols; j++) {
            double s = 0.0;
            for (uint64_t l = 0; l < inner; l++) {
                const float x = d.transa == CUBLAS_OP_T ? la[l + i * (uint64_t)d.a.ld]
                                                        : la[i + l * (uint64_t)d.a.ld];
                const float y = d.transb == CUBLAS_OP_N ? lb[l + j * (uint64_t)d.b.ld]
                                                        : lb[j + l * (uint64_t)d.b.ld];
                s += (double)x * (double)y;
            }
            ld_[i + j * (uint64_t)d.d.ld] = (float)s;
        }
    int same = 1, pad_kept = 1;
    for (int64_t r = 0; r < m; r++)
        for (int64_t c = 0; c < ldd; c++) {
            if (c < n) same &= D[r * ldd + c] == ref[r * ldd + c];
            else pad_kept &= isnan(D[r * ldd + c]);
        }
    tu_case(same && pad_kept,
            "cuBLASLt's column-major D = op(A) op(B) on the described layouts is our row-major "
            "D = A B^T with ldd (padding untouched)");
}

/* cuBLASLt's VEC16_UE4M3 scale tensor of an operand whose layout is `inner` (K) x `outer`
 * elements: one scale per 16 along the innermost dimension, in tiles of 128 outer x 4 blocks
 * of 512 bytes, the tiles along the inner dimension first; inside a tile, outer index i and
 * block j at (i % 32) * 16 + (i % 128 / 32) * 4 + j % 4. Sizes padded to 128 x 4. Written
 * here from the cuBLAS documentation's description, independently of src/format.h. */
static int64_t lt_scale_offset(int64_t outer_i, int64_t block_j, int64_t inner) {
    const int64_t blocks = inner / 16, tiles_inner = (blocks + 3) / 4;
    return ((outer_i / 128) * tiles_inner + block_j / 4) * 512 + (outer_i % 32) * 16 +
           ((outer_i % 128) / 32) * 4 + block_j % 4;
}

static void test_scale_layout(void) {
    const int64_t shapes[][2] = {{1, 32}, {3, 4096}, {130, 96}, {256, 64}, {300, 1024}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t rows = shapes[s][0], k = shapes[s][1];
        // our B [rows, k] is cuBLASLt's A; our A [rows, k] its B: outer = cols, inner = rows
        const fp4_lt_problem p = {rows, rows, k, CUDA_R_4F_E2M1, 1, FP4_DTYPE_BF16, rows, 0};
        fp4_lt_desc d;
        if (fp4_lt_describe(&p, &d)) continue;
        int ok = d.a.rows == (uint64_t)k && d.a.cols == (uint64_t)rows && d.b.rows == (uint64_t)k &&
                 d.b.cols == (uint64_t)rows;
        const int64_t padded = ((rows + 127) / 128 * 128) * ((k / 16 + 3) / 4 * 4);
        ok &= fp4_sf_bytes(rows, k, FP4_SF_SWIZZLED_128x4) == padded;
        for (int64_t i = 0; i < rows && ok; i++)
            for (int64_t j = 0; j < k / 16 && ok; j++)
                ok &= fp4_sf_offset(i, j, k, FP4_SF_SWIZZLED_128x4) ==
                      lt_scale_offset(i, j, (int64_t)d.a.rows);
        tu_case(ok, "VEC16 scales of a %lld x %lld operand: blocks along K (the layout's inner "
                    "dimension), cuBLASLt's 128x4 tiles = fp4gemm's swizzled layout, %lld bytes",
                (long long)rows, (long long)k, (long long)padded);
    }
}

/* The bench's baselines: the same TN layouts, no block scales. */
static void test_baseline_descriptions(void) {
    fp4_lt_desc d;
    const fp4_lt_problem bf = {64, 128, 256, CUDA_R_16BF, 0, FP4_DTYPE_BF16, 128, 0};
    tu_case(fp4_lt_describe(&bf, &d) == NULL && d.set_scale_modes == 0 &&
                matrix_is(&d.a, CUDA_R_16BF, 256, 128, 256) &&
                matrix_is(&d.b, CUDA_R_16BF, 256, 64, 256) &&
                matrix_is(&d.d, CUDA_R_16BF, 128, 64, 128) && d.transa == CUBLAS_OP_T &&
                d.transb == CUBLAS_OP_N,
            "BF16 baseline: TN, 16BF layouts, no scale modes");
    const fp4_lt_problem f8 = {64, 128, 256, CUDA_R_8F_E4M3, 0, FP4_DTYPE_F16, 128, 0};
    tu_case(fp4_lt_describe(&f8, &d) == NULL && d.set_scale_modes == 0 &&
                d.a.type == CUDA_R_8F_E4M3 && d.b.type == CUDA_R_8F_E4M3 &&
                d.d.type == CUDA_R_16F,
            "FP8 baseline: E4M3 A and B, per-tensor scales (scale mode left at SCALAR_32F)");

    // what can't be described
    const fp4_lt_problem bad[] = {
        {64, 128, 256, CUDA_R_16BF, 1, FP4_DTYPE_BF16, 128, 0},   /* block scales on BF16 */
        {64, 128, 256, CUDA_R_4F_E2M1, 0, FP4_DTYPE_BF16, 128, 0}, /* E2M1 without scales */
        {64, 128, 256, CUDA_R_4F_E2M1, 1, FP4_DTYPE_BF16, 127, 0}, /* ldd < n */
        {64, 128, 256, CUDA_R_4F_E2M1, 1, FP4_DTYPE_E4M3, 128, 0}, /* output type */
        {0, 128, 256, CUDA_R_4F_E2M1, 1, FP4_DTYPE_BF16, 128, 0},  /* m = 0 */
        {64, 128, 256, CUDA_R_32F, 0, FP4_DTYPE_BF16, 128, 0},     /* input type */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *why = fp4_lt_describe(&bad[i], &d);
        tu_case(why != NULL && why[0] != 0, "describe refuses bad problem %zu: \"%s\"", i,
                why ? why : "(described)");
    }
}

static int contains(const char *s, const char *what) { return s && strstr(s, what) != NULL; }

static void test_layout_rules(void) {
    char buf[256];
    fp4_gemm_desc g;
    nvfp4_desc(&g);
    const char *why = fp4_cublaslt_layout_why_not(&g, buf, sizeof buf);
    tu_case(why == NULL, "layout rules: swizzled W4A4, k = 4096, aligned pointers -> can run (%s)",
            why ? why : "ok");
    nvfp4_desc(&g);
    g.a_dtype = FP4_DTYPE_BF16;
    why = fp4_cublaslt_layout_why_not(&g, buf, sizeof buf);
    tu_case(contains(why, "W4A4"), "BF16 A (W4A16): refused, \"%s\"", why ? why : "");
    nvfp4_desc(&g);
    g.a_sf_layout = FP4_SF_LINEAR;
    why = fp4_cublaslt_layout_why_not(&g, buf, sizeof buf);
    tu_case(contains(why, "swizzled") && contains(why, "a_sf is"), "linear a_sf: refused, \"%s\"",
            why ? why : "");
    nvfp4_desc(&g);
    g.b_sf_layout = FP4_SF_LINEAR;
    why = fp4_cublaslt_layout_why_not(&g, buf, sizeof buf);
    tu_case(contains(why, "b_sf is"), "linear b_sf: refused, \"%s\"", why ? why : "");
    nvfp4_desc(&g);
    g.k = 48;
    why = fp4_cublaslt_layout_why_not(&g, buf, sizeof buf);
    tu_case(contains(why, "multiple of 32"), "k = 48: refused, \"%s\"", why ? why : "");
    static const char *const names[] = {"a", "b", "a_sf", "b_sf", "d"};
    for (int i = 0; i < 5; i++) {
        nvfp4_desc(&g);
        const void **p = i == 0 ? &g.a : i == 1 ? &g.b : i == 2 ? &g.a_sf : i == 3 ? &g.b_sf : NULL;
        if (p) *p = (const uint8_t *)*p + 8;
        else g.d = (uint8_t *)g.d + 8;
        why = fp4_cublaslt_layout_why_not(&g, buf, sizeof buf);
        char want[16];
        snprintf(want, sizeof want, "%s = ", names[i]);
        tu_case(contains(why, want) && contains(why, "16-byte"), "%s 8 bytes off 16: refused, \"%s\"",
                names[i], why ? why : "");
    }
}

int main(void) {
    tu_begin("test_cublaslt_desc", 0);
    printf("cublasLt.h: cuBLAS %d.%d.%d\n", CUBLAS_VER_MAJOR, CUBLAS_VER_MINOR, CUBLAS_VER_PATCH);
    test_enum_values();
    test_nvfp4_description();
    test_operand_swap();
    test_scale_layout();
    test_baseline_descriptions();
    test_layout_rules();
    return tu_finish();
}

#endif /* FP4_LT_HAVE_NVFP4 */
#endif /* FP4_TEST_NO_CUBLASLT_H */

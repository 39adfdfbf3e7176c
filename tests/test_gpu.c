/*
 * test_gpu.c - the GPU test driver: the GPU quantizer, dequantizer, global scale and scale
 * layout conversion against the CPU ones byte for byte, and every GPU tactic that can run here
 * (each config of each backend, as "cuda_simt/gemv_mr8", plus `auto`) against the CPU
 * reference GEMM. Skips (exit code 77) when there is no CUDA device.
 *
 * GPU outputs are poisoned before each run (0xA5 for quantizer outputs, 0xFF = NaN in every
 * dtype for D), so that anything a kernel fails to write, or writes where it must not (the
 * padding columns between n and ldd), shows up.
 */
#include "format.h"
#include "test_util.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static fp4_ctx *g_gpu; /* device 0 */
static fp4_ctx *g_cpu; /* device -1 */
static tu_rng g_rng;

/* Checks a library call; on failure prints it (with the context's last error) and jumps to
 * the enclosing function's `fail` label. */
#define TRY(ctx, call)                                         \
    do {                                                       \
        if (!tu_ok((call), (ctx), #call)) goto fail;           \
    } while (0)

static void *xmalloc(int64_t bytes) {
    void *p = malloc((size_t)(bytes > 0 ? bytes : 1));
    if (!p) {
        fprintf(stderr, "test_gpu: out of host memory (%lld bytes)\n", (long long)bytes);
        exit(1);
    }
    return p;
}

/* F32/F16/BF16 element i of a host array, as float. */
static float host_load(const void *base, fp4_dtype dt, int64_t i) {
    if (dt == FP4_DTYPE_F32) return ((const float *)base)[i];
    const uint16_t h = ((const uint16_t *)base)[i];
    return dt == FP4_DTYPE_F16 ? fp4_f16_to_f32(h) : fp4_bf16_to_f32(h);
}

static void host_store(void *base, fp4_dtype dt, int64_t i, float x) {
    if (dt == FP4_DTYPE_F32)
        ((float *)base)[i] = x;
    else
        ((uint16_t *)base)[i] = dt == FP4_DTYPE_F16 ? fp4_f32_to_f16(x) : fp4_f32_to_bf16(x);
}

/* Index of the first differing byte, or -1. */
static int64_t first_diff(const uint8_t *a, const uint8_t *b, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (a[i] != b[i]) return i;
    return -1;
}

/* FP4GEMM_TEST_QUICK=1 (tu_quick): only the small shapes (every kernel and edge case still
 * runs), for compute-sanitizer's racecheck, which is orders of magnitude slower. */

/* FP4GEMM_TEST_TACTICS=cuda_wgmma,auto: only the GEMM tactics whose names contain one of the
 * comma-separated words (for a sanitizer run over one backend); unset: all. */
static int tactic_selected(const char *name) {
    const char *list = getenv("FP4GEMM_TEST_TACTICS");
    if (!list || !*list) return 1;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *w = strtok(buf, ","); w; w = strtok(NULL, ","))
        if (*w && strstr(name, w)) return 1;
    return 0;
}

/* ======================================================================================
 * (a) quantizer, dequantizer, global scale: GPU == CPU bit for bit
 * ==================================================================================== */

typedef struct quant_shape {
    int64_t rows, k;
    int64_t ld_pad; /* ld_in = ld_out = k + ld_pad */
    int misalign;   /* input, output and q pointers one element / byte off: scalar paths */
    int specials;   /* all-zero, tiny, huge and NaN blocks */
    int with_inf;   /* and one Inf */
} quant_shape;

static const quant_shape k_quant_shapes[] = {
    {1, 16, 0, 0, 0, 0},
    {129, 48, 0, 0, 1, 0},   /* 3 k-blocks: swizzled pads to 4, rows to 256 */
    {37, 4096, 0, 0, 1, 0},
    {130, 80, 24, 0, 1, 1},  /* non-contiguous rows, 16-byte aligned: vector loads */
    {5, 64, 3, 0, 1, 0},     /* row stride not a multiple of 16 bytes: scalar loads */
    {200, 32, 0, 1, 0, 0},   /* misaligned pointers: scalar loads and stores */
    /* more items than the fast kernels' one wave of threads (132 SMs x 1024), so that each
     * thread walks several rows: an odd number of k-blocks (513) in strided rows, and 16-byte
     * packed stores with one Inf */
    {600, 8208, 8, 0, 1, 0},
    {2100, 4096, 0, 0, 0, 1},
};

/* Host input [rows, ld] as float: activations, the gap columns k..ld filled with a large
 * value that changes amax and the scales if a kernel reads them, and the special blocks. */
static void make_quant_input(const quant_shape *s, float *x, int64_t ld) {
    const int64_t rows = s->rows, k = s->k;
    for (int64_t r = 0; r < rows; r++) {
        tu_fill_activations(&g_rng, x + r * ld, k, 1.0f);
        for (int64_t i = k; i < ld; i++) x[r * ld + i] = 30000.0f;
    }
    if (s->specials) {
        float *zero = x;                                         /* row 0, block 0 */
        float *tiny = x + (rows > 1 ? 1 : 0) * ld + (k - 16);    /* row 1, last block */
        float *huge = x + (rows - 1) * ld + (k >= 32 ? 16 : 0);  /* last row, block 1 */
        for (int i = 0; i < 16; i++) {
            zero[i] = 0.0f;
            tiny[i] = ldexpf(1.0f + (float)i / 16.0f, -10) * ((i & 1) ? -1.0f : 1.0f);
            huge[i] = 2688.0f * (0.5f + (float)i / 24.0f) * ((i & 2) ? -1.0f : 1.0f);
        }
        /* the tiny block's scale underflows to 0 (flashinfer: out_scale FLT_MAX, nonzero
         * elements +-6): with zeros, -0 and subnormals (f32/bf16; 0 in f16), whose product
         * with FLT_MAX is below 6 and would be 0 if the GPU flushed subnormals */
        tiny[3] = 0.0f;
        tiny[6] = -0.0f;
        tiny[9] = 1e-39f;
        tiny[12] = -3e-39f;
        x[(rows / 2) * ld + k / 2 + 1] = NAN;
    }
    if (s->with_inf) x[(rows - 1) * ld + k - 1] = -INFINITY;
}

static int quant_input_nonfinite(const quant_shape *s) { return s->specials || s->with_inf; }

/* Are bytes a[i], b[i] of a dtype array equal, or both NaN (the GPU's NaN is canonical, the
 * CPU's keeps the payload of the NaN it came from)? Compares element by element. */
static int64_t first_diff_nan_equal(const uint8_t *a, const uint8_t *b, int64_t n,
                                    fp4_dtype dt) {
    const int64_t esize = fp4_dtype_size(dt);
    for (int64_t i = 0; i < n; i += esize) {
        if (memcmp(a + i, b + i, (size_t)esize) == 0) continue;
        if (isnan(host_load(a + i, dt, 0)) && isnan(host_load(b + i, dt, 0))) continue;
        return i;
    }
    return -1;
}

/* The global scale of one input: GPU == CPU. Writes the CPU's into *gs_cpu and leaves the
 * GPU's in d_gs (device memory). */
static int check_global_scale(const char *label, int64_t rows, int64_t k, fp4_dtype dt,
                              const void *host_in, const void *dev_in, int64_t ld, float *d_gs,
                              float *gs_cpu) {
    float gs_gpu = 0.0f;
    uint32_t bg, bc;
    TRY(g_cpu, fp4_global_scale(g_cpu, rows, k, dt, host_in, ld, gs_cpu, NULL));
    TRY(g_gpu, fp4_memset(g_gpu, d_gs, 0xA5, sizeof(float)));
    TRY(g_gpu, fp4_global_scale(g_gpu, rows, k, dt, dev_in, ld, d_gs, NULL));
    TRY(g_gpu, fp4_synchronize(g_gpu, NULL));
    TRY(g_gpu, fp4_download(g_gpu, &gs_gpu, d_gs, sizeof(float)));
    bg = fp4_f32_bits(gs_gpu);
    bc = fp4_f32_bits(*gs_cpu);
    return tu_case(bg == bc, "global_scale %s gpu=%.9g (0x%08x) cpu=%.9g (0x%08x)", label,
                   (double)gs_gpu, bg, (double)*gs_cpu, bc);
fail:
    return tu_case(0, "global_scale %s", label);
}

/* ModelOpt's ws2 of a group of tensors: GPU == CPU. Writes the CPU's into *ws2_cpu and leaves
 * the GPU's in d_ws2 (device memory). */
static int check_modelopt_ws2(const char *label, const fp4_tensor_ref *host_t,
                              const fp4_tensor_ref *dev_t, int count, float *d_ws2,
                              float *ws2_cpu) {
    float ws2_gpu = 0.0f;
    uint32_t bg, bc;
    TRY(g_cpu, fp4_modelopt_global_scale(g_cpu, host_t, count, ws2_cpu, NULL));
    TRY(g_gpu, fp4_memset(g_gpu, d_ws2, 0xA5, sizeof(float)));
    TRY(g_gpu, fp4_modelopt_global_scale(g_gpu, dev_t, count, d_ws2, NULL));
    TRY(g_gpu, fp4_synchronize(g_gpu, NULL));
    TRY(g_gpu, fp4_download(g_gpu, &ws2_gpu, d_ws2, sizeof(float)));
    bg = fp4_f32_bits(ws2_gpu);
    bc = fp4_f32_bits(*ws2_cpu);
    return tu_case(bg == bc, "modelopt_global_scale %s (%d tensors) gpu=%.9g (0x%08x) cpu=%.9g (0x%08x)",
                   label, count, (double)ws2_gpu, bg, (double)*ws2_cpu, bc);
fail:
    return tu_case(0, "modelopt_global_scale %s", label);
}

/* Quantizes one input on both sides with one layout and gs mode, compares q, sf and the
 * non-finite flag, then dequantizes (both sides) and compares the outputs. */
static void check_quantize(const quant_shape *s, fp4_dtype dt, fp4_sf_layout layout,
                           fp4_quant_recipe recipe, int gs_mode, const char *label,
                           const void *host_in, const void *dev_in, float *d_gs, float gs_cpu) {
    const int64_t rows = s->rows, k = s->k, ld = k + s->ld_pad, esize = fp4_dtype_size(dt);
    const int64_t q_bytes = fp4_packed_bytes(rows, k);
    const int64_t sf_bytes = fp4_sf_bytes(rows, k, layout);
    const int64_t out_bytes = rows * ld * esize;
    const int mis = s->misalign;
    const int modelopt = recipe == FP4_QUANT_RECIPE_MODELOPT;
    /* gs_mode 0: the global scale in device memory (gs_cpu on the CPU side); 1 and 2: by
     * value, 1 and an extreme one (flashinfer: a huge encode gs; modelopt: a tiny ws2) */
    static const char *gs_names[2][3] = {{"device", "1", "3e38"}, {"device", "1", "1e-30"}};
    const char *gs_name = gs_names[modelopt][gs_mode];
    const float gs_value = gs_mode == 1 ? 1.0f : modelopt ? 1e-30f : 3.0e38f;

    uint8_t *q_ref = xmalloc(q_bytes), *sf_ref = xmalloc(sf_bytes);
    uint8_t *q_gpu = xmalloc(q_bytes), *sf_gpu = xmalloc(sf_bytes);
    uint8_t *out_ref = xmalloc(out_bytes), *out_gpu = xmalloc(out_bytes);
    uint8_t *d_q = NULL, *d_sf = NULL, *d_out = NULL;
    uint32_t *d_flag = NULL;
    uint32_t flag_ref = 0, flag_gpu = 0;
    int ok_q = 0;

    TRY(g_gpu, fp4_malloc(g_gpu, (void **)&d_q, q_bytes + mis));
    TRY(g_gpu, fp4_malloc(g_gpu, (void **)&d_sf, sf_bytes));
    TRY(g_gpu, fp4_malloc(g_gpu, (void **)&d_out, out_bytes + mis * esize));
    TRY(g_gpu, fp4_malloc(g_gpu, (void **)&d_flag, sizeof(uint32_t)));

    // quantize: CPU reference, then the GPU into poisoned buffers
    fp4_quant_desc qd;
    fp4_quant_desc_init(&qd);
    qd.rows = rows;
    qd.k = k;
    qd.in_dtype = dt;
    qd.ld_in = ld;
    qd.sf_layout = layout;
    qd.in = host_in;
    qd.out_q = q_ref;
    qd.out_sf = sf_ref;
    qd.nonfinite_flag = &flag_ref;
    qd.global_scale = gs_value;
    qd.global_scale_ptr = gs_mode == 0 ? &gs_cpu : NULL; /* gs may be 0 or FLT_MAX here */
    qd.recipe = recipe;
    memset(q_ref, 0xA5, (size_t)q_bytes);
    memset(sf_ref, 0xA5, (size_t)sf_bytes);
    TRY(g_cpu, fp4_quantize(g_cpu, &qd));

    TRY(g_gpu, fp4_memset(g_gpu, d_q, 0xA5, q_bytes + mis));
    TRY(g_gpu, fp4_memset(g_gpu, d_sf, 0xA5, sf_bytes));
    TRY(g_gpu, fp4_memset(g_gpu, d_flag, 0, sizeof(uint32_t)));
    qd.in = dev_in;
    qd.out_q = d_q + mis;
    qd.out_sf = d_sf;
    qd.nonfinite_flag = d_flag;
    qd.global_scale_ptr = gs_mode == 0 ? d_gs : NULL;
    qd.stream = NULL;
    TRY(g_gpu, fp4_quantize(g_gpu, &qd));
    TRY(g_gpu, fp4_synchronize(g_gpu, NULL));
    TRY(g_gpu, fp4_download(g_gpu, q_gpu, d_q + mis, q_bytes));
    TRY(g_gpu, fp4_download(g_gpu, sf_gpu, d_sf, sf_bytes));
    TRY(g_gpu, fp4_download(g_gpu, &flag_gpu, d_flag, sizeof(uint32_t)));

    const int64_t dq = first_diff(q_gpu, q_ref, q_bytes);
    const int64_t dsf = first_diff(sf_gpu, sf_ref, sf_bytes);
    const uint32_t flag_expected = (uint32_t)quant_input_nonfinite(s);
    if (dq >= 0)
        printf("  q byte %lld (row %lld): gpu 0x%02x cpu 0x%02x\n", (long long)dq,
               (long long)(dq / (k / 2)), q_gpu[dq], q_ref[dq]);
    if (dsf >= 0)
        printf("  sf byte %lld of %lld: gpu 0x%02x cpu 0x%02x\n", (long long)dsf,
               (long long)sf_bytes, sf_gpu[dsf], sf_ref[dsf]);
    if (flag_gpu != flag_ref || flag_ref != flag_expected)
        printf("  nonfinite flag: gpu %u cpu %u expected %u\n", flag_gpu, flag_ref,
               flag_expected);
    ok_q = dq < 0 && dsf < 0 && flag_gpu == flag_ref && flag_ref == flag_expected;
    tu_case(ok_q, "quantize %s %s sf=%s gs=%s flag=%u", fp4_quant_recipe_name(recipe), label,
            fp4_sf_layout_name(layout), gs_name, flag_gpu);
    if (modelopt) goto done; /* dequantization does not depend on the recipe */

    // dequantize the CPU's bytes on both sides (same stride, gap columns left poisoned)
    fp4_dequant_desc dd;
    fp4_dequant_desc_init(&dd);
    dd.rows = rows;
    dd.k = k;
    dd.sf_layout = layout;
    dd.out_dtype = dt;
    dd.ld_out = ld;
    dd.q = q_ref;
    dd.sf = sf_ref;
    dd.out = out_ref;
    dd.global_scale = gs_value;
    dd.global_scale_ptr = gs_mode == 0 ? &gs_cpu : NULL;
    memset(out_ref, 0xA5, (size_t)out_bytes);
    TRY(g_cpu, fp4_dequantize(g_cpu, &dd));

    TRY(g_gpu, fp4_upload(g_gpu, d_q + mis, q_ref, q_bytes));
    TRY(g_gpu, fp4_upload(g_gpu, d_sf, sf_ref, sf_bytes));
    TRY(g_gpu, fp4_memset(g_gpu, d_out, 0xA5, out_bytes + mis * esize));
    dd.q = d_q + mis;
    dd.sf = d_sf;
    dd.out = d_out + mis * esize;
    dd.global_scale_ptr = gs_mode == 0 ? d_gs : NULL;
    TRY(g_gpu, fp4_dequantize(g_gpu, &dd));
    TRY(g_gpu, fp4_synchronize(g_gpu, NULL));
    TRY(g_gpu, fp4_download(g_gpu, out_gpu, d_out + mis * esize, out_bytes));
    {
        const int64_t dout = first_diff_nan_equal(out_gpu, out_ref, out_bytes, dt);
        if (dout >= 0)
            printf("  out element %lld: gpu %.9g cpu %.9g\n", (long long)(dout / esize),
                   (double)host_load(out_gpu + dout, dt, 0),
                   (double)host_load(out_ref + dout, dt, 0));
        tu_case(dout < 0, "dequantize %s sf=%s gs=%s", label, fp4_sf_layout_name(layout),
                gs_name);
    }
    goto done;
fail:
    tu_case(0, "quantize/dequantize %s %s sf=%s gs=%s", fp4_quant_recipe_name(recipe), label,
            fp4_sf_layout_name(layout), gs_name);
done:
    fp4_free(g_gpu, d_q);
    fp4_free(g_gpu, d_sf);
    fp4_free(g_gpu, d_out);
    fp4_free(g_gpu, d_flag);
    free(q_ref);
    free(sf_ref);
    free(q_gpu);
    free(sf_gpu);
    free(out_ref);
    free(out_gpu);
}

static void test_quantizer(void) {
    static const fp4_dtype dtypes[3] = {FP4_DTYPE_F32, FP4_DTYPE_F16, FP4_DTYPE_BF16};
    int counter = 0;
    for (size_t si = 0; si < sizeof k_quant_shapes / sizeof k_quant_shapes[0]; si++) {
        const quant_shape *s = &k_quant_shapes[si];
        if (tu_quick() && s->rows * s->k > (1 << 16)) {
            tu_skip("quantize rows=%lld k=%lld: FP4GEMM_TEST_QUICK is set (for slow checkers)",
                    (long long)s->rows, (long long)s->k);
            continue;
        }
        const int64_t ld = s->k + s->ld_pad, elems = s->rows * ld;
        float *x = xmalloc(elems * 4);
        make_quant_input(s, x, ld);
        for (int di = 0; di < 3; di++) {
            const fp4_dtype dt = dtypes[di];
            const int64_t esize = fp4_dtype_size(dt), mis = s->misalign;
            uint8_t *host_in = xmalloc(elems * esize);
            uint8_t *d_in = NULL;
            float *d_gs = NULL, *d_ws2 = NULL;
            float gs_cpu = 0.0f, ws2_cpu = 0.0f;
            char label[160];
            snprintf(label, sizeof label, "%s rows=%lld k=%lld ld=%lld%s", fp4_dtype_name(dt),
                     (long long)s->rows, (long long)s->k, (long long)ld,
                     mis ? " misaligned" : "");
            for (int64_t i = 0; i < elems; i++) host_store(host_in, dt, i, x[i]);
            TRY(g_gpu, fp4_malloc(g_gpu, (void **)&d_in, (elems + mis) * esize));
            TRY(g_gpu, fp4_malloc(g_gpu, (void **)&d_gs, sizeof(float)));
            TRY(g_gpu, fp4_malloc(g_gpu, (void **)&d_ws2, sizeof(float)));
            TRY(g_gpu, fp4_upload(g_gpu, d_in + mis * esize, host_in, elems * esize));

            check_global_scale(label, s->rows, s->k, dt, host_in, d_in + mis * esize, ld, d_gs,
                               &gs_cpu);
            {
                const fp4_tensor_ref host_t = {s->rows, s->k, dt, host_in, ld};
                const fp4_tensor_ref dev_t = {s->rows, s->k, dt, d_in + mis * esize, ld};
                check_modelopt_ws2(label, &host_t, &dev_t, 1, d_ws2, &ws2_cpu);
            }
            for (int li = 0; li < 2; li++, counter++) {
                check_quantize(s, dt, (fp4_sf_layout)li, FP4_QUANT_RECIPE_FLASHINFER, counter % 3,
                               label, host_in, d_in + mis * esize, d_gs, gs_cpu);
                check_quantize(s, dt, (fp4_sf_layout)li, FP4_QUANT_RECIPE_MODELOPT,
                               (counter + 1) % 3, label, host_in, d_in + mis * esize, d_ws2,
                               ws2_cpu);
            }
            goto next;
        fail:
            tu_case(0, "quantizer set-up %s", label);
        next:
            fp4_free(g_gpu, d_in);
            fp4_free(g_gpu, d_gs);
            fp4_free(g_gpu, d_ws2);
            free(host_in);
        }
        free(x);
    }
}

/* Global scale of degenerate tensors: all zero (1), a subnormal amax (2688/amax overflows:
 * FLT_MAX), an Inf (0), only NaN and zeros (1). */
static void test_global_scale_edges(void) {
    static const char *names[4] = {"all-zero", "subnormal-amax", "inf", "nan-and-zero"};
    const float expected[4] = {1.0f, FLT_MAX, 0.0f, 1.0f};
    const int64_t rows = 3, k = 32, n = rows * k;
    float x[96];
    float *d_in = NULL, *d_gs = NULL;
    TRY(g_gpu, fp4_malloc(g_gpu, (void **)&d_in, n * 4));
    TRY(g_gpu, fp4_malloc(g_gpu, (void **)&d_gs, 4));
    for (int c = 0; c < 4; c++) {
        float gs_cpu = -1.0f;
        for (int64_t i = 0; i < n; i++) x[i] = 0.0f;
        if (c == 1) x[40] = -1e-40f;
        if (c == 2) x[77] = INFINITY;
        if (c == 3) x[5] = NAN;
        TRY(g_gpu, fp4_upload(g_gpu, d_in, x, n * 4));
        char label[64];
        snprintf(label, sizeof label, "f32 %s", names[c]);
        if (check_global_scale(label, rows, k, FP4_DTYPE_F32, x, d_in, k, d_gs, &gs_cpu))
            tu_case(fp4_f32_bits(gs_cpu) == fp4_f32_bits(expected[c]),
                    "global_scale f32 %s == %.9g", names[c], (double)expected[c]);
    }
    goto done;
fail:
    tu_case(0, "global_scale edges set-up");
done:
    fp4_free(g_gpu, d_in);
    fp4_free(g_gpu, d_gs);
}

/* ModelOpt's ws2 over a group (a fused q/k/v: f32 with a padded stride, bf16, f16), and of
 * degenerate tensors (all zero: 0; an Inf: Inf; NaN and zeros: 0): GPU == CPU. */
static void test_modelopt_ws2_group(void) {
    const int64_t rows[3] = {33, 7, 130}, k[3] = {64, 4096, 48}, ld[3] = {80, 4096, 48};
    static const fp4_dtype dts[3] = {FP4_DTYPE_F32, FP4_DTYPE_BF16, FP4_DTYPE_F16};
    void *host[3] = {NULL, NULL, NULL}, *dev[3] = {NULL, NULL, NULL};
    float *d_ws2 = NULL, ws2_cpu = 0.0f;
    fp4_tensor_ref ht[3], dt[3];
    TRY(g_gpu, fp4_malloc(g_gpu, (void **)&d_ws2, sizeof(float)));
    for (int t = 0; t < 3; t++) {
        const int64_t n = rows[t] * ld[t], esize = fp4_dtype_size(dts[t]);
        float *x = xmalloc(n * 4);
        tu_fill_activations(&g_rng, x, n, 0.02f * (float)(t + 1));
        for (int64_t r = 0; r < rows[t]; r++)
            for (int64_t i = k[t]; i < ld[t]; i++) x[r * ld[t] + i] = 1000.0f; /* not to be read */
        host[t] = xmalloc(n * esize);
        for (int64_t i = 0; i < n; i++) host_store(host[t], dts[t], i, x[i]);
        free(x);
        TRY(g_gpu, fp4_malloc(g_gpu, &dev[t], n * esize));
        TRY(g_gpu, fp4_upload(g_gpu, dev[t], host[t], n * esize));
        ht[t] = (fp4_tensor_ref){rows[t], k[t], dts[t], host[t], ld[t]};
        dt[t] = (fp4_tensor_ref){rows[t], k[t], dts[t], dev[t], ld[t]};
    }
    for (int count = 1; count <= 3; count++)
        check_modelopt_ws2("fused group f32(ld 80)+bf16+f16", ht, dt, count, d_ws2, &ws2_cpu);
    {
        static const char *names[3] = {"all-zero", "inf", "nan-and-zero"};
        float x[96];
        for (int c = 0; c < 3; c++) {
            for (int i = 0; i < 96; i++) x[i] = (i & 1) ? -0.0f : 0.0f;
            if (c == 1) x[50] = -INFINITY;
            if (c == 2) x[7] = NAN;
            TRY(g_gpu, fp4_upload(g_gpu, dev[0], x, sizeof x));
            const fp4_tensor_ref h1 = {3, 32, FP4_DTYPE_F32, x, 0};
            const fp4_tensor_ref d1 = {3, 32, FP4_DTYPE_F32, dev[0], 0};
            char label[64];
            snprintf(label, sizeof label, "f32 %s", names[c]);
            check_modelopt_ws2(label, &h1, &d1, 1, d_ws2, &ws2_cpu);
        }
    }
    goto done;
fail:
    tu_case(0, "modelopt_global_scale group set-up");
done:
    for (int t = 0; t < 3; t++) {
        fp4_free(g_gpu, dev[t]);
        free(host[t]);
    }
    fp4_free(g_gpu, d_ws2);
}

/* For dtype dt: the first global scale gs = fp32(2688 / amax) (amax from 1 up) with at least
 * 8 values vmax of the dtype whose flashinfer scale byte, e4m3(vmax * (gs * fp32(1/6))),
 * differs from the old recipe's e4m3(vmax * fp32(gs / 6)): E4M3 rounding ties. Writes up to
 * cap of them; returns how many (0 if no gs has 8). */
static int find_tie_vmax(fp4_dtype dt, float *gs_out, float *vmax, int cap) {
    const float one_sixth = 1.0f / 6.0f;
    for (int a = 0; a < 4096; a++) {
        int n = 0;
        const float amax = dt == FP4_DTYPE_F16 ? fp4_f16_to_f32((uint16_t)(0x3C00 + a))
                                               : fp4_bf16_to_f32((uint16_t)(0x3F80 + a));
        const float gs = 2688.0f / amax;
        const float m_new = gs * one_sixth, m_old = gs / 6.0f;
        if (m_new == m_old) continue;
        if (dt == FP4_DTYPE_F32) {
            // a few floats around each E4M3 tie (between codes c and c+1) over m_new
            for (int c = 8; c < 0x7E && n < cap; c += 5) {
                const float tie = 0.5f * (fp4_e4m3_decode((uint8_t)c) + fp4_e4m3_decode((uint8_t)(c + 1)));
                float v = nextafterf(nextafterf(tie / m_new, 0.0f), 0.0f);
                for (int u = 0; u < 5 && n < cap; u++, v = nextafterf(v, INFINITY))
                    if (fp4_e4m3_encode(v * m_new) != fp4_e4m3_encode(v * m_old)) vmax[n++] = v;
            }
        } else {
            // every value of the dtype in the 4 binades below amax
            const uint16_t top = (uint16_t)((dt == FP4_DTYPE_F16 ? 0x3C00 : 0x3F80) + a);
            const int span = dt == FP4_DTYPE_F16 ? 4096 : 512;
            for (int j = 0; j < span && n < cap; j++) {
                const uint16_t h = (uint16_t)(top - j);
                const float v = dt == FP4_DTYPE_F16 ? fp4_f16_to_f32(h) : fp4_bf16_to_f32(h);
                if (fp4_e4m3_encode(v * m_new) != fp4_e4m3_encode(v * m_old)) vmax[n++] = v;
            }
        }
        if (n >= 8) {
            *gs_out = gs;
            return n;
        }
    }
    return 0;
}

/* Extreme global scales through a device pointer on 16-bit inputs (the fast kernels take the
 * signs of BF16/F16 elements straight from their bits, which holds for any gs: out_scale is in
 * [+0, FLT_MAX]): 0, NaN, -0, Inf and a negative one, both recipes (modelopt: ws2 0 and NaN
 * make its divisor 0 or NaN, the per-block fallback), both layouts, then dequantized with the
 * same gs (the per-element fallback of the fast dequantizer). */
static void test_quantizer_gs_specials(void) {
    static const float values[] = {0.0f, NAN, -0.0f, INFINITY, -2.5f};
    static const fp4_dtype dtypes[2] = {FP4_DTYPE_BF16, FP4_DTYPE_F16};
    const quant_shape s = {9, 256, 0, 0, 1, 1};
    const int64_t elems = s.rows * s.k;
    float *x = xmalloc(elems * 4);
    make_quant_input(&s, x, s.k);
    for (int di = 0; di < 2; di++) {
        const fp4_dtype dt = dtypes[di];
        const int64_t esize = fp4_dtype_size(dt);
        uint8_t *host_in = xmalloc(elems * esize), *d_in = NULL;
        float *d_gs = NULL;
        for (int64_t i = 0; i < elems; i++) host_store(host_in, dt, i, x[i]);
        TRY(g_gpu, fp4_malloc(g_gpu, (void **)&d_in, elems * esize));
        TRY(g_gpu, fp4_malloc(g_gpu, (void **)&d_gs, sizeof(float)));
        TRY(g_gpu, fp4_upload(g_gpu, d_in, host_in, elems * esize));
        for (size_t vi = 0; vi < sizeof values / sizeof values[0]; vi++) {
            char label[96];
            snprintf(label, sizeof label, "%s rows=9 k=256 gs=%g", fp4_dtype_name(dt),
                     (double)values[vi]);
            TRY(g_gpu, fp4_upload(g_gpu, d_gs, &values[vi], sizeof(float)));
            for (int li = 0; li < 2; li++)
                for (int ri = 0; ri < 2; ri++)
                    check_quantize(&s, dt, (fp4_sf_layout)li, (fp4_quant_recipe)ri, 0, label,
                                   host_in, d_in, d_gs, values[vi]);
        }
        goto next;
    fail:
        tu_case(0, "quantize gs specials %s set-up", fp4_dtype_name(dt));
    next:
        fp4_free(g_gpu, d_in);
        fp4_free(g_gpu, d_gs);
        free(host_in);
    }
    free(x);
}

/* E4M3 rounding ties on the GPU: for each dtype, one row per tie vmax (its first block holds
 * it, at a varying position and sign, with smaller elements, zeros and -0; three more blocks
 * are ordinary), quantized with both recipes, both layouts, gs by value and by pointer:
 * GPU == CPU. The CPU's flashinfer scale of every tie block must differ from the old
 * recipe's, so a GPU quantizer still on the old order fails here. */
static void test_quantizer_ties(void) {
    static const fp4_dtype dtypes[3] = {FP4_DTYPE_F32, FP4_DTYPE_F16, FP4_DTYPE_BF16};
    enum { CAP = 40 };
    for (int di = 0; di < 3; di++) {
        const fp4_dtype dt = dtypes[di];
        float gs = 0.0f, vmax[CAP];
        const int n = find_tie_vmax(dt, &gs, vmax, CAP);
        if (!tu_case(n >= 8, "quantize ties %s: the search finds a gs (%a) with %d tie values (>= 8)",
                     fp4_dtype_name(dt), (double)gs, n))
            continue;
        const quant_shape s = {n, 64, 0, 0, 0, 0};
        const int64_t elems = s.rows * s.k, esize = fp4_dtype_size(dt);
        float *x = xmalloc(elems * 4);
        uint8_t *host_in = xmalloc(elems * esize);
        uint8_t *d_in = NULL;
        float *d_gs = NULL;
        char label[96];
        snprintf(label, sizeof label, "%s ties rows=%d k=64 gs=%a", fp4_dtype_name(dt), n, (double)gs);
        for (int r = 0; r < n; r++) {
            float *row = x + r * s.k;
            for (int i = 0; i < 16; i++) {
                row[i] = (float)(2.0 * tu_rng_uniform(&g_rng) - 1.0) * vmax[r];
                if (i % 5 == 1) row[i] = 0.0f;
                if (i % 7 == 2) row[i] = -0.0f;
            }
            row[r % 16] = (r & 1) ? -vmax[r] : vmax[r];
            for (int i = 16; i < s.k; i++) row[i] = tu_rng_normal(&g_rng) * vmax[r];
        }
        for (int64_t i = 0; i < elems; i++) host_store(host_in, dt, i, x[i]);
        TRY(g_gpu, fp4_malloc(g_gpu, (void **)&d_in, elems * esize));
        TRY(g_gpu, fp4_malloc(g_gpu, (void **)&d_gs, sizeof(float)));
        TRY(g_gpu, fp4_upload(g_gpu, d_in, host_in, elems * esize));
        TRY(g_gpu, fp4_upload(g_gpu, d_gs, &gs, sizeof(float)));
        {
            // the CPU's flashinfer scales of the tie blocks differ from the old recipe's
            uint8_t q[40 * 32], sf[40 * 4];
            fp4_quant_desc qd;
            fp4_quant_desc_init(&qd);
            qd.rows = s.rows;
            qd.k = s.k;
            qd.in_dtype = dt;
            qd.in = host_in;
            qd.global_scale = gs;
            qd.out_q = q;
            qd.out_sf = sf;
            TRY(g_cpu, fp4_quantize(g_cpu, &qd));
            int differ = 0;
            for (int r = 0; r < n; r++)
                differ += sf[r * 4] != fp4_e4m3_encode(vmax[r] * (gs / 6.0f));
            tu_case(differ == n, "quantize ties %s: %d of %d tie blocks' flashinfer scales differ from the old "
                    "recipe's (vmax * fp32(gs/6))", fp4_dtype_name(dt), differ, n);
        }
        for (int li = 0; li < 2; li++)
            for (int ri = 0; ri < FP4_QUANT_RECIPE_COUNT; ri++)
                for (int gm = 0; gm < 2; gm++) /* 0: gs in device memory; 1: gs = 1 by value */
                    check_quantize(&s, dt, (fp4_sf_layout)li, (fp4_quant_recipe)ri, gm, label,
                                   host_in, d_in, d_gs, gs);
        goto next;
    fail:
        tu_case(0, "quantize ties %s set-up", fp4_dtype_name(dt));
    next:
        fp4_free(g_gpu, d_in);
        fp4_free(g_gpu, d_gs);
        free(host_in);
        free(x);
    }
}

/* ======================================================================================
 * (b) GEMM: every GPU backend that can run here, and auto, against cpu_ref
 * ==================================================================================== */

typedef struct gemm_shape {
    int64_t m, n, k;
    int64_t ldd_pad;  /* ldd = n + ldd_pad */
    int misalign;     /* A and B start one byte past an allocation: the kernels' scalar loads */
    int extreme_scales; /* 1: B's scales E4M3 subnormals and the smallest normals (0x01..0x0F),
                         * E2M1 A's the largest (0x70..0x7E): decoded weights that are FP16
                         * subnormals, the largest decoded activations; 2: the other way round
                         * (E2M1 A's smallest, B's random): decoded activations that are FP16
                         * subnormals (cuda_mma's value * scale * 2^-7, down to 2^-17) */
    int swizzled;       /* both scale layouts swizzled for every A type (else they alternate
                         * with the case number) */
} gemm_shape;

static const gemm_shape k_gemm_shapes[] = {
    {1, 1, 16, 0, 0, 0, 0},      {1, 4096, 4096, 0, 0, 0, 0},  {7, 1, 48, 0, 0, 0, 0},
    {129, 257, 48, 0, 0, 0, 0},  {33, 65, 4096, 0, 0, 0, 0},   {16, 128, 28672, 0, 0, 0, 0},
    {2048, 64, 256, 0, 0, 0, 0},
    {64, 3000, 512, 0, 0, 0, 0}, /* tall-skinny weight */
    {37, 50, 96, 13, 0, 0, 0},   /* non-contiguous D */
    {3, 33, 80, 0, 1, 0, 0},   /* misaligned A and B, small-M path */
    {1, 33, 640, 0, 0, 0, 0},    /* small-M: 40 k-blocks, lanes with one step fewer */
    {12, 257, 720, 0, 0, 0, 0},  /* small-M: a second, partly used block of 8 rows of A */
    {9, 130, 528, 0, 0, 0, 0},   /* small-M: 9 rows, 33 k-blocks */
    {40, 33, 80, 0, 1, 0, 0},  /* misaligned A and B, tiled path */
    {129, 257, 192, 0, 0, 0, 0},  /* k % 64 == 0 with ragged M and N: cuda_mma's token tiles */
    {70, 200, 1344, 5, 0, 0, 0},  /* cuda_mma m32_r2: 3 token tiles, a partial last 256-k stage, ldd */
    {9, 4100, 3072, 0, 0, 0, 0},  /* cuda_mma split-K over a ragged weight edge */
    {37, 200, 256, 0, 0, 1, 0}, /* extreme scales: a flushed subnormal product would fail */
    {21, 136, 320, 0, 0, 2, 0}, /* ... the smallest scales on A (W4A4) instead */
    {64, 130, 64, 0, 0, 0, 0},    /* cuda_wgmma: one 64-k stage, a ragged 128-row weight tile */
    {100, 200, 128, 0, 0, 0, 0},  /* cuda_wgmma n128: two stages, ragged tokens and weights */
    {300, 260, 640, 0, 0, 0, 0},  /* cuda_wgmma n256: 2 x 3 tiles, both edges ragged */
    {520, 384, 1024, 0, 0, 0, 0}, /* cuda_wgmma: ring wrapping (16 stages over 5-10 slots) */
    {257, 1000, 320, 3, 0, 0, 0}, /* cuda_wgmma: ldd without 16-byte rows: the scalar stores */
    {4200, 256, 8192, 0, 0, 0, 0}, /* cuda_wgmma W4A4: decoded A exceeds the workspace: 2 chunks */
    {600, 4096, 4096, 0, 0, 0, 0}, /* cuda_wgmma: several work units per persistent CTA (split-K) */
    {2048, 8192, 256, 0, 0, 0, 0}, /* ... and whole tiles, 4 units a CTA: ring and staging reuse */
    {1000, 200, 512, 0, 0, 0, 1},  /* n < m, swizzled A and B: W4A4 with A as the register
                                    * operand where a backend swaps (cuda_wgmma's branch) */
    {1000, 200, 512, 5, 0, 0, 1},  /* ... rows of D not 16-byte aligned: direct stores */
    {2560, 2304, 16384, 0, 0, 0, 1}, /* ... with B decoded in two chunks (r0 > 0) */
};

/* Random NVFP4 operand [rows, k]: packed bytes, and scales (exponents -4..4, so that F16
 * output stays finite) in `layout`, padding 0. */
static void make_fp4_operand(int64_t rows, int64_t k, fp4_sf_layout layout, uint8_t **q,
                             uint8_t **sf) {
    const int64_t kb = k / 16, sf_bytes = fp4_sf_bytes(rows, k, layout);
    uint8_t *lin = xmalloc(rows * kb);
    *q = xmalloc(rows * (k / 2));
    *sf = xmalloc(sf_bytes);
    tu_fill_bytes(&g_rng, *q, rows * (k / 2));
    tu_fill_scales(&g_rng, lin, rows * kb, -4, 4);
    memset(*sf, 0, (size_t)sf_bytes);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t b = 0; b < kb; b++) (*sf)[fp4_sf_offset(r, b, k, layout)] = lin[r * kb + b];
    free(lin);
}

/* Row r of an operand as floats (exact): NVFP4 (q + sf) or 16-bit (q is the elements). */
static void decode_row(const uint8_t *q, const uint8_t *sf, fp4_sf_layout layout, fp4_dtype dt,
                       int64_t r, int64_t k, float *out) {
    for (int64_t i = 0; i < k; i++) {
        if (dt == FP4_DTYPE_E2M1)
            out[i] = fp4_e2m1_decode(fp4_get_nibble(q + r * (k / 2), i)) *
                     fp4_e4m3_decode(sf[fp4_sf_offset(r, i / 16, k, layout)]);
        else
            out[i] = host_load(q, dt, r * k + i);
    }
}

/* One problem (shape, A type, layouts, alpha): the CPU reference and S = sum |A*B| for a set of
 * rows of D, then every backend x output dtype on the GPU. */
typedef struct gemm_problem {
    const gemm_shape *s;
    fp4_dtype a_dtype;
    fp4_sf_layout a_layout, b_layout;
    float alpha;
    int64_t nrows, *rows; /* the rows of D compared */
    float *ref;           /* [nrows, n] cpu_ref, F32 */
    double *sum_abs;      /* [nrows, n] sum_k |A*B| */
    /* device copies */
    void *d_a, *d_a_sf, *d_b, *d_b_sf, *d_d;
    void *d_a_alloc, *d_b_alloc; /* what fp4_malloc returned (d_a, d_b may be 1 byte past) */
    float *d_alpha;
} gemm_problem;

static double out_ulp(fp4_dtype dt, double ref) {
    switch (dt) {
    case FP4_DTYPE_BF16: return fabs(ref) * 0x1p-8 + 0x1p-126;
    case FP4_DTYPE_F16: return fabs(ref) * 0x1p-11 + 0x1p-24;
    default: return 0x1p-149;
    }
}

static const char *a_name(fp4_dtype a) {
    return a == FP4_DTYPE_E2M1 ? "w4a4" : a == FP4_DTYPE_BF16 ? "w4a16-bf16" : "w4a16-f16";
}

/* Runs one tactic x output dtype on the GPU and compares. */
static void run_gemm_case(const gemm_problem *p, fp4_tactic tactic, fp4_dtype d_dtype,
                          int alpha_by_ptr) {
    const gemm_shape *s = p->s;
    const int64_t ldd = s->n + s->ldd_pad, esize = fp4_dtype_size(d_dtype);
    const int64_t d_bytes = s->m * ldd * esize;
    uint8_t *d_host = xmalloc(d_bytes);
    char name[96];
    fp4_gemm_desc g;
    fp4_gemm_desc_init(&g);
    g.m = s->m;
    g.n = s->n;
    g.k = s->k;
    g.a_dtype = p->a_dtype;
    g.a = p->d_a;
    g.a_sf = p->a_dtype == FP4_DTYPE_E2M1 ? p->d_a_sf : NULL;
    g.a_sf_layout = p->a_layout;
    g.b = p->d_b;
    g.b_sf = p->d_b_sf;
    g.b_sf_layout = p->b_layout;
    g.d_dtype = d_dtype;
    g.d = p->d_d;
    g.ldd = ldd;
    g.alpha = alpha_by_ptr ? 12345.0f : p->alpha; /* the pointer must win */
    g.alpha_ptr = alpha_by_ptr ? p->d_alpha : NULL;
    g.backend = tactic.backend;
    g.config = tactic.config;
    g.stream = NULL;

    if (fp4_tactic_name(tactic, name, sizeof name) != FP4_OK) snprintf(name, sizeof name, "?");
    if (tactic.backend == FP4_BACKEND_AUTO) {
        fp4_tactic chosen;
        char tname[64];
        if (fp4_gemm_select(g_gpu, &g, &chosen, NULL, 0) == FP4_OK &&
            fp4_tactic_name(chosen, tname, sizeof tname) == FP4_OK)
            snprintf(name, sizeof name, "auto(%s)", tname);
    } else {
        char why[512];
        if (fp4_backend_check(g_gpu, tactic.backend, &g, why, sizeof why) != FP4_OK) {
            tu_skip("%s %s m=%lld n=%lld k=%lld: %s", name, a_name(p->a_dtype),
                    (long long)s->m, (long long)s->n, (long long)s->k, why);
            free(d_host);
            return;
        }
    }

    // poison D (0xFF is NaN in every dtype, the ldd padding included), run, fetch
    int ok = 1;
    int64_t bad = 0, pad_bad = 0, unwritten = 0;
    double max_err = 0.0, max_ratio = 0.0;
    TRY(g_gpu, fp4_memset(g_gpu, p->d_d, 0xFF, d_bytes));
    TRY(g_gpu, fp4_gemm(g_gpu, &g));
    TRY(g_gpu, fp4_synchronize(g_gpu, NULL));
    TRY(g_gpu, fp4_download(g_gpu, d_host, p->d_d, d_bytes));
    // run it again on a fresh poison: the same bits (split-K reductions are ordered)
    {
        uint8_t *again = xmalloc(d_bytes);
        TRY(g_gpu, fp4_memset(g_gpu, p->d_d, 0xFF, d_bytes));
        TRY(g_gpu, fp4_gemm(g_gpu, &g));
        TRY(g_gpu, fp4_synchronize(g_gpu, NULL));
        TRY(g_gpu, fp4_download(g_gpu, again, p->d_d, d_bytes));
        const int64_t at = first_diff(d_host, again, d_bytes);
        free(again);
        if (at >= 0) {
            printf("  a second run differs from the first at byte %lld\n", (long long)at);
            ok = 0;
        }
    }

    // every row: the padding columns still poisoned, the n columns written
    for (int64_t r = 0; r < s->m; r++) {
        const uint8_t *row = d_host + r * ldd * esize;
        for (int64_t i = s->n * esize; i < ldd * esize; i++) pad_bad += row[i] != 0xFF;
        for (int64_t j = 0; j < s->n; j++) {
            int poisoned = 1;
            for (int64_t b = 0; b < esize; b++) poisoned &= row[j * esize + b] == 0xFF;
            unwritten += poisoned;
        }
    }
    // the compared rows: |d - ref| <= |alpha| * S * 8 * sqrt(k) * 2^-24 + out_ulp
    const double acc_tol = fabs((double)p->alpha) * 8.0 * sqrt((double)s->k) * 0x1p-24;
    for (int64_t i = 0; i < p->nrows; i++) {
        const int64_t r = p->rows[i];
        for (int64_t j = 0; j < s->n; j++) {
            const double ref = p->ref[i * s->n + j];
            const double d = host_load(d_host, d_dtype, r * ldd + j);
            const double tol = acc_tol * p->sum_abs[i * s->n + j] + out_ulp(d_dtype, ref);
            const double err = fabs(d - ref);
            if (!(err <= tol)) {
                if (bad++ < 3)
                    printf("  D[%lld, %lld] = %.9g, reference %.9g, |err| %.3g > tol %.3g\n",
                           (long long)r, (long long)j, d, ref, err, tol);
                continue;
            }
            if (err > max_err) max_err = err;
            if (tol > 0 && err / tol > max_ratio) max_ratio = err / tol;
        }
    }
    if (pad_bad) printf("  %lld bytes of the ldd padding were overwritten\n", (long long)pad_bad);
    if (unwritten) printf("  %lld elements of D were not written\n", (long long)unwritten);
    ok = ok && bad == 0 && pad_bad == 0 && unwritten == 0;
    goto done;
fail:
    ok = 0;
done:
    tu_case(ok,
            "%s %s m=%lld n=%lld k=%lld ldd=%lld d=%s sf=%s/%s alpha=%s max_err=%.2e "
            "(%.2f of tol)%s",
            name, a_name(p->a_dtype), (long long)s->m, (long long)s->n, (long long)s->k,
            (long long)ldd, fp4_dtype_name(d_dtype),
            p->a_dtype == FP4_DTYPE_E2M1 ? fp4_sf_layout_name(p->a_layout) : "-",
            fp4_sf_layout_name(p->b_layout), alpha_by_ptr ? "ptr" : "value", max_err, max_ratio,
            p->nrows < s->m ? " (sampled rows)" : "");
    free(d_host);
}

static void test_gemm_problem(const gemm_shape *s, fp4_dtype a_dtype, int variant,
                              const fp4_tactic *tactics, int ntactics, int *alpha_counter) {
    const int64_t m = s->m, n = s->n, k = s->k;
    gemm_problem p;
    memset(&p, 0, sizeof p);
    p.s = s;
    p.a_dtype = a_dtype;
    p.a_layout = (variant & 1) || s->swizzled ? FP4_SF_SWIZZLED_128x4 : FP4_SF_LINEAR;
    p.b_layout = (variant & 2) || s->swizzled ? FP4_SF_SWIZZLED_128x4 : FP4_SF_LINEAR;
    p.alpha = (variant % 3 == 2) ? -1.0f / 64.0f : 1.0f / 64.0f;

    // operands on the host: B always NVFP4; A NVFP4 or 16-bit activations
    uint8_t *a = NULL, *a_sf = NULL, *b = NULL, *b_sf = NULL;
    const int w4a4 = a_dtype == FP4_DTYPE_E2M1;
    make_fp4_operand(n, k, p.b_layout, &b, &b_sf);
    for (int64_t r = 0; s->extreme_scales == 1 && r < n; r++)
        for (int64_t kb = 0; kb < k / 16; kb++)
            b_sf[fp4_sf_offset(r, kb, k, p.b_layout)] = (uint8_t)tu_rng_range(&g_rng, 0x01, 0x0F);
    if (w4a4) {
        make_fp4_operand(m, k, p.a_layout, &a, &a_sf);
        for (int64_t r = 0; s->extreme_scales && r < m; r++)
            for (int64_t kb = 0; kb < k / 16; kb++)
                a_sf[fp4_sf_offset(r, kb, k, p.a_layout)] =
                    s->extreme_scales == 1 ? (uint8_t)tu_rng_range(&g_rng, 0x70, 0x7E)
                                           : (uint8_t)tu_rng_range(&g_rng, 0x01, 0x0F);
    } else {
        float *x = xmalloc(m * k * 4);
        tu_fill_activations(&g_rng, x, m * k, 1.0f);
        a = xmalloc(m * k * 2);
        for (int64_t i = 0; i < m * k; i++) host_store(a, a_dtype, i, x[i]);
        free(x);
    }

    // the compared rows: all, or (big problems) 16 of them including the first and last
    const int sampled = (double)m * (double)n * (double)k > 16777216.0 && m > 16;
    p.nrows = sampled ? 16 : m;
    p.rows = xmalloc(p.nrows * 8);
    for (int64_t i = 0; i < p.nrows; i++)
        p.rows[i] = !sampled ? i : i == 0 ? 0 : i == 1 ? m - 1 : tu_rng_range(&g_rng, 1, m - 2);

    // reference: cpu_ref over the compared rows (A's rows gathered, linear scales), F32 D
    const int64_t a_row_bytes = w4a4 ? k / 2 : k * 2;
    uint8_t *a_sub = xmalloc(p.nrows * a_row_bytes);
    uint8_t *a_sub_sf = xmalloc(p.nrows * (k / 16));
    for (int64_t i = 0; i < p.nrows; i++) {
        memcpy(a_sub + i * a_row_bytes, a + p.rows[i] * a_row_bytes, (size_t)a_row_bytes);
        for (int64_t kb = 0; w4a4 && kb < k / 16; kb++)
            a_sub_sf[i * (k / 16) + kb] = a_sf[fp4_sf_offset(p.rows[i], kb, k, p.a_layout)];
    }
    p.ref = xmalloc(p.nrows * n * 4);
    p.sum_abs = xmalloc(p.nrows * n * 8);
    {
        fp4_gemm_desc g;
        fp4_gemm_desc_init(&g);
        g.m = p.nrows;
        g.n = n;
        g.k = k;
        g.a_dtype = a_dtype;
        g.a = a_sub;
        g.a_sf = w4a4 ? a_sub_sf : NULL;
        g.a_sf_layout = FP4_SF_LINEAR;
        g.b = b;
        g.b_sf = b_sf;
        g.b_sf_layout = p.b_layout;
        g.d_dtype = FP4_DTYPE_F32;
        g.d = p.ref;
        g.alpha = p.alpha;
        g.backend = FP4_BACKEND_CPU_REF;
        TRY(g_cpu, fp4_gemm(g_cpu, &g));
    }
    {
        float *b_rows = xmalloc(n * k * 4), *a_row = xmalloc(k * 4);
        for (int64_t j = 0; j < n; j++)
            decode_row(b, b_sf, p.b_layout, FP4_DTYPE_E2M1, j, k, b_rows + j * k);
        for (int64_t i = 0; i < p.nrows; i++) {
            decode_row(a, a_sf, p.a_layout, a_dtype, p.rows[i], k, a_row);
            for (int64_t j = 0; j < n; j++) {
                const float *bj = b_rows + j * k;
                double sum = 0.0;
                for (int64_t kk = 0; kk < k; kk++) sum += fabs((double)a_row[kk] * bj[kk]);
                p.sum_abs[i * n + j] = sum;
            }
        }
        free(b_rows);
        free(a_row);
    }

    // device copies
    const int64_t a_bytes = m * a_row_bytes;
    /* misaligned: one byte past for E2M1 data, one element for 16-bit A */
    const int64_t shift = s->misalign ? 1 : 0, shift_a = s->misalign ? (w4a4 ? 1 : 2) : 0;
    TRY(g_gpu, fp4_malloc(g_gpu, &p.d_a_alloc, a_bytes + shift_a));
    p.d_a = (uint8_t *)p.d_a_alloc + shift_a;
    TRY(g_gpu, fp4_upload(g_gpu, p.d_a, a, a_bytes));
    if (w4a4) {
        const int64_t bytes = fp4_sf_bytes(m, k, p.a_layout);
        TRY(g_gpu, fp4_malloc(g_gpu, &p.d_a_sf, bytes));
        TRY(g_gpu, fp4_upload(g_gpu, p.d_a_sf, a_sf, bytes));
    }
    TRY(g_gpu, fp4_malloc(g_gpu, &p.d_b_alloc, n * (k / 2) + shift));
    p.d_b = (uint8_t *)p.d_b_alloc + shift;
    TRY(g_gpu, fp4_upload(g_gpu, p.d_b, b, n * (k / 2)));
    TRY(g_gpu, fp4_malloc(g_gpu, &p.d_b_sf, fp4_sf_bytes(n, k, p.b_layout)));
    TRY(g_gpu, fp4_upload(g_gpu, p.d_b_sf, b_sf, fp4_sf_bytes(n, k, p.b_layout)));
    TRY(g_gpu, fp4_malloc(g_gpu, &p.d_d, m * (n + s->ldd_pad) * 4));
    TRY(g_gpu, fp4_malloc(g_gpu, (void **)&p.d_alpha, 4));
    TRY(g_gpu, fp4_upload(g_gpu, p.d_alpha, &p.alpha, 4));

    // every tactic x output dtype, alpha by value and by pointer in turn
    {
        static const fp4_dtype d_dtypes[3] = {FP4_DTYPE_F32, FP4_DTYPE_F16, FP4_DTYPE_BF16};
        for (int ti = 0; ti < ntactics; ti++)
            for (int di = 0; di < 3; di++)
                run_gemm_case(&p, tactics[ti], d_dtypes[di], (*alpha_counter)++ & 1);
    }
    goto done;
fail:
    tu_case(0, "gemm set-up %s m=%lld n=%lld k=%lld", a_name(a_dtype), (long long)m,
            (long long)n, (long long)k);
done:
    fp4_free(g_gpu, p.d_a_alloc);
    fp4_free(g_gpu, p.d_a_sf);
    fp4_free(g_gpu, p.d_b_alloc);
    fp4_free(g_gpu, p.d_b_sf);
    fp4_free(g_gpu, p.d_d);
    fp4_free(g_gpu, p.d_alpha);
    free(a);
    free(a_sf);
    free(b);
    free(b_sf);
    free(a_sub);
    free(a_sub_sf);
    free(p.rows);
    free(p.ref);
    free(p.sum_abs);
}

static void test_gemm(void) {
    // every tactic (backend/config) that can run on this device, then auto; each case below
    // skips, saying why, where its config can't run the shape
    fp4_tactic run[64];
    int nrun = 0;
    for (int b = FP4_BACKEND_CPU_REF + 1; b < FP4_BACKEND_COUNT; b++) {
        char why[512];
        if (fp4_backend_check(g_gpu, (fp4_backend)b, NULL, why, sizeof why) != FP4_OK)
            tu_skip("%s: %s", fp4_backend_name((fp4_backend)b), why);
    }
    int count = 0;
    if (!tu_ok(fp4_gemm_list_tactics(g_gpu, NULL, run, 63, &count), g_gpu, "fp4_gemm_list_tactics"))
        count = 0;
    nrun = 0;
    for (int i = 0; i < (count < 63 ? count : 63); i++) {
        char name[64] = "?";
        (void)fp4_tactic_name(run[i], name, sizeof name);
        if (!tactic_selected(name)) {
            tu_skip("tactic %s: not in FP4GEMM_TEST_TACTICS", name);
            continue;
        }
        run[nrun++] = run[i];
        printf("tactic %s\n", name);
    }
    fp4_tactic chosen;
    char why[512];
    if (!tactic_selected("auto")) {
        tu_skip("auto: not in FP4GEMM_TEST_TACTICS");
    } else if (fp4_gemm_select(g_gpu, NULL, &chosen, why, sizeof why) == FP4_OK) {
        run[nrun].backend = FP4_BACKEND_AUTO;
        run[nrun++].config = -1;
        printf("auto: %s\n", why);
    } else {
        tu_skip("auto: %s", why);
    }

    static const fp4_dtype a_dtypes[3] = {FP4_DTYPE_E2M1, FP4_DTYPE_BF16, FP4_DTYPE_F16};
    int variant = 0, alpha_counter = 0;
    for (size_t si = 0; si < sizeof k_gemm_shapes / sizeof k_gemm_shapes[0]; si++) {
        const gemm_shape *s = &k_gemm_shapes[si];
        if (tu_quick() && s->m * s->n * s->k > (1 << 21)) {
            tu_skip("gemm m=%lld n=%lld k=%lld: FP4GEMM_TEST_QUICK is set (for slow checkers)",
                    (long long)s->m, (long long)s->n, (long long)s->k);
            continue;
        }
        for (int ai = 0; ai < 3; ai++)
            test_gemm_problem(s, a_dtypes[ai], variant++, run, nrun, &alpha_counter);
    }
}

/* An m x n x k NVFP4 descriptor for fp4_gemm_select only: its pointers are 16-byte aligned
 * fakes, never dereferenced. */
static fp4_gemm_desc selection_desc(int64_t m, int64_t n, int64_t k) {
    fp4_gemm_desc g;
    fp4_gemm_desc_init(&g);
    g.m = m;
    g.n = n;
    g.k = k;
    g.a = g.b = g.a_sf = g.b_sf = (const void *)(uintptr_t)4096;
    g.d = (void *)(uintptr_t)4096;
    return g;
}

/* cuda_simt's heuristic (its default config per M), as fp4_gemm_select reports it. */
static void test_simt_heuristic(void) {
    char why[512];
    if (fp4_backend_check(g_gpu, FP4_BACKEND_CUDA_SIMT, NULL, why, sizeof why) != FP4_OK) {
        tu_skip("cuda_simt heuristic: %s", why);
        return;
    }
    static const struct {
        int64_t m;
        const char *want;
    } cases[] = {{1, "cuda_simt/gemv_mr1"}, {2, "cuda_simt/gemv_mr2"}, {3, "cuda_simt/gemv_mr4"},
                 {8, "cuda_simt/gemv_mr8"}, {16, "cuda_simt/gemv_mr8"}, {17, "cuda_simt/tiled"},
                 {4096, "cuda_simt/tiled"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fp4_gemm_desc g = selection_desc(cases[i].m, 64, 64);
        g.backend = FP4_BACKEND_CUDA_SIMT;
        fp4_tactic t = {FP4_BACKEND_AUTO, -2};
        char name[64] = "";
        const fp4_status st = fp4_gemm_select(g_gpu, &g, &t, why, sizeof why);
        (void)fp4_tactic_name(t, name, sizeof name);
        tu_case(st == FP4_OK && strcmp(name, cases[i].want) == 0,
                "cuda_simt heuristic for m = %lld -> %s (got %s: \"%s\")", (long long)cases[i].m,
                cases[i].want, name, why);
    }
}

/* ======================================================================================
 * scale layout conversion, and the global scale through a pointer: GPU == CPU bytes
 * ==================================================================================== */

/* The Hopper policy's small-M rule: auto takes cuda_mma up to M = 32, cuda_wgmma above (when
 * both can run; docs/backends.md). */
static void test_hopper_policy(void) {
    char why[512];
    if (fp4_ctx_compute_capability(g_gpu) / 10 != 9) {
        tu_skip("hopper policy: not an sm_90 device");
        return;
    }
    if (fp4_backend_check(g_gpu, FP4_BACKEND_CUDA_WGMMA, NULL, why, sizeof why) != FP4_OK ||
        fp4_backend_check(g_gpu, FP4_BACKEND_CUDA_MMA, NULL, why, sizeof why) != FP4_OK) {
        tu_skip("hopper policy: %s", why);
        return;
    }
    static const struct {
        int64_t m;
        fp4_backend want;
    } cases[] = {{1, FP4_BACKEND_CUDA_MMA},    {32, FP4_BACKEND_CUDA_MMA},
                 {33, FP4_BACKEND_CUDA_WGMMA}, {4096, FP4_BACKEND_CUDA_WGMMA}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fp4_gemm_desc g = selection_desc(cases[i].m, 4096, 4096);
        g.a_sf_layout = g.b_sf_layout = FP4_SF_SWIZZLED_128x4;
        fp4_tactic t = {FP4_BACKEND_AUTO, -2};
        const fp4_status st = fp4_gemm_select(g_gpu, &g, &t, why, sizeof why);
        tu_case(st == FP4_OK && t.backend == cases[i].want, "auto on sm_90 for m = %lld -> %s (\"%s\")",
                (long long)cases[i].m, fp4_backend_name(cases[i].want), why);
    }
}

static void test_sf_convert_gpu(void) {
    static const struct {
        int64_t rows, k;
    } shapes[] = {{1, 16}, {5, 48}, {127, 64}, {128, 64}, {129, 80}, {300, 272}, {4096, 7168}};
    const fp4_sf_layout layouts[2] = {FP4_SF_LINEAR, FP4_SF_SWIZZLED_128x4};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int64_t rows = shapes[i].rows, k = shapes[i].k;
        for (int si = 0; si < 2; si++)
            for (int di = 0; di < 2; di++) {
                const fp4_sf_layout from = layouts[si], to = layouts[di];
                const int64_t src_bytes = fp4_sf_bytes(rows, k, from);
                const int64_t dst_bytes = fp4_sf_bytes(rows, k, to);
                uint8_t *src = xmalloc(src_bytes), *want = xmalloc(dst_bytes + 64);
                uint8_t *got = xmalloc(dst_bytes + 64);
                void *d_src = NULL, *d_dst = NULL;
                int ok = 0;
                tu_fill_bytes(&g_rng, src, src_bytes); /* padding garbage too: must become 0 */
                memset(want, 0xA5, (size_t)(dst_bytes + 64));
                TRY(g_cpu, fp4_sf_convert(g_cpu, rows, k, src, from, want, to, NULL));
                TRY(g_gpu, fp4_malloc(g_gpu, &d_src, src_bytes));
                TRY(g_gpu, fp4_malloc(g_gpu, &d_dst, dst_bytes + 64));
                TRY(g_gpu, fp4_upload(g_gpu, d_src, src, src_bytes));
                TRY(g_gpu, fp4_memset(g_gpu, d_dst, 0xA5, dst_bytes + 64));
                TRY(g_gpu, fp4_sf_convert(g_gpu, rows, k, d_src, from, d_dst, to, NULL));
                TRY(g_gpu, fp4_synchronize(g_gpu, NULL));
                TRY(g_gpu, fp4_download(g_gpu, got, d_dst, dst_bytes + 64));
                {
                    const int64_t diff = first_diff(got, want, dst_bytes + 64);
                    ok = diff < 0;
                    if (!ok)
                        printf("  byte %lld: GPU %02X, CPU %02X\n", (long long)diff, got[diff],
                               want[diff]);
                }
            fail:
                tu_case(ok, "sf_convert %s -> %s %lld x %lld: GPU bytes == CPU bytes (padding 0, "
                            "nothing past the end)",
                        fp4_sf_layout_name(from), fp4_sf_layout_name(to), (long long)rows,
                        (long long)k);
                fp4_free(g_gpu, d_src);
                fp4_free(g_gpu, d_dst);
                free(src);
                free(want);
                free(got);
            }
    }
    // bad arguments on the GPU context: checked before anything runs
    const fp4_status st =
        fp4_sf_convert(g_gpu, 4, 24, (void *)(uintptr_t)4096, FP4_SF_LINEAR,
                       (void *)(uintptr_t)8192, FP4_SF_SWIZZLED_128x4, NULL);
    tu_case(st == FP4_ERR_INVALID_ARGUMENT, "sf_convert k=24 on the GPU context -> INVALID_ARGUMENT");
}

/* A global scale of 0 (what fp4_global_scale gives a tensor with an Inf), NaN, -0 or Inf, read
 * through global_scale_ptr (recipe flashinfer): the GPU writes the CPU's bytes, never a NaN
 * scale, and the Inf blocks' scale saturates to 448. */
static void test_gs_pointer_gpu(void) {
    static const float values[] = {0.0f, NAN, -0.0f, INFINITY, 10.0f};
    enum { ROWS = 3, K = 64 };
    float x[ROWS * K];
    for (int i = 0; i < ROWS * K; i++) x[i] = (float)((i * 7) % 13) - 6.0f;
    x[5] = INFINITY;
    x[K + 20] = -INFINITY;
    x[2 * K + 40] = NAN;
    const int64_t sf_bytes = fp4_sf_bytes(ROWS, K, FP4_SF_SWIZZLED_128x4);
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        uint8_t q_cpu[ROWS * K / 2], q_gpu[ROWS * K / 2], *sf_cpu = xmalloc(sf_bytes),
                                                         *sf_gpu = xmalloc(sf_bytes);
        void *d_x = NULL, *d_q = NULL, *d_sf = NULL, *d_gs = NULL;
        uint32_t *d_flag = NULL, flag = 0;
        int ok = 0;
        fp4_quant_desc qd;
        fp4_quant_desc_init(&qd);
        qd.rows = ROWS;
        qd.k = K;
        qd.in = x;
        qd.global_scale_ptr = &values[i];
        qd.out_q = q_cpu;
        qd.out_sf = sf_cpu;
        qd.sf_layout = FP4_SF_SWIZZLED_128x4;
        TRY(g_cpu, fp4_quantize(g_cpu, &qd));
        TRY(g_gpu, fp4_malloc(g_gpu, &d_x, sizeof x));
        TRY(g_gpu, fp4_malloc(g_gpu, &d_q, sizeof q_gpu));
        TRY(g_gpu, fp4_malloc(g_gpu, &d_sf, sf_bytes));
        TRY(g_gpu, fp4_malloc(g_gpu, &d_gs, 4));
        TRY(g_gpu, fp4_malloc(g_gpu, (void **)&d_flag, 4));
        TRY(g_gpu, fp4_upload(g_gpu, d_x, x, sizeof x));
        TRY(g_gpu, fp4_upload(g_gpu, d_gs, &values[i], 4));
        TRY(g_gpu, fp4_memset(g_gpu, d_q, 0xA5, sizeof q_gpu));
        TRY(g_gpu, fp4_memset(g_gpu, d_sf, 0xA5, sf_bytes));
        TRY(g_gpu, fp4_memset(g_gpu, d_flag, 0, 4));
        qd.in = d_x;
        qd.global_scale_ptr = d_gs;
        qd.out_q = d_q;
        qd.out_sf = d_sf;
        qd.nonfinite_flag = d_flag;
        TRY(g_gpu, fp4_quantize(g_gpu, &qd));
        TRY(g_gpu, fp4_synchronize(g_gpu, NULL));
        TRY(g_gpu, fp4_download(g_gpu, q_gpu, d_q, sizeof q_gpu));
        TRY(g_gpu, fp4_download(g_gpu, sf_gpu, d_sf, sf_bytes));
        TRY(g_gpu, fp4_download(g_gpu, &flag, d_flag, 4));
        ok = memcmp(q_cpu, q_gpu, sizeof q_cpu) == 0 && memcmp(sf_cpu, sf_gpu, (size_t)sf_bytes) == 0 &&
             flag == 1;
        for (int64_t b = 0; b < sf_bytes; b++) ok &= sf_gpu[b] != 0x7F && sf_gpu[b] != 0xFF;
        ok &= sf_gpu[fp4_sf_offset(0, 0, K, FP4_SF_SWIZZLED_128x4)] == 0x7E; /* the Inf block */
    fail:
        tu_case(ok, "quantize gs = %g through a device pointer: GPU bytes == CPU bytes, Inf blocks "
                    "0x7E, no NaN scale, nonfinite_flag set",
                (double)values[i]);
        fp4_free(g_gpu, d_x);
        fp4_free(g_gpu, d_q);
        fp4_free(g_gpu, d_sf);
        fp4_free(g_gpu, d_gs);
        fp4_free(g_gpu, d_flag);
        free(sf_cpu);
        free(sf_gpu);
    }
}

/* ======================================================================================
 * cublaslt: on Hopper and older it says precisely why it can't run; on Blackwell its layout
 * rules refuse what cuBLASLt can't take (its GEMMs themselves are test_gemm's cases)
 * ==================================================================================== */

static void test_cublaslt_device(void) {
    const int cc = fp4_ctx_compute_capability(g_gpu);
    char why[512] = "", want[32];
    const int64_t M = 16, N = 256, K = 256;
    void *d_a = NULL, *d_b = NULL, *d_asf = NULL, *d_bsf = NULL, *d_d = NULL;
    if (!tu_ok(fp4_malloc(g_gpu, &d_a, M * K), g_gpu, "fp4_malloc") ||
        !tu_ok(fp4_malloc(g_gpu, &d_b, N * K), g_gpu, "fp4_malloc") ||
        !tu_ok(fp4_malloc(g_gpu, &d_asf, fp4_sf_bytes(M, K, FP4_SF_SWIZZLED_128x4)), g_gpu,
               "fp4_malloc") ||
        !tu_ok(fp4_malloc(g_gpu, &d_bsf, fp4_sf_bytes(N, K, FP4_SF_SWIZZLED_128x4)), g_gpu,
               "fp4_malloc") ||
        !tu_ok(fp4_malloc(g_gpu, &d_d, M * N * 4), g_gpu, "fp4_malloc"))
        goto done;
    fp4_gemm_desc g;
    fp4_gemm_desc_init(&g);
    g.m = M;
    g.n = N;
    g.k = K;
    g.a = d_a;
    g.a_sf = d_asf;
    g.a_sf_layout = FP4_SF_SWIZZLED_128x4;
    g.b = d_b;
    g.b_sf = d_bsf;
    g.b_sf_layout = FP4_SF_SWIZZLED_128x4;
    g.d_dtype = FP4_DTYPE_BF16;
    g.d = d_d;
    g.backend = FP4_BACKEND_CUBLASLT;
    if (cc < 100) {
        snprintf(want, sizeof want, "sm_%d", cc);
        const fp4_status st = fp4_backend_check(g_gpu, FP4_BACKEND_CUBLASLT, NULL, why, sizeof why);
        tu_case(st == FP4_ERR_NOT_SUPPORTED && strstr(why, "sm_100") && strstr(why, want),
                "cublaslt on sm_%d: NOT_SUPPORTED, \"%s\"", cc, why);
        const fp4_status gs = fp4_gemm(g_gpu, &g);
        tu_case(gs == FP4_ERR_NOT_SUPPORTED && strstr(fp4_last_error(g_gpu), "sm_100"),
                "gemm backend=cublaslt on sm_%d: %s, \"%s\"", cc, fp4_status_name(gs),
                fp4_last_error(g_gpu));
        fp4_tactic t[64];
        int n = 0, listed = 0;
        if (fp4_gemm_list_tactics(g_gpu, NULL, t, 64, &n) == FP4_OK)
            for (int i = 0; i < n && i < 64; i++) listed |= t[i].backend == FP4_BACKEND_CUBLASLT;
        tu_case(!listed, "cublaslt is not among the tactics that can run on sm_%d", cc);
        goto done;
    }
    // Blackwell: the device says yes; the layout rules refuse, each with its reason
    tu_case(fp4_backend_check(g_gpu, FP4_BACKEND_CUBLASLT, NULL, why, sizeof why) == FP4_OK,
            "cublaslt on sm_%d: can run (%s)", cc, why);
    {
        const fp4_status st = fp4_backend_check(g_gpu, FP4_BACKEND_CUBLASLT, &g, why, sizeof why);
        tu_case(st == FP4_OK || (st == FP4_ERR_NOT_SUPPORTED && strstr(why, "cuBLASLt has no")),
                "cublaslt m=16 n=256 k=256 swizzled W4A4 on sm_%d: %s (%s)", cc,
                fp4_status_name(st), st == FP4_OK ? "cuBLASLt has an algorithm" : why);
    }
    static const struct {
        int what;
        const char *want;
    } refusals[] = {{0, "W4A4"}, {1, "swizzled"}, {2, "multiple of 32"}, {3, "16-byte"}};
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        fp4_gemm_desc b = g;
        if (refusals[i].what == 0) {
            b.a_dtype = FP4_DTYPE_BF16;
            b.a_sf = NULL;
        } else if (refusals[i].what == 1) {
            b.b_sf_layout = FP4_SF_LINEAR;
        } else if (refusals[i].what == 2) {
            b.k = 48;
        } else {
            b.b = (const uint8_t *)d_b + 8;
        }
        const fp4_status st = fp4_backend_check(g_gpu, FP4_BACKEND_CUBLASLT, &b, why, sizeof why);
        tu_case(st == FP4_ERR_NOT_SUPPORTED && strstr(why, refusals[i].want),
                "cublaslt refuses case %zu: %s, \"%s\"", i, fp4_status_name(st), why);
    }
done:
    fp4_free(g_gpu, d_a);
    fp4_free(g_gpu, d_b);
    fp4_free(g_gpu, d_asf);
    fp4_free(g_gpu, d_bsf);
    fp4_free(g_gpu, d_d);
}

/* ======================================================================================
 * error paths on the GPU context
 * ==================================================================================== */

static void test_error_paths(int device_count) {
    char why[512];
    // cpu_ref on a GPU context: NOT_SUPPORTED, from the check and from fp4_gemm
    tu_case(fp4_backend_check(g_gpu, FP4_BACKEND_CPU_REF, NULL, why, sizeof why) ==
                FP4_ERR_NOT_SUPPORTED,
            "backend_check cpu_ref on the GPU context: NOT_SUPPORTED (%s)", why);
    {
        void *d_a = NULL, *d_sf = NULL, *d_d = NULL;
        fp4_status st = FP4_ERR_INTERNAL;
        if (fp4_malloc(g_gpu, &d_a, 64) == FP4_OK && fp4_malloc(g_gpu, &d_sf, 512) == FP4_OK &&
            fp4_malloc(g_gpu, &d_d, 64) == FP4_OK) {
            fp4_gemm_desc g;
            fp4_gemm_desc_init(&g);
            g.m = g.n = 1;
            g.k = 16;
            g.a = g.b = d_a;
            g.a_sf = g.b_sf = d_sf;
            g.d = d_d;
            g.backend = FP4_BACKEND_CPU_REF;
            st = fp4_gemm(g_gpu, &g);
        }
        tu_case(st == FP4_ERR_NOT_SUPPORTED, "gemm backend=cpu_ref on the GPU context: %s (%s)",
                fp4_status_name(st), fp4_last_error(g_gpu));
        fp4_free(g_gpu, d_a);
        fp4_free(g_gpu, d_sf);
        fp4_free(g_gpu, d_d);
    }
    // a context on a device that does not exist
    {
        fp4_ctx *ctx = NULL;
        const fp4_status st = fp4_create(&ctx, device_count);
        tu_case(st == FP4_ERR_NO_DEVICE && ctx == NULL, "create device %d: %s (%s)",
                device_count, fp4_status_name(st), fp4_last_error(NULL));
        fp4_destroy(ctx);
    }
    // a GPU call on the NULL stream: quantize, then synchronize the NULL stream
    {
        float x[32];
        void *d_x = NULL, *d_q = NULL, *d_sf = NULL;
        int ok = 0;
        for (int i = 0; i < 32; i++) x[i] = (float)i - 10.0f;
        if (fp4_malloc(g_gpu, &d_x, sizeof x) == FP4_OK && fp4_malloc(g_gpu, &d_q, 16) == FP4_OK &&
            fp4_malloc(g_gpu, &d_sf, 512) == FP4_OK &&
            fp4_upload(g_gpu, d_x, x, sizeof x) == FP4_OK) {
            fp4_quant_desc qd;
            fp4_quant_desc_init(&qd);
            qd.rows = 1;
            qd.k = 32;
            qd.in = d_x;
            qd.out_q = d_q;
            qd.out_sf = d_sf;
            qd.sf_layout = FP4_SF_SWIZZLED_128x4;
            qd.stream = NULL;
            ok = tu_ok(fp4_quantize(g_gpu, &qd), g_gpu, "fp4_quantize") &&
                 tu_ok(fp4_synchronize(g_gpu, NULL), g_gpu, "fp4_synchronize");
        }
        tu_case(ok, "quantize + synchronize on the NULL stream");
        fp4_free(g_gpu, d_x);
        fp4_free(g_gpu, d_q);
        fp4_free(g_gpu, d_sf);
    }
}

int main(void) {
    const uint64_t seed = tu_seed(20261128);
    tu_begin("test_gpu", seed);
    tu_rng_seed(&g_rng, seed);

    int count = 0;
    if (!fp4_built_with_cuda() || fp4_device_count(&count) != FP4_OK || count == 0) {
        tu_skip("no CUDA device");
        return tu_finish();
    }
    if (!tu_ok(fp4_create(&g_gpu, 0), NULL, "fp4_create(device 0)") ||
        !tu_ok(fp4_create(&g_cpu, -1), NULL, "fp4_create(CPU)")) {
        tu_case(0, "contexts");
        fp4_destroy(g_gpu);
        return tu_finish();
    }
    fp4_device_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    if (fp4_device_query(0, &info) == FP4_OK)
        printf("device 0: %s, sm_%d, %d SMs, %.0f MB L2, %.1f GB, %.0f GB/s\n", info.name,
               info.compute_capability, info.sm_count, (double)info.l2_bytes / 1e6,
               (double)info.memory_bytes / 1e9, info.memory_bandwidth_gbs);

    test_quantizer();
    test_global_scale_edges();
    test_modelopt_ws2_group();
    test_quantizer_ties();
    test_quantizer_gs_specials();
    test_sf_convert_gpu();
    test_gs_pointer_gpu();
    test_simt_heuristic();
    test_hopper_policy();
    test_gemm();
    test_cublaslt_device();
    test_error_paths(count);

    fp4_destroy(g_gpu);
    fp4_destroy(g_cpu);
    return tu_finish();
}

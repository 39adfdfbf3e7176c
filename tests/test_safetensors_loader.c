/* test_safetensors_loader.c - fp4_modelopt_load_weight (part of test_safetensors): a layer
 * written the way ModelOpt exports it (fp4_quantize with the modelopt recipe, linear scales)
 * comes back with the same packed bytes, its scales in the layout asked for (as
 * fp4_sf_convert gives them), ws2 and input_scale; its GEMM passes fp4_gemm_verify; and each
 * malformed layer is refused naming the tensor at fault. */
#define _POSIX_C_SOURCE 200809L
#include "fp4gemm.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 40, K = 64, M = 5 };

/* x [rows, K] quantized with the modelopt recipe (ws2 from its amax), linear scales. */
static float quantize_modelopt(fp4_ctx *ctx, const float *x, int64_t rows, uint8_t *q, uint8_t *sf) {
    float ws2 = 0;
    const fp4_tensor_ref t = {rows, K, FP4_DTYPE_F32, x, K};
    fp4_modelopt_global_scale(ctx, &t, 1, &ws2, NULL);
    fp4_quant_desc d;
    fp4_quant_desc_init(&d);
    d.rows = rows;
    d.k = K;
    d.in = x;
    d.global_scale = ws2;
    d.out_q = q;
    d.out_sf = sf;
    d.recipe = FP4_QUANT_RECIPE_MODELOPT;
    fp4_quantize(ctx, &d);
    return ws2;
}

void test_loader(tu_rng *rng, const char *dir);
void test_loader(tu_rng *rng, const char *dir) {
    fp4_ctx *ctx = NULL;
    if (!tu_ok(fp4_create(&ctx, -1), NULL, "fp4_create")) return;
    static float w[N * K], a[M * K];
    static uint8_t q[N * K / 2], sf[N * K / 16], qa[M * K / 2], sfa[M * K / 16];
    tu_fill_activations(rng, w, N * K, 0.02f);
    tu_fill_activations(rng, a, M * K, 1.0f);
    const float ws2 = quantize_modelopt(ctx, w, N, q, sf);
    const float ws2_a = quantize_modelopt(ctx, a, M, qa, sfa);
    const float in_scale = 0.125f, neg = -1.0f, two[2] = {1, 2};
    const float wf32[4 * 16] = {0};
    fp4_st_tensor t[] = {
        {.name = "l.weight", .dtype = FP4_ST_U8, .ndim = 2, .shape = {N, K / 2}, .data = q},
        {.name = "l.weight_scale", .dtype = FP4_ST_F8_E4M3, .ndim = 2, .shape = {N, K / 16}, .data = sf},
        {.name = "l.weight_scale_2", .dtype = FP4_ST_F32, .ndim = 0, .data = &ws2},
        {.name = "l.input_scale", .dtype = FP4_ST_F32, .ndim = 1, .shape = {1}, .data = &in_scale},
        /* faults, one per layer */
        {.name = "no_scale.weight", .dtype = FP4_ST_U8, .ndim = 2, .shape = {N, K / 2}, .data = q},
        {.name = "short_scale.weight", .dtype = FP4_ST_U8, .ndim = 2, .shape = {N, K / 2}, .data = q},
        {.name = "short_scale.weight_scale", .dtype = FP4_ST_F8_E4M3, .ndim = 2, .shape = {N, K / 32},
         .data = sf},
        {.name = "neg_ws2.weight", .dtype = FP4_ST_U8, .ndim = 2, .shape = {N, K / 2}, .data = q},
        {.name = "neg_ws2.weight_scale", .dtype = FP4_ST_F8_E4M3, .ndim = 2, .shape = {N, K / 16},
         .data = sf},
        {.name = "neg_ws2.weight_scale_2", .dtype = FP4_ST_F32, .ndim = 0, .data = &neg},
        {.name = "vec_ws2.weight", .dtype = FP4_ST_U8, .ndim = 2, .shape = {N, K / 2}, .data = q},
        {.name = "vec_ws2.weight_scale", .dtype = FP4_ST_F8_E4M3, .ndim = 2, .shape = {N, K / 16},
         .data = sf},
        {.name = "vec_ws2.weight_scale_2", .dtype = FP4_ST_F32, .ndim = 1, .shape = {2}, .data = two},
        {.name = "dense.weight", .dtype = FP4_ST_F32, .ndim = 2, .shape = {4, 16}, .data = wf32},
    };
    char path[320];
    snprintf(path, sizeof path, "%s/modelopt.safetensors", dir);
    fp4_safetensors *st = NULL;
    if (!tu_ok(fp4_safetensors_write(path, t, (int64_t)(sizeof t / sizeof t[0]), NULL, 0), NULL,
               "write the layers") ||
        !tu_ok(fp4_safetensors_open(path, &st), NULL, "open them")) {
        fp4_destroy(ctx);
        return;
    }
    for (int layout = 0; layout < FP4_SF_LAYOUT_COUNT; layout++) {
        fp4_nvfp4_weight lw;
        memset(&lw, 0, sizeof lw);
        lw.struct_size = sizeof lw;
        fp4_status s = fp4_modelopt_load_weight(ctx, st, "l", (fp4_sf_layout)layout, &lw);
        const int64_t sfb = fp4_sf_bytes(N, K, (fp4_sf_layout)layout);
        uint8_t *want = malloc((size_t)sfb);
        fp4_sf_convert(ctx, N, K, sf, FP4_SF_LINEAR, want, (fp4_sf_layout)layout, NULL);
        int ok = s == FP4_OK && lw.n == N && lw.k == K && !memcmp(lw.q, q, sizeof q) &&
                 !memcmp(lw.sf, want, (size_t)sfb) && lw.weight_scale_2 == ws2 &&
                 lw.input_scale == in_scale && lw.sf_layout == (fp4_sf_layout)layout;
        tu_case(ok, "load layer l (%s scales): bytes, scales, ws2, input_scale %s",
                fp4_sf_layout_name((fp4_sf_layout)layout), s ? fp4_last_error(ctx) : "");
        /* the layer's GEMM: A quantized with modelopt too, alpha = ws2_a * ws2 */
        uint8_t *sfa_l = malloc((size_t)fp4_sf_bytes(M, K, (fp4_sf_layout)layout));
        fp4_sf_convert(ctx, M, K, sfa, FP4_SF_LINEAR, sfa_l, (fp4_sf_layout)layout, NULL);
        float d[M * N];
        fp4_gemm_desc g;
        fp4_gemm_desc_init(&g);
        g.m = M, g.n = N, g.k = K;
        g.a = qa, g.a_sf = sfa_l, g.b = lw.q, g.b_sf = lw.sf;
        g.a_sf_layout = g.b_sf_layout = (fp4_sf_layout)layout;
        g.d_dtype = FP4_DTYPE_F32;
        g.d = d;
        g.alpha = ws2_a * lw.weight_scale_2;
        fp4_verify_result vr;
        fp4_verify_result_init(&vr);
        ok = s == FP4_OK && fp4_gemm(ctx, &g) == FP4_OK &&
             fp4_gemm_verify(ctx, &g, 0, 1, &vr) == FP4_OK && vr.passed;
        /* and it is the GEMM of the original weights, within NVFP4's error */
        double num = 0, den = 0;
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) {
                double ref = 0;
                for (int k = 0; k < K; k++) ref += (double)a[m * K + k] * w[n * K + k];
                num += (d[m * N + n] - ref) * (d[m * N + n] - ref);
                den += ref * ref;
            }
        ok = ok && num <= 0.25 * den; /* two NVFP4 operands: well within 50% relative */
        tu_case(ok, "layer l's GEMM: verified, rel. error vs the fp32 weights %.3f", den > 0 ? sqrt(num / den) : 0.0);
        free(sfa_l);
        free(want);
        fp4_nvfp4_weight_free(ctx, &lw);
    }
    static const struct {
        const char *layer, *needle;
    } bad[] = {
        {"missing", "no tensor \"missing.weight\""},
        {"no_scale", "no \"no_scale.weight_scale\""},
        {"short_scale", "expected F8_E4M3 [40, 4]"},
        {"neg_ws2", "not a positive finite"},
        {"vec_ws2", "not a scalar"},
        {"dense", "is F32"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fp4_nvfp4_weight lw;
        memset(&lw, 0, sizeof lw);
        lw.struct_size = sizeof lw;
        const fp4_status s = fp4_modelopt_load_weight(ctx, st, bad[i].layer, FP4_SF_LINEAR, &lw);
        const int ok = s == FP4_ERR_INVALID_ARGUMENT && strstr(fp4_last_error(ctx), bad[i].needle) &&
                       lw.q == NULL;
        tu_case(ok, "load refused: %-12s %s", bad[i].layer, ok ? "" : fp4_last_error(ctx));
    }
    fp4_nvfp4_weight lw;
    memset(&lw, 0, sizeof lw);
    tu_case(fp4_modelopt_load_weight(ctx, st, "l", FP4_SF_LINEAR, &lw) == FP4_ERR_INVALID_ARGUMENT,
            "load refuses a struct_size of 0");
    fp4_safetensors_close(st);
    fp4_destroy(ctx);
}

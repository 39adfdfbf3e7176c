/* cpu_simd.c - which kernel set (cpu_kernels.h) the `cpu` backend runs on this machine: the
 * widest the CPU has (checked at run time with __builtin_cpu_supports on x86-64; NEON is part
 * of AArch64), or a narrower one named by FP4GEMM_CPU_SIMD. Also the E4M3 decode table. */
#include "cpu_simd.h"

#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* fp4_e4m3_decode (src/format.h) of every code, as a table: (8 + mant) * 2^(exp - 10), or
 * mant * 2^-9 for exp 0; 0x7F and 0xFF are NaN. */
const float cpu_e4m3_value[256] = {
    0.0f, 0x1p-9f, 0x2p-9f, 0x3p-9f, 0x4p-9f, 0x5p-9f, 0x6p-9f, 0x7p-9f,
    0x8p-9f, 0x9p-9f, 0xap-9f, 0xbp-9f, 0xcp-9f, 0xdp-9f, 0xep-9f, 0xfp-9f,
    0x8p-8f, 0x9p-8f, 0xap-8f, 0xbp-8f, 0xcp-8f, 0xdp-8f, 0xep-8f, 0xfp-8f,
    0x8p-7f, 0x9p-7f, 0xap-7f, 0xbp-7f, 0xcp-7f, 0xdp-7f, 0xep-7f, 0xfp-7f,
    0x8p-6f, 0x9p-6f, 0xap-6f, 0xbp-6f, 0xcp-6f, 0xdp-6f, 0xep-6f, 0xfp-6f,
    0x8p-5f, 0x9p-5f, 0xap-5f, 0xbp-5f, 0xcp-5f, 0xdp-5f, 0xep-5f, 0xfp-5f,
    0x8p-4f, 0x9p-4f, 0xap-4f, 0xbp-4f, 0xcp-4f, 0xdp-4f, 0xep-4f, 0xfp-4f,
    0x8p-3f, 0x9p-3f, 0xap-3f, 0xbp-3f, 0xcp-3f, 0xdp-3f, 0xep-3f, 0xfp-3f,
    0x8p-2f, 0x9p-2f, 0xap-2f, 0xbp-2f, 0xcp-2f, 0xdp-2f, 0xep-2f, 0xfp-2f,
    0x8p-1f, 0x9p-1f, 0xap-1f, 0xbp-1f, 0xcp-1f, 0xdp-1f, 0xep-1f, 0xfp-1f,
    0x8p0f, 0x9p0f, 0xap0f, 0xbp0f, 0xcp0f, 0xdp0f, 0xep0f, 0xfp0f,
    0x8p1f, 0x9p1f, 0xap1f, 0xbp1f, 0xcp1f, 0xdp1f, 0xep1f, 0xfp1f,
    0x8p2f, 0x9p2f, 0xap2f, 0xbp2f, 0xcp2f, 0xdp2f, 0xep2f, 0xfp2f,
    0x8p3f, 0x9p3f, 0xap3f, 0xbp3f, 0xcp3f, 0xdp3f, 0xep3f, 0xfp3f,
    0x8p4f, 0x9p4f, 0xap4f, 0xbp4f, 0xcp4f, 0xdp4f, 0xep4f, 0xfp4f,
    0x8p5f, 0x9p5f, 0xap5f, 0xbp5f, 0xcp5f, 0xdp5f, 0xep5f, NAN,
    -0.0f, -0x1p-9f, -0x2p-9f, -0x3p-9f, -0x4p-9f, -0x5p-9f, -0x6p-9f, -0x7p-9f,
    -0x8p-9f, -0x9p-9f, -0xap-9f, -0xbp-9f, -0xcp-9f, -0xdp-9f, -0xep-9f, -0xfp-9f,
    -0x8p-8f, -0x9p-8f, -0xap-8f, -0xbp-8f, -0xcp-8f, -0xdp-8f, -0xep-8f, -0xfp-8f,
    -0x8p-7f, -0x9p-7f, -0xap-7f, -0xbp-7f, -0xcp-7f, -0xdp-7f, -0xep-7f, -0xfp-7f,
    -0x8p-6f, -0x9p-6f, -0xap-6f, -0xbp-6f, -0xcp-6f, -0xdp-6f, -0xep-6f, -0xfp-6f,
    -0x8p-5f, -0x9p-5f, -0xap-5f, -0xbp-5f, -0xcp-5f, -0xdp-5f, -0xep-5f, -0xfp-5f,
    -0x8p-4f, -0x9p-4f, -0xap-4f, -0xbp-4f, -0xcp-4f, -0xdp-4f, -0xep-4f, -0xfp-4f,
    -0x8p-3f, -0x9p-3f, -0xap-3f, -0xbp-3f, -0xcp-3f, -0xdp-3f, -0xep-3f, -0xfp-3f,
    -0x8p-2f, -0x9p-2f, -0xap-2f, -0xbp-2f, -0xcp-2f, -0xdp-2f, -0xep-2f, -0xfp-2f,
    -0x8p-1f, -0x9p-1f, -0xap-1f, -0xbp-1f, -0xcp-1f, -0xdp-1f, -0xep-1f, -0xfp-1f,
    -0x8p0f, -0x9p0f, -0xap0f, -0xbp0f, -0xcp0f, -0xdp0f, -0xep0f, -0xfp0f,
    -0x8p1f, -0x9p1f, -0xap1f, -0xbp1f, -0xcp1f, -0xdp1f, -0xep1f, -0xfp1f,
    -0x8p2f, -0x9p2f, -0xap2f, -0xbp2f, -0xcp2f, -0xdp2f, -0xep2f, -0xfp2f,
    -0x8p3f, -0x9p3f, -0xap3f, -0xbp3f, -0xcp3f, -0xdp3f, -0xep3f, -0xfp3f,
    -0x8p4f, -0x9p4f, -0xap4f, -0xbp4f, -0xcp4f, -0xdp4f, -0xep4f, -0xfp4f,
    -0x8p5f, -0x9p5f, -0xap5f, -0xbp5f, -0xcp5f, -0xdp5f, -0xep5f, NAN,
};

/* cpu_e2m1_scaled: [s][c] = (value of E2M1 code c) * cpu_e4m3_value[s], built by the compiler.
 * E2M1 code c: sign bit 3, exponent bits 2..1, mantissa bit 0: m / 2 for exponent 0, else
 * (2 + m) * 2^e / 4. The double product is exact (at most 6 significant bits) and so is its
 * conversion to float; NaN scales give NaN rows. */
#define E2M1_ABS(c) ((((c) >> 1) & 3) ? (2 + ((c) & 1)) * (double)(1u << (((c) >> 1) & 3)) / 4.0 \
                                      : ((c) & 1) / 2.0)
#define E2M1_VAL(c) (((c) & 8) ? -E2M1_ABS(c) : E2M1_ABS(c))
#define E4M3_ABS(s) ((((s) >> 3) & 15) ? (8 + ((s) & 7)) * (double)(1u << (((s) >> 3) & 15)) / 1024.0 \
                                       : ((s) & 7) / 512.0)
#define E4M3_VAL(s) (((s) & 0x80) ? -E4M3_ABS(s) : E4M3_ABS(s))
#define SCALED(s, c) ((((s) & 0x7F) == 0x7F) ? NAN : (float)(E2M1_VAL(c) * E4M3_VAL(s)))
#define SCALED_ROW(s)                                                                           \
    {SCALED(s, 0), SCALED(s, 1), SCALED(s, 2), SCALED(s, 3), SCALED(s, 4), SCALED(s, 5),       \
     SCALED(s, 6), SCALED(s, 7), SCALED(s, 8), SCALED(s, 9), SCALED(s, 10), SCALED(s, 11),     \
     SCALED(s, 12), SCALED(s, 13), SCALED(s, 14), SCALED(s, 15)}
#define SCALED_8(s)                                                                             \
    SCALED_ROW(s), SCALED_ROW(s + 1), SCALED_ROW(s + 2), SCALED_ROW(s + 3), SCALED_ROW(s + 4), \
        SCALED_ROW(s + 5), SCALED_ROW(s + 6), SCALED_ROW(s + 7)
#define SCALED_64(s) SCALED_8(s), SCALED_8(s + 8), SCALED_8(s + 16), SCALED_8(s + 24), \
        SCALED_8(s + 32), SCALED_8(s + 40), SCALED_8(s + 48), SCALED_8(s + 56)
_Alignas(64) const float cpu_e2m1_scaled[256][16] = {SCALED_64(0), SCALED_64(64), SCALED_64(128),
                                                     SCALED_64(192)};

/* ASCII strcasecmp (C11 has none). */
static int same_name(const char *a, const char *b) {
    for (;; a++, b++) {
        const int x = (*a >= 'A' && *a <= 'Z') ? *a + 32 : *a;
        const int y = (*b >= 'A' && *b <= 'Z') ? *b + 32 : *b;
        if (x != y) return 0;
        if (!x) return 1;
    }
}

/* The sets this build has, widest first, and whether this CPU can run each. */
static int usable(const cpu_kernels *k) {
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
    __builtin_cpu_init();
    if (k == &cpu_kernels_avx512) return __builtin_cpu_supports("avx512f") != 0;
    if (k == &cpu_kernels_avx2)
        return __builtin_cpu_supports("avx2") != 0 && __builtin_cpu_supports("fma") != 0;
#endif
    return 1;
}

static const cpu_kernels *const k_sets[] = {
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
    &cpu_kernels_avx512,
    &cpu_kernels_avx2,
#endif
#if defined(__aarch64__)
    &cpu_kernels_neon,
#endif
    &cpu_kernels_generic,
};
enum { SET_COUNT = (int)(sizeof k_sets / sizeof k_sets[0]) };

const cpu_kernels *cpu_simd_pick(void) {
    const char *want = getenv("FP4GEMM_CPU_SIMD");
    int asked = want && *want && !same_name(want, "auto");
    for (int i = 0; i < SET_COUNT; i++) {
        if (asked && !same_name(want, k_sets[i]->name)) continue;
        if (usable(k_sets[i])) return k_sets[i];
        fp4_log(FP4_LOG_WARN, "FP4GEMM_CPU_SIMD=%s: this CPU can't run it; using the widest it can",
                want);
        asked = 0;
        i = -1;
    }
    if (asked) {
        fp4_log(FP4_LOG_WARN,
                "FP4GEMM_CPU_SIMD=%s: not one of this build's kernel sets (%s); using the widest "
                "this CPU can run", want, cpu_simd_list());
        for (int i = 0; i < SET_COUNT; i++)
            if (usable(k_sets[i])) return k_sets[i];
    }
    return &cpu_kernels_generic;
}

const char *cpu_simd_list(void) {
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
    return "auto, avx512, avx2, generic";
#elif defined(__aarch64__)
    return "auto, neon, generic";
#else
    return "auto, generic";
#endif
}

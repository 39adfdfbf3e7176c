/* decode_check.c - exhaustive host check that cuda_mma's FP16 byte-permute decode of 8 E2M1 codes
 * (decode_e2m1x8<false>, branch mma-decode) gives the bits of the previous shift-and-mask decode
 * for all 2^32 words; __byte_perm emulated. Build: cc -O2 tests/host/decode_check.c; about
 * 75 s. Not part of the test suite (too slow for CI). */
#include <stdint.h>
#include <stdio.h>
static uint32_t umulhi(uint32_t a, uint32_t b){ return (uint32_t)(((uint64_t)a*b)>>32); }
static void old_dec(uint32_t w, uint32_t p[4]) { /* FP16: kPos 9 */
    const int kPos = 9; const uint32_t kMag = 0x0E000E00u;
    for (int i = 0; i < 4; i++) {
        const uint32_t sign = (w & (0x00080008u << (4 * i))) * (1u << (12 - 4 * i));
        const uint32_t mag = kPos - 4 * i >= 0 ? w * (1u << (kPos - 4 * i >= 0 ? kPos - 4 * i : 0))
                                               : umulhi(w, 1u << (32 - (4 * i - kPos > 0 ? 4 * i - kPos : 1)));
        p[i] = (mag & kMag) | sign;
    }
}
static uint32_t byte_perm(uint32_t x, uint32_t y, uint32_t s) {
    uint64_t v = ((uint64_t)y << 32) | x; uint32_t r = 0;
    for (int n = 0; n < 4; n++) { uint32_t sel = (s >> (4*n)) & 7; r |= (uint32_t)((v >> (8*sel)) & 0xFF) << (8*n); }
    return r;
}
static void new_dec(uint32_t w, uint32_t p[4]) {
    const uint32_t c = 0x0E0E0E0Eu, ws = w & 0x88888888u;
    const uint32_t e = ((w << 1) & c) | ((ws << 4) & ~c);
    const uint32_t o = ((w >> 3) & c) | (ws & ~c);
    p[0] = byte_perm(e, 0, 0x2404); p[1] = byte_perm(o, 0, 0x2404);
    p[2] = byte_perm(e, 0, 0x3414); p[3] = byte_perm(o, 0, 0x3414);
}
int main(void) {
    uint64_t bad = 0;
    for (uint64_t w = 0; w <= 0xFFFFFFFFull; w++) {
        uint32_t a[4], b[4]; old_dec((uint32_t)w, a); new_dec((uint32_t)w, b);
        for (int i = 0; i < 4; i++) if (a[i] != b[i]) { if (bad++ < 5) printf("w=%08llx i=%d old %08x new %08x\n", (unsigned long long)w, i, a[i], b[i]); }
    }
    printf("mismatches %llu\n", (unsigned long long)bad);
    return bad != 0;
}

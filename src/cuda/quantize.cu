/*
 * quantize.cu - the GPU quantizer, dequantizer and global-scale (amax) kernels.
 *
 * Portable CUDA (any GPU from sm_70). All three are memory-bound: one thread per 16-element
 * k-block, 16-byte vector loads and stores of the F32/F16/BF16 side when the pointer and the
 * row stride allow it (checked at run time; scalar accesses otherwise), 8-byte accesses of the
 * packed E2M1 block. Every call is stream-ordered on the caller's stream, allocates nothing and
 * never synchronizes, so it can be captured in a CUDA graph.
 *
 * Bit-exactness with the CPU reference (src/quant_ref.c, docs/format.md's recipes): every
 * float operation below is a single IEEE operation written as an __fmul_rn / __fdiv_rn
 * intrinsic, which nvcc never contracts into an FMA nor replaces by an approximation, whatever
 * the -fmad / -prec-div flags say. NOTE: -ftz=true (implied by -use_fast_math) would flush
 * subnormal operands and results of these intrinsics too; the library is built without it,
 * and subnormal inputs are part of the tested contract. The encodes and decodes are
 * format.h's; the recipes' shared constant and element rule are quant_recipe.h's.
 */
#include "cuda_util.cuh"
#include "quant_recipe.h"
#include "quantize_fast.cuh"

#include <cuda_fp16.h>

#include <float.h>

namespace {

constexpr int kThreads = 256; /* per block, all three kernels */

/* ---- quantize ---------------------------------------------------------------------------- */

struct QuantArgs {
    int64_t rows, k, ld_in;
    const void *in;           /* [rows, ld_in] elements */
    float gs;                 /* the recipe's global scale (gs or ws2), unless gs_ptr */
    const float *gs_ptr;      /* device pointer or NULL */
    uint8_t *out_q;           /* [rows, k/2] bytes */
    uint8_t *out_sf;          /* LINEAR [rows, k/16] or SWIZZLED_128x4 (padded) bytes */
    uint32_t *nonfinite_flag; /* device pointer or NULL */
    bool swizzled;
    bool vec_load;  /* 16-byte loads of the input are aligned */
    bool vec_store; /* 8-byte stores of the packed block are aligned */
};

/* Step 1 of both recipes: the block's largest magnitude (fmaxf ignores NaN). Returns true
 * if an element was NaN or Inf. */
__device__ __forceinline__ bool block_vmax16(const float x[16], float *vmax_out) {
    bool nonfinite = false;
    float vmax = 0.0f;
#pragma unroll
    for (int i = 0; i < 16; i++) {
        nonfinite |= !isfinite(x[i]);
        vmax = fmaxf(vmax, fabsf(x[i]));
    }
    *vmax_out = vmax;
    return nonfinite;
}

/* Recipe flashinfer, steps 2-4 (docs/format.md; fp4_ref_quantize's block_scale_flashinfer):
 * the scale byte and the 8 packed bytes (element 2j in the low nibble of byte j). */
__device__ __forceinline__ void quantize_block16_flashinfer(const float x[16], float vmax,
                                                            float gs, uint8_t *sf_code,
                                                            uint2 *packed) {
    // 2. sf = e4m3(vmax * (gs * fp32(1/6))), 0 for vmax = 0 (even for a NaN or Inf gs)
    const float sf_f32 = vmax == 0.0f ? 0.0f : __fmul_rn(vmax, __fmul_rn(gs, FP4_ONE_SIXTH_F32));
    const uint8_t code = fp4_block_scale_code(sf_f32); /* never NaN: Inf * gs 0 -> 448 */
    const float sf_val = fp4_e4m3_decode(code);
    // 3. out_scale = min(1 / (sf * (1 / gs)), FLT_MAX), 0 for an all-zero block; a zero scale
    //    with vmax != 0 gives 1/0 = Inf -> FLT_MAX (nonzero elements become +-6)
    const float out_scale =
        vmax == 0.0f ? 0.0f
                     : fminf(__fdiv_rn(1.0f, __fmul_rn(sf_val, __fdiv_rn(1.0f, gs))), FLT_MAX);
    // 4. the elements on the E2M1 grid, two per byte
    uint32_t word[2] = {0, 0};
#pragma unroll
    for (int i = 0; i < 16; i++) {
        const uint32_t q = fp4_e2m1_encode(__fmul_rn(x[i], out_scale));
        word[i / 8] |= q << (4 * (i % 8));
    }
    *sf_code = code;
    *packed = make_uint2(word[0], word[1]);
}

/* Recipe modelopt (fp4_ref_quantize's block_scale_modelopt): s = vmax / fp32(6 * ws2), 1.0 for
 * an all-zero block, clamped to [2^-9, 448] (NaN passes), E4M3; then y = x / fp32(sf * ws2). */
__device__ __forceinline__ void quantize_block16_modelopt(const float x[16], float vmax,
                                                          float ws2, uint8_t *sf_code,
                                                          uint2 *packed) {
    // 2. the scale, as ModelOpt's get_weights_scaling_factor and _cast_per_block_scale_to_fp8
    float s = __fdiv_rn(vmax, __fmul_rn(6.0f, ws2));
    if (s == 0.0f) s = 1.0f;
    if (s < 0x1p-9f) s = 0x1p-9f; /* comparisons, not fmaxf/fminf: a NaN must stay NaN */
    if (s > 448.0f) s = 448.0f;
    const uint8_t code = fp4_e4m3_encode(s);
    // 3. one divisor per block; 4. one division per element, sign from y < 0
    const float divisor = __fmul_rn(fp4_e4m3_decode(code), ws2);
    uint32_t word[2] = {0, 0};
#pragma unroll
    for (int i = 0; i < 16; i++) {
        const uint32_t q = fp4_e2m1_encode_modelopt(__fdiv_rn(x[i], divisor));
        word[i / 8] |= q << (4 * (i % 8));
    }
    *sf_code = code;
    *packed = make_uint2(word[0], word[1]);
}

/* The block's largest amax (THREADS threads, each with its own) into *amax_bits: the warp by
 * shuffles, the block's warps through shared memory, then one atomicMax on the bits (amax >= 0,
 * so the float order is the unsigned order). */
template <int THREADS>
__device__ __forceinline__ void block_amax_to_bits(float amax, unsigned *amax_bits) {
    for (int offset = 16; offset > 0; offset /= 2)
        amax = fmaxf(amax, __shfl_xor_sync(0xFFFFFFFFu, amax, offset));
    __shared__ float warp_max[THREADS / 32];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) warp_max[warp] = amax;
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < THREADS / 32; w++) amax = fmaxf(amax, warp_max[w]);
        if (amax > 0.0f) atomicMax(amax_bits, __float_as_uint(amax));
    }
}

/* One thread per (row, k-block) of the scale grid: rows and k-blocks are padded to 128 and 4
 * in the swizzled layout, and the threads of the padding write its zero scale bytes. */
template <fp4_dtype DT, fp4_quant_recipe RECIPE>
__global__ void __launch_bounds__(kThreads) quantize_kernel(QuantArgs p) {
    const int64_t kblocks = p.k / 16;
    const int64_t kb_grid = p.swizzled ? fp4_ceil_div(kblocks, 4) * 4 : kblocks;
    const int64_t row_grid = p.swizzled ? fp4_ceil_div(p.rows, 128) * 128 : p.rows;
    const int64_t total = row_grid * kb_grid;
    const float gs = p.gs_ptr ? *p.gs_ptr : p.gs; /* flashinfer: encode gs; modelopt: ws2 */

    for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (int64_t)gridDim.x * blockDim.x) {
        const int64_t row = idx / kb_grid;
        const int64_t kb = idx - row * kb_grid;
        const int64_t sf_off = fp4_sf_offset_at(p.swizzled, row, kb, p.k);
        if (row >= p.rows || kb >= kblocks) {
            p.out_sf[sf_off] = 0; /* swizzled padding */
            continue;
        }
        // load the block, quantize it
        float x[16];
        fp4_load_block16<DT>(p.in, row * p.ld_in + kb * 16, p.vec_load, x);
        float vmax;
        const bool nonfinite = block_vmax16(x, &vmax);
        uint8_t code;
        uint2 packed;
        if constexpr (RECIPE == FP4_QUANT_RECIPE_MODELOPT)
            quantize_block16_modelopt(x, vmax, gs, &code, &packed);
        else
            quantize_block16_flashinfer(x, vmax, gs, &code, &packed);
        if (nonfinite && p.nonfinite_flag) *p.nonfinite_flag = 1u;

        // store the 8 packed bytes and the scale byte
        uint8_t *q = p.out_q + row * (p.k / 2) + kb * 8; /* 8-aligned if out_q is */
        if (p.vec_store) {
            *reinterpret_cast<uint2 *>(q) = packed;
        } else {
#pragma unroll
            for (int j = 0; j < 8; j++)
                q[j] = (uint8_t)((j < 4 ? packed.x : packed.y) >> (8 * (j % 4)));
        }
        p.out_sf[sf_off] = code;
    }
}

/* ---- dequantize -------------------------------------------------------------------------- */

struct DequantArgs {
    int64_t rows, k, ld_out;
    const uint8_t *q;    /* [rows, k/2] bytes */
    const uint8_t *sf;   /* scales in either layout */
    float gs;            /* encode global scale, unless gs_ptr */
    const float *gs_ptr; /* device pointer or NULL */
    void *out;           /* [rows, ld_out] elements */
    bool swizzled;
    bool vec_load;  /* 8-byte loads of the packed block are aligned */
    bool vec_store; /* 16-byte stores of the output are aligned */
};

/* One thread per (row, k-block): out = e2m1 * e4m3 / gs, as (e2m1 * e4m3) / gs. */
template <fp4_dtype DT>
__global__ void __launch_bounds__(kThreads) dequantize_kernel(DequantArgs p) {
    const int64_t kblocks = p.k / 16;
    const int64_t total = p.rows * kblocks;
    const float gs = p.gs_ptr ? *p.gs_ptr : p.gs;

    for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (int64_t)gridDim.x * blockDim.x) {
        const int64_t row = idx / kblocks;
        const int64_t kb = idx - row * kblocks;
        // load the 8 packed bytes and the scale
        const uint8_t *q = p.q + row * (p.k / 2) + kb * 8;
        uint8_t bytes[8];
        if (p.vec_load) {
            const uint2 v = *reinterpret_cast<const uint2 *>(q);
            memcpy(&bytes[0], &v, 8);
        } else {
#pragma unroll
            for (int j = 0; j < 8; j++) bytes[j] = q[j];
        }
        const int64_t sf_off = fp4_sf_offset_at(p.swizzled, row, kb, p.k);
        const float scale = fp4_e4m3_decode(p.sf[sf_off]);

        // decode, store
        float y[16];
#pragma unroll
        for (int i = 0; i < 16; i++) {
            const uint8_t code = (uint8_t)((bytes[i / 2] >> (4 * (i % 2))) & 0xF);
            y[i] = __fdiv_rn(__fmul_rn(fp4_e2m1_decode(code), scale), gs);
        }
        fp4_store_block16<DT>(p.out, row * p.ld_out + kb * 16, p.vec_store, y);
    }
}

/* ---- global scale ------------------------------------------------------------------------ */

/* amax over |x| into *amax_bits, as the bits of a non-negative float.
 * NOTE: for non-negative floats (+0 .. +Inf) the order of the bit patterns as unsigned
 * integers is the order of the values, so atomicMax on the bits is a float max. NaN is
 * ignored by fmaxf and never reaches the atomic. */
template <fp4_dtype DT>
__global__ void __launch_bounds__(kThreads)
    amax_kernel(int64_t rows, int64_t k, const void *in, int64_t ld_in, bool vec_load,
                unsigned int *amax_bits) {
    const int64_t kblocks = k / 16;
    const int64_t total = rows * kblocks;
    float amax = 0.0f;
    for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (int64_t)gridDim.x * blockDim.x) {
        const int64_t row = idx / kblocks;
        const int64_t kb = idx - row * kblocks;
        float x[16];
        fp4_load_block16<DT>(in, row * ld_in + kb * 16, vec_load, x);
#pragma unroll
        for (int i = 0; i < 16; i++) amax = fmaxf(amax, fabsf(x[i]));
    }
    block_amax_to_bits<kThreads>(amax, amax_bits);
}

/* Turns the amax bits at *gs_inout into gs = 2688 / amax (1 if amax == 0, FLT_MAX if not
 * finite), in place: fp4_global_scale_from_amax on the device. */
__global__ void global_scale_finalize_kernel(float *gs_inout) {
    const float amax = __uint_as_float(*reinterpret_cast<const unsigned int *>(gs_inout));
    *gs_inout = fp4_global_scale_from_amax(amax);
}

/* Turns the amax bits at *ws2_inout into ModelOpt's decode scale ws2 = amax / 2688, in
 * place: fp4_modelopt_ws2_from_amax on the device. */
__global__ void modelopt_ws2_finalize_kernel(float *ws2_inout) {
    const float amax = __uint_as_float(*reinterpret_cast<const unsigned int *>(ws2_inout));
    *ws2_inout = fp4_modelopt_ws2_from_amax(amax);
}

/* ---- fast paths: whole k-blocks per thread, 16-byte accesses, loads one item ahead ------ */

/* The fast kernels run on 16-byte aligned rows (fp4_cuda_vec16_ok) and 8-byte aligned packed
 * rows; the kernels above take every other case. A thread owns an "item" of kItemBlocks(DT)
 * whole k-blocks of one row: 64 bytes of F32/F16/BF16 elements (two blocks of 16-bit
 * elements, one of F32), so the amax of a block needs no other thread, and the loads of its
 * next item are in flight while it computes this one. The launch bounds keep 4 CTAs of 256
 * threads per SM (<= 64 registers), and the grid is one wave of them, each thread walking the
 * items of a [row_grid, items_per_row] grid with a stride, without any division. */
constexpr int kFastThreads = 256;
constexpr int kFastCtasPerSm = 4;

/* CTAs per SM of the quantizer on a GPU of compute capability cc: 3 (<= 80 registers) where
 * 64 registers spill (F16 input, the modelopt recipe's per-element division, and every input
 * on Blackwell, whose compiler needs a few more). The kernel's launch bounds take cc from
 * __CUDA_ARCH__ (FP4_QUANT_CC), the grid from the device's. */
constexpr int quantize_ctas_per_sm(fp4_dtype dt, fp4_quant_recipe recipe, int cc) {
    return dt == FP4_DTYPE_F16 || recipe == FP4_QUANT_RECIPE_MODELOPT || cc >= 100
               ? 3
               : kFastCtasPerSm;
}
#ifdef __CUDA_ARCH__
#define FP4_QUANT_CC (__CUDA_ARCH__ / 10)
#else
#define FP4_QUANT_CC 0
#endif

template <fp4_dtype DT> constexpr int kItemBlocks = DT == FP4_DTYPE_F32 ? 1 : 2;

/* The position of a thread in a [row_grid, per_row] grid of items and its stride through
 * it: start at item blockIdx.x * blockDim.x + threadIdx.x, step by the grid's thread count
 * (stride_rows rows and stride_cols items, host-computed). 32-bit: fast_grid_fits. */
struct ItemGrid {
    int32_t row_grid, per_row, stride_rows, stride_cols;
};

struct ItemPos {
    int32_t row, col;
};

__device__ __forceinline__ ItemPos item_first(const ItemGrid &g) {
    const int32_t idx = (int32_t)(blockIdx.x * blockDim.x + threadIdx.x);
    return ItemPos{idx / g.per_row, idx % g.per_row};
}

__device__ __forceinline__ ItemPos item_next(const ItemGrid &g, ItemPos it) {
    it.col += g.stride_cols;
    it.row += g.stride_rows;
    if (it.col >= g.per_row) {
        it.col -= g.per_row;
        it.row++;
    }
    return it;
}

/* Does a [row_grid, per_row] item grid fit ItemGrid's 32-bit positions (with room for the
 * last step past its end)? The kernels above take the others. */
static bool fast_grid_fits(int64_t row_grid, int64_t per_row) {
    return row_grid >= 1 && per_row >= 1 && row_grid < (1 << 30) && per_row < (1 << 30);
}

static ItemGrid item_grid(int64_t row_grid, int64_t per_row, unsigned blocks) {
    const int64_t stride = (int64_t)blocks * kFastThreads; /* < 2^31: blocks <= SMs * 4 */
    return ItemGrid{(int32_t)row_grid, (int32_t)per_row, (int32_t)(stride / per_row),
                    (int32_t)(stride % per_row)};
}

static unsigned fast_grid_blocks(int64_t items, int sm_count, int ctas_per_sm = kFastCtasPerSm) {
    const int64_t needed = (items + kFastThreads - 1) / kFastThreads;
    const int64_t cap = (int64_t)(sm_count > 0 ? sm_count : 1) * ctas_per_sm;
    return (unsigned)(needed < cap ? (needed > 0 ? needed : 1) : cap);
}

/* Small tensors: quantize 16-bit inputs in items of one k-block (32 bytes) instead of two
 * when one wave of the quantizer's CTAs has a thread for every k-block of the (padded) scale
 * grid. Each thread then does one item, and its chain of dependent instructions after the
 * loads (what a decode-sized call, 1 x 4096 or 16 x 16384, waits for) is half as long. */
static bool quantize_one_block_items(fp4_dtype dt, int64_t row_grid, int64_t kb_grid,
                                     int sm_count, int ctas_per_sm) {
    return dt != FP4_DTYPE_F32 &&
           row_grid * kb_grid <= (int64_t)(sm_count > 0 ? sm_count : 1) * ctas_per_sm * kFastThreads;
}

/* fp4_sf_offset_at(swizzled, row, kb, k) for the 32-bit positions of ItemGrid (row and kb
 * non-negative: shifts and masks are the divisions and remainders), with the bytes of a
 * 128-row band of tiles, kt * 512 (swizzled), or the row's k-blocks (linear), from the host. */
__device__ __forceinline__ int64_t sf_offset_fast(bool swizzled, int32_t row, int32_t kb,
                                                  int64_t row_stride) {
    if (!swizzled) return (int64_t)row * row_stride + kb;
    return (int64_t)(row >> 7) * row_stride +
           (int64_t)(((uint32_t)kb >> 2) * 512u + (uint32_t)(row & 31) * 16u +
                     (uint32_t)((row >> 5) & 3) * 4u + (uint32_t)(kb & 3));
}

/* sf_offset_fast's row_stride. */
static int64_t sf_row_stride(bool swizzled, int64_t k) {
    return swizzled ? fp4_ceil_div(k / 16, 4) * 512 : k / 16;
}

/* The input bytes of item (row, kb0..) of NB k-blocks (64 bytes for kItemBlocks(DT), 32 for
 * one block of 16-bit elements): loads of 16 bytes, zero for k-blocks past the row's end (an
 * odd number of k-blocks) and for rows past the tensor (swizzled padding). */
template <fp4_dtype DT> constexpr int kChunksPerBlock = DT == FP4_DTYPE_F32 ? 4 : 2;

template <fp4_dtype DT, int NB = kItemBlocks<DT>>
__device__ __forceinline__ void load_item64(const uint8_t *base, int64_t row_bytes,
                                            int32_t rows, int32_t kblocks, int32_t row,
                                            int32_t kb0, uint4 v[NB * kChunksPerBlock<DT>]) {
    constexpr int kCpb = kChunksPerBlock<DT>;
    const uint4 *p = reinterpret_cast<const uint4 *>(base + (int64_t)row * row_bytes) +
                     (int64_t)kb0 * kCpb;
#pragma unroll
    for (int c = 0; c < NB * kCpb; c++) {
        const bool valid = row < rows && kb0 + c / kCpb < kblocks;
        v[c] = valid ? __ldg(p + c) : make_uint4(0, 0, 0, 0);
    }
}

/* Block b of an item's 64 bytes as 16 floats (exact conversions; a NaN's payload may differ
 * from format.h's, which no quantizer output depends on: NaN elements are code 0 and are
 * ignored by the amax). */
template <fp4_dtype DT>
__device__ __forceinline__ void item_block_f32(const uint4 v[4], int b, float x[16]) {
    if constexpr (DT == FP4_DTYPE_F32) {
#pragma unroll
        for (int c = 0; c < 4; c++) {
            x[4 * c + 0] = __uint_as_float(v[c].x);
            x[4 * c + 1] = __uint_as_float(v[c].y);
            x[4 * c + 2] = __uint_as_float(v[c].z);
            x[4 * c + 3] = __uint_as_float(v[c].w);
        }
    } else {
#pragma unroll
        for (int c = 0; c < 2; c++) {
            const uint32_t w[4] = {v[2 * b + c].x, v[2 * b + c].y, v[2 * b + c].z,
                                   v[2 * b + c].w};
#pragma unroll
            for (int i = 0; i < 4; i++) {
                if constexpr (DT == FP4_DTYPE_BF16) {
                    x[8 * c + 2 * i] = __uint_as_float(w[i] << 16);
                    x[8 * c + 2 * i + 1] = __uint_as_float(w[i] & 0xFFFF0000u);
                } else {
                    x[8 * c + 2 * i] = __half2float(__ushort_as_half((unsigned short)w[i]));
                    x[8 * c + 2 * i + 1] =
                        __half2float(__ushort_as_half((unsigned short)(w[i] >> 16)));
                }
            }
        }
    }
}

/* ---- fast quantize ---- */

struct FastQuantArgs {
    QuantArgs q;
    ItemGrid grid;
    int64_t kblocks, kb_grid;
    int64_t sf_stride; /* sf_row_stride */
    bool q16;       /* 16-byte stores of an item's two packed blocks are aligned */
    bool sf_pairs;  /* 2-byte stores of an item's two scale bytes are aligned */
};

/* The bits of max |x[i]| over block b of an item, as an unsigned integer that orders as the
 * values (|x| of F32/F16/BF16 does): the max of the 16-bit halves of the words for F16/BF16
 * (__vmaxu2, one instruction on sm_90), widened to the F32 bits of that value. A NaN gives
 * bits above Inf's (0x7F800000). */
template <fp4_dtype DT>
__device__ __forceinline__ uint32_t item_block_max_bits(const uint4 v[4], int b) {
    if constexpr (DT == FP4_DTYPE_F32) {
        uint32_t m = 0;
#pragma unroll
        for (int c = 0; c < 4; c++)
            m = max(max(m, v[c].x & 0x7FFFFFFFu),
                    max(max(v[c].y & 0x7FFFFFFFu, v[c].z & 0x7FFFFFFFu), v[c].w & 0x7FFFFFFFu));
        return m;
    } else {
        uint32_t m2 = 0;
#pragma unroll
        for (int c = 0; c < 2; c++) {
            const uint4 w = v[2 * b + c];
            m2 = __vmaxu2(m2, w.x & 0x7FFF7FFFu);
            m2 = __vmaxu2(m2, w.y & 0x7FFF7FFFu);
            m2 = __vmaxu2(m2, w.z & 0x7FFF7FFFu);
            m2 = __vmaxu2(m2, w.w & 0x7FFF7FFFu);
        }
        const uint32_t m = max(m2 & 0xFFFFu, m2 >> 16);
        if constexpr (DT == FP4_DTYPE_BF16) return m << 16;
        /* F16: Inf and NaN to F32's, finite values converted exactly */
        return m >= 0x7C00u ? 0x7F800000u + (m - 0x7C00u)
                            : __float_as_uint(__half2float(__ushort_as_half((unsigned short)m)));
    }
}

/* The sign bits of 8 packed codes (bits 4i+3) from the 8 16-bit elements in words w (element
 * 2j in the low half of w[j]): 4 byte permutes that replicate each element's sign bit over a
 * byte (prmt's sign mode: selector nibbles 8-15), then 2 masks. In the flashinfer recipe a
 * code's sign is its element's: y = x * out_scale with out_scale in [+0, FLT_MAX]. */
__device__ __forceinline__ uint32_t sign_nibbles8(uint4 w) {
    // bytes of a: the signs of elements 0, 2, 1, 3 as 0x00 / 0xFF; of b: 4, 6, 5, 7
    const uint32_t a = fp4_prmt(w.x, w.y, 0xFBD9u), b = fp4_prmt(w.z, w.w, 0xFBD9u);
    // c: elements 0, 2, 4, 6 (the low nibbles); d: 1, 3, 5, 7 (the high nibbles)
    const uint32_t c = fp4_prmt(a, b, 0x5410u), d = fp4_prmt(a, b, 0x7632u);
    return ((c & 0x0F0F0F0Fu) | (d & 0xF0F0F0F0u)) & 0x88888888u;
}

/* Quantizes block b of an item: the scale byte and the 8 packed bytes, exactly as
 * quantize_block16_flashinfer / _modelopt (the same float operations; the elements'
 * encode is fp4_e2m1_pack8_finite where no element can be NaN, those functions otherwise).
 * Returns true if the block held a NaN or Inf. */
template <fp4_dtype DT, fp4_quant_recipe RECIPE>
__device__ __forceinline__ bool quantize_item_block(const uint4 v[4], int b, float gs,
                                                    float gs_sixth, float gs_inv,
                                                    uint8_t *sf_code, uint2 *packed) {
    float x[16];
    item_block_f32<DT>(v, b, x);
    // 1. vmax from the bits: fmaxf(0, |x[0]|, ..) unless a NaN or Inf is there
    const uint32_t max_bits = item_block_max_bits<DT>(v, b);
    if (max_bits >= 0x7F800000u) { /* a NaN or Inf: the reference functions, as they are */
        float vmax;
        block_vmax16(x, &vmax);
        if constexpr (RECIPE == FP4_QUANT_RECIPE_MODELOPT)
            quantize_block16_modelopt(x, vmax, gs, sf_code, packed);
        else
            quantize_block16_flashinfer(x, vmax, gs, sf_code, packed);
        return true;
    }
    const float vmax = __uint_as_float(max_bits);
    if constexpr (RECIPE == FP4_QUANT_RECIPE_MODELOPT) {
        // as quantize_block16_modelopt
        float s = __fdiv_rn(vmax, __fmul_rn(6.0f, gs));
        if (s == 0.0f) s = 1.0f;
        if (s < 0x1p-9f) s = 0x1p-9f;
        if (s > 448.0f) s = 448.0f;
        const uint8_t code = fp4_e4m3_encode(s);
        const float divisor = __fmul_rn(fp4_e4m3_decode(code), gs);
        if (isnan(divisor) || divisor == 0.0f) { /* x / divisor may be NaN */
            quantize_block16_modelopt(x, vmax, gs, sf_code, packed);
            return false;
        }
        uint32_t word[2] = {0, 0};
#pragma unroll
        for (int i = 0; i < 16; i++) {
            const float y = __fdiv_rn(x[i], divisor);
            const uint32_t q = y == 0.0f ? 0u : fp4_e2m1_encode_finite(y);
            word[i / 8] |= q << (4 * (i % 8));
        }
        *sf_code = code;
        *packed = make_uint2(word[0], word[1]);
    } else {
        // as quantize_block16_flashinfer; out_scale is never NaN and x is finite, so no
        // y is NaN
        // (gs * fp32(1/6) and 1 / gs are the thread's, computed once: gs_sixth, gs_inv;
        // __frcp_rn(z) is 1 / z correctly rounded, as __fdiv_rn(1, z), in fewer instructions)
        const float sf_f32 = vmax == 0.0f ? 0.0f : __fmul_rn(vmax, gs_sixth);
        float sf_val;
        const uint8_t code = (uint8_t)fp4_block_scale_fast(sf_f32, &sf_val);
        const float out_scale =
            vmax == 0.0f ? 0.0f : fminf(__frcp_rn(__fmul_rn(sf_val, gs_inv)), FLT_MAX);
        float y[16];
#pragma unroll
        for (int i = 0; i < 16; i++) y[i] = __fmul_rn(x[i], out_scale);
        *sf_code = code;
        if constexpr (DT == FP4_DTYPE_F32)
            *packed = make_uint2(fp4_e2m1_pack8_finite(y), fp4_e2m1_pack8_finite(y + 8));
        else /* the signs straight from the 16-bit elements */
            *packed = make_uint2(fp4_e2m1_pack8_mag(y) | sign_nibbles8(v[2 * b]),
                                 fp4_e2m1_pack8_mag(y + 8) | sign_nibbles8(v[2 * b + 1]));
    }
    return false;
}

/* Items over the (padded, for the swizzled layout) scale grid: [row_grid, kb_grid / NB]. An
 * item past the tensor's rows or k-blocks writes its zero scale bytes only. NB is
 * kItemBlocks(DT), or 1 for small 16-bit tensors (quantize_one_block_items). */
template <fp4_dtype DT, fp4_quant_recipe RECIPE, int NB = kItemBlocks<DT>>
__global__ void __launch_bounds__(kFastThreads, quantize_ctas_per_sm(DT, RECIPE, FP4_QUANT_CC))
    quantize_fast_kernel(FastQuantArgs a) {
    static_assert(NB == 1 || NB == kItemBlocks<DT>, "items of 1 or kItemBlocks(DT) k-blocks");
    constexpr int kChunks = NB * kChunksPerBlock<DT>; /* 16-byte loads per item */
    const QuantArgs &p = a.q;
    const uint8_t *in = static_cast<const uint8_t *>(p.in);
    const int64_t row_bytes = p.ld_in * (int64_t)sizeof(typename std::conditional<
                                  DT == FP4_DTYPE_F32, float, uint16_t>::type);
    // 32-bit sizes and positions (fast_grid_fits: row_grid and kb_grid < 2^31): the loop's
    // bounds checks are single compares
    const int32_t rows = (int32_t)p.rows, kblocks = (int32_t)a.kblocks, kb_grid = (int32_t)a.kb_grid;
    ItemPos it = item_first(a.grid);
    uint4 cur[kChunks];
    if (it.row < a.grid.row_grid)
        load_item64<DT, NB>(in, row_bytes, rows, kblocks, it.row, it.col * NB, cur);
    const float gs = p.gs_ptr ? *p.gs_ptr : p.gs; /* flashinfer: encode gs; modelopt: ws2 */
    const float gs_sixth = __fmul_rn(gs, FP4_ONE_SIXTH_F32), gs_inv = __fdiv_rn(1.0f, gs);
    bool nonfinite = false;

    while (it.row < a.grid.row_grid) {
        // the next item's loads first, then this item
        const ItemPos nx = item_next(a.grid, it);
        uint4 nxt[kChunks];
        if (nx.row < a.grid.row_grid)
            load_item64<DT, NB>(in, row_bytes, rows, kblocks, nx.row, nx.col * NB, nxt);

        const int32_t kb0 = it.col * NB;
        uint8_t code[NB];
        uint2 packed[NB];
#pragma unroll
        for (int b = 0; b < NB; b++) {
            code[b] = 0;
            packed[b] = make_uint2(0, 0);
            if (it.row < rows && kb0 + b < kblocks)
                nonfinite |= quantize_item_block<DT, RECIPE>(cur, b, gs, gs_sixth, gs_inv,
                                                             &code[b], &packed[b]);
        }
        // the packed blocks of the tensor's rows
        if (it.row < rows) {
            uint8_t *q = p.out_q + (int64_t)it.row * (p.k / 2) + (int64_t)kb0 * 8;
            if (NB == 2 && a.q16 && kb0 + 1 < kblocks) {
                *reinterpret_cast<uint4 *>(q) =
                    make_uint4(packed[0].x, packed[0].y, packed[NB - 1].x, packed[NB - 1].y);
            } else {
#pragma unroll
                for (int b = 0; b < NB; b++)
                    if (kb0 + b < kblocks) reinterpret_cast<uint2 *>(q)[b] = packed[b];
            }
        }
        // the scale bytes (zeros in the swizzled padding)
        const int64_t sf_off = sf_offset_fast(p.swizzled, it.row, kb0, a.sf_stride);
        if (NB == 2 && a.sf_pairs) {
            *reinterpret_cast<uint16_t *>(p.out_sf + sf_off) =
                (uint16_t)(code[0] | (code[NB - 1] << 8));
        } else {
#pragma unroll
            for (int b = 0; b < NB; b++)
                if (kb0 + b < kb_grid) p.out_sf[sf_off + b] = code[b];
        }

        it = nx;
#pragma unroll
        for (int c = 0; c < kChunks; c++) cur[c] = nxt[c];
    }
    if (nonfinite && p.nonfinite_flag) *p.nonfinite_flag = 1u;
}

/* ---- fast dequantize ---- */

struct FastDequantArgs {
    DequantArgs d;
    ItemGrid grid;
    int64_t kblocks;
    int64_t sf_stride; /* sf_row_stride */
    bool q16;      /* 16-byte loads of an item's two packed blocks are aligned */
    bool sf_pairs; /* 2-byte loads of an item's two scale bytes are aligned and in bounds */
};

/* The 16 outputs of one block in the output dtype's bits (16-bit dtypes: two per word). */
template <fp4_dtype DT>
__device__ __forceinline__ void dequant_block(uint2 packed, uint8_t sf, float gs, uint32_t *out) {
    const uint32_t nib[2] = {packed.x, packed.y};
    const float scale = fp4_e4m3_decode(sf);
    float d1, d15;
    if (fp4_dequant_bases(scale, gs, &d1, &d15)) {
        if constexpr (DT == FP4_DTYPE_F32) {
            // one exact multiplication per element (quantize_fast.cuh); y is never NaN
#pragma unroll
            for (int i = 0; i < 16; i++)
                out[i] = __float_as_uint(fp4_dequant_elem((nib[i / 8] >> (4 * (i % 8))) & 0xFu, d1, d15));
        } else {
            // the block's 8 magnitudes (one exact multiplication each, quantize_fast.cuh;
            // never NaN) converted once, then byte permutes pick each element's
            uint32_t lut[4];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const float y0 = fp4_dequant_elem(2 * i, d1, d15);
                const float y1 = fp4_dequant_elem(2 * i + 1, d1, d15);
                if constexpr (DT == FP4_DTYPE_BF16)
                    lut[i] = fp4_f32_to_bf16_nonnan(y0) | (fp4_f32_to_bf16_nonnan(y1) << 16);
                else
                    lut[i] = (uint32_t)fp4_f32_to_f16(y0) | ((uint32_t)fp4_f32_to_f16(y1) << 16);
            }
            fp4_dequant_lut8(nib[0], lut, out);
            fp4_dequant_lut8(nib[1], lut, out + 4);
        }
    } else {
        // dequantize_kernel's arithmetic: (e2m1 * e4m3) / gs per element
#pragma unroll
        for (int i = 0; i < 16; i += 2) {
            const uint32_t w = nib[i / 8] >> (4 * (i % 8));
            const float y0 = __fdiv_rn(__fmul_rn(fp4_e2m1_decode((uint8_t)(w & 0xFu)), scale), gs);
            const float y1 =
                __fdiv_rn(__fmul_rn(fp4_e2m1_decode((uint8_t)((w >> 4) & 0xFu)), scale), gs);
            if constexpr (DT == FP4_DTYPE_F32) {
                out[i] = __float_as_uint(y0);
                out[i + 1] = __float_as_uint(y1);
            } else if constexpr (DT == FP4_DTYPE_BF16) {
                out[i / 2] = (uint32_t)fp4_f32_to_bf16(y0) | ((uint32_t)fp4_f32_to_bf16(y1) << 16);
            } else {
                out[i / 2] = (uint32_t)fp4_f32_to_f16(y0) | ((uint32_t)fp4_f32_to_f16(y1) << 16);
            }
        }
    }
}

/* Items over the tensor: [rows, ceil(kblocks / NB)]; each is NB * 16 elements = 64 bytes of
 * output. The stores go through a per-warp staging tile so that every store instruction of a
 * warp writes 32 consecutive 16-byte chunks (512 contiguous bytes when the warp's 32 items
 * are consecutive in one row, as on any row of k % 1024 == 0): lane l decodes its item into
 * chunks 4l..4l+3 of the tile, then store c of lane l writes chunk 32c + l, that is chunk
 * l % 4 of lane 8c + l / 4's item, to that item's address (its offset shuffled from its lane: any item
 * layout stays correct, only the contiguity depends on it). v2 stored each lane's 64 bytes
 * itself: a store instruction of the warp then wrote 16 bytes into each of 32 sectors, twice
 * the L2 traffic. The loop is warp-uniform (the lanes' items are consecutive, so the warp is
 * done when none has an item); lanes without an item publish a null address. */
template <fp4_dtype DT>
__global__ void __launch_bounds__(kFastThreads, kFastCtasPerSm)
    dequantize_fast_kernel(FastDequantArgs a) {
    constexpr int NB = kItemBlocks<DT>;
    constexpr int kWords = DT == FP4_DTYPE_F32 ? 16 : 8; /* 32-bit words of one block */
    constexpr unsigned kFull = 0xFFFFFFFFu;
    const DequantArgs &p = a.d;
    const int64_t esize = DT == FP4_DTYPE_F32 ? 4 : 2;
    // the warp's tile: 32 items x 4 chunks of 16 bytes, chunk c of lane l's item at
    // 4l + (c ^ ((l >> 1) & 3)): the 8 lanes of a quarter-warp hit 8 distinct 16-byte bank
    // groups on the writes (lanes 2m, 2m+1 differ in bit 2 of the index, the others in the
    // xor) and on the reads (chunks 0-3 of two consecutive lanes' items)
    __shared__ uint4 stage[kFastThreads / 32][32 * 4];
    const uint32_t lane = threadIdx.x & 31u;
    uint4 *const tile = stage[threadIdx.x >> 5];

    // an item's input: NB packed blocks (8 bytes each) and NB scale bytes
    auto load = [&](ItemPos it, uint2 packed[NB], uint8_t sf[NB]) {
        const int64_t kb0 = (int64_t)it.col * NB;
        const uint8_t *q = p.q + (int64_t)it.row * (p.k / 2) + kb0 * 8;
        if (NB == 2 && a.q16 && kb0 + 1 < a.kblocks) {
            const uint4 v = __ldg(reinterpret_cast<const uint4 *>(q));
            packed[0] = make_uint2(v.x, v.y);
            packed[NB - 1] = make_uint2(v.z, v.w);
        } else {
#pragma unroll
            for (int b = 0; b < NB; b++)
                packed[b] = kb0 + b < a.kblocks ? __ldg(reinterpret_cast<const uint2 *>(q) + b)
                                                : make_uint2(0, 0);
        }
        const int64_t sf_off = sf_offset_fast(p.swizzled, it.row, (int32_t)kb0, a.sf_stride);
        if (NB == 2 && a.sf_pairs) { /* kb0 + 1 is at sf_off + 1 in both layouts */
            const unsigned short two = __ldg(reinterpret_cast<const unsigned short *>(p.sf + sf_off));
            sf[0] = (uint8_t)two;
            sf[NB - 1] = (uint8_t)(two >> 8);
        } else {
#pragma unroll
            for (int b = 0; b < NB; b++)
                sf[b] = kb0 + b < a.kblocks ? __ldg(p.sf + sf_off + b) : (uint8_t)0;
        }
    };

    ItemPos it = item_first(a.grid);
    uint2 packed[NB];
    uint8_t sf[NB];
    if (it.row < a.grid.row_grid) load(it, packed, sf);
    const float gs = p.gs_ptr ? *p.gs_ptr : p.gs;

    while (__any_sync(kFull, it.row < a.grid.row_grid)) {
        const ItemPos nx = item_next(a.grid, it);
        uint2 packed_nx[NB];
        uint8_t sf_nx[NB];
        if (nx.row < a.grid.row_grid) load(nx, packed_nx, sf_nx);

        // decode this lane's item into its tile chunks; dst: its output's byte offset from
        // p.out (a multiple of 64), bit 0 set when only its first block exists (an odd number
        // of k-blocks), -1 for no item. (An offset, not an address: the stores stay STG.)
        long long dst = -1;
        if (it.row < a.grid.row_grid) {
            const int64_t kb0 = (int64_t)it.col * NB;
            const int64_t out = ((int64_t)it.row * p.ld_out + kb0 * 16) * esize;
#pragma unroll
            for (int b = 0; b < NB; b++) {
                uint32_t w[kWords];
                if (kb0 + b < a.kblocks) {
                    dequant_block<DT>(packed[b], sf[b], gs, w);
                } else {
#pragma unroll
                    for (int i = 0; i < kWords; i++) w[i] = 0u; /* never stored */
                }
#pragma unroll
                for (int c = 0; c < kWords / 4; c++) {
                    const uint32_t chunk = (uint32_t)(b * (kWords / 4) + c);
                    tile[4u * lane + (chunk ^ ((lane >> 1) & 3u))] =
                        make_uint4(w[4 * c], w[4 * c + 1], w[4 * c + 2], w[4 * c + 3]);
                }
            }
            dst = out | (NB == 2 && kb0 + 1 >= a.kblocks ? 1 : 0);
        }
        __syncwarp(kFull);
        // store c: chunk lane % 4 of lane src = 8c + lane / 4's item
#pragma unroll
        for (uint32_t c = 0; c < 4; c++) {
            const uint32_t src = 8u * c + (lane >> 2), chunk = lane & 3u;
            const long long d = __shfl_sync(kFull, dst, (int)src);
            const uint4 v = tile[4u * src + (chunk ^ ((src >> 1) & 3u))];
            if (d >= 0 && !((d & 1) && chunk >= 2u))
                reinterpret_cast<uint4 *>(static_cast<uint8_t *>(p.out) + (d & ~1ll))[chunk] = v;
        }
        __syncwarp(kFull); /* the tile is rewritten next iteration */

        it = nx;
#pragma unroll
        for (int b = 0; b < NB; b++) {
            packed[b] = packed_nx[b];
            sf[b] = sf_nx[b];
        }
    }
}

/* ---- fast amax ---- */

/* amax_kernel's result (max |x| over the tensor, NaN ignored, atomicMax of the bits) with
 * 64-byte items, loaded one item ahead. */
template <fp4_dtype DT>
__global__ void __launch_bounds__(kFastThreads, kFastCtasPerSm)
    amax_fast_kernel(ItemGrid g, int64_t rows, int64_t kblocks, const void *in, int64_t ld_in,
                     unsigned int *amax_bits) {
    constexpr int NB = kItemBlocks<DT>;
    const uint8_t *base = static_cast<const uint8_t *>(in);
    const int64_t row_bytes = ld_in * (DT == FP4_DTYPE_F32 ? 4 : 2);
    ItemPos it = item_first(g);
    uint4 cur[4];
    if (it.row < g.row_grid) load_item64<DT>(base, row_bytes, (int32_t)rows, (int32_t)kblocks, it.row, it.col * NB, cur);
    float amax = 0.0f;
    while (it.row < g.row_grid) {
        const ItemPos nx = item_next(g, it);
        uint4 nxt[4];
        if (nx.row < g.row_grid) load_item64<DT>(base, row_bytes, (int32_t)rows, (int32_t)kblocks, nx.row, nx.col * NB, nxt);
        // blocks past the row's end were loaded as zeros: they do not change the max
#pragma unroll
        for (int b = 0; b < NB; b++) {
            float x[16];
            item_block_f32<DT>(cur, b, x);
#pragma unroll
            for (int i = 0; i < 16; i++) amax = fmaxf(amax, fabsf(x[i]));
        }
        it = nx;
#pragma unroll
        for (int c = 0; c < 4; c++) cur[c] = nxt[c];
    }
    block_amax_to_bits<kFastThreads>(amax, amax_bits);
}

/* Launches quantize_fast_kernel<DT, recipe, NB>. */
template <fp4_dtype DT, int NB>
void launch_quantize_fast(bool modelopt, unsigned blocks, cudaStream_t stream,
                          const FastQuantArgs &a) {
    if (modelopt)
        quantize_fast_kernel<DT, FP4_QUANT_RECIPE_MODELOPT, NB><<<blocks, kFastThreads, 0, stream>>>(a);
    else
        quantize_fast_kernel<DT, FP4_QUANT_RECIPE_FLASHINFER, NB><<<blocks, kFastThreads, 0, stream>>>(a);
}

/* Max-accumulates max |x| of one [rows, k] tensor into *amax_bits (amax_kernel). */
fp4_status launch_amax(fp4_ctx *ctx, int64_t rows, int64_t k, fp4_dtype in_dtype, const void *in,
                       int64_t ld_in, unsigned int *amax_bits, cudaStream_t stream) {
    const bool vec = fp4_cuda_vec16_ok(in, ld_in, fp4_dtype_size(in_dtype));
    const int64_t kblocks = k / 16;
    fp4_cuda_clear_last_error();
    const bool known = fp4_dispatch_float_dtype(in_dtype, [&](auto dt) {
        constexpr fp4_dtype DT = decltype(dt)::value;
        const int64_t per_row = fp4_ceil_div(kblocks, kItemBlocks<DT>);
        if (vec && fast_grid_fits(rows, per_row)) { /* amax_fast_kernel: 64-byte items */
            const unsigned blocks = fast_grid_blocks(rows * per_row, ctx->info.sm_count);
            amax_fast_kernel<DT><<<blocks, kFastThreads, 0, stream>>>(
                item_grid(rows, per_row, blocks), rows, kblocks, in, ld_in, amax_bits);
        } else {
            const unsigned blocks =
                fp4_cuda_grid_blocks(rows * kblocks, kThreads, ctx->info.sm_count);
            amax_kernel<DT><<<blocks, kThreads, 0, stream>>>(rows, k, in, ld_in, vec, amax_bits);
        }
    });
    if (!known) return FP4_FAIL(ctx, FP4_ERR_INTERNAL, "amax: in_dtype %d", (int)in_dtype);
    FP4_CUDA_CHECK_LAUNCH(ctx, "amax kernel launch");
    return FP4_OK;
}

} // namespace

/* ---- host entry points ----------------------------------------------------------------- */

extern "C" fp4_status fp4_cuda_quantize(fp4_ctx *ctx, const fp4_quant_desc *desc) {
    fp4_status st = fp4_cuda_set_device(ctx);
    if (st != FP4_OK) return st;

    QuantArgs p;
    p.rows = desc->rows;
    p.k = desc->k;
    p.ld_in = desc->ld_in;
    p.in = desc->in;
    p.gs = desc->global_scale;
    p.gs_ptr = desc->global_scale_ptr;
    p.out_q = static_cast<uint8_t *>(desc->out_q);
    p.out_sf = static_cast<uint8_t *>(desc->out_sf);
    p.nonfinite_flag = desc->nonfinite_flag;
    p.swizzled = desc->sf_layout == FP4_SF_SWIZZLED_128x4;
    p.vec_load = fp4_cuda_vec16_ok(desc->in, desc->ld_in, fp4_dtype_size(desc->in_dtype));
    p.vec_store = ((uintptr_t)desc->out_q % 8) == 0;

    /* the (padded) scale grid */
    const int64_t kblocks = p.k / 16;
    const int64_t row_grid = p.swizzled ? fp4_ceil_div(p.rows, 128) * 128 : p.rows;
    const int64_t kb_grid = p.swizzled ? fp4_ceil_div(kblocks, 4) * 4 : kblocks;
    cudaStream_t stream = fp4_cuda_stream(desc->stream);

    fp4_cuda_clear_last_error();
    const bool modelopt = desc->recipe == FP4_QUANT_RECIPE_MODELOPT;
    const bool known = fp4_dispatch_float_dtype(desc->in_dtype, [&](auto dt) {
        constexpr fp4_dtype DT = decltype(dt)::value;
        const int ctas = quantize_ctas_per_sm(DT, desc->recipe, ctx->info.compute_capability);
        const bool one_block =
            quantize_one_block_items(DT, row_grid, kb_grid, ctx->info.sm_count, ctas);
        const int64_t per_row = fp4_ceil_div(kb_grid, one_block ? 1 : kItemBlocks<DT>);
        if (p.vec_load && p.vec_store && fast_grid_fits(row_grid, per_row)) {
            /* quantize_fast_kernel: items of whole k-blocks over the scale grid */
            FastQuantArgs a;
            a.q = p;
            a.kblocks = kblocks;
            a.kb_grid = kb_grid;
            a.sf_stride = sf_row_stride(p.swizzled, p.k);
            a.q16 = ((uintptr_t)p.out_q % 16) == 0 && (p.k / 2) % 16 == 0;
            a.sf_pairs = ((uintptr_t)p.out_sf % 2) == 0 && (p.swizzled || kblocks % 2 == 0);
            const unsigned blocks = fast_grid_blocks(row_grid * per_row, ctx->info.sm_count, ctas);
            a.grid = item_grid(row_grid, per_row, blocks);
            if (one_block)
                launch_quantize_fast<DT, 1>(modelopt, blocks, stream, a);
            else
                launch_quantize_fast<DT, kItemBlocks<DT>>(modelopt, blocks, stream, a);
            return;
        }
        /* one thread per entry of the (padded) scale grid */
        const unsigned blocks =
            fp4_cuda_grid_blocks(row_grid * kb_grid, kThreads, ctx->info.sm_count);
        if (modelopt)
            quantize_kernel<DT, FP4_QUANT_RECIPE_MODELOPT><<<blocks, kThreads, 0, stream>>>(p);
        else
            quantize_kernel<DT, FP4_QUANT_RECIPE_FLASHINFER><<<blocks, kThreads, 0, stream>>>(p);
    });
    if (!known)
        return FP4_FAIL(ctx, FP4_ERR_INTERNAL, "fp4_cuda_quantize: in_dtype %d",
                        (int)desc->in_dtype);
    FP4_CUDA_CHECK_LAUNCH(ctx, "quantize kernel launch");
    return FP4_OK;
}

extern "C" fp4_status fp4_cuda_dequantize(fp4_ctx *ctx, const fp4_dequant_desc *desc) {
    fp4_status st = fp4_cuda_set_device(ctx);
    if (st != FP4_OK) return st;

    DequantArgs p;
    p.rows = desc->rows;
    p.k = desc->k;
    p.ld_out = desc->ld_out;
    p.q = static_cast<const uint8_t *>(desc->q);
    p.sf = static_cast<const uint8_t *>(desc->sf);
    p.gs = desc->global_scale;
    p.gs_ptr = desc->global_scale_ptr;
    p.out = desc->out;
    p.swizzled = desc->sf_layout == FP4_SF_SWIZZLED_128x4;
    p.vec_load = ((uintptr_t)desc->q % 8) == 0;
    p.vec_store = fp4_cuda_vec16_ok(desc->out, desc->ld_out, fp4_dtype_size(desc->out_dtype));

    const int64_t kblocks = p.k / 16;
    cudaStream_t stream = fp4_cuda_stream(desc->stream);

    fp4_cuda_clear_last_error();
    const bool known = fp4_dispatch_float_dtype(desc->out_dtype, [&](auto dt) {
        constexpr fp4_dtype DT = decltype(dt)::value;
        const int64_t per_row = fp4_ceil_div(kblocks, kItemBlocks<DT>);
        if (p.vec_load && p.vec_store && fast_grid_fits(p.rows, per_row)) {
            /* dequantize_fast_kernel: items of whole k-blocks, 16-byte stores */
            FastDequantArgs a;
            a.d = p;
            a.kblocks = kblocks;
            a.sf_stride = sf_row_stride(p.swizzled, p.k);
            a.q16 = ((uintptr_t)p.q % 16) == 0 && (p.k / 2) % 16 == 0;
            a.sf_pairs = ((uintptr_t)p.sf % 2) == 0 && (p.swizzled || kblocks % 2 == 0);
            const unsigned blocks = fast_grid_blocks(p.rows * per_row, ctx->info.sm_count);
            a.grid = item_grid(p.rows, per_row, blocks);
            dequantize_fast_kernel<DT><<<blocks, kFastThreads, 0, stream>>>(a);
            return;
        }
        const unsigned blocks = fp4_cuda_grid_blocks(p.rows * kblocks, kThreads, ctx->info.sm_count);
        dequantize_kernel<DT><<<blocks, kThreads, 0, stream>>>(p);
    });
    if (!known)
        return FP4_FAIL(ctx, FP4_ERR_INTERNAL, "fp4_cuda_dequantize: out_dtype %d",
                        (int)desc->out_dtype);
    FP4_CUDA_CHECK_LAUNCH(ctx, "dequantize kernel launch");
    return FP4_OK;
}

extern "C" fp4_status fp4_cuda_global_scale(fp4_ctx *ctx, int64_t rows, int64_t k,
                                            fp4_dtype in_dtype, const void *in, int64_t ld_in,
                                            float *gs_out, struct CUstream_st *stream_in) {
    fp4_status st = fp4_cuda_set_device(ctx);
    if (st != FP4_OK) return st;
    cudaStream_t stream = fp4_cuda_stream(stream_in);
    unsigned int *amax_bits = reinterpret_cast<unsigned int *>(gs_out);

    // amax = 0; amax = max |x| (atomics); gs = f(amax), in place: no workspace
    FP4_CUDA_TRY(ctx, cudaMemsetAsync(gs_out, 0, sizeof(float), stream),
                 "cudaMemsetAsync(gs_out)");
    if ((st = launch_amax(ctx, rows, k, in_dtype, in, ld_in, amax_bits, stream)) != FP4_OK)
        return st;
    global_scale_finalize_kernel<<<1, 1, 0, stream>>>(gs_out);
    FP4_CUDA_CHECK_LAUNCH(ctx, "global-scale finalize kernel launch");
    return FP4_OK;
}

extern "C" fp4_status fp4_cuda_modelopt_global_scale(fp4_ctx *ctx, const fp4_tensor_ref *tensors,
                                                     int count, float *ws2_out,
                                                     struct CUstream_st *stream_in) {
    fp4_status st = fp4_cuda_set_device(ctx);
    if (st != FP4_OK) return st;
    cudaStream_t stream = fp4_cuda_stream(stream_in);
    unsigned int *amax_bits = reinterpret_cast<unsigned int *>(ws2_out);

    // amax = 0; amax = max over the group of max |x|; ws2 = amax / 2688, in place
    FP4_CUDA_TRY(ctx, cudaMemsetAsync(ws2_out, 0, sizeof(float), stream),
                 "cudaMemsetAsync(ws2_out)");
    for (int i = 0; i < count; i++) {
        const fp4_tensor_ref &t = tensors[i];
        st = launch_amax(ctx, t.rows, t.k, t.dtype, t.data, t.ld ? t.ld : t.k, amax_bits, stream);
        if (st != FP4_OK) return st;
    }
    modelopt_ws2_finalize_kernel<<<1, 1, 0, stream>>>(ws2_out);
    FP4_CUDA_CHECK_LAUNCH(ctx, "modelopt ws2 finalize kernel launch");
    return FP4_OK;
}

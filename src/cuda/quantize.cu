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
    // reduce the warp, then the block's warps, then one atomic per block
    for (int offset = 16; offset > 0; offset /= 2)
        amax = fmaxf(amax, __shfl_xor_sync(0xFFFFFFFFu, amax, offset));
    __shared__ float warp_max[kThreads / 32];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) warp_max[warp] = amax;
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < kThreads / 32; w++) amax = fmaxf(amax, warp_max[w]);
        if (amax > 0.0f) atomicMax(amax_bits, __float_as_uint(amax));
    }
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

/* Max-accumulates max |x| of one [rows, k] tensor into *amax_bits (amax_kernel). */
fp4_status launch_amax(fp4_ctx *ctx, int64_t rows, int64_t k, fp4_dtype in_dtype, const void *in,
                       int64_t ld_in, unsigned int *amax_bits, cudaStream_t stream) {
    const bool vec = fp4_cuda_vec16_ok(in, ld_in, fp4_dtype_size(in_dtype));
    const unsigned blocks = fp4_cuda_grid_blocks(rows * (k / 16), kThreads, ctx->info.sm_count);
    fp4_cuda_clear_last_error();
    const bool known = fp4_dispatch_float_dtype(in_dtype, [&](auto dt) {
        amax_kernel<decltype(dt)::value><<<blocks, kThreads, 0, stream>>>(rows, k, in, ld_in, vec,
                                                                          amax_bits);
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

    /* one thread per entry of the (padded) scale grid */
    const int64_t kblocks = p.k / 16;
    const int64_t row_grid = p.swizzled ? fp4_ceil_div(p.rows, 128) * 128 : p.rows;
    const int64_t kb_grid = p.swizzled ? fp4_ceil_div(kblocks, 4) * 4 : kblocks;
    const int64_t work = row_grid * kb_grid;
    const unsigned blocks = fp4_cuda_grid_blocks(work, kThreads, ctx->info.sm_count);
    cudaStream_t stream = fp4_cuda_stream(desc->stream);

    fp4_cuda_clear_last_error();
    const bool modelopt = desc->recipe == FP4_QUANT_RECIPE_MODELOPT;
    const bool known = fp4_dispatch_float_dtype(desc->in_dtype, [&](auto dt) {
        constexpr fp4_dtype DT = decltype(dt)::value;
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

    const unsigned blocks =
        fp4_cuda_grid_blocks(p.rows * (p.k / 16), kThreads, ctx->info.sm_count);
    cudaStream_t stream = fp4_cuda_stream(desc->stream);

    fp4_cuda_clear_last_error();
    const bool known = fp4_dispatch_float_dtype(desc->out_dtype, [&](auto dt) {
        dequantize_kernel<decltype(dt)::value><<<blocks, kThreads, 0, stream>>>(p);
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

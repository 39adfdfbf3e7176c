/*
 * quantize.cu - the GPU quantizer, dequantizer and global-scale (amax) kernels.
 *
 * Portable CUDA (any GPU from sm_70). All three are memory-bound: one thread per 16-element
 * k-block, 16-byte vector loads and stores of the F32/F16/BF16 side when the pointer and the
 * row stride allow it (checked at run time; scalar accesses otherwise), 8-byte accesses of the
 * packed E2M1 block. Every call is stream-ordered on the caller's stream, allocates nothing and
 * never synchronizes, so it can be captured in a CUDA graph.
 *
 * Bit-exactness with the CPU reference (src/quant_ref.c, NVFP4.md's exact-math steps): every
 * float operation below is a single IEEE operation written as an __fmul_rn / __fdiv_rn
 * intrinsic, which nvcc never contracts into an FMA nor replaces by an approximation, whatever
 * the -fmad / -prec-div / -use_fast_math flags say. The encodes and decodes are format.h's.
 */
#include "cuda_util.cuh"

#include <float.h>

namespace {

constexpr int kThreads = 256; /* per block, all three kernels */

/* ---- quantize ---------------------------------------------------------------------------- */

struct QuantArgs {
    int64_t rows, k, ld_in;
    const void *in;           /* [rows, ld_in] elements */
    float gs;                 /* encode global scale, unless gs_ptr */
    const float *gs_ptr;      /* device pointer or NULL */
    uint8_t *out_q;           /* [rows, k/2] bytes */
    uint8_t *out_sf;          /* LINEAR [rows, k/16] or SWIZZLED_128x4 (padded) bytes */
    uint32_t *nonfinite_flag; /* device pointer or NULL */
    bool swizzled;
    bool vec_load;  /* 16-byte loads of the input are aligned */
    bool vec_store; /* 8-byte stores of the packed block are aligned */
};

/* NVFP4.md steps 1-4 for one block of 16 values: the scale byte and the 8 packed bytes
 * (element 2j in the low nibble of byte j). Returns true if an element was NaN or Inf. */
__device__ __forceinline__ bool quantize_block16(const float x[16], float gs, uint8_t *sf_code,
                                                 uint2 *packed) {
    /* 1. the block's largest magnitude (fmaxf ignores NaN) */
    bool nonfinite = false;
    float vmax = 0.0f;
#pragma unroll
    for (int i = 0; i < 16; i++) {
        nonfinite |= !isfinite(x[i]);
        vmax = fmaxf(vmax, fabsf(x[i]));
    }
    /* 2. the block scale, rounded to E4M3: sf_f32 = vmax * (gs / 6) */
    const float sf_f32 = __fmul_rn(vmax, __fdiv_rn(gs, 6.0f));
    const uint8_t code = fp4_e4m3_encode(sf_f32);
    const float sf_val = fp4_e4m3_decode(code);
    /* 3. out_scale = 1 / (sf * (1 / gs)), 0 for a zero scale, FLT_MAX if not finite */
    float out_scale =
        sf_val == 0.0f ? 0.0f : __fdiv_rn(1.0f, __fmul_rn(sf_val, __fdiv_rn(1.0f, gs)));
    if (!isfinite(out_scale)) out_scale = FLT_MAX;
    /* 4. the elements on the E2M1 grid, two per byte */
    uint32_t word[2] = {0, 0};
#pragma unroll
    for (int i = 0; i < 16; i++) {
        const uint32_t q = fp4_e2m1_encode(__fmul_rn(x[i], out_scale));
        word[i / 8] |= q << (4 * (i % 8));
    }
    *sf_code = code;
    *packed = make_uint2(word[0], word[1]);
    return nonfinite;
}

/* One thread per (row, k-block) of the scale grid: rows and k-blocks are padded to 128 and 4
 * in the swizzled layout, and the threads of the padding write its zero scale bytes. */
template <fp4_dtype DT>
__global__ void __launch_bounds__(kThreads) quantize_kernel(QuantArgs p) {
    const int64_t kblocks = p.k / 16;
    const int64_t kb_grid = p.swizzled ? fp4_ceil_div(kblocks, 4) * 4 : kblocks;
    const int64_t row_grid = p.swizzled ? fp4_ceil_div(p.rows, 128) * 128 : p.rows;
    const int64_t total = row_grid * kb_grid;
    const float gs = p.gs_ptr ? *p.gs_ptr : p.gs;

    for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (int64_t)gridDim.x * blockDim.x) {
        const int64_t row = idx / kb_grid;
        const int64_t kb = idx - row * kb_grid;
        const int64_t sf_off = p.swizzled ? fp4_sf_offset_swizzled(row, kb, p.k)
                                          : fp4_sf_offset_linear(row, kb, p.k);
        if (row >= p.rows || kb >= kblocks) {
            p.out_sf[sf_off] = 0; /* swizzled padding */
            continue;
        }
        // load the block, quantize it
        float x[16];
        fp4_load_block16<DT>(p.in, row * p.ld_in + kb * 16, p.vec_load, x);
        uint8_t code;
        uint2 packed;
        const bool nonfinite = quantize_block16(x, gs, &code, &packed);
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
        const int64_t sf_off = p.swizzled ? fp4_sf_offset_swizzled(row, kb, p.k)
                                          : fp4_sf_offset_linear(row, kb, p.k);
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
    float gs = __fdiv_rn(448.0f * 6.0f, amax);
    if (amax == 0.0f) gs = 1.0f;
    if (!isfinite(gs)) gs = FLT_MAX;
    *gs_inout = gs;
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
    const bool known = fp4_dispatch_float_dtype(desc->in_dtype, [&](auto dt) {
        quantize_kernel<decltype(dt)::value><<<blocks, kThreads, 0, stream>>>(p);
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
    const bool vec = fp4_cuda_vec16_ok(in, ld_in, fp4_dtype_size(in_dtype));
    const unsigned blocks = fp4_cuda_grid_blocks(rows * (k / 16), kThreads, ctx->info.sm_count);
    unsigned int *amax_bits = reinterpret_cast<unsigned int *>(gs_out);

    // amax = 0; amax = max |x| (atomics); gs = f(amax), in place: no workspace
    FP4_CUDA_TRY(ctx, cudaMemsetAsync(gs_out, 0, sizeof(float), stream),
                 "cudaMemsetAsync(gs_out)");
    fp4_cuda_clear_last_error();
    const bool known = fp4_dispatch_float_dtype(in_dtype, [&](auto dt) {
        amax_kernel<decltype(dt)::value><<<blocks, kThreads, 0, stream>>>(rows, k, in, ld_in, vec,
                                                                          amax_bits);
    });
    if (!known)
        return FP4_FAIL(ctx, FP4_ERR_INTERNAL, "fp4_cuda_global_scale: in_dtype %d", (int)in_dtype);
    FP4_CUDA_CHECK_LAUNCH(ctx, "amax kernel launch");
    global_scale_finalize_kernel<<<1, 1, 0, stream>>>(gs_out);
    FP4_CUDA_CHECK_LAUNCH(ctx, "global-scale finalize kernel launch");
    return FP4_OK;
}

/*
 * cuda_util.cuh - what the CUDA files of fp4gemm share: checking CUDA calls into an
 * fp4_status, the launch grid of the memory-bound kernels, and loading or storing one
 * 16-element k-block of F32/F16/BF16 values (16-byte vectors when aligned, scalars otherwise).
 *
 * Device code here is portable: any GPU from sm_70, no arch-specific instructions.
 */
#ifndef FP4_CUDA_UTIL_CUH
#define FP4_CUDA_UTIL_CUH

#include "format.h"
#include "internal.h"

#include <cuda_runtime.h>

#include <stdint.h>
#include <string.h>

#include <type_traits>

/* ---- host: CUDA errors -> fp4_status -------------------------------------------------- */

static inline fp4_status fp4_cuda_status(cudaError_t err) {
    return err == cudaErrorMemoryAllocation ? FP4_ERR_OUT_OF_MEMORY : FP4_ERR_CUDA;
}

/* Runs a CUDA runtime call; on failure records "what: <CUDA error string>" in ctx and returns
 * FP4_ERR_CUDA (FP4_ERR_OUT_OF_MEMORY for an allocation failure) from the calling function.
 * The runtime's last-error slot is cleared so that a later launch check does not see it. */
#define FP4_CUDA_TRY(ctx, call, what)                                                         \
    do {                                                                                      \
        const cudaError_t fp4_err_ = (call);                                                  \
        if (fp4_err_ != cudaSuccess) {                                                        \
            (void)cudaGetLastError();                                                         \
            return FP4_FAIL((ctx), fp4_cuda_status(fp4_err_), "%s: %s", (what),               \
                            cudaGetErrorString(fp4_err_));                                    \
        }                                                                                     \
    } while (0)

/* NOTE: a <<<>>> launch reports its errors only through cudaGetLastError, which also returns
 * a non-sticky error left behind by any earlier runtime call of the process (the user's
 * included). Clear the slot right before each launch so that the check after it blames the
 * launch only for its own failure. A sticky error (a fault in an earlier kernel) survives the
 * clearing and makes the launch fail, which is then reported, as it should be. */
static inline void fp4_cuda_clear_last_error(void) { (void)cudaGetLastError(); }

/* A backend's per-context workspace: `bytes` of device memory on the current device, the first
 * `zero_bytes` of it zeroed (split-K counters) on a stream of its own, so that creating a
 * context waits for nobody else's work. On failure nothing stays allocated, *out is NULL and
 * the CUDA error is cleared. cuda_device.cu. */
cudaError_t fp4_cuda_workspace_alloc(int64_t bytes, int64_t zero_bytes, void **out);
/* Frees what fp4_cuda_workspace_alloc gave (NULL: nothing), clearing any error it leaves. */
void fp4_cuda_workspace_free(void *ws);

/* cudaSuccess if this build has an image (SASS, or PTX to JIT) of `kernel` for the current
 * device (sm_`cc`); else the (not sticky, cleared) error, logged at info level naming
 * `backend`. A backend's init probes one of its kernels this way. */
cudaError_t fp4_cuda_kernel_image(const void *kernel, const char *backend, int cc);
#define FP4_CUDA_CHECK_LAUNCH(ctx, what) FP4_CUDA_TRY((ctx), cudaGetLastError(), (what))

/* cudaStream_t is `struct CUstream_st *`: the public header's type is the same pointer. */
static inline cudaStream_t fp4_cuda_stream(struct CUstream_st *stream) { return stream; }

/* Blocks for a grid-stride kernel over `work` items with `threads` threads per block: enough
 * to fill the device a few times over, never more than the work needs. */
static inline unsigned fp4_cuda_grid_blocks(int64_t work, int threads, int sm_count) {
    const int64_t needed = (work + threads - 1) / threads;
    const int64_t cap = (int64_t)(sm_count > 0 ? sm_count : 1) * 32;
    const int64_t blocks = needed < cap ? needed : cap;
    return (unsigned)(blocks > 0 ? blocks : 1);
}

/* May a kernel use 16-byte vector accesses on the k-blocks of a [rows, ld] array of
 * `elem_size`-byte elements? Each k-block starts at base + (row*ld + kb*16) * elem_size, so the
 * base and the row stride in bytes must both be multiples of 16. */
static inline int fp4_cuda_vec16_ok(const void *base, int64_t ld, int64_t elem_size) {
    return ((uintptr_t)base % 16) == 0 && (ld * elem_size) % 16 == 0;
}

/* Calls f(std::integral_constant<fp4_dtype, DT>()) with DT = dtype, for F32, F16 and BF16, so
 * that one launch line serves each instantiation of a kernel template. False for others. */
template <class F>
static inline bool fp4_dispatch_float_dtype(fp4_dtype dtype, F &&f) {
    switch (dtype) {
    case FP4_DTYPE_F32: f(std::integral_constant<fp4_dtype, FP4_DTYPE_F32>()); return true;
    case FP4_DTYPE_F16: f(std::integral_constant<fp4_dtype, FP4_DTYPE_F16>()); return true;
    case FP4_DTYPE_BF16: f(std::integral_constant<fp4_dtype, FP4_DTYPE_BF16>()); return true;
    default: return false;
    }
}

/* ---- device: split-K arrival ------------------------------------------------------------ */

/* One CTA's arrival at a split-K tile's counter, by one thread, after a barrier that ordered
 * every thread's partial-sum stores before it: returns the counter's old value (the last of
 * `splits` arrivals sees splits - 1; the counter wraps back to 0 then, ready for the next
 * launch, as atomicInc). The atomic is acq_rel at GPU scope: it releases the stores the barrier
 * ordered before it (release is cumulative), and the last arrival acquires every earlier one's;
 * a barrier after it passes that on to the threads that read the partials. This is the PTX
 * memory model's pattern (CUTLASS's semaphore uses it): one GPU-scope fence and the atomic,
 * where __threadfence (a fence.sc: MEMBAR.SC.GPU) before and after were two. (ncu on an H200
 * counted 9-12% of cuda_wgmma's stall samples at small M waiting behind those fences, but the
 * change measured no difference in time: docs/PERF.md.) */
__device__ __forceinline__ unsigned fp4_splitk_arrive(unsigned *counter, unsigned splits) {
    unsigned old;
    asm volatile("atom.acq_rel.gpu.global.inc.u32 %0, [%1], %2;\n"
                 : "=r"(old)
                 : "l"(counter), "r"(splits - 1)
                 : "memory");
    return old;
}

/* ---- device: one k-block of 16 F32/F16/BF16 values ------------------------------------ */

/* Loads elements [offset, offset + 16) of an F32/F16/BF16 array as float (exactly).
 * vec: the address is 16-byte aligned (see fp4_cuda_vec16_ok). */
template <fp4_dtype DT>
__device__ __forceinline__ void fp4_load_block16(const void *base, int64_t offset, bool vec,
                                                 float x[16]) {
    static_assert(DT == FP4_DTYPE_F32 || DT == FP4_DTYPE_F16 || DT == FP4_DTYPE_BF16,
                  "F32, F16 or BF16 only");
    if constexpr (DT == FP4_DTYPE_F32) {
        const float *p = static_cast<const float *>(base) + offset;
        if (vec) {
            const float4 *p4 = reinterpret_cast<const float4 *>(p);
#pragma unroll
            for (int v = 0; v < 4; v++) {
                const float4 f = p4[v];
                x[4 * v + 0] = f.x;
                x[4 * v + 1] = f.y;
                x[4 * v + 2] = f.z;
                x[4 * v + 3] = f.w;
            }
        } else {
#pragma unroll
            for (int i = 0; i < 16; i++) x[i] = p[i];
        }
    } else {
        const uint16_t *p = static_cast<const uint16_t *>(base) + offset;
        uint16_t h[16];
        if (vec) {
            const uint4 *p4 = reinterpret_cast<const uint4 *>(p);
            const uint4 v0 = p4[0], v1 = p4[1];
            memcpy(&h[0], &v0, 16);
            memcpy(&h[8], &v1, 16);
        } else {
#pragma unroll
            for (int i = 0; i < 16; i++) h[i] = p[i];
        }
#pragma unroll
        for (int i = 0; i < 16; i++)
            x[i] = DT == FP4_DTYPE_BF16 ? fp4_bf16_to_f32(h[i]) : fp4_f16_to_f32(h[i]);
    }
}

/* Converts one float to F32/F16/BF16 bits with round-to-nearest-even (format.h, so the GPU
 * rounds exactly as the CPU reference does). */
template <fp4_dtype DT>
__device__ __forceinline__ void fp4_store_elem(void *base, int64_t index, float x) {
    if constexpr (DT == FP4_DTYPE_F32) {
        static_cast<float *>(base)[index] = x;
    } else if constexpr (DT == FP4_DTYPE_F16) {
        static_cast<uint16_t *>(base)[index] = fp4_f32_to_f16(x);
    } else {
        static_assert(DT == FP4_DTYPE_BF16, "F32, F16 or BF16 only");
        static_cast<uint16_t *>(base)[index] = fp4_f32_to_bf16(x);
    }
}

/* Stores 16 floats as F32/F16/BF16 elements [offset, offset + 16). vec: 16-byte aligned. */
template <fp4_dtype DT>
__device__ __forceinline__ void fp4_store_block16(void *base, int64_t offset, bool vec,
                                                  const float y[16]) {
    if (!vec) {
#pragma unroll
        for (int i = 0; i < 16; i++) fp4_store_elem<DT>(base, offset + i, y[i]);
        return;
    }
    if constexpr (DT == FP4_DTYPE_F32) {
        float4 *p4 = reinterpret_cast<float4 *>(static_cast<float *>(base) + offset);
#pragma unroll
        for (int v = 0; v < 4; v++)
            p4[v] = make_float4(y[4 * v + 0], y[4 * v + 1], y[4 * v + 2], y[4 * v + 3]);
    } else {
        uint16_t h[16];
#pragma unroll
        for (int i = 0; i < 16; i++)
            h[i] = DT == FP4_DTYPE_BF16 ? fp4_f32_to_bf16(y[i]) : fp4_f32_to_f16(y[i]);
        uint4 v0, v1;
        memcpy(&v0, &h[0], 16);
        memcpy(&v1, &h[8], 16);
        uint4 *p4 = reinterpret_cast<uint4 *>(static_cast<uint16_t *>(base) + offset);
        p4[0] = v0;
        p4[1] = v1;
    }
}

#endif /* FP4_CUDA_UTIL_CUH */

/* no_cuda.c - the CUDA side of a build without CUDA: every entry says so. */
#include "internal.h"

#define NO_CUDA(ctx) \
    FP4_FAIL((ctx), FP4_ERR_NO_DEVICE, "this fp4gemm was built without CUDA")

fp4_status fp4_cuda_device_count(int *count) {
    *count = 0;
    return FP4_OK;
}
fp4_status fp4_cuda_device_query(int device, fp4_device_info *info) { return NO_CUDA(NULL); }
fp4_status fp4_cuda_ctx_init(fp4_ctx *ctx) { return NO_CUDA(ctx); }
fp4_status fp4_cuda_set_device(fp4_ctx *ctx) { return NO_CUDA(ctx); }
fp4_status fp4_cuda_malloc(fp4_ctx *ctx, void **ptr, int64_t bytes) { return NO_CUDA(ctx); }
fp4_status fp4_cuda_free(fp4_ctx *ctx, void *ptr) { return NO_CUDA(ctx); }
fp4_status fp4_cuda_upload(fp4_ctx *ctx, void *dst, const void *src, int64_t bytes) {
    return NO_CUDA(ctx);
}
fp4_status fp4_cuda_copy_device(fp4_ctx *ctx, void *dst, const void *src, int64_t bytes) {
    return NO_CUDA(ctx);
}
fp4_status fp4_cuda_download(fp4_ctx *ctx, void *dst, const void *src, int64_t bytes) {
    return NO_CUDA(ctx);
}
fp4_status fp4_cuda_memset(fp4_ctx *ctx, void *dst, int value, int64_t bytes) {
    return NO_CUDA(ctx);
}
fp4_status fp4_cuda_synchronize(fp4_ctx *ctx, struct CUstream_st *stream) { return NO_CUDA(ctx); }
fp4_status fp4_cuda_quantize(fp4_ctx *ctx, const fp4_quant_desc *desc) { return NO_CUDA(ctx); }
fp4_status fp4_cuda_dequantize(fp4_ctx *ctx, const fp4_dequant_desc *desc) { return NO_CUDA(ctx); }
fp4_status fp4_cuda_global_scale(fp4_ctx *ctx, int64_t rows, int64_t k, fp4_dtype in_dtype,
                                 const void *in, int64_t ld_in, float *gs_out,
                                 struct CUstream_st *stream) {
    return NO_CUDA(ctx);
}
fp4_status fp4_cuda_modelopt_global_scale(fp4_ctx *ctx, const fp4_tensor_ref *tensors, int count,
                                          float *ws2_out, struct CUstream_st *stream) {
    return NO_CUDA(ctx);
}
fp4_status fp4_cuda_sf_convert(fp4_ctx *ctx, int64_t rows, int64_t k, const void *src,
                               fp4_sf_layout src_layout, void *dst, fp4_sf_layout dst_layout,
                               struct CUstream_st *stream) {
    return NO_CUDA(ctx);
}

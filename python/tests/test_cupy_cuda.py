"""GPU arrays without torch (the GPU machine; skipped without CuPy, a CUDA device or a CUDA build
of libfp4gemm): CuPy arrays, an object with only __cuda_array_interface__ and an object with only
__dlpack__/__dlpack_device__, all on the GPU. Quantization bytes equal the CPU's (numpy) bit for
bit; mm_fp4 on each kind of array equals mm_fp4 on CuPy arrays bit for bit (one backend, the
same bytes in) and the CPU's result within the FP32 summation bound; an output allocated with
CuPy next to CuPy inputs; arrays on two devices (a GPU array and a numpy one) refused with
nothing written."""
import numpy as np
import pytest

cp = pytest.importorskip("cupy", reason="CuPy not installed (the GPU machine's image has it)")

import fp4gemm  # noqa: E402

_INFO = fp4gemm.info()
try:
    _NDEV = cp.cuda.runtime.getDeviceCount()
except Exception:  # pragma: no cover - depends on the machine
    _NDEV = 0
if _NDEV < 1:
    pytest.skip("SKIP: no CUDA device for CuPy", allow_module_level=True)
if not _INFO["built_with_cuda"] or _INFO["cuda_devices"] < 1:
    pytest.skip("SKIP: libfp4gemm was built without CUDA or sees no device",
                allow_module_level=True)


class CaiOnly:
    """Only the CUDA array interface of a CuPy array (no DLPack, no CuPy type)."""

    def __init__(self, a):
        self.a = a
        self.__cuda_array_interface__ = a.__cuda_array_interface__


class DLPackOnly:
    """Only __dlpack__/__dlpack_device__ of a CuPy array: the capsule path."""

    def __init__(self, a):
        self.a = a

    def __dlpack__(self, stream=None):
        return self.a.__dlpack__(stream=stream)

    def __dlpack_device__(self):
        return self.a.__dlpack_device__()


def host_operands(m, n, k, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, k)).astype(np.float32)
    w = (rng.standard_normal((n, k)) * 0.05).astype(np.float32)
    return x, w


@pytest.mark.parametrize("swizzled", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_quantize_same_bytes_as_the_cpu(swizzled, dtype):
    x, _ = host_operands(37, 8, 256, 3)
    x = x.astype(dtype)
    q_cpu, sf_cpu = fp4gemm.fp4_quantize(x, 3.0, is_sf_swizzled_layout=swizzled)
    q_gpu, sf_gpu = fp4gemm.fp4_quantize(cp.asarray(x), 3.0, is_sf_swizzled_layout=swizzled)
    assert isinstance(q_gpu, cp.ndarray) and isinstance(sf_gpu, cp.ndarray)
    np.testing.assert_array_equal(cp.asnumpy(q_gpu), q_cpu)
    np.testing.assert_array_equal(cp.asnumpy(sf_gpu).view(np.uint8), np.asarray(sf_cpu).view(np.uint8))


@pytest.mark.parametrize("m,n,k", [(1, 256, 512), (16, 1024, 2048), (300, 512, 1024)])
@pytest.mark.parametrize("backend", ["auto", "cuda_simt", "cuda_mma", "cuda_wgmma"])
def test_mm_fp4_every_array_kind(m, n, k, backend):
    x, w = host_operands(m, n, k, m + n)
    gx, gw = fp4gemm.global_scale(x), fp4gemm.global_scale(w)
    xq, xsf = fp4gemm.fp4_quantize(x, gx)
    wq, wsf = fp4gemm.fp4_quantize(w, gw)
    alpha = 1.0 / (float(np.asarray(gx).ravel()[0]) * float(np.asarray(gw).ravel()[0]))
    want = fp4gemm.mm_fp4(xq, wq.T, xsf, wsf.T, alpha, "float32", backend="cpu")
    dev = [cp.asarray(a) for a in (xq, wq, xsf, wsf)]
    xq_d, wq_d, xsf_d, wsf_d = dev
    try:
        got = fp4gemm.mm_fp4(xq_d, wq_d.T, xsf_d, wsf_d.T, alpha, "float32", backend=backend)
    except fp4gemm.Fp4GemmError as e:
        pytest.skip(f"SKIP: {backend} cannot run m={m} n={n} k={k} here: {e}")
    assert isinstance(got, cp.ndarray) and got.shape == (m, n) and got.dtype == np.float32
    got_h = cp.asnumpy(got)
    # the FP32 summation bound against the CPU's result (both sum exact products in FP32)
    deq_x = np.asarray(fp4gemm.dequantize(xq, xsf, None), np.float64)
    deq_w = np.asarray(fp4gemm.dequantize(wq, wsf, None), np.float64)
    bound = 4 * k * 2.0 ** -24 * alpha * (np.abs(deq_x) @ np.abs(deq_w).T) + 1e-30
    assert np.all(np.abs(got_h.astype(np.float64) - want.astype(np.float64)) <= bound)
    # the same call through the other array kinds, into out= of each kind: the same bits
    for wrap in (CaiOnly, DLPackOnly):
        out = cp.full((m, n), np.nan, np.float32)
        fp4gemm.mm_fp4(wrap(xq_d), wrap(wq_d.T), wrap(xsf_d), wrap(wsf_d.T), alpha, "float32",
                       wrap(out), backend=backend)
        cp.cuda.runtime.deviceSynchronize()
        np.testing.assert_array_equal(cp.asnumpy(out), got_h)


def test_two_devices_refused_nothing_written():
    x, w = host_operands(4, 64, 128, 9)
    xq, xsf = fp4gemm.fp4_quantize(x, 1.0)
    wq, wsf = fp4gemm.fp4_quantize(w, 1.0)
    out = cp.full((4, 64), np.nan, np.float32)
    with pytest.raises(ValueError, match="device"):
        fp4gemm.mm_fp4(cp.asarray(xq), wq.T, cp.asarray(xsf), cp.asarray(wsf).T, 1.0, "float32", out)
    assert bool(cp.isnan(out).all())

"""The array interfaces other than numpy's, on the CPU: DLPack capsules and the CUDA array
interface translated into pointer/shape/strides/dtype/device (_tensors.View), checked against
numpy's own view of the same memory; GPU arrays on a build or machine without CUDA, and arrays
on two devices, raise before anything is written."""
import numpy as np
import pytest

import fp4gemm
from fp4gemm import _tensors as T
from test_mm_fp4 import operands


class FakeCudaArray:
    """An object that speaks only the CUDA array interface (v3), pointing at host memory: enough
    to drive the translation; the library must refuse it without touching it (no CUDA here, or
    device 5 that does not exist)."""

    def __init__(self, a, device=0, stream=None, readonly=False):
        self.a, self.dev = a, device
        self.__cuda_array_interface__ = {
            "shape": a.shape, "typestr": a.dtype.str, "data": (a.__array_interface__["data"][0], readonly),
            "strides": None if a.flags.c_contiguous else a.strides, "version": 3, "stream": stream}

    def __dlpack_device__(self):
        return (T.KDL_CUDA, self.dev)


class DLPackOnly:
    """Only __dlpack__/__dlpack_device__ (of a numpy array): the capsule path."""

    def __init__(self, a):
        self.a = a

    def __dlpack__(self, stream=None):
        return self.a.__dlpack__()

    def __dlpack_device__(self):
        return self.a.__dlpack_device__()


@pytest.mark.parametrize("make", [
    lambda: np.arange(24, dtype=np.float32).reshape(4, 6),
    lambda: np.arange(48, dtype=np.uint8).reshape(8, 6).T,  # a transposed view
    lambda: np.arange(40, dtype=np.float16).reshape(4, 10)[:, 2:7],  # row-strided
])
def test_dlpack_and_cai_views_match_numpy(make):
    a = make()
    for v in (T.from_dlpack(DLPackOnly(a), "x", None), T.from_cai(FakeCudaArray(a, device=3), "x")):
        assert v.ptr == a.__array_interface__["data"][0]
        assert v.shape == a.shape and v.strides == a.strides and v.dtype == a.dtype
        assert v.flags.c_contiguous == a.flags.c_contiguous
        assert v.flags.f_contiguous == a.flags.f_contiguous
    assert T.from_cai(FakeCudaArray(a, device=3), "x").device == 3
    assert T.from_dlpack(DLPackOnly(a), "x", None).device == -1


def test_cai_stream_and_readonly():
    a = np.zeros((2, 16), np.uint8)
    v = T.from_cai(FakeCudaArray(a, stream=1234, readonly=True), "x")
    assert v.stream == 1234 and not v.flags.writeable and v.device == 0
    assert T.stream_of(0, v) == 1234 and T.stream_of(-1, v) == 0


def test_torch_bf16_through_dlpack():
    torch = pytest.importorskip("torch")
    t = torch.randn(3, 32).to(torch.bfloat16)
    v = T.from_dlpack(t, "x", None)
    assert v.ptr == t.data_ptr() and str(v.dtype) == "bfloat16" and v.shape == (3, 32)


def test_gpu_array_without_cuda_raises_and_writes_nothing():
    if fp4gemm.info()["cuda_devices"] > 0:
        pytest.skip("a CUDA device is present: test_torch_cuda.py covers GPU arrays")
    m, n, k = 4, 16, 64
    _, (xq, xsf, gx), (wq, wsf, gw) = operands(m, n, k, 8)
    out = np.full((m, n), 1234.5, np.float32)
    g = [FakeCudaArray(x) for x in (xq, wq.T, xsf, wsf.T, out)]
    with pytest.raises(fp4gemm.Fp4GemmError, match="FP4_ERR_NO_DEVICE"):
        fp4gemm.mm_fp4(g[0], g[1], g[2], g[3], 1.0, "float32", g[4])
    assert np.all(out == 1234.5)


def test_mixed_devices_raise_and_write_nothing():
    m, n, k = 4, 16, 64
    _, (xq, xsf, gx), (wq, wsf, gw) = operands(m, n, k, 8)
    out = np.full((m, n), 1234.5, np.float32)
    with pytest.raises(ValueError, match="different devices.*a on cpu.*b on cuda:0"):
        fp4gemm.mm_fp4(xq, FakeCudaArray(wq.T), xsf, wsf.T, 1.0, "float32", out)
    with pytest.raises(ValueError, match="different devices"):
        fp4gemm.mm_fp4(xq, wq.T, xsf, wsf.T, 1.0, "float32", FakeCudaArray(out))
    with pytest.raises(ValueError, match="alpha: on cuda:0"):
        fp4gemm.mm_fp4(xq, wq.T, xsf, wsf.T, FakeCudaArray(np.ones(1, np.float32)), "float32", out)
    assert np.all(out == 1234.5)


def test_gpu_array_without_out_needs_a_library_to_allocate():
    m, n, k = 4, 16, 64
    _, (xq, xsf, gx), (wq, wsf, gw) = operands(m, n, k, 8)
    with pytest.raises(ValueError, match="pass out="):
        fp4gemm.mm_fp4(*[FakeCudaArray(x) for x in (xq, wq.T, xsf, wsf.T)], 1.0, "float32")
    with pytest.raises(ValueError, match="numpy, torch and CuPy arrays only"):
        fp4gemm.dequantize(FakeCudaArray(xq), FakeCudaArray(xsf))

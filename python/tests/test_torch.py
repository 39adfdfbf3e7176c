"""The torch.library ops on CPU tensors: against the numpy path (the same library call, so the
same bits) and the float64 reference of test_mm_fp4; torch.library.opcheck (schema, fake
implementation, dynamic shapes); torch.compile(fullgraph=True) with no graph break; fake-tensor
shapes; bad input -> a clear exception, nothing written. The CUDA tests are test_torch_cuda.py."""
import numpy as np
import pytest

torch = pytest.importorskip("torch", minversion="2.4",
                            reason="torch >= 2.4 not installed (python/ci.sh installs it; FP4GEMM_CI_TORCH=0 skips)")

import fp4gemm  # noqa: E402
import nvfp4_ref as ref  # noqa: E402
from test_mm_fp4 import check_close, linear_sf  # noqa: E402

TDT = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def to_np(t):
    """A CPU tensor as numpy for the numpy path: bf16 as its uint16 bits."""
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(np.uint16)
    return t.numpy()


def f64(t):
    return t.double().numpy()


def operands(m, n, k, seed, swizzled=True, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(m, k, generator=g).to(dtype)
    w = (torch.randn(n, k, generator=g) * 0.05).to(dtype)
    gx, gw = fp4gemm.global_scale(x), fp4gemm.global_scale(w)
    xq, xsf = fp4gemm.fp4_quantize(x, gx, is_sf_swizzled_layout=swizzled)
    wq, wsf = fp4gemm.fp4_quantize(w, gw, is_sf_swizzled_layout=swizzled)
    return x, (xq, xsf, gx), (wq, wsf, gw)


def test_ops_registered_and_tensors_in_tensors_out():
    assert hasattr(torch.ops.fp4gemm, "mm_fp4") and hasattr(torch.ops.fp4gemm, "fp4_quantize")
    x, (xq, xsf, gx), _ = operands(3, 8, 64, 1)
    assert isinstance(gx, torch.Tensor) and gx.dtype == torch.float32 and gx.shape == (1,)
    assert xq.dtype == torch.uint8 and xq.shape == (3, 32) and xsf.shape == (128, 4)
    assert float(gx) == pytest.approx(448 * 6 / float(x.abs().max()), rel=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("swizzled", [True, False])
def test_quantize_bytes_equal_numpy_and_reference(dtype, swizzled):
    g = torch.Generator().manual_seed(7)
    x = (torch.randn(37, 96, generator=g) * 3).to(TDT[dtype])
    gs = fp4gemm.global_scale(x)
    q, sf = fp4gemm.fp4_quantize(x, gs, is_sf_swizzled_layout=swizzled)
    qn, sfn = fp4gemm.fp4_quantize(to_np(x), gs.numpy(), is_sf_swizzled_layout=swizzled,
                                   dtype=dtype)
    np.testing.assert_array_equal(q.numpy(), qn)
    np.testing.assert_array_equal(sf.numpy(), sfn)
    q_ref, sf_ref = ref.quantize(x.float().numpy(), float(gs))
    np.testing.assert_array_equal(q.numpy(), q_ref)
    np.testing.assert_array_equal(linear_sf(sf.numpy(), 37, 96, swizzled), sf_ref)
    # the op itself, and a Python float global scale
    q2, sf2 = torch.ops.fp4gemm.fp4_quantize(x, gs, 16, False, swizzled)
    q3, sf3 = fp4gemm.fp4_quantize(x, float(gs), is_sf_swizzled_layout=swizzled)
    for a in (q2, q3):
        assert torch.equal(a, q)
    for s in (sf2, sf3):
        assert torch.equal(s, sf)


@pytest.mark.parametrize("m,n,k", [(1, 8, 64), (17, 64, 96), (130, 33, 256)])
@pytest.mark.parametrize("swizzled", [True, False])
@pytest.mark.parametrize("out_dtype", ["bfloat16", "float16", "float32"])
@pytest.mark.parametrize("backend", ["auto", "cpu", "cpu_ref"])
def test_w4a4_equals_numpy_path_and_reference(m, n, k, swizzled, out_dtype, backend):
    _, (xq, xsf, gx), (wq, wsf, gw) = operands(m, n, k, m * n + k, swizzled)
    alpha = 1.0 / (gx * gw)  # a [1] float32 tensor, as FlashInfer's callers pass
    lay = "swizzled" if swizzled else "linear"
    y = fp4gemm.mm_fp4(xq, wq.T, xsf, wsf.T, alpha, TDT[out_dtype], backend=backend,
                       a_sf_layout=lay, b_sf_layout=lay)
    assert isinstance(y, torch.Tensor) and y.shape == (m, n) and y.dtype == TDT[out_dtype]
    yn = fp4gemm.mm_fp4(xq.numpy(), wq.numpy().T, xsf.numpy(), wsf.numpy().T, alpha.numpy(),
                        out_dtype, backend=backend, a_sf_layout=lay, b_sf_layout=lay)
    np.testing.assert_array_equal(to_np(y).view(np.uint8), np.asarray(yn).view(np.uint8))
    a64 = ref.dequantize(xq.numpy(), linear_sf(xsf.numpy(), m, k, swizzled))
    b64 = ref.dequantize(wq.numpy(), linear_sf(wsf.numpy(), n, k, swizzled))
    check_close(f64(y), a64, b64, float(alpha), "float32" if out_dtype == "float32" else out_dtype)


@pytest.mark.parametrize("a_dtype", ["float16", "bfloat16"])
def test_w4a16(a_dtype):
    m, n, k = 5, 24, 160
    x, _, (wq, wsf, gw) = operands(m, n, k, 99, dtype=TDT[a_dtype])
    y = fp4gemm.mm_fp4(x, wq.T, None, wsf.T, 1.0 / gw, torch.float32)
    b64 = ref.dequantize(wq.numpy(), linear_sf(wsf.numpy(), n, k, True))
    check_close(f64(y), f64(x), b64, float(1.0 / gw), "float32")


def test_out_given_alpha_float_and_row_strided_out():
    m, n, k = 4, 16, 64
    _, (xq, xsf, gx), (wq, wsf, gw) = operands(m, n, k, 5)
    alpha = 1.0 / (gx * gw)
    want = fp4gemm.mm_fp4(xq, wq.T, xsf, wsf.T, alpha, torch.float16)
    out = torch.full((m, n), 7.0, dtype=torch.float16)
    got = fp4gemm.mm_fp4(xq, wq.T, xsf, wsf.T, alpha, torch.float16, out)
    assert got is out and torch.equal(out, want)
    big = torch.zeros((m, n + 8), dtype=torch.float16)
    fp4gemm.mm_fp4(xq, wq.T, xsf, wsf.T, float(alpha), "float16", out=big[:, 4:4 + n])
    assert torch.equal(big[:, 4:4 + n], want) and not big[:, :4].any() and not big[:, 4 + n:].any()


def test_opcheck():
    """torch's own check of a custom op: schema, fake implementation vs the real outputs,
    autograd registration, AOT dispatch with static and dynamic shapes."""
    _, (xq, xsf, gx), (wq, wsf, gw) = operands(5, 32, 128, 3)
    alpha = 1.0 / (gx * gw)
    torch.library.opcheck(torch.ops.fp4gemm.mm_fp4.default,
                          (xq, wq.T, xsf, wsf.T, alpha, torch.bfloat16))
    torch.library.opcheck(torch.ops.fp4gemm.mm_fp4_out.default,
                          (xq, wq.T, xsf, wsf.T, alpha, torch.float32, torch.empty(5, 32)))
    x = torch.randn(5, 128, generator=torch.Generator().manual_seed(1))
    for swz in (True, False):
        torch.library.opcheck(torch.ops.fp4gemm.fp4_quantize.default,
                              (x, fp4gemm.global_scale(x), 16, False, swz))


def test_helpers_equal_numpy_path_and_opcheck():
    x = torch.randn(33, 96, generator=torch.Generator().manual_seed(4)).to(torch.bfloat16)
    gs = fp4gemm.global_scale(x)
    np.testing.assert_array_equal(gs.numpy(), fp4gemm.global_scale(to_np(x), dtype="bfloat16"))
    q, sf = fp4gemm.fp4_quantize(x, gs)
    for od in ("float32", "bfloat16"):
        d = fp4gemm.dequantize(q, sf, gs, True, od)
        dn = fp4gemm.dequantize(q.numpy(), sf.numpy(), gs.numpy(), True, od)
        assert isinstance(d, torch.Tensor) and d.dtype == TDT[od] and d.shape == (33, 96)
        np.testing.assert_array_equal(to_np(d).view(np.uint8), np.asarray(dn).view(np.uint8))
    lin = fp4gemm.sf_convert(sf, 33, 96, "swizzled", "linear")
    np.testing.assert_array_equal(lin.numpy(), fp4gemm.sf_convert(sf.numpy(), 33, 96, "swizzled", "linear"))
    assert torch.equal(fp4gemm.dequantize(q, lin, gs, "linear"), fp4gemm.dequantize(q, sf, gs))
    torch.library.opcheck(torch.ops.fp4gemm.global_scale.default, (x,))
    torch.library.opcheck(torch.ops.fp4gemm.dequantize.default, (q, sf, gs, True, torch.float16))
    torch.library.opcheck(torch.ops.fp4gemm.sf_convert.default, (sf, 33, 96, "swizzled", "linear"))


@pytest.mark.parametrize("m,k,swizzled", [(1, 16, True), (129, 80, True), (3, 48, False)])
def test_fake_tensor_shapes_match_real(m, k, swizzled):
    from torch._subclasses.fake_tensor import FakeTensorMode
    x = torch.randn(m, k)
    q, sf = fp4gemm.fp4_quantize(x, None, is_sf_swizzled_layout=swizzled)
    y = fp4gemm.mm_fp4(q, q.T, sf, sf.T, None, torch.float16,
                       a_sf_layout="swizzled" if swizzled else "linear",
                       b_sf_layout="swizzled" if swizzled else "linear")
    with FakeTensorMode() as mode:
        fx = mode.from_tensor(x)
        fq, fsf = torch.ops.fp4gemm.fp4_quantize(fx, None, 16, False, swizzled)
        fy = torch.ops.fp4gemm.mm_fp4(fq, fq.T, fsf, fsf.T, None, torch.float16)
    for real, fake in ((q, fq), (sf, fsf), (y, fy)):
        assert fake.shape == real.shape and fake.dtype == real.dtype and fake.device == real.device


def _linear(xq, wq, xsf, wsf, alpha):
    return fp4gemm.mm_fp4(xq, wq.T, xsf, wsf.T, alpha, torch.float32)


def _quantize_and_mm(x, gx, wq, wsf, alpha):
    xq, xsf = fp4gemm.fp4_quantize(x, gx)
    return fp4gemm.mm_fp4(xq, wq.T, xsf, wsf.T, alpha, torch.bfloat16) * 2


def _step(x, wq, wsf, gw):
    """A decode step as FlashInfer's callers write it: scale, quantize, GEMM, all inside."""
    gx = fp4gemm.global_scale(x)
    xq, xsf = fp4gemm.fp4_quantize(x, gx)
    y = fp4gemm.mm_fp4(xq, wq.T, xsf, wsf.T, 1.0 / (gx * gw), torch.bfloat16)
    return fp4gemm.dequantize(xq, xsf, gx) + y.float().sum()


def _mm_out(xq, wq, xsf, wsf, alpha, out):
    fp4gemm.mm_fp4(xq, wq.T, xsf, wsf.T, alpha, torch.float32, out)
    return out + 1


def test_compile_fullgraph_no_graph_break():
    torch._dynamo.reset()
    x, (xq, xsf, gx), (wq, wsf, gw) = operands(9, 48, 128, 11)
    alpha = 1.0 / (gx * gw)
    for fn, args in ((_linear, (xq, wq, xsf, wsf, alpha)),
                     (_quantize_and_mm, (x, gx, wq, wsf, alpha)),
                     (_step, (x, wq, wsf, gw)),
                     (_mm_out, (xq, wq, xsf, wsf, alpha, torch.zeros(9, 48)))):
        explain = torch._dynamo.explain(fn)(*args)
        assert explain.graph_break_count == 0 and explain.graph_count == 1, explain.break_reasons
        eager = fn(*[a.clone() for a in args])
        compiled = torch.compile(fn, fullgraph=True, dynamic=False)(*[a.clone() for a in args])
        assert torch.equal(compiled, eager)


def test_compile_dynamic_m():
    """One compiled graph serves several M (dynamic shapes through the fake implementations)."""
    torch._dynamo.reset()
    f = torch.compile(_quantize_and_mm, fullgraph=True, dynamic=True)
    _, _, (wq, wsf, gw) = operands(1, 40, 64, 2)
    for m in (1, 7, 130):
        x = torch.randn(m, 64, generator=torch.Generator().manual_seed(m))
        gx = fp4gemm.global_scale(x)
        assert torch.equal(f(x, gx, wq, wsf, 1.0 / (gx * gw)),
                           _quantize_and_mm(x, gx, wq, wsf, 1.0 / (gx * gw)))


def bad_calls():
    m, n, k = 4, 16, 64
    _, (xq, xsf, gx), (wq, wsf, gw) = operands(m, n, k, 8)
    alpha = 1.0 / (gx * gw)
    good = dict(a=xq, b=wq.T, a_descale=xsf, b_descale=wsf.T, alpha=alpha, out_dtype=torch.float32)
    cases = [
        (dict(a=xq.to(torch.int16)), TypeError, "dtype"),
        (dict(a=xq[:, :16].contiguous()), ValueError, "K/2 differs"),
        (dict(b=wq.T.contiguous()), ValueError, "transpose"),
        (dict(b=wq), ValueError, "transpose"),
        (dict(a_descale=xsf[:1]), ValueError, "bytes"),
        (dict(a_descale=None), ValueError, "a_descale"),
        (dict(out_dtype=torch.float64), TypeError, "float64"),
        (dict(backend="cudnn"), fp4gemm.Fp4GemmError, "cudnn"),
        (dict(backend="cuda_mma"), fp4gemm.Fp4GemmError, "cuda_mma"),
        (dict(block_size=32), NotImplementedError, "NVFP4"),
        (dict(alpha=torch.ones(2)), ValueError, "one float32"),
        (dict(alpha=alpha.double()), ValueError, "one float32"),
        (dict(a=xq.to("meta")), ValueError, "different devices"),
        (dict(a=torch.randn(m, k)), TypeError, "float32"),  # W4A16 wants f16/bf16
    ]
    assert len(cases) == N_BAD, "a bad case added or removed: change N_BAD so that every one runs"
    return good, cases, (m, n)


N_BAD = 14


@pytest.mark.parametrize("i", range(N_BAD))
def test_bad_input_raises_and_writes_nothing(i):
    good, cases, (m, n) = bad_calls()
    change, exc, match = cases[i]
    out = torch.full((m, n), 1234.5)
    with pytest.raises(exc, match=match):
        fp4gemm.mm_fp4(out=out, **dict(good, **change))
    assert torch.all(out == 1234.5)


@pytest.mark.parametrize("bad_out", ["shape", "dtype", "colmajor"])
def test_bad_out(bad_out):
    good, _, (m, n) = bad_calls()
    out = {"shape": torch.zeros(m, n + 1), "dtype": torch.zeros(m, n, dtype=torch.float64),
           "colmajor": torch.zeros(n, m).T}[bad_out]
    before = out.clone()
    with pytest.raises((ValueError, TypeError)):
        fp4gemm.mm_fp4(out=out, **good)
    assert torch.equal(out, before)


def test_library_error_carries_last_error():
    good, _, _ = bad_calls()
    with pytest.raises(fp4gemm.Fp4GemmError) as e:
        fp4gemm.mm_fp4(**dict(good, backend="cuda_simt"))
    assert e.value.status in ("FP4_ERR_NOT_SUPPORTED", "FP4_ERR_INVALID_ARGUMENT")
    assert "cuda_simt" in str(e.value)
    # also raised from inside a compiled graph, as the same exception type
    torch._dynamo.reset()
    f = torch.compile(lambda a, b, c, d: fp4gemm.mm_fp4(a, b, c, d, None, torch.float32, backend="cuda_simt"),
                      fullgraph=True)
    with pytest.raises(fp4gemm.Fp4GemmError, match="cuda_simt"):
        f(good["a"], good["b"], good["a_descale"], good["b_descale"])


def test_quantize_bad_input():
    x = torch.randn(4, 64)
    with pytest.raises(NotImplementedError, match="ue8m0"):
        fp4gemm.fp4_quantize(x, sf_use_ue8m0=True)
    with pytest.raises(ValueError, match="multiple of 16"):
        fp4gemm.fp4_quantize(torch.randn(4, 40))
    with pytest.raises(ValueError, match="contiguous"):
        fp4gemm.fp4_quantize(torch.randn(64, 4).T)
    with pytest.raises(TypeError):
        fp4gemm.fp4_quantize(torch.randn(4, 64).double())
    with pytest.raises(ValueError, match="one float32"):
        fp4gemm.fp4_quantize(x, torch.ones(2))


def test_no_torch_import_with_fp4gemm_no_torch():
    """FP4GEMM_NO_TORCH=1: `import fp4gemm` leaves torch unimported; the ops are registered at
    the first torch tensor (a fresh interpreter: this one has them already)."""
    import os
    import subprocess
    import sys
    code = ("import sys, fp4gemm; assert 'torch' not in sys.modules, 'torch imported'\n"
            "import torch; assert not hasattr(torch.ops.fp4gemm, 'mm_fp4')\n"
            "q, sf = fp4gemm.fp4_quantize(torch.ones(2, 32))\n"
            "assert isinstance(q, torch.Tensor) and hasattr(torch.ops.fp4gemm, 'mm_fp4')\n")
    env = dict(os.environ, FP4GEMM_NO_TORCH="1")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr

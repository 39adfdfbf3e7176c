"""mm_fp4's caches of checked calls (numpy: _api._NP_PLANS; torch: _torch_ops._PLANS) and the
eager torch call that skips the dispatcher: a replayed call gives the bits of the full path on
new data, reads alpha on every call, and a bad call after good ones of the same kind still
raises with nothing written; what torch's modes and profiler see is still the op."""
import numpy as np
import pytest

import fp4gemm
from fp4gemm import _api
from test_mm_fp4 import bad_calls, operands


def fresh(**kw):
    """mm_fp4 through the full path (an empty cache, put aside after)."""
    saved, _api._NP_PLANS = _api._NP_PLANS, {}
    try:
        return fp4gemm.mm_fp4(**kw)
    finally:
        _api._NP_PLANS = saved


@pytest.mark.parametrize("out_dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("given_out", [False, True])
def test_numpy_replay_equals_full_path(out_dtype, given_out, binding_path):
    m, n, k = 5, 24, 96
    _api._NP_PLANS.clear()
    for seed in range(4):  # the same kind of call on new data: seed 0 fills the cache
        _, (xq, xsf, gx), (wq, wsf, gw) = operands(m, n, k, 20 + seed)
        kw = dict(a=xq, b=wq.T, a_descale=xsf, b_descale=wsf.T, alpha=1.0 / (gx * gw),
                  out_dtype=out_dtype)
        want = fresh(**kw)
        out = np.full_like(want, 7) if given_out else None
        got = fp4gemm.mm_fp4(out=out, **kw)
        assert len(_api._NP_PLANS) == (binding_path == "c_glue") and (got is out or not given_out)
        np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


def test_numpy_alpha_read_every_call():
    _, (xq, xsf, _), (wq, wsf, _) = operands(3, 16, 64, 2)
    y1 = fp4gemm.mm_fp4(xq, wq.T, xsf, wsf.T, 1.0, "float32")
    y2 = fp4gemm.mm_fp4(xq, wq.T, xsf, wsf.T, 2.0, "float32")
    y4 = fp4gemm.mm_fp4(xq, wq.T, xsf, wsf.T, np.full(1, 4.0, np.float32), "float32")
    assert np.any(y1 != 0)
    np.testing.assert_array_equal(y2, 2 * y1)
    np.testing.assert_array_equal(y4, 4 * y1)


@pytest.mark.parametrize("i", range(13))
def test_numpy_bad_call_after_good_ones(i):
    good, cases, (m, n) = bad_calls()
    out = np.full((m, n), 1234.5, np.float32)
    fp4gemm.mm_fp4(out=out, **good)
    fp4gemm.mm_fp4(out=out, **good)  # a replay
    out[:] = 1234.5
    change, exc = cases[i]
    with pytest.raises(exc):
        fp4gemm.mm_fp4(out=out, **dict(good, **change))
    assert np.all(out == 1234.5)


def test_numpy_readonly_out_after_a_writable_one():
    good, _, (m, n) = bad_calls()
    out = np.zeros((m, n), np.float32)
    fp4gemm.mm_fp4(out=out, **good)
    ro = np.zeros((m, n), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        fp4gemm.mm_fp4(out=ro, **good)
    assert not ro.any()


# ---- torch --------------------------------------------------------------------------------
def torch_operands(m, n, k, seed):
    torch = pytest.importorskip("torch", minversion="2.4")
    _, (xq, xsf, gx), (wq, wsf, gw) = operands(m, n, k, seed)
    t = torch.from_numpy
    return t(xq), t(xsf), t(wq).T, t(wsf).T, t(np.float32(1) / (gx * gw))


@pytest.mark.parametrize("given_out", [False, True])
def test_torch_replay_equals_numpy_and_the_op(given_out, binding_path):
    torch = pytest.importorskip("torch", minversion="2.4")
    from fp4gemm import _torch_ops
    _torch_ops._PLANS.clear()
    for seed in range(4):
        a, asf, b, bsf, alpha = torch_operands(6, 40, 64, 30 + seed)
        want = fp4gemm.mm_fp4(a.numpy(), b.numpy(), asf.numpy(), bsf.numpy(), alpha.numpy(), "float32")
        out = torch.full((6, 40), 7.0) if given_out else None
        got = fp4gemm.mm_fp4(a, b, asf, bsf, alpha, torch.float32, out)  # eager: no dispatcher
        assert (got is out) if given_out else got.shape == (6, 40)
        assert bool(_torch_ops._PLANS) == (binding_path == "c_glue")
        np.testing.assert_array_equal(got.numpy(), want)
        op = torch.ops.fp4gemm.mm_fp4.default(a, b, asf, bsf, alpha, torch.float32)
        np.testing.assert_array_equal(op.numpy(), want)
        alpha2 = alpha * 2  # alpha by pointer, read on every call
        np.testing.assert_array_equal(fp4gemm.mm_fp4(a, b, asf, bsf, alpha2, torch.float32).numpy(), 2 * want)


@pytest.mark.parametrize("i", range(13))
def test_torch_bad_call_after_good_ones(i):
    torch = pytest.importorskip("torch", minversion="2.4")
    good, cases, (m, n) = bad_calls()
    change, exc = cases[i]
    conv = lambda v: torch.from_numpy(v) if isinstance(v, np.ndarray) else v  # noqa: E731
    good = {k: conv(v) for k, v in good.items()}
    good["out_dtype"] = torch.float32
    good["alpha"] = torch.ones(1)
    bad = dict(good, **{k: conv(v) for k, v in change.items()})
    if bad["a"].dtype == torch.int16 or bad["a"].dtype == torch.uint16 or "out_dtype" in change:
        exc = (exc, RuntimeError)  # torch may refuse it first
    out = torch.full((m, n), 1234.5)
    fp4gemm.mm_fp4(out=out, **good)
    fp4gemm.mm_fp4(out=out, **good)  # a replay
    out.fill_(1234.5)
    with pytest.raises(exc):
        fp4gemm.mm_fp4(out=out, **bad)
    assert torch.all(out == 1234.5)


def test_torch_modes_and_profiler_see_the_op():
    torch = pytest.importorskip("torch", minversion="2.4")
    from torch.utils._python_dispatch import TorchDispatchMode
    a, asf, b, bsf, alpha = torch_operands(2, 16, 32, 3)
    out = torch.empty(2, 16)
    fp4gemm.mm_fp4(a, b, asf, bsf, alpha, torch.float32, out)

    class Record(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops.append(str(func))
            return func(*args, **(kwargs or {}))

    with Record() as rec:
        fp4gemm.mm_fp4(a, b, asf, bsf, alpha, torch.float32, out)
        fp4gemm.mm_fp4(a, b, asf, bsf, alpha, torch.float32)
    assert "fp4gemm.mm_fp4_out.default" in rec.ops and "fp4gemm.mm_fp4.default" in rec.ops
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fp4gemm.mm_fp4(a, b, asf, bsf, alpha, torch.float32, out)
    assert any(e.name == "fp4gemm::mm_fp4_out" for e in prof.events())


@pytest.mark.parametrize("missing", ["a", "b", "b_descale"])
def test_torch_none_for_a_tensor_is_a_type_error(missing):
    """torch's op call lets None through for a Tensor argument: the checks catch it."""
    torch = pytest.importorskip("torch", minversion="2.4")
    a, asf, b, bsf, alpha = torch_operands(2, 16, 32, 4)
    kw = dict(a=a, b=b, a_descale=asf, b_descale=bsf, alpha=alpha, out_dtype=torch.float32)
    fp4gemm.mm_fp4(**kw)
    out = torch.full((2, 16), 3.0)
    with pytest.raises((TypeError, ValueError, RuntimeError)):
        torch.ops.fp4gemm.mm_fp4_out.default(*dict(kw, **{missing: None}).values(), out)
    with pytest.raises((TypeError, ValueError, RuntimeError)):
        fp4gemm.mm_fp4(**dict(kw, **{missing: None}), out=out)
    assert torch.all(out == 3.0)

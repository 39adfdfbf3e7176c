"""mm_fp4 against a float64 reference of the dequantized operands, within the FP32-summation
bound; FlashInfer's calling convention (b = w.T, b_descale = w_sf.T)."""
import numpy as np
import pytest

import fp4gemm
import nvfp4_ref as ref

U = {"float32": 2.0 ** -24, "float16": 2.0 ** -11, "bfloat16": 2.0 ** -8}
BACKENDS = ["auto", "cpu", "cpu_ref"]


def operands(m, n, k, seed, swizzled=True):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, k)).astype(np.float32)
    w = (rng.standard_normal((n, k)) * 0.05).astype(np.float32)
    gx, gw = fp4gemm.global_scale(x), fp4gemm.global_scale(w)
    xq, xsf = fp4gemm.fp4_quantize(x, gx, is_sf_swizzled_layout=swizzled)
    wq, wsf = fp4gemm.fp4_quantize(w, gw, is_sf_swizzled_layout=swizzled)
    return x, (xq, xsf, gx), (wq, wsf, gw)


def linear_sf(sf, rows, k, swizzled):
    return fp4gemm.sf_convert(sf, rows, k, "swizzled", "linear") if swizzled else sf


def as_f64(y, out_dtype):
    if out_dtype == "bfloat16" and y.dtype == np.uint16:
        return ref.bf16_bits_to_f32(y).astype(np.float64)
    return np.asarray(y, np.float64)


def check_close(y, a64, b64, alpha, out_dtype):
    """|y - alpha*a@b.T| <= alpha*(k*2^-24*2)*sum|a||b| + u_out*|ref| + tiny (subnormals)."""
    want = alpha * (a64 @ b64.T)
    absdot = alpha * (np.abs(a64) @ np.abs(b64).T)
    k = a64.shape[1]
    bound = 2 * k * 2.0 ** -24 * absdot + U[out_dtype] * np.abs(want) + 1e-30
    err = np.abs(as_f64(y, out_dtype) - want)
    assert np.all(err <= bound), f"max err/bound {np.max(err / bound):.3g}"


@pytest.mark.parametrize("m,n,k", [(1, 8, 64), (3, 40, 128), (17, 64, 96), (130, 33, 256)])
@pytest.mark.parametrize("swizzled", [True, False])
@pytest.mark.parametrize("out_dtype", ["bfloat16", "float16", "float32"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_w4a4(m, n, k, swizzled, out_dtype, backend):
    _, (xq, xsf, gx), (wq, wsf, gw) = operands(m, n, k, m * n + k, swizzled)
    alpha = (1.0 / (gx * gw)).astype(np.float32)  # a [1] array, as FlashInfer callers pass
    lay = "swizzled" if swizzled else "linear"
    y = fp4gemm.mm_fp4(xq, wq.T, xsf, wsf.T, alpha, out_dtype, backend=backend,
                       a_sf_layout=lay, b_sf_layout=lay)
    assert y.shape == (m, n)
    a64 = ref.dequantize(xq, linear_sf(xsf, m, k, swizzled))
    b64 = ref.dequantize(wq, linear_sf(wsf, n, k, swizzled))
    check_close(y, a64, b64, float(alpha[0]), out_dtype)


@pytest.mark.parametrize("a_kind", ["float16", "bfloat16"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_w4a16(a_kind, backend):
    m, n, k = 5, 24, 160
    x, _, (wq, wsf, gw) = operands(m, n, k, 99)
    if a_kind == "float16":
        a = x.astype(np.float16)
        a64 = a.astype(np.float64)
        y = fp4gemm.mm_fp4(a, wq.T, None, wsf.T, 1.0 / gw, "float32", backend=backend)
    else:
        a = ref.f32_to_bf16_bits(x)
        a64 = ref.bf16_bits_to_f32(a).astype(np.float64)
        y = fp4gemm.mm_fp4(a, wq.T, None, wsf.T, 1.0 / gw, "float32", backend=backend,
                           a_dtype="bfloat16")
    b64 = ref.dequantize(wq, linear_sf(wsf, n, k, True))
    check_close(y, a64, b64, float(np.float32(1.0 / gw[0])), "float32")


def test_out_given_and_row_strided():
    m, n, k = 4, 16, 64
    _, (xq, xsf, gx), (wq, wsf, gw) = operands(m, n, k, 5)
    want = fp4gemm.mm_fp4(xq, wq.T, xsf, wsf.T, 1 / (gx * gw), "float16")
    out = np.full((m, n), np.nan, np.float16)
    r = fp4gemm.mm_fp4(xq, wq.T, xsf, wsf.T, 1 / (gx * gw), "float16", out)
    assert r is out
    np.testing.assert_array_equal(out, want)
    big = np.full((m, 2 * n), -7.0, np.float32)  # rows of n, 2n apart: ldd = 2n
    fp4gemm.mm_fp4(xq, wq.T, xsf, wsf.T, 1 / (gx * gw), np.float32, big[:, :n])
    assert np.all(big[:, n:] == -7.0)
    np.testing.assert_allclose(big[:, :n], want.astype(np.float32), rtol=2 ** -10, atol=1e-6)


def test_bf16_out_into_uint16():
    m, n, k = 2, 8, 32
    _, (xq, xsf, gx), (wq, wsf, gw) = operands(m, n, k, 6)
    out = np.zeros((m, n), np.uint16)
    fp4gemm.mm_fp4(xq, wq.T, xsf, wsf.T, 1 / (gx * gw), "bfloat16", out)
    f32 = fp4gemm.mm_fp4(xq, wq.T, xsf, wsf.T, 1 / (gx * gw), "float32")
    np.testing.assert_array_equal(out, ref.f32_to_bf16_bits(f32))


def test_select_and_tactics():
    name, why = fp4gemm.select(16, 64, 128)
    assert name in fp4gemm.list_tactics(16, 64, 128) and why.startswith("auto")
    name, why = fp4gemm.select(16, 64, 128, backend="cpu_ref")
    assert name.startswith("cpu_ref")
    info = fp4gemm.info()
    assert info["version"] == fp4gemm.__version__ and "cpu_simd" in info


def test_log_bridge(caplog):
    """The library logs each failure at debug (src/context.c): with the bridge on, it arrives
    as a logging record, not on stderr."""
    import logging
    _, (xq, xsf, gx), (wq, wsf, gw) = operands(1, 8, 32, 1)
    fp4gemm.log_to_python("fp4gemm.test")
    try:
        fp4gemm.set_log_level("debug")
        assert fp4gemm.get_log_level() == "debug"
        with caplog.at_level(logging.DEBUG, logger="fp4gemm.test"):
            with pytest.raises(fp4gemm.Fp4GemmError):
                fp4gemm.mm_fp4(xq, wq.T, xsf, wsf.T, 1.0, "float32", backend="cuda_mma")
        recs = [r for r in caplog.records if r.name == "fp4gemm.test"]
        assert any("FP4_ERR_NOT_SUPPORTED" in r.getMessage() and r.levelno == logging.DEBUG
                   for r in recs), [r.getMessage() for r in recs]
    finally:
        fp4gemm.set_log_level("warn")
        fp4gemm.log_to_python(None)
    with pytest.raises(ValueError):
        fp4gemm.set_log_level("loud")


def test_threads_each_get_a_context():
    """Python threads call at once (the GIL is released in the call): each has its own
    context, results equal the single-threaded ones."""
    import threading
    m, n, k = 33, 48, 256
    _, (xq, xsf, gx), (wq, wsf, gw) = operands(m, n, k, 21)
    want = fp4gemm.mm_fp4(xq, wq.T, xsf, wsf.T, 1 / (gx * gw), "float32")
    results, errors = [None] * 4, []

    def work(i):
        try:
            for _ in range(50):
                results[i] = fp4gemm.mm_fp4(xq, wq.T, xsf, wsf.T, 1 / (gx * gw), "float32")
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    for r in results:
        np.testing.assert_array_equal(r, want)


def bad_calls():
    m, n, k = 4, 16, 64
    _, (xq, xsf, gx), (wq, wsf, gw) = operands(m, n, k, 8)
    good = dict(a=xq, b=wq.T, a_descale=xsf, b_descale=wsf.T, alpha=1.0, out_dtype="float32")
    cases = [
        (dict(a=xq.astype(np.int16)), TypeError),  # wrong dtype
        (dict(a=xq[:, :16]), ValueError),  # K/2 differs
        (dict(b=np.ascontiguousarray(wq.T)), ValueError),  # a materialized transpose
        (dict(b=wq), ValueError),  # the stored weight, not its .T
        (dict(a_descale=xsf[:1]), ValueError),  # too few scale bytes
        (dict(a_descale=None), ValueError),
        (dict(a=xq.view(np.uint16)[:, :]), TypeError),  # uint16 without a_dtype
        (dict(out_dtype="int8"), TypeError),
        (dict(backend="cudnn"), fp4gemm.Fp4GemmError),  # a FlashInfer backend name
        (dict(backend="cuda_mma"), fp4gemm.Fp4GemmError),  # can't run on the CPU
        (dict(block_size=32), NotImplementedError),
        (dict(use_8x4_sf_layout=True), NotImplementedError),
        (dict(alpha=np.ones(2, np.float32)), ValueError),
    ]
    return good, cases, (m, n)


@pytest.mark.parametrize("i", range(13))
def test_bad_input_raises_and_writes_nothing(i):
    good, cases, (m, n) = bad_calls()
    change, exc = cases[i]
    out = np.full((m, n), 1234.5, np.float32)
    args = dict(good, **change)
    with pytest.raises(exc):
        fp4gemm.mm_fp4(out=out, **args)
    assert np.all(out == 1234.5)


@pytest.mark.parametrize("bad_out", ["shape", "dtype", "readonly", "colmajor"])
def test_bad_out(bad_out):
    good, _, (m, n) = bad_calls()
    out = {"shape": np.zeros((m, n + 1), np.float32), "dtype": np.zeros((m, n), np.float64),
           "readonly": np.zeros((m, n), np.float32), "colmajor": np.zeros((m, n), np.float32, order="F")}[bad_out]
    if bad_out == "readonly":
        out.flags.writeable = False
    before = out.copy()
    with pytest.raises((ValueError, TypeError)):
        fp4gemm.mm_fp4(out=out, **good)
    np.testing.assert_array_equal(out, before)


def test_ml_dtypes_bfloat16_and_e4m3():
    mld = pytest.importorskip("ml_dtypes")
    m, n, k = 3, 16, 64
    x, _, (wq, wsf, gw) = operands(m, n, k, 12)
    bits = ref.f32_to_bf16_bits(x)
    a = bits.view(mld.bfloat16)
    y = fp4gemm.mm_fp4(a, wq.T, None, wsf.view(mld.float8_e4m3fn).T, 1.0 / gw)
    assert y.dtype == mld.bfloat16  # FlashInfer's default out_dtype
    y_bits = fp4gemm.mm_fp4(bits, wq.T, None, wsf.T, 1.0 / gw, a_dtype="bfloat16")
    np.testing.assert_array_equal(y.view(np.uint16), y_bits.view(np.uint16))
    q1, s1 = fp4gemm.fp4_quantize(a, 2.0)
    q2, s2 = fp4gemm.fp4_quantize(bits, 2.0, dtype="bfloat16")
    np.testing.assert_array_equal(q1, q2)
    np.testing.assert_array_equal(s1, s2)

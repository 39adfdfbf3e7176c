"""The torch ops on CUDA tensors (the GPU machine; skipped without a CUDA device or a CUDA build
of libfp4gemm): every backend that can run against a float64 reference of the dequantized
operands, FlashInfer-style M from 1 to thousands with N and K of real models, bf16/f16/f32 out,
alpha as a tensor, out= given, swizzled and linear scales, W4A16; quantization bytes equal to
the CPU's; torch's current stream honoured; CUDA graph capture and replay; torch.compile
(fullgraph, and mode="reduce-overhead"); bad input (CPU tensor to a GPU op, ...) -> a clear
exception, nothing written.

Run on an NVIDIA H200 (torch 2.11) on 2026-11-30: all passed (docs/python.md)."""
import pytest

torch = pytest.importorskip("torch", minversion="2.4",
                            reason="torch >= 2.4 not installed (python/ci.sh installs it)")

import fp4gemm  # noqa: E402

_INFO = fp4gemm.info()
if not torch.cuda.is_available():
    pytest.skip("SKIP: no CUDA device (torch.cuda.is_available() is False)", allow_module_level=True)
if not _INFO["built_with_cuda"] or _INFO["cuda_devices"] < 1:
    pytest.skip("SKIP: libfp4gemm was built without CUDA or sees no device "
                "(pip install ./python -Ccmake.define.FP4GEMM_CUDA=ON)", allow_module_level=True)

DEV = torch.device("cuda", torch.cuda.current_device())
GPU_BACKENDS = ["auto", "cuda_simt", "cuda_mma", "cuda_wgmma", "cublaslt"]
ULP = {torch.float32: (2.0 ** -24, 2.0 ** -149), torch.float16: (2.0 ** -11, 2.0 ** -24),
       torch.bfloat16: (2.0 ** -8, 2.0 ** -126)}


def gen(seed):
    return torch.Generator(device=DEV).manual_seed(seed)


def operands(m, n, k, seed, swizzled=True, a_dtype=torch.bfloat16):
    """x [m, k] and w [n, k] on the GPU (a_dtype), quantized on the GPU as FlashInfer's callers
    do: (x, (xq, xsf, gx), (wq, wsf, gw)), all CUDA tensors."""
    g = gen(seed)
    x = torch.randn(m, k, device=DEV, generator=g).to(a_dtype)
    w = (torch.randn(n, k, device=DEV, generator=g) * 0.05).to(torch.bfloat16)
    gx, gw = fp4gemm.global_scale(x), fp4gemm.global_scale(w)
    xq, xsf = fp4gemm.fp4_quantize(x, gx, is_sf_swizzled_layout=swizzled)
    wq, wsf = fp4gemm.fp4_quantize(w, gw, is_sf_swizzled_layout=swizzled)
    return x, (xq, xsf, gx), (wq, wsf, gw)


def dequant64(q, sf, swizzled):
    """e2m1 * e4m3 of a quantized tensor, exact in float32 (the CPU backend's decode, which
    test_quantize/test_torch check against the numpy reference), as float64 on the GPU."""
    return fp4gemm.dequantize(q.cpu(), sf.cpu(), None, swizzled).to(DEV, torch.float64)


def check_close(y, a64, b64, alpha):
    """|y - alpha*a@b.T| <= alpha*2*k*2^-24*sum|a||b| + u_out*|ref| + the out dtype's
    subnormal step (test_gpu.c's bound is tighter: 8*sqrt(k)*2^-24)."""
    want = alpha * (a64 @ b64.T)
    absdot = alpha * (a64.abs() @ b64.abs().T)
    u, tiny = ULP[y.dtype]
    bound = 2 * a64.shape[1] * 2.0 ** -24 * absdot + u * want.abs() + tiny
    err = (y.double() - want).abs()
    ratio = (err / bound).max().item()
    assert bool((err <= bound).all()), f"max err/bound {ratio:.3g}"


def skip_unless_runs(backend, m, n, k, a_dtype="e2m1", out_dtype="bfloat16", sf_layout="swizzled"):
    try:
        fp4gemm.select(m, n, k, a_dtype, out_dtype, backend=backend, device=DEV.index,
                       sf_layout=sf_layout)
    except fp4gemm.Fp4GemmError as e:
        pytest.skip(f"SKIP: {backend} cannot run m={m} n={n} k={k} here: {e}")


# N, K of real models (Llama-3-8B: qkv 6144x4096, down 4096x14336; Llama-3-70B: up 28672x8192)
SHAPES = [(4096, 4096), (6144, 4096), (4096, 14336), (28672, 8192)]


_WEIGHTS = {}


def weight(n, k):
    """A quantized [n, k] weight and its float64 decode, made once per shape."""
    if (n, k) not in _WEIGHTS:
        _, _, (wq, wsf, gw) = operands(1, n, k, n + k)
        _WEIGHTS[(n, k)] = (wq, wsf, gw, dequant64(wq, wsf, True))
    return _WEIGHTS[(n, k)]


@pytest.mark.parametrize("m", [1, 2, 8, 16, 32, 128, 1000, 4096])
@pytest.mark.parametrize("n,k", SHAPES)
@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_w4a4_flashinfer_shapes(m, n, k, backend):
    if n * k > 4096 * 14336 and m > 1000:
        pytest.skip("SKIP: m=4096 with the 28672x8192 weight: the float64 reference is too large")
    skip_unless_runs(backend, m, n, k)
    wq, wsf, gw, w64 = weight(n, k)
    x = torch.randn(m, k, device=DEV, generator=gen(m + k)).to(torch.bfloat16)
    gx = fp4gemm.global_scale(x)
    xq, xsf = fp4gemm.fp4_quantize(x, gx)
    alpha = 1.0 / (gx * gw)  # a CUDA [1] tensor, read by the kernel
    y = fp4gemm.mm_fp4(xq, wq.T, xsf, wsf.T, alpha, torch.bfloat16, backend=backend)
    assert y.device == DEV and y.dtype == torch.bfloat16 and y.shape == (m, n)
    check_close(y, dequant64(xq, xsf, True), w64, alpha.item())


@pytest.mark.parametrize("out_dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("swizzled", [True, False])
@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_w4a4_out_dtypes_layouts_and_out(out_dtype, swizzled, backend):
    m, n, k = 37, 512, 1024
    lay = "swizzled" if swizzled else "linear"
    skip_unless_runs(backend, m, n, k, out_dtype=str(out_dtype).split(".")[1], sf_layout=lay)
    _, (xq, xsf, gx), (wq, wsf, gw) = operands(m, n, k, 3, swizzled)
    alpha = 1.0 / (gx * gw)
    y = fp4gemm.mm_fp4(xq, wq.T, xsf, wsf.T, alpha, out_dtype, backend=backend,
                       a_sf_layout=lay, b_sf_layout=lay)
    check_close(y, dequant64(xq, xsf, swizzled), dequant64(wq, wsf, swizzled), alpha.item())
    # out= given (a row-strided view of a wider buffer), and alpha as a Python float
    big = torch.full((m, n + 64), 3.0, device=DEV, dtype=out_dtype)
    got = fp4gemm.mm_fp4(xq, wq.T, xsf, wsf.T, alpha.item(), out_dtype, big[:, 32:32 + n],
                         backend=backend, a_sf_layout=lay, b_sf_layout=lay)
    assert torch.equal(got, y) and torch.equal(big[:, 32:32 + n], y)
    assert bool((big[:, :32] == 3).all()) and bool((big[:, 32 + n:] == 3).all())


@pytest.mark.parametrize("a_dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_w4a16(a_dtype, backend):
    m, n, k = 16, 1024, 2048
    skip_unless_runs(backend, m, n, k, a_dtype=str(a_dtype).split(".")[1])
    x, _, (wq, wsf, gw) = operands(m, n, k, 4, a_dtype=a_dtype)
    y = fp4gemm.mm_fp4(x, wq.T, None, wsf.T, 1.0 / gw, torch.float32, backend=backend)
    check_close(y, x.double(), dequant64(wq, wsf, True), (1.0 / gw).item())


@pytest.mark.parametrize("swizzled", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_quantize_same_bytes_as_the_cpu(swizzled, dtype):
    x = (torch.randn(300, 512, device=DEV, generator=gen(5)) * 4).to(dtype)
    gs = fp4gemm.global_scale(x)
    assert torch.equal(gs.cpu(), fp4gemm.global_scale(x.cpu()))
    q, sf = fp4gemm.fp4_quantize(x, gs, is_sf_swizzled_layout=swizzled)
    qc, sfc = fp4gemm.fp4_quantize(x.cpu(), gs.cpu(), is_sf_swizzled_layout=swizzled)
    assert q.device == DEV and sf.device == DEV
    assert torch.equal(q.cpu(), qc) and torch.equal(sf.cpu(), sfc)
    lay = "swizzled" if swizzled else "linear"
    back = fp4gemm.sf_convert(sf, 300, 512, lay, "linear" if swizzled else "swizzled")
    assert torch.equal(back.cpu(), fp4gemm.sf_convert(sfc, 300, 512, lay, "linear" if swizzled else "swizzled"))


def _step(x, gw, wq, wsf):
    gx = fp4gemm.global_scale(x)
    xq, xsf = fp4gemm.fp4_quantize(x, gx)
    return fp4gemm.mm_fp4(xq, wq.T, xsf, wsf.T, 1.0 / (gx * gw), torch.bfloat16)


def test_runs_on_torch_current_stream():
    """The inputs are written on a side stream behind a ~50 ms spin; a call on that stream
    that ran on another (the legacy default stream, which a torch side stream does not wait
    for) would read the old inputs."""
    m, n, k = 64, 1024, 1024
    _, _, (wq, wsf, gw) = operands(1, n, k, 6)
    x_old = torch.zeros(m, k, device=DEV, dtype=torch.bfloat16)
    x_new = torch.randn(m, k, device=DEV, generator=gen(7)).to(torch.bfloat16)
    want = _step(x_new, gw, wq, wsf)
    _step(x_old, gw, wq, wsf)
    torch.cuda.synchronize()
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        torch.cuda._sleep(100_000_000)  # cycles: tens of ms
        x_old.copy_(x_new)
        y = _step(x_old, gw, wq, wsf)
    s.synchronize()
    assert torch.equal(y, want)


def test_current_stream_handle():
    """fp4gemm reads torch's current stream as a raw handle, without the Stream object
    torch.cuda.current_stream() makes: the same handle as that call's .cuda_stream on the
    default stream, on a side stream and while a CUDA graph captures."""
    from fp4gemm import _torch_ops
    from fp4gemm._tensors import torch_current_stream
    d = DEV.index

    def handles():
        return (torch_current_stream(d), _torch_ops._current_raw_stream(d),
                torch.cuda.current_stream(d).cuda_stream)

    assert len(set(handles())) == 1
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        assert set(handles()) == {s.cuda_stream}
    x = torch.zeros(4, device=DEV)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        x.add_(1)
        during = handles()
    assert len(set(during)) == 1 and during[0] != torch.cuda.current_stream(d).cuda_stream


def test_cuda_graph_capture_and_replay():
    m, n, k = 32, 2048, 4096
    _, _, (wq, wsf, gw) = operands(1, n, k, 8)
    static_x = torch.randn(m, k, device=DEV, generator=gen(9)).to(torch.bfloat16)
    s = torch.cuda.Stream()  # warm up on a side stream, as torch's graph docs ask (contexts, plans)
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(2):
            _step(static_x, gw, wq, wsf)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        static_y = _step(static_x, gw, wq, wsf)
    for seed in (10, 11, 12):
        x = torch.randn(m, k, device=DEV, generator=gen(seed)).to(torch.bfloat16)
        static_x.copy_(x)
        g.replay()
        torch.cuda.synchronize()
        assert torch.equal(static_y, _step(x, gw, wq, wsf)), f"replay with seed {seed}"


@pytest.mark.parametrize("mode", [None, "reduce-overhead"])
def test_torch_compile_cuda(mode):
    torch._dynamo.reset()
    _, _, (wq, wsf, gw) = operands(1, 1024, 2048, 13)
    f = torch.compile(_step, fullgraph=True, mode=mode)
    for m in (1, 16, 100):
        x = torch.randn(m, 2048, device=DEV, generator=gen(m)).to(torch.bfloat16)
        for _ in range(3):  # reduce-overhead records its CUDA graph on a later call
            y = f(x, gw, wq, wsf).clone()
        assert torch.equal(y, _step(x, gw, wq, wsf))
    explain = torch._dynamo.explain(_step)(x, gw, wq, wsf)
    assert explain.graph_break_count == 0, explain.break_reasons


def bad_calls():
    m, n, k = 4, 64, 128
    _, (xq, xsf, gx), (wq, wsf, gw) = operands(m, n, k, 14)
    alpha = 1.0 / (gx * gw)
    good = dict(a=xq, b=wq.T, a_descale=xsf, b_descale=wsf.T, alpha=alpha, out_dtype=torch.float32)
    cases = [
        (dict(a=xq.cpu()), ValueError, "different devices"),  # a CPU tensor to a GPU op
        (dict(b_descale=wsf.T.cpu()), ValueError, "different devices"),
        (dict(alpha=alpha.cpu()), ValueError, "alpha"),
        (dict(alpha=alpha.double()), ValueError, "one float32"),
        (dict(a=xq.to(torch.int16)), TypeError, "dtype"),
        (dict(b=wq.T.contiguous()), ValueError, "transpose"),
        (dict(a_descale=xsf[:1]), ValueError, "bytes"),
        (dict(backend="cpu"), fp4gemm.Fp4GemmError, "FP4_ERR"),  # a CPU backend on a GPU context
        (dict(backend="cudnn"), fp4gemm.Fp4GemmError, "cudnn"),
    ]
    assert len(cases) == N_BAD, "a bad case added or removed: change N_BAD so that every one runs"
    return good, cases, (m, n)


N_BAD = 9


@pytest.mark.parametrize("i", range(N_BAD))
def test_bad_input_raises_and_writes_nothing(i):
    good, cases, (m, n) = bad_calls()
    change, exc, match = cases[i]
    out = torch.full((m, n), 1234.5, device=DEV)
    with pytest.raises(exc, match=match):
        fp4gemm.mm_fp4(out=out, **dict(good, **change))
    torch.cuda.synchronize()
    assert bool((out == 1234.5).all())


def test_out_on_the_cpu_is_refused():
    good, _, (m, n) = bad_calls()
    out = torch.full((m, n), 1234.5)
    with pytest.raises(ValueError, match="different devices"):
        fp4gemm.mm_fp4(out=out, **good)
    assert bool((out == 1234.5).all())

"""Host overhead per call of the Python binding: a tiny mm_fp4 (m = 1, n = 8, k = 16) whose
GEMM costs well under a microsecond, timed against the same GEMM's C call alone (ctypes
calling fp4_gemm with a prebuilt descriptor) and an empty ctypes call; with torch installed,
the same through the torch.library ops on CPU tensors, next to torch's own torch.mm of the
same size; with a CUDA device, the same on CUDA tensors (calls are asynchronous: each run
of N calls ends with a synchronize, so a row is the host's cost per call whenever the GPU
keeps up; the GEMM itself takes a few microseconds there). Prints microseconds per call
(median of 7 runs of N calls).
Usage: python python/bench/overhead.py"""
import ctypes
import platform
import statistics
import time

import numpy as np

import fp4gemm
from fp4gemm import _lib as L
from fp4gemm import _api
from fp4gemm._api import _tactic_into
from fp4gemm._arrays import ptr


def per_call_us(fn, n=20000, sync=None):
    runs = []
    for _ in range(7):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        if sync:
            sync()
        runs.append((time.perf_counter() - t) / n * 1e6)
    return statistics.median(runs)


def main():
    m, n, k = 1, 8, 16
    rng = np.random.default_rng(0)
    x = rng.standard_normal((m, k)).astype(np.float32)
    w = rng.standard_normal((n, k)).astype(np.float32)
    xq, xsf = fp4gemm.fp4_quantize(x, 1.0)
    wq, wsf = fp4gemm.fp4_quantize(w, 1.0)
    out = np.empty((m, n), np.float32)
    b, bsf = wq.T, wsf.T
    alpha = np.ones(1, np.float32)
    d = L.GemmDesc()
    L.lib.fp4_gemm_desc_init(ctypes.byref(d))
    d.m, d.n, d.k, d.a_dtype, d.a, d.a_sf, d.b, d.b_sf = m, n, k, L.DTYPE_E2M1, ptr(xq), ptr(xsf), ptr(wq), ptr(wsf)
    d.a_sf_layout = d.b_sf_layout = L.SF_SWIZZLED
    d.d_dtype, d.d, d.alpha = L.DTYPE_F32, ptr(out), 1.0
    _tactic_into(d, "auto")
    ctx = L.cpu_ctx()
    dref = ctypes.byref(d)
    ext = L.ext

    def ctypes_only(fn):
        def run():
            L.ext = None
            try:
                return per_call_us(fn)
            finally:
                L.ext = ext
        return run

    call = lambda: fp4gemm.mm_fp4(xq, b, xsf, bsf, alpha, "float32", out)
    rows = [
        ("empty ctypes call (fp4_get_log_level)", lambda: L.lib.fp4_get_log_level()),
        ("fp4_gemm through ctypes, prebuilt descriptor", lambda: L.lib.fp4_gemm(ctx, dref)),
        ("mm_fp4(..., out=out) float32" + (" (C glue)" if ext else " (ctypes: no C glue built)"), call),
        ("mm_fp4(...) allocating the output", lambda: fp4gemm.mm_fp4(xq, b, xsf, bsf, alpha, "float32")),
        ("mm_fp4(..., out=out), the cache of checked calls emptied first (every check runs)",
         lambda: (_api._NP_PLANS.clear(), call())),
        ("mm_fp4(..., backend='cpu_ref', out=out)", lambda: fp4gemm.mm_fp4(xq, b, xsf, bsf, alpha, "float32", out, backend="cpu_ref")),
    ]
    print(f"# {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"numpy {np.__version__}, fp4gemm {fp4gemm.__version__}, m={m} n={n} k={k}")
    for name, fn in rows:
        print(f"{per_call_us(fn):8.2f} us  {name}")
    if ext is not None:
        print(f"{ctypes_only(call)():8.2f} us  mm_fp4(..., out=out) float32 through ctypes alone")
    torch_rows(xq, xsf, wq, wsf)


def torch_rows(xq, xsf, wq, wsf):
    try:
        import torch
    except ImportError:
        print("# torch not installed: no torch rows")
        return
    from fp4gemm._api import _mm_fp4
    from fp4gemm._torch_ops import _gemm
    op_out = torch.ops.fp4gemm.mm_fp4_out.default
    t = torch.from_numpy
    a, asf, b, bsf = t(xq), t(xsf), t(wq).T, t(wsf).T
    alpha = torch.ones(1)
    out = torch.empty(a.shape[0], b.shape[1])
    x, y = torch.randn(1, 16), torch.randn(16, 8)
    f = torch.compile(lambda a, b, c, d, e, o: fp4gemm.mm_fp4(a, b, c, d, e, torch.float32, o),
                      fullgraph=True)
    f(a, b, asf, bsf, alpha, out)
    n = 5000
    print(f"# torch {torch.__version__}, CPU tensors, {torch.get_num_threads()} threads")
    for name, fn in [
        ("torch.mm(x[1,16], y[16,8], out=o): torch's own op, for scale", lambda: torch.mm(x, y, out=out)),
        ("fp4gemm.mm_fp4(..., out=out): eager, the op's kernel without the dispatcher", lambda: fp4gemm.mm_fp4(a, b, asf, bsf, alpha, torch.float32, out)),
        ("fp4gemm.mm_fp4(...) allocating: likewise (op fp4gemm::mm_fp4's kernel)", lambda: fp4gemm.mm_fp4(a, b, asf, bsf, alpha, torch.float32)),
        ("torch.ops.fp4gemm.mm_fp4(...) called directly", lambda: torch.ops.fp4gemm.mm_fp4(a, b, asf, bsf, alpha, torch.float32)),
        ("torch.ops.fp4gemm.mm_fp4_out.default(...) called directly (the dispatcher)", lambda: op_out(a, b, asf, bsf, alpha, torch.float32, out)),
        ("the ops' kernel alone, a checked call replayed (_torch_ops._gemm)", lambda: _gemm(a, b, asf, bsf, alpha, torch.float32, out, 16, False, "auto", True, "swizzled", "swizzled")),
        ("the array path on torch tensors, every check (a call of a new kind)", lambda: _mm_fp4(a, b, asf, bsf, alpha, torch.float32, out, 16, False, "auto", True, "swizzled", "swizzled", None)),
        ("torch.compile(fullgraph=True) function calling mm_fp4(out=)", lambda: f(a, b, asf, bsf, alpha, out)),
    ]:
        print(f"{per_call_us(fn, n):8.2f} us  {name}")
    if torch.cuda.is_available():
        cuda_rows(torch, a, asf, b, bsf)


def cuda_rows(torch, a, asf, b, bsf):
    """The same calls on CUDA tensors of device 0; each run ends with a synchronize."""
    dev = torch.device("cuda", 0)
    a, asf, b, bsf = (v.to(dev) for v in (a, asf, b, bsf))
    alpha = torch.ones(1, device=dev)
    out = torch.empty(a.shape[0], b.shape[1], device=dev)
    x, y = torch.randn(1, 16, device=dev), torch.randn(16, 8, device=dev)
    f = torch.compile(lambda a, b, c, d, e, o: fp4gemm.mm_fp4(a, b, c, d, e, torch.float32, o),
                      fullgraph=True)
    f(a, b, asf, bsf, alpha, out)
    fp4gemm.mm_fp4(a, b, asf, bsf, alpha, torch.float32, out)
    # a CUDA graph of 100 calls, replayed: the launch cost without Python per call
    g, reps = torch.cuda.CUDAGraph(), 100
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        fp4gemm.mm_fp4(a, b, asf, bsf, alpha, torch.float32, out)
        with torch.cuda.graph(g, stream=s):
            for _ in range(reps):
                fp4gemm.mm_fp4(a, b, asf, bsf, alpha, torch.float32, out)
    torch.cuda.synchronize()
    sync = torch.cuda.synchronize
    n = 5000
    print(f"# torch {torch.__version__}, CUDA tensors on {torch.cuda.get_device_name(0)}, "
          f"host CPU {platform.processor() or platform.machine()}")
    for name, fn, calls in [
        ("torch.mm(x[1,16], y[16,8], out=o) on CUDA: torch's own op, for scale", lambda: torch.mm(x, y, out=out), 1),
        ("fp4gemm.mm_fp4(..., out=out) on CUDA tensors, eager", lambda: fp4gemm.mm_fp4(a, b, asf, bsf, alpha, torch.float32, out), 1),
        ("fp4gemm.mm_fp4(...) on CUDA tensors, allocating", lambda: fp4gemm.mm_fp4(a, b, asf, bsf, alpha, torch.float32), 1),
        ("torch.ops.fp4gemm.mm_fp4_out.default(...) on CUDA (the dispatcher)", lambda: torch.ops.fp4gemm.mm_fp4_out.default(a, b, asf, bsf, alpha, torch.float32, out), 1),
        ("torch.compile(fullgraph=True) function calling mm_fp4(out=) on CUDA", lambda: f(a, b, asf, bsf, alpha, out), 1),
        (f"a CUDA graph of {reps} mm_fp4 replayed, per GEMM (GPU time: no host work per call)", lambda: g.replay(), reps),
    ]:
        us = per_call_us(fn, n if calls == 1 else 50, sync) / calls
        print(f"{us:8.2f} us  {name}")


if __name__ == "__main__":
    main()

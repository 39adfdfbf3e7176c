"""FlashInfer-compatible entry points (fp4_quantize, mm_fp4) and fp4gemm's helpers. Each
translates its arguments into one libfp4gemm call; docs/python.md lists the differences from
FlashInfer."""
import ctypes

import numpy as np

from . import _lib as L
from ._arrays import (as_array, byte_array, dtype_code, float_input, numpy_dtype, ptr,
                      scalar, scalar_ptr, writable, BF16_NAMED)
from . import _tensors as T
from ._tensors import View

# set by _torch_ops when it registers the torch.library ops: torch.Tensor, and that module,
# whose functions call the ops (so that torch.compile sees one op, not this module's ctypes)
TORCH_TENSOR = ()
torch_ops = None


def _out_dtype(code, ndt, like):
    """The dtype of a new output next to `like`: a torch/GPU array's bfloat16 is bfloat16 even
    where numpy's stand-in is uint16 bits (no ml_dtypes)."""
    return BF16_NAMED if code == L.DTYPE_BF16 and isinstance(like, View) else ndt

_SF_ARG = {"linear": L.SF_LINEAR, "swizzled": L.SF_SWIZZLED, "swizzled_128x4": L.SF_SWIZZLED,
           "128x4": L.SF_SWIZZLED}


def _layout(x, what):
    if x == "swizzled":
        return L.SF_SWIZZLED
    if isinstance(x, bool):
        return L.SF_SWIZZLED if x else L.SF_LINEAR
    try:
        return _SF_ARG[str(x).lower()]
    except KeyError:
        raise ValueError(f"{what}: {x!r}: 'swizzled' (128x4 tiles) or 'linear'") from None


def _sf_shape(rows, k, layout):
    kb = k // 16
    if layout == L.SF_SWIZZLED:
        return ((rows + 127) // 128 * 128, (kb + 3) // 4 * 4)
    return (rows, kb)


def _nvfp4_only(sf_vec_size, sf_use_ue8m0):
    if sf_use_ue8m0:
        raise NotImplementedError("sf_use_ue8m0=True (MXFP4's UE8M0 scales): fp4gemm is NVFP4 only")
    if sf_vec_size != 16:
        raise NotImplementedError(f"sf_vec_size={sf_vec_size}: fp4gemm is NVFP4 only (blocks of 16)")


def fp4_quantize(input, global_scale=None, sf_vec_size=16, sf_use_ue8m0=False,
                 is_sf_swizzled_layout=True, is_sf_8x4_layout=False, enable_pdl=None, *,
                 dtype=None, recipe="flashinfer"):
    """NVFP4-quantizes input [M, K] (float32/float16/bfloat16; K a multiple of 16) with the
    ENCODE global scale gs (FlashInfer's: 448*6/amax, see global_scale(); None = 1.0).
    input: a numpy array, a torch tensor (CPU or CUDA: then the torch.library op
    fp4gemm::fp4_quantize runs, on torch's current stream), a CuPy/DLPack/CUDA-array-interface
    GPU array; the outputs are of the same kind on the same device. A global_scale that is a
    torch tensor or GPU array (one float32 on input's device) is read when the work runs.
    Returns (packed uint8 [M, K/2], scales uint8): [round_up(M,128), round_up(K/16,4)] when
    is_sf_swizzled_layout (128x4 tiles, padding 0), else [M, K/16]. Bit-exact with FlashInfer's
    quantizer (docs/format.md). dtype: what the elements are when it is not the array's own
    (a uint16 array of bf16 bits: dtype='bfloat16'). recipe: 'flashinfer' or 'modelopt'
    (then global_scale is ModelOpt's DECODE scale amax/2688)."""
    if isinstance(input, TORCH_TENSOR) and dtype is None and recipe == "flashinfer":
        return torch_ops.fp4_quantize(input, global_scale, sf_vec_size, sf_use_ue8m0,
                                      is_sf_swizzled_layout, is_sf_8x4_layout, enable_pdl)
    return _fp4_quantize(input, global_scale, sf_vec_size, sf_use_ue8m0, is_sf_swizzled_layout,
                         is_sf_8x4_layout, dtype, recipe)


def _fp4_quantize(input, global_scale, sf_vec_size, sf_use_ue8m0, is_sf_swizzled_layout,
                  is_sf_8x4_layout, dtype, recipe):
    """fp4_quantize on arrays (what the torch op runs too)."""
    _nvfp4_only(sf_vec_size, sf_use_ue8m0)
    if is_sf_8x4_layout:
        raise NotImplementedError("is_sf_8x4_layout=True: fp4gemm has the 128x4 and linear layouts only")
    x, code, ld = float_input(input, "fp4_quantize: input", dtype)
    rows, k = x.shape
    if k % 16:
        raise ValueError(f"fp4_quantize: K = {k} is not a multiple of 16")
    layout = L.SF_SWIZZLED if is_sf_swizzled_layout else L.SF_LINEAR
    dev = T.device_of("fp4_quantize", input=x)
    gs, gs_ptr = scalar_ptr(global_scale, "fp4_quantize: global_scale", dev)
    q, q_obj = T.empty(x, (rows, k // 2), np.uint8, "fp4_quantize")
    sf, sf_obj = T.empty(x, _sf_shape(rows, k, layout), np.uint8, "fp4_quantize")
    d = L.QuantDesc()
    L.lib.fp4_quant_desc_init(ctypes.byref(d))
    d.rows, d.k, d.in_dtype, d.in_, d.ld_in = rows, k, code, ptr(x), ld
    d.global_scale = 1.0 if gs is None else gs
    d.global_scale_ptr = gs_ptr
    d.out_q, d.out_sf, d.sf_layout = ptr(q), ptr(sf), layout
    d.stream = T.stream_of(dev, x) or None
    if recipe != "flashinfer":
        d.recipe = {"modelopt": 1}.get(recipe, -1)
    ctx = L.ctx_for(dev)
    L.check(L.lib.fp4_quantize(ctx, ctypes.byref(d)), ctx, "fp4_quantize")
    return q_obj, sf_obj


def mm_fp4(a, b, a_descale, b_descale, alpha=None, out_dtype="bfloat16", out=None,
           block_size=16, use_8x4_sf_layout=False, backend="auto", use_nvfp4=True, *,
           a_sf_layout="swizzled", b_sf_layout="swizzled", a_dtype=None):
    """out[M, N] = alpha * a @ dequant(b) in FP32, rounded to out_dtype.

    W4A4: a is packed uint8 [M, K/2] with a_descale its E4M3 scales; alpha = 1/(gs_a*gs_b).
    W4A16: a is float16/bfloat16 [M, K] (a uint16 array of bf16 bits with a_dtype='bfloat16'),
    a_descale None; alpha = 1/gs_b.
    b is FlashInfer's [K/2, N]: the transpose view w.T of the stored C-contiguous weight
    w [N, K/2]; b_descale likewise w_sf.T (or w_sf itself: only its bytes are read).
    Scales are swizzled (128x4) unless a_sf_layout / b_sf_layout say 'linear'.
    alpha: None (1.0), a float or a one-element array. out_dtype: 'bfloat16' (default, as
    FlashInfer), 'float16', 'float32', or a numpy/ml_dtypes/torch dtype; a bf16 result is an
    ml_dtypes.bfloat16 array if ml_dtypes is installed, else uint16 holding the bits.
    out: [M, N] array of that dtype with contiguous rows, written only on success.
    backend: 'auto', an fp4gemm backend ('cpu', 'cpu_ref', 'cuda_mma', ...) or tactic
    ('cpu_ref/default'); one that cannot run raises Fp4GemmError with the library's reason.
    Arrays: numpy, torch tensors (CPU or CUDA: then the torch.library op fp4gemm::mm_fp4 runs,
    on torch's current stream), CuPy/DLPack/CUDA-array-interface GPU arrays; all on one
    device; the result is of a's kind on that device. An alpha that is a torch tensor or GPU
    array (one float32 on that device) is read when the GEMM runs (CUDA-graph capturable)."""
    if isinstance(a, TORCH_TENSOR) and a_dtype is None:
        return torch_ops.mm_fp4(a, b, a_descale, b_descale, alpha, out_dtype, out, block_size,
                                use_8x4_sf_layout, backend, use_nvfp4, a_sf_layout=a_sf_layout,
                                b_sf_layout=b_sf_layout)
    if (type(a) is _ND and type(b) is _ND and type(b_descale) is _ND and L.ext is not None
            and (a_descale is None or type(a_descale) is _ND) and (out is None or type(out) is _ND)
            and (alpha is None or type(alpha) in _ALPHA)):
        # numpy alone: a call like one whose checks passed replays it (see _NP_PLANS)
        key = (a.shape, a.strides, a.dtype, b.shape, b.strides, b.dtype, b_descale.shape,
               b_descale.strides, b_descale.dtype,
               None if a_descale is None else (a_descale.shape, a_descale.strides, a_descale.dtype),
               None if out is None else (out.shape, out.strides, out.dtype, out.flags.writeable),
               out_dtype, block_size, use_8x4_sf_layout, backend, use_nvfp4, a_sf_layout,
               b_sf_layout, a_dtype)
        try:
            p = _NP_PLANS.get(key)
        except TypeError:  # an unhashable argument: the full path says what is wrong with it
            p = key = None
        if p is not None:
            head, tail, (va, vas, vb, vbs, vd), odt = p
            al = scalar(alpha, "mm_fp4: alpha")
            res = out if out is not None else np.empty(head[:2], odt)
            ctx = L.cpu_ctx()
            st = L.ext.gemm(ctx, a if va is None else a.view(va),
                            None if a_descale is None else a_descale if vas is None else a_descale.view(vas),
                            b if vb is None else b.view(vb), b_descale if vbs is None else b_descale.view(vbs),
                            res if vd is None else res.view(vd), *head, 1.0 if al is None else al, *tail,
                            None, 0)
            L.check(st, ctx, "fp4_gemm")
            return res
        if key is not None:
            plan = []
            res = _mm_fp4(a, b, a_descale, b_descale, alpha, out_dtype, out, block_size,
                          use_8x4_sf_layout, backend, use_nvfp4, a_sf_layout, b_sf_layout, a_dtype,
                          plan)
            args, dev, arrays = plan[0]
            # cached where the checks passed these very arrays on (the glue got them or
            # _plain's same-size integer views of them, replayed by dtype)
            if dev < 0 and args[16] is None and all(
                    x is y for x, y in zip(arrays, (a, a_descale, b, b_descale, res))):
                if len(_NP_PLANS) >= 256:
                    _NP_PLANS.clear()
                _NP_PLANS[key] = (args[5:13], args[14:16],
                                  tuple(None if x is y else x.dtype
                                        for x, y in zip(args[:5], arrays)), res.dtype)
            return res
    return _mm_fp4(a, b, a_descale, b_descale, alpha, out_dtype, out, block_size,
                   use_8x4_sf_layout, backend, use_nvfp4, a_sf_layout, b_sf_layout, a_dtype)


# numpy calls whose checks passed: the glue's arguments after the arrays, by everything the
# checks read (each array's shape, byte strides and dtype, out's writeability, the other
# arguments; alpha is read on every call). Bounded (cleared when full). A call that matches
# skips the checks (they would pass again); the first of a kind runs the full path, which
# raises for bad arguments before anything is written.
_NP_PLANS = {}
_ND = np.ndarray
_ALPHA = (int, float, np.ndarray)


def _mm_fp4(a, b, a_descale, b_descale, alpha, out_dtype, out, block_size, use_8x4_sf_layout,
            backend, use_nvfp4, a_sf_layout, b_sf_layout, a_dtype, plan=None):
    """mm_fp4 on arrays (what the torch ops run too). plan: a list, or None; a list gets, when
    the checks pass and the C glue makes the call, the arguments of L.ext.gemm after ctx
    (the torch ops' cache of checked calls, _torch_ops._gemm, replays them) and the device."""
    if block_size != 16 or not use_nvfp4:
        raise NotImplementedError("fp4gemm is NVFP4 only: block_size=16, use_nvfp4=True")
    if use_8x4_sf_layout:
        raise NotImplementedError("use_8x4_sf_layout=True: fp4gemm has the 128x4 and linear layouts only")
    sa, a_layout = None, L.SF_LINEAR
    a_arr = as_array(a, "mm_fp4: a")
    if a_arr.ndim != 2:
        raise ValueError(f"mm_fp4: a must be 2-D, got shape {a_arr.shape}")
    w4a4 = a_dtype is None and a_arr.dtype == np.uint8
    b = byte_array(b, "mm_fp4: b", transposed=True)
    if b.ndim != 2:
        raise ValueError(f"mm_fp4: b must be 2-D [K/2, N], got shape {b.shape}")
    kh, n = b.shape
    k = 2 * kh
    m = a_arr.shape[0]
    if w4a4:
        a_arr = byte_array(a_arr, "mm_fp4: a")
        if a_arr.shape[1] != kh:
            raise ValueError(f"mm_fp4: a is [{m}, {a_arr.shape[1]}] and b [{kh}, {n}]: "
                             "K/2 differs (a: packed [M, K/2]; b: [K/2, N])")
        a_code = L.DTYPE_E2M1
        if a_descale is None:
            raise ValueError("mm_fp4: a_descale is needed with a packed FP4 a (W4A4)")
        a_layout = _layout(a_sf_layout, "mm_fp4: a_sf_layout")
        sa = byte_array(a_descale, "mm_fp4: a_descale",
                                   L.lib.fp4_sf_bytes(m, k, a_layout) if k % 16 == 0 else None)
    else:
        a_arr, code, ld = float_input(a_arr, "mm_fp4: a", a_dtype)
        if code == L.DTYPE_F32:
            raise TypeError("mm_fp4: a is float32; W4A16 takes float16 or bfloat16 activations "
                            "(or packed uint8 FP4 for W4A4)")
        if a_arr.shape[1] != k:
            raise ValueError(f"mm_fp4: a is [{m}, {a_arr.shape[1]}] and b [{kh}, {n}]: "
                             f"W4A16 needs a [M, K] with K = 2 * {kh}")
        if ld != k:
            raise ValueError("mm_fp4: a (W4A16) must be C-contiguous")
        if a_descale is not None:
            raise ValueError("mm_fp4: a_descale must be None with a float16/bfloat16 a (W4A16)")
        a_code = code
    if k % 16:
        raise ValueError(f"mm_fp4: K = {k} is not a multiple of 16")
    b_layout = _layout(b_sf_layout, "mm_fp4: b_sf_layout")
    sb = as_array(b_descale, "mm_fp4: b_descale")
    sb = byte_array(sb, "mm_fp4: b_descale", L.lib.fp4_sf_bytes(n, k, b_layout),
                    transposed=sb.ndim == 2 and not sb.flags.c_contiguous)
    code = dtype_code(out_dtype, "mm_fp4: out_dtype")
    ndt = numpy_dtype(code)
    if out is not None:
        ok = (ndt,) if code != L.DTYPE_BF16 else (ndt, np.dtype(np.uint16), BF16_NAMED)
        res = writable(out, "mm_fp4: out", (m, n), ok)
        if n > 1 and res.strides[1] != res.dtype.itemsize or m > 1 and res.strides[0] % res.dtype.itemsize:
            raise ValueError(f"mm_fp4: out must have contiguous rows, strides {res.strides}")
    # numpy alone (the fast path): the CPU, no stream
    host = (type(a_arr) is np.ndarray and type(b) is np.ndarray and type(sb) is np.ndarray
            and (sa is None or type(sa) is np.ndarray) and (out is None or type(res) is np.ndarray)
            and (alpha is None or isinstance(alpha, (int, float, np.ndarray))))
    if host:
        dev, al_ptr, stream = -1, None, 0
        al = scalar(alpha, "mm_fp4: alpha")
    else:
        dev = T.device_of("mm_fp4", a=a_arr, a_descale=sa, b=b, b_descale=sb,
                          out=res if out is not None else None)
        al, al_ptr = scalar_ptr(alpha, "mm_fp4: alpha", dev)
    al = 1.0 if al is None else al
    if out is None:
        res, out = T.empty(a_arr, (m, n), _out_dtype(code, ndt, a_arr), "mm_fp4")
    ldd = res.strides[0] // res.itemsize if m > 1 else n
    if host:
        ctx = L.cpu_ctx()
    else:
        stream = T.stream_of(dev, a_arr, b, res)
        ctx = L.ctx_for(dev)
    if L.ext is not None:  # the C glue: buffers -> descriptor -> fp4_gemm
        be, cfg = _tactic(backend)
        args = (_plain(a_arr), None if sa is None else _plain(sa), _plain(b), _plain(sb),
                _plain(res), m, n, k, a_code, a_layout, b_layout, code, ldd, al, be, cfg, al_ptr)
        if plan is not None:
            plan.append((args, dev, (a_arr, sa, b, sb, res)))
        st = L.ext.gemm(ctx, *args, stream)
        L.check(st, ctx, "fp4_gemm")
        return out
    d = L.GemmDesc()  # ctypes alone
    L.lib.fp4_gemm_desc_init(ctypes.byref(d))
    d.m, d.n, d.k, d.a_dtype, d.a, d.a_sf_layout = m, n, k, a_code, ptr(a_arr), a_layout
    d.a_sf = None if sa is None else ptr(sa)
    d.b, d.b_sf, d.b_sf_layout = ptr(b), ptr(sb), b_layout
    d.d, d.d_dtype, d.ldd, d.alpha, d.alpha_ptr = ptr(res), code, ldd, al, al_ptr
    d.stream = stream or None
    _tactic_into(d, backend)
    L.check(L.lib.fp4_gemm(ctx, ctypes.byref(d)), ctx, "fp4_gemm")
    return out


_TACTICS = {}


def _tactic(backend):
    """(backend, config) for a backend or tactic name, memoized."""
    t = _TACTICS.get(backend)
    if t is None:
        tt = L.Tactic()
        st = L.lib.fp4_tactic_from_name(str(backend).encode(), ctypes.byref(tt))
        L.check(st, None, f"backend {backend!r}")
        t = _TACTICS[backend] = (tt.backend, tt.config)
    return t


def _tactic_into(d, backend):
    d.backend, d.config = _tactic(backend)


def _plain(x):
    """x itself, or a same-size integer view of an ml_dtypes array (numpy exports no buffer
    for those dtypes); a View's data address."""
    if isinstance(x, View):
        return x.ptr
    if x.dtype.kind == "V" or x.dtype.char not in "BHefd":
        return x.view({1: np.uint8, 2: np.uint16}[x.dtype.itemsize])
    return x


def global_scale(x, dtype=None):
    """FlashInfer's encode global scale of x: 448*6/amax(|x|) (NaN ignored; 1 for an all-zero
    x), as float32 [1]: the global_scale argument of fp4_quantize. A torch tensor goes through
    the op fp4gemm::global_scale; the result is on x's device, of x's kind."""
    if isinstance(x, TORCH_TENSOR) and dtype is None:
        return torch_ops.global_scale(x)
    return _global_scale(x, dtype)


def _global_scale(x, dtype):
    x, code, ld = float_input(x, "global_scale: x", dtype)
    dev = T.device_of("global_scale", x=x)
    out, obj = T.empty(x, (1,), np.float32, "global_scale")
    ctx = L.ctx_for(dev)
    L.check(L.lib.fp4_global_scale(ctx, x.shape[0], x.shape[1], code, ptr(x), ld, ptr(out),
                                   T.stream_of(dev, x) or None), ctx, "fp4_global_scale")
    return obj


def dequantize(q, sf, global_scale=None, is_sf_swizzled_layout=True, out_dtype="float32"):
    """Decodes packed q [M, K/2] with its scales into out_dtype [M, K]: e2m1 * e4m3 / gs
    (gs the ENCODE scale fp4_quantize took; None = 1). Torch tensors: the op fp4gemm::dequantize."""
    if isinstance(q, TORCH_TENSOR):
        return torch_ops.dequantize(q, sf, global_scale, is_sf_swizzled_layout, out_dtype)
    return _dequantize(q, sf, global_scale, is_sf_swizzled_layout, out_dtype)


def _dequantize(q, sf, global_scale, is_sf_swizzled_layout, out_dtype):
    q = byte_array(q, "dequantize: q")
    if q.ndim != 2:
        raise ValueError(f"dequantize: q must be 2-D [M, K/2], got shape {q.shape}")
    rows, k = q.shape[0], 2 * q.shape[1]
    if k % 16:
        raise ValueError(f"dequantize: K = {k} is not a multiple of 16")
    d = L.DequantDesc()
    L.lib.fp4_dequant_desc_init(ctypes.byref(d))
    d.sf_layout = _layout(is_sf_swizzled_layout, "dequantize: is_sf_swizzled_layout")
    sf = byte_array(sf, "dequantize: sf", L.lib.fp4_sf_bytes(rows, k, d.sf_layout))
    code = dtype_code(out_dtype, "dequantize: out_dtype")
    dev = T.device_of("dequantize", q=q, sf=sf)
    out, obj = T.empty(q, (rows, k), _out_dtype(code, numpy_dtype(code), q), "dequantize")
    gs, gs_ptr = scalar_ptr(global_scale, "dequantize: global_scale", dev)
    d.rows, d.k, d.q, d.sf = rows, k, ptr(q), ptr(sf)
    d.global_scale, d.global_scale_ptr = 1.0 if gs is None else gs, gs_ptr
    d.out_dtype, d.out = code, ptr(out)
    d.stream = T.stream_of(dev, q) or None
    ctx = L.ctx_for(dev)
    L.check(L.lib.fp4_dequantize(ctx, ctypes.byref(d)), ctx, "fp4_dequantize")
    return obj


def sf_convert(sf, rows, k, src="linear", dst="swizzled"):
    """Rewrites the scales of a [rows, k] tensor from layout src to dst ('linear' [rows, k/16]
    <-> 'swizzled' 128x4 tiles [round_up(rows,128), round_up(k/16,4)]); bytes are moved,
    never decoded. Torch tensors: the op fp4gemm::sf_convert."""
    if isinstance(sf, TORCH_TENSOR):
        return torch_ops.sf_convert(sf, rows, k, src, dst)
    return _sf_convert(sf, rows, k, src, dst)


def _sf_convert(sf, rows, k, src, dst):
    sl, dl = _layout(src, "sf_convert: src"), _layout(dst, "sf_convert: dst")
    if rows < 1 or k < 16 or k % 16:
        raise ValueError(f"sf_convert: rows = {rows}, k = {k}: rows >= 1, k a positive multiple of 16")
    sf = byte_array(sf, "sf_convert: sf", L.lib.fp4_sf_bytes(rows, k, sl))
    dev = T.device_of("sf_convert", sf=sf)
    out, obj = T.empty(sf, _sf_shape(rows, k, dl), np.uint8, "sf_convert")
    ctx = L.ctx_for(dev)
    L.check(L.lib.fp4_sf_convert(ctx, rows, k, ptr(sf), sl, ptr(out), dl, T.stream_of(dev, sf) or None),
            ctx, "fp4_sf_convert")
    return obj


def _probe_desc(m, n, k, a_dtype, out_dtype, backend, sf_layout="swizzled"):
    """A descriptor for [m, n, k] whose pointers are a small aligned dummy buffer: selection
    judges the problem, never reads the data."""
    d = L.GemmDesc()
    L.lib.fp4_gemm_desc_init(ctypes.byref(d))
    d.m, d.n, d.k = m, n, k
    d.a_dtype = L.DTYPE_E2M1 if a_dtype in (None, "e2m1", "fp4", "nvfp4") else dtype_code(a_dtype, "a_dtype")
    d.a_sf_layout = d.b_sf_layout = _layout(sf_layout, "sf_layout")
    d.d_dtype = dtype_code(out_dtype, "out_dtype")
    dummy = _DUMMY.__array_interface__["data"][0]
    d.a = d.b = d.b_sf = d.d = dummy
    d.a_sf = dummy if d.a_dtype == L.DTYPE_E2M1 else None
    _tactic_into(d, backend)
    return d


_DUMMY = np.zeros(64, np.uint8)


def select(m, n, k, a_dtype="e2m1", out_dtype="bfloat16", backend="auto", device=-1,
           sf_layout="swizzled"):
    """What mm_fp4 would run for an [m, n, k] problem on `device` (-1 the CPU, 0.. a CUDA
    ordinal), and why: (tactic name, reason), e.g. ('cpu/avx2_4x16', 'auto: policy for the
    CPU ...'). a_dtype 'e2m1' (W4A4) or 'bfloat16'/'float16' (W4A16); sf_layout the scales'
    ('swizzled' or 'linear'). A backend that cannot run it raises Fp4GemmError with the reason."""
    d = _probe_desc(m, n, k, a_dtype, out_dtype, backend, sf_layout)
    t = L.Tactic()
    why = ctypes.create_string_buffer(512)
    ctx = L.ctx_for(device)
    L.check(L.lib.fp4_gemm_select(ctx, ctypes.byref(d), ctypes.byref(t), why, 512), ctx, "fp4_gemm_select")
    return _tactic_name(t), why.value.decode()


def list_tactics(m, n, k, a_dtype="e2m1", out_dtype="bfloat16", device=-1, sf_layout="swizzled"):
    """Every tactic that can run the problem on `device` (-1 the CPU), in auto's order."""
    d = _probe_desc(m, n, k, a_dtype, out_dtype, "auto", sf_layout)
    buf = (L.Tactic * 256)()
    cnt = ctypes.c_int()
    ctx = L.ctx_for(device)
    L.check(L.lib.fp4_gemm_list_tactics(ctx, ctypes.byref(d), buf, 256, ctypes.byref(cnt)), ctx,
            "fp4_gemm_list_tactics")
    return [_tactic_name(buf[i]) for i in range(min(cnt.value, 256))]


def _tactic_name(t):
    name = ctypes.create_string_buffer(64)
    L.check(L.lib.fp4_tactic_name(t, name, 64), None, "fp4_tactic_name")
    return name.value.decode()


def set_num_threads(n):
    """Threads of the `cpu` backend on this thread's context (0: OpenMP's default)."""
    ctx = L.cpu_ctx()
    L.check(L.lib.fp4_ctx_set_num_threads(ctx, int(n)), ctx, "fp4_ctx_set_num_threads")


def info():
    """The library's build and this machine, as a dict."""
    cnt = ctypes.c_int()
    L.lib.fp4_device_count(ctypes.byref(cnt))
    ctx = L.cpu_ctx()
    return {"version": L.lib.fp4_version().decode(), "library": L.path,
            "built_with_cuda": bool(L.lib.fp4_built_with_cuda()),
            "cuda_archs": L.lib.fp4_built_cuda_archs().decode(),
            "built_with_openmp": bool(L.lib.fp4_built_with_openmp()),
            "cuda_devices": cnt.value, "cpu_simd": L.lib.fp4_ctx_cpu_simd(ctx).decode(),
            "cpu_threads": L.lib.fp4_ctx_num_threads(ctx),
            "bfloat16_dtype": "ml_dtypes.bfloat16" if numpy_dtype(L.DTYPE_BF16) != np.uint16 else "uint16 (bits)",
            "log_level": L.lib.fp4_log_level_name(L.lib.fp4_get_log_level()).decode()}

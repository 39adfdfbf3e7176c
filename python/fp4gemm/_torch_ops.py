"""PyTorch custom ops (torch.library, torch >= 2.4), registered when this module is imported:
by `import fp4gemm` when torch is already imported, else on the first torch tensor fp4gemm
sees, or by fp4gemm.register_torch_ops().

    fp4gemm::mm_fp4(a, b, a_descale, b_descale, alpha=None, out_dtype=bfloat16, block_size=16,
                    use_8x4_sf_layout=False, backend="auto", use_nvfp4=True,
                    a_sf_layout="swizzled", b_sf_layout="swizzled") -> Tensor
    fp4gemm::mm_fp4_out(same..., Tensor(a!) out) -> ()    (writes out)
    fp4gemm::fp4_quantize(input, global_scale=None, sf_vec_size=16, sf_use_ue8m0=False,
                          is_sf_swizzled_layout=True, is_sf_8x4_layout=False,
                          enable_pdl=None) -> (Tensor, Tensor)
    fp4gemm::global_scale(x) -> Tensor [1] float32
    fp4gemm::dequantize(q, sf, global_scale=None, is_sf_swizzled_layout=True,
                        out_dtype=float32) -> Tensor
    fp4gemm::sf_convert(sf, rows, k, src="linear", dst="swizzled") -> Tensor

mm_fp4 and mm_fp4_out are defined with torch.library.Library (define/impl/register_fake: less
dispatch overhead than custom_op), the others with torch.library.custom_op. fp4gemm.mm_fp4 on
plain tensors in eager mode calls their kernel without the dispatcher (_direct says when), and
the kernel replays calls whose checks passed (_PLANS); docs/python.md, "Host overhead per call".
For the CPU and CUDA; each runs the array code of _api.py (one library call, on
torch.cuda.current_stream() on a GPU; scale tensors read by pointer when the work runs), so
they work in eager mode, under CUDA graph capture and, with the fake implementations below
(output shapes and dtypes only), under torch.compile(fullgraph=True). fp4gemm.mm_fp4 and
fp4gemm.fp4_quantize call them for torch tensors (the wrappers below: FlashInfer's signature,
out= through mm_fp4_out, a float alpha / global_scale made a one-element tensor on the input's
device)."""
import sys
from typing import Optional, Tuple

import torch

from . import _api
from . import _lib as L
from ._arrays import _NAMES, _dtype_code
from ._tensors import torch_current_stream

if not hasattr(torch, "library") or not hasattr(torch.library, "custom_op"):  # pragma: no cover
    raise ImportError(f"fp4gemm's torch ops need torch >= 2.4 (torch.library.custom_op); this is {torch.__version__}")

_DEVICES = ("cpu", "cuda")
_OUT = {L.DTYPE_F32: torch.float32, L.DTYPE_F16: torch.float16, L.DTYPE_BF16: torch.bfloat16}
# out_dtype given by name ("bfloat16", FlashInfer's default spelling): a table of string keys
# only, which torch.compile traces without a graph break (the numpy memo in _arrays also holds
# numpy dtype keys, which Dynamo refuses)
_OUT_NAMED = {name: _OUT[code] for name, code in _NAMES.items()}


# mm_fp4 and mm_fp4_out: the per-call ops, registered with the lower-level torch.library.Library
# (define + impl for the CPU and CUDA keys, register_fake below) rather than custom_op, whose
# Python layers (schema binding, an autograd kernel that redispatches) cost ~6 us a call here;
# these ops have no autograd formula either way (their inputs are quantized bytes).
_LIB = torch.library.Library("fp4gemm", "FRAGMENT")
_MM_ARGS = ("Tensor a, Tensor b, Tensor? a_descale, Tensor b_descale, Tensor? alpha{}, "
            "ScalarType out_dtype{}{}, SymInt block_size=16, bool use_8x4_sf_layout=False, "
            'str backend="auto", bool use_nvfp4=True, str a_sf_layout="swizzled", '
            'str b_sf_layout="swizzled"')
_LIB.define("mm_fp4(" + _MM_ARGS.format("=None", "=15", "") + ") -> Tensor")  # 15: bfloat16
_LIB.define("mm_fp4_out(" + _MM_ARGS.format("", "", ", Tensor(a!) out") + ") -> ()")

# torch's current stream of a device as the raw handle (an int), resolved once: the per-call
# path (_gemm) makes no Stream object (_tensors.torch_current_stream says why this is the same)
_current_raw_stream = getattr(torch._C, "_cuda_getCurrentRawStream", None) or torch_current_stream

# Checked calls: the library arguments of a call whose checks passed, by everything the checks
# read (each tensor's shape, strides, dtype and device; the other arguments); a call that
# matches one skips the checks (they would pass again) and goes straight to the C glue with
# the tensors' pointers. Bounded (cleared when full); the first call of a kind runs the full
# path (_api._mm_fp4), which raises for bad arguments before anything is written.
_PLANS = {}


def _ptr(t):
    return None if t is None else t.data_ptr()


def _gemm(a, b, a_descale, b_descale, alpha, out_dtype, out, block_size, use_8x4_sf_layout,
          backend, use_nvfp4, a_sf_layout, b_sf_layout):
    """The kernel of both ops: out given (mm_fp4_out) or None (mm_fp4: returns a new tensor)."""
    if a is None or b is None or b_descale is None:  # the op lets None through: the checks say
        return _api._mm_fp4(a, b, a_descale, b_descale, alpha, out_dtype, out, block_size,
                            use_8x4_sf_layout, backend, use_nvfp4, a_sf_layout, b_sf_layout, None)
    key = (a.shape, a.stride(), a.dtype, a.device, b.shape, b.stride(), b.dtype, b.device,
           b_descale.shape, b_descale.stride(), b_descale.dtype, b_descale.device,
           None if a_descale is None else (a_descale.shape, a_descale.stride(), a_descale.dtype,
                                           a_descale.device),
           None if alpha is None else (alpha.shape, alpha.stride(), alpha.dtype, alpha.device),
           None if out is None else (out.shape, out.stride(), out.dtype, out.device),
           out_dtype, block_size, use_8x4_sf_layout, backend, use_nvfp4, a_sf_layout, b_sf_layout)
    ext = L.ext
    plan = _PLANS.get(key) if ext is not None else None
    if plan is None:
        plan = [] if ext is not None else None
        res = _api._mm_fp4(a, b, a_descale, b_descale, alpha, out_dtype, out, block_size,
                           use_8x4_sf_layout, backend, use_nvfp4, a_sf_layout, b_sf_layout, None,
                           plan=plan)
        if plan:  # cached only where the glue got these very tensors' pointers (no copies)
            args, dev, _ = plan[0]
            if args[:5] + args[16:] == (a.data_ptr(), _ptr(a_descale), b.data_ptr(),
                                       b_descale.data_ptr(), res.data_ptr(), _ptr(alpha)):
                if len(_PLANS) >= 256:
                    _PLANS.clear()
                _PLANS[key] = (args[5:16], dev)
        return res
    args, dev = plan
    if out is None:
        out = torch.empty((args[0], args[1]), dtype=out_dtype, device=a.device)
    if dev < 0:
        ctx, stream = L.cpu_ctx(), 0
    else:
        ctx, stream = L.ctx_for(dev), _current_raw_stream(dev)
    st = ext.gemm(ctx, a.data_ptr(), _ptr(a_descale), b.data_ptr(), b_descale.data_ptr(),
                  out.data_ptr(), *args, _ptr(alpha), stream)
    L.check(st, ctx, "fp4_gemm")
    return out


def _mm_fp4(a, b, a_descale, b_descale, alpha=None, out_dtype=torch.bfloat16, block_size=16,
            use_8x4_sf_layout=False, backend="auto", use_nvfp4=True, a_sf_layout="swizzled",
            b_sf_layout="swizzled"):
    return _gemm(a, b, a_descale, b_descale, alpha, out_dtype, None, block_size,
                 use_8x4_sf_layout, backend, use_nvfp4, a_sf_layout, b_sf_layout)


def _mm_fp4_out(a, b, a_descale, b_descale, alpha, out_dtype, out, block_size=16,
                use_8x4_sf_layout=False, backend="auto", use_nvfp4=True,
                a_sf_layout="swizzled", b_sf_layout="swizzled"):
    _gemm(a, b, a_descale, b_descale, alpha, out_dtype, out, block_size, use_8x4_sf_layout,
          backend, use_nvfp4, a_sf_layout, b_sf_layout)


for _key in ("CPU", "CUDA"):
    _LIB.impl("mm_fp4", _mm_fp4, _key)
    _LIB.impl("mm_fp4_out", _mm_fp4_out, _key)
_OP_MM, _OP_MM_OUT = torch.ops.fp4gemm.mm_fp4.default, torch.ops.fp4gemm.mm_fp4_out.default


@torch.library.custom_op("fp4gemm::fp4_quantize", mutates_args=(), device_types=_DEVICES)
def _fp4_quantize(input: torch.Tensor, global_scale: Optional[torch.Tensor] = None,
                  sf_vec_size: int = 16, sf_use_ue8m0: bool = False,
                  is_sf_swizzled_layout: bool = True, is_sf_8x4_layout: bool = False,
                  enable_pdl: Optional[bool] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    return _api._fp4_quantize(input, global_scale, sf_vec_size, sf_use_ue8m0,
                              is_sf_swizzled_layout, is_sf_8x4_layout, None, "flashinfer")


@torch.library.custom_op("fp4gemm::global_scale", mutates_args=(), device_types=_DEVICES)
def _global_scale(x: torch.Tensor) -> torch.Tensor:
    return _api._global_scale(x, None)


@torch.library.custom_op("fp4gemm::dequantize", mutates_args=(), device_types=_DEVICES)
def _dequantize(q: torch.Tensor, sf: torch.Tensor, global_scale: Optional[torch.Tensor] = None,
                is_sf_swizzled_layout: bool = True,
                out_dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return _api._dequantize(q, sf, global_scale, is_sf_swizzled_layout, out_dtype)


@torch.library.custom_op("fp4gemm::sf_convert", mutates_args=(), device_types=_DEVICES)
def _sf_convert(sf: torch.Tensor, rows: int, k: int, src: str = "linear",
                dst: str = "swizzled") -> torch.Tensor:
    return _api._sf_convert(sf, rows, k, src, dst)


# ---- fake (meta) implementations: shapes and dtypes, the cheap checks ----------------------
def _check_devices(what, **tensors):
    """The real ops raise for tensors on different devices; so do the fakes (a meta tensor among
    CPU ones dispatches here, and torch.compile meets the error at trace time)."""
    devs = {k: t.device for k, t in tensors.items() if t is not None}
    if len(set(devs.values())) > 1:
        raise ValueError(f"{what}: tensors on different devices "
                         f"({', '.join(f'{k} on {d}' for k, d in devs.items())}); all must be on one")


def _check_out_dtype(out_dtype):
    if out_dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise TypeError(f"out_dtype {out_dtype} is not float32, float16 or bfloat16")


@torch.library.register_fake("fp4gemm::mm_fp4", lib=_LIB)
def _mm_fp4_fake(a, b, a_descale, b_descale, alpha=None, out_dtype=torch.bfloat16, block_size=16,
                 use_8x4_sf_layout=False, backend="auto", use_nvfp4=True,
                 a_sf_layout="swizzled", b_sf_layout="swizzled"):
    torch._check(a.dim() == 2 and b.dim() == 2, lambda: "mm_fp4: a and b must be 2-D")
    _check_devices("mm_fp4", a=a, b=b, a_descale=a_descale, b_descale=b_descale, alpha=alpha)
    _check_out_dtype(out_dtype)
    return a.new_empty((a.shape[0], b.shape[1]), dtype=out_dtype)


@torch.library.register_fake("fp4gemm::mm_fp4_out", lib=_LIB)
def _mm_fp4_out_fake(a, b, a_descale, b_descale, alpha, out_dtype, out, block_size=16,
                     use_8x4_sf_layout=False, backend="auto", use_nvfp4=True,
                     a_sf_layout="swizzled", b_sf_layout="swizzled"):
    _check_devices("mm_fp4", a=a, b=b, a_descale=a_descale, b_descale=b_descale, alpha=alpha, out=out)
    _check_out_dtype(out_dtype)
    return None


@_fp4_quantize.register_fake
def _fp4_quantize_fake(input, global_scale=None, sf_vec_size=16, sf_use_ue8m0=False,
                       is_sf_swizzled_layout=True, is_sf_8x4_layout=False, enable_pdl=None):
    torch._check(input.dim() == 2, lambda: "fp4_quantize: input must be 2-D [M, K]")
    _check_devices("fp4_quantize", input=input, global_scale=global_scale)
    rows, k = input.shape
    layout = L.SF_SWIZZLED if is_sf_swizzled_layout else L.SF_LINEAR
    return (input.new_empty((rows, k // 2), dtype=torch.uint8),
            input.new_empty(_api._sf_shape(rows, k, layout), dtype=torch.uint8))


@_global_scale.register_fake
def _global_scale_fake(x):
    return x.new_empty((1,), dtype=torch.float32)


@_dequantize.register_fake
def _dequantize_fake(q, sf, global_scale=None, is_sf_swizzled_layout=True, out_dtype=torch.float32):
    _check_devices("dequantize", q=q, sf=sf, global_scale=global_scale)
    _check_out_dtype(out_dtype)
    return q.new_empty((q.shape[0], 2 * q.shape[1]), dtype=out_dtype)


@_sf_convert.register_fake
def _sf_convert_fake(sf, rows, k, src="linear", dst="swizzled"):
    return sf.new_empty(_api._sf_shape(rows, k, _api._layout(dst, "sf_convert: dst")), dtype=torch.uint8)


# ---- what fp4gemm's functions call for torch tensors -----------------------------
def _scale_tensor(x, like):
    """A Python number -> a one-element float32 tensor on like's device (torch.full: a fill
    kernel on a GPU, no host copy); tensors and None as they are."""
    if x is None or isinstance(x, torch.Tensor):
        return x
    return torch.full((1,), float(x), dtype=torch.float32, device=like.device)


# Eager calls on plain CPU/CUDA tensors run the ops' kernel (_gemm) without the dispatcher
# (~4 us a call here), where that is what the dispatcher would do anyway: not while torch.compile
# traces (is_compiling() comes first: dynamo folds it and traces the op), no torch function or
# dispatch mode (FakeTensorMode, `with torch.device(...)`, ...), no tensor subclass (FakeTensor,
# FunctionalTensor, DTensor...), no jit tracing, no functorch transform, no profiler (it records
# the op), no float input that requires grad. CUDA graph capture records the same kernels
# either way. Every other call goes through the op.
_is_compiling = torch.compiler.is_compiling  # torch >= 2.4 (checked at import)
_C = torch._C
try:
    _DIRECT = (_C._is_torch_function_mode_enabled, _C._len_torch_dispatch_stack,
               _C._get_tracing_state, _C._are_functorch_transforms_active,
               _C._autograd._profiler_enabled)
except AttributeError:  # pragma: no cover - an older torch: always the op
    _DIRECT = None
_TENSOR = torch.Tensor


def _plain_tensor(t):
    return type(t) is _TENSOR and (t.is_cpu or t.is_cuda)


def _direct(a, b, a_descale, b_descale, alpha, out):
    mode, stack, tracing, functorch, profiler = _DIRECT
    return (_plain_tensor(a) and _plain_tensor(b) and _plain_tensor(b_descale)
            and (a_descale is None or _plain_tensor(a_descale))
            and (alpha is None or _plain_tensor(alpha) and not alpha.requires_grad)
            and (out is None or _plain_tensor(out) and not out.requires_grad)
            and not a.requires_grad
            and not mode() and not stack() and tracing() is None and not functorch()
            and not profiler())


def _torch_out_dtype(dt):
    if isinstance(dt, torch.dtype):
        return dt
    named = _OUT_NAMED.get(dt) if isinstance(dt, str) else None
    return named if named is not None else _OUT[_dtype_code(dt, "out_dtype")]


def mm_fp4(a, b, a_descale, b_descale, alpha=None, out_dtype=torch.bfloat16, out=None,
           block_size=16, use_8x4_sf_layout=False, backend="auto", use_nvfp4=True, *,
           a_sf_layout="swizzled", b_sf_layout="swizzled"):
    """fp4gemm.mm_fp4 for torch tensors: torch.ops.fp4gemm.mm_fp4 (or mm_fp4_out with out=)."""
    out_dtype = _torch_out_dtype(out_dtype)
    alpha = _scale_tensor(alpha, a)
    if (not _is_compiling() and _DIRECT and type(block_size) is int and type(backend) is str
            and type(use_8x4_sf_layout) is bool and type(use_nvfp4) is bool
            and type(a_sf_layout) is str and type(b_sf_layout) is str
            and _direct(a, b, a_descale, b_descale, alpha, out)):
        return _gemm(a, b, a_descale, b_descale, alpha, out_dtype, out, block_size,
                     use_8x4_sf_layout, backend, use_nvfp4, a_sf_layout, b_sf_layout)
    if out is None:
        return _OP_MM(a, b, a_descale, b_descale, alpha, out_dtype, block_size,
                      use_8x4_sf_layout, backend, use_nvfp4, a_sf_layout, b_sf_layout)
    _OP_MM_OUT(a, b, a_descale, b_descale, alpha, out_dtype, out, block_size, use_8x4_sf_layout,
               backend, use_nvfp4, a_sf_layout, b_sf_layout)
    return out


def fp4_quantize(input, global_scale=None, sf_vec_size=16, sf_use_ue8m0=False,
                 is_sf_swizzled_layout=True, is_sf_8x4_layout=False, enable_pdl=None):
    """fp4gemm.fp4_quantize for torch tensors: torch.ops.fp4gemm.fp4_quantize."""
    return torch.ops.fp4gemm.fp4_quantize(input, _scale_tensor(global_scale, input), sf_vec_size,
                                          sf_use_ue8m0, is_sf_swizzled_layout, is_sf_8x4_layout,
                                          enable_pdl)


def global_scale(x):
    return torch.ops.fp4gemm.global_scale(x)


def dequantize(q, sf, global_scale=None, is_sf_swizzled_layout=True, out_dtype=torch.float32):
    swizzled = _api._layout(is_sf_swizzled_layout, "dequantize: is_sf_swizzled_layout") == L.SF_SWIZZLED
    return torch.ops.fp4gemm.dequantize(q, sf, _scale_tensor(global_scale, q), swizzled,
                                        _torch_out_dtype(out_dtype))


def sf_convert(sf, rows, k, src="linear", dst="swizzled"):
    return torch.ops.fp4gemm.sf_convert(sf, rows, k, src, dst)


_api.torch_ops = sys.modules[__name__]
_api.TORCH_TENSOR = torch.Tensor

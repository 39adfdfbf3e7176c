"""Argument translation: arrays (numpy, or anything numpy reads without a copy: the buffer
protocol, __array_interface__; torch tensors and GPU arrays as _tensors.View) <-> pointers,
sizes, strides and fp4gemm dtypes. Checks only what must hold for the pointer arithmetic to be
right; the library checks the rest."""
import numpy as np

from . import _lib as L
from ._tensors import View, view, DType

try:  # optional: numpy has no bfloat16; ml_dtypes (the JAX project's) gives one
    import ml_dtypes as _mld
    BF16 = np.dtype(_mld.bfloat16)
except ImportError:  # pragma: no cover - depends on the environment
    BF16 = None
BF16_NAMED = DType("bfloat16", 2)  # a torch/DLPack bfloat16 array's dtype without ml_dtypes

_NAMES = {"float32": L.DTYPE_F32, "f32": L.DTYPE_F32, "float": L.DTYPE_F32,
          "float16": L.DTYPE_F16, "f16": L.DTYPE_F16, "half": L.DTYPE_F16,
          "bfloat16": L.DTYPE_BF16, "bf16": L.DTYPE_BF16}


_CODES = {}


def dtype_code(dt, what):
    """An fp4gemm dtype for a float dtype given as a name ("bfloat16"), a numpy dtype, or a
    torch dtype (torch.bfloat16 -> its name). Memoized: this runs on every call."""
    try:
        return _CODES[dt]
    except (KeyError, TypeError):
        pass
    code = _dtype_code(dt, what)
    try:
        _CODES[dt] = code
    except TypeError:
        pass
    return code


def _dtype_code(dt, what):
    if dt is None:
        raise TypeError(f"{what}: a dtype is needed")
    if BF16 is not None and not isinstance(dt, str):
        try:
            if np.dtype(dt) == BF16:
                return L.DTYPE_BF16
        except TypeError:
            pass
    name = str(dt).rsplit(".", 1)[-1].lower()  # "torch.bfloat16" -> "bfloat16"
    if name not in _NAMES:
        try:
            name = np.dtype(dt).name
        except TypeError:
            pass
    if name not in _NAMES:
        raise TypeError(f"{what}: dtype {dt!r} is not float32, float16 or bfloat16")
    return _NAMES[name]


def numpy_dtype(code):
    """The numpy dtype that holds an fp4gemm float dtype: bfloat16 is ml_dtypes.bfloat16 if
    installed, else uint16 holding the bf16 bits."""
    if code == L.DTYPE_F32:
        return np.dtype(np.float32)
    if code == L.DTYPE_F16:
        return np.dtype(np.float16)
    return BF16 if BF16 is not None else np.dtype(np.uint16)


def as_array(x, what):
    """x as a numpy array, or a View of a torch tensor / GPU array (never a copy)."""
    if isinstance(x, (np.ndarray, View)):
        return x
    v = view(x, what)
    if v is not None:
        return v
    if isinstance(x, (list, tuple)):
        raise TypeError(f"{what}: an array is needed (numpy, torch, the buffer protocol, DLPack "
                        f"or the CUDA array interface), not {type(x).__name__}")
    return np.asarray(x)


def float_input(x, what, dtype=None):
    """A [rows, k] float matrix with unit stride along k: (array, dtype code, ld). dtype
    overrides the array's (needed for bf16 bits in a uint16 array)."""
    x = as_array(x, what)
    if x.ndim != 2:
        raise ValueError(f"{what}: a 2-D [M, K] array is needed, got shape {x.shape}")
    if dtype is not None:
        code = dtype_code(dtype, what)
        need = 4 if code == L.DTYPE_F32 else 2
        if x.dtype.itemsize != need:
            raise TypeError(f"{what}: dtype={dtype!r} needs {need}-byte elements, the array's are {x.dtype}")
    else:
        if x.dtype == np.uint16:
            raise TypeError(f"{what}: a uint16 array: pass dtype='bfloat16' (or 'float16') to say what its bits are")
        code = dtype_code(x.dtype, what)
    return x, code, row_stride(x, what)


def row_stride(x, what):
    """Elements between row starts of a 2-D array whose rows are contiguous."""
    isz = x.dtype.itemsize
    if x.shape[1] > 1 and x.strides[1] != isz or x.strides[0] % isz or x.strides[0] < 0:
        raise ValueError(f"{what}: rows must be contiguous (strides {x.strides} for itemsize {isz}); "
                         "pass np.ascontiguousarray(x)")
    ld = x.strides[0] // isz if x.shape[0] > 1 else x.shape[1]
    if ld < x.shape[1]:
        raise ValueError(f"{what}: overlapping rows (strides {x.strides})")
    return ld


def byte_array(x, what, nbytes=None, transposed=False):
    """A uint8 (or float8_e4m3fn) array whose memory is contiguous: in C order, or in Fortran
    order when transposed (FlashInfer's b = w.T views). Checks it holds nbytes."""
    x = as_array(x, what)
    if x.dtype != np.uint8 and str(x.dtype) != "float8_e4m3fn":
        raise TypeError(f"{what}: dtype {x.dtype}, uint8 (or float8_e4m3fn) needed")
    ok = x.flags.f_contiguous if transposed else x.flags.c_contiguous
    if not ok:
        order = "the transpose of a C-contiguous array (w.T)" if transposed else "C-contiguous"
        raise ValueError(f"{what}: must be {order}, got strides {x.strides} for shape {x.shape}")
    if nbytes is not None and x.nbytes < nbytes:
        raise ValueError(f"{what}: holds {x.nbytes} bytes, {nbytes} needed")
    return x


def ptr(x):
    return x.ptr if isinstance(x, View) else x.__array_interface__["data"][0]


def writable(out, what, shape, dtypes):
    out = as_array(out, what)
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"{what}: shape {tuple(out.shape)}, {tuple(shape)} needed")
    if out.dtype not in dtypes:
        raise TypeError(f"{what}: dtype {out.dtype}, one of {[str(d) for d in dtypes]} needed")
    if not out.flags.writeable:
        raise ValueError(f"{what}: read-only array")
    return out


def scalar(x, what):
    """A float from a Python number or a one-element array (FlashInfer passes [1] tensors)."""
    if x is None:
        return None
    if isinstance(x, (int, float)):
        return float(x)
    if isinstance(x, np.ndarray) and x.size == 1:
        return float(x.item())
    a = as_array(x, what)
    if isinstance(a, View):
        raise TypeError(f"{what}: a torch tensor or GPU array here goes by pointer (scalar_ptr)")
    if a.size != 1:
        raise ValueError(f"{what}: one value needed, got shape {a.shape}")
    return float(a.reshape(-1)[0])


def scalar_ptr(x, what, device):
    """(value, pointer) for a scale argument: a number or a numpy array by value (pointer None);
    a torch tensor or GPU array (one float32 on the call's device) by pointer, read by the
    library when the work runs (no host synchronization: CUDA-graph capturable)."""
    if x is None or isinstance(x, (int, float, np.ndarray)):
        return scalar(x, what), None
    a = as_array(x, what)
    if not isinstance(a, View):
        return scalar(a, what), None
    if a.size != 1 or a.dtype != np.float32:
        raise ValueError(f"{what}: one float32 value needed, got shape {a.shape} dtype {a.dtype}")
    if a.device != device:
        raise ValueError(f"{what}: on {a.where()}, the call runs on "
                         f"{'cpu' if device < 0 else f'cuda:{device}'}")
    return None, a.ptr

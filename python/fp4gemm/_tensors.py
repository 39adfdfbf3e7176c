"""Arrays that are not numpy's: torch tensors (CPU or CUDA), __cuda_array_interface__ (CuPy,
Numba, ...) and DLPack (__dlpack__/__dlpack_device__) -> a View: the data pointer, the device
(-1 the CPU, else the CUDA ordinal), and the attributes that the checks in _arrays.py read from a
numpy array (shape, byte strides, dtype, flags). Argument translation only; the library checks
the rest. torch and cupy are never imported here unless the caller's array is theirs (their
module is then already loaded)."""
import ctypes
import importlib
import math
import sys

import numpy as np


class DType:
    """A dtype numpy has no name for (bfloat16, float8_e4m3fn without ml_dtypes; torch's
    others): name and itemsize, compared by name."""
    __slots__ = ("name", "itemsize")
    kind = "V"
    char = "V"

    def __init__(self, name, itemsize):
        self.name, self.itemsize = name, itemsize

    def __eq__(self, other):
        return str(other) == self.name

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash(self.name)

    def __str__(self):
        return self.name

    __repr__ = __str__


try:  # numpy has no bfloat16 or float8; ml_dtypes (optional) gives them
    import ml_dtypes as _mld
    BF16 = np.dtype(_mld.bfloat16)
    E4M3 = np.dtype(_mld.float8_e4m3fn)
except ImportError:  # pragma: no cover - depends on the environment
    BF16 = DType("bfloat16", 2)
    E4M3 = DType("float8_e4m3fn", 1)


class Flags:
    __slots__ = ("c_contiguous", "f_contiguous", "writeable")

    def __init__(self, c, f, w):
        self.c_contiguous, self.f_contiguous, self.writeable = c, f, w


def _contiguous(shape, strides, itemsize, order):
    """numpy's rule: dims of extent 1 are free; the others are packed in C (or F) order."""
    step = itemsize
    dims = range(len(shape) - 1, -1, -1) if order == "C" else range(len(shape))
    for i in dims:
        if shape[i] != 1:
            if strides[i] != step:
                return False
            step *= shape[i]
    return True


class View:
    """What a numpy-shaped check needs of a foreign array, and where its data is. `obj` is
    the array itself (kept alive while the View is); `lib` 'torch', 'cupy' or None (what
    allocates outputs like it); `stream` the stream the array's interface names (CUDA array
    interface v3: work on the data goes there), or None. strides in bytes, as numpy's."""
    __slots__ = ("obj", "ptr", "shape", "strides", "dtype", "device", "writeable", "lib", "stream",
                 "keep", "_flags")

    def __init__(self, obj, ptr, shape, strides, dtype, device, writeable, lib, stream=None, keep=None):
        self.obj, self.ptr, self.shape, self.dtype, self.device = obj, ptr, tuple(shape), dtype, device
        if strides is None:  # C-contiguous
            strides, step = [0] * len(shape), dtype.itemsize
            for i in range(len(shape) - 1, -1, -1):
                strides[i] = step
                step *= shape[i]
        self.strides = tuple(strides)
        self.writeable, self.lib, self.stream, self.keep, self._flags = writeable, lib, stream, keep, None

    @property
    def flags(self):
        if self._flags is None:
            isz = self.dtype.itemsize
            self._flags = Flags(_contiguous(self.shape, self.strides, isz, "C"),
                                _contiguous(self.shape, self.strides, isz, "F"), self.writeable)
        return self._flags

    ndim = property(lambda self: len(self.shape))
    itemsize = property(lambda self: self.dtype.itemsize)
    size = property(lambda self: math.prod(self.shape))
    nbytes = property(lambda self: math.prod(self.shape) * self.dtype.itemsize)

    def where(self):
        return "cpu" if self.device < 0 else f"cuda:{self.device}"


# ---- torch -------------------------------------------------------------------------------
_TORCH_DT = {}


def _torch_dtype(t, dt):
    r = _TORCH_DT.get(dt)
    if r is None:
        name = str(dt).rsplit(".", 1)[-1]  # torch.bfloat16 -> bfloat16
        r = {"bfloat16": BF16, "float8_e4m3fn": E4M3}.get(name)
        if r is None:
            try:
                r = np.dtype(name)
            except TypeError:
                r = DType(name, t.element_size())
        _TORCH_DT[dt] = r
    return r


def is_torch(x):
    t = sys.modules.get("torch")
    return t is not None and isinstance(x, t.Tensor)


def from_torch(x, what):
    if x.is_cuda:
        d = x.get_device()
    elif x.is_cpu:
        d = -1
    else:
        raise ValueError(f"{what}: a torch tensor on {x.device}; fp4gemm runs on the CPU and CUDA devices")
    dt = _TORCH_DT.get(x.dtype) or _torch_dtype(x, x.dtype)
    isz = dt.itemsize
    return View(x, x.data_ptr(), x.shape, [s * isz for s in x.stride()], dt, d, True, "torch")


# ---- __cuda_array_interface__ ---------------------------------------------------------------
def _cai_device(x):
    dev = getattr(x, "device", None)  # CuPy: x.device.id
    if dev is not None and isinstance(getattr(dev, "id", None), int):
        return dev.id
    if hasattr(x, "__dlpack_device__"):
        return int(x.__dlpack_device__()[1])
    return 0  # the interface names no device: CUDA's first (docs/python.md)


def from_cai(x, what):
    cai = x.__cuda_array_interface__
    shape = tuple(int(s) for s in cai["shape"])
    try:
        dt = np.dtype(cai["typestr"])
    except TypeError:
        raise TypeError(f"{what}: __cuda_array_interface__ typestr {cai['typestr']!r} is not a numpy dtype") from None
    if cai.get("mask") is not None:
        raise ValueError(f"{what}: a masked CUDA array")
    ptr, readonly = cai["data"]
    lib = "cupy" if type(x).__module__.startswith("cupy") else None
    return View(x, int(ptr), shape, cai.get("strides"), dt, _cai_device(x), not readonly, lib,
                cai.get("stream"))


# ---- DLPack ------------------------------------------------------------------------------
class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):  # dlpack.h's DLTensor, the head of DLManagedTensor
    _fields_ = [("data", ctypes.c_void_p), ("device", _DLDevice), ("ndim", ctypes.c_int32),
                ("dtype", _DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


KDL_CPU, KDL_CUDA, KDL_CUDA_HOST, KDL_CUDA_MANAGED = 1, 2, 3, 13
_capsule_ptr = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_ptr.restype = ctypes.c_void_p
_capsule_ptr.argtypes = [ctypes.py_object, ctypes.c_char_p]
_DL_DTYPES = {(1, 8): np.dtype(np.uint8), (1, 16): np.dtype(np.uint16), (2, 16): np.dtype(np.float16),
              (2, 32): np.dtype(np.float32), (2, 64): np.dtype(np.float64), (0, 8): np.dtype(np.int8),
              (0, 32): np.dtype(np.int32), (4, 16): BF16, (10, 8): E4M3}


def from_dlpack(x, what, stream):
    """The DLTensor of x.__dlpack__(stream=...): the capsule is not consumed (its deleter runs
    when the View goes), the producer keeps ownership."""
    dtype, dev = x.__dlpack_device__()
    if dtype not in (KDL_CPU, KDL_CUDA, KDL_CUDA_HOST, KDL_CUDA_MANAGED):
        raise ValueError(f"{what}: a DLPack array on device type {dtype}; fp4gemm takes CPU and CUDA memory")
    cuda = dtype in (KDL_CUDA, KDL_CUDA_MANAGED)
    # the DLPack stream convention: 1 is the legacy default stream (0 is not allowed)
    cap = x.__dlpack__(stream=(stream or 1)) if cuda else x.__dlpack__()
    t = _DLTensor.from_address(_capsule_ptr(cap, b"dltensor"))
    shape = tuple(t.shape[i] for i in range(t.ndim))
    dt = _DL_DTYPES.get((t.dtype.code, t.dtype.bits)) if t.dtype.lanes == 1 else None
    if dt is None:
        dt = DType(f"dlpack(code={t.dtype.code}, bits={t.dtype.bits}, lanes={t.dtype.lanes})",
                   max(1, t.dtype.bits // 8))
    strides = None if not t.strides else [t.strides[i] * dt.itemsize for i in range(t.ndim)]
    return View(x, (t.data or 0) + t.byte_offset, shape, strides, dt, int(dev) if cuda else -1,
                True, None, None, keep=cap)


_torch_ops_tried = False


def register_torch_ops():
    """Imports fp4gemm._torch_ops (registers the torch.library ops). Returns whether they are
    registered: False for a torch older than 2.4."""
    global _torch_ops_tried
    _torch_ops_tried = True
    try:
        importlib.import_module(__package__ + "._torch_ops")  # importing it registers the ops
        return True
    except ImportError:
        return False


def view(x, what):
    """A View of a torch tensor or a GPU array; None for what numpy takes (the caller's path)."""
    if is_torch(x):
        if not _torch_ops_tried and "fp4gemm._torch_ops" not in sys.modules:
            register_torch_ops()
        return from_torch(x, what)
    if hasattr(x, "__cuda_array_interface__"):
        return from_cai(x, what)
    if hasattr(x, "__dlpack_device__") and not isinstance(x, np.ndarray):
        if x.__dlpack_device__()[0] != KDL_CPU:
            return from_dlpack(x, what, None)
    return None


# ---- devices, streams, outputs -------------------------------------------------------------
def device_of(what, **arrays):
    """The one device of a call's arrays (numpy arrays are the CPU's): a ValueError naming
    them when they differ."""
    devs = {k: (a.device if isinstance(a, View) else -1) for k, a in arrays.items() if a is not None}
    if len(set(devs.values())) > 1:
        where = ", ".join(f"{k} on {'cpu' if d < 0 else f'cuda:{d}'}" for k, d in devs.items())
        raise ValueError(f"{what}: arrays on different devices ({where}); all must be on one")
    return next(iter(devs.values()), -1)


def torch_current_stream(device):
    """torch's current stream on CUDA device `device` (an ordinal) as its raw cudaStream_t, an
    int: what torch.cuda.current_stream(device).cuda_stream gives, without the Stream object
    that call makes each time. torch._C._cuda_getCurrentRawStream is the call torch's own
    compiled code uses for it (torch._dynamo's get_raw_stream); the public call where a torch
    lacks it. Only for a device that holds a torch tensor (CUDA already initialized)."""
    torch = sys.modules["torch"]
    raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)
    return raw(device) if raw is not None else torch.cuda.current_stream(device).cuda_stream


def stream_of(device, *arrays):
    """The stream for a call on `device`: torch's current stream when a torch tensor is among
    the arrays, else the stream a CUDA array interface names, else 0 (the legacy default stream,
    NULL). 0 on the CPU."""
    if device < 0:
        return 0
    for a in arrays:
        if isinstance(a, View) and a.lib == "torch":
            return torch_current_stream(device)
    for a in arrays:
        if isinstance(a, View) and a.stream is not None:
            return int(a.stream)
    return 0


def empty(like, shape, dtype, what):
    """A new array of shape/numpy dtype on like's device, from like's library: numpy for the
    CPU, torch or CuPy as `like` is. Returns (View or numpy array, the object to hand back)."""
    if not isinstance(like, View):
        a = np.empty(shape, dtype)
        return a, a
    if like.lib == "torch":
        torch = sys.modules["torch"]
        tdt = {"bfloat16": torch.bfloat16, "uint16": torch.uint16 if hasattr(torch, "uint16") else None}.get(
            str(dtype), None) or getattr(torch, np.dtype(dtype).name)
        t = torch.empty(shape, dtype=tdt, device=like.obj.device)
        return from_torch(t, what), t
    if like.lib == "cupy" and str(dtype) != "bfloat16":
        cupy = sys.modules["cupy"]
        with cupy.cuda.Device(like.device):
            a = cupy.empty(shape, dtype)
        return from_cai(a, what), a
    raise ValueError(f"{what}: fp4gemm allocates outputs for numpy, torch and CuPy arrays only, not "
                     f"next to a {type(like.obj).__name__}" + ("; pass out=" if what == "mm_fp4" else ""))

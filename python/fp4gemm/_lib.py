"""ctypes declarations of libfp4gemm's C API (include/fp4gemm.h): structs, enums, prototypes.

Nothing here computes: it mirrors the header. The library is the one installed next to this
file by `pip install ./python`, or the file FP4GEMM_LIBRARY names (e.g. a CMake build folder's
libfp4gemm.so, to test a build without installing it).
"""
import ctypes
import os
import threading

c_i64 = ctypes.c_int64
c_int = ctypes.c_int
c_vp = ctypes.c_void_p
c_cp = ctypes.c_char_p

# enums (values as in include/fp4gemm.h)
DTYPE_F32, DTYPE_F16, DTYPE_BF16, DTYPE_E2M1, DTYPE_E4M3 = 0, 1, 2, 3, 4
SF_LINEAR, SF_SWIZZLED = 0, 1
BACKEND_AUTO = 0
STATUS_INVALID_ARGUMENT, STATUS_NOT_SUPPORTED = 1, 2
LOG_OFF, LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG = -1, 0, 1, 2, 3


class QuantDesc(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("rows", c_i64), ("k", c_i64),
                ("in_dtype", c_int), ("in_", c_vp), ("ld_in", c_i64),
                ("global_scale", ctypes.c_float), ("global_scale_ptr", c_vp),
                ("out_q", c_vp), ("out_sf", c_vp), ("sf_layout", c_int),
                ("nonfinite_flag", c_vp), ("stream", c_vp), ("recipe", c_int)]


class DequantDesc(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("rows", c_i64), ("k", c_i64),
                ("q", c_vp), ("sf", c_vp), ("sf_layout", c_int),
                ("global_scale", ctypes.c_float), ("global_scale_ptr", c_vp),
                ("out_dtype", c_int), ("out", c_vp), ("ld_out", c_i64), ("stream", c_vp)]


class GemmDesc(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("m", c_i64), ("n", c_i64), ("k", c_i64),
                ("a_dtype", c_int), ("a", c_vp), ("a_sf", c_vp), ("a_sf_layout", c_int),
                ("b", c_vp), ("b_sf", c_vp), ("b_sf_layout", c_int),
                ("d_dtype", c_int), ("d", c_vp), ("ldd", c_i64),
                ("alpha", ctypes.c_float), ("alpha_ptr", c_vp),
                ("backend", c_int), ("stream", c_vp), ("config", c_int)]


class Tactic(ctypes.Structure):
    _fields_ = [("backend", c_int), ("config", c_int)]


LOG_FN = ctypes.CFUNCTYPE(None, c_int, c_cp, c_vp)

_PROTOS = {
    # name: (restype, argtypes)
    "fp4_version": (c_cp, []),
    "fp4_status_name": (c_cp, [c_int]),
    "fp4_built_with_cuda": (c_int, []),
    "fp4_built_cuda_archs": (c_cp, []),
    "fp4_built_with_openmp": (c_int, []),
    "fp4_backend_name": (c_cp, [c_int]),
    "fp4_set_log_level": (None, [c_int]),
    "fp4_get_log_level": (c_int, []),
    "fp4_log_level_from_name": (c_int, [c_cp, ctypes.POINTER(c_int)]),
    "fp4_log_level_name": (c_cp, [c_int]),
    "fp4_set_log_callback": (None, [LOG_FN, c_vp]),
    "fp4_packed_bytes": (c_i64, [c_i64, c_i64]),
    "fp4_sf_bytes": (c_i64, [c_i64, c_i64, c_int]),
    "fp4_device_count": (c_int, [ctypes.POINTER(c_int)]),
    "fp4_create": (c_int, [ctypes.POINTER(c_vp), c_int]),
    "fp4_destroy": (None, [c_vp]),
    "fp4_last_error": (c_cp, [c_vp]),
    "fp4_ctx_num_threads": (c_int, [c_vp]),
    "fp4_ctx_set_num_threads": (c_int, [c_vp, c_int]),
    "fp4_ctx_cpu_simd": (c_cp, [c_vp]),
    "fp4_quant_desc_init": (None, [ctypes.POINTER(QuantDesc)]),
    "fp4_dequant_desc_init": (None, [ctypes.POINTER(DequantDesc)]),
    "fp4_gemm_desc_init": (None, [ctypes.POINTER(GemmDesc)]),
    "fp4_quantize": (c_int, [c_vp, ctypes.POINTER(QuantDesc)]),
    "fp4_dequantize": (c_int, [c_vp, ctypes.POINTER(DequantDesc)]),
    "fp4_global_scale": (c_int, [c_vp, c_i64, c_i64, c_int, c_vp, c_i64, c_vp, c_vp]),
    "fp4_sf_convert": (c_int, [c_vp, c_i64, c_i64, c_vp, c_int, c_vp, c_int, c_vp]),
    "fp4_gemm": (c_int, [c_vp, ctypes.POINTER(GemmDesc)]),
    "fp4_tactic_name": (c_int, [Tactic, ctypes.c_char_p, ctypes.c_size_t]),
    "fp4_tactic_from_name": (c_int, [c_cp, ctypes.POINTER(Tactic)]),
    "fp4_gemm_list_tactics": (c_int, [c_vp, ctypes.POINTER(GemmDesc), ctypes.POINTER(Tactic),
                                      c_int, ctypes.POINTER(c_int)]),
    "fp4_gemm_select": (c_int, [c_vp, ctypes.POINTER(GemmDesc), ctypes.POINTER(Tactic),
                                ctypes.c_char_p, ctypes.c_size_t]),
}


def _library_path():
    env = os.environ.get("FP4GEMM_LIBRARY")
    if env:
        return env
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "libfp4gemm.so")


path = _library_path()
if not os.path.exists(path):
    raise ImportError(f"fp4gemm: {path} does not exist: install the package (pip install ./python) "
                      "and import it from outside the source folder python/, or set FP4GEMM_LIBRARY")
lib = ctypes.CDLL(path)
for _name, (_res, _args) in _PROTOS.items():
    _f = getattr(lib, _name)
    _f.restype = _res
    _f.argtypes = _args


try:  # the C glue (src/_ext.c, abi3): the fast per-call path; absent -> ctypes alone
    from . import _ext as ext
    ext.init(ctypes.cast(lib.fp4_gemm, c_vp).value)
except ImportError:
    ext = None
if os.environ.get("FP4GEMM_PY_CTYPES_ONLY"):  # to test and time the ctypes path
    ext = None


class Fp4GemmError(RuntimeError):
    """A libfp4gemm call failed: .status is the fp4_status name ("FP4_ERR_INVALID_ARGUMENT"),
    the message is fp4_last_error's detail."""

    def __init__(self, status, message):
        self.status = status
        super().__init__(f"{status}: {message}")


_tls = threading.local()


def cpu_ctx():
    """This thread's CPU context (device -1), created on first use. A context is used by
    one thread at a time (docs/threads.md), so each Python thread gets its own."""
    ctx = getattr(_tls, "ctx", None)
    if ctx is None:
        ctx = _tls.ctx = _Ctx(_create(-1))
    return ctx.ptr


def ctx_for(device):
    """This thread's context on `device` (-1: the CPU; 0..: a CUDA ordinal), created on first
    use: one per (thread, device). NOTE: fp4_create allocates (cudaMalloc), so the first call
    of a thread on a GPU must not be inside a CUDA graph capture (warm up first, as torch's
    graph capture asks anyway); the GEMMs of one context share its split-K workspace, so one
    thread's GEMMs on two streams must be ordered (docs/python.md)."""
    if device < 0:
        return cpu_ctx()
    ctxs = getattr(_tls, "gpu", None)
    if ctxs is None:
        ctxs = _tls.gpu = {}
    ctx = ctxs.get(device)
    if ctx is None:
        ctx = ctxs[device] = _Ctx(_create(device))
    return ctx.ptr


def _create(device):
    p = c_vp()
    st = lib.fp4_create(ctypes.byref(p), device)
    if st != 0:
        where = "the CPU" if device < 0 else f"CUDA device {device}"
        raise Fp4GemmError(lib.fp4_status_name(st).decode(),
                           f"{lib.fp4_last_error(None).decode()} (a context on {where})")
    return p.value


class _Ctx:
    __slots__ = ("ptr",)

    def __init__(self, ptr):
        self.ptr = ptr

    def __del__(self):
        if lib is not None and self.ptr:
            lib.fp4_destroy(self.ptr)
            self.ptr = None


def check(status, ctx, what):
    """Raises Fp4GemmError carrying fp4_last_error(ctx) for a failed call."""
    if status != 0:
        raise Fp4GemmError(lib.fp4_status_name(status).decode(),
                           lib.fp4_last_error(ctx).decode() or what)

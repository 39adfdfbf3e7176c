"""fp4gemm: NVFP4 GEMM and quantization from Python, a thin binding over libfp4gemm's C API
(ctypes, and a C module on the stable ABI for mm_fp4's per-call path).

FlashInfer's entry points keep their names, argument order and defaults:
    q, sf = fp4gemm.fp4_quantize(x, gs)             # like flashinfer.fp4_quantize
    y = fp4gemm.mm_fp4(a_q, w_q.T, a_sf, w_sf.T, alpha)  # like flashinfer.mm_fp4
Arrays: numpy, torch tensors (CPU and CUDA, through the torch.library ops fp4gemm::mm_fp4,
fp4gemm::mm_fp4_out and fp4gemm::fp4_quantize), CuPy / DLPack / CUDA-array-interface GPU arrays;
docs/python.md has the differences from FlashInfer.
"""
import importlib.util as _ilu
import os as _os
import sys as _sys

from ._lib import Fp4GemmError
from ._api import (fp4_quantize, mm_fp4, global_scale, dequantize, sf_convert, select,
                   list_tactics, set_num_threads, info)
from ._log import set_log_level, get_log_level, log_to_python
from ._tensors import register_torch_ops

# torch is optional. Where it is installed, its ops are registered now, so that
# torch.ops.fp4gemm.* exist before torch.compile traces or a CUDA graph captures a call (this
# imports torch, ~1-2 s the first time; FP4GEMM_NO_TORCH=1 defers it to the first torch tensor
# fp4gemm sees, or to register_torch_ops()).
if "torch" in _sys.modules or (not _os.environ.get("FP4GEMM_NO_TORCH")
                               and _ilu.find_spec("torch") is not None):
    register_torch_ops()

__version__ = info()["version"]
__all__ = ["Fp4GemmError", "fp4_quantize", "mm_fp4", "global_scale", "dequantize",
           "sf_convert", "select", "list_tactics", "set_num_threads", "info",
           "set_log_level", "get_log_level", "log_to_python", "register_torch_ops"]

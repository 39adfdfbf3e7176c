import os
import sys

sys.path.insert(0, os.path.dirname(__file__))  # nvfp4_ref

import pytest


@pytest.fixture(params=["c_glue", "ctypes"], autouse=True)
def binding_path(request, monkeypatch):
    """Every test runs through the C glue (fp4gemm._ext) and through ctypes alone; without
    the glue built, the c_glue runs skip."""
    from fp4gemm import _lib
    if request.param == "ctypes":
        monkeypatch.setattr(_lib, "ext", None)
    elif _lib.ext is None:
        pytest.skip("fp4gemm._ext not built (ctypes-only install)")
    return request.param

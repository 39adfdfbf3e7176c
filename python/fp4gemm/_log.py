"""The library's log level and a bridge from its log callback to Python's logging."""
import ctypes
import logging

from . import _lib as L

_TO_PY = {L.LOG_ERROR: logging.ERROR, L.LOG_WARN: logging.WARNING, L.LOG_INFO: logging.INFO,
          L.LOG_DEBUG: logging.DEBUG}
_bridge = None  # keeps the ctypes callback alive while the library holds it


def set_log_level(level):
    """'off', 'error', 'warn' (the library's default), 'info' or 'debug' (any case)."""
    v = ctypes.c_int()
    if L.lib.fp4_log_level_from_name(str(level).encode(), ctypes.byref(v)) != 0:
        raise ValueError(f"log level {level!r}: off, error, warn, info or debug")
    L.lib.fp4_set_log_level(v.value)


def get_log_level():
    return L.lib.fp4_log_level_name(L.lib.fp4_get_log_level()).decode()


def log_to_python(logger="fp4gemm"):
    """Sends the library's messages to the logging.Logger `logger` (a name or a Logger)
    instead of stderr; None restores stderr. The library's level still filters first."""
    global _bridge
    if logger is None:
        L.lib.fp4_set_log_callback(L.LOG_FN(), None)
        _bridge = None
        return
    lg = logging.getLogger(logger) if isinstance(logger, str) else logger

    def _cb(level, message, user):
        lg.log(_TO_PY.get(level, logging.INFO), "%s", message.decode(errors="replace"))

    cb = L.LOG_FN(_cb)
    L.lib.fp4_set_log_callback(cb, None)
    _bridge = cb

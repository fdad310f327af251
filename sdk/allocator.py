"""Keep freed memory for reuse instead of handing it back to the system (glibc only).

Why: one forward pass of a style network at 1024x1024 allocates about 1 GB of fresh
activations. glibc serves every block over 32 MiB with its own ``mmap`` and unmaps it on
``free``, so each pass page-faults its whole working set in again: about 250,000 minor faults
per pass, close to half of the CPU time (``docs/sdk.md``, "Memory reuse"). onnxruntime
avoids this with its own arena. Here, three ``mallopt`` settings make glibc behave like one:
no ``mmap`` for large blocks (they come from the heap), freed memory kept in the heap (no
trimming), and one arena for all threads (so a worker thread's large blocks are kept too).

The cost: the process keeps the memory it has used, a little more than its high-water mark
(blocks freed by one pass do not always fit the next pass exactly). Mixed image sizes level
off at about 1.4x the peak seen with the system's settings (``docs/sdk.md``).

:func:`keep_freed_memory` changes the whole process, so it is a choice made by entry points,
never by a library constructor: ``stylekit stylize``, ``stylekit web``, ``stylekit train`` and the
TorchServe handler's CPU workers call it; a program that embeds ``sdk`` calls
``sdk.keep_freed_memory()`` once if it wants the speed. ``STYLEKIT_MALLOC=system`` makes the
call do nothing.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading

from sdk import settings

log = logging.getLogger(__name__)

# glibc's <malloc.h> parameter numbers.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
_NEVER_TRIM = 2**31 - 1  # mallopt takes an int; the largest threshold it allows

ENV = settings.MALLOC

_lock = threading.Lock()
_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Apply the settings once per process; whether they are in effect.

    ``False`` where the C library is not glibc, where ``mallopt`` refuses a setting, or with
    ``STYLEKIT_MALLOC=system``. Safe to call from any thread, any number of times.
    """
    global _applied
    with _lock:
        if _applied is None:
            _applied = _apply()
        return _applied


def _apply() -> bool:
    if (settings.get(ENV) or "").lower() == "system":
        log.debug("%s=system: leaving the memory allocator alone", ENV)
        return False
    try:
        libc_version = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError, AttributeError):  # no such name off Linux
        libc_version = ""
    if not libc_version.startswith("glibc"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    options = ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _NEVER_TRIM), (_M_ARENA_MAX, 1))
    ok = all(mallopt(param, value) == 1 for param, value in options)
    if ok:
        log.debug("%s: freed memory is kept for reuse (large blocks from the heap, no trim)", libc_version)
    else:
        log.warning("mallopt refused a setting; freed memory goes back to the system as usual")
    return ok


def in_effect() -> bool:
    """Whether :func:`keep_freed_memory` has run in this process and its settings hold."""
    return bool(_applied)


__all__ = ["ENV", "in_effect", "keep_freed_memory"]

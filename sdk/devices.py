"""The one device rule of stylekit: inference (``Engine``) and training (``Trainer``) alike.

``auto`` = cuda > mps > cpu; ``cpu``; ``mps``; ``cuda`` or ``cuda:N``. A device that is asked
for by name must exist (:class:`~sdk.errors.DeviceError` otherwise); an unknown name is a
:class:`~sdk.errors.BadOptionError`. ``cuda`` without an index means ``default_index``: the
process's current CUDA device, or the local rank under ``torchrun``.
"""

from __future__ import annotations

import re

import torch

from sdk.errors import BadOptionError, DeviceError

_DEVICE_RE = re.compile(r"(auto|cpu|mps|cuda(:\d+)?)")


def resolve_device(device: str, default_index: int | None = None) -> torch.device:
    """The torch device for a device name (see the module docstring)."""
    if not isinstance(device, str) or not _DEVICE_RE.fullmatch(device.strip().lower()):
        raise BadOptionError(f"Unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps.")
    name = device.strip().lower()
    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps is not None and mps.is_available())
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available() and not mps_ok):
        return torch.device("cpu")
    if name == "mps" or (name == "auto" and not torch.cuda.is_available()):
        if not mps_ok:
            raise DeviceError("Device 'mps' was requested but Apple's Metal (MPS) backend is not available.")
        return torch.device("mps")
    if not torch.cuda.is_available():
        raise DeviceError(f"Device {device!r} was requested but CUDA is not available (no GPU found).")
    index = int(name.split(":")[1]) if ":" in name else default_index
    if index is None:
        index = torch.cuda.current_device()
    count = torch.cuda.device_count()
    if index >= count:
        raise DeviceError(f"Device {device!r} was requested but only {count} CUDA device(s) exist.")
    return torch.device("cuda", index)


def cpu_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX-512-BF16 or AMX).

    Not ``torch.ops.mkldnn._is_mkldnn_bf16_supported()``: that is true on any AVX-512 CPU,
    where oneDNN emulates bf16; measured on such a CPU (Xeon, AVX-512 without BF16), a bf16
    training step takes 2.0x the time of float32.
    """
    cpu = torch.cpu
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


__all__ = ["cpu_native_bf16", "resolve_device"]

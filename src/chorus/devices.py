"""Which torch device a command runs on, checked before any work starts."""

from __future__ import annotations

import torch

from .errors import ChorusError


class DeviceError(ChorusError):
    """The requested device does not exist in this torch build or on this machine."""


def resolve_device(name: str) -> torch.device:
    """``"auto"``: CUDA when available, else the CPU; otherwise the named device
    (``cpu``, ``cuda``, ``cuda:1``, ``mps``), refused with :class:`DeviceError` when this
    torch or machine cannot use it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.backends.cuda.is_built():
            raise DeviceError(f"{name} requested but this torch has no CUDA (a CPU build); use --device cpu or auto")
        if not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count():
            raise DeviceError(f"{name} requested but no such CUDA device is available here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"{name} requested but MPS is not available here")
    return device

"""Where a merge reads base weights from, one tensor at a time, and the streamed fingerprint.

A :class:`TensorSource` lists names with their dtype and shape without reading data, and
reads one tensor on request. :class:`SafetensorsSource` opens the file for each read, so
no memory map stays resident across a pass (peak memory stays at one tensor).
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Mapping, Protocol

import torch
from torch import Tensor

from ...errors import FileProblem
from .writer import SAFETENSORS_DTYPES

_FROM_CODE = {code: dtype for dtype, code in SAFETENSORS_DTYPES.items()}


class BaseWeightsError(FileProblem):
    """A base-weights file is missing or not a readable safetensors file."""


class TensorSource(Protocol):
    def keys(self) -> list[str]: ...

    def info(self, name: str) -> tuple[torch.dtype, tuple[int, ...]]: ...

    def tensor(self, name: str) -> Tensor: ...


class StateDictSource:
    """An in-memory state dict as a :class:`TensorSource`."""

    def __init__(self, state: Mapping[str, Tensor]):
        self._state = dict(state)

    def keys(self) -> list[str]:
        return list(self._state)

    def info(self, name: str) -> tuple[torch.dtype, tuple[int, ...]]:
        tensor = self._state[name]
        return tensor.dtype, tuple(tensor.shape)

    def tensor(self, name: str) -> Tensor:
        return self._state[name].detach().cpu()


class SafetensorsSource:
    """A safetensors file read lazily, one tensor per open."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._header = _read_header(self.path)

    def keys(self) -> list[str]:
        return list(self._header)

    def info(self, name: str) -> tuple[torch.dtype, tuple[int, ...]]:
        entry = self._header[name]
        return _FROM_CODE[entry["dtype"]], tuple(entry["shape"])

    def tensor(self, name: str) -> Tensor:
        from safetensors import safe_open

        with safe_open(str(self.path), framework="pt") as handle:
            return handle.get_tensor(name)


def _read_header(path: Path) -> dict[str, dict]:
    if not path.is_file():
        raise BaseWeightsError(path, "file not found")
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        size = struct.unpack("<Q", prefix)[0] if len(prefix) == 8 else -1
        if size <= 0 or size > path.stat().st_size - 8:
            raise BaseWeightsError(path, "not a safetensors file (bad header length)")
        try:
            header = json.loads(handle.read(size))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise BaseWeightsError(path, "not a safetensors file (header is not JSON)") from None
    header.pop("__metadata__", None)
    unknown = sorted({entry.get("dtype") for entry in header.values()} - set(_FROM_CODE))
    if unknown:
        raise BaseWeightsError(path, f"unsupported tensor dtypes {unknown}")
    return header


class FingerprintHasher:
    """:func:`chorus.taskvec.base_fingerprint` computed incrementally: feed every entry of a
    state dict in sorted name order, one tensor at a time."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._last: str | None = None

    def update(self, name: str, tensor: Tensor) -> None:
        if self._last is not None and name <= self._last:
            raise ValueError(f"fingerprint entries must come in sorted order ({name!r} after {self._last!r})")
        self._last = name
        tensor = tensor.detach().cpu().contiguous()
        for field in (name.encode(), str(tensor.dtype).encode(), repr(tuple(tensor.shape)).encode()):
            self._digest.update(len(field).to_bytes(8, "little"))
            self._digest.update(field)
        raw = memoryview(tensor.reshape(-1).view(torch.uint8).numpy()) if tensor.numel() else b""
        self._digest.update(len(raw).to_bytes(8, "little"))
        self._digest.update(raw)

    def hexdigest(self) -> str:
        return self._digest.hexdigest()

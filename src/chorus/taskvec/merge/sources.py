"""Where a merge reads tensors from, one at a time, and the streamed fingerprint.

A :class:`TensorSource` lists names with their dtype and shape without reading data, and
reads one tensor on request. :class:`SafetensorsFile` maps just that tensor's bytes, so no
map outlives its tensor (peak memory stays at one tensor per input), nothing is copied
and nothing is parsed per read.
"""

from __future__ import annotations

import hashlib
import mmap
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
import struct
from pathlib import Path
from typing import Mapping, Protocol

import torch
from torch import Tensor

from ...tensorfile import TensorFileError, read_header, verify_sha256
from ...verified import file_stamp, is_verified, remember_verified
from .writer import SAFETENSORS_DTYPES

_CHUNK = 1 << 24
_TORCH_DTYPES = {code: dtype for dtype, code in SAFETENSORS_DTYPES.items()}
_IN_FLIGHT = 2


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


class PrefixedSource:
    """The tensors of ``source`` whose names start with ``prefix``, named without it (the
    encoder of a ``model.safetensors``)."""

    def __init__(self, source: TensorSource, prefix: str):
        self.source, self.prefix = source, prefix

    def keys(self) -> list[str]:
        return [name[len(self.prefix):] for name in self.source.keys() if name.startswith(self.prefix)]

    def info(self, name: str) -> tuple[torch.dtype, tuple[int, ...]]:
        return self.source.info(self.prefix + name)

    def tensor(self, name: str) -> Tensor:
        return self.source.tensor(self.prefix + name)


class SafetensorsFile:
    """Random access to the tensors of a safetensors file, one memory map per tensor.

    The header is validated once (:func:`chorus.tensorfile.read_header`: a pickle renamed
    to ``.safetensors`` or a truncated file is refused). Each read maps the tensor's bytes
    privately (copy-on-write: the page cache is read in place, an in-place change stays in
    this process) through one file descriptor kept open; the map lives exactly as long as
    the tensor, so memory is bounded as with fresh buffers, without the copy.
    """

    def __init__(self, path: str | Path):
        self._fd: int | None = None  # first: close() runs even when the header is refused
        self.path = Path(path)
        self.header = read_header(self.path)
        with open(self.path, "rb") as handle:
            self._data_start = 8 + struct.unpack("<Q", handle.read(8))[0]

    def keys(self) -> list[str]:
        return list(self.header)

    def info(self, name: str) -> tuple[torch.dtype, tuple[int, ...]]:
        entry = self.header[name]
        if entry["dtype"] not in _TORCH_DTYPES:
            raise TensorFileError(self.path, f"tensor {name!r} has dtype {entry['dtype']}, which chorus does not read")
        return _TORCH_DTYPES[entry["dtype"]], tuple(entry["shape"])

    def tensor(self, name: str, digest: "SequentialDigest | None" = None) -> Tensor:
        """Tensor ``name``; its bytes also feed ``digest`` (the file's running sha256)."""
        dtype, shape = self.info(name)
        begin, end = self.header[name]["data_offsets"]
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        aligned = (self._data_start + begin) % dtype.itemsize == 0
        data = (_map if aligned else _pread)(self._fd, self.path, self._data_start + begin, self._data_start + end)
        if digest is not None:
            digest.feed(self._data_start + begin, data)
        if not data.numel():
            return torch.zeros(shape, dtype=dtype)
        return data.view(dtype).reshape(shape)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        self.close()


def _map(fd: int, path: Path, begin: int, end: int) -> Tensor:
    """Bytes ``begin..end`` of the open file ``fd`` as a uint8 tensor over a private map of
    that range (unmapped when the tensor and its views are gone)."""
    if begin == end:
        return torch.empty(0, dtype=torch.uint8)
    start = begin - begin % mmap.ALLOCATIONGRANULARITY
    try:
        region = mmap.mmap(fd, end - start, access=mmap.ACCESS_COPY, offset=start)
    except ValueError as exc:  # the range runs past the end of the file
        raise TensorFileError(path, f"file ends before byte {end}") from exc
    return torch.frombuffer(region, dtype=torch.uint8, count=end - begin, offset=begin - start)


def _pread(fd: int, path: Path, begin: int, end: int) -> Tensor:
    """Bytes ``begin..end`` of the open file ``fd`` as a fresh uint8 tensor."""
    data = torch.empty(end - begin, dtype=torch.uint8)
    view, done = memoryview(data.numpy()), 0
    while done < len(view):
        count = os.preadv(fd, [view[done:]], begin + done)
        if count <= 0:
            raise TensorFileError(path, f"file ends before byte {end}")
        done += count
    return data


def read_range(path: Path, begin: int, end: int) -> Tensor:
    """Bytes ``begin..end`` of ``path`` as a uint8 tensor (one open, ``pread`` until done)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return _pread(fd, path, begin, end)
    finally:
        os.close(fd)


class SequentialDigest:
    """The sha256 of a file, computed from the byte ranges a reader reads anyway.

    Ranges must come in file order: a gap the reader skipped is read here, a range before
    the current position turns incremental hashing off and :meth:`verify` hashes the whole
    file instead. A merge reading dense deltas in name order reads each file front to back,
    so verifying costs no second read. Hashing runs on a worker thread (at most
    ``_IN_FLIGHT`` ranges queued, so memory stays bounded).
    """

    def __init__(self, path: Path, expected: str):
        self.path, self.expected = Path(path), expected
        self._stamp = file_stamp(self.path)
        self._digest = hashlib.sha256()
        self._position = 0
        self._in_order = True
        self._worker: ThreadPoolExecutor | None = None
        self._queued: deque = deque()

    def feed(self, offset: int, data: Tensor) -> None:
        """Bytes ``data`` (a uint8 tensor) read at ``offset``."""
        if not self._in_order:
            return
        if offset < self._position:
            self._in_order = False
            return
        if offset > self._position:
            self._submit(read_range(self.path, self._position, offset))
        self._submit(data)
        self._position = offset + data.numel()

    def _submit(self, data: Tensor) -> None:
        if self._worker is None:
            self._worker = ThreadPoolExecutor(1, thread_name_prefix="chorus-sha256")
        self._queued.append(self._worker.submit(self._digest.update, data.numpy()))
        while len(self._queued) > _IN_FLIGHT:
            self._queued.popleft().result()

    def verify(self) -> None:
        """Raise :class:`~chorus.tensorfile.IntegrityError` unless the file hashes to ``expected``."""
        while self._queued:
            self._queued.popleft().result()
        if self._worker is not None:
            self._worker.shutdown()
            self._worker = None
        if not self._in_order:
            verify_sha256(self.path, self.expected)
            return
        size = self.path.stat().st_size
        for begin in range(self._position, size, _CHUNK):
            self._digest.update(read_range(self.path, begin, min(size, begin + _CHUNK)).numpy())
        if self._digest.hexdigest() != self.expected:
            verify_sha256(self.path, self.expected)  # reads it once more and raises, naming both digests
        remember_verified(self.path, self.expected, self._stamp)


class StoredDeltas:
    """A stored task vector whose dense float32 deltas are read with one ``pread`` each,
    following the documented layout of ``deltas.safetensors`` (docs/task-vector.md: a dense
    delta is stored under its own name). Other storage (sparse, bf16/fp16) goes through
    :meth:`TaskVector.tensor`. Fits :class:`chorus.taskvec.merge.stream.DeltaSource`.

    ``verify``: hash the deltas file from the bytes the merge reads (see
    :class:`SequentialDigest`); :meth:`verify` then checks it against the manifest."""

    def __init__(self, vector, directory: str | Path, verify: bool = False):
        from ..manifest import DELTAS_FILE

        self.vector = vector
        self.manifest = vector.manifest
        self._file = SafetensorsFile(Path(directory) / DELTAS_FILE)
        self._dense = self.manifest.storage.dtype == "float32"
        expected = self.manifest.files[DELTAS_FILE]
        known = verify and is_verified(self._file.path, expected)  # checked before, unchanged since
        self._digest = SequentialDigest(self._file.path, expected) if verify and not known else None

    def verify(self) -> None:
        """Check the deltas file's sha256 (from the bytes read so far, then the rest)."""
        if self._digest is not None:
            self._digest.verify()

    def keys(self) -> list[str]:
        return self.vector.keys()

    def shape(self, name: str) -> tuple[int, ...]:
        return self.vector.shape(name)

    def tensor(self, name: str) -> Tensor:
        if self._dense and not self.manifest.tensors[name].sparse:
            return self._file.tensor(name, self._digest)
        return self.vector.tensor(name)

    def __getattr__(self, name: str):
        if name == "vector":
            raise AttributeError(name)
        return getattr(self.vector, name)  # heads, head_tensors, fingerprint ... of the vector


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

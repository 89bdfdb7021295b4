"""Writing a safetensors file one tensor at a time.

``safetensors.torch.save_file`` needs every tensor at once; a streaming merge holds only one.
The format is simple (https://huggingface.co/docs/safetensors): an 8-byte little-endian
header length, a JSON header ``{name: {dtype, shape, data_offsets: [begin, end]}}`` padded
with spaces to a multiple of 8 bytes, then the raw little-endian tensor bytes. Names, dtypes
and shapes are known before any tensor is merged, so the header (with precomputed offsets)
is written first and tensors follow in header order. The file is written to a temporary
name, its sha256 computed on the way, and renamed into place only by :meth:`commit`; an
error or :meth:`abort` leaves nothing behind. The same tensors give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Mapping, Sequence

import torch
from torch import Tensor

from ...fileio import temporary_sibling, writing
from .errors import MergeError

SAFETENSORS_DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
                      torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
                      torch.uint8: "U8", torch.bool: "BOOL"}


class StreamingSafetensorsWriter:
    """Write ``entries`` (name, dtype, shape), in that order, to ``path``.

    Use as a context manager: ``write`` every tensor, then ``commit`` (returns the sha256);
    leaving the block without committing removes the temporary file.
    """

    def __init__(self, path: str | Path, entries: Sequence[tuple[str, torch.dtype, Sequence[int]]],
                 metadata: Mapping[str, str] | None = None):
        self.path = Path(path)
        self._expected = [(name, dtype, tuple(int(d) for d in shape)) for name, dtype, shape in entries]
        self._next = 0
        header: dict[str, object] = {}
        if metadata:
            header["__metadata__"] = dict(metadata)
        offset = 0
        for name, dtype, shape in self._expected:
            if dtype not in SAFETENSORS_DTYPES:
                raise MergeError(f"cannot store {name!r}: dtype {dtype} has no safetensors code")
            size = torch.empty((), dtype=dtype).element_size()
            for dim in shape:
                size *= dim
            header[name] = {"dtype": SAFETENSORS_DTYPES[dtype], "shape": list(shape),
                            "data_offsets": [offset, offset + size]}
            offset += size
        raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
        raw += b" " * (-len(raw) % 8)
        with writing(self.path):
            fd, self._tmp = temporary_sibling(self.path)
        self._handle = os.fdopen(fd, "wb")
        self._digest = hashlib.sha256()
        self._emit(struct.pack("<Q", len(raw)) + raw)

    def _emit(self, data: bytes | memoryview) -> None:
        with writing(self.path):
            self._handle.write(data)
        self._digest.update(data)

    def write(self, name: str, tensor: Tensor) -> None:
        """Write the next tensor; its name, dtype and shape must be the next entry's."""
        if self._next >= len(self._expected):
            raise MergeError(f"{self.path}: tensor {name!r} is one more than announced")
        expected = self._expected[self._next]
        found = (name, tensor.dtype, tuple(tensor.shape))
        if found != expected:
            raise MergeError(f"{self.path}: expected {expected} next, got {found}")
        data = tensor.detach().cpu().contiguous().reshape(-1)
        if data.numel():
            self._emit(memoryview(data.view(torch.uint8).numpy()))
        self._next += 1

    def commit(self) -> str:
        """Flush, sync and rename into place; return the file's sha256."""
        if self._next != len(self._expected):
            missing = [name for name, _, _ in self._expected[self._next:]]
            raise MergeError(f"{self.path}: {len(missing)} tensors never written ({', '.join(missing[:3])} ...)")
        with writing(self.path):
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            os.replace(self._tmp, self.path)
        return self._digest.hexdigest()

    def abort(self) -> None:
        """Close and remove the temporary file (the target is untouched)."""
        if not self._handle.closed:
            self._handle.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "StreamingSafetensorsWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        self.abort()

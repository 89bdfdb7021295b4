"""Safetensors files that chorus writes and reads: atomic, deterministic, validated.

Shared files are untrusted. Before anything is read, :func:`read_header` checks that a
file really is safetensors (a pickle or a torch zip renamed to ``.safetensors`` is
refused), that its header is well formed, and that every tensor's byte range lies inside
the file (a truncated file is refused). :func:`verify_sha256` compares the file's digest
with the one recorded in a manifest.

Determinism: the safetensors writer serialises a metadata dictionary with more than one
entry in a random order, so :func:`save_tensors` writes at most one metadata entry
(``chorus``, a JSON string with sorted keys); the same tensors then give the same bytes.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, Mapping

from torch import Tensor

from .errors import FileProblem
from .fileio import atomic_path, sha256_file
from .verified import file_stamp, is_verified, remember_verified

_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
                "U8": 1, "BOOL": 1, "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1}
_MAX_HEADER_BYTES = 100 * 1024 * 1024


class TensorFileError(FileProblem):
    """A tensor file is missing, malformed or not what its manifest says."""


class NotSafetensorsError(TensorFileError):
    """The file is not safetensors (for example a pickle renamed to ``.safetensors``)."""


class IntegrityError(TensorFileError):
    """The file's sha256 differs from the one recorded for it (altered or truncated)."""


def _sniff(prefix: bytes) -> str:
    if prefix.startswith(b"PK"):
        return "it looks like a zip archive (a torch.save checkpoint?)"
    if prefix[:1] == b"\x80":
        return "it looks like a Python pickle"
    return "its header is not safetensors"


def read_header(path: str | Path) -> dict[str, dict[str, Any]]:
    """The validated safetensors header of ``path``: ``{name: {dtype, shape, data_offsets}}``
    (metadata removed). Raises :class:`NotSafetensorsError` or :class:`TensorFileError`."""
    header = _validated_header(Path(path))
    header.pop("__metadata__", None)
    return header


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The ``metadata`` :func:`save_tensors` stored in ``path`` (``{}`` when none), from the
    validated header, without reading any tensor."""
    path = Path(path)
    stored = _validated_header(path).get("__metadata__") or {}
    try:
        metadata = json.loads(stored.get("chorus", "{}"))
    except (AttributeError, TypeError, json.JSONDecodeError):
        raise TensorFileError(path, "unreadable chorus metadata in the header") from None
    if not isinstance(metadata, dict):
        raise TensorFileError(path, "the chorus metadata is not a JSON object")
    return metadata


def _validated_header(path: Path) -> dict[str, Any]:
    """The header of ``path`` with every tensor entry checked (``__metadata__`` kept)."""
    if not path.is_file():
        raise TensorFileError(path, "file not found")
    size = path.stat().st_size
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise NotSafetensorsError(path, f"refusing to read: {_sniff(prefix)} (only {size} bytes)")
        (header_bytes,) = struct.unpack("<Q", prefix)
        if header_bytes > min(size - 8, _MAX_HEADER_BYTES):
            raise NotSafetensorsError(path, f"refusing to read: {_sniff(prefix)} "
                                            f"(declared header of {header_bytes} bytes in a {size}-byte file)")
        raw = handle.read(header_bytes)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise NotSafetensorsError(path, f"refusing to read: {_sniff(prefix)}") from None
    if not isinstance(header, dict):
        raise NotSafetensorsError(path, "refusing to read: the header is not a JSON object")
    data_bytes = size - 8 - header_bytes
    for name, info in header.items():
        if name != "__metadata__":
            _check_entry(path, name, info, data_bytes)
    return header


def _check_entry(path: Path, name: str, info: Any, data_bytes: int) -> None:
    try:
        dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
        numel = 1
        for dim in shape:
            numel *= int(dim)
        expected = numel * _DTYPE_BYTES[dtype]
    except (KeyError, TypeError, ValueError):
        raise TensorFileError(path, f"malformed header entry for tensor {name!r}") from None
    if end - begin != expected or begin < 0:
        raise TensorFileError(path, f"tensor {name!r}: byte range {begin}..{end} does not match {dtype}{shape}")
    if end > data_bytes:
        raise TensorFileError(path, f"file is truncated: tensor {name!r} ends at byte {end} "
                                    f"of a {data_bytes}-byte data section")


def verify_sha256(path: str | Path, expected: str) -> None:
    """Raise :class:`IntegrityError` unless ``path`` hashes to ``expected`` (hex sha256).
    A file verified before and unchanged since is not hashed again (:mod:`chorus.verified`)."""
    if is_verified(path, expected):
        return
    stamp = file_stamp(path)
    actual = sha256_file(path)
    if actual != expected:
        raise IntegrityError(path, f"sha256 mismatch: the manifest records {expected}, the file has {actual} "
                                   "(altered or truncated)")
    remember_verified(path, expected, stamp)


def save_tensors(path: str | Path, tensors: Mapping[str, Tensor], metadata: Mapping[str, Any] | None = None) -> str:
    """Write ``tensors`` to ``path`` atomically and deterministically; return its sha256.

    Tensors sharing storage are copied so that each is stored on its own.
    """
    from safetensors.torch import save_file

    seen: set[int] = set()
    prepared: dict[str, Tensor] = {}
    for name, tensor in tensors.items():
        tensor = tensor.detach().cpu().contiguous()
        pointer = tensor.untyped_storage().data_ptr()
        if pointer in seen and tensor.numel():
            tensor = tensor.clone()
        seen.add(pointer)
        prepared[name] = tensor
    extra = None if metadata is None else {"chorus": json.dumps(dict(metadata), sort_keys=True)}
    with atomic_path(path) as tmp:
        save_file(prepared, str(tmp), metadata=extra)
        digest = sha256_file(tmp)
    return digest


def load_tensors(path: str | Path, expected_sha256: str | None = None) -> dict[str, Tensor]:
    """Read every tensor of a (small) safetensors file after validating it."""
    from safetensors.torch import load_file

    read_header(path)
    if expected_sha256 is not None:
        verify_sha256(path, expected_sha256)
    return load_file(str(path))


"""How one logical delta tensor is laid out in ``deltas.safetensors``.

- dense: key ``name``, the delta in the storage dtype;
- sparse (top-k % magnitudes): ``name::values`` (storage dtype, ascending flat row-major
  position) and the positions, in the smaller of two layouts (``TensorEntry.positions``):
  ``name::indices``, int32 flat indices (int64 only when a tensor has 2**31 elements or
  more, and in files written before ``positions`` existed), or ``name::mask``, a packed bit
  mask (uint8 ``[ceil(numel / 8)]``, bit ``i % 8`` of byte ``i // 8`` set when element
  ``i`` is kept). 4·nnz bytes of indices beat numel/8 bytes of mask below density 1/32;
- exactness correction (fp32 dense deltas taken from two models only):
  ``name::residual_indices`` (int64) and ``name::residual_values`` (float64) where
  ``float32(base + delta)`` would miss the fine-tuned weight; see docs/task-vector.md.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from .errors import TaskVectorError
from .manifest import TensorEntry

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
SAFETENSORS_DTYPES = {"float32": "F32", "bfloat16": "BF16", "float16": "F16"}
_INDEX_BYTES = {"int64": 8, "int32": 4}
_INT32_LIMIT = 2 ** 31 - 1
_BITS = torch.tensor([1 << bit for bit in range(8)], dtype=torch.uint8)

Residual = tuple[Tensor, Tensor]
"""``(flat indices int64 [r], values float64 [r])``."""


def positions_layout(numel: int, nnz: int) -> str:
    """The smaller layout for ``nnz`` kept positions out of ``numel``: ``int32`` indices
    (``int64`` past 2**31 elements) or a ``bitmask``."""
    index = "int32" if numel <= _INT32_LIMIT else "int64"
    return "bitmask" if math.ceil(numel / 8) < _INDEX_BYTES[index] * nnz else index


def pack_mask(indices: Tensor, numel: int) -> Tensor:
    """Ascending flat ``indices [nnz]`` -> packed bits, uint8 ``[ceil(numel / 8)]``."""
    keep = torch.zeros(math.ceil(numel / 8) * 8, dtype=torch.uint8)
    keep[indices] = 1
    return (keep.view(-1, 8) * _BITS).sum(dim=1, dtype=torch.uint8)


def unpack_mask(mask: Tensor, numel: int) -> Tensor:
    """Packed bits ``mask`` -> the ascending flat indices (int64) of the set ones below ``numel``."""
    bits = (mask.unsqueeze(1) & _BITS).ne(0).reshape(-1)[:numel]
    return bits.nonzero().reshape(-1)


def encode(name: str, delta: Tensor, dtype: str, density: float, residual: Residual | None
           ) -> tuple[dict[str, Tensor], TensorEntry]:
    """Stored tensors and manifest entry for ``delta`` (float32 or float64, any shape)."""
    shape = list(delta.shape)
    flat = delta.reshape(-1)
    stored: dict[str, Tensor] = {}
    if density < 1.0:
        keep = max(1, math.ceil(density * flat.numel())) if flat.numel() else 0
        order = torch.argsort(flat.abs(), descending=True, stable=True)[:keep]
        indices = order.sort().values
        layout = positions_layout(flat.numel(), keep)
        if layout == "bitmask":
            stored[f"{name}::mask"] = pack_mask(indices, flat.numel())
        else:
            stored[f"{name}::indices"] = indices.to(torch.int32 if layout == "int32" else torch.int64)
        stored[f"{name}::values"] = flat[indices].to(DTYPES[dtype])
        entry = TensorEntry(shape=shape, sparse=True, nnz=int(indices.numel()), positions=layout)
    else:
        stored[name] = delta.to(DTYPES[dtype]).contiguous()
        entry = TensorEntry(shape=shape)
    if residual is not None and residual[0].numel():
        stored[f"{name}::residual_indices"] = residual[0].to(torch.int64)
        stored[f"{name}::residual_values"] = residual[1].to(torch.float64)
        entry.residuals = int(residual[0].numel())
    return stored, entry


def expected_keys(name: str, entry: TensorEntry, dtype: str) -> dict[str, tuple[str, list[int]]]:
    """``{stored key: (safetensors dtype, shape)}`` that ``entry`` promises."""
    value_dtype = SAFETENSORS_DTYPES[dtype]
    if not entry.sparse:
        keys = {name: (value_dtype, list(entry.shape))}
    elif entry.positions == "bitmask":
        keys = {f"{name}::mask": ("U8", [math.ceil(entry.numel / 8)]), f"{name}::values": (value_dtype, [entry.nnz])}
    else:
        keys = {f"{name}::indices": ("I32" if entry.positions == "int32" else "I64", [entry.nnz]),
                f"{name}::values": (value_dtype, [entry.nnz])}
    if entry.residuals:
        keys[f"{name}::residual_indices"] = ("I64", [entry.residuals])
        keys[f"{name}::residual_values"] = ("F64", [entry.residuals])
    return keys


def stored_bytes(entry: TensorEntry, dtype: str) -> int:
    """Bytes of ``entry``'s delta in the file (exactness correction not counted)."""
    value = torch.empty((), dtype=DTYPES[dtype]).element_size()
    if not entry.sparse:
        return value * entry.numel
    if entry.positions == "bitmask":
        return value * entry.nnz + math.ceil(entry.numel / 8)
    return value * entry.nnz + _INDEX_BYTES[entry.positions] * entry.nnz


def decode(handle: Any, name: str, entry: TensorEntry, exact: bool) -> Tensor:
    """Read one logical delta through an open ``safe_open`` handle.

    Returns float32, or float64 with the exactness correction added when ``exact``.
    """
    dtype = torch.float64 if exact else torch.float32
    if entry.sparse:
        if entry.positions == "bitmask":
            indices = unpack_mask(handle.get_tensor(f"{name}::mask"), entry.numel)
        else:
            indices = handle.get_tensor(f"{name}::indices").long()
        if indices.numel() != entry.nnz or (indices.numel() and not 0 <= int(indices.min()) <= int(indices.max())
                                            < entry.numel):
            raise TaskVectorError(f"sparse delta {name!r}: its positions do not match nnz {entry.nnz} within "
                                  f"{entry.numel} elements")
        delta = torch.zeros(entry.numel, dtype=dtype)
        delta[indices] = handle.get_tensor(f"{name}::values").to(dtype)
        delta = delta.reshape(entry.shape)
    else:
        delta = handle.get_tensor(name).to(dtype)
    if exact and entry.residuals:
        indices, values = read_residual(handle, name)
        delta.view(-1)[indices] += values
    return delta


def read_residual(handle: Any, name: str) -> Residual:
    return handle.get_tensor(f"{name}::residual_indices"), handle.get_tensor(f"{name}::residual_values")

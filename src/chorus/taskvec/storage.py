"""How one logical delta tensor is laid out in ``deltas.safetensors``.

- dense: key ``name``, the delta in the storage dtype;
- sparse (top-k % magnitudes): ``name::indices`` (int64 flat row-major indices, ascending)
  and ``name::values`` (storage dtype);
- exactness correction (fp32 dense deltas taken from two models only):
  ``name::residual_indices`` (int64) and ``name::residual_values`` (float64) where
  ``float32(base + delta)`` would miss the fine-tuned weight; see docs/task-vector.md.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from .manifest import TensorEntry

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
SAFETENSORS_DTYPES = {"float32": "F32", "bfloat16": "BF16", "float16": "F16"}

Residual = tuple[Tensor, Tensor]
"""``(flat indices int64 [r], values float64 [r])``."""


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
        stored[f"{name}::indices"] = indices
        stored[f"{name}::values"] = flat[indices].to(DTYPES[dtype])
        entry = TensorEntry(shape=shape, sparse=True, nnz=int(indices.numel()))
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
    keys = ({f"{name}::indices": ("I64", [entry.nnz]), f"{name}::values": (value_dtype, [entry.nnz])}
            if entry.sparse else {name: (value_dtype, list(entry.shape))})
    if entry.residuals:
        keys[f"{name}::residual_indices"] = ("I64", [entry.residuals])
        keys[f"{name}::residual_values"] = ("F64", [entry.residuals])
    return keys


def decode(handle: Any, name: str, entry: TensorEntry, exact: bool) -> Tensor:
    """Read one logical delta through an open ``safe_open`` handle.

    Returns float32, or float64 with the exactness correction added when ``exact``.
    """
    dtype = torch.float64 if exact else torch.float32
    if entry.sparse:
        delta = torch.zeros(entry.numel, dtype=dtype)
        delta[handle.get_tensor(f"{name}::indices")] = handle.get_tensor(f"{name}::values").to(dtype)
        delta = delta.reshape(entry.shape)
    else:
        delta = handle.get_tensor(name).to(dtype)
    if exact and entry.residuals:
        indices, values = read_residual(handle, name)
        delta.view(-1)[indices] += values
    return delta


def read_residual(handle: Any, name: str) -> Residual:
    return handle.get_tensor(f"{name}::residual_indices"), handle.get_tensor(f"{name}::residual_values")

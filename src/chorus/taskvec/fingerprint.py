"""Fingerprint of a base encoder's weights, so a task vector is never applied to the wrong base."""

from __future__ import annotations

import hashlib
from typing import Mapping

import torch
from torch import Tensor


def base_fingerprint(state_dict: Mapping[str, Tensor]) -> str:
    """Hex sha256 over every entry of ``state_dict`` in sorted name order.

    Each entry contributes its name, dtype, shape and raw little-endian bytes (buffers
    included), each field length-prefixed so that no two different dictionaries hash
    alike. Independent of device and of the order the dictionary was built in.
    """
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        fields = (name.encode(), str(tensor.dtype).encode(), repr(tuple(tensor.shape)).encode())
        for field in fields:
            digest.update(len(field).to_bytes(8, "little"))
            digest.update(field)
        raw = tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b""
        digest.update(len(raw).to_bytes(8, "little"))
        digest.update(raw)
    return digest.hexdigest()

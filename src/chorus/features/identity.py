"""Who computed a feature and from what: encoder identity and clip keys.

A cached feature is reused only when the encoder (architecture and exact weights), the
audio transform and the clip (file, time range, size, modification time) are all the
same, so a changed file or a retrained encoder never serves stale features.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.manifest import Clip
from ..encoders import Encoder


def weights_fingerprint(module: nn.Module) -> str:
    """Hex sha256 of every tensor in ``module.state_dict()`` (names sorted, dtype, shape and
    bytes), so random-init and pretrained weights of one architecture differ."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        value = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(value.view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()


def encoder_identity(encoder: Encoder) -> dict[str, Any]:
    """JSON-serialisable description of an encoder down to its weights."""
    return {
        "name": encoder.name,
        "architecture": encoder.architecture(),
        "sample_rate": int(encoder.sample_rate),
        "layers": list(encoder.layer_names),
        "dims": [int(d) for d in encoder.layer_dims],
        "weights_sha256": weights_fingerprint(encoder),
    }


def digest_of(obj: Any) -> str:
    """Short stable hex digest of a JSON-serialisable object."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def clip_key(clip: Clip, context: str) -> str:
    """Key of one clip's features: path, time range, file size and mtime, plus ``context``
    (the store's digest of encoder identity and transform).

    A missing file still gets a key (size/mtime -1) so that it can be reported as bad.
    """
    path = Path(clip.path).resolve()
    try:
        stat = path.stat()
        size, mtime = stat.st_size, stat.st_mtime_ns
    except OSError:
        size, mtime = -1, -1
    return digest_of([context, str(path), clip.start, clip.end, size, mtime])

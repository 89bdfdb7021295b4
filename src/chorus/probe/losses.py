"""Per-probe training losses and their gradients with respect to the logits.

Class-index targets ``[rows]``: softmax cross-entropy; multi-hot targets
``[rows, classes]``: binary cross-entropy per class. A probe's loss is the mean over rows
(and, for multi-hot targets, over classes).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F


def probe_losses(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean loss of each probe: ``logits [probes, rows, classes]`` -> ``[probes]``."""
    probes, rows, classes = logits.shape
    if targets.dim() == 1:
        flat = F.cross_entropy(logits.reshape(-1, classes), targets.repeat(probes), reduction="none")
        return flat.view(probes, rows).mean(dim=1)
    expanded = targets.unsqueeze(0).expand(probes, -1, -1)
    return F.binary_cross_entropy_with_logits(logits, expanded, reduction="none").mean(dim=(1, 2))


def dense_targets(targets: Tensor, classes: int) -> Tensor:
    """``[rows, classes]`` float targets: one-hot rows for class indices ``[rows]``, the
    multi-hot matrix itself otherwise."""
    return F.one_hot(targets, classes).float() if targets.dim() == 1 else targets


def logit_gradient(logits: Tensor, dense: Tensor, exclusive: bool) -> tuple[Tensor, float]:
    """Gradient of each probe's mean loss with respect to its logits, rows first, as an
    unscaled residual and its scale (applied by the caller inside its matrix products):
    ``logits [rows, probes, classes]`` -> ``([rows, probes, classes], scale)``, the gradient
    being ``scale * residual`` (``logits`` may be overwritten). ``dense [rows, classes]``:
    :func:`dense_targets`; ``exclusive``: one class per row (cross-entropy) rather than
    multi-hot (binary cross-entropy).

    Cross-entropy: ``(softmax(z) - onehot(y)) / rows``; binary cross-entropy:
    ``(sigmoid(z) - y) / (rows * classes)``.
    """
    rows, _, classes = logits.shape
    if exclusive:
        return torch.softmax(logits, dim=-1).sub_(dense.unsqueeze(1)), 1 / rows
    return torch.sigmoid_(logits).sub_(dense.unsqueeze(1)), 1 / (rows * classes)

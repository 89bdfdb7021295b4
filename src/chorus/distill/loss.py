"""The layer-to-layer distillation loss (DistilHuBERT's form).

Per frame ``t`` of one teacher layer with prediction ``p_t`` and standardised target
``y_t`` (``D`` features): ``(1/D) Σ_d |p_td − y_td| − λ log σ(cos(p_t, y_t))``, averaged over
frames; the loss of a step is the mean over every (teacher, layer) head.
"""

from __future__ import annotations

import torch
from torch import Tensor


def frame_loss(prediction: Tensor, target: Tensor, cosine_weight: float = 1.0) -> tuple[Tensor, Tensor, Tensor]:
    """``(total, l1, cosine similarity)`` for ``prediction``/``target`` ``[frames, features]``;
    ``l1`` and the cosine are means over frames."""
    l1 = (prediction - target).abs().mean()
    cosine = torch.nn.functional.cosine_similarity(prediction, target, dim=-1, eps=1e-8)
    total = l1 - cosine_weight * torch.nn.functional.logsigmoid(cosine).mean()
    return total, l1, cosine.mean()

"""``model_stock``: move from the base toward the average of the fine-tuned models by a
ratio set by the angle between their updates.

Source: Jang, Yun & Han, *Model Stock: All we need is just a few fine-tuned models*
(ECCV 2024). Per tensor, with ``K`` deltas and ``cos θ`` the mean cosine over the pairs
``(τ_i, τ_j)``, ``i < j``, the merged weight is ``t·w_avg + (1 - t)·w_0``, i.e. the
direction ``t · Σ w_i τ_i / Σ w_i`` with

    t = K cos θ / (1 + (K - 1) cos θ).

Nearly parallel updates (cos θ → 1) keep the average (t → 1); orthogonal ones fall back
toward the base (t → 0). ``cos θ`` is clipped to [0, 1] (negative correlation: the base,
and no division by ``1 + (K-1)cos θ ≈ 0``); a pair with a zero delta counts as cosine 0;
with one vector ``t = 1``. Default λ = 1 (the paper has no extra scaling).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from .core import weighted_mean
from .registry import MethodParams, TensorContext, register_method


class ModelStockParams(MethodParams):
    """No parameters: the ratio comes from the geometry of the deltas."""


def mean_pairwise_cosine(deltas: Sequence[Tensor]) -> float:
    """Mean of ``cos(τ_i, τ_j)`` over pairs ``i < j`` (0 for a pair with a zero delta), float64."""
    flat = [delta.double().reshape(-1) for delta in deltas]
    norms = [float(x.norm()) for x in flat]
    cosines = [float(flat[i] @ flat[j]) / (norms[i] * norms[j]) if norms[i] and norms[j] else 0.0
               for i in range(len(flat)) for j in range(i + 1, len(flat))]
    return sum(cosines) / len(cosines)


def interpolation_ratio(cosine: float, count: int) -> float:
    """``t = K cos θ / (1 + (K - 1) cos θ)`` with ``cos θ`` clipped to [0, 1]."""
    cosine = min(1.0, max(0.0, cosine))
    return count * cosine / (1.0 + (count - 1) * cosine)


@register_method("model_stock", params=ModelStockParams, default_lambda=1.0,
                 summary="average scaled toward the base by the deltas' angle",
                 source="Jang et al., Model Stock, ECCV 2024")
def model_stock(deltas: Sequence[Tensor], params: ModelStockParams, ctx: TensorContext) -> Tensor:
    if len(deltas) == 1:
        return deltas[0].float().clone()
    ratio = interpolation_ratio(mean_pairwise_cosine(deltas), len(deltas))
    return torch.mul(weighted_mean(deltas, ctx.weights), ratio)

"""``mean``: the plain (weighted) average of the task vectors, θ = θ0 + λ · Σ w_i τ_i / Σ w_i.

Source: uniform weight averaging of fine-tuned models, Wortsman et al., *Model soups:
averaging weights of multiple fine-tuned models improves accuracy without increasing
inference time* (ICML 2022). With unit weights and λ = 1 it equals task arithmetic with
λ = 1/K.
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor

from .core import weighted_mean
from .registry import MethodParams, TensorContext, register_method


class MeanParams(MethodParams):
    """No parameters."""


@register_method("mean", params=MeanParams, default_lambda=1.0, summary="weighted average of the task vectors",
                 source="Wortsman et al., Model soups, ICML 2022")
def mean(deltas: Sequence[Tensor], params: MeanParams, ctx: TensorContext) -> Tensor:
    return weighted_mean(deltas, ctx.weights)

"""``negation``: θ = θ0 − λ · Σ w_i τ_i, to make a model forget the vectors' domains.

Source: Ilharco et al., *Editing Models with Task Arithmetic* (ICLR 2023), "forgetting via
negation". Default λ = 1.
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor

from .core import weighted_sum
from .registry import MethodParams, TensorContext, register_method


class NegationParams(MethodParams):
    """No parameters besides λ and the per-vector weights."""


@register_method("negation", params=NegationParams, default_lambda=1.0, summary="subtract the task vectors (forget)",
                 source="Ilharco et al., Editing Models with Task Arithmetic, ICLR 2023")
def negation(deltas: Sequence[Tensor], params: NegationParams, ctx: TensorContext) -> Tensor:
    return weighted_sum(deltas, [-w for w in ctx.weights])

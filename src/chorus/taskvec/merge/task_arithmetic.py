"""``task_arithmetic``: θ = θ0 + λ · Σ w_i τ_i.

Source: Ilharco et al., *Editing Models with Task Arithmetic* (ICLR 2023). Default λ = 0.4,
the value Yadav et al. (TIES-Merging, NeurIPS 2023) recommend for task arithmetic when no
validation data is held; a validation sweep replaces it when the composer has data.
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor

from .core import weighted_sum
from .registry import MethodParams, TensorContext, register_method

DEFAULT_LAMBDA = 0.4


class TaskArithmeticParams(MethodParams):
    """No parameters besides the recipe's λ and per-vector weights."""


@register_method("task_arithmetic", params=TaskArithmeticParams, default_lambda=DEFAULT_LAMBDA,
                 summary="scaled sum of the task vectors",
                 source="Ilharco et al., Editing Models with Task Arithmetic, ICLR 2023")
def task_arithmetic(deltas: Sequence[Tensor], params: TaskArithmeticParams, ctx: TensorContext) -> Tensor:
    return weighted_sum(deltas, ctx.weights)

"""``dare``: drop each delta entry at random and rescale the survivors (Drop And REscale),
then sum — or, with ``ties: true``, apply TIES' sign election and disjoint mean (DARE-TIES).

Source: Yu et al., *Language Models are Super Mario: Absorbing Abilities from Homologous
Models as a Free Lunch* (ICML 2024). Masks are drawn per vector and tensor name from
:func:`chorus.seeding.generator`, so a merge never depends on execution order. Defaults:
``density`` 0.5 (drop half; small encoders tolerate less dropping than the paper's LLMs),
λ = 1 with TIES' consensus and 0.4 (task arithmetic's default) with a plain sum.
"""

from __future__ import annotations

from typing import Sequence

from pydantic import Field
from torch import Tensor

from .core import SignRule
from .generalized import random_sparsifier, ties_or_sum_lambda, ties_or_sum_merge
from .registry import MethodParams, TensorContext, register_method


class DareParams(MethodParams):
    density: float = Field(0.5, gt=0.0, le=1.0, description="probability of keeping an entry (1 - drop rate)")
    rescale: bool = True
    ties: bool = False
    sign: SignRule = "mass"


@register_method("dare", params=DareParams, default_lambda=ties_or_sum_lambda,
                 vector_density=True,
                 summary="random drop + rescale, then sum or TIES consensus",
                 source="Yu et al., Language Models are Super Mario (DARE), ICML 2024")
def dare(deltas: Sequence[Tensor], params: DareParams, ctx: TensorContext) -> Tensor:
    return ties_or_sum_merge(deltas, ctx, random_sparsifier(params.density, params.rescale), params)

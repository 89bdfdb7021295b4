"""``breadcrumbs``: mask out both the largest-magnitude outliers (top ``gamma``) and the
small perturbations (beyond the kept ``density``) of every delta, then sum — or apply TIES'
consensus with ``ties: true``.

Source: Davari & Belilovsky, *Model Breadcrumbs: Scaling Multi-Task Model Merging with
Sparse Masks* (ECCV 2024). Defaults: ``gamma`` 0.01, ``density`` 0.9, per-tensor scope (the
paper masks layer by layer), λ = 0.4 as task arithmetic (1 with TIES' consensus).
"""

from __future__ import annotations

from typing import Sequence

from pydantic import Field
from torch import Tensor

from .core import SignRule, kept_count
from .generalized import KEPT, OUTLIERS, Scope, breadcrumbs_sparsifier, ties_or_sum_lambda, ties_or_sum_merge
from .registry import MethodParams, TensorContext, register_method


class BreadcrumbsParams(MethodParams):
    density: float = Field(0.9, gt=0.0, le=1.0, description="kept fraction after the top gamma")
    gamma: float = Field(0.01, ge=0.0, lt=1.0, description="fraction of largest magnitudes removed")
    scope: Scope = "per_tensor"
    ties: bool = False
    sign: SignRule = "mass"


def _ranks(params: BreadcrumbsParams, numel: int) -> dict[str, int]:
    if params.scope != "global":
        return {}
    return {OUTLIERS: kept_count(numel, params.gamma), KEPT: kept_count(numel, min(1.0, params.gamma + params.density))}


@register_method("breadcrumbs", params=BreadcrumbsParams, global_ranks=_ranks,
                 vector_density=True,
                 default_lambda=ties_or_sum_lambda,
                 summary="drop outliers and small deltas, then sum or TIES consensus",
                 source="Davari & Belilovsky, Model Breadcrumbs, ECCV 2024")
def breadcrumbs(deltas: Sequence[Tensor], params: BreadcrumbsParams, ctx: TensorContext) -> Tensor:
    return ties_or_sum_merge(deltas, ctx, breadcrumbs_sparsifier(params.density, params.gamma), params)

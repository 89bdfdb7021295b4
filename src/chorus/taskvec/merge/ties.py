"""``ties``: trim each vector to its top-k magnitudes, elect a sign per entry, average the
entries that agree with it.

Source: Yadav et al., *TIES-Merging: Resolving Interference When Merging Models*
(NeurIPS 2023). Defaults follow the paper's no-validation setting: keep the top 20 %
(``density`` 0.2) and λ = 1. ``scope``: ``per_tensor`` ranks magnitudes inside each tensor
(what most toolkits do); ``global`` ranks them over each whole task vector, as in the paper.
"""

from __future__ import annotations

from typing import Sequence

from pydantic import Field
from torch import Tensor

from .core import SignRule, kept_count
from .generalized import KEPT, Scope, generalized_merge, magnitude_sparsifier
from .registry import MethodParams, TensorContext, register_method


class TiesParams(MethodParams):
    density: float = Field(0.2, gt=0.0, le=1.0, description="kept fraction of each vector's entries")
    scope: Scope = "per_tensor"
    sign: SignRule = "mass"


def _ranks(params: TiesParams, numel: int) -> dict[str, int]:
    return {KEPT: kept_count(numel, params.density)} if params.scope == "global" else {}


@register_method("ties", params=TiesParams, default_lambda=1.0, global_ranks=_ranks,
                 vector_density=True,
                 summary="trim top-k, elect sign, disjoint mean",
                 source="Yadav et al., TIES-Merging, NeurIPS 2023")
def ties(deltas: Sequence[Tensor], params: TiesParams, ctx: TensorContext) -> Tensor:
    return generalized_merge(deltas, ctx, magnitude_sparsifier(params.density), "ties", params.sign)

"""``della``: magnitude-ranked stochastic drop with rescaling (MAGPRUNE), then TIES' sign
election and disjoint mean (or a plain sum).

Source: Deep, Bhardwaj & Poria, *DELLA-Merging: Reducing Interference in Model Merging
through Magnitude-Based Sampling* (2024). In each row of a delta (a matrix's rows,
convolution kernels read as ``[out, in * prod(k)]``, a vector as one row) of ``n`` entries,
rank the entries by decreasing magnitude, ``r = 0 .. n-1`` (ties by position), and drop
entry ``r`` with probability

    p_r = (1 - density) - ε/2 + ε · r / n,

so large entries are dropped less often and the mean drop rate is about ``1 - density``;
a kept entry is divided by ``1 - p_r`` (its expectation is unchanged). Masks
(``rand < 1 - p_r``, row-major) come from :func:`chorus.seeding.generator` seeded by
``(seed, "della", vector id, tensor name)``, as DARE's, so a merge never depends on the
order tensors are processed in. Needs ``ε/2 < density`` and ``ε/2 ≤ 1 - density``.
Defaults: ``density`` 0.5, ``epsilon`` 0.1, TIES consensus, λ = 1.
"""

from __future__ import annotations

from typing import Sequence

import torch
from pydantic import Field, model_validator
from torch import Tensor

from ...seeding import generator
from .core import SignRule
from .generalized import Sparsifier, ties_or_sum_lambda, ties_or_sum_merge
from .registry import MethodParams, TensorContext, register_method


class DellaParams(MethodParams):
    density: float = Field(0.5, gt=0.0, le=1.0, description="mean probability of keeping an entry")
    epsilon: float = Field(0.1, ge=0.0, description="spread of keep probabilities between small and large entries")
    ties: bool = True
    sign: SignRule = "mass"

    @model_validator(mode="after")
    def _probabilities_in_range(self) -> "DellaParams":
        if not (self.epsilon / 2 < self.density and self.epsilon / 2 <= 1.0 - self.density):
            raise ValueError(f"epsilon/2 must be below density and at most 1 - density "
                             f"(density {self.density}, epsilon {self.epsilon})")
        return self


def keep_probabilities(delta: Tensor, density: float, epsilon: float) -> Tensor:
    """``1 - p_r`` for every entry of ``delta`` (same shape), ranks taken within rows."""
    rows = delta.reshape(delta.shape[0], -1) if delta.dim() >= 2 else delta.reshape(1, -1)
    width = rows.shape[1]
    order = torch.argsort(rows.abs(), dim=1, descending=True, stable=True)
    ranks = torch.empty_like(order).scatter_(1, order, torch.arange(width).expand_as(order))
    del order  # in place from here: one float64 buffer (the bytes of the plain formula)
    drop = ranks.double()
    del ranks
    drop.mul_(epsilon).div_(width).add_((1.0 - density) - epsilon / 2)
    return drop.neg_().add_(1.0).reshape(delta.shape)


def magprune(delta: Tensor, density: float, epsilon: float, gen: torch.Generator) -> Tensor:
    """DELLA's MAGPRUNE of one delta: magnitude-ranked random drop, kept entries rescaled."""
    keep = keep_probabilities(delta, density, epsilon)
    mask = torch.rand(delta.shape, generator=gen, dtype=torch.float64) < keep
    scaled = delta.double().div_(keep)
    del keep
    return scaled.masked_fill_(~mask, 0.0).to(delta.dtype)


def della_sparsifier(density: float, epsilon: float) -> Sparsifier:
    def sparsify(delta: Tensor, index: int, ctx: TensorContext) -> Tensor:
        return magprune(delta, density, epsilon, generator(ctx.seed, "della", ctx.vector_ids[index], ctx.name))

    return sparsify


@register_method("della", params=DellaParams, default_lambda=ties_or_sum_lambda,
                 summary="magnitude-ranked random drop + rescale, then TIES consensus or sum",
                 source="Deep et al., DELLA-Merging, 2024")
def della(deltas: Sequence[Tensor], params: DellaParams, ctx: TensorContext) -> Tensor:
    return ties_or_sum_merge(deltas, ctx, della_sparsifier(params.density, params.epsilon), params)

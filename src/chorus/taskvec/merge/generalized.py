"""Generalized task arithmetic: a sparsifier applied to each delta, then a consensus rule.

TIES, DARE and Model Breadcrumbs are configurations of this one method, not subclasses:

==============  =========================================  =======================
method          sparsifier                                 consensus
==============  =========================================  =======================
``ties``        top-k by magnitude (per tensor or global)  elect sign, disjoint mean
``dare``        random drop with 1/density rescaling       sum, or TIES' consensus
``breadcrumbs`` drop the largest γ and the smallest        sum, or TIES' consensus
==============  =========================================  =======================

Scopes: ``per_tensor`` computes magnitude thresholds inside each tensor; ``global``
computes them once over each whole task vector (every parameter delta) in a streaming
first pass, see :mod:`chorus.taskvec.merge.thresholds`.
"""

from __future__ import annotations

from typing import Any, Callable, Literal, Sequence

from torch import Tensor

from ...seeding import generator
from .core import SignRule, breadcrumbs_trim, dare_drop, disjoint_mean, elect_sign, trim_topk, weighted_sum
from .registry import TensorContext
from .task_arithmetic import DEFAULT_LAMBDA

Scope = Literal["per_tensor", "global"]
KEPT = "kept"
"""Global threshold name: the smallest magnitude a sparsifier keeps."""
OUTLIERS = "outliers"
"""Global threshold name: magnitudes at or above it are outliers Breadcrumbs removes."""
Sparsifier = Callable[[Tensor, int, TensorContext], Tensor]
"""``sparsify(delta, vector_index, ctx) -> sparsified delta``."""


def magnitude_sparsifier(density: float) -> Sparsifier:
    """Keep the top ``density`` (or the vector's own, :meth:`TensorContext.density`) by
    magnitude; global bounds (one threshold per vector) win."""

    def sparsify(delta: Tensor, index: int, ctx: TensorContext) -> Tensor:
        threshold = ctx.bounds[index][KEPT] if ctx.bounds else None
        return trim_topk(delta, ctx.density(index, density), threshold)

    return sparsify


def random_sparsifier(density: float, rescale: bool = True) -> Sparsifier:
    """DARE's drop: the mask of vector ``i`` on tensor ``name`` is drawn from
    ``chorus.seeding.generator(seed, "dare", vector_id_i, name)``; keep probability
    ``density`` or the vector's own."""

    def sparsify(delta: Tensor, index: int, ctx: TensorContext) -> Tensor:
        return dare_drop(delta, ctx.density(index, density), generator(ctx.seed, "dare", ctx.vector_ids[index], ctx.name), rescale)

    return sparsify


def breadcrumbs_sparsifier(density: float, gamma: float) -> Sparsifier:
    """Breadcrumbs' window between the global ``KEPT`` (low) and ``OUTLIERS`` (high)
    thresholds of each vector, or per tensor without them (``density``: or the vector's own)."""

    def sparsify(delta: Tensor, index: int, ctx: TensorContext) -> Tensor:
        bounds = (ctx.bounds[index][KEPT], ctx.bounds[index][OUTLIERS]) if ctx.bounds else None
        return breadcrumbs_trim(delta, ctx.density(index, density), gamma, bounds)

    return sparsify


def generalized_merge(deltas: Sequence[Tensor], ctx: TensorContext, sparsify: Sparsifier,
                      consensus: Literal["sum", "ties"], sign_rule: SignRule = "mass") -> Tensor:
    """Sparsify every delta, then combine: ``"sum"`` gives ``Σ w_i δ'_i``; ``"ties"`` elects
    a sign per entry and takes the weighted mean of the agreeing non-zero ``δ'_i``."""
    sparse = [sparsify(delta.float(), index, ctx) for index, delta in enumerate(deltas)]
    if consensus == "sum":
        return weighted_sum(sparse, ctx.weights)
    return disjoint_mean(sparse, elect_sign(sparse, ctx.weights, sign_rule), ctx.weights)


def ties_or_sum_lambda(params: Any, vectors: int) -> float:
    """Default λ of a method with a ``ties`` switch: 1 under TIES' consensus, task
    arithmetic's with a plain sum."""
    return 1.0 if params.ties else DEFAULT_LAMBDA


def ties_or_sum_merge(deltas: Sequence[Tensor], ctx: TensorContext, sparsify: Sparsifier, params: Any) -> Tensor:
    """:func:`generalized_merge` with TIES' consensus when ``params.ties``, else a plain
    sum; signs elected by ``params.sign``."""
    return generalized_merge(deltas, ctx, sparsify, "ties" if params.ties else "sum", params.sign)

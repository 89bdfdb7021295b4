"""``regmean``: Regression Mean — per linear/conv layer, the weights that best reproduce
every task's outputs on its own inputs, in closed form from Gram statistics.

Source: Jin et al., *Dataless Knowledge Fusion by Merging Weights of Language Models*
(ICLR 2023). For a weight ``W`` (``[out, d]``; convolution kernels read as
``[out, in · prod(k)]``, inputs as unfolded patches) and each party's ``G_i = X_iᵀ X_i``
of the layer's inputs over its own clips (``gram.safetensors``, see
:mod:`chorus.taskvec.gram`), RegMean minimizes ``Σ_i w_i ‖X_i W_mᵀ − X_i W_iᵀ‖²``:

    W_m = (Σ_i w_i W_i G̃_i) (Σ_i w_i G̃_i)⁻¹,   G̃_i = α G_i + (1 − α) diag(G_i).

Because ``W_i = W_0 + τ_i`` and the solve reproduces ``W_0``, the merged direction is the
same formula with ``τ_i`` in place of ``W_i``. ``α`` (``alpha``, in [0, 1]) scales the
off-diagonal entries: a ridge-like shrinkage toward the diagonal that keeps the solve well
conditioned (α = 1: plain least squares; α = 0: a per-input-feature weighted mean); the
paper tunes it, default 0.9. Grams are raw sums, so a party with more frames weighs more,
as in the paper. Input features no party's data ever reaches (zero diagonal) leave the
system singular: those columns take the weighted mean of the deltas. Everything runs in
float64; the Grams are read one vector at a time and summed, so memory holds two
``[d, d]`` matrices besides the deltas. Tensors without Grams (biases, normalisation,
grouped convolutions) take the weighted mean. Weights must be positive. Default λ = 1.
"""

from __future__ import annotations

from typing import Sequence

import torch
from pydantic import Field
from torch import Tensor

from .core import as_matrix, weighted_mean
from .errors import MergeError
from .registry import MethodParams, TensorContext, register_method


class RegMeanParams(MethodParams):
    alpha: float = Field(0.9, ge=0.0, le=1.0, description="scale of the Grams' off-diagonal entries")


def shrink_(gram: Tensor, alpha: float) -> Tensor:
    """``α G + (1 − α) diag(G)`` in place (off-diagonal entries scaled by ``α``); returns ``gram``."""
    diagonal = gram.diagonal().clone()
    gram.mul_(alpha).diagonal().copy_(diagonal)
    return gram


def regmean_solve(deltas: Sequence[Tensor], params: RegMeanParams, ctx: TensorContext) -> Tensor:
    """The RegMean direction of one tensor (reads ``ctx.gram`` for each vector in turn)."""
    if any(w <= 0 for w in ctx.weights):
        raise MergeError(f"RegMean needs positive weights, got {list(ctx.weights)}")
    if as_matrix(deltas[0]) is None or ctx.gram is None:
        return weighted_mean(deltas, ctx.weights)
    total = numerator = None
    for index, (weight, delta) in enumerate(zip(ctx.weights, deltas)):
        gram = ctx.gram(index)
        if gram is None:
            if index == 0:
                return weighted_mean(deltas, ctx.weights)
            raise MergeError(f"task vector {index} has no Gram for {ctx.name!r} but task vector 0 has")
        if total is None and index:
            raise MergeError(f"task vector 0 has no Gram for {ctx.name!r} but task vector {index} has")
        part = shrink_(gram, params.alpha)
        term = as_matrix(delta).double() @ part
        if total is None:
            total, numerator = part.mul_(weight), term.mul_(weight)
        else:
            total.add_(part, alpha=weight)
            numerator.add_(term, alpha=weight)
        del gram, part
    result = weighted_mean(deltas, ctx.weights).double().reshape(numerator.shape)
    live = (torch.diagonal(total) > 0).nonzero().squeeze(1)
    if live.numel() == total.shape[0]:
        result = torch.linalg.solve(total, numerator.T).T
    elif live.numel():
        result[:, live] = torch.linalg.solve(total[live][:, live], numerator[:, live].T).T
    return result.float().reshape(deltas[0].shape)


@register_method("regmean", params=RegMeanParams, default_lambda=1.0, gram_source="finetuned",
                 summary="closed-form least squares on each party's layer inputs (needs Grams)",
                 source="Jin et al., Dataless Knowledge Fusion by Merging Weights (RegMean), ICLR 2023")
def regmean(deltas: Sequence[Tensor], params: RegMeanParams, ctx: TensorContext) -> Tensor:
    return regmean_solve(deltas, params, ctx)

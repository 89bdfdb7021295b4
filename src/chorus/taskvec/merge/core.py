"""The functional core of merging: stateless operations on task-vector tensors.

Every function takes and returns plain tensors, so each can be tested on its own against a
straightforward reimplementation. Conventions:

- ``deltas`` is a sequence of ``K`` same-shaped float tensors, one per task vector (τ_i of
  one named tensor); ``weights`` has ``K`` floats.
- A *density* is the kept fraction of entries; keeping ``density`` of ``n`` entries keeps
  ``k = ceil(density * n)`` of them (a product within 1e-9 of an integer counts as it).
- Magnitude selections keep every entry whose ``|x|`` is at least the k-th largest
  magnitude, so ties at the threshold are all kept and nothing depends on sort order.
"""

from __future__ import annotations

import math
from typing import Literal, Sequence

import torch
from torch import Tensor

from ...errors import InvalidInput

SignRule = Literal["mass", "count"]


def kept_count(numel: int, density: float) -> int:
    """How many of ``numel`` entries a ``density`` keeps: ``ceil(density * numel)``."""
    if not 0.0 <= density <= 1.0:
        raise InvalidInput(f"density must lie in [0, 1], got {density}")
    return min(numel, math.ceil(density * numel - 1e-9))


def kth_largest_magnitude(tensor: Tensor, k: int) -> float:
    """The k-th largest ``|x|`` of ``tensor`` (k counts from 1). ``k`` < 1 gives +inf
    (nothing reaches it); ``k`` > numel gives 0 (everything does)."""
    numel = tensor.numel()
    if k < 1:
        return math.inf
    if k > numel:
        return 0.0
    magnitudes = tensor.detach().reshape(-1).abs().float()
    return float(torch.kthvalue(magnitudes, numel - k + 1).values)


def magnitude_mask(tensor: Tensor, low: float, high: float = math.inf) -> Tensor:
    """Bool mask of entries with ``low <= |x|`` and ``|x| < high``."""
    magnitudes = tensor.abs()
    mask = magnitudes >= low
    if high != math.inf:
        mask &= magnitudes < high
    return mask


def trim_topk(tensor: Tensor, density: float, threshold: float | None = None) -> Tensor:
    """TIES *trim*: keep the top ``density`` fraction of entries by magnitude, zero the rest.

    ``threshold`` (a magnitude computed over a larger scope, e.g. the whole task vector)
    replaces the per-tensor k-th largest magnitude.
    """
    if threshold is None:
        threshold = kth_largest_magnitude(tensor, kept_count(tensor.numel(), density))
    return tensor * magnitude_mask(tensor, threshold)


def breadcrumbs_bounds(tensor: Tensor, density: float, gamma: float) -> tuple[float, float]:
    """Per-tensor magnitude window ``(low, high)`` of Model Breadcrumbs: drop the top
    ``gamma`` fraction (outliers) and keep the next ``density`` fraction."""
    numel = tensor.numel()
    top = kept_count(numel, gamma)
    kept = kept_count(numel, min(1.0, gamma + density))
    high = kth_largest_magnitude(tensor, top) if top else math.inf
    return kth_largest_magnitude(tensor, kept) if kept > top else math.inf, high


def breadcrumbs_trim(tensor: Tensor, density: float, gamma: float,
                     bounds: tuple[float, float] | None = None) -> Tensor:
    """Model Breadcrumbs' mask applied: zero both the largest ``gamma`` fraction and the
    small entries outside the kept ``density`` fraction. ``bounds`` overrides the
    per-tensor ``(low, high)`` magnitude window (global scope)."""
    low, high = breadcrumbs_bounds(tensor, density, gamma) if bounds is None else bounds
    return tensor * magnitude_mask(tensor, low, high)


def dare_drop(tensor: Tensor, density: float, generator: torch.Generator, rescale: bool = True) -> Tensor:
    """DARE: keep each entry with probability ``density`` (mask ``rand < density`` drawn
    from ``generator`` in the tensor's row-major order), rescale kept ones by
    ``1 / density`` so the expected value is unchanged."""
    if not 0.0 < density <= 1.0:
        raise InvalidInput(f"DARE density must lie in (0, 1], got {density}")
    keep = torch.rand(tensor.shape, generator=generator) < density
    dropped = tensor * keep
    return dropped / density if rescale else dropped


def weighted_sum(deltas: Sequence[Tensor], weights: Sequence[float]) -> Tensor:
    """``Σ_i w_i δ_i``, accumulated in float32 in input order (a new tensor)."""
    total = torch.mul(deltas[0].float(), float(weights[0]))
    for weight, delta in zip(weights[1:], deltas[1:]):
        if weight:
            total.add_(delta.float(), alpha=float(weight))
    return total


def weighted_mean(deltas: Sequence[Tensor], weights: Sequence[float]) -> Tensor:
    """``Σ_i w_i δ_i / Σ_i w_i``."""
    total = float(sum(weights))
    if total == 0:
        raise InvalidInput("weights sum to zero: no mean")
    return weighted_sum(deltas, [w / total for w in weights])


def all_zero(deltas: Sequence[Tensor]) -> bool:
    """True when every delta is zero (a frozen tensor): spectral methods skip their SVDs."""
    return not any(bool(delta.any()) for delta in deltas)


def elect_sign(deltas: Sequence[Tensor], weights: Sequence[float], rule: SignRule = "mass") -> Tensor:
    """TIES *elect*: the sign each entry agrees on, as -1/0/+1 float.

    ``"mass"``: sign of ``Σ w_i δ_i`` (the paper's rule: total magnitude per direction);
    ``"count"``: sign of ``Σ w_i sign(δ_i)`` (a weighted majority vote).
    """
    if rule == "mass":
        return torch.sign(weighted_sum(deltas, weights))
    if rule == "count":
        return torch.sign(weighted_sum([torch.sign(d) for d in deltas], weights))
    raise InvalidInput(f"unknown sign rule {rule!r} (mass or count)")


def disjoint_mean(deltas: Sequence[Tensor], sign: Tensor, weights: Sequence[float]) -> Tensor:
    """TIES *disjoint merge*: per entry, the weighted mean of the non-zero ``δ_i`` whose sign
    equals ``sign``; zero where none agrees."""
    numerator = torch.zeros_like(sign)
    denominator = torch.zeros_like(sign)
    for weight, delta in zip(weights, deltas):
        agree = (torch.sign(delta) == sign) & (delta != 0)
        numerator.add_(delta.float() * agree, alpha=float(weight))
        denominator.add_(agree.float(), alpha=float(weight))
    return torch.where(denominator != 0, numerator / torch.where(denominator != 0, denominator, 1.0), 0.0)


def as_matrix(tensor: Tensor) -> Tensor | None:
    """A 2-D view for spectral methods: matrices as they are, convolution kernels
    ``[out, in, *kernel]`` as ``[out, in * prod(kernel)]``; None for vectors and scalars."""
    if tensor.dim() < 2:
        return None
    return tensor.reshape(tensor.shape[0], -1)

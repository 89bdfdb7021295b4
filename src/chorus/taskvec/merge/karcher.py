"""``karcher``: the weighted Karcher (Riemannian, geodesic) mean of the task vectors'
directions on the unit sphere, scaled by their mean norm.

Per tensor, with unit directions ``u_i = τ_i / ‖τ_i‖`` and weights ``w_i ≥ 0``
(normalized to sum 1), the Karcher mean is the point ``x`` of the sphere minimizing
``Σ w_i d(x, u_i)²`` with ``d`` the great-circle distance. It is found by the fixed-point
iteration (Karcher 1977; Buss & Fillmore 2001):

    v = Σ w_i log_x(u_i),   log_x(u) = θ / sin θ · (u − cos θ · x),   θ = arccos⟨x, u⟩,
    x ← cos‖v‖ · x + sin‖v‖ · v / ‖v‖,

starting from the normalized weighted sum of the ``u_i``, until ``‖v‖ < tol`` (radians) or
``max_iter`` steps. The merged direction is ``(Σ w_i ‖τ_i‖) · x``. Vectors with a zero
delta have no direction: they count in the norm, not in the mean direction. Computed in
float64. Defaults: ``tol`` 1e-10 rad, ``max_iter`` 100, λ = 1.

Source: Karcher, *Riemannian center of mass and mollifier smoothing* (1977); used for
model merging by mergekit (Goddard et al., 2024).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence as SequenceABC
from typing import Sequence

import torch
from pydantic import Field
from torch import Tensor

from .errors import MergeError
from .registry import MethodParams, TensorContext, register_method


class KarcherParams(MethodParams):
    tol: float = Field(1e-10, gt=0.0, description="stop when the mean tangent step is below this (radians)")
    max_iter: int = Field(100, ge=1)


def sphere_log(x: Tensor, u: Tensor) -> Tensor:
    """Tangent vector at unit ``x`` pointing to unit ``u``, of length their angle."""
    cosine = float((x * u).sum().clamp(-1.0, 1.0))
    theta = math.acos(cosine)
    direction = u - cosine * x
    return direction.mul_(theta / math.sin(theta)) if theta > 1e-12 else direction


def weighted_total(weights: Sequence[float], tensors: Iterable[Tensor]) -> Tensor:
    """``Σ w_i t_i`` over fresh ``tensors`` (scaled and summed in place, one at a time):
    the same bytes as ``sum(w * t ...)``, which starts from 0 (so −0.0 becomes +0.0)."""
    total = None
    for w, t in zip(weights, tensors):
        total = t.mul_(w).add_(0.0) if total is None else total.add_(t.mul_(w))
    return total


class UnitDirections(SequenceABC):
    """``deltas[i] / norms[i]`` in float64, made when read: the iteration never holds more
    than one of them besides its own state (the deltas stay in their input dtype)."""

    def __init__(self, deltas: Sequence[Tensor], norms: Sequence[float]):
        self.deltas, self.norms = deltas, norms

    def __len__(self) -> int:
        return len(self.deltas)

    def __getitem__(self, index):
        return self.deltas[index].double().div_(self.norms[index])


def karcher_direction(units: Sequence[Tensor], weights: Sequence[float], tol: float, max_iter: int) -> Tensor:
    """Weighted Karcher mean of unit tensors ``units`` (float64), weights summing to 1.
    ``units`` is read once per step (:class:`UnitDirections` makes them on demand)."""
    x = weighted_total(weights, (u.clone() for u in units))
    norm = float(x.norm())
    x = x.div_(norm) if norm > 1e-12 else units[max(range(len(units)), key=lambda i: weights[i])].clone()
    for _ in range(max_iter):
        step = weighted_total(weights, (sphere_log(x, u) for u in units))
        length = float(step.norm())
        if length < tol:
            break
        x = x.mul_(math.cos(length)).add_(step.div_(length).mul_(math.sin(length)))
        x = x.div_(x.norm())
    return x


@register_method("karcher", params=KarcherParams, default_lambda=1.0,
                 summary="geodesic mean of the directions, mean norm",
                 source="Karcher, Riemannian center of mass, 1977; mergekit (Goddard et al., 2024)")
def karcher(deltas: Sequence[Tensor], params: KarcherParams, ctx: TensorContext) -> Tensor:
    if any(w < 0 for w in ctx.weights):
        raise MergeError(f"karcher needs non-negative weights, got {list(ctx.weights)}")
    total = sum(ctx.weights)
    norms = [float(delta.double().norm()) for delta in deltas]
    mean_norm = sum(w * n for w, n in zip(ctx.weights, norms)) / total
    alive = [i for i, n in enumerate(norms) if n > 0 and ctx.weights[i] > 0]
    if not alive:
        return torch.zeros(deltas[0].shape)
    share = sum(ctx.weights[i] for i in alive)
    direction = karcher_direction(UnitDirections([deltas[i] for i in alive], [norms[i] for i in alive]),
                                  [ctx.weights[i] / share for i in alive], params.tol, params.max_iter)
    return (mean_norm * direction).float()

"""``wudi``: data-free merging that uses the task vectors themselves as the data (WUDI).

Source: Cheng et al., *Whoever Started the Interference Should End It: Guiding Data-Free
Model Merging via Task Vectors* (2025). The rows of a linear layer's task vector
span (approximately) the inputs of that task, so the interference of a merged update
``τ_m`` with task ``i`` is measured on them. Per matrix ``[m, n]`` (convolution kernels
read as ``[out, in * prod(k)]``), with ``τ_i`` the weighted deltas ``w_i Δ_i``:

    L(τ_m) = Σ_i ‖(τ_m − τ_i) τ_iᵀ‖²_F / ‖τ_i‖²_F,

minimized from ``τ_m = Σ_i τ_i`` (task arithmetic) by ``steps`` Adam steps of learning rate
``lr`` (β = 0.9, 0.999, ε = 1e-8), the paper's optimiser and defaults (300 steps, 1e-5),
taken by chorus's one training step (:class:`chorus.train.step.TrainStep`, no clipping).
The gradient ``2 Σ_i (τ_m − τ_i) τ_iᵀ τ_i / ‖τ_i‖²`` is computed in closed form and handed
to the step as the gradient of a linear surrogate ``⟨τ_m, g⟩`` (``g`` held constant), so
no autograd graph of ``L`` is built. Nothing is
random: the same inputs give the same bytes. ``precision`` sets the arithmetic (float32,
the paper's, or float64). Cost per step: about ``m·n·min(n, 2·K·m)`` multiply-adds. Tasks
with a zero delta are left out of ``L``. Vectors and scalars take the weighted mean.
Default λ = 1.
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch
from pydantic import Field
from torch import Tensor

from ...train.step import TrainStep
from .core import all_zero, as_matrix, weighted_mean
from .registry import MethodParams, TensorContext, register_method


class WudiParams(MethodParams):
    steps: int = Field(300, ge=0, description="Adam steps per matrix")
    lr: float = Field(1e-5, gt=0.0, description="Adam learning rate")
    precision: Literal["float32", "float64"] = "float32"


def wudi_solve(tasks: list[Tensor], steps: int, lr: float) -> Tensor:
    """Adam on ``L`` (module docstring) from the sum of ``tasks`` (matrices ``[m, n]``, one dtype).

    Memory: pass a list nobody else holds; its matrices are dropped once the target is
    formed, and the stacked rows once their Gram ``[n, n]`` replaces them."""
    merged = sum(tasks).clone()
    live = [t for t in tasks if t.any()]
    del tasks
    rows = live[0].shape[0]
    stacked = live[0].new_empty(len(live) * rows, live[0].shape[1])  # [K·m, n]: every normalized task's rows
    parts = [torch.div(t, t.square().sum().sqrt(), out=stacked[i * rows:(i + 1) * rows]) for i, t in enumerate(live)]
    target = sum((t @ s.T) @ s for t, s in zip(live, parts))  # Σ τ_i τ_iᵀτ_i/‖τ_i‖²
    del live, parts
    gram = stacked.T @ stacked if stacked.shape[1] <= 2 * stacked.shape[0] else None
    if gram is not None:
        stacked = None
    merged.requires_grad_(True)

    def surrogate() -> Tensor:
        """``⟨τ_m, g⟩`` with ``g`` the closed-form gradient of ``L`` at ``τ_m``: its gradient is ``g``."""
        with torch.no_grad():
            product = merged @ gram if gram is not None else (merged @ stacked.T) @ stacked
            gradient = product.sub_(target).mul_(2.0)  # in place: 2 (product − target)
        return (merged * gradient).sum()

    optimizer = torch.optim.Adam([{"params": [merged], "lr": lr, "peak_lr": lr}], betas=(0.9, 0.999), eps=1e-8)
    step = TrainStep(optimizer, surrogate, lambda _step: 1.0, max_grad_norm=None)
    for _ in range(steps):
        step()
    return merged.detach()


@register_method("wudi", params=WudiParams, default_lambda=1.0,
                 summary="per-layer least interference on the task vectors' own rows (Adam)",
                 source="Cheng et al., Whoever Started the Interference Should End It (WUDI), 2025")
def wudi(deltas: Sequence[Tensor], params: WudiParams, ctx: TensorContext) -> Tensor:
    if as_matrix(deltas[0]) is None:
        return weighted_mean(deltas, ctx.weights)
    if all_zero(deltas):
        return torch.zeros(deltas[0].shape)
    dtype = torch.float64 if params.precision == "float64" else torch.float32
    return wudi_solve([w * as_matrix(d).to(dtype) for w, d in zip(ctx.weights, deltas)], params.steps,
                      params.lr).float().reshape(deltas[0].shape)

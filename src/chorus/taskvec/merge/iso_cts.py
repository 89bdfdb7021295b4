"""``iso_cts``: isotropic merging in common and task-specific subspaces (Iso-CTS) — Iso-C's
flat spectrum over the top directions of the summed matrix plus, for every task, its own
top directions outside them.

Source: Marczak et al., *No Task Left Behind: Isotropic Model Merging with Common and
Task-Specific Subspaces* (ICML 2025). For a matrix ``[m, n]`` (convolution kernels read as
``[out, in * prod(k)]``), ``p = min(m, n)``, ``T`` tasks:

1. sizes: ``k = p - T·round((p - floor(common_fraction·p)) / T)`` common directions and
   ``s = (p - k) / T`` per task (the task-specific part divides evenly among tasks);
2. common subspace: the top ``k`` singular triples ``U_c, Σ_c, V_c`` of ``M = Σ w_t Δ_t``;
3. task subspaces: the top ``s`` singular triples of ``(I - U_c U_cᵀ) w_t Δ_t`` (each
   task's delta with the common directions projected out);
4. stack ``U = [U_1 .. U_T, U_c]``, likewise ``V`` and the singular values ``S``; replace
   ``U`` and ``V`` by their nearest orthonormal matrices (orthogonal Procrustes);
5. the merged direction is ``σ̄ U⊥ V⊥ᵀ`` with ``σ̄`` the mean of ``S``.

Null directions (``σ ≤ max(m, n)·eps32·σ_max``) are dropped at every SVD (see
:mod:`.spectral`), so the merge stays in the span of the deltas. Vectors and scalars take
the weighted mean. Defaults: ``common_fraction`` 0.8 and λ = 1 (the paper's; it tunes λ
on validation data).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from pydantic import Field
from torch import Tensor

from .core import all_zero, as_matrix, weighted_mean
from .registry import MethodParams, TensorContext, register_method
from .spectral import orthogonalize, spanned_svd, summed_matrix


class IsoCtsParams(MethodParams):
    common_fraction: float = Field(0.8, ge=0.0, le=1.0, description="share of the rank given to the common subspace")


def subspace_sizes(full: int, tasks: int, common_fraction: float) -> tuple[int, int]:
    """``(common k, per-task s)`` for a matrix of rank ``full`` and ``tasks`` tasks."""
    specific = int(round((full - math.floor(common_fraction * full)) / tasks)) * tasks
    common = max(0, full - specific)
    return common, (full - common) // tasks


@register_method("iso_cts", params=IsoCtsParams, default_lambda=1.0,
                 summary="flat spectrum over common + task-specific subspaces",
                 source="Marczak et al., No Task Left Behind (Iso-CTS), ICML 2025")
def iso_cts(deltas: Sequence[Tensor], params: IsoCtsParams, ctx: TensorContext) -> Tensor:
    total, matrix = summed_matrix(deltas, ctx.weights)
    if matrix is None:
        return weighted_mean(deltas, ctx.weights)
    if all_zero([total] + list(deltas)):
        return torch.zeros(deltas[0].shape)
    common, per_task = subspace_sizes(min(matrix.shape), len(deltas), params.common_fraction)
    u_c, s_c, v_c = spanned_svd(matrix, common)
    us, ss, vs = [], [], []
    for weight, delta in zip(ctx.weights, deltas):
        task = weight * as_matrix(delta.float())
        u, s, v = spanned_svd(task - u_c @ (u_c.T @ task), per_task)
        us.append(u), ss.append(s), vs.append(v)
    s = torch.cat(ss + [s_c])
    if not s.numel():
        return torch.zeros(deltas[0].shape)
    u = orthogonalize(torch.cat(us + [u_c], dim=1))
    v = orthogonalize(torch.cat(vs + [v_c], dim=1))
    return (s.mean() * (u @ v.T)).reshape(deltas[0].shape)

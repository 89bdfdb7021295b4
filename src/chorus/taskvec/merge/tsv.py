"""``tsv``: Task Singular Vectors merge (TSV-Merge) — per weight matrix, compress each
task's delta to its top singular components, decorrelate the tasks' singular vectors, and
recombine.

Source: Gargiulo et al., *Task Singular Vectors: Reducing Task Interference in Model
Merging* (CVPR 2025). For a matrix (convolution kernels ``[out, in, *k]`` are read as
``[out, in * prod(k)]``) of shape ``[m, n]`` with ``K`` task deltas ``w_i Δ_i = U_i Σ_i V_iᵀ``:

1. keep the top ``r = max(1, floor(rank_fraction * min(m, n)))`` components of each task
   (``rank_fraction`` defaults to 1/K, so the K blocks together fit the full rank), leaving
   out null directions (``σ ≤ max(m, n)·eps32·σ_max``, see :mod:`.spectral`);
2. stack ``U = [U_1 .. U_K]``, ``V = [V_1 .. V_K]``, ``Σ = diag(Σ_1 .. Σ_K)``. When that
   makes more than ``min(m, n)`` columns (``K > min(m, n)``, or a ``rank_fraction`` above
   1/K), only the ``min(m, n)`` components with the largest singular values are kept (ties
   in task order): more columns than dimensions cannot be decorrelated;
3. replace ``U`` and ``V`` by their nearest orthonormal matrices (orthogonal Procrustes),
   removing the interference between tasks' subspaces. The columns come out orthonormal
   whenever the kept columns are linearly independent; otherwise the result is the nearest
   partial isometry on their span (null directions dropped);
4. the merged direction is ``U⊥ Σ V⊥ᵀ``: it lies in the span of the deltas, so rows or
   columns that every delta leaves at zero stay exactly zero.

Vectors and scalars (biases, normalisation weights) fall back to the weighted mean.
Default λ = 1 (the paper's setting).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from pydantic import Field
from torch import Tensor

from .core import all_zero, as_matrix, weighted_mean
from .registry import MethodParams, TensorContext, register_method
from .spectral import orthogonalize, spanned_svd


class TsvParams(MethodParams):
    rank_fraction: float | None = Field(None, gt=0.0, le=1.0,
                                        description="kept fraction of each task's rank (default 1/K)")


@register_method("tsv", params=TsvParams, default_lambda=1.0, summary="per-matrix low rank + decorrelation",
                 source="Gargiulo et al., Task Singular Vectors, CVPR 2025")
def tsv(deltas: Sequence[Tensor], params: TsvParams, ctx: TensorContext) -> Tensor:
    matrices = [as_matrix(delta.float()) for delta in deltas]
    if matrices[0] is None:
        return weighted_mean(deltas, ctx.weights)
    if all_zero(deltas):
        return torch.zeros(deltas[0].shape)
    full = min(matrices[0].shape)
    fraction = params.rank_fraction or 1.0 / len(deltas)
    rank = max(1, math.floor(fraction * full))
    factors = [spanned_svd(w * m, rank) for w, m in zip(ctx.weights, matrices)]
    u = torch.cat([f[0] for f in factors], dim=1)
    s = torch.cat([f[1] for f in factors])
    v = torch.cat([f[2] for f in factors], dim=1)
    if s.numel() > full:
        keep = torch.sort(torch.argsort(s, descending=True, stable=True)[:full]).values
        u, s, v = u[:, keep], s[keep], v[:, keep]
    return ((orthogonalize(u) * s) @ orthogonalize(v).T).reshape(deltas[0].shape)

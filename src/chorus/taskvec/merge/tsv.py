"""``tsv``: Task Singular Vectors merge (TSV-Merge) — per weight matrix, compress each
task's delta to its top singular components, decorrelate the tasks' singular vectors, and
recombine.

Source: Gargiulo et al., *Task Singular Vectors: Reducing Task Interference in Model
Merging* (CVPR 2025). For a matrix (convolution kernels ``[out, in, *k]`` are read as
``[out, in * prod(k)]``) with ``K`` task deltas ``w_i Δ_i = U_i Σ_i V_iᵀ``:

1. keep the top ``r = max(1, floor(rank_fraction * min(m, n)))`` components of each task
   (``rank_fraction`` defaults to 1/K, so the K blocks together fit the full rank);
2. stack ``U = [U_1 .. U_K]``, ``V = [V_1 .. V_K]``, ``Σ = diag(Σ_1 .. Σ_K)``;
3. replace ``U`` and ``V`` by their nearest orthonormal matrices (orthogonal Procrustes),
   removing the interference between tasks' subspaces;
4. the merged direction is ``U⊥ Σ V⊥ᵀ``.

Vectors and scalars (biases, normalisation weights) fall back to the weighted mean.
Default λ = 1 (the paper's setting).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from pydantic import Field
from torch import Tensor

from .core import all_zero, as_matrix, low_rank_factors, orthogonalize, weighted_mean
from .registry import MethodParams, TensorContext, register_method


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
    fraction = params.rank_fraction or 1.0 / len(deltas)
    rank = max(1, math.floor(fraction * min(matrices[0].shape)))
    factors = [low_rank_factors(w * m, rank) for w, m in zip(ctx.weights, matrices)]
    u = orthogonalize(torch.cat([f[0] for f in factors], dim=1))
    s = torch.cat([f[1] for f in factors])
    v = orthogonalize(torch.cat([f[2] for f in factors], dim=1))
    return ((u * s) @ v.T).reshape(deltas[0].shape)

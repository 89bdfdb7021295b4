"""``iso_c``: isotropic merging in the common subspace (Iso-C) — sum the task deltas of a
weight matrix, then flatten the sum's singular spectrum to its mean.

Source: Marczak et al., *No Task Left Behind: Isotropic Model Merging with Common and
Task-Specific Subspaces* (ICML 2025). For a matrix (convolution kernels read as
``[out, in * prod(k)]``) with ``M = Σ w_i Δ_i = U Σ Vᵀ`` the merged direction is
``σ̄ U Vᵀ``, ``σ̄`` the mean singular value: every direction the tasks span gets the same
weight, so tasks with small updates are not drowned by dominant ones. Only the span of ``M``
counts: singular directions with ``σ ≤ max(m, n)·eps32·σ_max`` are dropped (and left out of
``σ̄``), so rows or columns no delta touches stay exactly zero (see :mod:`.spectral`).
Vectors and scalars fall back to the weighted mean. Default λ = 1 (the paper tunes it on
validation data).
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor

from .core import all_zero, weighted_mean
from .registry import MethodParams, TensorContext, register_method
from .spectral import isotropic, summed_matrix


class IsoCParams(MethodParams):
    """No parameters besides λ and the per-vector weights."""


@register_method("iso_c", params=IsoCParams, default_lambda=1.0, summary="flattened spectrum of the summed matrix",
                 source="Marczak et al., No Task Left Behind (Iso-C), ICML 2025")
def iso_c(deltas: Sequence[Tensor], params: IsoCParams, ctx: TensorContext) -> Tensor:
    total, matrix = summed_matrix(deltas, ctx.weights)
    if matrix is None:
        return weighted_mean(deltas, ctx.weights)
    if all_zero([total]):
        return total
    return isotropic(matrix).reshape(deltas[0].shape)

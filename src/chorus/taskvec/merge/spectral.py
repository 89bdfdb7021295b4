"""Singular-value helpers of the spectral merges (TSV, Iso-C, Iso-CTS) that never leave the
span of their input.

A thin SVD of an ``[m, n]`` matrix of rank ``r < min(m, n)`` returns ``min(m, n) - r``
extra singular vectors with (near-)zero singular values; they point anywhere in the
orthogonal complement, including rows or columns where every task's delta is zero. Using
them (flattening the spectrum, orthogonalizing stacked bases) writes into directions no
delta spans. Here:

- the SVD runs on the non-zero rows and columns only, and the factors are zero elsewhere,
  so an all-zero row or column of the input stays exactly zero downstream;
- singular directions with ``σ ≤ rtol · σ_max`` are dropped, with
  ``rtol = max(m, n) · eps(float32)`` (the usual numerical-rank rule, e.g.
  ``numpy.linalg.matrix_rank``: what float32 deltas can resolve).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from .core import as_matrix, weighted_sum


def null_tolerance(shape: tuple[int, ...] | torch.Size) -> float:
    """Relative tolerance below which a singular value counts as zero: ``max(m, n) · eps32``."""
    return max(shape) * torch.finfo(torch.float32).eps


def spanned_svd(matrix: Tensor, rank: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Thin SVD of ``matrix [m, n]`` restricted to its span: ``(U [m, r], S [r], V [n, r])``
    with ``S`` descending and every kept ``σ > rtol · σ_max``; at most ``rank`` components.
    Rows/columns of ``U``/``V`` are exactly zero where ``matrix``'s rows/columns are."""
    m, n = matrix.shape
    rows = matrix.any(dim=1).nonzero().squeeze(1)
    cols = matrix.any(dim=0).nonzero().squeeze(1)
    if not rows.numel():
        return matrix.new_zeros(m, 0), matrix.new_zeros(0), matrix.new_zeros(n, 0)
    u_part, s, vh_part = torch.linalg.svd(matrix[rows][:, cols], full_matrices=False)
    keep = int((s > null_tolerance((m, n)) * s[0]).sum())
    if rank is not None:
        keep = min(keep, max(0, rank))
    u = matrix.new_zeros(m, keep)
    v = matrix.new_zeros(n, keep)
    u[rows] = u_part[:, :keep]
    v[cols] = vh_part[:keep].T
    return u, s[:keep], v


def orthogonalize(basis: Tensor) -> Tensor:
    """The partial isometry nearest to ``basis [m, c]`` (orthogonal Procrustes on its span):
    ``P Qᵀ`` from ``basis = P S Qᵀ`` over the non-null singular directions. Orthonormal
    columns when the columns of ``basis`` are linearly independent; never leaves their span."""
    p, _, q = spanned_svd(basis)
    return p @ q.T


def isotropic(matrix: Tensor) -> Tensor:
    """``σ̄ U Vᵀ`` from ``matrix = U Σ Vᵀ`` over its non-null singular directions, ``σ̄``
    the mean of those singular values: a flat spectrum on exactly the span of ``matrix``."""
    u, s, v = spanned_svd(matrix)
    if not s.numel():
        return torch.zeros_like(matrix)
    return s.mean() * (u @ v.T)


def summed_matrix(deltas: Sequence[Tensor], weights: Sequence[float]) -> tuple[Tensor, Tensor | None]:
    """``M = Σ w_i Δ_i`` in the deltas' shape, and its 2-D view (:func:`~.core.as_matrix`;
    None for vectors and scalars)."""
    total = weighted_sum(deltas, weights)
    return total, as_matrix(total)

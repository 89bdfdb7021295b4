"""Effective rank of a weight delta (Roy & Vetterli, *The effective rank: a measure of
effective dimensionality*, EUSIPCO 2007).

For singular values ``σ_1..σ_r`` of a matrix, ``p_k = σ_k / Σ σ`` and the effective rank is
``exp(−Σ p_k log p_k)``: 1 for a rank-one matrix, ``r`` when all singular values are equal.
Tensors with more than two axes (convolution kernels ``[out, in, k...]``) are read as the
matrix ``[out, in·k...]``; one-axis tensors (biases, norms) have no effective rank.

Singular values come from the eigenvalues (float64) of the smaller Gram matrix (``M Mᵀ``
or ``Mᵀ M``, accumulated in float32 for matrices over 2^16 entries, float64 below):
``σ_k = sqrt(max(λ_k, 0))``, several times faster than an SVD of a wide matrix; the error
sits in singular values far below the largest, which barely move the entropy.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def effective_rank(matrix: Tensor) -> float | None:
    """Entropy-based effective rank of a 2-D ``matrix``; None when it is all zeros."""
    wide = matrix.double() if matrix.numel() <= 1 << 16 else matrix.float()
    gram = wide @ wide.T if wide.shape[0] <= wide.shape[1] else wide.T @ wide
    singular = torch.linalg.eigvalsh(gram.double()).clamp_min(0).sqrt()
    total = float(singular.sum())
    if not total > 0:
        return None
    p = singular / total
    p = p[p > 0]
    return math.exp(float(-(p * p.log()).sum()))

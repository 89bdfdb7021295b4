"""Norm mismatch between task vectors (DisTaC: merging breaks down when task-vector norms
differ a lot): the whole-vector norms, a warning above a ratio, and the scales that
equalize them.

Source: the norm-mismatch failure mode and its fix by rescaling, *DisTaC: Conditioning
Task Vectors via Distillation for Robust Model Merging* (ICLR 2026). Norms are
``‖τ_i‖₂`` over every parameter delta (buffers, which are statistics, left out).
"""

from __future__ import annotations

import math
from typing import Sequence

NORM_RATIO_THRESHOLD = 3.0
"""``max ‖τ_i‖ / min ‖τ_i‖`` above which ``chorus merge`` warns."""


def norm_ratio(norms: Sequence[float]) -> float:
    """``max / min`` of the norms (inf when one is zero and another is not; 1 for all zero)."""
    largest, smallest = max(norms), min(norms)
    if largest == 0:
        return 1.0
    return largest / smallest if smallest > 0 else math.inf


def norm_warning(norms: Sequence[float], labels: Sequence[str], threshold: float = NORM_RATIO_THRESHOLD) -> str | None:
    """One line naming the largest and smallest vector when their norm ratio exceeds
    ``threshold``; None otherwise."""
    ratio = norm_ratio(norms)
    if ratio <= threshold:
        return None
    big = max(range(len(norms)), key=lambda i: norms[i])
    small = min(range(len(norms)), key=lambda i: norms[i])
    return (f"task-vector norms differ {ratio:.1f}x (> {threshold:g}x): {labels[big]} has ‖τ‖ {norms[big]:.4g}, "
            f"{labels[small]} {norms[small]:.4g}; the larger dominates the merge (consider --equalize-norms)")


def equalizing_scales(norms: Sequence[float]) -> tuple[float, ...]:
    """Per vector, the factor that brings its norm to the mean norm (1 for a zero vector)."""
    live = [n for n in norms if n > 0]
    target = sum(live) / len(live) if live else 0.0
    return tuple(target / n if n > 0 else 1.0 for n in norms)

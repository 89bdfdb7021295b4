"""Learning-rate schedule as a pure function of the optimizer step."""

from __future__ import annotations

import math


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, floor: float = 0.0) -> float:
    """Multiplier of the peak learning rate at optimizer step ``step`` (0-based).

    Linear warm-up ``(step + 1) / warmup_steps`` for the first ``warmup_steps`` steps
    (reaching 1 at step ``warmup_steps - 1``), then half a cosine from 1 at step
    ``warmup_steps`` down to ``floor`` at step ``total_steps``; ``floor`` from then on
    (cosine schedule of Loshchilov & Hutter, SGDR, ICLR 2017).
    """
    if total_steps <= 0 or not 0 <= warmup_steps <= total_steps or not 0.0 <= floor <= 1.0:
        raise ValueError(f"bad schedule: total {total_steps}, warm-up {warmup_steps}, floor {floor}")
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if step >= total_steps:
        return floor
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

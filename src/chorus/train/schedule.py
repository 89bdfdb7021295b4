"""Learning-rate schedule as a pure function of the optimizer step."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence


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


@dataclass(frozen=True)
class Stage:
    """One stage of a continual pre-training schedule.

    ``steps``: optimizer steps in the stage; ``peak_lr``: learning rate reached after the
    linear warm-up of ``warmup_steps``; ``floor``: fraction of ``peak_lr`` the cosine decays
    to at the stage's end; ``freeze``: globs over parameter names kept frozen during it.
    """

    steps: int
    peak_lr: float
    warmup_steps: int = 0
    floor: float = 0.0
    freeze: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.steps <= 0 or self.peak_lr <= 0:
            raise ValueError(f"a stage needs positive steps and peak LR, got {self.steps} and {self.peak_lr}")
        warmup_cosine(0, self.steps, self.warmup_steps, self.floor)  # validates the rest


def stage_at(step: int, stages: Sequence[Stage]) -> tuple[int, int]:
    """``(stage index, step inside that stage)`` of the global optimizer ``step`` (0-based);
    steps past the end belong to the last stage."""
    if not stages:
        raise ValueError("no stages")
    start = 0
    for index, stage in enumerate(stages[:-1]):
        if step < start + stage.steps:
            return index, step - start
        start += stage.steps
    return len(stages) - 1, step - start


def multi_stage_lr(step: int, stages: Sequence[Stage]) -> float:
    """Learning rate (absolute, not a multiplier) at global optimizer ``step``.

    Each stage runs its own :func:`warmup_cosine` from its first step: warm-up to its
    ``peak_lr``, then a cosine decay towards ``floor * peak_lr``. A second stage thus
    *re-warms* (linearly, from ``peak_lr / warmup_steps`` at its first step) after the first
    stage's decay and then *re-decays*: the two-stage recipe of continual pre-training
    (CultureMERT).
    """
    index, local = stage_at(step, stages)
    stage = stages[index]
    return stage.peak_lr * warmup_cosine(local, stage.steps, stage.warmup_steps, stage.floor)


def stage_starts(stages: Sequence[Stage]) -> list[int]:
    """Global step at which each stage begins."""
    starts, total = [], 0
    for stage in stages:
        starts.append(total)
        total += stage.steps
    return starts

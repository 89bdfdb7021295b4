"""Learning-rate schedules as pure functions of the optimizer step: warm-up + cosine with a
floor (:class:`WarmupCosine`), and multi-stage re-warm / re-decay (:class:`MultiStage`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

from ..errors import InvalidInput


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, floor: float = 0.0) -> float:
    """Multiplier of the peak learning rate at optimizer step ``step`` (0-based).

    Linear warm-up ``(step + 1) / warmup_steps`` for the first ``warmup_steps`` steps
    (reaching 1 at step ``warmup_steps - 1``), then half a cosine from 1 at step
    ``warmup_steps`` down to ``floor`` at step ``total_steps``; ``floor`` from then on
    (cosine schedule of Loshchilov & Hutter, SGDR, ICLR 2017).
    """
    if total_steps <= 0 or not 0 <= warmup_steps <= total_steps or not 0.0 <= floor <= 1.0:
        raise InvalidInput(f"bad schedule: total {total_steps}, warm-up {warmup_steps}, floor {floor}")
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
            raise InvalidInput(f"a stage needs positive steps and peak LR, got {self.steps} and {self.peak_lr}")
        warmup_cosine(0, self.steps, self.warmup_steps, self.floor)  # validates the rest


def stage_at(step: int, stages: Sequence[Stage]) -> tuple[int, int]:
    """``(stage index, step inside that stage)`` of the global optimizer ``step`` (0-based);
    steps past the end belong to the last stage."""
    if not stages:
        raise InvalidInput("no stages")
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


@dataclass(frozen=True)
class WarmupCosine:
    """:func:`warmup_cosine` as a schedule object: each parameter group's learning rate is
    its absolute ``peak_lr`` times ``self(step)`` (a multiplier, 0 to 1)."""

    total_steps: int
    warmup_steps: int = 0
    floor: float = 0.0

    def __post_init__(self) -> None:
        warmup_cosine(0, self.total_steps, self.warmup_steps, self.floor)  # validates

    @classmethod
    def from_fraction(cls, total_steps: int, warmup_fraction: float, floor: float = 0.0) -> "WarmupCosine":
        """``warmup_fraction`` of ``total_steps`` (rounded) warm up."""
        return cls(total_steps, min(total_steps, int(round(warmup_fraction * total_steps))), floor)

    def __call__(self, step: int) -> float:
        return warmup_cosine(step, self.total_steps, self.warmup_steps, self.floor)

    def group_lr(self, group: dict, step: int) -> float:
        return group["peak_lr"] * self(step)


@dataclass(frozen=True)
class MultiStage:
    """:func:`multi_stage_lr` as a schedule object: ``self(step)`` is an absolute learning
    rate; each parameter group's rate is that times the group's ``lr_scale`` (1 for the
    encoder; larger for new, randomly initialised heads)."""

    stages: tuple[Stage, ...]

    def __post_init__(self) -> None:
        if not self.stages:
            raise InvalidInput("no stages")

    def __call__(self, step: int) -> float:
        return multi_stage_lr(step, self.stages)

    def group_lr(self, group: dict, step: int) -> float:
        return group["lr_scale"] * self(step)


class StepFunction:
    """A plain function of the optimizer step giving a multiplier of each group's
    ``peak_lr`` (for example ``lambda step: 1.0``), as a schedule object."""

    def __init__(self, function: Callable[[int], float]):
        self.function = function

    def group_lr(self, group: dict, step: int) -> float:
        return group["peak_lr"] * self.function(step)


class Schedule(Protocol):
    """What the training step asks a schedule: the learning rate of ``group`` (an optimizer
    parameter group) at optimizer step ``step`` (0-based)."""

    def group_lr(self, group: dict, step: int) -> float: ...


def as_schedule(schedule: "Schedule | Callable[[int], float]") -> Schedule:
    """``schedule`` itself when it is a schedule object, else :class:`StepFunction` of it."""
    return schedule if hasattr(schedule, "group_lr") else StepFunction(schedule)

"""The multi-stage (re-warm / re-decay) learning-rate schedule at its stage boundaries."""

from __future__ import annotations

import math

import pytest

from chorus.train.schedule import Stage, multi_stage_lr, stage_at, stage_starts

STAGES = [Stage(steps=10, peak_lr=1e-3, warmup_steps=2, floor=0.1),
          Stage(steps=6, peak_lr=4e-4, warmup_steps=3, floor=0.25)]


def cosine(peak: float, floor: float, progress: float) -> float:
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def test_values_at_stage_boundaries():
    lr = [multi_stage_lr(step, STAGES) for step in range(18)]
    assert lr[0] == pytest.approx(1e-3 / 2)  # first step of stage 1: warm-up starts
    assert lr[1] == pytest.approx(1e-3)  # peak 1 at the end of the warm-up
    assert lr[2] == pytest.approx(1e-3)  # decay starts from the peak
    assert lr[9] == pytest.approx(cosine(1e-3, 0.1, 7 / 8))  # last step of stage 1
    assert lr[10] == pytest.approx(4e-4 / 3)  # re-warm start: first step of stage 2
    assert lr[12] == pytest.approx(4e-4)  # peak 2
    assert lr[15] == pytest.approx(cosine(4e-4, 0.25, 2 / 3))  # last step of stage 2
    assert lr[16] == lr[17] == pytest.approx(1e-4)  # past the end: the floor of the last stage


def test_stage_two_rewarms_then_redecays():
    lr = [multi_stage_lr(step, STAGES) for step in range(16)]
    assert lr[10] < lr[11] < lr[12]  # re-warm
    assert lr[12] == lr[13]  # the cosine starts from the peak
    assert lr[13] > lr[14] > lr[15]  # re-decay
    assert lr[12] > lr[9]  # the second peak is above where stage 1 ended


def test_stage_at_and_starts():
    assert stage_starts(STAGES) == [0, 10]
    assert [stage_at(step, STAGES) for step in (0, 9, 10, 15, 20)] == [(0, 0), (0, 9), (1, 0), (1, 5), (1, 10)]


@pytest.mark.parametrize("kwargs", [dict(steps=0, peak_lr=1e-3), dict(steps=5, peak_lr=0.0),
                                    dict(steps=5, peak_lr=1e-3, warmup_steps=6), dict(steps=5, peak_lr=1e-3, floor=2)])
def test_bad_stages_are_refused(kwargs):
    with pytest.raises(ValueError):
        Stage(**kwargs)

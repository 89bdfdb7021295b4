"""Exponential moving average of a model's weights, updated after each optimizer step."""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightEMA:
    """A frozen copy of ``model`` whose parameters follow ``model``'s as an EMA.

    After optimizer step ``step`` (0-based) each averaged parameter moves towards the
    trained one by ``1 − d``, with ``d = min(decay, (1 + step) / (10 + step))``: the
    average forgets its random start quickly while few steps have been taken.
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.source, self.decay = model, decay
        self.model = copy.deepcopy(model).requires_grad_(False)

    @torch.no_grad()
    def update(self, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))
        for averaged, trained in zip(self.model.parameters(), self.source.parameters()):
            averaged.lerp_(trained, 1.0 - decay)

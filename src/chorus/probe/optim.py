"""Adam over a batch of independent probes, each with its own learning rate.

The probes' parameters are one flat tensor and ``owner`` names the probe of each
element; an element's update uses its probe's learning rate and only its own gradient,
so one step trains all probes at once and each exactly as if it were alone (Kingma &
Ba, "Adam", ICLR 2015). A weight penalty belongs to the gradient (see
:meth:`chorus.probe.models.BatchedProbes.gradient`). When the model drops stopped
probes, :meth:`BatchedAdam.drop` drops their optimizer state alike.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .models import BatchedProbes


class BatchedAdam:
    """Adam on ``model.flat``; ``rates [num_probes]`` is the learning rate of each probe."""

    def __init__(self, model: BatchedProbes, rates: Tensor, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.model = model
        self.element_lr = rates.detach().float()[model.owner]
        self.betas, self.eps = betas, eps
        self.first = torch.zeros_like(model.flat)
        self.second = torch.zeros_like(model.flat)
        self.steps = 0

    @torch.no_grad()
    def step(self) -> None:
        """One update of every live probe from ``model.flat.grad``."""
        param = self.model.flat
        grad = param.grad
        if grad is None:
            return
        self.steps += 1
        beta1, beta2 = self.betas
        self.first.lerp_(grad, 1 - beta1)
        self.second.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denominator = self.second.sqrt().div_(math.sqrt(1 - beta2**self.steps)).add_(self.eps)
        param.addcdiv_(self.first * self.element_lr, denominator, value=-1 / (1 - beta1**self.steps))

    def drop(self, keep: Tensor) -> None:
        """Keep the state of the elements where ``keep`` (as returned by
        :meth:`BatchedProbes.drop`) is True."""
        self.element_lr, self.first, self.second = self.element_lr[keep], self.first[keep], self.second[keep]

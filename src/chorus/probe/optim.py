"""Adam over a batch of independent probes, each with its own learning rate.

The probes' parameters are one flat tensor and ``owner`` names the probe of each
element; an element's update uses its probe's learning rate and only its own gradient,
so one step trains all probes at once and each exactly as if it were alone (Kingma &
Ba, "Adam", ICLR 2015; decoupled weight decay as in Loshchilov & Hutter, "AdamW",
ICLR 2019).
"""

from __future__ import annotations


import torch
from torch import Tensor


class BatchedAdam:
    """``param``: flat ``[elements]``; ``owner``: ``[elements]`` probe ids; ``lr``: ``[probes]``."""

    def __init__(self, param: Tensor, owner: Tensor, lr: Tensor, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        self.param, self.owner = param, owner
        self.element_lr = lr.detach().float()[owner]
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay
        self._active: Tensor | None = None
        self._rate = self.element_lr
        self.first = torch.zeros_like(param)
        self.second = torch.zeros_like(param)
        self.steps = 0

    def zero_grad(self) -> None:
        self.param.grad = None

    @torch.no_grad()
    def step(self, active: Tensor | None = None) -> None:
        """One update of every probe; probes where ``active [probes]`` is False stay put."""
        grad = self.param.grad
        if grad is None:
            return
        self.steps += 1
        beta1, beta2 = self.betas
        self.first.mul_(beta1).add_(grad, alpha=1 - beta1)
        self.second.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denominator = (self.second / (1 - beta2**self.steps)).sqrt_().add_(self.eps)
        update = self.first.div(denominator).div_(1 - beta1**self.steps)
        if self.weight_decay:
            update.add_(self.param, alpha=self.weight_decay)
        self.param.sub_(update.mul_(self._rate_for(active)))

    def _rate_for(self, active: Tensor | None) -> Tensor:
        """Per-element learning rate, zero for inactive probes (recomputed on change only)."""
        if active is None:
            return self.element_lr
        if self._active is None or not torch.equal(active, self._active):
            self._active = active.clone()
            self._rate = self.element_lr * active[self.owner]
        return self._rate

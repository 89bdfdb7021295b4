"""Adam over a batch of independent probes, each with its own learning rate.

Every parameter tensor has a probe axis first (``[rows, ...]``) and names the probe of
each row; the update of a row uses that probe's learning rate and only that row's
gradients, so one step trains all probes at once and each exactly as if it were alone (Kingma & Ba, "Adam", ICLR 2015; decoupled
weight decay as in Loshchilov & Hutter, "AdamW", ICLR 2019).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor


class BatchedAdam:
    """``params``: ``(tensor [rows, ...], probe ids [rows])`` pairs; ``lr``: ``[probes]``."""

    def __init__(self, params: Sequence[tuple[Tensor, Tensor]], lr: Tensor, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        self.params = [p for p, _ in params]
        self.ids = [ids for _, ids in params]
        self.lr = lr.detach().float()
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay
        self.first = [torch.zeros_like(p) for p in self.params]
        self.second = [torch.zeros_like(p) for p in self.params]
        self.steps = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, active: Tensor | None = None) -> None:
        """One update of every probe; rows where ``active [probes]`` is False stay put."""
        self.steps += 1
        beta1, beta2 = self.betas
        correction1 = 1 - beta1**self.steps
        correction2 = 1 - beta2**self.steps
        rate = self.lr if active is None else self.lr * active.float()
        for p, ids, m, v in zip(self.params, self.ids, self.first, self.second):
            if p.grad is None:
                continue
            shape = (-1,) + (1,) * (p.dim() - 1)
            m.mul_(beta1).add_(p.grad, alpha=1 - beta1)
            v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            update = (m / correction1) / ((v / correction2).sqrt() + self.eps)
            if self.weight_decay:
                update = update + self.weight_decay * p
            p.sub_(rate[ids].view(shape) * update)

"""One training step: forward, loss, backward, and (every ``accumulate`` micro-batches) an
AdamW update with gradient clipping and the warm-up + cosine learning rate."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from .schedule import warmup_cosine


def parameter_groups(model: nn.Module, lr: float, head_lr: float, weight_decay: float) -> list[dict]:
    """AdamW groups of the trainable parameters of a ClassifierModel: encoder and heads get
    their own learning rates; biases and 1-D (normalisation) parameters get no decay."""
    groups: dict[tuple[str, bool], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            part = "heads" if name.startswith("heads.") else "encoder"
            groups.setdefault((part, parameter.dim() >= 2), []).append(parameter)
    return [{"params": params, "lr": head_lr if part == "heads" else lr, "peak_lr": head_lr if part == "heads" else lr,
             "weight_decay": weight_decay if decay else 0.0}
            for (part, decay), params in sorted(groups.items())]


def set_train_mode(model: nn.Module, frozen_encoder: bool, train_bn_stats: bool) -> None:
    """Training mode, except BatchNorm layers (running statistics frozen, unless
    ``train_bn_stats``) and a fully frozen encoder, which stay in eval mode."""
    model.train()
    if frozen_encoder:
        model.encoder.eval()
    elif not train_bn_stats:
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """Mixed precision only on CUDA: bfloat16 where supported, else float16; None on CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


class TrainStep:
    """Callable doing one micro-step; counts optimizer steps for the schedule.

    ``schedule``: maps the optimizer step to a multiplier of each group's ``peak_lr``.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: Callable[[Tensor, Tensor], Tensor],
                 schedule: Callable[[int], float], accumulate: int = 1, max_grad_norm: float | None = 1.0,
                 amp_dtype: torch.dtype | None = None):
        if accumulate < 1:
            raise ValueError(f"accumulate must be at least 1, got {accumulate}")
        self.model, self.optimizer, self.loss_fn, self.schedule = model, optimizer, loss_fn, schedule
        self.accumulate, self.max_grad_norm, self.amp_dtype = accumulate, max_grad_norm, amp_dtype
        self.scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
        self.step = 0
        self.pending = 0
        self._parameters = [p for group in optimizer.param_groups for p in group["params"]]

    def __call__(self, waveforms: Tensor, lengths: Tensor, targets: Tensor) -> Tensor:
        """Forward and backward on one batch; returns the detached loss (no device sync)."""
        with torch.autocast(waveforms.device.type, dtype=self.amp_dtype or torch.float32,
                            enabled=self.amp_dtype is not None):
            loss = self.loss_fn(self.model(waveforms, lengths).float(), targets)
        scaled = loss / self.accumulate
        (self.scaler.scale(scaled) if self.scaler else scaled).backward()
        self.pending += 1
        if self.pending == self.accumulate:
            self.update()
        return loss.detach()

    def update(self) -> None:
        """Apply the accumulated gradients (also at the end of an epoch with a partial accumulation)."""
        if not self.pending:
            return
        multiplier = self.schedule(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = group["peak_lr"] * multiplier
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        if self.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(self._parameters, self.max_grad_norm)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.pending = 0


def cosine_schedule(total_steps: int, warmup_fraction: float, floor: float) -> Callable[[int], float]:
    """:func:`warmup_cosine` over ``total_steps`` with ``warmup_fraction`` of them warming up."""
    warmup = min(total_steps, int(round(warmup_fraction * total_steps)))
    return lambda step: warmup_cosine(step, total_steps, warmup, floor)


def resolve_device(name: str) -> torch.device:
    """``"auto"``: CUDA when available, else the CPU; any other name as torch reads it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)

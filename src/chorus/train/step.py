"""The one training step of chorus, shared by fine-tuning, continual pre-training,
distillation and source-prior training: forward through a loss callable, backward, and
(every ``accumulate`` micro-batches) one optimizer update with the learning rate from a
schedule object, gradient clipping, mixed precision on CUDA and an optional EMA hook."""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor, nn

from .schedule import Schedule, WarmupCosine, as_schedule


def parameter_groups(model: nn.Module, lr: float, head_lr: float, weight_decay: float,
                     key: str = "peak_lr", encoder_scale: Callable[[str], float] | None = None) -> list[dict]:
    """AdamW groups of the trainable parameters of a model with ``heads.*``: encoder and heads
    get their own rates (stored under ``key``: ``peak_lr`` for :class:`WarmupCosine`,
    ``lr_scale`` for :class:`~chorus.train.schedule.MultiStage`); biases and 1-D
    (normalisation) parameters get no decay. ``encoder_scale(name)``: a multiplier of ``lr``
    per encoder parameter (e.g. layer-wise decay; default 1)."""
    groups: dict[tuple[str, bool, float], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            part = "heads" if name.startswith("heads.") else "encoder"
            rate = head_lr if part == "heads" else lr * (encoder_scale(name) if encoder_scale else 1.0)
            groups.setdefault((part, parameter.dim() >= 2, rate), []).append(parameter)
    return [{"params": params, "lr": rate, key: rate, "weight_decay": weight_decay if decay else 0.0}
            for (part, decay, rate), params in sorted(groups.items())]


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

    ``loss(*batch)``: a scalar loss tensor (run under autocast when ``amp_dtype`` is set;
    see :func:`autocast_dtype`). ``schedule``: sets every group's learning rate before each
    optimizer step (a schedule object, or a function of the step giving a multiplier of
    each group's ``peak_lr``). ``after_update(step)``: called after optimizer step ``step``
    (0-based), e.g. :meth:`~chorus.train.ema.WeightEMA.update`.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, loss: Callable[..., Tensor],
                 schedule: Schedule | Callable[[int], float], accumulate: int = 1, max_grad_norm: float | None = 1.0,
                 amp_dtype: torch.dtype | None = None, after_update: Callable[[int], None] | None = None):
        if accumulate < 1:
            raise ValueError(f"accumulate must be at least 1, got {accumulate}")
        self.optimizer, self.loss, self.schedule = optimizer, loss, as_schedule(schedule)
        self.accumulate, self.max_grad_norm, self.amp_dtype = accumulate, max_grad_norm, amp_dtype
        self.after_update = after_update
        # Disabled (float32, bfloat16): scale, unscale_ and update do nothing and step steps.
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
        self.step = 0
        self.pending = 0
        self._parameters = [p for group in optimizer.param_groups for p in group["params"]]
        self._device_type = self._parameters[0].device.type if self._parameters else "cpu"

    def __call__(self, *batch: Any) -> Tensor:
        """Forward and backward on one batch; returns the detached loss (no device sync)."""
        with torch.autocast(self._device_type, dtype=self.amp_dtype or torch.float32,
                            enabled=self.amp_dtype is not None):
            loss = self.loss(*batch)
        self.scaler.scale(loss / self.accumulate).backward()
        self.pending += 1
        if self.pending == self.accumulate:
            self.update()
        return loss.detach()

    def update(self) -> None:
        """Apply the accumulated gradients (also at the end of an epoch with a partial accumulation)."""
        if not self.pending:
            return
        for group in self.optimizer.param_groups:
            group["lr"] = self.schedule.group_lr(group, self.step)
        self.scaler.unscale_(self.optimizer)
        if self.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(self._parameters, self.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.after_update is not None:
            self.after_update(self.step)
        self.step += 1
        self.pending = 0

    def state(self) -> dict:
        """What a checkpoint needs besides the optimizer: optimizer steps done, loss scaler."""
        return {"step": self.step, "scaler": self.scaler.state_dict()}

    def load_state(self, state: dict) -> None:
        self.step, self.pending = int(state["step"]), 0
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])


def classifier_loss(model: nn.Module, loss_fn: Callable[[Tensor, Tensor], Tensor]) -> Callable[..., Tensor]:
    """``(waveforms [B, samples], lengths [B], targets) -> loss_fn(logits as float32, targets)``."""
    return lambda waveforms, lengths, targets: loss_fn(model(waveforms, lengths).float(), targets)


def cosine_schedule(total_steps: int, warmup_fraction: float, floor: float) -> WarmupCosine:
    """:class:`WarmupCosine` over ``total_steps`` with ``warmup_fraction`` of them warming up."""
    return WarmupCosine.from_fraction(total_steps, warmup_fraction, floor)


def resolve_device(name: str) -> torch.device:
    """``"auto"``: CUDA when available, else the CPU; any other name as torch reads it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)

"""Training all probes of a batched model at once, with per-probe early stopping.

Every optimizer step updates every probe (all their parameters are one flat tensor, see
:class:`chorus.probe.models.BatchedProbes`). After each epoch the validation loss of each probe is measured; a probe's best
weights are kept, and a probe stops (its updates and its best-weights bookkeeping freeze)
after ``patience`` epochs without improvement (a drop of the validation loss by more
than ``min_delta`` relative to its best so far). Training ends when every probe has
stopped or after ``epochs``. Only the train and validation splits are touched here.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from ..progress import ProgressFactory, resolve
from ..seeding import generator
from .models import BatchedProbes, SplitInputs
from .optim import BatchedAdam


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by every probe."""

    learning_rates: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2)
    epochs: int = 100
    patience: int = 10
    min_delta: float = 1e-3
    batch_size: int = 128
    weight_decay: float = 0.0
    seed: int = 0
    threads: int | None = 1
    """Torch threads while training (restored after). Probe updates are many small
    tensor operations, which extra threads slow down rather than speed up; None keeps
    torch's setting."""

    def __post_init__(self) -> None:
        if not self.learning_rates or any(lr <= 0 for lr in self.learning_rates):
            raise ValueError(f"learning rates must be positive, got {self.learning_rates}")
        if self.epochs < 1 or self.patience < 1 or self.batch_size < 1:
            raise ValueError("epochs, patience and batch_size must be at least 1")
        if not 0 <= self.min_delta < 1:
            raise ValueError(f"min_delta must lie in [0, 1), got {self.min_delta}")


@dataclass
class TrainedProbes:
    """A batched model holding each probe's best weights (lowest validation loss)."""

    model: BatchedProbes
    best_epoch: np.ndarray
    valid_loss: np.ndarray
    epochs_run: int


def probe_losses(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean loss of each probe: ``logits [probes, rows, classes]`` -> ``[probes]``.

    Cross-entropy for class-index targets ``[rows]``; binary cross-entropy for multi-hot
    targets ``[rows, classes]``.
    """
    probes, rows, classes = logits.shape
    if targets.dim() == 1:
        flat = F.cross_entropy(logits.reshape(-1, classes), targets.repeat(probes), reduction="none")
        return flat.view(probes, rows).mean(dim=1)
    expanded = targets.unsqueeze(0).expand(probes, -1, -1)
    return F.binary_cross_entropy_with_logits(logits, expanded, reduction="none").mean(dim=(1, 2))


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run the block with ``count`` torch threads (None: unchanged), then restore."""
    previous = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@torch.no_grad()
def predict_logits(model: BatchedProbes, inputs: SplitInputs, chunk: int = 1024) -> Tensor:
    """Logits of every probe on every row: ``[probes, rows, classes]``."""
    parts = [model(inputs, torch.arange(i, min(i + chunk, len(inputs)))) for i in range(0, len(inputs), chunk)]
    return torch.cat(parts, dim=1)


@torch.no_grad()
def _validation_losses(model: BatchedProbes, valid: SplitInputs) -> Tensor:
    return probe_losses(predict_logits(model, valid), valid.targets)


def train_probes(model: BatchedProbes, rates: Tensor, train: SplitInputs, valid: SplitInputs, config: TrainConfig,
                 progress: ProgressFactory | None = None, desc: str = "probes") -> TrainedProbes:
    """Train every probe of ``model`` (``rates [probes]`` learning rates) on ``train``,
    early-stopping each on ``valid``; returns the model with each probe's best weights."""
    with torch_threads(config.threads):
        return _train(model, rates, train, valid, config, progress, desc)


def _train(model: BatchedProbes, rates: Tensor, train: SplitInputs, valid: SplitInputs, config: TrainConfig,
           progress: ProgressFactory | None, desc: str) -> TrainedProbes:
    optimizer = BatchedAdam(model.flat, model.owner, rates, weight_decay=config.weight_decay)
    best = model.flat.detach().clone()
    best_loss = _validation_losses(model, valid)
    best_epoch = torch.zeros_like(best_loss, dtype=torch.int64)
    stale = torch.zeros_like(best_epoch)
    active = torch.ones_like(best_loss, dtype=torch.bool)
    shuffle = generator(config.seed, "probe-minibatches")
    bar = resolve(progress)(config.epochs, desc)
    epoch = 0
    try:
        for epoch in range(1, config.epochs + 1):
            order = torch.randperm(len(train), generator=shuffle)
            for begin in range(0, len(train), config.batch_size):
                rows = order[begin:begin + config.batch_size]
                optimizer.zero_grad()
                probe_losses(model(train, rows), train.targets.index_select(0, rows)).sum().backward()
                optimizer.step(active)
            losses = _validation_losses(model, valid)
            improved = active & (losses < best_loss * (1 - config.min_delta))
            best = torch.where(improved[model.owner], model.flat.detach(), best)
            best_loss = torch.where(improved, losses, best_loss)
            best_epoch = torch.where(improved, torch.full_like(best_epoch, epoch), best_epoch)
            stale = torch.where(improved, torch.zeros_like(stale), stale + 1)
            active &= stale < config.patience
            bar.update(1)
            if not active.any():
                break
    finally:
        bar.close()
    with torch.no_grad():
        model.flat.copy_(best)
    return TrainedProbes(model, best_epoch.numpy(), best_loss.numpy(), epoch)

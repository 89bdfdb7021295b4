"""Training all probes of a batched model at once, with per-probe early stopping on the
validation metric that selection uses (or on the validation loss).

Every optimizer step updates every live probe (all their parameters are one flat
tensor, see :class:`chorus.probe.models.BatchedProbes`); the gradient includes the L2
penalty on the weights, and a running average of each probe's weights follows the steps
(Polyak averaging, exponential). Every ``eval_every`` steps the validation metric
(accuracy, or mAP for multi-hot targets) and loss of each live probe's averaged weights
are measured; a probe keeps its best weights (highest metric, ties broken by lower
loss; or lowest loss with ``monitor="loss"``) and stops after ``patience`` checks without
a gain larger than ``min_delta``. A stopped probe leaves the computation. Training ends
when every probe has stopped or after ``epochs``. Only the train and validation splits are touched here.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
from pydantic import model_validator
from torch import Tensor

from ..metrics import probe_scores
from ..progress import ProgressFactory, resolve
from ..schema import FrozenModel
from ..seeding import generator
from .losses import probe_losses
from .models import BatchedProbes, SplitInputs
from .optim import BatchedAdam


MONITORS = ("metric", "loss")
SOLVERS = ("lbfgs", "adam")
_TOLERANCE = 1e-6
"""Slack on ``min_delta`` for float32 metrics (a rise of one clip in 100 is 0.0099999)."""


class TrainConfig(FrozenModel):
    """Optimisation settings shared by every probe (validated once, on construction)."""

    learning_rates: tuple[float, ...] = (1e-2, 3e-2, 1e-1, 3e-1)
    epochs: int = 100
    patience: int = 3
    """Validation checks without a gain before a probe stops."""
    monitor: str = "metric"
    """What early stopping and the kept weights follow: ``"metric"`` (accuracy / mAP, ties
    broken by the loss) or ``"loss"`` (the validation loss)."""
    min_delta: float = 0.01
    """Smallest gain that resets the patience: an absolute rise of the metric (0.01: one
    accuracy point), or a relative drop of the loss. Any rise still updates the kept weights."""
    batch_size: int = 128
    eval_every: int | None = None
    """Optimizer steps between validation checks (None: once per epoch)."""
    average: float = 0.9
    """Decay of the running (exponential moving) average of each probe's weights, updated
    after every step from the zero initialisation; validation, the kept weights and so the
    final probes use this average, which smooths out the noise of minibatch steps. 0: the
    weights themselves."""
    weight_decay: float = 0.007
    """L2 penalty ``l2``: each probe's loss gains ``(l2 / 2) ||W||²`` over its weights (not
    its biases), i.e. ``l2 · W`` in the gradient; scikit-learn's ``C`` is
    ``1 / (l2 · train rows)`` (0.007 with 1440 rows: C ≈ 0.1). 0 switches it off."""
    solver: str = "lbfgs"
    """How the linear poolings' probes (mean, max, mean+max) train: ``"lbfgs"``, full batch
    to the optimum of the L2-regularised loss for every value of ``c_values``
    (:mod:`chorus.probe.solver`), the value chosen on valid; ``"adam"``, minibatch Adam over
    ``learning_rates`` with early stopping and the L2 of ``weight_decay``, as attention and
    layer-sum always do."""
    c_values: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0)
    """Inverse L2 strengths of the lbfgs probes, as scikit-learn's ``C``: each probe's
    loss gains ``||W||² / (2 C · train rows)``."""
    max_iter: int = 1000
    """Most L-BFGS iterations per probe."""
    tol: float = 5e-5
    """An L-BFGS probe stops once no entry of its gradient (original weights and biases)
    exceeds this: scikit-learn's test and ``tol``, at half its default 1e-4, which at weak
    L2 stops far enough from the optimum to move a few test clips (benchmarks/probe_batched.py)."""
    seed: int = 0
    threads: int | None = 1
    """Torch threads while training (restored after). Probe updates are many small
    tensor operations, which extra threads slow down rather than speed up; None keeps
    torch's setting."""

    @model_validator(mode="after")
    def _check(self) -> "TrainConfig":
        if not self.learning_rates or any(lr <= 0 for lr in self.learning_rates):
            raise ValueError(f"learning rates must be positive, got {self.learning_rates}")
        if self.epochs < 1 or self.patience < 1 or self.batch_size < 1:
            raise ValueError("epochs, patience and batch_size must be at least 1")
        if self.eval_every is not None and self.eval_every < 1:
            raise ValueError(f"eval_every must be at least 1, got {self.eval_every}")
        if self.monitor not in MONITORS:
            raise ValueError(f"monitor must be one of {', '.join(MONITORS)}, got {self.monitor!r}")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise ValueError(f"weight_decay must be a finite number >= 0, got {self.weight_decay}")
        if not 0 <= self.average < 1:
            raise ValueError(f"average must lie in [0, 1), got {self.average}")
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {', '.join(SOLVERS)}, got {self.solver!r}")
        if not self.c_values or any(not (c > 0 and math.isfinite(c)) for c in self.c_values):
            raise ValueError(f"c_values must be positive finite numbers, got {self.c_values}")
        if self.max_iter < 1 or not self.tol > 0:
            raise ValueError("max_iter must be at least 1 and tol positive")
        if not 0 <= self.min_delta < 1:
            raise ValueError(f"min_delta must lie in [0, 1), got {self.min_delta}")
        return self


@dataclass
class TrainedProbes:
    """A batched model holding each probe's best weights, and per probe ``[probes]`` the
    validation metric and loss of those weights and the optimizer step they were reached at."""

    model: BatchedProbes
    valid_score: np.ndarray
    valid_loss: np.ndarray
    best_step: np.ndarray
    steps: int
    epochs_run: int


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
def predict_logits(model: BatchedProbes, inputs: SplitInputs, chunk: int = 4096) -> Tensor:
    """Logits of every live probe on every row: ``[live probes, rows, classes]``."""
    parts = [model(inputs.span(i, i + chunk)) for i in range(0, len(inputs), chunk)]
    return torch.cat(parts, dim=1)


@torch.no_grad()
def validate(model: BatchedProbes, valid: SplitInputs) -> tuple[Tensor, Tensor]:
    """Validation metric (nan as -inf) and loss of every live probe, each ``[live probes]``."""
    logits = predict_logits(model, valid)
    scores = probe_scores(logits, valid.targets).nan_to_num(nan=-math.inf)
    return scores, probe_losses(logits, valid.targets)


def train_probes(model: BatchedProbes, rates: Tensor, train: SplitInputs, valid: SplitInputs, config: TrainConfig,
                 progress: ProgressFactory | None = None, desc: str = "probes") -> TrainedProbes:
    """Train every probe of ``model`` (``rates [probes]`` learning rates) on ``train``,
    early-stopping each on ``valid``; returns the model with each probe's best weights."""
    with torch_threads(config.threads):
        return _Run(model, rates, valid, config).train(train, progress, desc)


class _Run:
    """The state of one training run: optimizer, and per probe the best weights (full
    layout), metric, loss and step, and the count of checks without a gain."""

    def __init__(self, model: BatchedProbes, rates: Tensor, valid: SplitInputs, config: TrainConfig):
        self.model, self.valid, self.config = model, valid, config
        self.optimizer = BatchedAdam(model, rates)
        self.average = model.flat.detach().clone() if config.average else None
        self.best = model.flat.detach().clone()
        self.best_score, self.best_loss = validate(model, valid)
        self.best_step = torch.zeros(model.num_probes, dtype=torch.int64)
        self.stale = torch.zeros(model.num_probes, dtype=torch.int64)

    def train(self, train: SplitInputs, progress: ProgressFactory | None, desc: str) -> TrainedProbes:
        config = self.config
        rows = len(train)
        steps_per_epoch = math.ceil(rows / config.batch_size)
        every = config.eval_every or steps_per_epoch
        last = config.epochs * steps_per_epoch
        shuffle = generator(config.seed, "probe-minibatches")
        bar = resolve(progress)(config.epochs, desc)
        step = epoch = 0
        try:
            while epoch < config.epochs and bool(self.model.live.any()):
                epoch += 1
                order = torch.randperm(rows, generator=shuffle)
                epoch_rows = train if config.batch_size >= rows else train.take(order, self.model.layers_read())
                for begin in range(0, rows, config.batch_size):
                    self.model.gradient(epoch_rows.span(begin, begin + config.batch_size), config.weight_decay)
                    self.optimizer.step()
                    if self.average is not None:
                        self.average.lerp_(self.model.flat.detach(), 1 - config.average)
                    step += 1
                    if (step % every == 0 or step == last) and not self.check(step):
                        break
                bar.update(1)
        finally:
            bar.close()
        self.model.restore(self.best)
        return TrainedProbes(self.model, self.best_score.numpy(), self.best_loss.numpy(), self.best_step.numpy(),
                             step, epoch)

    @torch.no_grad()
    def check(self, step: int) -> bool:
        """Validate the live probes, keep improved weights, drop probes out of patience;
        False once none is live."""
        model, config = self.model, self.config
        live = model.live_probes()
        weights = model.flat.detach() if self.average is None else self.average
        with model.weights(weights):
            scores, losses = validate(model, self.valid)
        best_score, best_loss = self.best_score[live], self.best_loss[live]
        if config.monitor == "metric":
            better = (scores > best_score) | ((scores == best_score) & (losses < best_loss))
            rise = scores - best_score
            gain = (rise > 0) & (rise >= config.min_delta - _TOLERANCE)
        else:
            better = losses < best_loss
            gain = losses < best_loss * (1 - config.min_delta)
        if better.all():
            self.best.index_copy_(0, model.element, weights)
        elif better.any():
            improved = torch.zeros(model.num_probes, dtype=torch.bool)
            improved[live] = better
            elements = improved[model.owner]
            self.best.index_copy_(0, model.element[elements], weights[elements])
        self.best_score[live] = torch.where(better, scores, best_score)
        self.best_loss[live] = torch.where(better, losses, best_loss)
        self.best_step[live] = torch.where(better, step, self.best_step[live])
        self.stale[live] = torch.where(gain, 0, self.stale[live] + 1)
        stopped = torch.zeros(model.num_probes, dtype=torch.bool)
        stopped[live] = self.stale[live] >= config.patience
        if stopped.any():
            keep = model.drop(stopped)
            self.optimizer.drop(keep)
            if self.average is not None:
                self.average = self.average[keep]
        return bool(model.live.any())

"""The layer × learning-rate sweep: fit every pooling's batched probes on the train split,
choose the learning rate per layer and the best (layer, learning rate) on the validation
split, and only then evaluate on test.

:func:`fit_and_select` reads the train and valid splits only; :func:`evaluate` is the one
place test features enter, after selection is final.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from ..progress import ProgressFactory
from .inputs import Standardizer
from ..metrics import PRIMARY, task_metrics
from .models import BatchedProbes, LayerSumProbes, SplitInputs, build_probes, probe_rates
from .train import TrainConfig, predict_logits, train_probes


@dataclass
class SplitData:
    """Raw features of one split: ``pooled[l]`` ``[clips, D_l]``; ``frames[l][i]``
    ``[frames, D_l]`` or None; ``targets`` ``[clips]`` or ``[clips, classes]``."""

    pooled: list[np.ndarray]
    targets: np.ndarray
    frames: list[list[np.ndarray]] | None = None


class FeatureReader(Protocol):
    """Gives the features of a split on request."""

    def read(self, split: str) -> SplitData: ...


@dataclass
class FittedPooling:
    """Trained probes of one pooling and what validation chose.

    Probe ``p`` is (slot ``p // R``, rate ``p % R``); slots are layers, except for
    ``layer-sum`` whose single slot is the weighted sum of all layers.
    ``chosen[s]``: the probe chosen for slot ``s``; ``best``: the probe chosen overall.
    """

    model: BatchedProbes
    valid: list[dict[str, float]]
    valid_loss: np.ndarray
    best_step: np.ndarray
    chosen: list[int]
    best: int


@dataclass
class Selection:
    """Everything decided on train + valid, before any test feature is read."""

    kind: str
    learning_rates: tuple[float, ...]
    standardizer: Standardizer
    fitted: dict[str, FittedPooling]

    @property
    def metric(self) -> str:
        return PRIMARY[self.kind]


def _choose(scores: np.ndarray, losses: np.ndarray, rates: int) -> tuple[list[int], int]:
    """Per slot the probe with the highest score (then lowest loss, then lowest index),
    and the best of those."""
    scores = np.where(np.isnan(scores), -np.inf, scores)
    slots = len(scores) // rates
    chosen = []
    for slot in range(slots):
        block = range(slot * rates, (slot + 1) * rates)
        chosen.append(min(block, key=lambda p: (-scores[p], losses[p], p)))
    best = min(chosen, key=lambda p: (-scores[p], losses[p], p))
    return chosen, best


def _split_inputs(standardizer: Standardizer, data: SplitData, with_frames: bool) -> SplitInputs:
    return standardizer.inputs(data.pooled, data.targets, data.frames if with_frames else None)


def fit_and_select(reader: FeatureReader, kind: str, classes: int, poolings: tuple[str, ...], config: TrainConfig,
                   progress: ProgressFactory | None = None, desc: str = "") -> Selection:
    """Train every pooling's probes for all layers × learning rates and choose on valid.

    Reads ``reader.read("train")`` and ``reader.read("valid")`` and nothing else.
    """
    with_frames = "attention" in poolings
    train, valid = reader.read("train"), reader.read("valid")
    standardizer = Standardizer.fit(train.pooled, train.frames if with_frames else None)
    train_inputs = _split_inputs(standardizer, train, with_frames)
    valid_inputs = _split_inputs(standardizer, valid, with_frames)
    widths = [p.shape[1] for p in train.pooled]
    fitted = {}
    for pooling in poolings:
        torch.manual_seed(config.seed)
        model = build_probes(pooling, widths, len(config.learning_rates), classes)
        trained = train_probes(model, probe_rates(model, config.learning_rates), train_inputs, valid_inputs, config,
                               progress, desc=f"{desc}{pooling} probes")
        logits = predict_logits(model, valid_inputs).numpy()
        metrics = [task_metrics(kind, logits[p], valid.targets) for p in range(model.num_probes)]
        scores = np.array([m[PRIMARY[kind]] for m in metrics])
        chosen, best = _choose(scores, trained.valid_loss, len(config.learning_rates))
        fitted[pooling] = FittedPooling(model, metrics, trained.valid_loss, trained.best_step, chosen, best)
    return Selection(kind, tuple(config.learning_rates), standardizer, fitted)


def evaluate(selection: Selection, test: SplitData) -> dict[str, dict]:
    """Test metrics of every slot's chosen probe and of the best, per pooling."""
    results = {}
    for pooling, fit in selection.fitted.items():
        inputs = _split_inputs(selection.standardizer, test, pooling == "attention")
        logits = predict_logits(fit.model, inputs).numpy()
        per_slot = [task_metrics(selection.kind, logits[p], test.targets) for p in fit.chosen]
        results[pooling] = {"slots": per_slot, "best": per_slot[fit.chosen.index(fit.best)]}
    return results


def describe_selection(selection: Selection, layer_names: list[str]) -> dict[str, dict]:
    """JSON summary of the choices: per slot the learning rate, validation metrics and
    the optimizer step its kept weights come from; the full validation grid; the layer
    weights of ``layer-sum``."""
    rates = selection.learning_rates
    summary = {}
    for pooling, fit in selection.fitted.items():
        names = ["weighted sum"] if isinstance(fit.model, LayerSumProbes) else layer_names
        slots = [{"layer": names[p // len(rates)], "learning_rate": rates[p % len(rates)],
                  "valid": fit.valid[p], "valid_loss": float(fit.valid_loss[p]), "best_step": int(fit.best_step[p])}
                 for p in fit.chosen]
        grid = [[fit.valid[s * len(rates) + r][selection.metric] for r in range(len(rates))] for s in range(len(names))]
        entry = {"slots": slots, "best": slots[fit.chosen.index(fit.best)], "valid_grid": grid}
        if isinstance(fit.model, LayerSumProbes):
            entry["layer_weights"] = dict(zip(layer_names, fit.model.layer_weights()[fit.best].detach().tolist()))
        summary[pooling] = entry
    return summary

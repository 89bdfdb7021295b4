"""The layer × setting sweep: fit every pooling's batched probes on the train split,
choose the setting per layer and the best (layer, setting) on the validation split, and
only then evaluate on test.

A setting is the L2 strength ``C`` for the linear poolings (mean, max, mean+max) under
the default L-BFGS solver (each probe solved to its optimum, :mod:`chorus.probe.solver`),
and the Adam learning rate for attention and layer-sum (and for linear poolings with
``TrainConfig(solver="adam")``). Each pooling has its own standardisation, fitted on the
train split's features of that pooling.

:func:`fit_and_select` reads the train and valid splits only; :func:`evaluate` is the one
place test features enter, after selection is final.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from ..progress import ProgressFactory
from ..metrics import PRIMARY, bootstrap_interval, task_metrics
from .inputs import Standardizer, pooled_inputs
from .losses import probe_losses
from .models import LINEAR_POOLINGS, BatchedProbes, LayerSumProbes, SplitInputs, build_probes, probe_rates
from .solver import solve_linear_probes
from .train import TrainConfig, predict_logits, train_probes


@dataclass
class SplitData:
    """Raw features of one split: ``pooled[l]`` ``[clips, D_l]``; ``frames[l][i]``
    ``[frames, D_l]`` or None; ``targets`` ``[clips]`` or ``[clips, classes]``."""

    pooled: list[np.ndarray]
    targets: np.ndarray
    frames: list[list[np.ndarray]] | None = None

    def layers(self, keep: list[int]) -> "SplitData":
        """Only the layers ``keep``, in that order."""
        return SplitData([self.pooled[i] for i in keep], self.targets,
                         None if self.frames is None else [self.frames[i] for i in keep])

    def join(self, other: "SplitData") -> "SplitData":
        """This split's clips followed by ``other``'s."""
        frames = None if self.frames is None or other.frames is None else \
            [mine + theirs for mine, theirs in zip(self.frames, other.frames)]
        return SplitData([np.concatenate([a, b]) for a, b in zip(self.pooled, other.pooled)],
                         np.concatenate([self.targets, other.targets]), frames)


class FeatureReader(Protocol):
    """Gives the features of a split on request."""

    def read(self, split: str) -> SplitData: ...


class MemoryReader:
    """A :class:`FeatureReader` over splits already in memory."""

    def __init__(self, splits: dict[str, SplitData]):
        self.splits = splits

    def read(self, split: str) -> SplitData:
        return self.splits[split]


@dataclass
class FittedPooling:
    """Trained probes of one pooling and what validation chose.

    Probe ``p`` is (slot ``p // R``, setting ``values[p % R]``); slots are layers, except
    for ``layer-sum`` whose single slot is the weighted sum of all layers. ``setting``:
    ``"C"`` (L-BFGS probes) or ``"learning_rate"`` (Adam). ``best_step``: per probe the
    optimizer step its kept weights come from (Adam) or its L-BFGS iterations.
    ``chosen[s]``: the probe chosen for slot ``s``; ``best``: the probe chosen overall.
    """

    model: BatchedProbes
    valid: list[dict[str, float]]
    valid_loss: np.ndarray
    best_step: np.ndarray
    chosen: list[int]
    best: int
    setting: str
    values: tuple[float, ...]
    standardizer: Standardizer


@dataclass
class Selection:
    """Everything decided on train + valid, before any test feature is read."""

    kind: str
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


def needs_frames(poolings: tuple[str, ...]) -> bool:
    """Whether any of ``poolings`` reads frame-level features."""
    return any(p in ("max", "mean+max", "attention") for p in poolings)


def _split_inputs(standardizer: Standardizer, data: SplitData, pooling: str) -> SplitInputs:
    pooled = pooled_inputs(data.pooled, data.frames, pooling)
    return standardizer.inputs(pooled, data.targets, data.frames if pooling == "attention" else None)


@dataclass
class _Prepared:
    """One pooling's standardisation and standardised train and valid inputs."""

    standardizer: Standardizer
    train: SplitInputs
    valid: SplitInputs


def _prepare(pooling: str, train: SplitData, valid: SplitData) -> _Prepared:
    pooled = pooled_inputs(train.pooled, train.frames, pooling)
    standardizer = Standardizer.fit(pooled, train.frames if pooling == "attention" else None)
    return _Prepared(standardizer, _split_inputs(standardizer, train, pooling),
                     _split_inputs(standardizer, valid, pooling))


def _selected(model: BatchedProbes, prepared: _Prepared, losses: np.ndarray | None, steps: np.ndarray, kind: str,
              setting: str, values: tuple[float, ...], targets: np.ndarray) -> FittedPooling:
    """Validation metrics of every probe and the choices they make."""
    logits = predict_logits(model, prepared.valid)
    if losses is None:
        losses = probe_losses(logits, prepared.valid.targets).numpy()
    logits = logits.numpy()
    metrics = [task_metrics(kind, logits[p], targets) for p in range(model.num_probes)]
    scores = np.array([m[PRIMARY[kind]] for m in metrics])
    chosen, best = _choose(scores, losses, len(values))
    return FittedPooling(model, metrics, losses, steps, chosen, best, setting, values, prepared.standardizer)


def fit_and_select(reader: FeatureReader, kind: str, classes: int, poolings: tuple[str, ...], config: TrainConfig,
                   progress: ProgressFactory | None = None, desc: str = "") -> Selection:
    """Train every pooling's probes for all layers × settings and choose on valid.

    Reads ``reader.read("train")`` and ``reader.read("valid")`` and nothing else (with
    frames when a pooling needs them: :func:`needs_frames`). With the L-BFGS solver, the
    linear poolings' probes are solved together in one call.
    """
    train, valid = reader.read("train"), reader.read("valid")
    prepared = {pooling: _prepare(pooling, train, valid) for pooling in poolings}
    solved = [p for p in poolings if p in LINEAR_POOLINGS and config.solver == "lbfgs"]
    fitted = {}
    if solved:
        models = solve_linear_probes({p: prepared[p].train for p in solved}, classes, tuple(config.c_values),
                                     max_iter=config.max_iter, tol=config.tol)
        for pooling, (model, steps) in models.items():
            fitted[pooling] = _selected(model, prepared[pooling], None, steps.numpy(), kind, "C",
                                        tuple(config.c_values), valid.targets)
    for pooling in poolings:
        if pooling in solved:
            continue
        torch.manual_seed(config.seed)
        values = tuple(config.learning_rates)
        model = build_probes(pooling, [x.shape[1] for x in prepared[pooling].train.pooled], len(values), classes)
        trained = train_probes(model, probe_rates(model, values), prepared[pooling].train, prepared[pooling].valid,
                               config, progress, desc=f"{desc}{pooling} probes")
        fitted[pooling] = _selected(model, prepared[pooling], trained.valid_loss, trained.best_step, kind,
                                    "learning_rate", values, valid.targets)
    return Selection(kind, {pooling: fitted[pooling] for pooling in poolings})


def evaluate(selection: Selection, test: SplitData, bootstrap: int = 0, seed: int = 0) -> dict[str, dict]:
    """Test metrics of every slot's chosen probe and of the best, per pooling; with
    ``bootstrap`` resamples also ``ci95``, the stratified bootstrap 95 % interval of the
    best probe's primary metric (:func:`chorus.metrics.bootstrap_interval`, seeded)."""
    results = {}
    for pooling, fit in selection.fitted.items():
        inputs = _split_inputs(fit.standardizer, test, pooling)
        logits = predict_logits(fit.model, inputs).numpy()
        per_slot = [task_metrics(selection.kind, logits[p], test.targets) for p in fit.chosen]
        results[pooling] = {"slots": per_slot, "best": per_slot[fit.chosen.index(fit.best)]}
        if bootstrap:
            results[pooling]["ci95"] = list(bootstrap_interval(logits[fit.best], test.targets, resamples=bootstrap,
                                                               seed=seed))
    return results


def describe_selection(selection: Selection, layer_names: list[str]) -> dict[str, dict]:
    """JSON summary of the choices: per slot its setting (``C`` or ``learning_rate``),
    validation metrics and the optimizer step its kept weights come from (``best_step``;
    L-BFGS iterations for ``C`` probes); the full validation grid; the layer weights of
    ``layer-sum``."""
    summary = {}
    for pooling, fit in selection.fitted.items():
        names = ["weighted sum"] if isinstance(fit.model, LayerSumProbes) else layer_names
        count = len(fit.values)
        slots = [{"layer": names[p // count], fit.setting: fit.values[p % count],
                  "valid": fit.valid[p], "valid_loss": float(fit.valid_loss[p]), "best_step": int(fit.best_step[p])}
                 for p in fit.chosen]
        grid = [[fit.valid[s * count + r][selection.metric] for r in range(count)] for s in range(len(names))]
        entry = {"slots": slots, "best": slots[fit.chosen.index(fit.best)], "setting": fit.setting,
                 "values": list(fit.values), "valid_grid": grid}
        if isinstance(fit.model, LayerSumProbes):
            entry["layer_weights"] = dict(zip(layer_names, fit.model.layer_weights()[fit.best].detach().tolist()))
        summary[pooling] = entry
    return summary

"""Scoring students and interpolated models θ0 + Σ λ_i τ_i by frozen-feature probes.

For every model and domain: pooled (time-averaged) features of every layer, a linear
probe per layer x learning rate trained on the domain's train split
(:func:`chorus.probe.sweep.fit_and_select`), the layer and rate chosen on valid, and the
chosen probe's test accuracy reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..encoders import Encoder, pooled_features
from ..probe.sweep import SplitData, describe_selection, evaluate, fit_and_select
from ..probe.train import TrainConfig
from ..progress import ProgressFactory, resolve
from .errors import DistillError

SPLITS = ("train", "valid", "test")


@dataclass
class Domain:
    """One labelled domain at the student's rate: ``waveforms[split]`` (``[samples]`` each),
    ``targets[split]`` ``[clips]`` class indices into ``labels``."""

    name: str
    labels: list[str]
    waveforms: dict[str, list[np.ndarray]]
    targets: dict[str, np.ndarray]


def domain_from_audio(name: str, audio) -> Domain:
    """A :class:`Domain` from decoded single-label clips (:class:`chorus.evaluate.EvalAudio`)."""
    labels = sorted({clip.labels[0] for clip in audio.clips})
    index = {label: i for i, label in enumerate(labels)}
    waveforms = {split: [w for c, w in zip(audio.clips, audio.waveforms) if c.split == split] for split in SPLITS}
    targets = {split: np.array([index[c.labels[0]] for c in audio.clips if c.split == split], dtype=np.int64)
               for split in SPLITS}
    empty = [split for split in SPLITS if not len(targets[split])]
    if empty:
        raise DistillError(f"domain {name!r} has no clip in split(s) {empty}")
    return Domain(name, labels, waveforms, targets)


class _Features:
    """Pooled features of one encoder on one domain, per split (a probe ``FeatureReader``)."""

    def __init__(self, encoder: Encoder, domain: Domain, batch_size: int):
        self.domain = domain
        self.pooled = {split: pooled_features(encoder, domain.waveforms[split], batch_size) for split in SPLITS}

    def read(self, split: str) -> SplitData:
        return SplitData(self.pooled[split], self.domain.targets[split])


def probe_domain(encoder: Encoder, domain: Domain, config: TrainConfig = TrainConfig(), batch_size: int = 32) -> dict:
    """``{"accuracy": test accuracy, "valid": valid accuracy, "layer": chosen layer}`` of the
    best linear probe (mean pooling) on ``encoder``'s frozen features of ``domain``."""
    reader = _Features(encoder.eval(), domain, batch_size)
    selection = fit_and_select(reader, "multiclass", len(domain.labels), ("mean",), config)
    chosen = describe_selection(selection, list(encoder.layer_names))["mean"]["best"]
    tested = evaluate(selection, reader.read("test"))["mean"]["best"]
    return {"accuracy": tested["accuracy"], "macro_f1": tested["macro_f1"], "valid": chosen["valid"]["accuracy"],
            "layer": chosen["layer"]}


def probe_all(encoder: Encoder, domains: Sequence[Domain], config: TrainConfig = TrainConfig()) -> dict[str, dict]:
    """:func:`probe_domain` for every domain, by name."""
    return {domain.name: probe_domain(encoder, domain, config) for domain in domains}


def interpolation_sweep(theta0: Encoder, vectors: Sequence, grid: Sequence[tuple[float, ...]], domains: Sequence[Domain],
                        config: TrainConfig = TrainConfig(), progress: ProgressFactory | None = None) -> list[dict]:
    """Probe θ0 + Σ λ_i τ_i for every coefficient tuple of ``grid`` on every domain.

    Returns one row per grid point: ``{"lambdas": [...], "scores": {domain: probe result}}``.
    """
    from ..taskvec import apply

    rows = []
    bar = resolve(progress)(len(grid), "λ sweep")
    for lambdas in grid:
        if len(lambdas) != len(vectors):
            raise DistillError(f"grid point {lambdas} has {len(lambdas)} coefficients for {len(vectors)} vectors")
        model = apply(theta0, list(vectors), [float(x) for x in lambdas])
        rows.append({"lambdas": [float(x) for x in lambdas], "scores": probe_all(model, domains, config)})
        bar.update(1)
    bar.close()
    return rows


def retention(rows: Sequence[dict], references: dict[str, float]) -> list[dict]:
    """Each row with ``kept[domain]`` = its accuracy / ``references[domain]`` (the accuracy of
    the student distilled for that domain) and ``worst`` = the smallest of those."""
    out = []
    for row in rows:
        kept = {name: row["scores"][name]["accuracy"] / reference if reference > 0 else float("nan")
                for name, reference in references.items()}
        out.append({**row, "kept": kept, "worst": min(kept.values())})
    return out

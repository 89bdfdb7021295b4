"""Forgetting check: linear probes of the original domain on the encoder before and after
adaptation, through the probe machinery (:func:`chorus.probe.runner.probe_condition`: one
cached extraction per encoder, probes on every layer, layer and learning rate chosen on the
validation split, then tested)."""

from __future__ import annotations

from pathlib import Path

from ..encoders import Encoder
from ..probe.runner import ProbeConfig, probe_condition
from ..probe.task import ProbeTask
from ..probe.train import TrainConfig
from ..progress import ProgressFactory


def forgetting_check(before: Encoder, after: Encoder, task: ProbeTask, cache_dir: str | Path, *, seed: int = 0,
                     batch_size: int = 8, device: str = "cpu", progress: ProgressFactory | None = None) -> dict:
    """Best test metric (accuracy or mAP) of mean-pooled linear probes of ``task`` (the
    original domain's manifest with train/valid/test splits, as
    :func:`chorus.probe.task.task_from_manifest` reads it) on ``before`` and on ``after``,
    and the chosen layers.

    Returns ``{"metric", "before": {"layer", "valid", "test"}, "after": {...}, "change",
    "layers", "failures"}``: ``change`` = after − before of the best probes' test metric;
    ``layers``: every layer's test metric ``{"before", "after"}`` (learning rate chosen on
    valid per layer).
    """
    config = ProbeConfig(poolings=("mean",), batch_size=batch_size, seed=seed, device=device,
                         train=TrainConfig(seed=seed))
    failures: dict[str, str] = {}
    result: dict = {"metric": task.metric}
    layers: dict[str, dict[str, float]] = {}
    for name, encoder in (("before", before), ("after", after)):
        outcome = probe_condition(name, encoder.to(device), task, Path(cache_dir), config, 1.0, failures, progress)
        best = outcome["poolings"]["mean"]["best"]
        result[name] = {"layer": best["layer"], "valid": best["valid"][task.metric],
                        "test": best["test"][task.metric]}
        for slot in outcome["poolings"]["mean"]["slots"]:
            layers.setdefault(slot["layer"], {})[name] = slot["test"][task.metric]
    result["change"] = result["after"]["test"] - result["before"]["test"]
    result["layers"] = layers
    result["failures"] = [{"path": path, "error": error} for path, error in sorted(failures.items())]
    return result

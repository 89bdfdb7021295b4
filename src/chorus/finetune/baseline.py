"""The frozen-probe baseline of a fine-tuning run: the LP stage's head (the best L2
logistic-regression probe, :func:`chorus.train.probe_init.probe_head`) on the unchanged
encoder, scored on the validation and test splits. Fine-tuning is judged against it."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import Tensor

from ..data.clipset import ClipSet
from ..model import ClassifierModel
from ..model.inference import predict_clips
from ..train.metrics import MONITOR, classification_metrics
from ..train.probe_init import probe_head
from .errors import FinetuneWarning


@dataclass
class ProbeBaseline:
    """``state``: the model's state dict with the probe head (encoder as built);
    ``valid``/``test``: its metrics (``test`` None without test clips)."""

    penalty: float
    valid: dict[str, float]
    test: dict[str, float] | None
    state: dict[str, Tensor]

    def metrics(self) -> dict[str, float]:
        """``valid_<metric>`` and ``test_<metric>`` in one flat dict (as the training summary)."""
        return {**{f"valid_{k}": v for k, v in self.valid.items()},
                **{f"test_{k}": v for k, v in (self.test or {}).items()}}


def probe_baseline(model: ClassifierModel, splits: dict[str, ClipSet], task: str, eval_samples: int,
                   batch_size: int, device: torch.device, amp: torch.dtype | None) -> ProbeBaseline:
    """Fit the probe on ``model``'s pooled features of ``splits["train"]`` (penalty chosen on
    ``splits["valid"]``) and score it; ``model`` itself is left unchanged."""
    features = {split: predict_clips(model, clips, eval_samples, batch_size, device, amp, features=True)
                for split, clips in splits.items() if len(clips)}
    classes = len(model.labels)
    weight, bias, penalty = probe_head(features["train"], splits["train"].targets, features["valid"],
                                       splits["valid"].targets, task, classes)
    scores = {split: classification_metrics(features[split] @ weight.T + bias, splits[split].targets, task)
              for split in ("valid", "test") if split in features}
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    state["heads.0.weight"], state["heads.0.bias"] = weight.to(state["heads.0.weight"]), bias.to(state["heads.0.bias"])
    return ProbeBaseline(penalty, scores["valid"], scores.get("test"), state)


def matches_probe(epoch: dict[str, float], probe_valid: dict[str, float], monitor: str, task: str) -> bool:
    """Whether a fine-tuned epoch (a history row: ``valid_<metric>``) is at least as good as
    the probe on validation, both on ``monitor`` and on the task's main metric (accuracy /
    mAP): on a small validation split a loss a hair lower can hide fewer correct clips."""
    def not_worse(metric: str) -> bool:
        ours, theirs = epoch[f"valid_{metric}"], probe_valid[metric]
        return ours <= theirs if metric == "loss" else ours >= theirs

    return not_worse(monitor) and not_worse(MONITOR[task])


def warn_if_below(baseline: ProbeBaseline, valid: dict[str, float], test: dict[str, float] | None,
                  task: str) -> str | None:
    """Warn (:class:`FinetuneWarning`) when the fine-tuned model scores below the baseline on
    the task's main metric, on test when there is one, else on validation; returns the message."""
    metric = MONITOR[task]
    split, ours, theirs = ("test", test, baseline.test) if test is not None and baseline.test else \
        ("valid", valid, baseline.valid)
    if ours[metric] >= theirs[metric]:
        return None
    message = (f"fine-tuning ended below its frozen-probe baseline on {split}: {metric} {ours[metric]:.4f} "
               f"vs {theirs[metric]:.4f}")
    warnings.warn(message, FinetuneWarning, stacklevel=3)
    return message

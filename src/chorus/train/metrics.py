"""Training losses and the validation metrics fine-tuning reports (definitions in
:mod:`chorus.metrics`)."""

from __future__ import annotations

from torch import Tensor
from torch.nn import functional as F

from ..metrics import PRIMARY, multiclass_metrics, multilabel_metrics

MONITOR = {task: PRIMARY[task] for task in ("multiclass", "multilabel")}
"""Default validation metric per task (higher is better)."""

METRICS = {"multiclass": ("loss", "accuracy", "macro_f1"), "multilabel": ("loss", "map", "micro_f1")}
"""What :func:`classification_metrics` reports per task."""


def loss_function(task: str):
    """Cross-entropy over classes (multiclass) or per-class binary cross-entropy (multilabel)."""
    return F.cross_entropy if task == "multiclass" else F.binary_cross_entropy_with_logits


def classification_metrics(logits: Tensor, targets: Tensor, task: str) -> dict[str, float]:
    """The :data:`METRICS` of ``logits [clips, classes]`` against ``targets`` (multiclass:
    ``[clips]`` class indices; multilabel: ``[clips, classes]`` 0/1, sigmoid at 0.5)."""
    logits = logits.float()
    loss = float(loss_function(task)(logits, targets))
    if task == "multiclass":
        scores = multiclass_metrics(logits.numpy(), targets.numpy())
    else:
        scores = multilabel_metrics(logits.sigmoid().double().numpy(), targets.double().numpy())
    return {"loss": loss, **{key: scores[key] for key in METRICS[task][1:]}}

"""Classification metrics computed from logits (torch only, no scikit-learn import)."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

MONITOR = {"multiclass": "accuracy", "multilabel": "map"}
"""Default validation metric per task (higher is better)."""

METRICS = {"multiclass": ("loss", "accuracy", "macro_f1"), "multilabel": ("loss", "map", "micro_f1")}
"""What :func:`classification_metrics` reports per task."""


def loss_function(task: str):
    """Cross-entropy over classes (multiclass) or per-class binary cross-entropy (multilabel)."""
    return F.cross_entropy if task == "multiclass" else F.binary_cross_entropy_with_logits


def f1_scores(predicted: Tensor, truth: Tensor) -> Tensor:
    """Per-class F1 of 0/1 ``predicted`` and ``truth`` ``[clips, classes]`` (0 where undefined)."""
    tp = (predicted * truth).sum(dim=0)
    fp = (predicted * (1 - truth)).sum(dim=0)
    fn = ((1 - predicted) * truth).sum(dim=0)
    return torch.where(tp > 0, 2 * tp / (2 * tp + fp + fn).clamp_min(1), torch.zeros_like(tp))


def average_precision(scores: Tensor, truth: Tensor) -> float:
    """Average precision of ``scores [clips]`` for 0/1 ``truth [clips]``: Σ (R_n − R_{n−1}) P_n
    over distinct score thresholds, high to low (tied scores form one threshold)."""
    order = torch.argsort(scores, descending=True, stable=True)
    scores, truth = scores[order], truth[order].double()
    tp = truth.cumsum(0)
    last_of_tie = torch.cat([scores[1:] != scores[:-1], torch.tensor([True])])
    tp = tp[last_of_tie]
    seen = torch.arange(1, len(scores) + 1, dtype=torch.float64)[last_of_tie]
    recall = tp / truth.sum()
    precision = tp / seen
    steps = torch.diff(recall, prepend=torch.zeros(1, dtype=torch.float64))
    return float((steps * precision).sum())


def classification_metrics(logits: Tensor, targets: Tensor, task: str) -> dict[str, float]:
    """Metrics of ``logits [clips, classes]`` against ``targets``.

    multiclass (``targets [clips]`` class indices): ``loss``, ``accuracy``, ``macro_f1``
    (over the classes present in ``targets``). multilabel (``targets [clips, classes]``
    0/1): ``loss``, ``map`` (mean over classes with a positive of average precision),
    ``micro_f1`` at threshold 0.5.
    """
    logits = logits.float()
    loss = float(loss_function(task)(logits, targets))
    classes = logits.shape[1]
    if task == "multiclass":
        predicted = logits.argmax(dim=1)
        f1 = f1_scores(F.one_hot(predicted, classes).float(), F.one_hot(targets, classes).float())
        present = torch.bincount(targets, minlength=classes) > 0
        return {"loss": loss, "accuracy": float((predicted == targets).float().mean()),
                "macro_f1": float(f1[present].mean())}
    scores = logits.sigmoid()
    present = [c for c in range(classes) if targets[:, c].sum() > 0]
    mean_ap = sum(average_precision(scores[:, c], targets[:, c]) for c in present) / max(1, len(present))
    predicted = (scores >= 0.5).float()
    tp = float((predicted * targets).sum())
    micro_f1 = 2 * tp / max(1.0, float(predicted.sum() + targets.sum()))
    return {"loss": loss, "map": mean_ap, "micro_f1": micro_f1}

"""Task metrics on probe scores.

Multi-class: accuracy and macro-F1 over the known classes. Multi-label and detection:
mAP (mean over classes of average precision) and macro ROC-AUC, each over the classes
that the evaluated split can score (AP needs a positive; AUC a positive and a negative).
:func:`probe_scores` gives the primary metric of many probes at once, in torch, for early
stopping.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

TASK_KINDS = ("multiclass", "multilabel", "detection")
PRIMARY_METRIC = {"multiclass": "accuracy", "multilabel": "mAP", "detection": "mAP"}


def multiclass_metrics(scores: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """``scores [N, C]`` (any monotone score), ``targets [N]`` class indices. Macro-F1 is the
    mean over all ``C`` classes of ``2 TP / (2 TP + FP + FN)``, 0 for a class never true nor
    predicted (scikit-learn's ``f1_score(average="macro", zero_division=0)``)."""
    if not len(targets):
        return {"accuracy": float("nan"), "macro_f1": float("nan")}
    classes = scores.shape[1]
    predicted = scores.argmax(axis=1)
    hits = predicted == targets
    true_positives = np.bincount(targets[hits], minlength=classes)
    errors = np.bincount(predicted, minlength=classes) + np.bincount(targets, minlength=classes) - 2 * true_positives
    denominator = 2 * true_positives + errors
    f1 = np.divide(2 * true_positives, denominator, out=np.zeros(classes), where=denominator > 0)
    return {"accuracy": float(hits.mean()), "macro_f1": float(f1.mean())}


def multilabel_metrics(scores: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """``scores [N, C]``, ``targets [N, C]`` in {0, 1}."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    positives = targets.sum(axis=0)
    scored_ap = [c for c in range(targets.shape[1]) if positives[c] > 0]
    scored_auc = [c for c in scored_ap if positives[c] < targets.shape[0]]
    ap = [average_precision_score(targets[:, c], scores[:, c]) for c in scored_ap]
    auc = [roc_auc_score(targets[:, c], scores[:, c]) for c in scored_auc]
    return {"mAP": float(np.mean(ap)) if ap else float("nan"),
            "roc_auc": float(np.mean(auc)) if auc else float("nan")}


def task_metrics(kind: str, scores: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """Metrics of ``kind`` (see :data:`TASK_KINDS`)."""
    if kind == "multiclass":
        return multiclass_metrics(scores, targets)
    if kind in ("multilabel", "detection"):
        return multilabel_metrics(scores, targets)
    raise ValueError(f"unknown task kind {kind!r}; known: {', '.join(TASK_KINDS)}")


def average_precision(scores: Tensor, targets: Tensor) -> Tensor:
    """Average precision of every probe and class: ``scores [probes, rows, classes]``,
    ``targets [rows, classes]`` in {0, 1} -> ``[probes, classes]`` (nan for a class without
    positives). Tied scores form one threshold, as in scikit-learn's
    ``average_precision_score``: AP = sum over thresholds of (recall gain) × precision.
    """
    probes, rows, classes = scores.shape
    ranked, order = scores.sort(dim=1, descending=True)
    hits = targets.to(scores.dtype).unsqueeze(0).expand(probes, -1, -1).gather(1, order)
    found = hits.cumsum(dim=1)
    last_of_tie = torch.ones_like(ranked, dtype=torch.bool)
    last_of_tie[:, :-1] = ranked[:, 1:] != ranked[:, :-1]
    rank = torch.arange(rows, dtype=torch.int64).view(1, -1, 1).expand_as(order)
    tie_end = torch.where(last_of_tie, rank, rows).flip(1).cummin(dim=1).values.flip(1)
    precision = found.gather(1, tie_end) / (tie_end + 1).to(scores.dtype)
    positives = hits.sum(dim=1)
    return (hits * precision).sum(dim=1) / positives.where(positives > 0, torch.nan)


def probe_scores(logits: Tensor, targets: Tensor) -> Tensor:
    """The primary metric of every probe: ``logits [probes, rows, classes]`` -> ``[probes]``:
    accuracy for class-index targets ``[rows]``, mAP over classes with a positive for
    multi-hot targets ``[rows, classes]``."""
    if targets.dim() == 1:
        return (logits.argmax(dim=-1) == targets).to(logits.dtype).mean(dim=1)
    return average_precision(logits, targets).nanmean(dim=1)

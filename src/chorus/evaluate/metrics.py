"""Classification metrics of a model's scores on labelled clips, overall and per group
(each metric defined once, in :mod:`chorus.metrics`).

Inputs: ``logits [clips, classes]`` over the model's labels, and each clip's true labels
and group. A clip whose label the model does not know counts as an error for accuracy and
is listed under ``unknown_labels``; ranking metrics (mAP, ROC-AUC) run over the model's
classes that have at least one positive (and, for ROC-AUC, one negative) clip.

Multi-class: ``accuracy`` (top-1 over every class of the model), ``macro_f1`` (over the
classes that occur in the true labels or the predictions), ``map`` and ``roc_auc`` (one-vs-rest, macro), and per group also
``accuracy_within_group`` (top-1 among the labels of that group only — the score a user
who knows the clip's group would get). Multi-label: ``map``, ``roc_auc``, ``macro_f1`` and
``micro_f1`` at a 0.5 sigmoid threshold, ``subset_accuracy`` (exact label sets).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from torch import Tensor

from .. import metrics as core


def _targets(labels: Sequence[Sequence[str]], classes: Sequence[str]) -> np.ndarray:
    index = {label: i for i, label in enumerate(classes)}
    truth = np.zeros((len(labels), len(classes)), dtype=np.float64)
    for row, clip_labels in enumerate(labels):
        for label in clip_labels:
            if label in index:
                truth[row, index[label]] = 1.0
    return truth


def multiclass_metrics(logits: np.ndarray, labels: Sequence[str], classes: Sequence[str]) -> dict[str, float]:
    """Metrics of single-label clips (``labels``: one true label per clip; a label the model
    does not know is an error); ranking metrics over softmax probabilities of the clips
    with known labels."""
    index = {label: i for i, label in enumerate(classes)}
    true_index = np.array([index.get(label, -1) for label in labels], dtype=np.int64)
    result = {"clips": len(labels), **core.multiclass_metrics(logits, true_index)}
    known = true_index >= 0
    shifted = logits - logits.max(axis=1, keepdims=True)
    probabilities = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    result.update(core.ranking_metrics(probabilities[known], _targets([[label] for label in labels], classes)[known]))
    return result


def multilabel_metrics(logits: np.ndarray, labels: Sequence[Sequence[str]], classes: Sequence[str]) -> dict[str, float]:
    """Metrics of multi-label clips (sigmoid scores, 0.5 threshold for F1)."""
    scores = 1.0 / (1.0 + np.exp(-logits))
    return {"clips": len(labels), **core.multilabel_metrics(scores, _targets(labels, classes))}


def within_group_accuracy(logits: np.ndarray, labels: Sequence[str], classes: Sequence[str],
                          group_labels: Sequence[str]) -> float:
    """Top-1 accuracy when the prediction is restricted to ``group_labels``."""
    allowed = [i for i, label in enumerate(classes) if label in set(group_labels)]
    if not allowed or not len(labels):
        return float("nan")
    predicted = np.asarray(classes)[np.asarray(allowed)[logits[:, allowed].argmax(axis=1)]]
    return float(np.mean(predicted == np.asarray(labels)))


def confusion_matrix(logits: np.ndarray, labels: Sequence[str], classes: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """``(axis labels, counts [true, predicted])`` over the union of true and model labels."""
    predicted = [classes[i] for i in logits.argmax(axis=1)]
    axis = sorted(set(classes) | set(labels))
    index = {label: i for i, label in enumerate(axis)}
    counts = np.zeros((len(axis), len(axis)), dtype=np.int64)
    for truth, guess in zip(labels, predicted):
        counts[index[truth], index[guess]] += 1
    return axis, counts


def evaluate_logits(logits: Tensor | np.ndarray, clip_labels: Sequence[Sequence[str]], groups: Sequence[str | None],
                    classes: Sequence[str], task: str) -> dict:
    """Overall and per-group metrics (see the module docstring) plus the unknown labels."""
    logits = np.asarray(logits, dtype=np.float64)
    classes = list(classes)
    unknown = sorted({label for labels in clip_labels for label in labels} - set(classes))

    def compute(rows: np.ndarray) -> dict:
        part = logits[rows]
        if task == "multiclass":
            return multiclass_metrics(part, [clip_labels[r][0] for r in rows], classes)
        return multilabel_metrics(part, [clip_labels[r] for r in rows], classes)

    everything = np.arange(len(clip_labels))
    per_group = {}
    for group in sorted({g for g in groups if g is not None}):
        rows = np.array([i for i, g in enumerate(groups) if g == group])
        per_group[group] = compute(rows)
        if task == "multiclass":
            own = sorted({clip_labels[r][0] for r in rows})
            per_group[group]["accuracy_within_group"] = within_group_accuracy(
                logits[rows], [clip_labels[r][0] for r in rows], classes, own)
    return {"task": task, "overall": compute(everything), "per_group": per_group, "unknown_labels": unknown}

"""Classification metrics: the one definition of each, used by probes, fine-tuning,
evaluation and merging, under one key spelling.

Keys (as they appear in every JSON chorus writes):

- ``accuracy``: fraction of clips whose top-scoring class is their class.
- ``macro_f1``: mean of per-class F1 = 2 TP / (2 TP + FP + FN) over the classes that occur
  in the targets or the predictions (scikit-learn's ``f1_score(average="macro")``);
  multi-label: over the classes with a positive target, at a 0.5 sigmoid threshold.
- ``micro_f1``: F1 of all (clip, class) decisions pooled (multi-label, 0.5 threshold).
- ``map``: mean over classes with at least one positive of average precision
  AP = Σ_n (R_n − R_{n−1}) P_n over distinct score thresholds, high to low (tied scores
  form one threshold; scikit-learn's ``average_precision_score``).
- ``roc_auc``: mean over classes with a positive and a negative of one-vs-rest ROC-AUC.
- ``subset_accuracy``: fraction of multi-label clips whose predicted set is exactly right.

:data:`PRIMARY` names the metric that selection (early stopping, λ, probe choice) follows
for each task kind; higher is better for all of them. :func:`bootstrap_interval` gives a
stratified bootstrap confidence interval of the primary metric.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .seeding import derived_seed

TASK_KINDS = ("multiclass", "multilabel", "detection")
PRIMARY = {"multiclass": "accuracy", "multilabel": "map", "detection": "map"}


def f1_per_class(predicted: Tensor, truth: Tensor) -> Tensor:
    """Per-class F1 of 0/1 ``predicted`` and ``truth`` ``[clips, classes]`` (0 where a class
    is neither true nor predicted)."""
    tp = (predicted * truth).sum(dim=0)
    fp = (predicted * (1 - truth)).sum(dim=0)
    fn = ((1 - predicted) * truth).sum(dim=0)
    return torch.where(tp > 0, 2 * tp / (2 * tp + fp + fn).clamp_min(1), torch.zeros_like(tp))


def average_precision(scores: Tensor, targets: Tensor) -> Tensor:
    """Average precision per class: ``scores [..., rows, classes]`` (leading axes, e.g. one
    per probe, are batched), ``targets [rows, classes]`` in {0, 1}, or one per leading index
    ``[..., rows, classes]`` -> ``[..., classes]``; nan for a class without positives.
    Computed in float64."""
    scores = scores.double()
    lead, (rows, classes) = scores.shape[:-2], scores.shape[-2:]
    flat = scores.reshape(-1, rows, classes)
    ranked, order = flat.sort(dim=1, descending=True, stable=True)
    hits = targets.double().expand_as(scores).reshape(-1, rows, classes).gather(1, order)
    found = hits.cumsum(dim=1)
    last_of_tie = torch.ones_like(ranked, dtype=torch.bool)
    last_of_tie[:, :-1] = ranked[:, 1:] != ranked[:, :-1]
    rank = torch.arange(rows, dtype=torch.int64).view(1, -1, 1).expand_as(order)
    tie_end = torch.where(last_of_tie, rank, rows).flip(1).cummin(dim=1).values.flip(1)
    precision = found.gather(1, tie_end) / (tie_end + 1).double()
    positives = hits.sum(dim=1)
    result = (hits * precision).sum(dim=1) / positives.where(positives > 0, torch.nan)
    return result.reshape(*lead, classes)


def ranking_metrics(scores: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """``map`` and ``roc_auc`` of ``scores [clips, classes]`` against 0/1 ``truth`` (nan
    when no clip has a class the scores rank, e.g. a group the model does not cover)."""
    from sklearn.metrics import roc_auc_score

    if not len(truth):
        return {"map": float("nan"), "roc_auc": float("nan")}
    positives = truth.sum(axis=0)
    ap = average_precision(torch.from_numpy(np.asarray(scores, np.float64)), torch.from_numpy(truth)).numpy()
    with_positive = positives > 0
    both = [c for c in range(truth.shape[1]) if 0 < positives[c] < truth.shape[0]]
    auc = [roc_auc_score(truth[:, c], scores[:, c]) for c in both]
    return {"map": float(ap[with_positive].mean()) if with_positive.any() else float("nan"),
            "roc_auc": float(np.mean(auc)) if auc else float("nan")}


def multiclass_metrics(scores: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """``accuracy`` and ``macro_f1`` of ``scores [clips, classes]`` (any monotone score)
    against ``targets [clips]`` class indices; a target of −1 (a label the model does not
    know) counts as an error and belongs to no class."""
    if not len(targets):
        return {"accuracy": float("nan"), "macro_f1": float("nan")}
    classes = scores.shape[1]
    predicted = scores.argmax(axis=1)
    known = targets >= 0
    eye = np.eye(classes)
    truth = np.zeros((len(targets), classes))
    truth[known] = eye[targets[known]]
    f1 = f1_per_class(torch.from_numpy(eye[predicted]), torch.from_numpy(truth)).numpy()
    occurring = (truth.sum(axis=0) > 0) | (np.bincount(predicted, minlength=classes) > 0)
    return {"accuracy": float(np.mean(predicted == targets)), "macro_f1": float(f1[occurring].mean())}


def multilabel_metrics(probabilities: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """``map``, ``roc_auc``, ``macro_f1``, ``micro_f1`` and ``subset_accuracy`` of sigmoid
    ``probabilities [clips, classes]`` against 0/1 ``truth`` (decisions at 0.5)."""
    predicted = (probabilities >= 0.5).astype(np.float64)
    present = truth.sum(axis=0) > 0
    f1 = f1_per_class(torch.from_numpy(predicted), torch.from_numpy(truth)).numpy()
    tp = float((predicted * truth).sum())
    exact = (predicted == truth).all(axis=1)
    return {**ranking_metrics(probabilities, truth),
            "macro_f1": float(f1[present].mean()) if present.any() else float("nan"),
            "micro_f1": 2 * tp / max(1.0, float(predicted.sum() + truth.sum())),
            "subset_accuracy": float(exact.mean()) if len(exact) else float("nan")}


def task_metrics(kind: str, scores: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """Metrics of task ``kind`` (see :data:`TASK_KINDS`) from any monotone ``scores
    [clips, classes]``: multi-class (``targets [clips]`` class indices) ``accuracy`` and
    ``macro_f1``; multi-label and detection (``targets [clips, classes]`` 0/1) the ranking
    metrics ``map`` and ``roc_auc``."""
    if kind == "multiclass":
        return multiclass_metrics(scores, targets)
    if kind in ("multilabel", "detection"):
        return ranking_metrics(np.asarray(scores, np.float64), np.asarray(targets, np.float64))
    raise ValueError(f"unknown task kind {kind!r}; known: {', '.join(TASK_KINDS)}")


def probe_scores(logits: Tensor, targets: Tensor) -> Tensor:
    """The primary metric of many probes at once: ``logits [probes, rows, classes]`` ->
    ``[probes]``: accuracy for class-index targets ``[rows]``, ``map`` for multi-hot
    targets ``[rows, classes]``."""
    if targets.dim() == 1:
        return (logits.argmax(dim=-1) == targets).to(logits.dtype).mean(dim=1)
    return average_precision(logits, targets).nanmean(dim=1).to(logits.dtype)


_BOOTSTRAP_CHUNK = 1 << 22
"""Score entries per batch of resamples (bounds the memory of :func:`bootstrap_interval`)."""


def stratified_resamples(strata: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """``[resamples, rows]`` row indices: each resample draws, with replacement, as many
    rows from each stratum (equal values of ``strata [rows]``) as it holds. Seeded."""
    rng = np.random.default_rng(derived_seed(seed, "bootstrap"))
    columns = []
    for stratum in np.unique(strata):
        members = np.flatnonzero(strata == stratum)
        columns.append(members[rng.integers(0, len(members), size=(resamples, len(members)))])
    return np.concatenate(columns, axis=1)


def bootstrap_interval(scores: np.ndarray, targets: np.ndarray, *, resamples: int = 1000, level: float = 0.95,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval ``(low, high)`` at ``level`` of the primary metric of
    ``scores [rows, classes]``: ``accuracy`` for class indices ``targets [rows]``, ``map``
    for multi-hot ``targets [rows, classes]``. Rows are resampled with replacement within
    each class (multi-hot: within each distinct label set), so every resample keeps the
    class counts of the test set; ``seed`` makes it deterministic."""
    strata = np.unique(targets, axis=0, return_inverse=True)[1].reshape(-1)
    indices = stratified_resamples(strata, resamples, seed)
    if targets.ndim == 1:
        values = (np.asarray(scores).argmax(axis=1) == targets)[indices].mean(axis=1)
    else:
        scores_t, targets_t = torch.as_tensor(scores), torch.as_tensor(targets)
        chunk = max(1, _BOOTSTRAP_CHUNK // scores_t.numel())
        values = torch.cat([average_precision(scores_t[rows], targets_t[rows]).nanmean(dim=-1)
                            for rows in torch.from_numpy(indices).split(chunk)]).numpy()
    tail = 100 * (1 - level) / 2
    low, high = np.nanpercentile(values, [tail, 100 - tail])
    return float(low), float(high)

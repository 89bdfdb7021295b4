"""Task metrics on probe scores.

Multi-class: accuracy and macro-F1 over the known classes. Multi-label and detection:
mAP (mean over classes of average precision) and macro ROC-AUC, each over the classes
that the evaluated split can score (AP needs a positive; AUC a positive and a negative).
"""

from __future__ import annotations

import numpy as np

TASK_KINDS = ("multiclass", "multilabel", "detection")
PRIMARY_METRIC = {"multiclass": "accuracy", "multilabel": "mAP", "detection": "mAP"}


def multiclass_metrics(scores: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """``scores [N, C]`` (any monotone score), ``targets [N]`` class indices."""
    from sklearn.metrics import f1_score

    predicted = scores.argmax(axis=1)
    return {
        "accuracy": float(np.mean(predicted == targets)) if len(targets) else float("nan"),
        "macro_f1": float(f1_score(targets, predicted, labels=np.arange(scores.shape[1]), average="macro",
                                   zero_division=0)) if len(targets) else float("nan"),
    }


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

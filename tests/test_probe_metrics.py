"""Probe metrics on hand-checked cases."""

from __future__ import annotations

import numpy as np
import pytest

from chorus.probe.metrics import task_metrics


def test_multiclass_accuracy_and_macro_f1():
    scores = np.array([[0.9, 0.1, 0], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0, 0.1, 0.9]])
    metrics = task_metrics("multiclass", scores, np.array([0, 1, 1, 2]))
    assert metrics["accuracy"] == pytest.approx(0.75)
    # class 0: P=1/2 R=1 F1=2/3; class 1: P=1 R=1/2 F1=2/3; class 2: F1=1
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)


def test_multilabel_map_and_auc_skip_classes_that_cannot_be_scored():
    scores = np.array([[0.9, 0.2, 0.5], [0.8, 0.6, 0.5], [0.1, 0.7, 0.5], [0.3, 0.1, 0.5]])
    targets = np.array([[1, 0, 0], [0, 1, 0], [0, 1, 0], [1, 0, 0]], dtype=np.float32)
    metrics = task_metrics("detection", scores, targets)
    # class 0: ranks 0.9(+) 0.8(-) 0.3(+) -> AP = (1 + 2/3) / 2; class 1 perfect; class 2 no positive
    assert metrics["mAP"] == pytest.approx(((1 + 2 / 3) / 2 + 1) / 2)
    assert metrics["roc_auc"] == pytest.approx((0.75 + 1.0) / 2)


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown task kind"):
        task_metrics("regression", np.zeros((1, 1)), np.zeros(1))

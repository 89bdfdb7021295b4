"""The one metrics module (chorus.metrics) on hand-checked cases and against scikit-learn;
probes, fine-tuning and evaluation report the same numbers under the same keys."""

from __future__ import annotations

import numpy as np
import pytest

import torch

from chorus.metrics import average_precision, probe_scores, task_metrics


def test_multiclass_accuracy_and_macro_f1():
    scores = np.array([[0.9, 0.1, 0], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0, 0.1, 0.9]])
    metrics = task_metrics("multiclass", scores, np.array([0, 1, 1, 2]))
    assert metrics["accuracy"] == pytest.approx(0.75)
    # class 0: P=1/2 R=1 F1=2/3; class 1: P=1 R=1/2 F1=2/3; class 2: F1=1
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)


def test_macro_f1_equals_scikit_learn_with_absent_classes():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    targets = rng.integers(0, 5, 40)  # classes 5 and 6 never true; 6 maybe predicted
    scores = rng.standard_normal((40, 7))
    expected = f1_score(targets, scores.argmax(1), average="macro", zero_division=0)
    assert task_metrics("multiclass", scores, targets)["macro_f1"] == pytest.approx(expected)


def test_probe_finetune_and_evaluate_report_the_same_metrics():
    from chorus.evaluate import evaluate_logits
    from chorus.train.metrics import classification_metrics

    rng = np.random.default_rng(2)
    targets = rng.integers(0, 4, 30)  # class 4 of 5 never true
    logits = rng.standard_normal((30, 5))
    classes = [f"c{i}" for i in range(5)]
    probe = task_metrics("multiclass", logits, targets)
    finetune = classification_metrics(torch.from_numpy(logits).float(), torch.from_numpy(targets), "multiclass")
    evaluate = evaluate_logits(logits, [[classes[t]] for t in targets], [None] * 30, classes, "multiclass")["overall"]
    for key in ("accuracy", "macro_f1"):
        assert probe[key] == pytest.approx(finetune[key], abs=1e-6) == pytest.approx(evaluate[key], abs=1e-6)


def test_batched_average_precision_equals_scikit_learn_with_ties():
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(1)
    scores = rng.integers(0, 4, (3, 30, 5)).astype(np.float32)  # many tied scores
    targets = (rng.random((30, 5)) < 0.3).astype(np.float32)
    targets[:, 4] = 0  # a class without positives is nan, left out of the mean
    ap = average_precision(torch.from_numpy(scores), torch.from_numpy(targets)).numpy()
    for probe in range(3):
        expected = [average_precision_score(targets[:, c], scores[probe, :, c]) for c in range(4)]
        np.testing.assert_allclose(ap[probe, :4], expected, rtol=1e-6)
        assert np.isnan(ap[probe, 4])
        assert probe_scores(torch.from_numpy(scores), torch.from_numpy(targets))[probe] == pytest.approx(np.mean(expected))


def test_multilabel_map_and_auc_skip_classes_that_cannot_be_scored():
    scores = np.array([[0.9, 0.2, 0.5], [0.8, 0.6, 0.5], [0.1, 0.7, 0.5], [0.3, 0.1, 0.5]])
    targets = np.array([[1, 0, 0], [0, 1, 0], [0, 1, 0], [1, 0, 0]], dtype=np.float32)
    metrics = task_metrics("detection", scores, targets)
    # class 0: ranks 0.9(+) 0.8(-) 0.3(+) -> AP = (1 + 2/3) / 2; class 1 perfect; class 2 no positive
    assert metrics["map"] == pytest.approx(((1 + 2 / 3) / 2 + 1) / 2)
    assert metrics["roc_auc"] == pytest.approx((0.75 + 1.0) / 2)


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown task kind"):
        task_metrics("regression", np.zeros((1, 1)), np.zeros(1))

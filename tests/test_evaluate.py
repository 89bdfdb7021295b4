"""Evaluation metrics on hand-made logits, the λ sweep and ``chorus evaluate`` on tone data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _mergedata import toy_vector
from _toydata import tone_manifest
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from chorus.encoders import load_encoder
from chorus.evaluate import evaluate_logits, evaluate_model, load_eval_audio
from chorus.taskvec.merge import (apply_directions, build_classifier, compose_heads, plan_merge, sweep_lambda,
                                  write_composed_model)
from chorus.taskvec.merge.compose import base_state, resolve_base
from chorus.taskvec.merge.registry import MergeError

CLASSES = ["a1", "a2", "b1", "b2"]


def test_multiclass_metrics_overall_per_group_and_within_group():
    logits = np.array([[3, 0, 0, 0], [0, 2, 3, 0], [0, 0, 1, 4], [0, 0, 0, 5], [1, 0, 0, 0]], dtype=float)
    labels = [("a1",), ("a2",), ("b1",), ("b2",), ("zz",)]
    groups = ["A", "A", "B", "B", "B"]
    result = evaluate_logits(logits, labels, groups, CLASSES, "multiclass")
    overall = result["overall"]
    assert overall["accuracy"] == pytest.approx(2 / 5)
    assert result["unknown_labels"] == ["zz"]
    truth = ["a1", "a2", "b1", "b2", "zz"]
    predicted = [CLASSES[i] for i in logits.argmax(axis=1)]  # the zz clip is a false positive of a1
    assert overall["macro_f1"] == pytest.approx(f1_score(truth, predicted, labels=CLASSES, average="macro"))
    probabilities = np.exp(logits[:4]) / np.exp(logits[:4]).sum(axis=1, keepdims=True)
    onehot = np.eye(4)
    assert overall["map"] == pytest.approx(np.mean([average_precision_score(onehot[:, c], probabilities[:, c])
                                                    for c in range(4)]))
    assert overall["roc_auc"] == pytest.approx(roc_auc_score(onehot, probabilities, average="macro"))
    assert result["per_group"]["A"]["accuracy"] == pytest.approx(0.5)
    # the a2 clip lost to b1; among group A's own labels it wins
    assert result["per_group"]["A"]["accuracy_within_group"] == pytest.approx(1.0)
    assert result["per_group"]["B"]["accuracy"] == pytest.approx(1 / 3)
    assert result["per_group"]["B"]["accuracy_within_group"] == pytest.approx(1 / 3)


def test_multilabel_metrics():
    logits = np.array([[2.0, -2.0, 1.0], [-1.0, 3.0, -3.0], [0.5, 0.2, -0.1]])
    labels = [("x", "z"), ("y",), ("x",)]
    result = evaluate_logits(logits, labels, [None] * 3, ["x", "y", "z"], "multilabel")["overall"]
    truth = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 0]])
    scores = 1 / (1 + np.exp(-logits))
    assert result["map"] == pytest.approx(np.mean([average_precision_score(truth[:, c], scores[:, c]) for c in range(3)]))
    assert result["subset_accuracy"] == pytest.approx(2 / 3)  # clip 3 also predicts y (0.55)


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return tone_manifest(tmp_path_factory.mktemp("tones"))


@pytest.fixture(scope="module")
def tone_vectors():
    base = load_encoder("toy-cnn")
    return [toy_vector(base, "g1", ["g1/high", "g1/low"], seed=1), toy_vector(base, "g2", ["g2/buzz", "g2/mid"], seed=2)]


def test_sweep_scores_every_lambda_and_picks_the_best_normalized_accuracy(tones, tone_vectors):
    plan = plan_merge(tone_vectors, "task_arithmetic")
    audio = load_eval_audio(tones.select(split="valid").clips, 16_000)
    state = base_state(resolve_base(tone_vectors), plan.fingerprint)
    result = sweep_lambda(plan, ["zscore", "none"], state, audio, [0.0, 0.5, 2.0])
    assert [(row["lambda"], row["calibration"]) for row in result.rows] == [
        (lam, cal) for lam in (0.0, 0.5, 2.0) for cal in ("zscore", "none")]
    assert set(result.references) == {"g1", "g2"} and all(0 <= v <= 1 for v in result.references.values())
    for row in result.rows:
        expected = np.mean([row["scores"][g] / result.references[g] for g in ("g1", "g2")])
        assert row["normalized"] == pytest.approx(expected)
        assert all(row["within"][g] >= row["scores"][g] for g in ("g1", "g2"))
    best = max(result.rows, key=lambda r: (r["normalized"], r["normalized_within"], -r["lambda"]))
    assert (result.best, result.calibration) == (best["lambda"], best["calibration"])
    # the sweep's scores are the composed model's own scores on those clips
    model = build_classifier(plan, compose_heads(tone_vectors, "none"), apply_directions(state, plan.directions(), 0.5))
    accuracy = evaluate_model(model, audio)["per_group"]["g1"]["accuracy"]
    assert accuracy == pytest.approx(next(r for r in result.rows if r["lambda"] == 0.5 and r["calibration"] == "none")
                                     ["scores"]["g1"])
    with pytest.raises(MergeError, match="no clips of group 'g2'"):
        sweep_lambda(plan, ["zscore"], state, audio.of_groups(["g1"]), [1.0])


def test_cli_evaluate_writes_metrics_and_confusion(run_cli, tones, tone_vectors, tmp_path):
    plan = plan_merge(tone_vectors, "mean")
    write_composed_model(plan, compose_heads(tone_vectors), resolve_base(tone_vectors), tmp_path / "model")
    result = run_cli("evaluate", tmp_path / "model", "--data", tones.source, "--split", "test", "--out", tmp_path / "ev")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["overall"]["clips"] == 8 and set(metrics["per_group"]) == {"g1", "g2"}
    assert (tmp_path / "ev" / "confusion.png").stat().st_size > 1000
    confusion = json.loads((tmp_path / "ev" / "confusion.json").read_text())
    assert sum(map(sum, confusion["counts"])) == 8
    assert "g1" in result.output and "accuracy" in result.output

"""Evaluation metrics on hand-made logits, the λ sweep and ``chorus evaluate`` on tone data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _mergedata import toy_vector
from _toydata import tone_manifest
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from chorus.encoders import load_encoder
from chorus.evaluate import evaluate_logits, evaluate_model
from chorus.data.clipset import load_eval_audio
from chorus.merging import sweep_lambda
from chorus.taskvec.merge import apply_directions, build_classifier, compose_heads, plan_merge, write_composed_model
from chorus.taskvec.merge.compose import base_state, resolve_base
from chorus.taskvec.merge.heads import GroupGate
from chorus.taskvec.merge.errors import HeadCompatibilityError
from chorus.taskvec.merge.errors import MergeError

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
    result = sweep_lambda(plan, ["zscore", "none"], state, audio, [0.0, 0.5, 2.0], gates=[0.0, 1.0])
    assert [(row["lambda"], row["gate"], row["calibration"]) for row in result.rows] == [
        (lam, gate, cal) for lam in (0.0, 0.5, 2.0) for gate in (0.0, 1.0) for cal in ("zscore", "none")]
    assert set(result.references) == {"g1", "g2"} and all(0 <= v <= 1 for v in result.references.values())
    for row in result.rows:
        expected = np.mean([row["scores"][g] / result.references[g] for g in ("g1", "g2")])
        assert row["normalized"] == pytest.approx(expected)
        assert all(row["within"][g] >= row["scores"][g] for g in ("g1", "g2"))
    best = max(result.rows, key=lambda r: (r["normalized"], r["normalized_within"], -r["gate"], -r["lambda"]))
    assert (result.best, result.calibration) == (best["lambda"], best["calibration"])
    assert (result.gate.strength if result.gate else 0.0) == best["gate"]
    # the sweep's scores are the composed model's own scores on those clips
    model = build_classifier(plan, compose_heads(tone_vectors, "none"), apply_directions(state, plan.directions(), 0.5))
    accuracy = evaluate_model(model, audio)["per_group"]["g1"]["accuracy"]
    assert accuracy == pytest.approx(next(r for r in result.rows if r["lambda"] == 0.5 and r["calibration"] == "none"
                                          and r["gate"] == 0.0)["scores"]["g1"])
    with pytest.raises(MergeError, match="no clips of group 'g2'"):
        sweep_lambda(plan, ["zscore"], state, audio.of_groups(["g1"]), [1.0])


def test_group_gate_is_a_linear_discriminant_folded_into_the_heads(tone_vectors, tmp_path):
    gen = torch.Generator().manual_seed(0)
    features = torch.cat([torch.randn(20, 32, generator=gen) + 3, torch.randn(20, 32, generator=gen) - 3])
    groups = ["g1"] * 20 + ["g2"] * 20
    gate = GroupGate.fit(features, groups, strength=0.5)
    scores = features @ gate.weight.T + gate.bias
    assert (scores.argmax(1) == torch.tensor([0] * 20 + [1] * 20)).all()
    plain, gated = compose_heads(tone_vectors, "none"), compose_heads(tone_vectors, "none", gate)
    assert gated.gate == 0.5
    expected = plain.logits(features) + 0.5 * scores[:, [0, 0, 1, 1]]
    torch.testing.assert_close(gated.logits(features), expected, rtol=1e-5, atol=1e-4)
    gate.save(tmp_path / "gate.safetensors")
    loaded = GroupGate.load(tmp_path / "gate.safetensors", 0.5)
    assert loaded.groups == ["g1", "g2"] and torch.equal(loaded.weight, gate.weight)
    with pytest.raises(HeadCompatibilityError, match="knows no group 'g2'"):
        compose_heads(tone_vectors, "none", GroupGate.fit(features[:20], ["g1"] * 20))


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


def test_recipe_with_a_sweep_saves_lambda_calibration_and_gate_and_reproduces(tones, tone_vectors, tmp_path):
    import json

    import yaml

    from chorus.merging import run_merge
    from chorus.taskvec.merge import load_recipe, parse_recipe

    paths = [vector.save(tmp_path / group) for vector, group in zip(tone_vectors, ("g1", "g2"))]
    recipe = parse_recipe({"method": "ties", "vectors": [str(p) for p in paths],
                           "sweep": {"data": str(tones.source), "lambdas": [0.5, 1.0], "gates": [1.0]}})
    record = run_merge(recipe, tmp_path / "merged")
    assert record["sweep"]["best_lambda"] == record["lambda"] and record["gate"]["strength"] == 1.0
    saved = yaml.safe_load((tmp_path / "merged" / "recipe.yaml").read_text())
    assert saved["gate"] == {"file": "gate.safetensors", "strength": 1.0} and saved["sweep"] is None
    assert saved["lambda"] == record["lambda"] and saved["calibration"] == record["calibration"]
    again = run_merge(load_recipe(tmp_path / "merged" / "recipe.yaml"), tmp_path / "again")
    files = json.loads((tmp_path / "merged" / "model.json").read_text())["files"]
    assert json.loads((tmp_path / "again" / "model.json").read_text())["files"] == files
    assert again["labels"] == record["labels"]


def test_cli_merge_with_a_sweep_prints_the_sweep(run_cli, tones, tone_vectors, tmp_path):
    paths = [vector.save(tmp_path / group) for vector, group in zip(tone_vectors, ("g1", "g2"))]
    result = run_cli("merge", "--method", "mean", "-v", paths[0], "-v", paths[1], "--sweep-data", tones.source,
                     "--out", tmp_path / "merged")
    assert result.exit_code == 0, result.output
    assert "λ sweep" in result.output and " * " in result.output.replace("│", " ").replace("\t", " ")
    assert (tmp_path / "merged" / "recipe.yaml").is_file()

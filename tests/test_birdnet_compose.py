"""BirdNET's original species head as a chorus model, and composed with custom heads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from _mergedata import toy_vector
from _toydata import tone_manifest

from chorus.encoders import load_encoder
from chorus.model import ClassifierModel, ClassifierSettings
from chorus.model.birdnet_head import BirdNETHeadError, original_classifier, original_head, tiny_labels
from chorus.merging import run_merge
from chorus.taskvec.merge import HeadCompatibilityError, RecipeError, compose_heads, load_recipe, parse_recipe
from chorus.taskvec.merge.heads import BaseHead, headwide_calibration

SETTINGS = ClassifierSettings(layer="embedding", pooling="mean", clip_seconds=3.0, task="multiclass")
SHARED = tiny_labels(12)[3]
GROUPS = {"birds": ["birds/a", SHARED], "frogs": ["frogs/a", "frogs/b"], "bugs": ["bugs/a"]}


def windows(count: int = 4) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    t = torch.arange(144_000) / 48_000
    waves = [0.3 * torch.sin(2 * torch.pi * (500 + 700 * i) * t) + 0.05 * torch.randn(144_000, generator=gen)
             for i in range(count)]
    waves[-1] = torch.zeros(144_000)
    return torch.stack(waves)


@pytest.fixture(scope="module")
def base():
    return load_encoder("birdnet-tiny")


@pytest.fixture(scope="module")
def paths(base, tmp_path_factory):
    root = tmp_path_factory.mktemp("tv")
    out = []
    for seed, (group, labels) in enumerate(GROUPS.items()):
        toy_vector(base, group, labels, seed, settings=SETTINGS, width=32).save(root / group)
        out.append(root / group)
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("audio")
    tone_manifest(root, sample_rate=48_000, seconds=3.0)
    return root / "manifest.csv"


def test_the_original_head_as_a_chorus_model_gives_birdnets_logits(tmp_path):
    model = original_classifier("birdnet-tiny")
    assert model.task == "multilabel" and model.labels == tiny_labels(12)
    waves = windows()
    with torch.no_grad():
        _, logits = model.encoder.classify(waves)
        ours = model(waves, torch.full((len(waves),), 144_000))
    assert torch.allclose(ours, logits, atol=1e-5)
    model.save_pretrained(tmp_path / "m")
    again = ClassifierModel.from_pretrained(tmp_path / "m")
    with torch.no_grad():
        assert torch.allclose(again(waves, torch.full((len(waves),), 144_000)), logits, atol=1e-5)
    with pytest.raises(BirdNETHeadError, match="not a BirdNET"):
        original_head(load_encoder("toy-cnn"))


def test_the_real_birdnet_head_equals_classify_on_real_windows():
    model = original_classifier("birdnet")
    assert len(model.labels) == 6522 and all("_" in label for label in model.labels)
    waves = windows(3)
    with torch.no_grad():
        _, logits = model.encoder.classify(waves)
        ours = model(waves, torch.full((3,), 144_000))
    assert (ours - logits).abs().max() < 1e-4
    assert torch.equal(ours.topk(5).indices, logits.topk(5).indices)


def test_without_task_vectors_the_original_scores_are_only_calibrated(base):
    head = original_head(base)
    features = torch.randn(20, 32)
    logits = features @ head.weight.T + head.bias
    calibration = headwide_calibration(logits)
    composed = compose_heads([], "zscore", base_head=BaseHead("birdnet", head.labels, head.weight, head.bias,
                                                               "embedding", "mean", calibration))
    assert composed.labels == head.labels
    expected = (logits - calibration.logit_mean[0]) / calibration.logit_std[0]
    assert torch.allclose(composed.logits(features), expected, atol=1e-5)
    assert torch.equal(composed.logits(features).argmax(1), logits.argmax(1))


def test_merge_with_the_original_head_has_the_union_of_labels_and_one_shared_class(paths, data, tmp_path, base):
    recipe = parse_recipe({"method": "task_arithmetic", "vectors": [str(p) for p in paths], "lambda": 0.0,
                           "calibration": "zscore", "base_head": {"kind": "birdnet", "data": str(data)}})
    record = run_merge(recipe, tmp_path / "merged")
    model = ClassifierModel.from_pretrained(tmp_path / "merged")
    birdnet = tiny_labels(12)
    custom = [label for labels in GROUPS.values() for label in labels]
    assert sorted(model.labels) == sorted(set(custom) | set(birdnet))
    assert len(model.labels) == len(custom) + len(birdnet) - 1 and model.labels.count(SHARED) == 1
    assert record["shared_labels"] == {SHARED: ["birds", "birdnet"]}
    assert [entry.group for entry in model.head_entries] == ["birds", "frogs", "bugs", "birdnet"]
    head = record["base_head"]
    assert head["windows"] == 8 and head["classes"] == 12
    # λ = 0: the encoder is BirdNET's, so its species scores are its logits, z-scored head-wide
    waves = windows()
    with torch.no_grad():
        _, logits = base.classify(waves)
        ours = model(waves, torch.full((len(waves),), 144_000))
    index = [model.labels.index(label) for label in birdnet if label != SHARED]
    expected = (logits - head["logit_mean"]) / head["logit_std"]
    kept = [i for i, label in enumerate(birdnet) if label != SHARED]
    assert torch.allclose(ours[:, index], expected[:, kept], atol=1e-4)
    saved = load_recipe(tmp_path / "merged" / "recipe.yaml")  # paths saved relative to the model folder
    assert saved.base_head is not None and saved.base_head.data == str(Path(data).resolve())


def test_base_head_needs_calibration_windows_and_the_same_layer(paths, data, base, tmp_path):
    with pytest.raises(RecipeError, match="base_head needs windows"):
        parse_recipe({"method": "task_arithmetic", "vectors": [str(paths[0])], "base_head": "birdnet"})
    other = toy_vector(base, "x", ["x/a"], 7, settings=SETTINGS.model_copy(update={"layer": "block1-1"}), width=16)
    other.save(tmp_path / "other")
    recipe = parse_recipe({"method": "task_arithmetic", "vectors": [str(tmp_path / "other")],
                           "base_head": {"data": str(data)}})
    with pytest.raises(HeadCompatibilityError, match="fine-tune with --layer embedding"):
        run_merge(recipe, tmp_path / "refused")
    assert not (tmp_path / "refused" / "model.json").exists()


def test_cli_merge_with_base_head_and_birdnet_model(run_cli, paths, data, tmp_path):
    result = run_cli("merge", "--method", "task_arithmetic", "--vector", paths[0], "--vector", paths[1],
                     "--base-head", "birdnet", "--base-head-data", data, "--out", tmp_path / "m")
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "m" / "merge.json").read_text())
    assert record["base_head"]["classes"] == 12 and len(record["labels"]) == 2 + 2 + 12 - 1
    result = run_cli("birdnet-model", "--encoder", "birdnet-tiny", "--out", tmp_path / "head")
    assert result.exit_code == 0, result.output
    assert ClassifierModel.from_pretrained(tmp_path / "head").labels == tiny_labels(12)


def test_a_sweep_scores_with_the_original_head_and_keeps_its_retention(base, data, tmp_path):
    labels = {"g1": ["g1/low", "g1/high"], "g2": ["g2/mid", "g2/buzz", SHARED]}
    paths = []
    for seed, (group, names) in enumerate(labels.items()):
        toy_vector(base, group, names, seed, settings=SETTINGS, width=32).save(tmp_path / group)
        paths.append(str(tmp_path / group))
    recipe = parse_recipe({"method": "task_arithmetic", "vectors": paths, "calibration": "zscore",
                           "sweep": {"data": str(data), "lambdas": [1.0, 3.0], "gates": [0]},
                           "base_head": {"retention": 1.0}})
    record = run_merge(recipe, tmp_path / "swept")
    rows = record["sweep"]["rows"]
    assert sorted({row["lambda"] for row in rows}) == [0.0, 1.0, 3.0]
    assert all(0.0 <= row["retention"] <= 1.0 for row in rows)
    chosen = next(row for row in rows if row["lambda"] == record["lambda"])
    assert chosen["retention"] == 1.0
    assert record["base_head"]["windows"] == 8 and len(record["labels"]) == 4 + 12
    with pytest.raises(RecipeError, match="retention needs a sweep"):
        parse_recipe({"method": "task_arithmetic", "vectors": paths, "base_head": {"data": str(data), "retention": 0.9}})

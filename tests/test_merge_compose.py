"""Composing heads over the union of labels, recipes, the merged model directory, refusals."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from _mergedata import GROUPS, SETTINGS, saved_vectors, toy_vector

from chorus.encoders import load_encoder
from chorus.model import ClassifierModel, HeadEntry
from chorus.taskvec import BaseMismatchError, TaskVector
from chorus.taskvec.merge import HeadCompatibilityError, MergeError, RecipeError, compose_heads, load_recipe, parse_recipe
from chorus.merging import run_merge


@pytest.fixture(scope="module")
def base():
    return load_encoder("toy-cnn")


@pytest.fixture(scope="module")
def paths(base, tmp_path_factory):
    return saved_vectors(tmp_path_factory.mktemp("tv"), base)


@pytest.fixture(scope="module")
def vectors(paths):
    return [TaskVector.load(p) for p in paths]


def raw_logits(vector, features):
    (weight, bias), = vector.head_tensors()
    return features @ weight.T + bias


def test_union_of_labels_with_zscore_calibration_folded_into_the_heads(vectors):
    heads = compose_heads(vectors, "auto")
    assert heads.calibration == "zscore"
    assert heads.labels == ["birds/a", "birds/b", "shared", "frogs/a", "bugs/a", "bugs/b"]
    assert [e.group for e in heads.entries] == ["birds", "frogs", "bugs"]
    assert heads.shared == {"shared": ["birds", "frogs"]}
    features = torch.randn(5, 32, generator=torch.Generator().manual_seed(0))
    composed = torch.cat([features @ w.T + b for w, b in heads.tensors], dim=1)
    z = {}
    for vector in vectors:
        cal = vector.heads[0].calibration
        scores = (raw_logits(vector, features) - torch.tensor(cal.logit_mean)) / torch.tensor(cal.logit_std)
        for column, label in enumerate(vector.heads[0].labels):
            z.setdefault(label, []).append(scores[:, column])
    expected = torch.stack([torch.stack(z[label]).mean(dim=0) for label in heads.labels], dim=1)
    torch.testing.assert_close(composed, expected, rtol=1e-5, atol=1e-5)


def test_temperature_and_raw_calibrations(vectors):
    features = torch.randn(4, 32, generator=torch.Generator().manual_seed(1))
    bugs = vectors[2]
    for method, scale in (("temperature", bugs.heads[0].calibration.temperature), ("none", 1.0)):
        heads = compose_heads(vectors, method)
        weight, bias = heads.tensors[2]
        torch.testing.assert_close(features @ weight.T + bias, raw_logits(bugs, features) / scale)


def test_incompatible_or_headless_vectors_are_refused_naming_both_sides(base, vectors):
    other_layer = toy_vector(base, "owls", ["owls/a"], seed=5, settings=SETTINGS.model_copy(update={"layer": "conv2"}),
                             width=32)
    with pytest.raises(HeadCompatibilityError) as caught:
        compose_heads([vectors[0], other_layer])
    message = str(caught.value)
    assert "task vector 1 (owls)" in message and "'conv2'" in message and "task vector 0 (birds)" in message
    assert "'conv3'" in message
    headless = TaskVector.from_models(base, base)
    with pytest.raises(HeadCompatibilityError, match="carries no classification head"):
        compose_heads([vectors[0], headless])
    uncalibrated = toy_vector(base, "owls", ["owls/a"], seed=6)
    uncalibrated.manifest.heads[0].calibration = None
    with pytest.raises(HeadCompatibilityError, match="no calibration statistics.*calibration: none"):
        compose_heads([vectors[0], uncalibrated], "zscore")
    assert compose_heads([vectors[0], uncalibrated], "none").labels[-1] == "owls/a"


def test_recipe_runs_writes_a_loadable_model_and_reproduces_from_its_saved_recipe(paths, tmp_path, base):
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(yaml.safe_dump({
        "method": "ties", "params": {"density": 0.5},
        "vectors": [str(paths[0]), {"path": str(paths[1]), "weight": 2.0}, str(paths[2])]}))
    record = run_merge(load_recipe(recipe_file), tmp_path / "merged")
    assert record["method"] == "ties" and record["lambda"] == 1.0 and record["vectors"][1]["weight"] == 2.0
    model = ClassifierModel.from_pretrained(tmp_path / "merged")
    assert model.labels == record["labels"] and len(model.labels) == 6
    saved = load_recipe(tmp_path / "merged" / "recipe.yaml")
    assert saved.lambda_ == 1.0 and saved.params == {"density": 0.5, "scope": "per_tensor", "sign": "mass"}
    assert saved.calibration == "zscore"
    run_merge(saved, tmp_path / "again")
    files = json.loads((tmp_path / "merged" / "config.json").read_text())["files"]
    assert json.loads((tmp_path / "again" / "config.json").read_text())["files"] == files
    waves, lengths = torch.randn(2, 8000), torch.tensor([8000, 6000])
    assert model.predict_scores(waves, lengths).shape == (2, 6)


def test_recipe_validation_errors_are_clear(tmp_path, paths):
    with pytest.raises(MergeError, match="unknown merge method 'avg'"):
        parse_recipe({"method": "avg", "vectors": [str(paths[0])]})
    with pytest.raises(RecipeError, match="vectors: List should have at least 1 item"):
        parse_recipe({"method": "mean", "vectors": []})
    with pytest.raises(RecipeError, match=r"either lambda \(and gate\) or sweep"):
        parse_recipe({"method": "mean", "vectors": ["a"], "lambda": 1.0, "sweep": {"data": "v.csv"}})
    bad = tmp_path / "bad.yaml"
    bad.write_text("method: [unclosed\n")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(bad)


def test_merging_onto_another_base_is_refused_and_writes_nothing(paths, tmp_path):
    head = HeadEntry(group="bugs", labels=GROUPS["bugs"])
    other = ClassifierModel(load_encoder("toy-cnn", pretrained=False, seed=3), [head], SETTINGS)
    other.save_pretrained(tmp_path / "other")
    recipe = parse_recipe({"method": "mean", "vectors": [str(p) for p in paths], "base": str(tmp_path / "other")})
    with pytest.raises(BaseMismatchError):
        run_merge(recipe, tmp_path / "out")
    assert not (tmp_path / "out" / "config.json").exists()
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_cli_merge_with_flags_and_list_methods(run_cli, paths, tmp_path):
    result = run_cli("merge", "--list-methods")
    assert result.exit_code == 0 and "iso_c" in result.output and "Yadav" in result.output
    result = run_cli("merge", "--method", "dare", "-v", paths[0], "-v", paths[2], "-p", "density=0.7", "-p", "ties=true",
                     "--out", tmp_path / "dare")
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((tmp_path / "dare" / "recipe.yaml").read_text())
    assert saved["params"] == {"density": 0.7, "rescale": True, "ties": True, "sign": "mass"} and saved["lambda"] == 1.0
    result = run_cli("merge", "--method", "ties", "-v", paths[0], "-p", "density=2", "--out", tmp_path / "bad")
    assert result.exit_code == 2 and "density" in result.output


def test_an_altered_delta_file_is_caught_during_the_merge_and_nothing_is_written(paths, tmp_path):
    import shutil

    from chorus.tensorfile import IntegrityError

    altered = tmp_path / "altered"
    shutil.copytree(paths[1], altered)
    data = bytearray((altered / "deltas.safetensors").read_bytes())
    data[-3] ^= 0x10
    (altered / "deltas.safetensors").write_bytes(bytes(data))
    recipe = parse_recipe({"method": "mean", "vectors": [str(paths[0]), str(altered)]})
    with pytest.raises(IntegrityError, match="sha256 mismatch"):
        run_merge(recipe, tmp_path / "out")
    assert not (tmp_path / "out" / "model.safetensors").exists()
    assert not list((tmp_path / "out").glob(".encoder*"))

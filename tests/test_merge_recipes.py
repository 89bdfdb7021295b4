"""Recipes: mergekit's key names, per-vector density, output dtype, relative saved paths,
every problem of a bad recipe reported at once."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import yaml
from _mergedata import saved_vectors
from safetensors import safe_open

from chorus.encoders import load_encoder
from chorus.merging import open_vectors, run_merge
from chorus.model import ClassifierModel
from chorus.taskvec.merge import MergeError, RecipeError, load_recipe, parse_recipe
from chorus.taskvec.merge.stream import plan_merge

# mergekit's README TIES example, adapted to task vectors: each model is a task-vector folder
# (relative to the recipe file), the base model a registered encoder; gradients and filters
# (lists of values) are not supported, so each weight and density is one number.
MERGEKIT_TIES = """\
models:
  - model: tv/birds
    parameters:
      density: 1.0
      weight: 1.0
  - model: tv/frogs
    parameters:
      density: 0.5
      weight: 0.3
  - model: tv/bugs
    parameters:
      density: 0.33
      weight: 0.5
merge_method: ties
base_model: toy-cnn
parameters:
  normalize: true
  int8_mask: true
dtype: float16
"""

CHORUS_TIES = """\
method: ties
vectors:
  - {path: tv/birds, weight: 1.0, density: 1.0}
  - {path: tv/frogs, weight: 0.3, density: 0.5}
  - {path: tv/bugs, weight: 0.5, density: 0.33}
base: toy-cnn
dtype: float16
"""


@pytest.fixture(scope="module")
def base():
    return load_encoder("toy-cnn")


@pytest.fixture(scope="module")
def folder(base, tmp_path_factory):
    """A folder with ``tv/{birds,frogs,bugs}`` task vectors."""
    root = tmp_path_factory.mktemp("recipes")
    saved_vectors(root / "tv", base)
    return root


def _encoder_dtypes(model_dir) -> set:
    with safe_open(str(model_dir / "encoder.safetensors"), framework="pt") as handle:
        return {handle.get_slice(name).get_dtype() for name in handle.keys()}


def test_mergekit_recipe_merges_like_the_same_chorus_recipe(folder, tmp_path, run_cli):
    (folder / "mergekit.yaml").write_text(MERGEKIT_TIES)
    (folder / "chorus.yaml").write_text(CHORUS_TIES)
    assert load_recipe(folder / "mergekit.yaml") == load_recipe(folder / "chorus.yaml")
    result = run_cli("merge", folder / "mergekit.yaml", "--out", tmp_path / "mk")
    assert result.exit_code == 0, result.output
    assert run_cli("merge", folder / "chorus.yaml", "--out", tmp_path / "ch").exit_code == 0
    files = json.loads((tmp_path / "mk" / "model.json").read_text())["files"]
    assert json.loads((tmp_path / "ch" / "model.json").read_text())["files"] == files
    record = json.loads((tmp_path / "mk" / "merge.json").read_text())
    assert record["method"] == "ties" and [v["density"] for v in record["vectors"]] == [1.0, 0.5, 0.33]
    assert [v["weight"] for v in record["vectors"]] == [1.0, 0.3, 0.5]
    model = ClassifierModel.from_pretrained(tmp_path / "mk")
    assert model.predict_scores(torch.randn(2, 8000), torch.tensor([8000, 8000])).shape == (2, 6)


def test_mergekit_method_names_parameters_and_the_listed_base(folder):
    data = yaml.safe_load(MERGEKIT_TIES)
    data["merge_method"] = "dare_ties"
    data["models"].insert(0, {"model": "toy-cnn"})  # mergekit lists the base among the models
    data["parameters"] = {"lambda": 0.7, "rescale": False}
    recipe = parse_recipe(data, "mergekit.yaml", folder)
    assert recipe.method == "dare" and recipe.params["ties"] is True and recipe.params["rescale"] is False
    assert recipe.lambda_ == 0.7 and [v.path for v in recipe.vectors] == ["tv/birds", "tv/frogs", "tv/bugs"]
    data["merge_method"] = "task_arithmetic"
    data["parameters"] = {"normalize": True}
    with pytest.raises(RecipeError, match=r"parameters\.normalize: Extra inputs"):
        parse_recipe(data, "mergekit.yaml", folder)


def _kept_fraction(plan) -> float:
    directions = plan.directions()
    kept = sum(int((directions[name] != 0).sum()) for name in plan.parameters)
    return kept / sum(directions[name].numel() for name in plan.parameters)


@pytest.mark.parametrize("method, params", [("ties", {"scope": "per_tensor"}), ("ties", {"scope": "global"}),
                                            ("breadcrumbs", {"gamma": 0.0}), ("dare", {"rescale": False})])
def test_per_vector_density_keeps_that_fraction_of_each_vector(folder, method, params):
    vectors, _ = open_vectors([folder / "tv" / "birds", folder / "tv" / "frogs"])
    weights = [1.0, 0.0]  # only the first vector reaches the direction

    def fraction(densities):
        return _kept_fraction(plan_merge(vectors, method, params, weights, densities=densities))

    assert fraction([1.0, 0.2]) == pytest.approx(1.0, abs=1e-3)
    assert fraction([0.2, 1.0]) == pytest.approx(0.2, abs=0.02)
    same = plan_merge(vectors, method, {**params, "density": 0.2}, weights).directions()
    own = plan_merge(vectors, method, {**params, "density": 0.7}, weights, densities=[0.2, None]).directions()
    assert all(torch.equal(same[name], own[name]) for name in same)


def test_per_vector_density_is_refused_by_methods_without_one(folder, run_cli, tmp_path):
    with pytest.raises(RecipeError, match="method 'mean' takes no per-vector density"):
        parse_recipe({"method": "mean", "vectors": [{"path": "tv/birds", "density": 0.5}]}, "r.yaml", folder)
    vectors, _ = open_vectors([folder / "tv" / "birds"])
    with pytest.raises(MergeError, match="takes no per-vector density"):
        plan_merge(vectors, "task_arithmetic", densities=[0.5])
    result = run_cli("merge", "--method", "mean", "-v", folder / "tv" / "birds", "--density", "0.5",
                     "--out", tmp_path / "m")
    assert result.exit_code == 2 and "per-vector density" in result.output and not (tmp_path / "m").exists()


@pytest.mark.parametrize("dtype, expected", [(None, "F32"), ("float16", "F16"), ("bfloat16", "BF16")])
def test_output_dtype_is_the_dtype_of_the_written_encoder(folder, tmp_path, run_cli, dtype, expected):
    args = ["--dtype", dtype] if dtype else []
    result = run_cli("merge", "--method", "ties", "-v", folder / "tv" / "birds", "-v", folder / "tv" / "frogs",
                     "--density", "1", "--density", "0.2", *args, "--out", tmp_path / "m")
    assert result.exit_code == 0, result.output
    floating = _encoder_dtypes(tmp_path / "m") - {"I64"}  # BatchNorm's counters stay integers
    assert floating == {expected}
    saved = yaml.safe_load((tmp_path / "m" / "recipe.yaml").read_text())
    assert saved["dtype"] == dtype and [v["density"] for v in saved["vectors"]] == [1.0, 0.2]
    model = ClassifierModel.from_pretrained(tmp_path / "m")
    assert torch.isfinite(model.predict_scores(torch.randn(1, 8000), torch.tensor([8000]))).all()


def test_the_saved_recipe_holds_relative_paths_that_resolve(folder, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(folder / "tv", project / "tv")
    out = project / "runs" / "merged"
    run_merge(load_recipe(_write(project / "recipe.yaml", CHORUS_TIES)), out)
    saved = yaml.safe_load((out / "recipe.yaml").read_text())
    assert [v["path"] for v in saved["vectors"]] == ["../../tv/birds", "../../tv/frogs", "../../tv/bugs"]
    assert saved["base"] == "toy-cnn"
    again = load_recipe(out / "recipe.yaml")
    assert [v.path for v in again.vectors] == [str((project / "tv" / g).resolve()) for g in ("birds", "frogs", "bugs")]
    moved = tmp_path / "moved"  # the model folder and the vectors moved together: still reproducible
    project.rename(moved)
    run_merge(load_recipe(moved / "runs" / "merged" / "recipe.yaml"), tmp_path / "again")
    files = json.loads((moved / "runs" / "merged" / "model.json").read_text())["files"]
    assert json.loads((tmp_path / "again" / "model.json").read_text())["files"] == files


def _write(path, text):
    path.write_text(text)
    return path


SIX_PROBLEMS = {
    "chorus": ("""\
method: avg
vectors:
  - tv/birds
  - {path: tv/missing, weight: .nan}
  - {path: tv/frogs, density: 1.5}
seed: abc
colour: red
""", ["method: unknown merge method 'avg'", "vectors.1.weight: Input should be a finite number",
      "vectors.2.density: Input should be less than or equal to 1", "seed: Input should be a valid integer",
      "colour: Extra inputs are not permitted", "vectors.1.path: no task-vector folder 'tv/missing'"]),
    "mergekit": ("""\
models:
  - model: toy-cnn
  - model: tv/missing
    parameters: {weight: .nan}
  - model: tv/frogs
    parameters: {density: 1.5}
merge_method: avg
base_model: toy-cnn
dtype: float8
colour: red
""", ["merge_method: unknown merge method 'avg'", "models.1.parameters.weight: Input should be a finite number",
      "models.2.parameters.density: Input should be less than or equal to 1", "dtype: Input should be 'float32'",
      "colour: Extra inputs are not permitted", "models.1.model: no task-vector folder 'tv/missing'"]),
}


@pytest.mark.parametrize("style", sorted(SIX_PROBLEMS))
def test_a_recipe_reports_all_six_problems_at_once(folder, tmp_path, run_cli, style):
    text, expected = SIX_PROBLEMS[style]
    recipe = _write(folder / f"six-{style}.yaml", text)
    with pytest.raises(RecipeError) as caught:
        load_recipe(recipe)
    lines = str(caught.value).splitlines()
    assert lines[0] == f"{recipe}: 6 problems in the recipe" and len(lines) == 7
    for line, problem in zip(lines[1:], expected):
        assert line.startswith(f"{recipe}: {problem}"), (line, problem)
    result = run_cli("merge", recipe, "--out", tmp_path / "m")
    assert result.exit_code == 2 and "Traceback" not in result.output and not (tmp_path / "m").exists()
    assert all(problem in result.output for problem in expected)

"""Numbers are checked: a merge refuses non-finite weights, λ and parameters, never writes
a non-finite tensor, and every JSON chorus writes is strict (no NaN / Infinity)."""

from __future__ import annotations

import json
import math

import pytest

from chorus.fileio import write_json
from chorus.taskvec.merge import MergeError, RecipeError, parse_recipe
from chorus.taskvec.merge.registry import get_method


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_recipes_refuse_non_finite_weights_and_lambda(bad):
    for data in ({"method": "mean", "vectors": [{"path": "a", "weight": bad}]},
                 {"method": "mean", "lambda": bad, "vectors": [{"path": "a"}]}):
        with pytest.raises(RecipeError, match="finite"):
            parse_recipe(data, "recipe.yaml")


def test_method_parameters_refuse_nan():
    with pytest.raises(MergeError, match="finite"):
        get_method("ties").parse({"density": math.nan})


def test_write_json_turns_non_finite_numbers_into_null(tmp_path):
    write_json(tmp_path / "m.json", {"a": math.nan, "b": [1.0, math.inf], "c": {"d": -math.inf}, "e": 2.5})
    text = (tmp_path / "m.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": [1.0, None], "c": {"d": None}, "e": 2.5}


def test_a_merge_never_writes_a_non_finite_tensor(tmp_path):
    from _mergedata import saved_vectors

    from chorus.encoders import load_encoder
    from chorus.taskvec import TaskVector
    from chorus.taskvec.merge.sources import StateDictSource
    from chorus.taskvec.merge.stream import plan_merge, write_merged_encoder

    base = load_encoder("toy-cnn")
    vectors = [TaskVector.load(path) for path in saved_vectors(tmp_path / "tv", base)]
    plan = plan_merge(vectors, "task_arithmetic", weights=[1e10] * len(vectors))
    out = tmp_path / "merged" / "encoder.safetensors"
    with pytest.raises(MergeError, match="non-finite"):  # finite weights and λ, but θ0 + λ·Σwτ overflows float32
        write_merged_encoder(plan, StateDictSource(base.state_dict()), out, lam=1e38)
    assert not out.exists() and not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


def test_a_failed_merge_leaves_no_folder_behind(tmp_path):
    from _mergedata import saved_vectors

    from chorus.encoders import load_encoder
    from chorus.merging import run_merge

    paths = saved_vectors(tmp_path / "tv", load_encoder("toy-cnn"))
    recipe = parse_recipe({"method": "task_arithmetic", "lambda": 1e38,
                           "vectors": [{"path": str(p), "weight": 1e10} for p in paths]}, "recipe.yaml")
    with pytest.raises(MergeError, match="non-finite"):
        run_merge(recipe, tmp_path / "out" / "merged")
    assert not (tmp_path / "out").exists()

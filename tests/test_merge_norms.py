"""Norm mismatch: the ratio in analyze, the warning in merge.json and the CLI, --equalize-norms."""

from __future__ import annotations

import json
import math

import pytest
import torch
from _mergedata import saved_vectors
from safetensors.torch import load_file

from chorus.analysis import AnalysisSettings
from chorus.analysis.study import analyze
from chorus.encoders import load_encoder
from chorus.taskvec import TaskVector
from chorus.taskvec.merge.norms import equalizing_scales, norm_ratio, norm_warning


def test_ratio_warning_and_scales():
    assert norm_ratio([2.0, 8.0, 4.0]) == 4.0 and norm_ratio([0.0, 0.0]) == 1.0 and math.isinf(norm_ratio([0.0, 1.0]))
    assert norm_warning([1.0, 2.9], ["a", "b"]) is None
    line = norm_warning([1.0, 4.0, 2.0], ["a", "b", "c"])
    assert "4.0x" in line and "b has" in line and "a 1" in line
    assert equalizing_scales([1.0, 3.0, 0.0]) == (2.0, 2.0 / 3.0, 1.0)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("norms")
    base = load_encoder("toy-cnn")
    paths = saved_vectors(root, base)[:2]
    (5.0 * TaskVector.load(paths[1])).save(root / "loud")  # trained "longer": 5x the norm
    return base, [paths[0], root / "loud"]


def _norm(vector: TaskVector) -> float:
    return math.sqrt(sum(float(vector.tensor(n).double().square().sum()) for n in vector.keys()
                         if not n.startswith("buffers.")))


def test_merge_warns_about_the_mismatch_and_equalize_norms_rescales(run_cli, setup, tmp_path):
    base, paths = setup
    norms = [_norm(TaskVector.load(p)) for p in paths]
    plain = run_cli("merge", "--method", "task_arithmetic", "-v", paths[0], "-v", paths[1], "--lambda", "1",
                    "--out", tmp_path / "plain")
    assert plain.exit_code == 0, plain.output
    assert "warning" in plain.output and "differ" in plain.output
    record = json.loads((tmp_path / "plain" / "merge.json").read_text())
    assert len(record["warnings"]) == 1 and record["norms"]["scales"] is None
    assert record["norms"]["values"] == pytest.approx(norms, rel=1e-5)
    assert record["norms"]["ratio"] == pytest.approx(norms[1] / norms[0], rel=1e-5) and record["norms"]["ratio"] > 3

    equal = run_cli("merge", "--method", "task_arithmetic", "-v", paths[0], "-v", paths[1], "--lambda", "1",
                    "--equalize-norms", "--out", tmp_path / "equal")
    assert equal.exit_code == 0, equal.output
    assert "warning" not in equal.output
    record = json.loads((tmp_path / "equal" / "merge.json").read_text())
    mean = sum(norms) / 2
    assert record["warnings"] == [] and record["norms"]["scales"] == pytest.approx([mean / n for n in norms], rel=1e-5)
    merged = load_file(tmp_path / "equal" / "model.safetensors")
    vectors = [TaskVector.load(p) for p in paths]
    name = "blocks.1.0.weight"
    expected = base.state_dict()[name] + sum(mean / n * v.tensor(name) for n, v in zip(norms, vectors))
    torch.testing.assert_close(merged["encoder." + name], expected, rtol=1e-5, atol=1e-6)


def test_analyze_reports_the_norm_ratio(setup):
    _, paths = setup
    vectors = [TaskVector.load(p) for p in paths]
    summary = analyze(vectors, settings=AnalysisSettings(ranks=False))["summary"]
    assert summary["norm_ratio"] == pytest.approx(_norm(vectors[1]) / _norm(vectors[0]), rel=1e-5)

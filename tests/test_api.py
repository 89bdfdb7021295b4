"""The top-level Python API: the functions the CLI runs, importable from ``chorus``."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pandas as pd
import pytest

import chorus
from _fakehub import FakeHub
from _mergedata import saved_vectors
from _predictdata import recordings, toy_model
from _probe_data import tone_manifest


def test_import_chorus_is_cheap_and_names_the_cli_functions():
    loaded = subprocess.run([sys.executable, "-c", "import sys, chorus; print(sorted(m for m in sys.modules "
                             "if m.split('.')[0] in ('torch', 'pandas') or m.startswith('chorus.')))"],
                            capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
    from chorus.encoders import load_encoder
    from chorus.merging.api import merge
    from chorus.taskvec import TaskVector

    assert chorus.load_encoder is load_encoder and chorus.TaskVector is TaskVector and chorus.merge is merge
    assert callable(chorus.probe) and {"load_model", "probe", "merge"} <= set(dir(chorus))
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        chorus.nothing  # noqa: B018


def test_load_model_predict_equals_the_cli_csv(tmp_path, run_cli, monkeypatch):
    model_dir = toy_model(tmp_path / "model")
    (tmp_path / "audio").mkdir()
    paths = recordings(tmp_path / "audio")
    result = run_cli("predict", model_dir, *paths, "--out", tmp_path / "cli", "--format", "csv", "--threshold", "0.3",
                     "--window", "1", "--workers", "1")
    assert result.exit_code == 0, result.output
    expected = pd.read_csv(tmp_path / "cli" / "chorus-predictions.csv")
    assert len(expected) > 0 and list(expected.columns) == ["path", "start", "end", "label", "score"]
    model = chorus.load_model(model_dir)
    table = model.predict(paths, threshold=0.3, window=1.0)
    pd.testing.assert_frame_equal(table, expected)
    import huggingface_hub

    hub = FakeHub(tmp_path / "hub")
    shutil.copytree(model_dir, hub.root / "lab" / "toy")
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda: hub)
    pd.testing.assert_frame_equal(chorus.load_model("lab/toy").predict(paths, threshold=0.3, window=1.0), expected)
    assert model.predict(paths[:1], threshold=1.0).empty  # a score never exceeds 1: no detection, same columns
    assert list(model.predict(paths[:1], threshold=1.0).columns) == list(expected.columns)


def test_merge_takes_a_recipe_mapping_like_the_cli(tmp_path, run_cli, monkeypatch):
    paths = saved_vectors(tmp_path / "vectors")
    cli = run_cli("merge", "--method", "ties", *sum((["--vector", p] for p in paths), []), "--param", "density=0.5",
                  "--out", tmp_path / "cli")
    assert cli.exit_code == 0, cli.output
    monkeypatch.chdir(tmp_path)
    record = chorus.merge({"method": "ties", "params": {"density": 0.5},
                           "vectors": [str(p.relative_to(tmp_path)) for p in paths]}, tmp_path / "api")
    assert record["method"] == "ties" and len(record["vectors"]) == 3
    assert (tmp_path / "api" / "model.safetensors").read_bytes() == (tmp_path / "cli" / "model.safetensors").read_bytes()
    assert chorus.load_model(tmp_path / "api").labels == chorus.load_model(tmp_path / "cli").labels


def test_probe_writes_the_report_and_checks_the_task(tmp_path):
    from chorus.probe.errors import ProbeConfigError
    from chorus.probe.runner import ProbeConfig, TrainConfig

    manifest = tone_manifest(tmp_path / "tones", per_class=5)
    from chorus.data.manifest import write_manifest

    write_manifest(manifest, tmp_path / "manifest.csv")
    config = ProbeConfig(poolings=("mean",), train=TrainConfig(learning_rates=(0.1,), c_values=(1.0,), epochs=3))
    report = chorus.probe("toy-cnn", tmp_path / "manifest.csv", tmp_path / "out", config)
    assert report["encoder"] == "toy-cnn" and report["task"] == "multiclass"
    assert set(report["files"]) >= {"json", "html"} and (tmp_path / "out" / "report.html").is_file()
    with pytest.raises(ProbeConfigError, match="holds a multiclass task, not multilabel"):
        chorus.probe("toy-cnn", tmp_path / "manifest.csv", tmp_path / "again", config, task="multilabel")

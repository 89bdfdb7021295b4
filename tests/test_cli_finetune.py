"""``chorus finetune`` end to end on toy-cnn and a tone manifest."""

from __future__ import annotations

import json

import torch

from _toydata import tone_manifest
from chorus.encoders import load_encoder
from chorus.taskvec import TaskVector
from chorus.taskvec.fingerprint import base_fingerprint


def test_finetune_command_writes_model_task_vector_and_metrics(run_cli, tmp_path):
    tone_manifest(tmp_path / "data")
    out = tmp_path / "out"
    result = run_cli("finetune", "--encoder", "toy-cnn", "--data", tmp_path / "data" / "manifest.csv", "--out", out,
                     "--group", "g1,g2", "--epochs", "2", "--batch-size", "4", "--lr", "3e-3", "--patience", "0",
                     "--creator", "test lab", "--license", "cc-by-4.0", "--gram", "--class-stats")
    assert result.exit_code == 0, result.output
    assert "valid_accuracy" in result.output and "task vector:" in result.output
    manifest = json.loads((out / "taskvector" / "taskvector.json").read_text())
    assert manifest["group"] == "g1+g2" and manifest["creator"] == "test lab"
    assert len(manifest["heads"][0]["labels"]) == 4
    assert manifest["gram"] == {"computed_on": "finetuned", "clips": 16}  # --gram: the training clips
    assert len(json.loads((out / "metrics.json").read_text())["epochs"]) == 2
    # --class-stats: the training clips' pooled features on the base encoder, as `tv stats` computes them
    stats = manifest["classstats"]
    assert stats["clips"] == 16 and stats["labels"] == manifest["heads"][0]["labels"]
    assert stats["computed_on"] == base_fingerprint(load_encoder("toy-cnn").state_dict())
    stored = TaskVector.load(out / "taskvector").class_stats()
    again = run_cli("tv", "stats", out / "taskvector", "--data", tmp_path / "data" / "manifest.csv")
    assert again.exit_code == 0, again.output
    recomputed = TaskVector.load(out / "taskvector").class_stats()
    assert torch.equal(stored.counts, recomputed.counts)
    torch.testing.assert_close(stored.means, recomputed.means, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(stored.scatter, recomputed.scatter, rtol=1e-6, atol=1e-6)
    info = run_cli("tv", "info", out / "taskvector")
    assert info.exit_code == 0 and "g1+g2" in info.output


def test_finetune_command_reports_bad_settings_and_bad_manifests(run_cli, tmp_path):
    tone_manifest(tmp_path / "data")
    bad = run_cli("finetune", "--encoder", "toy-cnn", "--data", tmp_path / "data" / "manifest.csv", "--out",
                  tmp_path / "out", "--method", "everything")
    assert bad.exit_code == 2 and "bad settings: method" in bad.output
    missing = run_cli("finetune", "--encoder", "toy-cnn", "--data", tmp_path / "nope.csv", "--out", tmp_path / "out")
    assert missing.exit_code == 2 and "nope.csv" in missing.output


def test_finetune_native_pooling_resolves_to_the_encoders(run_cli, tmp_path):
    tone_manifest(tmp_path / "data")
    out = tmp_path / "out"
    result = run_cli("finetune", "--encoder", "sfx-cnn-tiny", "--data", tmp_path / "data" / "manifest.csv", "--out",
                     out, "--pooling", "native", "--epochs", "1", "--batch-size", "8", "--patience", "0")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "model" / "config.json").read_text())["classifier"]["pooling"] == "max"


def test_finetune_command_prints_the_frozen_probe_baseline_and_warns_below_it(run_cli, tmp_path):
    tone_manifest(tmp_path / "data")
    out = tmp_path / "out"
    result = run_cli("finetune", "--encoder", "toy-cnn", "--data", tmp_path / "data" / "manifest.csv", "--out", out,
                     "--group", "g1", "--epochs", "2", "--batch-size", "4", "--lr", "30", "--head-lr", "30",
                     "--warmup", "0", "--patience", "0", "--no-keep-probe", "--layer-decay", "0.5",
                     "--pooling", "mean+max")
    assert result.exit_code == 0, result.output
    assert "frozen probe: loss" in result.output and "below its frozen-probe baseline on test" in result.output
    probe = json.loads((out / "metrics.json").read_text())["probe"]
    assert probe["kept"] is False and probe["test"]["accuracy"] > json.loads(
        (out / "metrics.json").read_text())["test"]["accuracy"]
    training = json.loads((out / "taskvector" / "taskvector.json").read_text())["training"]
    assert training["probe_metrics"]["test_accuracy"] == probe["test"]["accuracy"]
    assert training["settings"]["layer_decay"] == 0.5 and training["settings"]["keep_probe"] is False


def test_finetune_command_defaults_are_the_library_defaults():
    import typer.main

    from chorus.cli.main import build_app
    from chorus.finetune.config import FinetuneConfig

    command = typer.main.get_command(build_app()).commands["finetune"]
    defaults = FinetuneConfig()
    shared = [p for p in command.params if p.name in FinetuneConfig.model_fields]
    assert {p.name for p in shared} >= {"lr", "head_lr", "layer_decay", "warmup", "ema", "keep_probe", "monitor"}
    for param in shared:
        expected = getattr(defaults, param.name)
        assert param.default == (expected if not isinstance(expected, list) else None), param.name

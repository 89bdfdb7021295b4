"""`chorus embed` and `chorus probe` from the command line."""

from __future__ import annotations

import json

import pytest

from _probe_data import tone_manifest
from chorus.data.manifest import Clip, write_manifest
from chorus.features import read_embeddings


@pytest.fixture(scope="module")
def manifest_path(tmp_path_factory):
    root = tmp_path_factory.mktemp("tones")
    manifest = tone_manifest(root, per_class=5)
    broken = root / "broken.wav"
    broken.write_bytes(b"RIFF....WAVEfmt garbage")
    manifest.clips.append(Clip(broken, ("low",), "train"))
    write_manifest(manifest, root / "manifest.csv")
    return root / "manifest.csv"


def test_embed_writes_parquet_rows_and_resumes(manifest_path, tmp_path, run_cli):
    first = run_cli("embed", "--encoder", "toy-cnn", "--data", manifest_path, "--out", tmp_path / "emb")
    assert first.exit_code == 3, first.output  # partial: the broken file is reported, the rest embedded
    assert "15 clips embedded, 0 already done, 1 failed" in first.output and "broken.wav" in first.output
    table = read_embeddings(tmp_path / "emb")
    assert table.num_rows == 15
    assert {"path", "labels", "split", "layer_conv1", "layer_conv2", "layer_conv3"} <= set(table.column_names)
    assert table.column("layer_conv2").type.list_size == 32
    again = run_cli("embed", "--encoder", "toy-cnn", "--data", manifest_path, "--out", tmp_path / "emb")
    assert again.exit_code == 3 and "0 clips embedded, 15 already done, 1 failed" in again.output
    other = run_cli("embed", "--encoder", "toy-cnn", "--data", manifest_path, "--out", tmp_path / "emb", "--dtype",
                    "float16")
    assert other.exit_code == 2 and "store.json" in other.output and "dtype" in other.output


def test_probe_command_writes_the_report(manifest_path, tmp_path, run_cli):
    result = run_cli("probe", "--encoder", "toy-cnn", "--data", manifest_path, "--out", tmp_path / "out",
                     "--pooling", "mean,attention", "--lr", "0.01,0.1", "--epochs", "8", "--noise-snr", "0,-10",
                     "--random-init", "--pitch-shift", "2", "--monitor", "loss", "--eval-every", "2", "--l2", "0.02",
                     "--average", "0", "--C", "0.1,1")
    assert result.exit_code == 3, result.output  # partial: broken.wav is reported, the rest probed
    report = json.loads((tmp_path / "out" / "probe.json").read_text())
    assert set(report["conditions"]) == {"default", "random-init", "pitch x2"}
    assert report["learning_rates"] == [0.01, 0.1] and report["noise_snrs"] == [0.0, -10.0]
    assert report["c_values"] == [0.1, 1.0] and report["training"]["solver"] == "lbfgs"
    chosen = report["conditions"]["default"]["poolings"]
    assert chosen["mean"]["best"]["C"] in (0.1, 1.0) and chosen["attention"]["best"]["learning_rate"] in (0.01, 0.1)
    assert report["training"]["monitor"] == "loss" and report["training"]["eval_every"] == 2
    assert report["training"]["weight_decay"] == 0.02 and report["training"]["average"] == 0
    assert [f["path"] for f in report["failures"]] == [str(manifest_path.parent / "broken.wav")]
    assert "random-init" in result.output and "report:" in result.output


@pytest.mark.parametrize("arguments, message", [
    (("--encoder", "no-such-encoder"), "unknown encoder"),
    (("--pooling", "median"), "poolings must be among mean, max"),
    (("--noise-snr", "loud"), "comma-separated numbers"),
    (("--task", "multilabel"), "multiclass task"),
    (("--pitch-shift", "0"), "[0.05, 20]"),
    (("--monitor", "accuracy"), "monitor must be one of metric, loss"),
    (("--C", "0,1"), "c_values must be positive"),
    (("--dtype", "float64"), "float32 or float16"),
])
def test_probe_command_rejects_bad_options(manifest_path, tmp_path, run_cli, arguments, message):
    result = run_cli("probe", "--data", manifest_path, "--out", tmp_path, "--encoder", "toy-cnn", *arguments)
    assert result.exit_code == 2 and message in " ".join(result.output.split())
    assert "Traceback" not in result.output

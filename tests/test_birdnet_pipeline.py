"""birdnet-tiny through the generic commands: embed + probe, finetune to a task vector."""

from __future__ import annotations

import json

from _toydata import tone_manifest


def test_probe_and_finetune_run_on_birdnet(run_cli, tmp_path):
    tone_manifest(tmp_path / "data")
    manifest = tmp_path / "data" / "manifest.csv"
    probe = run_cli("probe", "--encoder", "birdnet-tiny", "--data", manifest, "--out", tmp_path / "probe")
    assert probe.exit_code == 0, probe.output
    out = tmp_path / "ft"
    result = run_cli("finetune", "--encoder", "birdnet-tiny", "--data", manifest, "--out", out,
                     "--epochs", "1", "--batch-size", "4", "--patience", "0")
    assert result.exit_code == 0, result.output
    vector = json.loads((out / "taskvector" / "taskvector.json").read_text())
    assert vector["base"]["encoder"] == "birdnet-tiny"
    assert vector["base"]["architecture"]["family"] == "birdnet"

"""The first demo: synthetic data, per-layer probes, pretrained versus random weights."""

from __future__ import annotations

import json

from chorus import demo
from chorus.data.synth import make_config

TINY_DATA = make_config(groups=("birds", "insects"), species=2, clips_per_species=5, seconds=0.5,
                        sample_rate=16000, seed=1)


def test_run_demo_scores_every_layer_and_writes_results(tmp_path):
    result = demo.run_demo(tmp_path, config=TINY_DATA, encoder="sfx-cnn-tiny")
    assert [s.layer for s in result.layers] == ["block1", "block2", "block3", "block4"]
    assert result.clips == {"train": 12, "valid": 4, "test": 4}
    for score in result.layers:
        for value in (score.pretrained_valid, score.pretrained_test, score.random_valid, score.random_test):
            assert 0.0 <= value <= 1.0
    assert set(result.groups) == {"birds", "insects"}
    saved = json.loads((tmp_path / "demo-results.json").read_text())
    assert saved["margin"] == result.margin and saved["data"]["seed"] == 1
    assert (tmp_path / "data" / "manifest.csv").exists()


def test_demo_reports_unreadable_clips_and_goes_on(tmp_path):
    manifest = demo.generate_dataset(tmp_path, TINY_DATA)
    broken = manifest.clips[0].path
    broken.write_bytes(b"RIFF0000WAVEjunk")
    result = demo.compare("sfx-cnn-tiny", manifest)
    assert len(result.failed) == 1 and str(broken) in result.failed[0]
    assert sum(result.clips.values()) == len(manifest) - 1


def test_cli_demo_prints_the_table(run_cli, tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "DEMO_DATA", TINY_DATA)
    result = run_cli("demo", "--out", tmp_path, "--encoder", "sfx-cnn-tiny")
    assert result.exit_code == 0, result.output
    assert "block4" in result.output and "pretrained minus random" in result.output
    assert (tmp_path / "demo-results.json").exists()

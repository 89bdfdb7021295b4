"""Acceptance through the probe pipeline: on synthetic calls, the pretrained sfx-cnn's best
layer (chosen on valid) beats the same architecture with random weights
(``random_init``) by at least 10 test accuracy points."""

from __future__ import annotations

from chorus.data.synth import generate_dataset, make_config
from chorus.probe.runner import ProbeConfig, run_probe
from chorus.probe.task import task_from_manifest


def test_pretrained_sfx_cnn_probe_beats_random_init_by_ten_points(tmp_path):
    config = make_config(groups=("birds", "insects"), species=5, clips_per_species=10, seconds=0.6,
                         sample_rate=44_100, region="rainforest")
    task = task_from_manifest(generate_dataset(tmp_path / "data", config))
    report = run_probe("sfx-cnn", task, tmp_path / "cache", ProbeConfig(poolings=("mean",), random_init=True))
    best = {name: result["poolings"]["mean"]["best"] for name, result in report["conditions"].items()}
    pretrained, random = best["default"]["test"]["accuracy"], best["random-init"]["test"]["accuracy"]
    assert pretrained < 1.0  # not a trivial task
    assert pretrained - random >= 0.10, (pretrained, random)
    assert best["default"]["valid"]["accuracy"] > best["random-init"]["valid"]["accuracy"]

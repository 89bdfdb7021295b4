"""`chorus probe` runs with every registered encoder family, on its smallest registered
configuration (the tiny random configs; full-size backbones need hub weights)."""

from __future__ import annotations

import pytest

from _probe_data import tone_manifest
from chorus.encoders import encoder_specs
from chorus.probe.runner import ProbeConfig, run_probe
from chorus.probe.task import task_from_manifest
from chorus.probe.train import TrainConfig


def _smallest_per_family() -> dict[str, str]:
    chosen: dict[str, tuple[int, str]] = {}
    for spec in encoder_specs(include_test_configs=True):
        size = spec.num_parameters or 0
        if spec.family not in chosen or size < chosen[spec.family][0]:
            chosen[spec.family] = (size, spec.name)
    return {family: name for family, (_, name) in chosen.items()}


SMALLEST = _smallest_per_family()


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    return task_from_manifest(tone_manifest(tmp_path_factory.mktemp("tones"), per_class=5, seconds=(0.5, 0.9)))


def test_every_registered_encoder_has_a_probed_configuration():
    assert {spec.family for spec in encoder_specs(include_test_configs=True)} == set(SMALLEST)
    assert all(SMALLEST[spec.family] for spec in encoder_specs(include_test_configs=True))


@pytest.mark.parametrize("name", sorted(SMALLEST.values()))
def test_probe_runs_with_encoder(name, task, tmp_path):
    config = ProbeConfig(poolings=("mean", "max", "attention", "layer-sum"),
                         train=TrainConfig(learning_rates=(1e-2, 1e-1), epochs=3, patience=2), batch_size=4)
    report = run_probe(name, task, tmp_path, config)
    result = report["conditions"]["default"]
    assert not report["failures"]
    for pooling in ("mean", "attention"):
        slots = result["poolings"][pooling]["slots"]
        assert [s["layer"] for s in slots] == report["layers"]
        assert all(0.0 <= s["test"]["accuracy"] <= 1.0 for s in slots)
    assert set(result["poolings"]["layer-sum"]["layer_weights"]) == set(report["layers"])

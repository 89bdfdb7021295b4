"""The probe pipeline on tiny tone data: selection never reads test, ablations, report files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from _probe_data import tone_manifest
from chorus.audio import write_audio
from chorus.encoders import load_encoder
from chorus.probe.runner import ProbeConfig, StoreReader, open_probe_store, run_probe
from chorus.probe.sweep import evaluate, fit_and_select
from chorus.probe.errors import ProbeTaskError
from chorus.probe.task import task_from_manifest
from chorus.probe.train import TrainConfig
from chorus.features import ClipTransform, extract_features

FAST = TrainConfig(learning_rates=(1e-2, 1e-1), epochs=25, patience=5)


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    return task_from_manifest(tone_manifest(tmp_path_factory.mktemp("tones"), per_class=10))


def _selected(report):
    """Everything decided on train/valid, per condition and pooling (test metrics and intervals removed)."""
    def strip(entry):
        return {**entry, "slots": [{k: v for k, v in s.items() if k != "test"} for s in entry["slots"]],
                "best": {k: v for k, v in entry["best"].items() if k not in ("test", "ci95")}}
    return {c: {p: strip(e) for p, e in r["poolings"].items()} for c, r in report["conditions"].items()}


class GuardedReader:
    """A reader that refuses the test split until released."""

    def __init__(self, inner):
        self.inner, self.released, self.reads = inner, False, []

    def read(self, split):
        self.reads.append(split)
        if split == "test" and not self.released:
            raise AssertionError("test split read during selection")
        return self.inner.read(split)


def test_selection_never_reads_the_test_split(tmp_path, task):
    encoder = load_encoder("toy-cnn")
    store = open_probe_store(encoder, tmp_path, ClipTransform(), True, "float32")
    keys = extract_features(encoder, task.clips, store).keys
    guarded = GuardedReader(StoreReader(task, store, dict(enumerate(keys)), with_frames=True))
    selection = fit_and_select(guarded, task.kind, len(task.labels), ("mean", "attention", "layer-sum"), FAST)
    assert guarded.reads == ["train", "valid"]
    guarded.released = True
    tested = evaluate(selection, guarded.read("test"))
    assert set(tested) == {"mean", "attention", "layer-sum"} and len(tested["mean"]["slots"]) == 3


def test_changing_the_test_audio_changes_test_metrics_but_no_choice(tmp_path):
    task = task_from_manifest(tone_manifest(tmp_path, per_class=10))
    config = ProbeConfig(poolings=("mean", "layer-sum"), train=FAST)
    before = run_probe("toy-cnn", task, tmp_path / "cache", config)
    rng = np.random.default_rng(9)
    for clip in task.clips:
        if clip.split == "test":
            write_audio(clip.path, (0.3 * rng.standard_normal(8000)).astype(np.float32), 16_000)
    after = run_probe("toy-cnn", task, tmp_path / "cache", config)
    assert _selected(after) == _selected(before)
    assert after["conditions"]["default"]["extraction"]["computed"] == len(task.indices("test"))
    tests = lambda r: [s["test"] for s in r["conditions"]["default"]["poolings"]["mean"]["slots"]]  # noqa: E731
    assert tests(after) != tests(before)


def test_ablations_noise_random_init_and_pitch(tmp_path, task):
    poolings = ("mean", "max", "attention", "layer-sum")
    config = ProbeConfig(poolings=poolings, train=FAST, random_init=True, pitch_factors=(0.5,), noise_snrs=(0, -10))
    report = run_probe("toy-cnn", task, tmp_path / "cache", config)
    assert list(report["conditions"]) == ["default", "random-init", "pitch x0.5"]
    clean_only = run_probe("toy-cnn", task, tmp_path / "cache", ProbeConfig(poolings=poolings, train=FAST))
    assert _selected(clean_only)["default"] == _selected(report)["default"]  # noise touches test clips only
    assert clean_only["conditions"]["default"]["extraction"] == {"computed": 0, "reused": len(task.clips)}
    default = report["conditions"]["default"]
    assert set(default["noise"]) == {"0", "-10"}
    assert default["noise"]["-10"]["mean"]["best"] != default["poolings"]["mean"]["best"]["test"]
    assert default["extraction"]["computed"] == len(task.clips) + 2 * len(task.indices("test"))
    for condition in report["conditions"].values():
        for pooling in ("mean", "max", "attention"):
            assert len(condition["poolings"][pooling]["slots"]) == 3
        weights = condition["poolings"]["layer-sum"]["layer_weights"]
        assert set(weights) == {"conv1", "conv2", "conv3"} and sum(weights.values()) == pytest.approx(1.0)
    json.dumps(report)


def test_task_errors_list_every_problem(tmp_path):
    manifest = tone_manifest(tmp_path, per_class=1)
    manifest.clips[0] = manifest.clips[0].__class__(manifest.clips[0].path, ("low",), None)
    manifest.clips[1] = manifest.clips[1].__class__(manifest.clips[1].path, (), "train")
    with pytest.raises(ProbeTaskError) as error:
        task_from_manifest(manifest)
    message = str(error.value)
    assert "split None" in message and "expected one label" in message and "no clip in split 'valid'" in message


def test_report_files(tmp_path, task):
    from chorus.probe.report import write_probe_report

    config = ProbeConfig(poolings=("mean", "layer-sum"), train=FAST, random_init=True, noise_snrs=(-5,))
    report = run_probe("toy-cnn", task, tmp_path / "cache", config)
    paths = write_probe_report(report, tmp_path / "out")
    assert json.loads(paths["json"].read_text()) == json.loads(json.dumps(report))
    html = paths["html"].read_text()
    assert html.count("data:image/png;base64,") == 2 and "random-init" in html and "-5 dB" in html
    assert paths["layers"].read_bytes().startswith(b"\x89PNG") and paths["ablations"].exists()


def test_same_seed_same_report_bytes(tmp_path, task):
    from chorus.probe.report import write_probe_report

    config = ProbeConfig(poolings=("mean", "attention"), train=FAST, noise_snrs=(-5,))
    for run in ("a", "b"):
        write_probe_report(run_probe("toy-cnn", task, tmp_path / run / "cache", config), tmp_path / run)
    for name in ("probe.json", "layers.png", "report.html"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name

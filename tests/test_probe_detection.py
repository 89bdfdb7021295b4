"""Detection probing: long recordings + Raven selection tables -> labelled windows -> mAP."""

from __future__ import annotations

import pytest

from chorus.data.annotations import Event, write_raven
from chorus.data.manifest import Clip, Manifest, write_manifest
from chorus.data.synth import make_config, render_soundscape
from chorus.probe.runner import ProbeConfig, run_probe
from chorus.probe.errors import ProbeTaskError
from chorus.probe.task import detection_task
from chorus.probe.train import TrainConfig


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """Three 16 kHz soundscapes (train/valid/test) with their Raven tables next to them."""
    root = tmp_path_factory.mktemp("scapes")
    clips = []
    for index, split in enumerate(("train", "valid", "test")):
        config = make_config(groups=("birds", "anurans"), species=1, sample_rate=16_000, seed=index)
        wav = root / f"scape{index}.wav"
        calls = render_soundscape(wav, config, 16.0 if split == "train" else 10.0, calls_per_minute=60)
        write_raven(root / f"scape{index}.Table.1.selections.txt",
                    [Event(c.start_s, c.end_s, c.label, c.low_hz, c.high_hz) for c in calls])
        clips.append(Clip(wav, (), split))
    return Manifest(clips, root)


def test_windows_take_labels_from_overlapping_events(recordings):
    task = detection_task(recordings, window=1.0, hop=0.5)
    assert task.kind == "detection" and task.metric == "map"
    assert task.labels == ["anurans/sp01", "birds/sp01"]
    train = [c for c in task.clips if c.split == "train"]
    assert len(train) == 31 and train[1].start == 0.5 and train[1].end == 1.5
    assert any(c.labels for c in train) and any(not c.labels for c in train)
    assert task.targets(task.indices("test")).shape == (19, 2)


def test_unreadable_recordings_and_tables_are_skipped_and_reported(recordings, tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio")
    unannotated = tmp_path / "alone.wav"
    unannotated.write_bytes((recordings.clips[1].path).read_bytes())
    manifest = Manifest(recordings.clips + [Clip(broken, (), "train"), Clip(unannotated, (), "valid")], tmp_path)
    task = detection_task(manifest, window=1.0, hop=1.0)
    assert sorted(p for p, _ in task.skipped) == sorted([str(broken), str(unannotated)])
    with pytest.raises(ProbeTaskError, match="no clip in split 'test'"):
        detection_task(Manifest(recordings.clips[:2], tmp_path), window=1.0, hop=1.0)


def test_detection_probe_reports_map(recordings, tmp_path, run_cli):
    task = detection_task(recordings, window=1.0, hop=0.5)
    config = ProbeConfig(poolings=("mean",), train=TrainConfig(learning_rates=(1e-2, 1e-1), epochs=15))
    report = run_probe("toy-cnn", task, tmp_path / "cache", config)
    best = report["conditions"]["default"]["poolings"]["mean"]["best"]
    assert report["metric"] == "map" and set(best["test"]) == {"map", "roc_auc"} and 0 <= best["test"]["map"] <= 1
    manifest_path = recordings.root / "recordings.csv"
    write_manifest(recordings, manifest_path)
    result = run_cli("probe", "--encoder", "toy-cnn", "--data", manifest_path, "--out", tmp_path / "out",
                     "--task", "detection", "--window", "1", "--hop", "0.5", "--pooling", "mean", "--epochs", "5",
                     "--cache", tmp_path / "cache")
    assert result.exit_code == 0, result.output
    assert "map" in result.output and (tmp_path / "out" / "report.html").exists()

"""The real-run pipeline (``chorus distill-demo``) at toy size: tiny teachers and student,
tone clips in place of the FluidSynth notes (tests never need apt packages)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

import chorus.demos.distillation as demo
import chorus.distill.notes as notes
from chorus.data.manifest import Clip, Manifest, write_manifest

SETTINGS = demo.DistillDemoSettings(clips_per_species=5, notes_per_class=5, epochs=1, crepe_hop=1600, grid=(0.0, 1.0),
                             batch_size=8, sfx_teacher="sfx-cnn-tiny", pitch_teacher="crepe-micro",
                             student="student-cnn-tiny")


def _tone_notes(out_dir, config):
    """Three 'pitch classes' of noisy tones, 3/1/1 clips per split, 16 kHz."""
    rng = np.random.default_rng(0)
    t = np.arange(8000) / 16_000
    clips = []
    for label, hz in (("C", 262.0), ("E", 330.0), ("G", 392.0)):
        for index, split in enumerate(["train"] * 3 + ["valid", "test"]):
            path = out_dir / label / f"{index}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, (0.4 * np.sin(2 * np.pi * hz * (1 + 0.01 * index) * t)
                            + 0.05 * rng.standard_normal(t.size)).astype(np.float32), 16_000)
            clips.append(Clip(path.resolve(), (label,), split, "notes"))
    manifest = Manifest(clips, out_dir.resolve(), out_dir.resolve() / "manifest.csv")
    write_manifest(manifest, out_dir / "manifest.csv")
    return manifest


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    patch = pytest.MonkeyPatch()
    patch.setattr(notes, "generate_notes", _tone_notes)
    out = tmp_path_factory.mktemp("demo")
    record = demo.run_demo(out, SETTINGS)
    yield out, record, patch
    patch.undo()


def test_demo_scores_every_model_and_grid_point(run):
    out, record, _ = run
    assert set(record["scores"]) == {"θ0", "student-sfx", "student-pitch", "ensemble"}
    assert set(record["teacher_scores"]) == {"sfx-cnn-tiny", "crepe-micro"}
    assert 0 <= record["teacher_scores"]["crepe-micro"]["notes"]["accuracy"] <= 1
    assert [row["lambdas"] for row in record["sweep"]] == [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
    origin, only_sfx = record["sweep"][0], record["sweep"][2]
    assert origin["scores"] == record["scores"]["θ0"]  # θ0 + 0 τ1 + 0 τ2 is θ0
    assert only_sfx["scores"] == record["scores"]["student-sfx"]  # θ0 + τ_sfx is the sfx student
    assert any(record["best"]["lambdas"])  # the best merge, θ0 itself excluded
    assert record["best"]["worst"] == max(row["worst"] for row in record["sweep"] if any(row["lambdas"]))
    assert record["acceptance"]["passed"] == (record["best"]["worst"] >= 0.9)
    assert record["distill_clips"] == {"student-sfx": 24, "student-pitch": 9, "ensemble": 33}
    assert json.loads((out / "distill-demo.json").read_text())["best"] == record["best"]


def test_demo_writes_the_report_and_merges_with_chorus_merge(run):
    out, record, _ = run
    page = (out / "report.html").read_text()
    assert "Trade-off" in page and "ensemble" in page and "teacher crepe-micro" in page and (out / "tradeoff.png").stat().st_size > 1000
    assert record["merged"]["max_abs_difference_to_task_arithmetic"] < 1e-5
    assert (out / "merged" / "config.json").is_file() and len(record["merged"]["labels"]) == 8 + 3


def test_demo_rerun_reuses_the_cached_teacher_targets(run, monkeypatch):
    out, record, _ = run
    monkeypatch.setattr(demo, "compute_targets", lambda *a, **k: pytest.fail("teacher ran again"))
    again = demo.run_demo(out, SETTINGS)
    assert again["scores"] == record["scores"]

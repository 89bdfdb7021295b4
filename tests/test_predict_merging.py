"""How detections are merged (``--max-gap``, ``--max-length``, ``--no-merge``), and the
README's ``chorus predict`` recipe on a 1 s model: one detection per call, not one per file."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from chorus.audio import write_audio
from chorus.encoders import build_encoder
from chorus.model import ClassifierModel, ClassifierSettings, HeadEntry
from chorus.predict.detect import detections
from chorus.predict.scheduler import RecordingScores

RATE = 16_000
CALLS = (1.0, 5.0, 9.0)
"""Starts (s) of the 1 s tone calls in a 12 s recording of silence."""


def _scores(hits, hop=RATE // 2, window=RATE) -> RecordingScores:
    """One class; windows of 1 s every 0.5 s, scoring 1 where ``hits`` is true."""
    values = np.asarray(hits, np.float32)[:, None]
    starts = np.arange(len(values)) * hop
    valid = np.full(len(values), window)
    return RecordingScores(0, Path("r.wav"), RATE, starts, valid, values, int(starts[-1] + window))


def _spans(events):
    return [(e.begin, e.end) for e in events]


def test_max_gap_max_length_and_no_merge():
    scores = _scores([1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1])  # windows 0-1.5 s and 2.5-6 s
    thresholds = np.array([0.5])
    assert _spans(detections(scores, ["a"], thresholds)) == [(0.0, 1.5), (2.5, 6.0)]
    assert _spans(detections(scores, ["a"], thresholds, max_gap=1.0)) == [(0.0, 6.0)]
    assert _spans(detections(scores, ["a"], thresholds, max_gap=0.99)) == [(0.0, 1.5), (2.5, 6.0)]
    assert _spans(detections(scores, ["a"], thresholds, max_length=2.0)) == [(0.0, 1.5), (2.5, 4.5), (4.0, 6.0)]
    single = detections(scores, ["a"], thresholds, merge=False)
    assert len(single) == 8 and all(e.end - e.begin == 1.0 for e in single)


def _call_model(directory: Path) -> Path:
    """A toy-cnn model trained on 1 s clips whose class ``call`` scores above 0.5 on a
    1.5 kHz tone and below it on silence (its head set from the two feature vectors)."""
    torch.manual_seed(0)
    encoder = build_encoder({"family": "toy-cnn", "channels": [8, 8, 8]})
    model = ClassifierModel(encoder, [HeadEntry(labels=["call"])],
                            ClassifierSettings(layer="conv2", task="multilabel", clip_seconds=1.0)).eval()
    tone = 0.5 * torch.sin(2 * torch.pi * 1500 * torch.arange(RATE) / RATE)
    with torch.no_grad():
        quiet, loud = model.features(torch.stack([torch.zeros(RATE), tone]), torch.tensor([RATE, RATE]))
        direction = (loud - quiet) / (loud - quiet).norm() ** 2
        model.heads[0].weight.copy_(8 * direction[None, :])
        model.heads[0].bias.fill_(-8 * float(direction @ (loud + quiet)) / 2)
    return model.save_pretrained(directory)


def _recording(path: Path) -> Path:
    wave = np.zeros(12 * RATE, np.float32)
    for start in CALLS:
        begin = int(start * RATE)
        wave[begin:begin + RATE] = 0.5 * np.sin(2 * np.pi * 1500 * np.arange(RATE) / RATE)
    write_audio(path, wave, RATE)
    return path


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_readme_predict_recipe_finds_each_call(tmp_path, run_cli):
    model = _call_model(tmp_path / "model")
    _recording(tmp_path / "rec" / "field.wav")
    result = run_cli("predict", model, tmp_path / "rec", "-o", tmp_path / "out", "--hop", "0.5", "--format", "csv",
                     "--max-gap", "0.5", "--max-length", "10", "--workers", "1")
    assert result.exit_code == 0, result.output
    rows = _rows(tmp_path / "out" / "chorus-predictions.csv")
    assert len(rows) == len(CALLS), rows  # one per call, not one spanning the file
    for row, start in zip(rows, CALLS):
        assert float(row["start"]) <= start and start + 1.0 <= float(row["end"]) <= start + 1.5 + 1e-6
    assert "differs from the model's clip length" not in result.output

    windows = run_cli("predict", model, tmp_path / "rec", "-o", tmp_path / "one", "--hop", "0.5", "--format", "csv",
                      "--no-merge", "--workers", "1")
    single = _rows(tmp_path / "one" / "chorus-predictions.csv")
    assert windows.exit_code == 0 and len(single) > len(rows)
    assert all(round(float(r["end"]) - float(r["start"]), 6) == 1.0 for r in single)  # one row per window
    assert {float(r["start"]) for r in single} >= set(CALLS)

    old = run_cli("predict", model, tmp_path / "rec", "-o", tmp_path / "old", "--window", "3", "--hop", "1.5",
                  "--format", "csv", "--workers", "1")
    assert old.exit_code == 0 and "--window 3 s differs from the model's clip length 1 s" in old.output

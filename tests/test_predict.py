"""chorus predict: streamed windows, cross-file batching, detections, outputs, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from _predictdata import recordings, toy_model, tree_bytes
from chorus.audio import load_audio, stream_audio, write_audio
from chorus.data.annotations import read_raven
from chorus.data.windows import sliding_windows
from chorus.predict import (PredictSettings, RecordingScores, ThresholdFileError, WindowSpec, class_thresholds,
                            detections, predict, read_thresholds, score_recordings, stream_windows)

RATE = 16_000


@pytest.mark.parametrize("window, hop, block", [(1.0, 0.25, 0.37), (0.5, 0.8, 0.3), (2.0, 2.0, 5.0), (9.0, 1.0, 1.0)])
def test_windows_equal_slices_of_the_whole_file(tmp_path, window, hop, block):
    rng = np.random.default_rng(1)
    wave = rng.uniform(-0.5, 0.5, int(4.77 * RATE)).astype(np.float32)
    write_audio(tmp_path / "x.wav", wave, RATE, subtype="FLOAT")
    whole, _ = load_audio(tmp_path / "x.wav")
    got = list(stream_windows(tmp_path / "x.wav", WindowSpec(window, hop, RATE, block)))
    expected = [w for w in sliding_windows(len(whole) / RATE, window, hop) if w.start * RATE < len(whole)]
    assert [w.start for w in got] == [round(e.start * RATE) for e in expected]
    for item in got:
        piece = whole[item.start:item.start + int(window * RATE)]
        assert item.valid == len(piece) and item.samples.shape == (int(window * RATE),)
        assert np.array_equal(item.samples[:item.valid], piece) and not item.samples[item.valid:].any()


def test_resampled_windows_equal_slices_of_the_resampled_stream(tmp_path):
    wave = np.random.default_rng(2).uniform(-0.5, 0.5, 3 * 22_050).astype(np.float32)
    write_audio(tmp_path / "x.wav", wave, 22_050, subtype="FLOAT")
    whole = np.concatenate(list(stream_audio(tmp_path / "x.wav", 100.0, RATE)))
    got = list(stream_windows(tmp_path / "x.wav", WindowSpec(0.7, 0.3, RATE, 0.45)))
    for item in got:
        assert np.array_equal(item.samples[:item.valid], whole[item.start:item.start + item.valid])
    assert got[-1].start + got[-1].valid == len(whole)


def _mean_score(waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each row's mean over its valid samples and its batch row count (exposes batch leaks)."""
    mask = torch.arange(waveforms.shape[1])[None, :] < lengths[:, None]
    means = (waveforms * mask).sum(1) / lengths
    return torch.stack([means, torch.full_like(means, waveforms.shape[0])], dim=1)


def test_batches_mix_files_and_scores_do_not_depend_on_neighbours(tmp_path):
    paths = recordings(tmp_path, seconds=(3.0, 1.2, 2.5))
    spec = WindowSpec(0.5, 0.25, RATE, 0.3)
    calls: list[int] = []

    def score(waveforms, lengths):
        calls.append(waveforms.shape[0])
        return _mean_score(waveforms, lengths)

    together = {r.index: r for r in score_recordings(score, list(enumerate(paths)), spec, 2, batch_size=4, open_files=3)}
    assert set(calls) == {4}, "every batch has the same shape"
    windows = sum(len(r.starts) for r in together.values())
    assert len(calls) == -(-windows // 4), "batches are filled across files"
    for index, path in enumerate(paths):
        alone = next(score_recordings(_mean_score, [(index, path)], spec, 2, batch_size=4, open_files=1))
        assert np.array_equal(alone.scores, together[index].scores) and np.array_equal(alone.starts, together[index].starts)
        whole, _ = load_audio(path)
        first = whole[:spec.window_samples]
        assert alone.scores[0, 0] == pytest.approx(first.mean(), abs=1e-6)


def test_a_bad_file_fails_alone(tmp_path):
    paths = recordings(tmp_path, seconds=(1.0, 1.0))
    (tmp_path / "bad.wav").write_bytes(b"not audio")
    items = [(0, paths[0]), (1, tmp_path / "bad.wav"), (2, tmp_path / "missing.wav"), (3, paths[1])]
    results = {r.index: r for r in score_recordings(_mean_score, items, WindowSpec(0.5, 0.5, RATE), 2, 3, 2)}
    assert "bad.wav" in results[1].error and "file not found" in results[2].error
    assert results[0].error is None and results[3].error is None and len(results[3].starts) == 2


def _scores(values, hop=RATE, window=RATE, samples=None) -> RecordingScores:
    values = np.asarray(values, np.float32)
    starts = np.arange(len(values)) * hop
    valid = np.full(len(values), window)
    if samples is not None:
        valid[-1] = samples - starts[-1]
    return RecordingScores(0, Path("r.wav"), RATE, starts, valid, values, samples or int(starts[-1] + window))


def test_detections_merge_touching_windows_per_class_with_their_thresholds():
    scores = _scores([[0.9, 0.1], [0.6, 0.1], [0.2, 0.7], [0.8, 0.7]], samples=3 * RATE + 4000)
    events = detections(scores, ["a", "b"], class_thresholds(["a", "b"], 0.5, {"b": 0.65}))
    assert [(e.label, e.begin, e.end, round(e.score, 6)) for e in events] == [
        ("a", 0.0, 2.0, 0.9), ("b", 2.0, 3.25, 0.7), ("a", 3.0, 3.25, 0.8)]
    gapped = _scores([[0.9], [0.9]], hop=2 * RATE)
    assert len(detections(gapped, ["a"], np.array([0.5]))) == 2
    assert detections(_scores([[0.9], [0.9]], hop=RATE // 2), ["a"], np.array([0.95])) == []


def test_threshold_file_is_validated(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"b": 0.9}))
    assert read_thresholds(path, ["a", "b"], 0.3).tolist() == [0.3, 0.9]
    path.write_text(json.dumps({"zebra": 0.9}))
    with pytest.raises(ThresholdFileError, match="t.json.*zebra"):
        read_thresholds(path, ["a", "b"], 0.3)
    path.write_text("[1,")
    with pytest.raises(ThresholdFileError, match="not a JSON file"):
        read_thresholds(path, ["a", "b"], 0.3)


def test_predict_writes_every_format_skips_bad_files_and_resumes(tmp_path):
    model = toy_model(tmp_path / "model")
    paths = recordings(tmp_path / "rec")
    (tmp_path / "rec" / "broken.wav").write_bytes(b"RIFF junk")
    settings = PredictSettings(window=1.0, hop=0.5, format="raven", threshold=0.0, batch_size=4)
    report = predict(model, [tmp_path / "rec"], tmp_path / "out", settings, workers=1)
    assert [f.path.name for f in report.failures] == ["broken.wav"] and report.computed == 3
    events = read_raven(tmp_path / "out" / "rec1.selections.txt")
    assert {e.label for e in events} == {"a", "b", "c"} and max(e.end for e in events) == pytest.approx(12.0)
    combined = (tmp_path / "out" / "chorus-predictions.selections.txt").read_text().splitlines()
    assert [row.split("\t")[0] for row in combined[1:]] == [str(n) for n in range(1, len(combined))]
    assert combined[1].split("\t")[5:7] == ["0.000", "8000.000"]
    summary = json.loads((tmp_path / "out" / "chorus-predictions.json").read_text())
    assert "broken.wav" in summary["recordings"][0]["error"] and summary["recordings"][1]["output"] == "rec0.selections.txt"
    before = tree_bytes(tmp_path / "out")
    again = predict(model, [tmp_path / "rec"], tmp_path / "out", settings, workers=1)
    assert again.computed == 0 and again.reused == 3 and tree_bytes(tmp_path / "out") == before

    windows = predict(model, paths, tmp_path / "pq", PredictSettings(window=1.0, hop=0.5, format="parquet"), workers=1)
    table = pq.read_table(windows.combined)
    assert table.column_names == ["path", "start", "end", "a", "b", "c"]
    assert table.num_rows == sum(len(sliding_windows(s, 1.0, 0.5)) for s in (5.3, 12.0, 0.4))
    predict(model, paths[:1], tmp_path / "aud", PredictSettings(window=1.0, format="audacity", threshold=0.0), workers=1)
    assert (tmp_path / "aud" / "rec0.labels.txt").read_text().count("\n") >= 3


def test_cli_predict_csv_and_bad_threshold_file(tmp_path, run_cli):
    model = toy_model(tmp_path / "model")
    recordings(tmp_path / "rec", seconds=(2.0,))
    result = run_cli("predict", model, tmp_path / "rec", "--out", tmp_path / "out", "--format", "csv",
                     "--window", "0.5", "--threshold", "0", "--workers", "1")
    assert result.exit_code == 0, result.output
    assert "1 predicted" in result.output
    rows = (tmp_path / "out" / "chorus-predictions.csv").read_text().splitlines()
    assert rows[0] == "path,start,end,label,score" and len(rows) == 4
    (tmp_path / "t.json").write_text('{"nope": 0.5}')
    bad = run_cli("predict", model, tmp_path / "rec", "--out", tmp_path / "o2", "--class-thresholds", tmp_path / "t.json")
    assert bad.exit_code == 2 and "nope" in bad.output


def test_sigkill_mid_run_then_rerun_gives_identical_bytes(tmp_path, run_cli):
    model = toy_model(tmp_path / "model", channels=(64, 64, 64))
    recordings(tmp_path / "rec", seconds=(20.0,) * 8)
    args = ["predict", str(model), str(tmp_path / "rec"), "--window", "0.5", "--hop", "0.1", "--batch-size", "8",
            "--open-files", "1", "--workers", "1", "--format", "raven", "--threshold", "0.3"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    killed = tmp_path / "killed"
    # The injected failure point: the child process SIGKILLs itself right after the journal
    # records its third finished recording (no sleeps, no race with a poller).
    crash_after_three = (
        "import os, signal, sys\n"
        "from chorus.predict.journal import Journal\n"
        "from chorus.cli.main import main\n"
        "mark_done = Journal.mark_done\n"
        "def mark_then_die(self, *args):\n"
        "    mark_done(self, *args)\n"
        "    if len(list(self.root.glob('*.json'))) == 3:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "Journal.mark_done = mark_then_die\n"
        "sys.argv = ['chorus', *sys.argv[1:]]\n"
        "main()\n")
    process = subprocess.run([sys.executable, "-c", crash_after_three, *args, "--out", str(killed)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert process.returncode == -signal.SIGKILL
    assert not (killed / "chorus-predictions.json").exists(), "the run was killed before it finished"
    assert len(list((killed / ".chorus-predict").glob("*.json"))) == 3
    assert run_cli(*args, "--out", killed).exit_code == 0
    assert run_cli(*args, "--out", tmp_path / "clean").exit_code == 0
    assert tree_bytes(killed) == tree_bytes(tmp_path / "clean")

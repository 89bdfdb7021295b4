"""The command-line contract, through the real CLI in a subprocess: exit 0 / 2 (user error,
one line, no traceback) / 3 (partial) / 1 (bug); --debug shows the traceback."""

from __future__ import annotations

import os
import subprocess
import sys

from _predictdata import recordings, toy_model


def chorus(*args, env_extra=None):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "chorus.cli.main", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=300)


def test_exit_codes_are_listed_in_the_help():
    result = chorus("--help")
    assert result.returncode == 0 and "Exit codes" in result.stdout and "3 partial" in result.stdout


def test_user_errors_exit_2_with_one_line_and_debug_shows_the_traceback(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    model = toy_model(tmp_path / "model")
    plain = chorus("predict", model, empty, "--out", tmp_path / "out", "--workers", "1")
    assert plain.returncode == 2 and "no audio files found" in plain.stderr and str(empty) in plain.stderr
    assert "Traceback" not in plain.stderr
    debug = chorus("--debug", "predict", model, empty, "--out", tmp_path / "out", "--workers", "1")
    assert debug.returncode == 2 and "Traceback" in debug.stderr
    env_debug = chorus("predict", model, empty, "--out", tmp_path / "out", env_extra={"CHORUS_DEBUG": "1"})
    assert env_debug.returncode == 2 and "Traceback" in env_debug.stderr


def test_some_inputs_failing_is_a_partial_run_exit_3(tmp_path):
    model = toy_model(tmp_path / "model")
    recordings(tmp_path / "rec", seconds=(1.5, 2.0))
    (tmp_path / "rec" / "zz-broken.wav").write_bytes(b"RIFF junk")
    result = chorus("predict", model, tmp_path / "rec", "--out", tmp_path / "out", "--workers", "1",
                    "--window", "0.5")
    assert result.returncode == 3, result.stderr
    assert "2 predicted" in result.stdout and "1 failed" in result.stdout and "Traceback" not in result.stderr
    clean = chorus("predict", model, tmp_path / "rec" / "rec0.wav", "--out", tmp_path / "o2", "--workers", "1",
                   "--window", "0.5")
    assert clean.returncode == 0, clean.stderr


def test_a_device_this_torch_cannot_use_is_refused_before_any_work(tmp_path, monkeypatch):
    import pytest
    import torch

    from chorus.devices import DeviceError, resolve_device

    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: False)
    with pytest.raises(DeviceError, match="cuda requested but this torch has no CUDA"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match="no such CUDA device"):
        resolve_device("cuda:1")
    assert resolve_device("auto") == torch.device("cpu")
    result = chorus("embed", tmp_path, "--encoder", "toy-cnn", "--out", tmp_path / "emb", "--device", "tpu9")
    assert result.returncode == 2 and "unknown device 'tpu9'" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "emb").exists()


def test_out_that_is_a_file_is_a_one_line_user_error(tmp_path):
    recordings(tmp_path / "rec", seconds=(1.0,))
    (tmp_path / "taken").write_text("a file, not a folder")
    model = toy_model(tmp_path / "model")
    result = chorus("predict", model, tmp_path / "rec", "--out", tmp_path / "taken", "--workers", "1")
    assert result.returncode == 2 and str(tmp_path / "taken") in result.stderr
    assert "Traceback" not in result.stderr and (tmp_path / "taken").read_text() == "a file, not a folder"


def test_a_recording_shorter_than_the_receptive_field_gives_a_warning_and_no_detection(tmp_path):
    import json

    import numpy as np

    from chorus.audio import write_audio

    model = toy_model(tmp_path / "model")
    (tmp_path / "rec").mkdir()
    write_audio(tmp_path / "rec" / "blip.wav", np.full(160, 0.5, np.float32), 16_000)  # 0.01 s
    result = chorus("predict", model, tmp_path / "rec", "--out", tmp_path / "out", "--workers", "1",
                    "--threshold", "0", "--format", "csv")
    assert result.returncode == 0, result.stderr
    assert "too short for the model" in result.stdout
    rows = (tmp_path / "out" / "chorus-predictions.csv").read_text().splitlines()
    assert rows == ["path,start,end,label,score"]  # even at threshold 0: no detection from all-zero features
    summary = json.loads((tmp_path / "out" / "chorus-predictions.json").read_text())
    assert "too short" in summary["warnings"][0]

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

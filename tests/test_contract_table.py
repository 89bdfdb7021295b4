"""The user contract of every command, one row per case, each through the real CLI in a
subprocess (umask 022): the exit code (0 / 2 user error / 3 partial), a one-line message
naming the file, no traceback, no temporary file or new empty folder left behind, and
files written with mode 0644."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from _mergedata import saved_vectors
from _predictdata import recordings, toy_model
from _toydata import tone_manifest

from chorus.audio import write_audio
from chorus.fileio import acquire_folder, release_folder

TEMPORARY = (".tmp", ".partial")


@dataclass(frozen=True)
class Case:
    """``args`` and ``names`` are formatted with the shared inputs and ``out`` (this row's
    output path); ``names`` must appear in the one ``error:`` line (rows exiting 2) or in the
    output (rows exiting 0/3); ``says`` anywhere in stdout+stderr; ``lock`` is a folder
    held by another process during the run; ``writes`` lists files that must exist."""

    id: str
    args: tuple[str, ...]
    code: int
    names: str = "{out}"
    says: str = ""
    lock: str | None = None
    writes: tuple[str, ...] = ()
    line: bool = True  # one ``error:`` line (not a click usage box, nor the report of ``data check``)


PREDICT = ("predict", "{model}")
FAST_PREDICT = ("--workers", "1", "--window", "0.5")
PROBE = ("probe", "--encoder", "toy-cnn", "--data", "{manifest}", "--epochs", "1", "--C", "1")
FINETUNE = ("finetune", "--encoder", "toy-cnn", "--data", "{manifest}", "--epochs", "1", "--head-init", "random",
            "--clip-seconds", "0.3")
PRETRAIN = ("pretrain", "--encoder", "toy-cnn", "--data", "{manifest}", "--stage-steps", "1", "--peak-lr", "1e-4",
            "--warmup-steps", "0", "--clip-seconds", "0.3")
DISTILL = ("distill", "--teacher", "toy-cnn", "--student-init", "toy-cnn", "--data", "{manifest}", "--epochs", "1")
PRIOR = ("prior", "train", "--data", "{manifest}", "--steps", "1", "--channels", "8", "--depth", "1",
         "--batch-size", "2", "--checkpoint-every", "1")
MERGE = ("merge", "--method", "task_arithmetic", "-v", "{tv0}", "-v", "{tv1}")
SEPM = ("separation-metrics", "{ref}")

CASES = [
    # embed
    Case("embed-missing-input", ("embed", "{missing}", "--encoder", "toy-cnn", "--out", "{out}", "--workers", "1"),
         3, names="{missing}"),
    Case("embed-empty-folder", ("embed", "{empty}", "--encoder", "toy-cnn", "--out", "{out}"), 2, names="{empty}",
         says="no audio files found"),
    Case("embed-out-is-a-file", ("embed", "{rec}", "--encoder", "toy-cnn", "--out", "{taken}", "--workers", "1"), 2,
         names="{taken}"),
    Case("embed-some-bad", ("embed", "{mixed}", "--encoder", "toy-cnn", "--out", "{out}", "--workers", "1",
                            "--window", "0.5"), 3, names="noise.mp3", says="not an MPEG audio stream"),
    Case("embed-all-bad", ("embed", "{noise_mp3}", "--encoder", "toy-cnn", "--out", "{out}", "--workers", "1"), 3,
         names="{noise_mp3}"),
    Case("embed-truncated-wav", ("embed", "{truncated}", "--encoder", "toy-cnn", "--out", "{out}", "--workers", "1",
                                 "--window", "0.25"), 0, names="{truncated}", says="truncated"),
    Case("embed-device-cuda", ("embed", "{rec}", "--encoder", "toy-cnn", "--out", "{out}", "--device", "cuda"), 2,
         names="cuda", says="cuda requested but this torch has no CUDA"),
    Case("embed-locked", ("embed", "{rec}", "--encoder", "toy-cnn", "--out", "{out}", "--workers", "1"), 2,
         lock="{out}", says="another process"),
    Case("embed-bad-manifest", ("embed", "--data", "{bad_manifest}", "--encoder", "toy-cnn", "--out", "{out}"), 2,
         names="{bad_manifest}"),
    Case("embed-ok", ("embed", "{rec}", "--encoder", "toy-cnn", "--out", "{out}", "--workers", "1",
                      "--window", "0.5"), 0, names="", writes=("out/store.json",)),
    # predict
    Case("predict-missing-model", ("predict", "{missing}", "{rec}", "--out", "{out}"), 2, names="{missing}"),
    Case("predict-model-is-a-file", ("predict", "{taken}", "{rec}", "--out", "{out}"), 2, names="{taken}"),
    Case("predict-garbage-model-json", ("predict", "{bad_model}", "{rec}", "--out", "{out}"), 2,
         names="{bad_model}"),
    Case("predict-missing-input", (*PREDICT, "{missing}", "--out", "{out}", *FAST_PREDICT), 3, names="{missing}"),
    Case("predict-empty-folder", (*PREDICT, "{empty}", "--out", "{out}", *FAST_PREDICT), 2, names="{empty}",
         says="no audio files found"),
    Case("predict-out-is-a-file", (*PREDICT, "{rec}", "--out", "{taken}", *FAST_PREDICT), 2, names="{taken}"),
    Case("predict-some-bad", (*PREDICT, "{mixed}", "--out", "{out}", *FAST_PREDICT), 3, names="noise.mp3",
         says="not an MPEG audio stream"),
    Case("predict-all-bad", (*PREDICT, "{noise_mp3}", "--out", "{out}", *FAST_PREDICT), 3, names="{noise_mp3}"),
    Case("predict-truncated-wav", (*PREDICT, "{truncated}", "--out", "{out}", *FAST_PREDICT), 0,
         names="{truncated}", says="truncated", writes=("out/chorus-predictions.json",)),
    Case("predict-shorter-than-receptive-field", (*PREDICT, "{blip}", "--out", "{out}", *FAST_PREDICT), 0,
         names="{blip}", says="too short", writes=("out/chorus-predictions.json",)),
    Case("predict-device-cuda", (*PREDICT, "{rec}", "--out", "{out}", "--device", "cuda"), 2, names="cuda"),
    Case("predict-locked", (*PREDICT, "{rec}", "--out", "{out}", *FAST_PREDICT), 2, lock="{out}",
         says="another process"),
    Case("predict-other-settings-same-out", (*PREDICT, "{rec}", "--out", "{predicted}", "--workers", "1",
                                             "--window", "0.25"), 2, names="{predicted}", says="other settings"),
    Case("predict-threshold-nan", (*PREDICT, "{rec}", "--out", "{out}", "--threshold", "nan"), 2,
         names="", line=False),
    Case("predict-class-thresholds-nan", (*PREDICT, "{rec}", "--out", "{out}", "--class-thresholds",
                                          "{nan_thresholds}"), 2, names="{nan_thresholds}"),
    Case("predict-window-nan", (*PREDICT, "{rec}", "--out", "{out}", "--window", "nan"), 2, names="window",
         line=False),
    Case("predict-ok", (*PREDICT, "{rec}", "--out", "{out}", *FAST_PREDICT), 0, names="",
         writes=("out/chorus-predictions.json", "out/rec0.selections.txt")),
    # probe
    Case("probe-missing-data", ("probe", "--encoder", "toy-cnn", "--data", "{missing}", "--out", "{out}"), 2,
         names="{missing}"),
    Case("probe-data-is-an-empty-folder", ("probe", "--encoder", "toy-cnn", "--data", "{empty}", "--out", "{out}"),
         2, names="{empty}"),
    Case("probe-bad-manifest", ("probe", "--encoder", "toy-cnn", "--data", "{bad_manifest}", "--out", "{out}"), 2,
         names="{bad_manifest}"),
    Case("probe-some-bad", (*PROBE[:4], "{broken_manifest}", *PROBE[5:], "--out", "{out}"), 3, names="broken.wav"),
    Case("probe-out-is-a-file", (*PROBE, "--out", "{taken}"), 2, names="{taken}"),
    Case("probe-device-cuda", (*PROBE, "--out", "{out}", "--device", "cuda"), 2, names="cuda"),
    Case("probe-c-nan", ("probe", "--encoder", "toy-cnn", "--data", "{manifest}", "--out", "{out}", "--C", "nan"),
         2, names="nan"),
    Case("probe-bad-raven-tables", ("probe", "--encoder", "toy-cnn", "--data", "{raven_manifest}", "--out", "{out}",
                                    "--task", "detection"), 2, names="{raven_manifest}"),
    # finetune
    Case("finetune-missing-data", (*FINETUNE[:4], "{missing}", "--out", "{out}"), 2, names="{missing}"),
    Case("finetune-bad-manifest", (*FINETUNE[:4], "{bad_manifest}", "--out", "{out}"), 2, names="{bad_manifest}"),
    Case("finetune-empty-folder", (*FINETUNE[:4], "{empty}", "--out", "{out}"), 2, names="{empty}"),
    Case("finetune-some-bad", (*FINETUNE[:4], "{broken_manifest}", *FINETUNE[5:], "--out", "{out}"), 3,
         names="broken.wav"),
    Case("finetune-out-is-a-file", (*FINETUNE, "--out", "{taken}"), 2, names="{taken}"),
    Case("finetune-device-cuda", (*FINETUNE, "--out", "{out}", "--device", "cuda"), 2, names="cuda"),
    Case("finetune-locked", (*FINETUNE, "--out", "{out}"), 2, lock="{out}", says="another process"),
    Case("finetune-lr-nan", (*FINETUNE, "--out", "{out}", "--lr", "nan"), 2, names="lr"),
    Case("finetune-ok", (*FINETUNE, "--out", "{out}"), 0, names="",
         writes=("out/model/config.json", "out/model/model.safetensors", "out/model/README.md", "out/taskvector/taskvector.json", "out/metrics.json")),
    # pretrain, distill, prior train: resumable folders are locked
    Case("pretrain-out-is-a-file", (*PRETRAIN, "--out", "{taken}"), 2, names="{taken}"),
    Case("pretrain-locked", (*PRETRAIN, "--out", "{out}"), 2, lock="{out}", says="another process"),
    Case("pretrain-device-cuda", (*PRETRAIN, "--out", "{out}", "--device", "cuda"), 2, names="cuda"),
    Case("pretrain-missing-data", ("pretrain", "--encoder", "toy-cnn", "--data", "{missing}", "--out", "{out}"), 2,
         names="{missing}"),
    Case("distill-locked", (*DISTILL, "--out", "{out}"), 2, lock="{out}", says="another process"),
    Case("distill-missing-data", (*DISTILL[:6], "{missing}", "--out", "{out}"), 2, names="{missing}"),
    Case("prior-train-locked", (*PRIOR, "--out", "{out}"), 2, lock="{out}", says="another process"),
    Case("prior-train-bad-manifest", ("prior", "train", "--data", "{bad_manifest}", "--out", "{out}"), 2,
         names="{bad_manifest}"),
    Case("prior-train-out-is-a-file", (*PRIOR, "--out", "{taken}"), 2, names="{taken}"),
    # merge
    Case("merge-weight-nan", (*MERGE, "-w", "nan", "-w", "1", "--out", "{out}"), 2, names="weight"),
    Case("merge-lambda-inf", (*MERGE, "--lambda", "inf", "--out", "{out}"), 2, names="lambda"),
    Case("merge-param-nan", ("merge", "--method", "ties", "-v", "{tv0}", "-v", "{tv1}", "-p", "density=nan",
                             "--out", "{out}"), 2, names="density"),
    Case("merge-recipe-nan", ("merge", "{recipe_nan}", "--out", "{out}"), 2, names="{recipe_nan}"),
    Case("merge-recipe-garbage", ("merge", "{recipe_bad}", "--out", "{out}"), 2, names="{recipe_bad}"),
    Case("merge-recipe-missing", ("merge", "{missing}", "--out", "{out}"), 2, names="{missing}"),
    Case("merge-missing-vector", ("merge", "--method", "task_arithmetic", "-v", "{missing}", "-v", "{tv1}",
                                  "--out", "{out}"), 2, names="{missing}"),
    Case("merge-vector-is-a-file", ("merge", "--method", "task_arithmetic", "-v", "{taken}", "-v", "{tv1}",
                                    "--out", "{out}"), 2, names="{taken}"),
    Case("merge-base-missing", (*MERGE, "--base", "{missing}.safetensors", "--out", "{out}"), 2,
         names="{missing}.safetensors"),
    Case("merge-base-truncated", (*MERGE, "--base", "{truncated_st}", "--out", "{out}"), 2, names="{truncated_st}"),
    Case("merge-base-pickle", (*MERGE, "--base", "{pickle_st}", "--out", "{out}"), 2, names="{pickle_st}",
         says="pickle"),
    Case("merge-truncated-deltas", ("merge", "--method", "task_arithmetic", "-v", "{tv_truncated}", "-v", "{tv1}",
                                    "--out", "{out}"), 2, names="{tv_truncated}"),
    Case("merge-out-is-a-file", (*MERGE, "--out", "{taken}"), 2, names="{taken}"),
    Case("merge-ok", (*MERGE, "--out", "{out}"), 0, names="",
         writes=("out/config.json", "out/merge.json", "out/model.safetensors")),
    # tv
    Case("tv-info-missing", ("tv", "info", "{missing}"), 2, names="{missing}"),
    Case("tv-info-pickle-deltas", ("tv", "info", "{tv_pickle}", "--tensors"), 2, names="{tv_pickle}"),
    Case("tv-info-garbage-manifest", ("tv", "info", "{tv_garbage}"), 2, names="{tv_garbage}"),
    Case("tv-apply-out-is-a-file", ("tv", "apply", "{tv0}", "--out", "{taken}"), 2, names="{taken}"),
    Case("tv-apply-coef-nan", ("tv", "apply", "{tv0}", "--coef", "nan", "--out", "{out}"), 2, names="nan"),
    Case("tv-apply-ok", ("tv", "apply", "{tv0}", "--out", "{out}"), 0, names="", writes=("out/config.json",)),
    # analyze
    Case("analyze-base-without-data", ("analyze", "{tv0}", "{tv1}", "--base", "{missing}", "--out", "{out}"), 2,
         names="{missing}"),
    Case("analyze-missing-vector", ("analyze", "{tv0}", "{missing}", "--out", "{out}"), 2, names="{missing}"),
    # evaluate
    Case("evaluate-missing-model", ("evaluate", "{missing}", "--data", "{manifest}"), 2, names="{missing}"),
    Case("evaluate-bad-manifest", ("evaluate", "{model}", "--data", "{bad_manifest}", "--out", "{out}"), 2,
         names="{bad_manifest}"),
    Case("evaluate-nan-metrics-strict-json", ("evaluate", "{model}", "--data", "{manifest}", "--out", "{out}"), 0,
         names="", writes=("out/metrics.json",)),
    Case("evaluate-default-out-beside-the-model", ("evaluate", "{model}", "--data", "{manifest}"), 0,
         names="model-evaluation"),
    # data check
    Case("data-check-missing", ("data", "check", "{missing}"), 2, names="{missing}", line=False),
    Case("data-check-bad-manifest", ("data", "check", "{bad_manifest}"), 2, names="{bad_manifest}", line=False),
    Case("data-check-empty-folder", ("data", "check", "{empty}"), 2, names="{empty}", line=False),
    # separation-metrics
    Case("sepm-length-mismatch", (*SEPM, "--est", "{est_short}"), 2, names="{est_short}", says="--trim"),
    Case("sepm-silent-estimate", (*SEPM, "--est", "{est_silent}", "--json", "{out}.json"), 0, names="",
         writes=("out.json",)),
    Case("sepm-missing-reference", ("separation-metrics", "{missing}", "--est", "{ref}"), 2, names="{missing}"),
    Case("sepm-noise-mp3", ("separation-metrics", "{noise_mp3}", "--est", "{ref}"), 2, names="{noise_mp3}",
         says="not an MPEG audio stream"),
    Case("sepm-truncated-trim", (*SEPM, "--est", "{est_short}", "--trim", "--json", "{out}.json"), 0, names="",
         says="cut", writes=("out.json",)),
    # separate
    Case("separate-missing-mix", ("separate", "{missing}", "--priors", "{empty}"), 2, names="{missing}"),
    Case("separate-omega-nan", ("separate", "{ref}", "--model", "{missing}", "--prompt", "rain", "--omega", "nan",
                                "--out", "{out}"), 2, names="omega"),
    Case("separate-guidance-nan", ("separate", "{ref}", "--priors", "{empty}", "--guidance", "nan", "--out", "{out}"),
         2, names="guidance"),
    # compare
    Case("compare-missing-data", ("compare", "--data", "{missing}", "--merged", "{model}", "--out", "{out}"), 2, names="{missing}"),
]


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> dict[str, str]:
    """The inputs every row reads (never written by a row)."""
    root = tmp_path_factory.mktemp("inputs")
    paths: dict[str, Path] = {"missing": root / "no-such-thing", "empty": root / "empty", "taken": root / "taken"}
    paths["empty"].mkdir()
    paths["taken"].write_text("a file, not a folder")
    paths["model"] = toy_model(root / "model")
    (root / "bad-model").mkdir()
    (root / "bad-model" / "model.json").write_text("{not json")
    paths["bad_model"] = root / "bad-model"
    paths["rec"] = root / "rec"
    recordings(paths["rec"], seconds=(1.0,))
    rate, rng = 16_000, np.random.default_rng(0)
    paths["noise_mp3"] = root / "noise.mp3"
    paths["noise_mp3"].write_bytes(rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())
    paths["mixed"] = root / "mixed"
    recordings(paths["mixed"], seconds=(1.0,))
    (paths["mixed"] / "noise.mp3").write_bytes(paths["noise_mp3"].read_bytes())
    whole = root / "whole.wav"
    write_audio(whole, (0.3 * rng.standard_normal(rate)).astype(np.float32), rate)
    paths["truncated"] = root / "truncated.wav"
    paths["truncated"].write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    paths["blip"] = root / "blip.wav"
    write_audio(paths["blip"], np.full(160, 0.5, np.float32), rate)
    paths["ref"] = whole
    paths["est_short"] = root / "est-short.wav"
    write_audio(paths["est_short"], (0.3 * rng.standard_normal(rate // 2)).astype(np.float32), rate)
    paths["est_silent"] = root / "est-silent.wav"
    write_audio(paths["est_silent"], np.zeros(rate, np.float32), rate)
    paths["manifest"] = tone_manifest(root / "tones", seconds=0.3).source
    paths["broken_manifest"] = root / "tones" / "with-broken.csv"
    (root / "tones" / "audio" / "broken.wav").write_bytes(b"RIFF junk")
    paths["broken_manifest"].write_text(Path(paths["manifest"]).read_text() + "audio/broken.wav,g1/low,train,g1,,\n")
    paths["bad_manifest"] = root / "bad.csv"
    paths["bad_manifest"].write_text("path,label\nnowhere.wav,a\n\x00\x01,\n")
    raven = root / "raven"
    recordings(raven, seconds=(1.0, 1.0))
    for wav in sorted(raven.glob("*.wav")):
        wav.with_name(f"{wav.stem}.selections.txt").write_text("Selection\tBegin Time (s)\nx\ty\n")
    paths["raven_manifest"] = raven / "manifest.csv"
    paths["raven_manifest"].write_text("path,split\nrec0.wav,train\nrec1.wav,valid\n")
    paths["nan_thresholds"] = root / "thresholds.json"
    paths["nan_thresholds"].write_text('{"a": NaN}')
    tv0, tv1, _ = saved_vectors(root / "tv")
    paths["tv0"], paths["tv1"] = tv0, tv1
    paths["recipe_nan"] = root / "recipe-nan.yaml"
    paths["recipe_nan"].write_text(f"method: task_arithmetic\nlambda: .nan\nvectors:\n  - path: {tv0}\n  - path: {tv1}\n")
    paths["recipe_bad"] = root / "recipe-bad.yaml"
    paths["recipe_bad"].write_text("method: [unclosed\n  vectors: {")
    paths["pickle_st"] = root / "pickle.safetensors"
    paths["pickle_st"].write_bytes(b"\x80\x04\x95" + bytes(64))
    encoder = tv0 / "deltas.safetensors"
    paths["truncated_st"] = root / "truncated.safetensors"
    paths["truncated_st"].write_bytes(encoder.read_bytes()[: encoder.stat().st_size // 2])
    for name, damage in (("tv_truncated", "truncate"), ("tv_pickle", "pickle"), ("tv_garbage", "manifest")):
        copy = root / name
        copy.mkdir()
        for file in tv0.iterdir():
            (copy / file.name).write_bytes(file.read_bytes())
        deltas = copy / encoder.name
        if damage == "truncate":
            deltas.write_bytes(deltas.read_bytes()[: deltas.stat().st_size // 2])
        elif damage == "pickle":
            deltas.write_bytes(b"\x80\x04\x95" + bytes(64))
        else:
            (copy / "taskvector.json").write_text("[1, 2")
        paths[name] = copy
    paths["predicted"] = root / "predicted"
    first = chorus("predict", paths["model"], paths["rec"], "--out", paths["predicted"], *FAST_PREDICT)
    assert first.returncode == 0, first.stderr
    return {name: str(path) for name, path in paths.items()}


def chorus(*args, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "400"}
    env.pop("CHORUS_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "chorus.cli.main", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=600, preexec_fn=lambda: os.umask(0o022))


def _leftovers(folder: Path) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.name.endswith(TEMPORARY)]


def _empty_folders(folder: Path) -> set[str]:
    return {str(p) for p in folder.rglob("*") if p.is_dir() and not any(p.iterdir())}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_the_contract(case: Case, shared: dict[str, str], tmp_path: Path):
    names = {**shared, "out": str(tmp_path / "out")}
    args = [arg.format(**names) for arg in case.args]
    inputs = Path(shared["empty"]).parent
    before = _empty_folders(inputs)
    key = acquire_folder(case.lock.format(**names)) if case.lock else None
    try:
        result = chorus(*args, cwd=tmp_path)
    finally:
        if key is not None:
            release_folder(key)
    said = result.stdout + result.stderr
    assert result.returncode == case.code, said
    assert "Traceback" not in result.stderr, result.stderr
    named = case.names.format(**names)
    if case.code == 2 and case.line:
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and named in errors[0], result.stderr
    else:
        assert named in said, said
    assert case.says in said, said
    assert not _leftovers(tmp_path) and not _leftovers(inputs)
    assert not _empty_folders(tmp_path) and _empty_folders(inputs) == before
    for relative in case.writes:
        assert (tmp_path / relative).is_file(), relative
    for written in (p for p in tmp_path.rglob("*") if p.is_file()):
        assert stat.S_IMODE(written.stat().st_mode) == 0o644, written
    summary = tmp_path / "out" / "chorus-predictions.json"
    if summary.is_file():  # predict's warnings and failures are recorded, not only printed
        recorded = json.loads(summary.read_text())
        assert case.says in " ".join([*recorded["warnings"], *(r.get("error", "") for r in recorded["recordings"])])
    for document in tmp_path.rglob("*.json"):
        json.loads(document.read_text(), parse_constant=lambda token: pytest.fail(f"{document}: {token}"))

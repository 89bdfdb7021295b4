"""``chorus predict``: a model over many long recordings, resumable, bad files skipped.

Each recording's output file is written atomically when its last window is scored, then
recorded in the journal (:mod:`chorus.predict.journal`); a rerun skips what is done and
the combined table and summary are rebuilt from the per-recording files in input order,
so an interrupted run ends with the same bytes as an uninterrupted one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..audio import SUPPORTED_EXTENSIONS, AudioError, audio_info
from ..errors import InvalidInput
from ..fileio import locks_folder, write_json
from ..model import read_config, resolve_model_dir
from ..model.layout import record_path
from ..progress import ProgressFactory, resolve
from .detect import class_thresholds, detections
from ..parallel import ENGINES
from .engines import run_local, run_ray
from .journal import Journal, recording_key
from .outputs import SUFFIXES, write_combined, write_recording
from .scheduler import RecordingScores
from .settings import PredictSettings, model_labels
from .errors import NoAudioFound, OutputCollision

SUMMARY_NAME = "chorus-predictions.json"


@dataclass(frozen=True)
class FailedRecording:
    path: Path
    error: str


@dataclass
class PredictReport:
    """What a run did: ``outputs[i]`` is the output of ``recordings[i]`` (None if it failed)."""

    recordings: list[Path]
    outputs: list[Path | None]
    computed: int = 0
    reused: int = 0
    detections: int = 0
    failures: list[FailedRecording] = field(default_factory=list)
    combined: Path | None = None
    warnings: list[str] = field(default_factory=list)
    """Recordings scored but not fully usable, e.g. shorter than the model's receptive field."""


def find_recordings(paths: Sequence[str | Path]) -> list[Path]:
    """Folders expand to their audio files (recursively, sorted); files stay as given,
    in order, whatever their extension (a bad one is reported when it is read).
    :class:`NoAudioFound` when there is nothing to read."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_EXTENSIONS)
        else:
            found.append(path)
    if not found:
        where = ", ".join(str(p) for p in paths) or "(no path given)"
        raise NoAudioFound(f"{where}: no audio files found ({', '.join(sorted(SUPPORTED_EXTENSIONS))})")
    return found


def output_paths(recordings: Sequence[Path], out_dir: Path, fmt: str) -> list[Path]:
    """One output per recording, mirroring the folders below the recordings' common root."""
    if not recordings:
        return []
    parents = [str(p.resolve().parent) for p in recordings]
    root = Path(os.path.commonpath(parents))
    outputs = [out_dir / p.resolve().parent.relative_to(root) / (p.stem + SUFFIXES[fmt]) for p in recordings]
    seen: dict[Path, Path] = {}
    for recording, output in zip(recordings, outputs):
        if output in seen and seen[output].resolve() != recording.resolve():
            raise OutputCollision(f"{seen[output]} and {recording} would both write {output}; rename one")
        seen[output] = recording
    return outputs


@locks_folder("out_dir")
def predict(model_dir: str | Path, paths: Sequence[str | Path], out_dir: str | Path,
            settings: PredictSettings = PredictSettings(), *, engine: str = "local", workers: int | None = None,
            address: str | None = None, progress: ProgressFactory | None = None, device: str = "auto") -> PredictReport:
    """Run the model in ``model_dir`` (a model folder or a Hub repo id) over ``paths`` (files or folders); write one output per
    recording into ``out_dir``, then the combined table and ``chorus-predictions.json``.

    Recordings already done by an earlier run with the same model and settings are
    skipped. A recording that fails is reported in ``failures``; the rest finish. The
    folder is locked against a second writer, and refused when an earlier run wrote it with
    another model or other settings (:class:`OutputMismatch`).
    """
    if engine not in ENGINES:
        raise InvalidInput(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    source = str(model_dir)
    model_dir, out_dir = resolve_model_dir(model_dir), Path(out_dir)
    record = read_config(model_dir)
    labels = model_labels(record)
    identity = settings.identity(record)
    thresholds = class_thresholds(labels, settings.threshold, settings.class_thresholds)
    context = {"model": record_path(model_dir).read_text(encoding="utf-8"), "settings": identity}
    recordings = find_recordings(paths)
    outputs = output_paths(recordings, out_dir, settings.format)
    keys = [recording_key(p, context) for p in recordings]
    journal = Journal(out_dir)
    journal.claim(context)
    report = PredictReport(recordings, list(outputs))
    if (note := settings.window_warning(record)) is not None:
        report.warnings.append(note)
    todo = [(i, p) for i, p in enumerate(recordings) if not journal.is_done(keys[i], outputs[i])]
    report.reused = len(recordings) - len(todo)
    bar = resolve(progress)(len(recordings), f"predict {model_dir.name}")
    bar.update(report.reused)
    try:
        for result in _score(model_dir, todo, settings, record, engine, workers, address, device):
            if result.error is not None:
                report.failures.append(FailedRecording(result.path, result.error))
                report.outputs[result.index] = None
            else:
                report.warnings += _audio_warnings(result.path)
                unscored = int(np.isnan(result.scores).any(axis=1).sum()) if result.scores.size else 0
                if unscored:
                    report.warnings.append(f"{result.path}: {unscored} of {len(result.starts)} windows too short for "
                                           "the model (no valid frame in its layer); they are never detections")
                events = detections(result, labels, thresholds, **settings.merging())
                write_recording(outputs[result.index], settings.format, result, events, labels)
                journal.mark_done(keys[result.index], result.path, outputs[result.index])
                report.computed += 1
            bar.update(1)
    finally:
        bar.close()
    report.failures.sort(key=lambda f: recordings.index(f.path))
    finished = [o for o in report.outputs if o is not None]
    report.combined = write_combined(out_dir, settings.format, finished)
    _write_summary(out_dir, source, record, identity, report)
    return report


def _audio_warnings(path: Path) -> list[str]:
    """A truncated file's warning (its header announces more audio than it holds)."""
    try:
        truncated = audio_info(path).truncated
    except AudioError:
        return []
    return [f"{path}: {truncated}"] if truncated else []


def _score(model_dir: Path, todo: list[tuple[int, Path]], settings: PredictSettings, record, engine: str,
           workers: int | None, address: str | None, device: str) -> Iterator[RecordingScores]:
    spec = settings.spec(record)
    if engine == "ray":  # each Ray actor takes a GPU when CUDA is present
        return run_ray(model_dir, todo, spec, settings.batch_size, settings.open_files, workers, address)
    return run_local(model_dir, todo, spec, settings.batch_size, settings.open_files, workers, device)


def _write_summary(out_dir: Path, model_dir: str, record, identity: dict, report: PredictReport) -> None:
    errors = {f.path: f.error for f in report.failures}
    rows = []
    for recording, output in zip(report.recordings, report.outputs):
        row = {"recording": str(recording)}
        if output is None:
            row["error"] = errors.get(recording, "failed")
        else:
            row["output"] = str(output.relative_to(out_dir))
        rows.append(row)
    write_json(out_dir / SUMMARY_NAME, {
        "model": str(model_dir), "encoder": record.encoder.name, "settings": identity,
        "labels": model_labels(record), "recordings": rows,
        "combined": report.combined.name if report.combined else None, "warnings": report.warnings})

"""``chorus probe`` as one function: a manifest in, the report files out.

:func:`probe` is what the CLI runs after parsing its flags (and what :func:`chorus.probe`
calls): it builds the task from the manifest, probes every layer
(:func:`~chorus.probe.runner.run_probe`) and writes ``probe.json``, the PNGs and
``report.html`` (:func:`~chorus.probe.report.write_probe_report`).
"""

from __future__ import annotations

from pathlib import Path

from ..progress import ProgressFactory
from .errors import ProbeConfigError
from .runner import ProbeConfig, run_probe

TASKS = ("auto", "multiclass", "multilabel", "detection")


def probe(encoder: str, data: str | Path, out: str | Path, config: ProbeConfig | None = None, *,
          task: str = "auto", source: str | None = None, cache: str | Path | None = None, window: float = 2.0,
          hop: float = 1.0, min_overlap: float = 0.2, folds: bool = False,
          progress: ProgressFactory | None = None) -> dict:
    """Probe every layer of the registered ``encoder`` on the manifest ``data`` (train /
    valid / test splits) and write the report into ``out``; return the report (as in
    ``probe.json``) with ``files``: the paths written. ``task``: ``auto`` (from the
    manifest), ``multiclass``, ``multilabel`` or ``detection`` (windows of ``window`` s
    every ``hop`` s, positive from ``min_overlap`` overlap). ``folds``: k-fold
    cross-validation from the manifest's ``fold`` column (:mod:`chorus.probe.folds`).
    ``cache``: feature cache (default ``out/cache``)."""
    from ..data.manifest import read_manifest
    from .folds import fold_task
    from .report import write_probe_report
    from .task import detection_task, task_from_manifest

    if task not in TASKS:
        raise ProbeConfigError(f"unknown task {task!r}; choose among {', '.join(TASKS)}")
    fold_plan = None
    if folds and task == "detection":
        raise ProbeConfigError("cross-validation (folds) works on classification manifests, not detection")
    if folds:
        probe_task, fold_plan = fold_task(read_manifest(data))
    elif task == "detection":
        probe_task = detection_task(read_manifest(data, allow_unlabelled=True), window, hop, min_overlap)
    else:
        probe_task = task_from_manifest(read_manifest(data))
    if task not in ("auto", "detection") and task != probe_task.kind:
        raise ProbeConfigError(f"{data}: the manifest holds a {probe_task.kind} task, not {task}")
    out = Path(out)
    report = run_probe(encoder, probe_task, cache or out / "cache", config or ProbeConfig(), source=source,
                       progress=progress, folds=fold_plan)
    files = write_probe_report(report, out)
    return {**report, "files": {name: str(path) for name, path in files.items()}}

"""Where windows are scored: in this process, a local process pool, or a Ray cluster.

Every engine runs the same :func:`~chorus.predict.scheduler.score_recordings` over
groups of ``open_files`` recordings and yields :class:`RecordingScores` in completion
order; since each window is computed in a batch of the same shape, the scores are the
same bytes whichever engine ran them.

- ``local``: ``workers`` processes (spawned), each holding the model and using
  ``threads`` torch threads; ``workers=1`` runs in this process.
- ``ray``: Ray Data ``map_batches`` over the recordings with an actor pool
  (:class:`RayScorer`) holding the model, a GPU per actor when CUDA is present;
  ``address`` joins an existing cluster, else a local one is started with ``workers``
  CPUs.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from ..errors import ChorusError
from .scheduler import RecordingScores, score_recordings
from .stream import WindowSpec

ENGINES = ("local", "ray")


def machine_workers() -> int:
    """CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _groups(items: Sequence[tuple[int, Path]], size: int) -> list[list[tuple[int, Path]]]:
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


class _Scorer:
    """A loaded model plus the window settings: scores groups of recordings."""

    def __init__(self, model_dir: str, spec: WindowSpec, batch_size: int, open_files: int, threads: int | None):
        from ..model import ClassifierModel

        if threads:
            torch.set_num_threads(threads)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = ClassifierModel.from_pretrained(model_dir).to(self.device)
        self.spec, self.batch_size, self.open_files = spec, batch_size, open_files

    def _score(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.model.predict_scores(waveforms.to(self.device), lengths.to(self.device))

    def run(self, group: Sequence[tuple[int, Path]]) -> Iterator[RecordingScores]:
        classes = len(self.model.labels)
        return score_recordings(self._score, group, self.spec, classes, self.batch_size, self.open_files)


def run_in_process(model_dir: Path, items: Sequence[tuple[int, Path]], spec: WindowSpec, batch_size: int,
                   open_files: int) -> Iterator[RecordingScores]:
    """Score in this process (one model, the caller's torch threads)."""
    yield from _Scorer(str(model_dir), spec, batch_size, open_files, None).run(items)


_worker: _Scorer | None = None


def _init_worker(model_dir: str, spec: WindowSpec, batch_size: int, open_files: int, threads: int) -> None:
    global _worker
    _worker = _Scorer(model_dir, spec, batch_size, open_files, threads)


def _score_group(group: list[tuple[int, Path]]) -> list[RecordingScores]:
    assert _worker is not None, "worker not initialised"
    return list(_worker.run(group))


def run_local(model_dir: Path, items: Sequence[tuple[int, Path]], spec: WindowSpec, batch_size: int,
              open_files: int, workers: int | None = None) -> Iterator[RecordingScores]:
    """Score on a pool of ``workers`` processes (default: one per core), each streaming
    ``open_files`` recordings at a time; one worker runs in this process."""
    workers = max(1, min(workers or machine_workers(), len(items) or 1))
    if workers == 1:
        yield from run_in_process(model_dir, items, spec, batch_size, open_files)
        return
    import multiprocessing

    threads = max(1, machine_workers() // workers)
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, _init_worker, (str(model_dir), spec, batch_size, open_files, threads)) as pool:
        for results in pool.imap_unordered(_score_group, _groups(items, open_files)):
            yield from results


class RayScorer:
    """Ray Data actor: holds the model; each call scores one batch of recordings
    (columns ``index``, ``path``) and returns one row per recording."""

    def __init__(self, model_dir: str, spec: WindowSpec, batch_size: int, open_files: int):
        self.scorer = _Scorer(model_dir, spec, batch_size, open_files, 1)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        items = [(int(i), Path(str(p))) for i, p in zip(batch["index"], batch["path"])]
        rows = [_to_row(result) for result in self.scorer.run(items)]
        return {name: [row[name] for row in rows] for name in _ROW_FIELDS}


_ROW_FIELDS = ("index", "path", "rate", "samples", "error", "starts", "valid", "scores", "classes")


def _to_row(result: RecordingScores) -> dict:
    return {"index": result.index, "path": str(result.path), "rate": result.rate, "samples": result.samples,
            "error": result.error or "", "starts": result.starts.tobytes(), "valid": result.valid.tobytes(),
            "scores": np.ascontiguousarray(result.scores, np.float32).tobytes(),
            "classes": int(result.scores.shape[1]) if result.scores.ndim == 2 else 0}


def _from_row(row: dict) -> RecordingScores:
    starts = np.frombuffer(row["starts"], np.int64).copy()
    scores = np.frombuffer(row["scores"], np.float32).copy().reshape(len(starts), int(row["classes"]))
    return RecordingScores(int(row["index"]), Path(row["path"]), int(row["rate"]), starts,
                           np.frombuffer(row["valid"], np.int64).copy(), scores, int(row["samples"]),
                           row["error"] or None)


@contextlib.contextmanager
def ray_session(address: str | None, num_cpus: int | None) -> Iterator[None]:
    """Join ``address`` (or start a local Ray with ``num_cpus``) unless Ray is already up;
    shut down only what this call started."""
    try:
        import ray
    except ImportError as exc:
        raise ChorusError("--engine ray needs Ray: pip install 'chorus[ray]'") from exc
    if ray.is_initialized():
        yield
        return
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def run_ray(model_dir: Path, items: Sequence[tuple[int, Path]], spec: WindowSpec, batch_size: int,
            open_files: int, workers: int | None = None, address: str | None = None) -> Iterator[RecordingScores]:
    """Score on Ray Data: an actor pool of ``workers`` model replicas (default: one per
    CPU of the local machine, or 2 on a cluster), ``open_files`` recordings per call."""
    if not items:
        return
    with ray_session(address, workers or machine_workers()):
        import ray

        gpus = 1 if torch.cuda.is_available() else 0
        actors = workers or (2 if address else machine_workers())
        data = ray.data.from_items([{"index": i, "path": str(p)} for i, p in items])
        scored = data.map_batches(
            RayScorer, fn_constructor_args=(str(model_dir.resolve()), spec, batch_size, open_files),
            batch_size=open_files, concurrency=max(1, min(actors, len(items))), num_cpus=1, num_gpus=gpus,
            batch_format="numpy")
        for row in scored.iter_rows():
            yield _from_row(row)

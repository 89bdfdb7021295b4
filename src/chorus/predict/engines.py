"""Where windows are scored: in this process, a local process pool, or a Ray cluster
(:mod:`chorus.parallel`).

Every engine runs the same :func:`~chorus.predict.scheduler.score_recordings` over
groups of ``open_files`` recordings and yields :class:`RecordingScores` in completion
order; since each window is computed in a batch of the same shape, the scores are the
same bytes whichever engine ran them.

- ``local``: ``workers`` processes (spawned), each holding the model and using an equal
  share of the cores as torch threads; ``workers=1`` runs in this process.
- ``ray``: a Ray Data actor pool holding the model, a GPU per actor when CUDA is present;
  ``address`` joins an existing cluster, else a local one is started with ``workers`` CPUs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from ..devices import resolve_device
from ..parallel import machine_workers, pool_map, ray_map
from .scheduler import RecordingScores, score_recordings
from .stream import WindowSpec


def _groups(items: Sequence[tuple[int, Path]], size: int) -> list[list[tuple[int, Path]]]:
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


class _Scorer:
    """A loaded model and the window settings: scores recordings ``open_files`` at a time."""

    def __init__(self, model_dir: str, spec: WindowSpec, batch_size: int, open_files: int, threads: int | None,
                 device: str = "auto"):
        import torch

        from ..model import ClassifierModel

        if threads:
            torch.set_num_threads(threads)
        self.device = resolve_device(device)
        self.model = ClassifierModel.from_pretrained(model_dir).to(self.device)
        self.spec, self.batch_size, self.open_files = spec, batch_size, open_files

    def _score(self, waveforms, lengths):
        return self.model.predict_scores(waveforms.to(self.device), lengths.to(self.device))

    def stream(self, items: Sequence[tuple[int, Path]]) -> Iterator[RecordingScores]:
        """Scores of ``items``, each yielded as soon as its recording is done."""
        return score_recordings(self._score, items, self.spec, len(self.model.labels), self.batch_size,
                                self.open_files)

    def __call__(self, group: Sequence[tuple[int, Path]]) -> list[RecordingScores]:
        return list(self.stream(group))


@dataclass(frozen=True)
class Scorers:
    """Worker factory (:data:`chorus.parallel.WorkerFactory`) of :class:`_Scorer`."""

    model_dir: str
    spec: WindowSpec
    batch_size: int
    open_files: int
    device: str = "auto"

    def __call__(self, threads: int | None) -> _Scorer:
        return _Scorer(self.model_dir, self.spec, self.batch_size, self.open_files, threads, self.device)


def run_local(model_dir: Path, items: Sequence[tuple[int, Path]], spec: WindowSpec, batch_size: int,
              open_files: int, workers: int | None = None, device: str = "auto") -> Iterator[RecordingScores]:
    """Score on a pool of ``workers`` processes (default: one per core); one worker runs in
    this process, streaming all recordings through one model."""
    scorers = Scorers(str(Path(model_dir).resolve()), spec, batch_size, open_files, device)
    workers = max(1, min(workers or machine_workers(), len(items) or 1))
    if workers == 1:
        yield from scorers(None).stream(items)
        return
    for results in pool_map(scorers, _groups(items, open_files), workers, ordered=False):
        yield from results


def run_ray(model_dir: Path, items: Sequence[tuple[int, Path]], spec: WindowSpec, batch_size: int,
            open_files: int, workers: int | None = None, address: str | None = None) -> Iterator[RecordingScores]:
    """Score on Ray Data: an actor pool of ``workers`` model replicas, ``open_files``
    recordings per call."""
    scorers = Scorers(str(Path(model_dir).resolve()), spec, batch_size, open_files)
    for results in ray_map(scorers, _groups(items, open_files), workers, address, ordered=False):
        yield from results

"""Feature extraction on a local process pool or on Ray Data.

Both engines compute the same chunks as the in-process path of
:func:`~chorus.features.extract.extract_features` (with
:func:`~chorus.features.extract.compute_chunk`), so the stored features are identical;
the caller's process alone writes the store. Workers build the encoder from an
:class:`EncoderRecipe`; Ray actors hold it for the whole run (``map_batches`` with an
actor pool, a GPU each when CUDA is present).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from .. import audio
from ..data.loading import FailedClip
from ..data.manifest import Clip
from .extract import ChunkEngine, ChunkResult, compute_chunk
from .transforms import ClipTransform


@dataclass(frozen=True)
class EncoderRecipe:
    """How a worker gets the encoder: :func:`chorus.encoders.load_encoder` arguments."""

    name: str
    source: str | None = None
    pretrained: bool = True
    seed: int = 0

    def load(self):
        from ..encoders import load_encoder

        return load_encoder(self.name, source=self.source, pretrained=self.pretrained, seed=self.seed).eval()


@dataclass(frozen=True)
class _Job:
    recipe: EncoderRecipe
    transform: ClipTransform
    batch_size: int
    keep_frames: bool


def _portable(result: ChunkResult) -> tuple[list, list]:
    """A chunk result without exception objects (their pickles do not round-trip)."""
    failures = [(f.index, f.clip, type(f.error).__name__, str(f.error.path), f.error.reason) for f in result.failures]
    return result.batches, failures


def _restore(batches: list, failures: list) -> ChunkResult:
    rebuilt = [FailedClip(index, clip, getattr(audio, kind, audio.AudioError)(path, reason))
               for index, clip, kind, path, reason in failures]
    return ChunkResult(batches, rebuilt)


class _Worker:
    def __init__(self, job: _Job, threads: int | None):
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.encoder = job.recipe.load().to(self.device)
        self.job = job

    def compute(self, clips: list[Clip]) -> tuple[list, list]:
        job = self.job
        return _portable(compute_chunk(self.encoder, clips, job.transform, job.batch_size, job.keep_frames, self.device))


_worker: _Worker | None = None


def _init(job: _Job, threads: int) -> None:
    global _worker
    _worker = _Worker(job, threads)


def _compute(clips: list[Clip]) -> tuple[list, list]:
    assert _worker is not None, "worker not initialised"
    return _worker.compute(clips)


def pool_engine(recipe: EncoderRecipe, transform: ClipTransform, batch_size: int, keep_frames: bool,
                workers: int) -> ChunkEngine:
    """Chunks computed by ``workers`` spawned processes, results in chunk order."""

    def run(chunks: list[list[Clip]]) -> Iterator[ChunkResult]:
        import multiprocessing

        from ..predict.engines import machine_workers

        threads = max(1, machine_workers() // workers)
        context = multiprocessing.get_context("spawn")
        with context.Pool(workers, _init, (_Job(recipe, transform, batch_size, keep_frames), threads)) as pool:
            for batches, failures in pool.imap(_compute, chunks):
                yield _restore(batches, failures)

    return run


class RayEmbedder:
    """Ray Data actor holding the encoder; one call computes one chunk (one row)."""

    def __init__(self, job: _Job):
        self.worker = _Worker(job, 1)

    def __call__(self, row: dict) -> dict:
        batches, failures = self.worker.compute(list(row["clips"]))
        return {"chunk": row["chunk"], "batches": batches, "failures": failures}


def ray_engine(recipe: EncoderRecipe, transform: ClipTransform, batch_size: int, keep_frames: bool,
               workers: int | None, address: str | None) -> ChunkEngine:
    """Chunks computed by a Ray Data actor pool of ``workers`` encoders."""

    def run(chunks: list[list[Clip]]) -> Iterator[ChunkResult]:
        if not chunks:
            return
        from ..predict.engines import machine_workers, ray_session

        with ray_session(address, workers or machine_workers()):
            import ray
            import torch

            actors = max(1, min(workers or (2 if address else machine_workers()), len(chunks)))
            data = ray.data.from_items([{"chunk": i, "clips": chunk} for i, chunk in enumerate(chunks)])
            computed = data.map(RayEmbedder, fn_constructor_args=(_Job(recipe, transform, batch_size, keep_frames),),
                                concurrency=actors, num_cpus=1, num_gpus=1 if torch.cuda.is_available() else 0)
            pending: dict[int, ChunkResult] = {}
            following = 0
            for row in computed.iter_rows():
                pending[int(row["chunk"])] = _restore(row["batches"], row["failures"])
                while following in pending:
                    yield pending.pop(following)
                    following += 1

    return run


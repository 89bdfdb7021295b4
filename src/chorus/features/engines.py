"""Feature extraction on a local process pool or on Ray Data (:mod:`chorus.parallel`).

Both engines compute the same chunks as the in-process path of
:func:`~chorus.features.extract.extract_features` (with
:func:`~chorus.features.extract.compute_chunk`), so the stored features are identical;
the caller's process alone writes the store. Workers build the encoder from an
:class:`EncoderRecipe` once and hold it for the whole run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from .. import audio
from ..data.loading import FailedClip
from ..data.manifest import Clip
from ..parallel import pool_map, ray_map
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


def _portable(result: ChunkResult) -> tuple[list, list]:
    """A chunk result without exception objects (their pickles do not round-trip)."""
    failures = [(f.index, f.clip, type(f.error).__name__, str(f.error.path), f.error.reason) for f in result.failures]
    return result.batches, failures


def _restore(portable: tuple[list, list]) -> ChunkResult:
    batches, failures = portable
    rebuilt = [FailedClip(index, clip, getattr(audio, kind, audio.AudioError)(path, reason))
               for index, clip, kind, path, reason in failures]
    return ChunkResult(batches, rebuilt)


@dataclass(frozen=True)
class ChunkWorkers:
    """Worker factory (:data:`chorus.parallel.WorkerFactory`): each worker holds the encoder
    and turns a chunk of clips into its portable :class:`ChunkResult`."""

    recipe: EncoderRecipe
    transform: ClipTransform
    batch_size: int
    keep_frames: bool
    pooling: str = "mean"

    def __call__(self, threads: int | None):
        import torch

        if threads:
            torch.set_num_threads(threads)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        encoder = self.recipe.load().to(device)

        def compute(clips: list[Clip]) -> tuple[list, list]:
            return _portable(compute_chunk(encoder, clips, self.transform, self.batch_size, self.keep_frames, device,
                                           self.pooling))

        return compute


def pool_engine(recipe: EncoderRecipe, transform: ClipTransform, batch_size: int, keep_frames: bool,
                workers: int, pooling: str = "mean") -> ChunkEngine:
    """Chunks computed by ``workers`` spawned processes, results in chunk order."""

    def run(chunks: list[list[Clip]]) -> Iterator[ChunkResult]:
        for portable in pool_map(ChunkWorkers(recipe, transform, batch_size, keep_frames, pooling), chunks, workers):
            yield _restore(portable)

    return run


def ray_engine(recipe: EncoderRecipe, transform: ClipTransform, batch_size: int, keep_frames: bool,
               workers: int | None, address: str | None, pooling: str = "mean") -> ChunkEngine:
    """Chunks computed by a Ray Data actor pool of ``workers`` encoders, in chunk order."""

    def run(chunks: list[list[Clip]]) -> Iterator[ChunkResult]:
        workers_factory = ChunkWorkers(recipe, transform, batch_size, keep_frames, pooling)
        for portable in ray_map(workers_factory, chunks, workers, address):
            yield _restore(portable)

    return run

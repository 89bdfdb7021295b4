"""Feature extraction into a resumable store: load clips (bad ones reported, the rest go
on), one forward pass per batch for all layers, one atomic shard per batch."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Iterator, Sequence

from ..data.loading import FailedClip, iter_clips
from ..data.manifest import Clip
from ..encoders import Encoder
from ..progress import ProgressFactory, resolve
from .compute import encode_batches
from .identity import clip_key, digest_of, encoder_identity
from .store import FeatureBatch, FeatureStore
from .transforms import ClipTransform


@dataclass
class ExtractionReport:
    """What one extraction run did. ``keys[i]`` is the store key of ``clips[i]``."""

    keys: list[str]
    computed: int = 0
    reused: int = 0
    failures: list[FailedClip] = field(default_factory=list)

    @property
    def failed_indices(self) -> set[int]:
        return {f.index for f in self.failures}


def store_header(encoder: Encoder, transform: ClipTransform = ClipTransform(), dtype: str = "float32",
                 pooling: str = "mean") -> dict:
    """The identity of features made by ``encoder`` after ``transform`` and pooled over
    frames by ``pooling`` (the store header). Mean-pooled stores carry no ``pooling`` entry,
    so stores written before other poolings existed keep their keys."""
    identity = encoder_identity(encoder)
    header = {"encoder": identity, "layers": identity["layers"], "dims": identity["dims"],
              "transform": transform.describe(), "dtype": dtype}
    if pooling != "mean":
        widths = 2 if pooling == "mean+max" else 1
        header.update(pooling=pooling, dims=[widths * d for d in identity["dims"]])
    return header


def store_pooling(store: FeatureStore) -> str:
    """How ``store``'s pooled features were pooled over frames."""
    return store.header.get("pooling", "mean")


def clip_keys(clips: Sequence[Clip], store: FeatureStore) -> list[str]:
    """Store keys of ``clips`` (file path, range, size, mtime, and the store's identity)."""
    context = digest_of(store.header)
    return [clip_key(clip, context) for clip in clips]


@dataclass
class ChunkResult:
    """Features of one chunk of clips: ``batches`` holds ``(rows, pooled, frames)`` per
    forward batch, rows indexing the chunk; ``failures`` index the chunk too."""

    batches: list[tuple[list[int], list, list | None]]
    failures: list[FailedClip]


def compute_chunk(encoder: Encoder, clips: Sequence[Clip], transform: ClipTransform, batch_size: int,
                  keep_frames: bool, device: str = "cpu", pooling: str = "mean") -> ChunkResult:
    """Load ``clips`` (bad ones reported) and encode them, one forward pass per batch.

    Engines that run elsewhere (a process pool, Ray actors) call this on the same chunks
    as the in-process path, so the features come out identical.
    """
    failures: list[FailedClip] = []
    loaded = list(iter_clips(clips, transform.load_rate(encoder.sample_rate), failures))
    rows = [j for j, _ in loaded]
    waveforms = [transform.apply(w, clips[j]) for j, w in loaded]
    batches = [([rows[r] for r in indices], pooled, frames)
               for indices, pooled, frames in encode_batches(encoder, waveforms, batch_size, keep_frames, device,
                                                              pooling)]
    return ChunkResult(batches, failures)


ChunkEngine = Callable[[list[list[Clip]]], Iterator[ChunkResult]]
"""Computes :class:`ChunkResult` of each chunk of clips, in the order given."""


def extract_features(encoder: Encoder, clips: Sequence[Clip], store: FeatureStore, *, batch_size: int = 8,
                     transform: ClipTransform = ClipTransform(),
                     chunk_batches: int = 4, device: str = "cpu",
                     progress: ProgressFactory | None = None, engine: ChunkEngine | None = None) -> ExtractionReport:
    """Compute and store features of every clip not yet in ``store``.

    Clips are decoded ``batch_size * chunk_batches`` at a time (sorted by length within
    that chunk to limit padding), so memory stays bounded whatever the number of clips.
    A clip whose audio fails is reported in ``failures`` (index into ``clips``). Frame-level
    features are kept when the store's shard format keeps them. ``engine`` computes
    chunks elsewhere (see :mod:`chorus.features.engines`); by default, or when there is
    one chunk only, in this process.
    """
    report = ExtractionReport(clip_keys(clips, store))
    todo = [i for i, key in enumerate(report.keys) if key not in store]
    report.reused = len(clips) - len(todo)
    bar = resolve(progress)(len(clips), f"features {encoder.name}")
    bar.update(report.reused)
    chunk = max(1, batch_size * chunk_batches)
    groups = [todo[begin:begin + chunk] for begin in range(0, len(todo), chunk)]
    keep = store.format.keeps_frames
    if engine is None or len(groups) <= 1:
        results: Iterator[ChunkResult] = (
            compute_chunk(encoder, [clips[i] for i in positions], transform, batch_size, keep, device,
                          store_pooling(store))
            for positions in groups)
    else:
        results = engine([[clips[i] for i in positions] for positions in groups])
    try:
        for positions, result in zip(groups, results):
            for failure in result.failures:
                report.failures.append(replace(failure, index=positions[failure.index]))
            bar.update(len(result.failures))
            for rows, pooled, frames in result.batches:
                chosen = [positions[r] for r in rows]
                store.write(FeatureBatch([report.keys[i] for i in chosen], [clips[i] for i in chosen], pooled, frames))
                report.computed += len(rows)
                bar.update(len(rows))
    finally:
        bar.close()
    return report

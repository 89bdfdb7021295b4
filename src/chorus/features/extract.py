"""Feature extraction into a resumable store: load clips (bad ones reported, the rest go
on), one forward pass per batch for all layers, one atomic shard per batch."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

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


def store_header(encoder: Encoder, transform: ClipTransform = ClipTransform(), dtype: str = "float32") -> dict:
    """The identity of features made by ``encoder`` after ``transform`` (the store header)."""
    identity = encoder_identity(encoder)
    return {"encoder": identity, "layers": identity["layers"], "dims": identity["dims"],
            "transform": transform.describe(), "dtype": dtype}


def clip_keys(clips: Sequence[Clip], store: FeatureStore) -> list[str]:
    """Store keys of ``clips`` (file path, range, size, mtime, and the store's identity)."""
    context = digest_of(store.header)
    return [clip_key(clip, context) for clip in clips]


def extract_features(encoder: Encoder, clips: Sequence[Clip], store: FeatureStore, *, batch_size: int = 8,
                     transform: ClipTransform = ClipTransform(),
                     chunk_batches: int = 4, device: str = "cpu",
                     progress: ProgressFactory | None = None) -> ExtractionReport:
    """Compute and store features of every clip not yet in ``store``.

    Clips are decoded ``batch_size * chunk_batches`` at a time (sorted by length within
    that chunk to limit padding), so memory stays bounded whatever the number of clips.
    A clip whose audio fails is reported in ``failures`` (index into ``clips``). Frame-level
    features are kept when the store's shard format keeps them.
    """
    report = ExtractionReport(clip_keys(clips, store))
    todo = [i for i, key in enumerate(report.keys) if key not in store]
    report.reused = len(clips) - len(todo)
    bar = resolve(progress)(len(clips), f"features {encoder.name}")
    bar.update(report.reused)
    rate = transform.load_rate(encoder.sample_rate)
    chunk = max(1, batch_size * chunk_batches)
    try:
        for begin in range(0, len(todo), chunk):
            positions = todo[begin:begin + chunk]
            chunk_failures: list[FailedClip] = []
            loaded = list(iter_clips([clips[i] for i in positions], rate, chunk_failures))
            for failure in chunk_failures:
                report.failures.append(replace(failure, index=positions[failure.index]))
            bar.update(len(chunk_failures))
            indices = [positions[j] for j, _ in loaded]
            waveforms = [transform.apply(w, clips[i]) for i, (_, w) in zip(indices, loaded)]
            batches = encode_batches(encoder, waveforms, batch_size, store.format.keeps_frames, device)
            for rows, pooled, frames in batches:
                chosen = [indices[r] for r in rows]
                store.write(FeatureBatch([report.keys[i] for i in chosen], [clips[i] for i in chosen], pooled, frames))
                report.computed += len(rows)
                bar.update(len(rows))
    finally:
        bar.close()
    return report

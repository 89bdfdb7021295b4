"""``chorus embed``: pooled features of every layer for every clip (or every window of
long recordings), as sharded Parquet."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

from ..audio import AudioError, AudioWarning, audio_info
from ..data.manifest import Clip, Manifest
from ..data.windows import sliding_windows
from ..encoders import FRAME_POOLINGS, Encoder
from ..progress import ProgressFactory
from .engines import EncoderRecipe, pool_engine, ray_engine
from .errors import FeatureError
from .extract import ChunkEngine, ExtractionReport, extract_features, store_header
from .formats import ParquetShards
from .store import FeatureStore
from .transforms import ClipTransform
from ..errors import InvalidInput


def open_embedding_store(encoder: Encoder, out_dir: str | Path, dtype: str = "float32",
                         pooling: str = "mean") -> FeatureStore:
    """The Parquet store of ``encoder``'s features pooled by ``pooling`` in ``out_dir``
    (created or resumed; a store made with another pooling is refused)."""
    return FeatureStore(out_dir, store_header(encoder, dtype=dtype, pooling=pooling), ParquetShards())


def resolve_pooling(encoder: Encoder, pooling: str) -> str:
    """``pooling`` with ``native`` replaced by the encoder's own; checked."""
    resolved = encoder.resolve_pooling(pooling)
    if resolved not in FRAME_POOLINGS:
        raise FeatureError(f"unknown pooling {pooling!r}; choose {', '.join(FRAME_POOLINGS)} or native")
    return resolved


def window_clips(recordings: Sequence[Path], window: float, hop: float) -> tuple[list[Clip], list[AudioError]]:
    """One clip per sliding window of each recording (``start`` = offset in seconds; the
    last window is cut at the file's end), and the recordings whose header fails. A
    truncated recording gives an :class:`~chorus.audio.AudioWarning`."""
    clips: list[Clip] = []
    failures: list[AudioError] = []
    for path in recordings:
        try:
            info = audio_info(path)
        except AudioError as exc:
            failures.append(exc)
            continue
        if info.truncated:
            warnings.warn(f"{path}: {info.truncated}", AudioWarning, stacklevel=2)
        duration = info.duration
        clips += [Clip(Path(path).resolve(), start=w.start, end=min(w.end, duration))
                  for w in sliding_windows(duration, window, hop) if w.start < duration]
    return clips, failures


def chunk_engine(recipe: EncoderRecipe | None, engine: str, workers: int | None, address: str | None,
                 batch_size: int, pooling: str = "mean") -> ChunkEngine | None:
    """The chunk engine for ``engine`` ("local" or "ray"); None means in this process."""
    if engine == "ray":
        if recipe is None:
            raise InvalidInput("--engine ray needs an encoder recipe (workers load the encoder themselves)")
        return ray_engine(recipe, ClipTransform(), batch_size, False, workers, address, pooling)
    if engine != "local":
        raise InvalidInput(f"unknown engine {engine!r}; choose local or ray")
    if recipe is None or workers is None or workers <= 1:
        return None
    return pool_engine(recipe, ClipTransform(), batch_size, False, workers, pooling)


def embed_manifest(encoder: Encoder, manifest: Manifest | Sequence[Clip], out_dir: str | Path, *, batch_size: int = 8,
                   dtype: str = "float32", device: str = "cpu", engine: str = "local", workers: int | None = 1,
                   address: str | None = None, recipe: EncoderRecipe | None = None, pooling: str = "mean",
                   progress: ProgressFactory | None = None) -> ExtractionReport:
    """Write pooled features of all layers of every clip: ``pooling`` over valid frames
    (mean, max, ``mean+max`` = both concatenated, or ``native``: the encoder's own).

    Rows land in ``out_dir/shards/*.parquet`` (columns ``key, path, start, end, labels,
    split, group, layer_<name>``); a rerun skips clips already written. ``engine``:
    ``local`` (``workers`` spawned processes; 1 = this process) or ``ray``; remote
    workers build the encoder from ``recipe``. Every engine stores the same features.
    """
    clips = manifest.clips if isinstance(manifest, Manifest) else list(manifest)
    pooling = resolve_pooling(encoder, pooling)
    store = open_embedding_store(encoder, out_dir, dtype, pooling)
    return extract_features(encoder, clips, store, batch_size=batch_size, device=device, progress=progress,
                            engine=chunk_engine(recipe, engine, workers, address, batch_size, pooling))


def read_embeddings(out_dir: str | Path):
    """All rows written by :func:`embed_manifest` as one ``pyarrow.Table``."""
    import pyarrow.parquet as pq

    return pq.read_table(Path(out_dir) / "shards")

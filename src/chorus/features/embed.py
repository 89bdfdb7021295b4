"""``chorus embed``: pooled features of every layer for every clip, as sharded Parquet."""

from __future__ import annotations

from pathlib import Path

from ..data.manifest import Manifest
from ..encoders import Encoder
from ..progress import ProgressFactory
from .extract import ExtractionReport, extract_features, store_header
from .formats import ParquetShards
from .store import FeatureStore


def open_embedding_store(encoder: Encoder, out_dir: str | Path, dtype: str = "float32") -> FeatureStore:
    """The Parquet store of ``encoder``'s pooled features in ``out_dir`` (created or resumed)."""
    return FeatureStore(out_dir, store_header(encoder, dtype=dtype), ParquetShards())


def embed_manifest(encoder: Encoder, manifest: Manifest, out_dir: str | Path, *, batch_size: int = 8,
                   dtype: str = "float32", device: str = "cpu",
                   progress: ProgressFactory | None = None) -> ExtractionReport:
    """Write pooled (mean over valid frames) features of all layers of every clip.

    Rows land in ``out_dir/shards/*.parquet`` (columns ``key, path, start, end, labels,
    split, group, layer_<name>``); a rerun skips clips already written.
    """
    store = open_embedding_store(encoder, out_dir, dtype)
    return extract_features(encoder, manifest.clips, store, batch_size=batch_size, device=device, progress=progress)


def read_embeddings(out_dir: str | Path):
    """All rows written by :func:`embed_manifest` as one ``pyarrow.Table``."""
    import pyarrow.parquet as pq

    return pq.read_table(Path(out_dir) / "shards")

"""Shard formats of the feature store.

- :class:`ParquetShards` (``chorus embed``): one row per clip with its manifest fields
  and one fixed-size-list column per layer holding the pooled features; readable with
  ``pyarrow.parquet.read_table(store / "shards")`` or pandas.
- :class:`SafetensorsShards` (``chorus probe`` cache): pooled features plus, optionally,
  every valid frame of every layer (for attentive pooling), as plain tensors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..data.manifest import Clip
from ..fileio import atomic_path
from .store import FeatureBatch
from .errors import FeatureStoreError

LAYER_PREFIX = "layer_"
"""Parquet column of layer ``name`` is ``layer_<name>``."""


def _cast(values: np.ndarray, dtype: str, path: Path) -> np.ndarray:
    cast = np.asarray(values, dtype=np.float32).astype(dtype, copy=False)
    if not np.isfinite(cast).all():
        raise FeatureStoreError(path, f"features are not finite as {dtype} (overflow or NaN); use float32")
    return cast


class ParquetShards:
    """Pooled features as Parquet rows: key, path, start, end, labels, split, group, layer_*."""

    kind = "pooled-parquet"
    suffix = ".parquet"
    keeps_frames = False

    def write(self, path: Path, batch: FeatureBatch, layer_names: Sequence[str], dtype: str) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        value_type = pa.float16() if dtype == "float16" else pa.float32()
        columns = {
            "key": pa.array(batch.keys, pa.string()),
            "path": pa.array([str(c.path) for c in batch.clips], pa.string()),
            "start": pa.array([c.start for c in batch.clips], pa.float64()),
            "end": pa.array([c.end for c in batch.clips], pa.float64()),
            "labels": pa.array([list(c.labels) for c in batch.clips], pa.list_(pa.string())),
            "split": pa.array([c.split for c in batch.clips], pa.string()),
            "group": pa.array([c.group for c in batch.clips], pa.string()),
        }
        for name, values in zip(layer_names, batch.pooled):
            flat = pa.array(_cast(values, dtype, path).reshape(-1), value_type)
            columns[LAYER_PREFIX + name] = pa.FixedSizeListArray.from_arrays(flat, values.shape[1])
        table = pa.table(columns)
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)

    def read(self, path: Path, layer_names: Sequence[str], with_frames: bool) -> FeatureBatch:
        import pyarrow.parquet as pq

        if with_frames:
            raise ValueError("Parquet feature shards hold pooled features only")
        try:
            table = pq.read_table(path)
            pooled = []
            for name in layer_names:
                column = table.column(LAYER_PREFIX + name).combine_chunks()
                width = column.type.list_size
                pooled.append(column.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, width))
            rows = table.select(["key", "path", "start", "end", "labels", "split", "group"]).to_pylist()
        except (OSError, KeyError, ValueError) as exc:
            raise FeatureStoreError(path, f"unreadable feature shard: {exc}") from exc
        clips = [Clip(Path(r["path"]), tuple(r["labels"] or ()), r["split"], r["group"], r["start"], r["end"])
                 for r in rows]
        return FeatureBatch([r["key"] for r in rows], clips, pooled)


class SafetensorsShards:
    """Tensors ``pooled.<l>`` ``[n, D_l]``; with frames also ``frames.<l>`` ``[sum of
    frames, D_l]`` (clips concatenated in row order) and ``counts.<l>`` ``[n]`` int64."""

    suffix = ".safetensors"

    def __init__(self, keep_frames: bool):
        self.keeps_frames = keep_frames
        self.kind = "frames-safetensors" if keep_frames else "pooled-safetensors"

    def write(self, path: Path, batch: FeatureBatch, layer_names: Sequence[str], dtype: str) -> None:
        from safetensors.numpy import save_file

        tensors: dict[str, np.ndarray] = {}
        for layer, values in enumerate(batch.pooled):
            tensors[f"pooled.{layer}"] = _cast(values, dtype, path)
        if self.keeps_frames:
            if batch.frames is None:
                raise ValueError("this store keeps frames but the batch has none")
            for layer, per_clip in enumerate(batch.frames):
                tensors[f"frames.{layer}"] = _cast(np.concatenate(per_clip, axis=0), dtype, path)
                tensors[f"counts.{layer}"] = np.array([f.shape[0] for f in per_clip], np.int64)
        with atomic_path(path) as tmp:
            save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp))

    def read(self, path: Path, layer_names: Sequence[str], with_frames: bool) -> FeatureBatch:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        if with_frames and not self.keeps_frames:
            raise ValueError("this store keeps pooled features only")
        try:
            tensors = load_file(str(path))
            pooled = [tensors[f"pooled.{layer}"].astype(np.float32) for layer in range(len(layer_names))]
            frames = None
            if with_frames:
                frames = []
                for layer in range(len(layer_names)):
                    counts = tensors[f"counts.{layer}"]
                    if counts.sum() != tensors[f"frames.{layer}"].shape[0] or (counts < 0).any():
                        raise ValueError(f"layer {layer}: frame counts disagree with the frames tensor")
                    frames.append(np.split(tensors[f"frames.{layer}"], np.cumsum(counts)[:-1]))
        except (OSError, KeyError, ValueError, SafetensorError) as exc:
            raise FeatureStoreError(path, f"unreadable feature shard: {exc}") from exc
        return FeatureBatch([], [], pooled, frames)

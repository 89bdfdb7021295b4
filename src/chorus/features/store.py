"""A resumable on-disk feature store: atomic shards plus one index record per shard.

Layout of a store directory::

    store.json            header: format, shard kind, encoder identity, layers, dtype, transform
    shards/000007.<ext>   one shard per forward batch (Parquet or safetensors), written atomically
    index/000007.json     the clip keys in that shard, written atomically AFTER the shard

A clip counts as done once its index record exists, so a crash loses at most the batch
in flight; a shard without index record (crash between the two writes) is deleted on
open and its clips are computed again. One process writes a store at a time: opening a
store takes an exclusive lock on ``.lock`` in its directory (shared by every store object
of the process, released when the last is collected or the process ends, crash included);
a second process gets :class:`FeatureStoreBusy` instead of racing it.
"""

from __future__ import annotations

import json
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from ..data.manifest import Clip
from ..fileio import acquire_folder, release_folder, write_json
from .errors import FeatureStoreBusy, FeatureStoreError, FeatureStoreMismatch, MissingFeatures
from ..errors import InvalidInput

STORE_FORMAT = "chorus-features"
STORE_VERSION = 1


@dataclass
class FeatureBatch:
    """Features of ``n`` clips from one forward batch.

    ``pooled[l]``: ``[n, features_l]`` mean over valid frames of layer ``l``.
    ``frames[l]``: per-layer list of ``n`` arrays ``[frames_l(clip), features_l]`` (valid
    frames only), or None when frame-level features are not kept.
    """

    keys: list[str]
    clips: list[Clip]
    pooled: list[np.ndarray]
    frames: list[list[np.ndarray]] | None = None

    def __len__(self) -> int:
        return len(self.keys)


class ShardFormat(Protocol):
    """How a shard file holds a :class:`FeatureBatch`."""

    kind: str
    suffix: str
    keeps_frames: bool

    def write(self, path: Path, batch: FeatureBatch, layer_names: Sequence[str], dtype: str) -> None: ...

    def read(self, path: Path, layer_names: Sequence[str], with_frames: bool) -> FeatureBatch: ...


@dataclass
class LoadedFeatures:
    """Features gathered for a list of keys, rows in the order asked."""

    pooled: list[np.ndarray]
    frames: list[list[np.ndarray]] | None = None


@dataclass
class _Index:
    shard_of: dict[str, tuple[str, int]] = field(default_factory=dict)
    shard_names: list[str] = field(default_factory=list)


class FeatureStore:
    """Open (or create) the store at ``root`` for features described by ``header``.

    ``header`` must hold ``layers`` (names), ``dims`` (features per layer) and ``dtype``
    ("float32" or "float16"), plus
    anything that identifies how features were made (encoder identity, transform). An
    existing store with a different header raises :class:`FeatureStoreMismatch`.
    """

    def __init__(self, root: str | Path, header: dict[str, Any], fmt: ShardFormat):
        self.root = Path(root)
        self.format = fmt
        self.header = {"format": STORE_FORMAT, "version": STORE_VERSION, "kind": fmt.kind, **header}
        self.layer_names: list[str] = list(self.header["layers"])
        self.dims: list[int] = [int(d) for d in self.header["dims"]]
        self.dtype: str = self.header["dtype"]
        if self.dtype not in ("float32", "float16"):
            raise InvalidInput(f"feature dtype must be float32 or float16, not {self.dtype!r}")
        self._shards = self.root / "shards"
        self._records = self.root / "index"
        weakref.finalize(self, release_folder, acquire_folder(self.root, FeatureStoreBusy))
        self._open_header()
        self._drop_unindexed()
        self._index = self._read_index()
        self._next = 1 + max((int(Path(n).stem) for n in self._index.shard_names), default=-1)

    # -- opening ---------------------------------------------------------------
    def _open_header(self) -> None:
        path = self.root / "store.json"
        if not path.exists():
            write_json(path, self.header)
            return
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise FeatureStoreError(path, f"unreadable store header: {exc}") from exc
        expected = json.loads(json.dumps(self.header))
        if found != expected:
            differing = sorted(k for k in set(found) | set(expected) if found.get(k) != expected.get(k))
            raise FeatureStoreMismatch(
                path, f"holds features made differently (differs in: {', '.join(differing)}); "
                      "use another output/cache directory or delete this one")

    def _drop_unindexed(self) -> None:
        indexed = {p.stem for p in self._records.glob("*.json")}
        for shard in self._shards.glob("*"):  # shards/ and index/ appear with the first batch
            if shard.name.startswith(".") or shard.stem not in indexed:
                shard.unlink()
        for stale in self._records.glob(".*"):
            stale.unlink()

    def _read_index(self) -> _Index:
        index = _Index()
        for record_path in sorted(self._records.glob("*.json")):
            if not record_path.stem.isdigit():
                raise FeatureStoreError(record_path, "unexpected file in the store index")
            try:
                record = json.loads(record_path.read_text(encoding="utf-8"))
                keys, shard = record["keys"], record["shard"]
                if not (isinstance(shard, str) and isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
                    raise ValueError("expected {'shard': str, 'keys': [str, ...]}")
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise FeatureStoreError(record_path, f"bad index record: {exc}") from exc
            if shard != f"{record_path.stem}{self.format.suffix}" or not (self._shards / shard).is_file():
                raise FeatureStoreError(record_path, f"index names a missing or foreign shard {shard!r}")
            index.shard_names.append(shard)
            for row, key in enumerate(keys):
                index.shard_of[key] = (shard, row)
        return index

    # -- queries ---------------------------------------------------------------
    @property
    def done(self) -> set[str]:
        """Keys of every clip whose features are stored."""
        return set(self._index.shard_of)

    def __contains__(self, key: str) -> bool:
        return key in self._index.shard_of

    def __len__(self) -> int:
        return len(self._index.shard_of)

    # -- writing ---------------------------------------------------------------
    def write(self, batch: FeatureBatch) -> None:
        """Store one batch: the shard first, then its index record (both atomic)."""
        if not len(batch):
            return
        number, self._next = self._next, self._next + 1
        shard = f"{number:06d}{self.format.suffix}"
        self.format.write(self._shards / shard, batch, self.layer_names, self.dtype)
        write_json(self._records / f"{number:06d}.json", {"shard": shard, "keys": list(batch.keys)})
        self._index.shard_names.append(shard)
        for row, key in enumerate(batch.keys):
            self._index.shard_of[key] = (shard, row)

    # -- reading ---------------------------------------------------------------
    def load(self, keys: Sequence[str], with_frames: bool = False) -> LoadedFeatures:
        """Features of ``keys`` in that order; each needed shard is read once.

        Arrays come back as float32 whatever the stored dtype.
        """
        missing = [k for k in keys if k not in self._index.shard_of]
        if missing:
            raise MissingFeatures(f"{self.root}: {len(missing)} of {len(keys)} clips have no stored features")
        rows_by_shard: dict[str, list[tuple[int, int]]] = {}
        for position, key in enumerate(keys):
            shard, row = self._index.shard_of[key]
            rows_by_shard.setdefault(shard, []).append((position, row))
        pooled = [np.zeros((len(keys), dim), np.float32) for dim in self.dims]
        frames = [[None] * len(keys) for _ in self.layer_names] if with_frames else None
        for shard, pairs in rows_by_shard.items():
            part = self.format.read(self._shards / shard, self.layer_names, with_frames)
            positions = [p for p, _ in pairs]
            rows = [r for _, r in pairs]
            for layer, values in enumerate(part.pooled):
                pooled[layer][positions] = values[rows]
            if frames is not None:
                for layer, per_clip in enumerate(part.frames):
                    for position, row in pairs:
                        frames[layer][position] = per_clip[row].astype(np.float32, copy=False)
        return LoadedFeatures(pooled, frames)

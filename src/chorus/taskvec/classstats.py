"""Class statistics of a task vector: what a linear-discriminant head needs, nothing more.

``classstats.safetensors`` (optional, next to ``deltas.safetensors``) holds, over the
party's clips, the pooled features ``x [D]`` of the layer its heads read (the manifest's
``classifier.layer`` with its ``pooling``), computed on one encoder (the base encoder, or a
merged model: ``computed_on`` is that encoder's fingerprint):

- ``counts``: int64 ``[C]``, clips per class, in the order of the vector's head labels;
- ``means``: float64 ``[C, D]``, the class means ``μ_c``;
- ``scatter``: float64 ``[D, D]``, the within-class scatter ``Σ_c Σ_{i∈c} (x_i − μ_c)(x_i − μ_c)ᵀ``
  (a sum, not divided by anything).

These are sufficient statistics of a shared-covariance Gaussian (LDA) head, so heads
composed from several vectors' statistics equal the head fitted on all their clips pooled
(:mod:`chorus.taskvec.merge.stats_head`). Only multi-class heads (one label per clip) have
them. Validation: on load, the header (dtypes, ``C`` = the head's labels, ``D`` = the
head's feature width) and the manifest entry (labels, layer and pooling equal to the
head's); on read, every value finite, counts > 0, the scatter symmetric.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .errors import TaskVectorFileError
from .manifest import CLASSSTATS_FILE
SYMMETRY_TOLERANCE = 1e-9
"""Largest ``|S - Sᵀ|`` accepted, relative to ``max |S|`` (float64 sums are symmetric to rounding)."""


@dataclass
class ClassStatistics:
    """``labels`` (``C``), ``counts [C]`` int64, ``means [C, D]`` and ``scatter [D, D]`` float64
    of pooled features of ``layer`` (``pooling``), on the encoder whose fingerprint is ``computed_on``."""

    labels: list[str]
    counts: Tensor
    means: Tensor
    scatter: Tensor
    layer: str
    pooling: str
    computed_on: str

    @property
    def clips(self) -> int:
        return int(self.counts.sum())

    @classmethod
    def from_features(cls, features: Tensor, targets: Sequence[int], labels: Sequence[str], layer: str,
                      pooling: str, computed_on: str) -> "ClassStatistics":
        """Statistics of ``features [clips, D]`` with class indices ``targets [clips]`` into
        ``labels``; every class needs at least one clip (float64 throughout)."""
        from .errors import TaskVectorError

        x = features.double()
        index = torch.as_tensor(list(targets), dtype=torch.int64)
        counts = torch.bincount(index, minlength=len(labels))
        if len(counts) != len(labels) or bool((counts == 0).any()):
            missing = [label for label, n in zip(labels, counts.tolist()) if n == 0]
            raise TaskVectorError(f"class statistics need clips of every label; none of {', '.join(missing)}")
        means = torch.zeros(len(labels), x.shape[1], dtype=torch.float64).index_add_(0, index, x)
        means /= counts.unsqueeze(1).double()
        centred = x - means[index]
        scatter = centred.T @ centred
        return cls(list(labels), counts, means, (scatter + scatter.T) / 2, layer, pooling, computed_on)


def pooled_features(encoder: nn.Module, waveforms: Sequence[np.ndarray], layer: str, pooling: str,
                    batch_size: int = 8, clip_samples: int | None = None) -> Tensor:
    """``[clips, D]`` float64: the pooled ``layer`` of ``encoder`` (eval mode, no gradients)
    for each waveform (mono, at the encoder's rate), as a classifier's heads read it at
    evaluation: clips longer than ``clip_samples`` (None: no limit) are cropped to their
    centre. Clips are batched only with clips of equal length, so padding never enters a feature."""
    from ..encoders.batching import equal_length_passes
    from ..model.classifier import pool_frames

    def centred(wave: np.ndarray) -> np.ndarray:
        excess = 0 if clip_samples is None else int(np.asarray(wave).shape[-1]) - clip_samples
        return wave[excess // 2: excess // 2 + clip_samples] if excess > 0 else wave

    waveforms = [centred(w) for w in waveforms]

    position = list(encoder.layer_names).index(layer)
    rows: list[Tensor | None] = [None] * len(waveforms)
    for indices, outputs in equal_length_passes(encoder, waveforms, batch_size):
        pooled = pool_frames(outputs.hidden[position], outputs.masks[position], pooling).double()
        for row, i in zip(pooled, indices):
            rows[i] = row.clone()
    return torch.stack(rows)  # type: ignore[arg-type]


def stats_tensors(stats: ClassStatistics) -> dict[str, Tensor]:
    """The tensors of ``classstats.safetensors`` for ``stats``."""
    return {"counts": stats.counts.to(torch.int64).contiguous(), "means": stats.means.double().contiguous(),
            "scatter": stats.scatter.double().contiguous()}


def check_stats_header(path: Path, header: dict, classes: int, width: int | None) -> None:
    """``counts`` I64 ``[C]``, ``means`` F64 ``[C, D]``, ``scatter`` F64 ``[D, D]`` with ``C``
    = ``classes`` (the head's labels) and ``D`` = ``width`` (the head's input width)."""
    if set(header) != {"counts", "means", "scatter"}:
        raise TaskVectorFileError(path, f"holds {sorted(header)}, expected counts, means and scatter")
    dim = header["means"]["shape"][1] if len(header["means"]["shape"]) == 2 else -1
    expected = {"counts": ("I64", [classes]), "means": ("F64", [classes, width if width is not None else dim]),
                "scatter": ("F64", [width if width is not None else dim] * 2)}
    for key, (dtype, shape) in expected.items():
        info = header[key]
        if info["dtype"] != dtype or info["shape"] != shape:
            raise TaskVectorFileError(path, f"{key!r} is {info['dtype']}{info['shape']}, expected {dtype}{shape} "
                                            f"({classes} head labels, {width} features)")


def read_class_stats(path: Path, labels: Sequence[str], layer: str, pooling: str, computed_on: str) -> ClassStatistics:
    """Statistics from ``path``, checked: finite, counts > 0, scatter symmetric."""
    from ..tensorfile import load_tensors

    tensors = load_tensors(path)
    counts, means, scatter = tensors["counts"], tensors["means"], tensors["scatter"]
    if not (bool(torch.isfinite(means).all()) and bool(torch.isfinite(scatter).all())):
        raise TaskVectorFileError(path, "class statistics hold non-finite values")
    if bool((counts <= 0).any()):
        raise TaskVectorFileError(path, "every class count must be positive")
    scale = float(scatter.abs().max()) if scatter.numel() else 0.0
    if float((scatter - scatter.T).abs().max()) > SYMMETRY_TOLERANCE * scale:
        raise TaskVectorFileError(path, "the within-class scatter is not symmetric")
    return ClassStatistics(list(labels), counts, means, scatter, layer, pooling, computed_on)


def write_class_stats(directory: str | Path, stats: ClassStatistics) -> Path:
    """Store ``stats`` as ``classstats.safetensors`` in the task-vector ``directory`` and record
    it (sha256, labels, layer, pooling, ``computed_on``, clips) in its manifest. The labels,
    layer, pooling and width must be those of the vector's (single set of) heads."""
    from ..fileio import write_json
    from ..model.layout import parse_json_file
    from ..tensorfile import read_header, save_tensors
    from .manifest import HEAD_FILE, MANIFEST_FILE, ClassStatsEntry, TaskVectorManifest

    directory = Path(directory)
    where = directory / MANIFEST_FILE
    manifest = parse_json_file(where, TaskVectorManifest, TaskVectorFileError)
    if manifest.classifier is None or not manifest.heads:
        raise TaskVectorFileError(where, "class statistics need a task vector with a classification head")
    if manifest.classifier.task != "multiclass":
        raise TaskVectorFileError(where, "class statistics (LDA heads) need a multi-class head")
    if stats.labels != manifest.labels:
        raise TaskVectorFileError(where, f"statistics labels {stats.labels} differ from the head's {manifest.labels}")
    if (stats.layer, stats.pooling) != (manifest.classifier.layer, manifest.classifier.pooling):
        raise TaskVectorFileError(where, f"statistics of layer {stats.layer!r} ({stats.pooling}) but the head reads "
                                         f"{manifest.classifier.layer!r} ({manifest.classifier.pooling})")
    width = read_header(directory / HEAD_FILE)["0.weight"]["shape"][1]
    if stats.means.shape[1] != width:
        raise TaskVectorFileError(where, f"statistics of {stats.means.shape[1]} features, the head takes {width}")
    digest = save_tensors(directory / CLASSSTATS_FILE, stats_tensors(stats))
    entry = ClassStatsEntry(computed_on=stats.computed_on, layer=stats.layer, pooling=stats.pooling,
                            labels=stats.labels, clips=stats.clips)
    updated = manifest.model_copy(update={"files": {**manifest.files, CLASSSTATS_FILE: digest}, "classstats": entry})
    write_json(where, updated.model_dump(mode="json"))
    return directory / CLASSSTATS_FILE


@dataclass
class StatsResult:
    """What :func:`vector_class_stats` stored, and the clips that failed to decode."""

    stats: ClassStatistics
    path: Path
    failures: list


def vector_class_stats(vector_dir: str | Path, data: str | Path, split: str | None = "train", *,
                       base: nn.Module | None = None, on: nn.Module | None = None, batch_size: int = 8,
                       progress=None) -> StatsResult:
    """Class statistics of the clips of ``split`` (None: every clip) in manifest ``data``,
    stored in the task vector at ``vector_dir`` (``chorus tv stats``).

    The features are those of the base encoder (``base``, default the registered encoder
    the vector names with pretrained weights; its fingerprint must be the vector's base
    fingerprint), or of ``on`` (e.g. a merged model's encoder) when given. When the vector
    names its groups (``training.groups``, else ``group``) and the manifest has a group
    column, only those groups' clips are used.
    Clips whose label is not one of the head's are refused; multi-label clips too.
    """
    from ..data.clipset import load_eval_audio
    from ..data.manifest import read_manifest
    from ..encoders import load_encoder
    from .errors import BaseMismatchError, TaskVectorError
    from .fingerprint import base_fingerprint
    from .vector import TaskVector

    vector = TaskVector.load(vector_dir)
    manifest = vector.manifest
    if manifest.classifier is None or not manifest.heads:
        raise TaskVectorError(f"{vector_dir}: class statistics need a task vector with a classification head")
    if on is None:
        encoder = base if base is not None else load_encoder(manifest.base.encoder)
        computed_on = base_fingerprint(encoder.state_dict())
        if computed_on != manifest.base.fingerprint:
            raise BaseMismatchError(manifest.base.fingerprint, computed_on, "the encoder given for statistics")
    else:
        encoder, computed_on = on, base_fingerprint(on.state_dict())
    table = read_manifest(data)
    groups = (manifest.training.groups if manifest.training is not None and manifest.training.groups
              else [manifest.group] if manifest.group else [])
    group = groups if groups and any(c.group for c in table.clips) else None
    clips = table.select(split=split, group=group).clips
    if not clips:
        where = " ".join(part for part in (f"split {split!r}" if split else "",
                                           f"group {', '.join(group)}" if group else "") if part)
        raise TaskVectorError(f"{data}: no clips{f' of {where}' if where else ''} to compute statistics on")
    labels = manifest.labels
    audio = load_eval_audio(clips, encoder.sample_rate, progress, "loading clips for class statistics")
    targets = []
    for clip in audio.clips:
        if len(clip.labels) != 1 or clip.labels[0] not in labels:
            raise TaskVectorError(f"{data}: clip {clip.path} has labels {list(clip.labels)}; class statistics need "
                                  f"exactly one of the head's labels ({', '.join(labels)})")
        targets.append(labels.index(clip.labels[0]))
    seconds = manifest.classifier.clip_seconds
    features = pooled_features(encoder, audio.waveforms, manifest.classifier.layer, manifest.classifier.pooling,
                               batch_size, None if seconds is None else int(round(seconds * encoder.sample_rate)))
    stats = ClassStatistics.from_features(features, targets, labels, manifest.classifier.layer,
                                          manifest.classifier.pooling, computed_on)
    return StatsResult(stats, write_class_stats(vector_dir, stats), audio.failures)

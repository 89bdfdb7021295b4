"""``taskvector.json``: the validated manifest of a task vector (see docs/task-vector.md)."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ..schema import StrictModel
from ..model.schema import ClassifierSettings, HeadEntry, supported_version

FORMAT = "chorus-task-vector"
FORMAT_VERSION = 1
MANIFEST_FILE = "taskvector.json"
DELTAS_FILE = "deltas.safetensors"
HEAD_FILE = "head.safetensors"
GRAM_FILE = "gram.safetensors"
CLASSSTATS_FILE = "classstats.safetensors"
"""Logical names of buffer deltas (BatchNorm running statistics) start with this prefix."""

DeltaDtype = Literal["float32", "bfloat16", "float16"]
SparsePositions = Literal["int64", "int32", "bitmask"]


class BaseEntry(StrictModel):
    """The base encoder a vector was taken against."""

    encoder: str = Field(description="registry name, e.g. sfx-cnn")
    architecture: dict[str, Any]
    fingerprint: str = Field(pattern=r"^[0-9a-f]{64}$", description="base_fingerprint of its state dict")


class StorageSpec(StrictModel):
    """How deltas are stored: element dtype and kept fraction (1.0 = dense)."""

    dtype: DeltaDtype = "float32"
    density: float = Field(default=1.0, gt=0.0, le=1.0)


class TensorEntry(StrictModel):
    """One logical delta tensor.

    ``sparse``: stored as ``::values`` (top-|value| entries in flat row-major order) with
    their positions as ``::indices`` (``positions`` ``int64`` or ``int32``) or as a packed
    bit mask ``::mask`` (``positions`` ``bitmask``), whichever is smaller (files written
    before ``positions`` existed hold int64 indices). ``residuals``: entries of the
    exactness correction (``::residual_*``).
    """

    shape: list[int]
    sparse: bool = False
    nnz: int | None = Field(default=None, ge=0)
    positions: SparsePositions = "int64"
    residuals: int = Field(default=0, ge=0)

    @property
    def numel(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count

    @model_validator(mode="after")
    def _sparse_has_nnz(self) -> "TensorEntry":
        if self.sparse != (self.nnz is not None):
            raise ValueError("nnz is given exactly for sparse tensors")
        if self.nnz is not None and self.nnz > self.numel:
            raise ValueError(f"nnz {self.nnz} exceeds the {self.numel} elements of shape {self.shape}")
        return self


class TrainingSummary(StrictModel):
    """What the contributor trained on and how it went (no data, only counts)."""

    method: str = Field(description="full, head-only, lora or frozen:<patterns>")
    groups: list[str] = Field(default_factory=list)
    clips_per_label: dict[str, int]
    hours: float = Field(ge=0)
    epochs: int = Field(ge=0)
    best_epoch: int | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    seed: int | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    probe_metrics: dict[str, float] | None = Field(
        default=None, description="the frozen-probe baseline (the LP head on the unchanged encoder), "
                                  "keyed as metrics (valid_accuracy, test_accuracy, ...)")
    kept_probe: bool | None = Field(default=None, description="fine-tuning did not beat the baseline on "
                                                              "validation; the model is the baseline")

    @field_validator("probe_metrics")
    @classmethod
    def _finite(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is not None and not all(math.isfinite(v) for v in value.values()):
            raise ValueError("probe_metrics must be finite numbers")
        return value


class GramEntry(StrictModel):
    """Gram statistics stored in ``gram.safetensors`` (see :mod:`chorus.taskvec.gram`).

    ``computed_on``: ``finetuned`` (the party's own model, base + this vector) or the
    fingerprint of the encoder whose layers produced the inputs (e.g. a merged model, for
    RegMean++). ``clips``: how many clips were summed.
    """

    computed_on: str = Field(pattern=r"^(finetuned|[0-9a-f]{64})$")
    clips: int = Field(ge=0)


class ClassStatsEntry(StrictModel):
    """Class statistics stored in ``classstats.safetensors`` (see :mod:`chorus.taskvec.classstats`).

    ``computed_on``: fingerprint of the encoder whose pooled ``layer`` (``pooling``) gave the
    features (the base encoder, or a merged model). ``labels``: the classes, in the order of
    the head's labels. ``clips``: how many clips were summed.
    """

    computed_on: str = Field(pattern=r"^[0-9a-f]{64}$")
    layer: str
    pooling: str
    labels: list[str] = Field(min_length=1)
    clips: int = Field(gt=0)


class TaskVectorManifest(StrictModel):
    """Everything about a task vector except its tensors."""

    format: Literal["chorus-task-vector"] = FORMAT
    format_version: int
    base: BaseEntry
    group: str | None = None
    sample_rate: int = Field(gt=0)
    classifier: ClassifierSettings | None = None
    heads: list[HeadEntry] = Field(default_factory=list)
    storage: StorageSpec = Field(default_factory=StorageSpec)
    buffer_weight: float = Field(default=1.0, ge=0.0, description="weight of its buffer deltas in convex merges")
    tensors: dict[str, TensorEntry]
    training: TrainingSummary | None = None
    derivation: str | None = Field(default=None, description="arithmetic that made it, e.g. 0.5*birds + 1*frogs")
    files: dict[str, str] = Field(default_factory=dict, description="sha256 per file name")
    gram: GramEntry | None = None
    classstats: ClassStatsEntry | None = None
    creator: str | None = None
    license: str | None = None
    chorus_version: str

    @property
    def labels(self) -> list[str]:
        return [label for head in self.heads for label in head.labels]

    @field_validator("format_version")
    @classmethod
    def _known_version(cls, version: int) -> int:
        return supported_version(version, FORMAT_VERSION)

    @model_validator(mode="after")
    def _consistent(self) -> "TaskVectorManifest":
        if self.heads and self.classifier is None:
            raise ValueError("heads need classifier settings")
        unknown = set(self.files) - {DELTAS_FILE, HEAD_FILE, GRAM_FILE, CLASSSTATS_FILE}
        if unknown:
            raise ValueError(f"unknown files {sorted(unknown)}")
        if (self.gram is None) != (GRAM_FILE not in self.files):
            raise ValueError(f"gram and the sha256 of {GRAM_FILE} in files go together")
        if (self.classstats is None) != (CLASSSTATS_FILE not in self.files):
            raise ValueError(f"classstats and the sha256 of {CLASSSTATS_FILE} in files go together")
        if self.classstats is not None:
            if self.classifier is None or self.classifier.task != "multiclass":
                raise ValueError("class statistics need a multi-class head")
            if self.classstats.labels != self.labels:
                raise ValueError(f"class statistics labels {self.classstats.labels} differ from the heads' {self.labels}")
            if (self.classstats.layer, self.classstats.pooling) != (self.classifier.layer, self.classifier.pooling):
                raise ValueError(f"class statistics of layer {self.classstats.layer!r} ({self.classstats.pooling}) "
                                 f"but the heads read {self.classifier.layer!r} ({self.classifier.pooling})")
        return self

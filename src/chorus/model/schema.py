"""Pydantic schemas of a model folder's ``config.json`` (and of the older ``model.json``)
and of the head records shared with task vectors."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from ..schema import StrictModel

MODEL_FORMAT = "chorus-model"
MODEL_FORMAT_VERSION = 2
"""``config.json`` + ``model.safetensors`` + ``README.md``."""
LEGACY_FORMAT_VERSION = 1
"""``model.json`` + ``encoder.safetensors`` + ``heads.safetensors`` (still read)."""

Task = Literal["multiclass", "multilabel"]
Pooling = Literal["mean", "max", "mean+max"]


def supported_version(version: int, supported: int) -> int:
    """``version`` if this chorus reads it, else a ValueError saying which it reads."""
    if version != supported:
        raise ValueError(f"format_version {version} is not supported (this chorus reads {supported})")
    return version


class Calibration(StrictModel):
    """Statistics of one head's logits on its contributor's own validation split.

    Enough to z-score or temperature-scale heads trained apart without sharing data.
    Lists run over the head's labels, in order.
    """

    clips: int = Field(ge=0, description="validation clips the statistics come from")
    logit_mean: list[float]
    logit_std: list[float]
    temperature: float = Field(gt=0, description="T minimising validation NLL of logits / T")
    nll_before: float | None = None
    nll_after: float | None = None
    valid_counts: list[int]
    train_counts: list[int]
    priors: list[float] = Field(description="label frequency among training clips")

    def check_length(self, classes: int) -> None:
        for name in ("logit_mean", "logit_std", "valid_counts", "train_counts", "priors"):
            if len(getattr(self, name)) != classes:
                raise ValueError(f"calibration.{name} has {len(getattr(self, name))} entries for {classes} labels")


class HeadEntry(StrictModel):
    """One linear classification head: its labels, the group it was trained on, calibration."""

    group: str | None = None
    labels: list[str] = Field(min_length=1)
    calibration: Calibration | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "HeadEntry":
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("head labels repeat")
        if self.calibration is not None:
            self.calibration.check_length(len(self.labels))
        return self


class EncoderEntry(StrictModel):
    """Which encoder the model wraps: registry name and the architecture to rebuild it."""

    name: str
    architecture: dict[str, Any]
    sample_rate: int = Field(gt=0)

    @model_validator(mode="after")
    def _has_family(self) -> "EncoderEntry":
        if "family" not in self.architecture:
            raise ValueError("encoder.architecture lacks 'family'")
        return self


class ClassifierSettings(StrictModel):
    """How encoder outputs reach the heads.

    ``layer``: name of the encoder layer feeding the heads. ``pooling``: over valid frames.
    ``clip_seconds``: crop/pad length used in training (None: whole clips).
    """

    layer: str
    pooling: Pooling = "mean"
    clip_seconds: float | None = Field(default=None, gt=0)
    task: Task = "multiclass"


class ModelConfig(StrictModel):
    """``config.json`` of a chorus model folder.

    ``files``: sha256 of ``model.safetensors``; ``licenses``: licences of what was added to
    the base weights (task vectors, fine-tuning data), beside the base encoder's own;
    ``metrics``: evaluation results known when the model was written (e.g. ``valid_f1``).
    """

    VERSION: ClassVar[int] = MODEL_FORMAT_VERSION

    format: Literal["chorus-model"] = MODEL_FORMAT
    format_version: int
    encoder: EncoderEntry
    classifier: ClassifierSettings
    heads: list[HeadEntry] = Field(min_length=1)
    files: dict[str, str] = Field(description="sha256 of each weights file")
    chorus_version: str
    licenses: list[str] = Field(default_factory=list)
    metrics: dict[str, float | None] = Field(default_factory=dict, description="None: not defined (stored as null)")

    @field_validator("format_version")
    @classmethod
    def _known_version(cls, version: int) -> int:
        return supported_version(version, cls.VERSION)


class ModelJson(ModelConfig):
    """``model.json`` of a model folder in the first layout (read, never written)."""

    VERSION: ClassVar[int] = LEGACY_FORMAT_VERSION

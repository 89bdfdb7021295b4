"""Settings of a fine-tuning run (validated; recorded next to its outputs)."""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import Field

from ..schema import StrictModel
from ..model.schema import Pooling
from ..taskvec.manifest import DeltaDtype

Method = Literal["full", "head-only", "lora"]
HeadInit = Literal["probe", "random"]

DEFAULT_LR = {"full": 3e-5, "head-only": 1e-3, "lora": 1e-3}
MAX_DEFAULT_CLIP_SECONDS = 10.0


class FinetuneConfig(StrictModel):
    """Everything that decides what a fine-tuning run computes.

    ``method``: ``full`` (every encoder parameter not matched by ``freeze``), ``head-only``
    (frozen encoder: a linear probe trained end to end), ``lora`` (low-rank updates of the
    Linear/Conv layers matched by ``lora_targets``, merged at the end). ``head_init``:
    ``probe`` starts from the best L2 logistic-regression probe on the frozen features
    (LP-FT), ``random`` from a seeded random head.
    ``groups``: manifest groups trained together (empty: all; several = joint training,
    one head over the union of labels). ``clip_seconds``: crop/pad length (None: the
    longest training clip, at most 10 s). ``lr``: encoder peak LR (None: 3e-5 full,
    1e-3 LoRA); ``head_lr``: the head's. ``layer_decay``: each encoder unit (``blocks.3``,
    ...) below the last trains at this times the rate of the one above (1: one rate).
    ``warmup``: fraction of optimizer steps warming up. ``ema``: decay of a weight average
    that is validated and kept instead of the raw weights (None: none). ``patience``:
    epochs without improvement of the validation ``monitor`` metric (default loss; None:
    accuracy / mAP) before stopping. ``keep_probe``: when the best fine-tuned epoch is
    worse on validation (on ``monitor`` or on the task's main metric) than the
    frozen-probe baseline, keep the baseline (the unchanged encoder with the probe head).
    """
    encoder: str = "sfx-cnn"
    source: str | None = None
    pretrained: bool = True
    groups: list[str] = Field(default_factory=list)
    name: str | None = Field(default=None, description="group name recorded in the artifacts")
    method: Method = "full"
    freeze: list[str] = Field(default_factory=list, description="globs over encoder parameter names")
    lora_rank: int = Field(default=8, ge=1)
    lora_alpha: float = Field(default=16.0, gt=0)
    lora_targets: list[str] = Field(default_factory=list, description="globs over encoder module names")
    head_init: HeadInit = "probe"
    train_bn_stats: bool = False
    layer: str | None = None
    pooling: Pooling | Literal["native"] = "mean"
    """Over valid frames; ``native``: the encoder's own (:attr:`chorus.encoders.Encoder.native_pooling`)."""
    clip_seconds: float | None = Field(default=None, gt=0)
    epochs: int = Field(default=10, ge=1)
    batch_size: int = Field(default=16, ge=1)
    eval_batch_size: int | None = Field(default=None, ge=1)
    accumulate: int = Field(default=1, ge=1)
    lr: float | None = Field(default=None, gt=0)
    head_lr: float = Field(default=1e-4, gt=0)
    layer_decay: float = Field(default=1.0, gt=0, le=1)
    weight_decay: float = Field(default=0.01, ge=0)
    warmup: float = Field(default=0.1, ge=0, le=1)
    min_lr_ratio: float = Field(default=0.0, ge=0, le=1)
    max_grad_norm: float | None = Field(default=1.0, gt=0)
    ema: float | None = Field(default=None, ge=0, lt=1)
    patience: int | None = Field(default=3, ge=1)
    monitor: str | None = "loss"
    keep_probe: bool = True
    seed: int = 0
    device: str = "auto"
    delta_dtype: DeltaDtype = "float32"
    density: float = Field(default=1.0, gt=0, le=1)
    creator: str | None = None
    license: str | None = None

    @property
    def encoder_lr(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.method]

    def digest(self) -> str:
        """sha256 of the settings that shape training (what a resumed run must share)."""
        training = self.model_dump(exclude={"delta_dtype", "density", "creator", "license", "device"})
        return hashlib.sha256(json.dumps(training, sort_keys=True).encode()).hexdigest()

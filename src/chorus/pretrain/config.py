"""Settings of a continual pre-training run (validated; recorded in ``pretrain.json``)."""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import Field

from ..schema import StrictModel
from ..train.schedule import Stage

ObjectiveName = Literal["auto", "contrastive", "masked-prediction", "masked-spectrogram"]


def default_stages() -> list[Stage]:
    """Two short stages: warm-up to 1e-4 and decay, then re-warm to 5e-5 and re-decay."""
    return [Stage(steps=20, peak_lr=1e-4, warmup_steps=4, floor=0.1),
            Stage(steps=20, peak_lr=5e-5, warmup_steps=4, floor=0.1)]


class PretrainConfig(StrictModel):
    """Everything that decides what a continual pre-training run computes.

    ``objective``: ``auto`` picks ``contrastive`` for wav2vec2, ``masked-prediction`` for the
    other wav2vec2-style transformers (HuBERT, WavLM, MERT) and ``masked-spectrogram`` for
    ``sfx-cnn``. ``stages``: the LR schedule and per-stage frozen parameter globs (over the
    encoder's parameter names). ``head_lr_scale``: the loss heads (new, random) train at
    this multiple of the encoder's rate. ``clip_seconds``: training crop length.
    ``mask_prob``/``mask_span``: transformer span masking; ``patch_ratio``/``reconstruction``:
    spectrogram masking; ``clusters``/``teacher_layer``/``kmeans_frames``: k-means targets
    (teacher layer by name or index, default the middle layer). ``checkpoint_every``:
    optimizer steps between checkpoints (stage ends are always checkpointed).
    """
    encoder: str = "sfx-cnn"
    source: str | None = None
    pretrained: bool = True
    objective: ObjectiveName = "auto"
    name: str | None = Field(default=None, description="the new domain, recorded as the task vector's group")
    stages: list[Stage] = Field(default_factory=default_stages, min_length=1)
    batch_size: int = Field(default=8, ge=1)
    clip_seconds: float = Field(default=2.0, gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    head_lr_scale: float = Field(default=10.0, gt=0)
    max_grad_norm: float | None = Field(default=1.0, gt=0)
    train_bn_stats: bool = False
    mask_prob: float = Field(default=0.65, gt=0, lt=1)
    mask_span: int = Field(default=10, ge=1)
    patch_ratio: float = Field(default=0.4, gt=0, lt=1)
    reconstruction: Literal["l1", "l2"] = "l2"
    clusters: int = Field(default=100, ge=2)
    teacher_layer: str | None = None
    kmeans_frames: int = Field(default=20_000, ge=2)
    checkpoint_every: int | None = Field(default=None, ge=1)
    seed: int = 0
    device: str = "cpu"

    @property
    def total_steps(self) -> int:
        return sum(stage.steps for stage in self.stages)

    def digest(self) -> str:
        """sha256 of the settings that shape training (what a resumed run must share)."""
        training = self.model_dump(mode="json", exclude={"device", "checkpoint_every", "name"})
        return hashlib.sha256(json.dumps(training, sort_keys=True).encode()).hexdigest()

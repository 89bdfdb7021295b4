"""Settings of a distillation run and its error type."""

from __future__ import annotations

from pydantic import Field, model_validator

from ..schema import FrozenModel
from .errors import DistillError


class DistillConfig(FrozenModel):
    """Optimisation and layer-mapping settings.

    ``teacher_layers``: per teacher name, the teacher layers to predict (absent: three
    layers spread over the teacher's depth, at 1/3, 2/3 and the end, as DistilHuBERT
    predicts layers 4, 8 and 12 of 12). Peak learning rate ``lr`` for AdamW with
    ``weight_decay`` (linear warm-up over the first 10 % of the optimizer steps, then a
    cosine decay to 0); ``epochs`` passes over the clips in batches of ``batch_size``
    (shuffled per epoch from ``seed``).
    """

    student_layer: str | None = Field(None, description="the student layer every head reads (None: its last)")
    teacher_layers: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    head_hidden: int = Field(256, description="width of each head's hidden layer")
    cosine_weight: float = Field(1.0, description="λ of the −log σ(cos) term")
    epochs: int = 10
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> "DistillConfig":
        if self.epochs < 1 or self.batch_size < 1 or self.head_hidden < 1:
            raise DistillError("epochs, batch_size and head_hidden must be at least 1")
        if not self.lr > 0 or self.weight_decay < 0 or self.cosine_weight < 0:
            raise DistillError(f"need lr > 0, weight_decay >= 0 and cosine_weight >= 0 "
                               f"(got {self.lr}, {self.weight_decay}, {self.cosine_weight})")
        return self

    def layers_of(self, teacher: str, layer_names: tuple[str, ...]) -> tuple[str, ...]:
        """The teacher layers to predict for ``teacher`` (validated against its layers)."""
        chosen = self.teacher_layers.get(teacher)
        if chosen is None:
            depth = len(layer_names)
            picks = sorted({max(0, round(depth * k / 3) - 1) for k in (1, 2, 3)})
            return tuple(layer_names[i] for i in picks)
        unknown = [name for name in chosen if name not in layer_names]
        if unknown or not chosen:
            raise DistillError(f"teacher {teacher!r} has no layer(s) {unknown or '(none given)'}; "
                               f"layers: {', '.join(layer_names)}")
        return tuple(chosen)

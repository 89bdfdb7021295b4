"""What a prediction run does: windows, thresholds, output format, batching."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..model.schema import ModelConfig
from .detect import class_thresholds
from .outputs import check_format
from .stream import WindowSpec
from ..errors import InvalidInput

DEFAULT_WINDOW = 3.0
"""Window (s) when neither the caller nor the model (``classifier.clip_seconds``) sets one."""


@dataclass(frozen=True)
class PredictSettings:
    """``window``/``hop`` in seconds (None: the model's training clip length, else
    :data:`DEFAULT_WINDOW`; hop defaults to the window). ``threshold``: score a window
    needs to count as a detection; ``class_thresholds`` override it per class.
    ``batch_size`` windows per forward pass, ``open_files`` recordings streamed side by
    side, decoded in blocks of ``block_seconds``. ``merge``: join detections of a class
    separated by at most ``max_gap`` seconds, each at most ``max_length`` seconds long
    (None: no cap); without it, one detection per window (see
    :func:`~chorus.predict.detect.detections`)."""

    window: float | None = None
    hop: float | None = None
    format: str = "raven"
    threshold: float = 0.5
    class_thresholds: dict[str, float] = field(default_factory=dict)
    batch_size: int = 16
    open_files: int = 4
    block_seconds: float = 60.0
    merge: bool = True
    max_gap: float = 0.0
    max_length: float | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.open_files < 1:
            raise InvalidInput(f"batch_size and open_files must be >= 1, got {self.batch_size}, {self.open_files}")
        if not (math.isfinite(self.max_gap) and self.max_gap >= 0):
            raise InvalidInput(f"max_gap must be >= 0 seconds, got {self.max_gap}")
        if self.max_length is not None and not (math.isfinite(self.max_length) and self.max_length > 0):
            raise InvalidInput(f"max_length must be > 0 seconds, got {self.max_length}")

    def merging(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~chorus.predict.detect.detections`."""
        return {"merge": self.merge, "max_gap": self.max_gap, "max_length": self.max_length}

    def window_warning(self, record: ModelConfig) -> str | None:
        """A note when ``window`` differs from the clip length the model was trained on."""
        trained = record.classifier.clip_seconds
        if self.window is None or trained is None or abs(self.window - trained) < 1e-9:
            return None
        return (f"--window {self.window:g} s differs from the model's clip length {trained:g} s: scores of longer "
                "or shorter windows are not what the model was trained on")

    def spec(self, record: ModelConfig) -> WindowSpec:
        """Window geometry at the model's sample rate."""
        window = self.window or record.classifier.clip_seconds or DEFAULT_WINDOW
        return WindowSpec(window, self.hop or window, record.encoder.sample_rate, self.block_seconds)

    def identity(self, record: ModelConfig) -> dict[str, Any]:
        """Everything that changes the output bytes (the batch size included: it fixes the
        shape every window is computed in). Validates format and thresholds."""
        labels = model_labels(record)
        check_format(self.format, labels)
        thresholds = class_thresholds(labels, self.threshold, self.class_thresholds)
        spec = self.spec(record)
        return {"window_samples": spec.window_samples, "hop_samples": spec.hop_samples, "rate": spec.rate,
                "format": self.format, "thresholds": thresholds.tolist(), "batch_size": self.batch_size,
                **self.merging()}


def model_labels(record: ModelConfig) -> list[str]:
    """The model's classes, head after head."""
    return [label for head in record.heads for label in head.labels]

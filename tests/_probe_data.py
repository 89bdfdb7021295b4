"""Tiny labelled tone datasets for feature and probe tests (16 kHz, fractions of a second)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from chorus.audio import write_audio
from chorus.data.manifest import Clip, Manifest

TONES = {"low": 400.0, "mid": 1100.0, "high": 2600.0}
SPLIT_CYCLE = ("train", "train", "train", "valid", "test")


def tone_manifest(root: Path, per_class: int = 10, seconds: tuple[float, float] = (0.3, 0.6), seed: int = 0,
                  labels: dict[str, float] = TONES) -> Manifest:
    """``per_class`` noisy jittered tones per label, splits cycling 3:1:1, variable lengths."""
    rng = np.random.default_rng(seed)
    clips = []
    for label, frequency in labels.items():
        for i in range(per_class):
            samples = int(16_000 * rng.uniform(*seconds))
            t = np.arange(samples) / 16_000
            f = frequency * (1 + 0.04 * rng.standard_normal())
            wave = 0.3 * np.sin(2 * np.pi * f * t) + 0.08 * rng.standard_normal(samples)
            path = root / f"{label}_{i:02d}.wav"
            write_audio(path, wave.astype(np.float32), 16_000)
            clips.append(Clip(path, (label,), SPLIT_CYCLE[i % len(SPLIT_CYCLE)]))
    return Manifest(clips, root)

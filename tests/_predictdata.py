"""Tiny models and recordings for the predict tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from chorus.audio import write_audio
from chorus.encoders import build_encoder
from chorus.model import ClassifierModel, ClassifierSettings, HeadEntry


def toy_model(directory: Path, channels=(16, 32, 32), task="multilabel") -> Path:
    """A saved toy-cnn classifier with classes a, b, c (seeded weights)."""
    torch.manual_seed(0)
    encoder = build_encoder({"family": "toy-cnn", "channels": list(channels)})
    model = ClassifierModel(encoder, [HeadEntry(labels=["a", "b"]), HeadEntry(labels=["c"])],
                            ClassifierSettings(layer="conv2", task=task))
    return model.eval().save_pretrained(directory)


def recordings(folder: Path, seconds=(5.3, 12.0, 0.4), rate=16_000, seed=0) -> list[Path]:
    """Noise recordings with a loud tone burst in the middle, ``rec<i>.wav``."""
    rng = np.random.default_rng(seed)
    paths = []
    for index, length in enumerate(seconds):
        samples = int(length * rate)
        wave = 0.05 * rng.standard_normal(samples)
        middle = slice(samples // 3, 2 * samples // 3)
        wave[middle] += 0.5 * np.sin(2 * np.pi * 1500 * np.arange(middle.stop - middle.start) / rate)
        paths.append(folder / f"rec{index}.wav")
        write_audio(paths[-1], wave.astype(np.float32), rate)
    return paths


def tree_bytes(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (journal included) as ``{relative path: bytes}``."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

"""Tiny labelled tone data for the fine-tuning and task-vector tests (no apt packages)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from chorus.data.manifest import Clip, Manifest, write_manifest

TONES = {"g1": {"g1/low": 400.0, "g1/high": 2400.0}, "g2": {"g2/mid": 1200.0, "g2/buzz": 5000.0}}
PER_SPLIT = {"train": 4, "valid": 2, "test": 2}


def write_tone_dataset(root: Path, sample_rate: int = 16_000, seconds: float = 0.5) -> Path:
    """Two groups of two tone classes with noise; clip lengths vary around ``seconds``.
    Returns the manifest path."""
    rng = np.random.default_rng(0)
    clips = []
    for group, labels in TONES.items():
        for label, frequency in labels.items():
            for split, count in PER_SPLIT.items():
                for index in range(count):
                    duration = seconds * rng.uniform(0.8, 1.2)
                    t = np.arange(int(duration * sample_rate)) / sample_rate
                    pitch = frequency * rng.uniform(0.9, 1.1)
                    wave = 0.4 * np.sin(2 * np.pi * pitch * t) + 0.1 * rng.standard_normal(t.size)
                    path = root / "audio" / f"{label.replace('/', '_')}_{split}_{index}.wav"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    sf.write(path, wave.astype(np.float32), sample_rate)
                    clips.append(Clip(path=path, labels=(label,), split=split, group=group))
    manifest_path = root / "manifest.csv"
    write_manifest(Manifest(clips=clips, root=root), manifest_path)
    return manifest_path


def tone_manifest(root: Path) -> Manifest:
    """The same dataset as a Manifest object (written to ``root``)."""
    write_tone_dataset(root)
    clips = []
    for group, labels in TONES.items():
        for label in labels:
            for split, count in PER_SPLIT.items():
                for index in range(count):
                    path = root / "audio" / f"{label.replace('/', '_')}_{split}_{index}.wav"
                    clips.append(Clip(path=path, labels=(label,), split=split, group=group))
    return Manifest(clips=clips, root=root)

"""Tiny labelled tone data for the fine-tuning and task-vector tests (no apt packages)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from chorus.data.manifest import Clip, Manifest, write_manifest

TONES = {"g1": {"g1/low": 400.0, "g1/high": 2400.0}, "g2": {"g2/mid": 1200.0, "g2/buzz": 5000.0}}
PER_SPLIT = {"train": 4, "valid": 2, "test": 2}


def tone_manifest(root: Path, sample_rate: int = 16_000, seconds: float = 0.5) -> Manifest:
    """Two groups of two tone classes with noise (clip lengths vary around ``seconds``),
    written under ``root`` with ``manifest.csv``."""
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
    manifest = Manifest(clips=clips, root=root, source=root / "manifest.csv")
    write_manifest(manifest, root / "manifest.csv")
    return manifest


def multilabel_manifest(root: Path, sample_rate: int = 16_000) -> Manifest:
    """Clips holding one or two of three tones; labels are the tones present."""
    rng = np.random.default_rng(1)
    tones = {"a": 500.0, "b": 1500.0, "c": 3500.0}
    combos = [("a",), ("b",), ("c",), ("a", "b"), ("b", "c"), ("a", "c")]
    clips = []
    t = np.arange(int(0.4 * sample_rate)) / sample_rate
    for split, repeats in (("train", 2), ("valid", 1)):
        for repeat in range(repeats):
            for combo in combos:
                wave = sum(0.3 * np.sin(2 * np.pi * tones[label] * t) for label in combo)
                wave = wave + 0.05 * rng.standard_normal(t.size)
                path = root / f"{split}_{repeat}_{''.join(combo)}.wav"
                root.mkdir(parents=True, exist_ok=True)
                sf.write(path, wave.astype(np.float32), sample_rate)
                clips.append(Clip(path=path, labels=combo, split=split))
    return Manifest(clips=clips, root=root)

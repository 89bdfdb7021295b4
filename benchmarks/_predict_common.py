"""Shared set-up of the predict benchmarks: the bench-data recordings and model directories."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from chorus.encoders import load_encoder
from chorus.model import ClassifierModel, ClassifierSettings, HeadEntry

BENCH_DATA = Path(__file__).resolve().parent.parent / "bench-data"


def bench_recording(name: str) -> Path:
    """``bench-data/<name>.wav``; exits with a hint when ``make bench-data`` has not run."""
    path = BENCH_DATA / f"{name}.wav"
    if not path.is_file():
        sys.exit(f"{path} is missing: run `make bench-data` first")
    return path


def model_dir(encoder: str, directory: Path, classes: int = 8) -> Path:
    """A saved classifier: ``encoder`` (its own weights) plus a seeded random multi-label head."""
    torch.manual_seed(0)
    net = load_encoder(encoder)
    heads = [HeadEntry(labels=[f"sp{i:02d}" for i in range(classes)])]
    model = ClassifierModel(net, heads, ClassifierSettings(layer=net.layer_names[-1], task="multilabel"))
    return model.eval().save_pretrained(directory)

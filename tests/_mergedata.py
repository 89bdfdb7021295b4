"""Saved toy-cnn task vectors with heads and calibration, for the merge and compose tests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Sequence

import torch

from chorus.encoders import load_encoder
from chorus.model import Calibration, ClassifierSettings, HeadEntry
from chorus.taskvec import TaskVector

SETTINGS = ClassifierSettings(layer="conv3", pooling="mean", clip_seconds=0.5, task="multiclass")


def perturbed(base, seed: int, scale: float = 0.02, buffers: bool = False):
    """A 'fine-tuned' copy of ``base``: parameters (and optionally BatchNorm running
    statistics) moved by seeded noise."""
    tuned = copy.deepcopy(base)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in tuned.parameters():
            parameter.add_(scale * torch.randn(parameter.shape, generator=gen))
        if buffers:
            for name, buffer in tuned.named_buffers():
                if buffer.is_floating_point():
                    buffer.add_(scale * torch.rand(buffer.shape, generator=gen))
    return tuned


def calibration(labels: Sequence[str], seed: int) -> Calibration:
    gen = torch.Generator().manual_seed(100 + seed)
    n = len(labels)
    return Calibration(clips=10, logit_mean=torch.randn(n, generator=gen).tolist(),
                       logit_std=(0.5 + torch.rand(n, generator=gen)).tolist(), temperature=1.5 + seed / 10,
                       valid_counts=[2] * n, train_counts=[5] * n, priors=[1.0 / n] * n)


def toy_vector(base, group: str, labels: Sequence[str], seed: int, *, buffers: bool = False,
               settings: ClassifierSettings = SETTINGS, width: int = 32) -> TaskVector:
    gen = torch.Generator().manual_seed(200 + seed)
    head = (torch.randn(len(labels), width, generator=gen), torch.randn(len(labels), generator=gen))
    return TaskVector.from_models(base, perturbed(base, seed, buffers=buffers), group=group, classifier=settings,
                                  heads=[HeadEntry(group=group, labels=list(labels), calibration=calibration(labels, seed))],
                                  head_tensors=[head])


GROUPS = {"birds": ["birds/a", "birds/b", "shared"], "frogs": ["frogs/a", "shared"], "bugs": ["bugs/a", "bugs/b"]}


def saved_vectors(root: Path, base=None, buffers: bool = False) -> list[Path]:
    """Three saved vectors (one per group of :data:`GROUPS`; label ``shared`` in two)."""
    base = base if base is not None else load_encoder("toy-cnn")
    paths = []
    for seed, (group, labels) in enumerate(GROUPS.items()):
        path = root / group
        toy_vector(base, group, labels, seed, buffers=buffers).save(path)
        paths.append(path)
    return paths

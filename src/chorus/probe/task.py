"""What a probe learns: the clips of each split, their label space and target encoding."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.manifest import Clip, Manifest
from ..errors import ChorusError
from .metrics import PRIMARY_METRIC, TASK_KINDS

PROBE_SPLITS = ("train", "valid", "test")


class ProbeTaskError(ChorusError):
    """The data cannot be probed as asked (missing splits, unlabelled clips...)."""


@dataclass
class ProbeTask:
    """Clips with labels and splits, and the task kind.

    ``kind``: ``multiclass`` (one label per clip), ``multilabel`` (any number), or
    ``detection`` (windows over long recordings, multi-hot, scored like multi-label).
    """

    kind: str
    labels: list[str]
    clips: list[Clip]

    def __post_init__(self) -> None:
        if self.kind not in TASK_KINDS:
            raise ValueError(f"unknown task kind {self.kind!r}; known: {', '.join(TASK_KINDS)}")

    @property
    def metric(self) -> str:
        """The metric that selects layers and learning rates."""
        return PRIMARY_METRIC[self.kind]

    def indices(self, split: str) -> list[int]:
        return [i for i, clip in enumerate(self.clips) if clip.split == split]

    def targets(self, indices: list[int]) -> np.ndarray:
        """Class indices ``[n]`` (multi-class) or multi-hot ``[n, classes]`` float32."""
        position = {label: i for i, label in enumerate(self.labels)}
        if self.kind == "multiclass":
            return np.array([position[self.clips[i].label] for i in indices], np.int64)
        hot = np.zeros((len(indices), len(self.labels)), np.float32)
        for row, i in enumerate(indices):
            for label in self.clips[i].labels:
                hot[row, position[label]] = 1.0
        return hot


def task_from_manifest(manifest: Manifest) -> ProbeTask:
    """A multi-class or (when any clip has several labels) multi-label task.

    Every clip needs a split among train/valid/test and, for multi-class, one label;
    all problems are reported at once.
    """
    kind = "multilabel" if manifest.multi_label else "multiclass"
    problems = []
    for row, clip in enumerate(manifest.clips, start=1):
        if clip.split not in PROBE_SPLITS:
            problems.append(f"clip {row} ({clip.path}): split {clip.split!r} is not one of {', '.join(PROBE_SPLITS)}")
        if kind == "multiclass" and len(clip.labels) != 1:
            problems.append(f"clip {row} ({clip.path}): expected one label, found {list(clip.labels)}")
    present = {clip.split for clip in manifest.clips}
    problems += [f"no clip in split {split!r}" for split in PROBE_SPLITS if split not in present]
    if problems:
        where = manifest.source or manifest.root
        raise ProbeTaskError(f"{where}: cannot probe:\n  " + "\n  ".join(problems))
    return ProbeTask(kind, manifest.labels, list(manifest.clips))

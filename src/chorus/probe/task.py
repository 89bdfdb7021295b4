"""What a probe learns: the clips of each split, their label space and target encoding.

Classification tasks come straight from a manifest. A detection task comes from long
recordings annotated with Raven selection tables: each recording is cut into sliding
windows (BEANS-style: full windows only, the tail shorter than a window dropped), and a
window is positive for a label when it overlaps an event of that label by more than
``min_overlap`` (20 %) of the shorter of the two (:func:`chorus.data.windows.label_windows`).
Windows keep their recording's split, so no recording straddles two splits.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..audio import AudioError, audio_info
from ..data.errors import AnnotationError
from ..data.annotations import read_raven
from ..data.labels import LabelMap
from ..data.manifest import Clip, Manifest
from ..data.windows import label_windows, sliding_windows
from ..metrics import PRIMARY, TASK_KINDS
from .errors import ProbeTaskError
from ..errors import InvalidInput

ANNOTATION_COLUMN = "annotations"
"""Manifest column naming each recording's Raven selection table (relative to the
manifest's folder). Without it, ``<stem>.Table.1.selections.txt`` or
``<stem>.selections.txt`` next to the recording is used."""

PROBE_SPLITS = ("train", "valid", "test")


@dataclass
class ProbeTask:
    """Clips with labels and splits, and the task kind.

    ``kind``: ``multiclass`` (one label per clip), ``multilabel`` (any number), or
    ``detection`` (windows over long recordings, multi-hot, scored like multi-label).
    ``skipped``: ``(path, reason)`` of inputs left out while building the task.
    """

    kind: str
    labels: list[str]
    clips: list[Clip]
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.kind not in TASK_KINDS:
            raise InvalidInput(f"unknown task kind {self.kind!r}; known: {', '.join(TASK_KINDS)}")

    @property
    def metric(self) -> str:
        """The metric that selects layers and learning rates."""
        return PRIMARY[self.kind]

    def indices(self, split: str) -> list[int]:
        return [i for i, clip in enumerate(self.clips) if clip.split == split]

    def targets(self, indices: list[int]) -> np.ndarray:
        """Class indices ``[n]`` (multi-class) or multi-hot ``[n, classes]`` float32."""
        return LabelMap(tuple(self.labels)).encode([self.clips[i] for i in indices],
                                                    multi_hot=self.kind != "multiclass")


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
    _check_splits(manifest.clips, problems, manifest.source or manifest.root)
    return ProbeTask(kind, manifest.labels, list(manifest.clips))


def _check_splits(clips: list[Clip], problems: list[str], where: Path) -> None:
    present = {clip.split for clip in clips}
    problems += [f"no clip in split {split!r}" for split in PROBE_SPLITS if split not in present]
    if problems:
        raise ProbeTaskError(f"{where}: cannot probe:\n  " + "\n  ".join(problems))


def annotation_table(manifest: Manifest, row: int) -> Path:
    """The Raven table of recording ``row`` (see :data:`ANNOTATION_COLUMN`)."""
    column = next((name for name in manifest.extra if name.strip().lower() == ANNOTATION_COLUMN), None)
    if column is not None and manifest.extra[column][row].strip():
        base = manifest.source.parent if manifest.source is not None else manifest.root
        return (base / manifest.extra[column][row].strip()).resolve()
    path = Path(manifest.clips[row].path)
    candidates = [path.with_name(f"{path.stem}.Table.1.selections.txt"), path.with_name(f"{path.stem}.selections.txt")]
    return next((c for c in candidates if c.exists()), candidates[0])


def detection_task(manifest: Manifest, window: float, hop: float, min_overlap: float = 0.2) -> ProbeTask:
    """Windows of ``window`` s every ``hop`` s over each recording, labelled from its Raven
    table (events of other files, by ``Begin Path``, are ignored). Recordings whose audio
    or table cannot be read are skipped and reported in ``skipped``."""
    clips: list[Clip] = []
    skipped: list[tuple[str, str]] = []
    problems = [f"recording {row} ({clip.path}): split {clip.split!r} is not one of {', '.join(PROBE_SPLITS)}"
                for row, clip in enumerate(manifest.clips, start=1) if clip.split not in PROBE_SPLITS]
    if problems:
        raise ProbeTaskError(f"{manifest.source or manifest.root}: cannot probe:\n  " + "\n  ".join(problems))
    for row, recording in enumerate(manifest.clips):
        try:
            duration = audio_info(recording.path).duration
            events = read_raven(annotation_table(manifest, row))
        except (AudioError, AnnotationError) as exc:
            skipped.append((str(recording.path), str(exc)))
            continue
        events = [e for e in events if e.path is None or Path(e.path).name == Path(recording.path).name]
        offset = recording.start or 0.0
        length = (recording.end if recording.end is not None else duration) - offset
        windows = sliding_windows(max(length, 0.0), window, hop, partial="drop")
        shifted = [replace(w, start=w.start + offset, end=w.end + offset) for w in windows]
        for span, labels in zip(shifted, label_windows(shifted, events, min_overlap)):
            clips.append(Clip(recording.path, labels, recording.split, recording.group, span.start, span.end))
    _check_splits(clips, [], manifest.source or manifest.root)
    labels = sorted({label for clip in clips for label in clip.labels})
    if not labels:
        raise ProbeTaskError(f"{manifest.source or manifest.root}: no window overlaps any annotated event")
    return ProbeTask("detection", labels, clips, skipped)

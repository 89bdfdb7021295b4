"""Clips and manifests: the in-memory form of a labelled dataset.

A clip names an audio file, its labels and optionally a split, a group (taxon,
institution, culture) and a time range inside the file. Reading, validating and writing
manifests lives in :mod:`chorus.data.manifest`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable

SPLITS = ("train", "valid", "test")
"""The split names chorus knows; anything else in a manifest is an error."""

SPLIT_ALIASES = {"validation": "valid", "val": "valid", "dev": "valid"}
"""Other spellings accepted for :data:`SPLITS` (case-insensitive), mapped to chorus's name."""


def canonical_split(name: str) -> str | None:
    """``"Validation"`` -> ``"valid"``; None when ``name`` is no known split or alias."""
    key = name.strip().lower()
    key = SPLIT_ALIASES.get(key, key)
    return key if key in SPLITS else None


@dataclass(frozen=True)
class Clip:
    """One labelled stretch of audio.

    ``path``: absolute path of the audio file. ``labels``: one label for multi-class
    data, several for multi-label data, none for unlabelled data (pre-training).
    ``start``/``end``: seconds inside the file, or None for the whole file.
    """

    path: Path
    labels: tuple[str, ...] = ()
    split: str | None = None
    group: str | None = None
    start: float | None = None
    end: float | None = None

    @property
    def label(self) -> str:
        """The single label of a multi-class clip."""
        if len(self.labels) != 1:
            raise ValueError(f"{self.path}: expected exactly one label, found {list(self.labels)}")
        return self.labels[0]


@dataclass
class Manifest:
    """A list of clips plus where they came from. Rows keep their file order.

    ``root``: the dataset folder every clip lies in. ``source``: the manifest file (or
    folder) it was read from. ``extra``: columns chorus does not interpret, one value
    per clip, in clip order.
    """

    clips: list[Clip]
    root: Path
    source: Path | None = None
    extra: dict[str, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.clips)

    def __iter__(self):
        return iter(self.clips)

    @property
    def labels(self) -> list[str]:
        """Sorted union of all labels."""
        return sorted({label for clip in self.clips for label in clip.labels})

    @property
    def groups(self) -> list[str]:
        """Sorted distinct groups (empty when the manifest has no group column)."""
        return sorted({clip.group for clip in self.clips if clip.group is not None})

    @property
    def splits(self) -> list[str]:
        """The splits present, in :data:`SPLITS` order."""
        present = {clip.split for clip in self.clips}
        return [name for name in SPLITS if name in present]

    @property
    def multi_label(self) -> bool:
        """True when any clip carries more than one label."""
        return any(len(clip.labels) > 1 for clip in self.clips)

    def select(self, *, split: str | None = None, group: str | Iterable[str] | None = None) -> "Manifest":
        """The clips of one split and/or group(s), as a new manifest (extra columns follow)."""
        groups = None if group is None else ({group} if isinstance(group, str) else set(group))
        keep = [i for i, c in enumerate(self.clips)
                if (split is None or c.split == split) and (groups is None or c.group in groups)]
        return self.take(keep)

    def take(self, indices: Iterable[int]) -> "Manifest":
        """The clips at ``indices`` (in that order), as a new manifest (extra columns follow)."""
        indices = list(indices)
        return replace(self, clips=[self.clips[i] for i in indices],
                       extra={name: [values[i] for i in indices] for name, values in self.extra.items()})

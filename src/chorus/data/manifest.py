"""The manifest: a validated list of labelled clips.

A manifest row names an audio file, its labels and optionally a split, a group (taxon,
institution, culture) and a time range inside the file. Paths are resolved against the
dataset root and must stay inside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable

SPLITS = ("train", "valid", "test")
"""The split names chorus knows; anything else in a manifest is an error."""


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
    """A list of clips plus where they came from. Rows keep their file order."""

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
    def multi_label(self) -> bool:
        """True when any clip carries more than one label."""
        return any(len(clip.labels) > 1 for clip in self.clips)

    def select(self, *, split: str | None = None, group: str | Iterable[str] | None = None) -> "Manifest":
        """The clips of one split and/or group(s), as a new manifest."""
        groups = None if group is None else ({group} if isinstance(group, str) else set(group))
        kept = [c for c in self.clips
                if (split is None or c.split == split) and (groups is None or c.group in groups)]
        return replace(self, clips=kept, extra={})


MANIFEST_COLUMNS = ("path", "label", "split", "group", "start", "end")
"""Column order chorus writes. ``label`` joins multiple labels with ``;``."""


def write_manifest(manifest: Manifest, path: str | Path) -> None:
    """Write ``manifest`` as CSV (paths relative to the CSV's folder when inside it), atomically."""
    import csv
    import io

    from ..fileio import write_text

    path = Path(path)
    base = path.parent.resolve()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    for clip in manifest.clips:
        clip_path = Path(clip.path).resolve()
        shown = clip_path.relative_to(base) if clip_path.is_relative_to(base) else clip_path
        writer.writerow([
            shown.as_posix(), ";".join(clip.labels), clip.split or "", clip.group or "",
            "" if clip.start is None else repr(float(clip.start)),
            "" if clip.end is None else repr(float(clip.end)),
        ])
    write_text(path, buffer.getvalue())

"""Sliding windows over a recording, and window labels from annotated events.

Used by detection probing and ``chorus predict``: a long recording is cut into windows
of ``window`` seconds every ``hop`` seconds, and each window gets the labels of the
events it overlaps enough.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from .annotations import Event
from ..errors import InvalidInput

PARTIAL_MODES = ("pad", "drop")
_CHUNK_CELLS = 1 << 20  # window x event overlaps computed at once


@dataclass(frozen=True)
class Window:
    """``[start, end)`` seconds. A padded last window ends after the recording."""

    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def sliding_windows(duration: float, window: float, hop: float, *, partial: str = "pad") -> list[Window]:
    """Windows of ``window`` seconds starting every ``hop`` seconds over ``duration`` seconds.

    Full windows start at ``0, hop, 2*hop, ...`` while they end within the recording.
    When they leave a tail uncovered (or the recording is shorter than one window),
    ``partial="pad"`` adds one last window that runs past the end (fill its audio with
    zeros); ``partial="drop"`` leaves the tail out, as BEANS does.
    """
    if partial not in PARTIAL_MODES:
        raise InvalidInput(f"partial must be one of {PARTIAL_MODES}, got {partial!r}")
    if not (math.isfinite(duration) and duration >= 0):
        raise InvalidInput(f"duration must be a finite number of seconds >= 0, got {duration}")
    if not (window > 0 and hop > 0 and math.isfinite(window) and math.isfinite(hop)):
        raise InvalidInput(f"window and hop must be positive seconds, got window={window}, hop={hop}")
    tolerance = 1e-9 * max(1.0, duration)
    full = math.floor((duration - window + tolerance) / hop) + 1 if duration + tolerance >= window else 0
    windows = [Window(i * hop, i * hop + window) for i in range(full)]
    covered = windows[-1].end if windows else 0.0
    if partial == "pad" and duration > 0 and covered < duration - tolerance:
        start = full * hop
        windows.append(Window(start, start + window))
    return windows


def _overlap_matrix(windows: Sequence[Window], events: Sequence[Event]) -> np.ndarray:
    """Overlap fractions ``[windows, events]``: overlap / the shorter of window and event.

    A zero-length event inside a window counts as fully overlapping it.
    """
    starts = np.array([w.start for w in windows])[:, None]
    ends = np.array([w.end for w in windows])[:, None]
    begins = np.array([e.begin for e in events])[None, :]
    finishes = np.array([e.end for e in events])[None, :]
    overlap = np.clip(np.minimum(ends, finishes) - np.maximum(starts, begins), 0.0, None)
    shorter = np.minimum(ends - starts, finishes - begins)
    point_inside = (finishes == begins) & (starts <= begins) & (begins < ends)
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where(shorter > 0, overlap / np.where(shorter > 0, shorter, 1.0), 0.0)
    return np.where(point_inside, 1.0, fraction)


def label_windows(windows: Sequence[Window], events: Iterable[Event], min_overlap: float = 0.2) -> list[tuple[str, ...]]:
    """The sorted labels of each window: those of events overlapping it by more than ``min_overlap``.

    Overlap is measured relative to the shorter of the window and the event, as in
    BEANS (Hagiwara et al., "BEANS: The Benchmark of Animal Sounds", ICASSP 2023): a
    short call well inside a long window counts fully, and so does a window inside a
    long event. Events are those of one recording; filter by ``Event.path`` first.
    """
    if not 0 <= min_overlap < 1:
        raise InvalidInput(f"min_overlap must be in [0, 1), got {min_overlap}")
    events = list(events)
    if not windows:
        return []
    if not events:
        return [() for _ in windows]
    labels = np.array([event.label for event in events], dtype=object)
    chunk = max(1, _CHUNK_CELLS // len(events))
    result = []
    for first in range(0, len(windows), chunk):
        positive = _overlap_matrix(windows[first:first + chunk], events) > min_overlap
        result += [tuple(sorted(set(labels[row]))) for row in positive]
    return result

"""Window scores -> detections: per-class thresholds, nearby windows merged (or not)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..data.annotations import Event
from .scheduler import RecordingScores
from .errors import ThresholdFileError
from ..errors import InvalidInput


def class_thresholds(labels: Sequence[str], default: float, overrides: Mapping[str, float] | None = None) -> np.ndarray:
    """``[classes]`` thresholds: ``default`` unless ``overrides`` names the class."""
    overrides = dict(overrides or {})
    values = [default, *overrides.values()]
    if not all(isinstance(v, (int, float)) and math.isfinite(v) and 0.0 <= v <= 1.0 for v in values):
        raise InvalidInput(f"thresholds must be scores in [0, 1], got {values}")
    unknown = sorted(set(overrides) - set(labels))
    if unknown:
        raise InvalidInput(f"thresholds name classes the model lacks: {', '.join(unknown)}")
    return np.array([overrides.get(label, default) for label in labels], np.float64)


def read_thresholds(path: str | Path, labels: Sequence[str], default: float) -> np.ndarray:
    """Thresholds from a JSON object ``{"label": threshold, ...}`` (others get ``default``)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ThresholdFileError(path, "file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ThresholdFileError(path, f"not a JSON file: {exc}") from None
    if not isinstance(data, dict):
        raise ThresholdFileError(path, 'expected a JSON object {"label": threshold, ...}')
    try:
        return class_thresholds(labels, default, data)
    except ValueError as exc:
        raise ThresholdFileError(path, str(exc)) from None


def detections(result: RecordingScores, labels: Sequence[str], thresholds: np.ndarray, merge: bool = True,
               max_gap: float = 0.0, max_length: float | None = None) -> list[Event]:
    """Events of one recording: for each class, windows scoring at or above its
    threshold. With ``merge``, a window joins the run before it when it starts at most
    ``max_gap`` seconds after the run ends (0: touching or overlapping windows) and the run
    would stay within ``max_length`` seconds (None: no cap); a run is one event (score:
    its maximum). Without ``merge``, one event per window. Times in seconds, ends clipped
    to the recording; sorted by begin time, then class order."""
    if result.error is not None or not len(result.starts):
        return []
    rate = result.rate
    starts = result.starts
    ends = starts + np.maximum(result.valid, 0)
    gap = max_gap * rate
    longest = math.inf if max_length is None else max_length * rate
    hits = result.scores >= thresholds[None, :]
    found: list[tuple[int, int, Event]] = []
    for cls in range(len(labels)):
        run: list[int] = []
        for row in np.flatnonzero(hits[:, cls]):
            joins = run and merge and starts[row] - ends[run[-1]] <= gap and ends[row] - starts[run[0]] <= longest
            if run and not joins:
                found.append(_event(run, cls, starts, ends, result, labels, rate))
                run = []
            run.append(int(row))
        if run:
            found.append(_event(run, cls, starts, ends, result, labels, rate))
    found.sort(key=lambda item: (item[0], item[1]))
    return [event for _, _, event in found]


def _event(run: list[int], cls: int, starts: np.ndarray, ends: np.ndarray, result: RecordingScores,
           labels: Sequence[str], rate: int) -> tuple[int, int, Event]:
    begin, end = int(starts[run[0]]), int(ends[run[-1]])
    score = float(result.scores[run, cls].max())
    return begin, cls, Event(begin / rate, end / rate, labels[cls], score=score, path=result.path)

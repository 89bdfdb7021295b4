"""Time-frequency annotations: Raven selection tables and Audacity label tracks.

Raven Pro selection tables are tab-separated text with the columns ``Selection, View,
Channel, Begin Time (s), End Time (s), Low Freq (Hz), High Freq (Hz)`` plus annotation
columns. Raven lists a selection once per view (``Waveform 1``, ``Spectrogram 1``);
reading keeps one row per selection. Audacity label tracks are ``begin<TAB>end<TAB>label``
lines, each optionally followed by ``\\<TAB>low<TAB>high`` (frequencies, -1 when unset).

A malformed file raises one :class:`AnnotationError` naming the file and every bad line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..fileio import write_text
from .errors import AnnotationError, TableError
from .table import read_table
from ..errors import InvalidInput

RAVEN_COLUMNS = ("Selection", "View", "Channel", "Begin Time (s)", "End Time (s)", "Low Freq (Hz)", "High Freq (Hz)")
RAVEN_WRITE_COLUMNS = RAVEN_COLUMNS + ("label", "score", "Begin Path")
"""Columns :func:`write_raven` writes, in order."""

LABEL_COLUMNS = ("label", "species", "annotation", "class", "sound type", "call type")
"""Annotation columns :func:`read_raven` looks for (case-insensitive), in this order."""

SCORE_COLUMNS = ("score", "confidence")


@dataclass(frozen=True)
class Event:
    """One annotated sound: ``[begin, end]`` seconds, optional frequency band (Hz), score and file."""

    begin: float
    end: float
    label: str
    low_freq: float | None = None
    high_freq: float | None = None
    score: float | None = None
    path: Path | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.begin) and math.isfinite(self.end) and 0 <= self.begin <= self.end):
            raise InvalidInput(f"event times must satisfy 0 <= begin <= end, got [{self.begin}, {self.end}]")
        if self.low_freq is not None and self.high_freq is not None and self.low_freq > self.high_freq:
            raise InvalidInput(f"low_freq {self.low_freq} Hz is above high_freq {self.high_freq} Hz")

    @property
    def duration(self) -> float:
        return self.end - self.begin


def _number(text: str, name: str, problems: list[str], line: int, *, optional: bool = False) -> float | None:
    text = text.strip()
    if not text and optional:
        return None
    try:
        value = float(text)
    except ValueError:
        problems.append(f"line {line}: {name} {text!r} is not a number")
        return None
    if not math.isfinite(value):
        problems.append(f"line {line}: {name} {text!r} is not finite")
        return None
    return value


def _raise_if(path: Path, problems: list[str]) -> None:
    if problems:
        raise AnnotationError(path, f"{len(problems)} problem{'s' if len(problems) != 1 else ''}:\n  "
                                    + "\n  ".join(problems))


def _event(line: int, problems: list[str], begin, end, label, low=None, high=None, score=None,
           file: Path | None = None) -> Event | None:
    """An event from parsed values, or None after recording why not."""
    if begin is None or end is None:
        return None
    try:
        return Event(begin, end, label, low, high, score, file)
    except ValueError as exc:
        problems.append(f"line {line}: {exc}")
        return None


def _find(header: list[str], candidates: Iterable[str]) -> int | None:
    for name in candidates:
        if name.lower() in header:
            return header.index(name.lower())
    return None


def _cell(cells: list[str], index: int | None) -> str:
    """The stripped cell at ``index``; empty when the column or the cell is absent."""
    return "" if index is None or index >= len(cells) else cells[index].strip()


def _raven_event(cells: list[str], at: dict[str, int | None], line: int, problems: list[str]) -> Event | None:
    """The event of one Raven row, or None after recording its problems."""

    def cell(name: str) -> str:
        return _cell(cells, at[name])

    def number(name: str, optional: bool = False) -> float | None:
        return _number(cell(name), name, problems, line, optional=optional)

    return _event(line, problems, number("Begin Time (s)"), number("End Time (s)"), cell("label"),
                  number("Low Freq (Hz)", True), number("High Freq (Hz)", True), number("score", True),
                  Path(cell("file")) if cell("file") else None)


def read_raven(path: str | Path, *, label_column: str | None = None) -> list[Event]:
    """Events of a Raven selection table, one per selection, in file order.

    The label comes from ``label_column`` or else the first of :data:`LABEL_COLUMNS`
    present; ``score``/``Confidence`` and ``Begin Path``/``Begin File`` are read when
    present. Rows of the same selection in several views collapse into one (the
    spectrogram view's row wins).
    """
    path = Path(path)
    try:
        table = read_table(path, "\t", quoted=False)
    except TableError as exc:
        raise AnnotationError(path, exc.reason) from exc
    header = [name.lower() for name in table.columns]
    at = {name: _find(header, [name]) for name in RAVEN_COLUMNS}
    at.update(label=_find(header, [label_column] if label_column else LABEL_COLUMNS),
              score=_find(header, SCORE_COLUMNS), file=_find(header, ("Begin Path", "Begin File")))
    missing = [name for name in ("Begin Time (s)", "End Time (s)") if at[name] is None]
    if at["label"] is None:
        missing.append(label_column or f"an annotation column ({', '.join(LABEL_COLUMNS)})")
    if missing:
        raise AnnotationError(path, f"not a Raven selection table: missing {', '.join(missing)} "
                                    f"(columns: {', '.join(table.columns)})")
    problems: list[str] = []
    events: dict[object, Event] = {}
    for line, cells in table.rows:
        event = _raven_event(cells, at, line, problems)
        selection = _cell(cells, at["Selection"]) or line
        spectrogram = _cell(cells, at["View"]).lower().startswith("spectrogram")
        if event is not None and (selection not in events or spectrogram):
            events[selection] = event
    _raise_if(path, problems)
    return list(events.values())


def _fixed(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _check_text(label: str) -> str:
    if any(char in label for char in "\t\r\n"):
        raise InvalidInput(f"label {label!r} contains a tab or line break")
    return label


def write_raven(path: str | Path, events: Iterable[Event], *, sample_rate: int | None = None) -> None:
    """Write a Raven selection table atomically, one row per event in the given order.

    Columns are :data:`RAVEN_WRITE_COLUMNS`; ``View`` is ``Spectrogram 1``, ``Channel``
    1; times have 6 decimals, frequencies 3, scores 6. An unset low frequency is written
    as 0 and an unset high frequency as ``sample_rate / 2`` when ``sample_rate`` is
    given (Raven wants a box), else left empty.
    """
    rows = ["\t".join(RAVEN_WRITE_COLUMNS)]
    for number, event in enumerate(events, start=1):
        low = 0.0 if event.low_freq is None and sample_rate else event.low_freq
        high = sample_rate / 2 if event.high_freq is None and sample_rate else event.high_freq
        rows.append("\t".join([
            str(number), "Spectrogram 1", "1", _fixed(event.begin, 6), _fixed(event.end, 6), _fixed(low, 3),
            _fixed(high, 3), _check_text(event.label), _fixed(event.score, 6),
            _check_text(str(event.path)) if event.path is not None else "",
        ]))
    write_text(path, "\n".join(rows) + "\n")


def read_audacity(path: str | Path) -> list[Event]:
    """Events of an Audacity label track (``-1`` frequencies read as unset)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError as exc:
        raise AnnotationError(path, "file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationError(path, f"cannot read as text: {exc}") from exc
    problems: list[str] = []
    events: list[Event | None] = []
    for line, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        cells = text.split("\t")
        if cells[0] == "\\":
            if not events or len(cells) != 3:
                problems.append(f"line {line}: frequency line without a label line before it, or not 3 fields")
                continue
            low, high = (_number(cell, "frequency", problems, line) for cell in cells[1:])
            if events[-1] is not None and low is not None and high is not None:
                previous = events[-1]
                events[-1] = _event(line, problems, previous.begin, previous.end, previous.label,
                                    None if low < 0 else low, None if high < 0 else high)
            continue
        if len(cells) < 2:
            problems.append(f"line {line}: expected begin<TAB>end<TAB>label")
            continue
        begin, end = (_number(cell, name, problems, line) for cell, name in zip(cells[:2], ("begin", "end")))
        events.append(_event(line, problems, begin, end, cells[2].strip() if len(cells) > 2 else ""))
    _raise_if(path, problems)
    return [event for event in events if event is not None]


def write_audacity(path: str | Path, events: Iterable[Event]) -> None:
    """Write an Audacity label track atomically; frequency lines only for events that have a band."""
    lines = []
    for event in events:
        lines.append(f"{event.begin:.6f}\t{event.end:.6f}\t{_check_text(event.label)}")
        if event.low_freq is not None or event.high_freq is not None:
            low = -1.0 if event.low_freq is None else event.low_freq
            high = -1.0 if event.high_freq is None else event.high_freq
            lines.append(f"\\\t{low:.6f}\t{high:.6f}")
    write_text(path, "".join(line + "\n" for line in lines))

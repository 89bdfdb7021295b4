"""Prediction files: one per recording, plus a combined table in input order.

Formats (``FORMATS``):

- ``raven``: Raven selection table (``<stem>.selections.txt``), one selection per merged
  detection. Frequency bounds are the full band of the model's input, 0 Hz to half the
  encoder's sample rate: window classifiers do not localise calls in frequency.
- ``audacity``: Audacity label track (``<stem>.labels.txt``), no combined file.
- ``csv``: ``path,start,end,label,score`` (seconds) per merged detection (``<stem>.csv``).
- ``parquet``: every window with the score of every class, thresholds not applied
  (``<stem>.parquet``, columns ``path, start, end`` then one float32 column per class).

Times carry 6 decimals, scores 6 decimals; the bytes depend only on the inputs.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data.annotations import RAVEN_WRITE_COLUMNS, Event, write_audacity, write_raven
from ..fileio import atomic_path, write_text
from .scheduler import RecordingScores
from ..errors import InvalidInput

FORMATS = ("raven", "audacity", "csv", "parquet")
SUFFIXES = {"raven": ".selections.txt", "audacity": ".labels.txt", "csv": ".csv", "parquet": ".parquet"}
COMBINED_STEM = "chorus-predictions"
CSV_COLUMNS = ("path", "start", "end", "label", "score")
_FIXED_COLUMNS = ("path", "start", "end")


def check_format(fmt: str, labels: Sequence[str]) -> str:
    """``fmt`` if chorus writes it for a model with ``labels``; ValueError otherwise."""
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    clash = sorted(set(labels) & set(_FIXED_COLUMNS))
    if fmt == "parquet" and clash:
        raise InvalidInput(f"class names {clash} clash with the parquet columns {_FIXED_COLUMNS}")
    return fmt


def write_recording(path: Path, fmt: str, result: RecordingScores, events: Sequence[Event],
                    labels: Sequence[str]) -> None:
    """Write one recording's predictions to ``path`` atomically."""
    if fmt == "raven":
        write_raven(path, events, sample_rate=result.rate)
    elif fmt == "audacity":
        write_audacity(path, events)
    elif fmt == "csv":
        write_text(path, _csv_text(events, header=True))
    else:
        _write_parquet(path, result, labels)


def _csv_text(events: Sequence[Event], header: bool) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header:
        writer.writerow(CSV_COLUMNS)
    for event in events:
        writer.writerow([str(event.path), f"{event.begin:.6f}", f"{event.end:.6f}", event.label, f"{event.score:.6f}"])
    return buffer.getvalue()


def _write_parquet(path: Path, result: RecordingScores, labels: Sequence[str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = len(result.starts)
    columns = {
        "path": pa.array([str(result.path)] * rows, pa.string()),
        "start": pa.array(result.starts / result.rate, pa.float64()),
        "end": pa.array((result.starts + result.valid) / result.rate, pa.float64()),
    }
    for cls, label in enumerate(labels):
        columns[label] = pa.array(np.ascontiguousarray(result.scores[:, cls], np.float32), pa.float32())
    with atomic_path(path) as tmp:
        pq.write_table(pa.table(columns), tmp)


def write_combined(out_dir: Path, fmt: str, parts: Sequence[Path]) -> Path | None:
    """Join the per-recording files ``parts`` (input order) into one combined file in
    ``out_dir``; Raven selections are renumbered. None for formats without one."""
    if fmt == "audacity":
        return None
    target = out_dir / (COMBINED_STEM + SUFFIXES[fmt])
    if fmt == "parquet":
        if parts:
            _join_parquet(target, parts)
        return target if parts else None
    rows: list[str] = []
    for part in parts:
        rows += part.read_text(encoding="utf-8").splitlines()[1:]
    if fmt == "raven":
        rows = [f"{number}\t{row.split(chr(9), 1)[1]}" for number, row in enumerate(rows, start=1)]
        header = "\t".join(RAVEN_WRITE_COLUMNS)
    else:
        header = ",".join(CSV_COLUMNS)
    write_text(target, "".join(line + "\n" for line in [header, *rows]))
    return target


def _join_parquet(target: Path, parts: Sequence[Path]) -> None:
    """Concatenate Parquet files of one schema, one part in memory at a time."""
    import pyarrow.parquet as pq

    with atomic_path(target) as tmp:
        writer = None
        try:
            for part in parts:
                table = pq.read_table(part)
                writer = writer or pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()

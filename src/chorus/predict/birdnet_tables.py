"""BirdNET detections as the tables BirdNET-Analyzer users know (its column names).

- ``raven``: selection table with ``Selection, View, Channel, Begin Time (s), End Time (s),
  Low Freq (Hz), High Freq (Hz), Common Name, Species Code, Confidence, Begin Path,
  File Offset (s)``; frequencies span the model's band (0-15,000 Hz). The eBird species
  codes are not shipped with the model, so ``Species Code`` holds the scientific name.
- ``audacity``: ``start, end, Scientific, Common, confidence`` label track (tab-separated).
- ``csv``: ``Start (s), End (s), Scientific name, Common name, Confidence, File``.
- ``kaleidoscope``: ``INDIR, FOLDER, IN FILE, OFFSET, DURATION, scientific_name,
  common_name, confidence, lat, lon, week, overlap, sensitivity``.

Times carry 1 decimal in Audacity (as BirdNET-Analyzer) and 4 elsewhere; confidences 4.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Sequence

from ..encoders.birdnet_labels import split_label
from .birdnet_analyzer import BirdNETDetection, BirdNETSettings

TABLE_SUFFIXES = {"raven": ".BirdNET.selection.table.txt", "audacity": ".BirdNET.results.txt",
                  "csv": ".BirdNET.results.csv", "kaleidoscope": ".BirdNET.results.kaleidoscope.csv"}
RAVEN_COLUMNS = ("Selection", "View", "Channel", "Begin Time (s)", "End Time (s)", "Low Freq (Hz)", "High Freq (Hz)",
                 "Common Name", "Species Code", "Confidence", "Begin Path", "File Offset (s)")
CSV_COLUMNS = ("Start (s)", "End (s)", "Scientific name", "Common name", "Confidence", "File")
KALEIDOSCOPE_COLUMNS = ("INDIR", "FOLDER", "IN FILE", "OFFSET", "DURATION", "scientific_name", "common_name",
                        "confidence", "lat", "lon", "week", "overlap", "sensitivity")
FREQUENCY_BAND = (0, 15_000)


def _rows(fmt: str, detections: Sequence[BirdNETDetection], recording: Path,
          settings: BirdNETSettings) -> tuple[tuple[str, ...] | None, list[list[str]]]:
    rows = []
    for number, d in enumerate(detections, start=1):
        scientific, common = split_label(d.label)
        confidence = f"{d.confidence:.4f}"
        if fmt == "raven":
            rows.append([str(number), "Spectrogram 1", "1", f"{d.start:.4f}", f"{d.end:.4f}", str(FREQUENCY_BAND[0]),
                         str(FREQUENCY_BAND[1]), common, scientific, confidence, str(recording), f"{d.start:.4f}"])
        elif fmt == "audacity":
            rows.append([f"{d.start:.1f}", f"{d.end:.1f}", f"{scientific}, {common}", confidence])
        elif fmt == "csv":
            rows.append([f"{d.start:.4f}", f"{d.end:.4f}", scientific, common, confidence, str(recording)])
        else:
            place = [str(settings.lat), str(settings.lon)] if settings.lat is not None else ["", ""]
            rows.append([str(recording.parent), recording.parent.name, recording.name, f"{d.start:.4f}",
                         f"{d.end - d.start:.4f}", scientific, common, confidence, *place, str(settings.week),
                         str(settings.overlap), str(settings.sensitivity)])
    header = {"raven": RAVEN_COLUMNS, "audacity": None, "csv": CSV_COLUMNS, "kaleidoscope": KALEIDOSCOPE_COLUMNS}[fmt]
    return header, rows


def format_table(fmt: str, detections: Sequence[BirdNETDetection], recording: str | Path,
                 settings: BirdNETSettings) -> str:
    """The table text of one recording's detections in ``fmt`` (one of ``TABLE_SUFFIXES``)."""
    if fmt not in TABLE_SUFFIXES:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(TABLE_SUFFIXES)}")
    header, rows = _rows(fmt, detections, Path(recording), settings)
    buffer = io.StringIO()
    writer = (csv.writer(buffer, lineterminator="\n") if fmt in ("csv", "kaleidoscope")
              else csv.writer(buffer, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_NONE, escapechar="\\"))
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()

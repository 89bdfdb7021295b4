"""Delimited text tables (CSV, TSV, Raven selection tables) with their line numbers.

Only reading: each format's own module checks the columns and values and reports
problems by line number, so that a user can jump to them in an editor.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from .errors import TableError


@dataclass(frozen=True)
class Table:
    """``columns``: header cells, stripped. ``rows``: ``(line number, cells)``; blank lines dropped."""

    path: Path
    columns: list[str]
    rows: list[tuple[int, list[str]]]
    delimiter: str


def sniff_delimiter(path: Path, header: str) -> str:
    """Tab or comma: whichever the header uses alone, else by extension (.tsv/.tab/.txt -> tab)."""
    tab, comma = "\t" in header, "," in header
    if tab != comma:
        return "\t" if tab else ","
    return "\t" if path.suffix.lower() in {".tsv", ".tab", ".txt"} else ","


def _decode(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise TableError(path, "file not found") from exc
    except OSError as exc:
        raise TableError(path, f"cannot read: {exc.strerror or exc}") from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")  # Raven on Windows writes ANSI text


def read_table(path: str | Path, delimiter: str | None = None, *, quoted: bool = True) -> Table:
    """Read a delimited table; ``delimiter=None`` sniffs it from the header.

    ``quoted=False`` reads quote characters literally (Raven tables do not quote).
    Text is UTF-8 (a byte-order mark is fine), falling back to Windows-1252.
    """
    path = Path(path)
    if path.is_dir():
        raise TableError(path, "is a folder, not a table file")
    text = _decode(path)
    header = text.splitlines()[0] if text else ""
    if not header.strip():
        raise TableError(path, "empty file or blank header line")
    delimiter = delimiter or sniff_delimiter(path, header)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=csv.QUOTE_MINIMAL if quoted else csv.QUOTE_NONE,
                        strict=True)
    try:
        columns = [cell.strip() for cell in next(reader)]
        rows = [(reader.line_num, cells) for cells in reader if any(cell.strip() for cell in cells)]
    except csv.Error as exc:
        raise TableError(path, f"line {reader.line_num}: {exc}") from exc
    return Table(path, columns, rows, delimiter)

"""Turning raw manifest rows into clips, collecting every problem before failing.

A bad manifest fails with one :class:`ManifestError` that lists all its problems, each
with its line number: missing files, empty labels, duplicate rows, paths escaping the
dataset root, unknown split names, bad start/end times, missing columns. Existence is
checked with ``stat`` only; decoding is the loader's job.
"""

from __future__ import annotations

import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from .clips import SPLIT_ALIASES, SPLITS, Clip, Manifest, canonical_split
from .table import Table
from .errors import ManifestError, ManifestProblem

PROBLEM_KINDS = (
    "unreadable", "missing_column", "bad_header", "bad_row", "empty_path", "outside_root", "missing_file",
    "empty_label", "unknown_split", "bad_time", "duplicate", "layout", "no_clips",
)
"""Every kind of :class:`ManifestProblem`."""

LABEL_SEPARATOR = ";"
"""Separates the labels of a multi-label clip inside the label cell."""


@dataclass(frozen=True)
class RawRow:
    """A manifest row as text, before validation. None means the column is absent."""

    path: str
    label: str | None = None
    split: str | None = None
    group: str | None = None
    start: str | None = None
    end: str | None = None
    line: int | None = None
    source: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)


def split_labels(text: str | None) -> tuple[str, ...]:
    """``"a; b;a"`` -> ``("a", "b")``: stripped, empty pieces dropped, first occurrence kept."""
    if text is None:
        return ()
    return tuple(dict.fromkeys(piece.strip() for piece in text.split(LABEL_SEPARATOR) if piece.strip()))


def _time(text: str | None, name: str) -> tuple[float | None, str | None]:
    """Parse a start/end cell: ``(seconds, None)`` or ``(None, problem message)``."""
    if text is None or not text.strip():
        return None, None
    try:
        value = float(text)
    except ValueError:
        return None, f"{name} {text.strip()!r} is not a number of seconds"
    if not math.isfinite(value) or value < 0:
        return None, f"{name} {text.strip()!r} must be a finite, non-negative number of seconds"
    return value, None


class _RowChecker:
    """Validates rows one by one, remembering what it has seen (files, duplicates)."""

    def __init__(self, root: Path, allow_unlabelled: bool, contained: bool = True):
        self.root = root
        self.allow_unlabelled = allow_unlabelled
        self.contained = contained
        self.problems: list[ManifestProblem] = []
        self._exists: dict[Path, str | None] = {}
        self._seen: dict[tuple[Path, float | None, float | None], int | None] = {}

    def _problem(self, row: RawRow, kind: str, message: str) -> None:
        self.problems.append(ManifestProblem(kind, message, row.line, row.source))

    def _file_problem(self, path: Path) -> str | None:
        if path not in self._exists:
            try:
                is_file = stat.S_ISREG(os.stat(path).st_mode)
                self._exists[path] = None if is_file else "is not a regular file"
            except FileNotFoundError:
                self._exists[path] = "file not found"
            except OSError as exc:
                self._exists[path] = f"cannot stat: {exc.strerror or exc}"
            except ValueError:  # a NUL byte in the path
                self._exists[path] = "not a valid path (it holds a NUL byte)"
        return self._exists[path]

    def _resolve(self, row: RawRow) -> Path | None:
        text = row.path.strip()
        if not text:
            self._problem(row, "empty_path", "empty path")
            return None
        path = Path(os.path.normpath(self.root / text))
        if self.contained and not path.is_relative_to(self.root):
            self._problem(row, "outside_root", f"path {text!r} escapes the dataset root {self.root}")
            return None
        problem = self._file_problem(path)
        if problem:
            self._problem(row, "missing_file", f"{text}: {problem}")
            return None
        return path

    def _split(self, row: RawRow) -> str | None:
        if row.split is None or not row.split.strip():
            return None
        name = canonical_split(row.split)
        if name is None:
            aliases = ", ".join(f"{alias}={canonical}" for alias, canonical in SPLIT_ALIASES.items())
            self._problem(row, "unknown_split",
                          f"unknown split {row.split.strip()!r} (known: {', '.join(SPLITS)}; aliases: {aliases})")
        return name

    def _range(self, row: RawRow) -> tuple[float | None, float | None]:
        start, start_problem = _time(row.start, "start")
        end, end_problem = _time(row.end, "end")
        for message in filter(None, (start_problem, end_problem)):
            self._problem(row, "bad_time", message)
        if start is not None and end is not None and end <= start:
            self._problem(row, "bad_time", f"end {end:g} s is not after start {start:g} s")
        return start, end

    def check(self, row: RawRow) -> Clip | None:
        """The row's clip, or None after recording its problems."""
        before = len(self.problems)
        path = self._resolve(row)
        labels = split_labels(row.label)
        if row.label is not None and not labels and not self.allow_unlabelled:
            self._problem(row, "empty_label", "empty label (pass allow_unlabelled=True for unlabelled data)")
        split = self._split(row)
        start, end = self._range(row)
        if path is not None:
            key = (path, start, end)
            if key in self._seen:
                first = self._seen[key]
                self._problem(row, "duplicate", f"duplicate of line {first} (same file and time range)"
                              if first is not None else f"{row.path} is listed twice")
            else:
                self._seen[key] = row.line
        if len(self.problems) > before:
            return None
        group = row.group.strip() if row.group and row.group.strip() else None
        return Clip(path, labels, split, group, start, end)


def build_manifest(
    rows: Iterable[RawRow],
    root: str | Path,
    *,
    source: Path | None = None,
    allow_unlabelled: bool = False,
    problems: Iterable[ManifestProblem] = (),
    contained: bool = True,
) -> Manifest:
    """Validate ``rows`` into a :class:`Manifest`, or raise one :class:`ManifestError`.

    Relative paths resolve against ``root``. ``contained``: every path must stay inside it
    (``..`` and absolute paths elsewhere are refused; symlinks inside the root are followed
    for the existence check only). Not ``contained``: paths may lead anywhere (``../audio/
    x.wav``), and the manifest's root is the deepest folder holding ``root`` and every clip.
    ``problems`` found earlier (missing columns, malformed rows) are reported together with
    the row problems.
    """
    root = Path(os.path.abspath(root))
    error_path = source or root
    problems = list(problems)
    if not root.is_dir():
        raise ManifestError(error_path, problems + [ManifestProblem("missing_file", f"dataset root {root} is not a folder")])
    checker = _RowChecker(root, allow_unlabelled, contained)
    clips: list[Clip] = []
    extra: dict[str, list[str]] = {}
    rows = list(rows)
    for row in rows:
        clip = checker.check(row)
        if clip is not None:
            clips.append(clip)
            for name, value in row.extra.items():
                extra.setdefault(name, []).append(value)
    problems += checker.problems
    if not rows and not problems:
        problems.append(ManifestProblem("no_clips", "no clips listed"))
    if problems:
        raise ManifestError(error_path, problems)
    if not contained and clips:
        root = Path(os.path.commonpath([root, *(clip.path for clip in clips)]))
    return Manifest(clips, root, source, extra)


def table_rows(table: Table, columns: dict[str, str], *, base: Path | None = None,
               label_required: bool = True) -> tuple[list[RawRow], list[ManifestProblem]]:
    """Rows of ``table`` as :class:`RawRow`, plus header and row-shape problems.

    ``columns`` maps RawRow fields (``path``, ``label``, ``split``...) to header names,
    matched case-insensitively; ``path`` is required, ``label`` too when
    ``label_required``. Other columns go to ``extra``. Relative paths are taken
    relative to ``base`` (written as absolute paths into the rows) when given.
    """
    header = [name.lower() for name in table.columns]
    problems = [ManifestProblem("bad_header", f"column {name!r} appears more than once", 1, table.path)
                for name in sorted({n for n in header if header.count(n) > 1})]
    index = {field_: header.index(name.lower()) for field_, name in columns.items() if name.lower() in header}
    required = ("path", "label") if label_required else ("path",)
    for field_ in required:
        if field_ not in index:
            problems.append(ManifestProblem(
                "missing_column", f"missing required column {columns[field_]!r} (columns: {', '.join(table.columns)})",
                1, table.path))
    if "path" not in index:
        return [], problems
    known = set(index.values())
    extra_columns = [(i, name) for i, name in enumerate(table.columns) if i not in known]
    rows = []
    for line, cells in table.rows:
        if len(cells) > len(header):
            problems.append(ManifestProblem("bad_row", f"{len(cells)} fields, the header has {len(header)}",
                                            line, table.path))
            continue
        cells = cells + [""] * (len(header) - len(cells))
        values = {field_: cells[i] for field_, i in index.items()}
        path = values.pop("path")
        if base is not None and path.strip() and not os.path.isabs(path.strip()):
            path = str(base / path.strip())
        rows.append(RawRow(path=path, line=line, source=table.path,
                           extra={name: cells[i] for i, name in extra_columns}, **values))
    return rows, problems

"""Manifests: read, validate and write the CSV/TSV list of labelled clips.

Columns: ``path,label[,split][,group][,start,end]`` in any order, matched
case-insensitively; other columns are kept in :attr:`Manifest.extra`. Multi-label clips
join their labels with ``;`` (``dog;bark``). Split names are ``train``, ``valid`` and
``test``; ``validation``, ``val`` and ``dev`` are read as ``valid``. ``start``/``end``
are seconds inside the file (empty: the whole file).

Relative paths resolve against the manifest's folder and may lead outside it
(``../audio/x.wav``, as :func:`write_manifest` writes them), so a manifest works from any
working directory; given a dataset ``root``, they resolve against it instead and no path
may leave it. A bad manifest raises one :class:`ManifestError` listing every problem with
its line number.

Folder-per-class trees and Hugging Face audiofolder datasets become manifests through
:func:`from_folder` and :func:`from_audiofolder`.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from ..fileio import write_text
from .clips import SPLIT_ALIASES, SPLITS, Clip, Manifest, canonical_split
from .folders import from_audiofolder, from_folder
from .errors import ManifestError, TableError
from .table import read_table
from .validation import LABEL_SEPARATOR, ManifestProblem, build_manifest, table_rows

__all__ = [
    "MANIFEST_COLUMNS", "SPLITS", "SPLIT_ALIASES", "Clip", "Manifest", "ManifestError", "ManifestProblem",
    "canonical_split", "from_audiofolder", "from_folder", "read_manifest", "write_manifest",
]

MANIFEST_COLUMNS = ("path", "label", "split", "group", "start", "end")
"""Column order chorus writes. ``label`` joins multiple labels with ``;``."""


def read_manifest(path: str | Path, root: str | Path | None = None, *, allow_unlabelled: bool = False) -> Manifest:
    """Read and validate a CSV or TSV manifest.

    The delimiter comes from the header (tab or comma), else from the extension
    (``.tsv`` means tab). Relative paths resolve against the manifest's folder (and may
    leave it); with ``root`` (a dataset folder) they resolve against it and must stay
    inside it (``outside_root``). Empty labels are errors unless ``allow_unlabelled`` (pre-training data);
    then the ``label`` column may be absent too. Raises :class:`ManifestError` with
    every problem found.
    """
    path = Path(path)
    try:
        table = read_table(path)
    except TableError as exc:
        raise ManifestError(path, [ManifestProblem("unreadable", exc.reason)]) from exc
    columns = {name: name for name in MANIFEST_COLUMNS}
    rows, problems = table_rows(table, columns, label_required=not allow_unlabelled)
    return build_manifest(rows, path.parent if root is None else root, source=path,
                          allow_unlabelled=allow_unlabelled, problems=problems, contained=root is not None)


def _label_cell(clip: Clip) -> str:
    for label in clip.labels:
        if not label.strip() or LABEL_SEPARATOR in label or label != label.strip():
            raise ValueError(f"{clip.path}: label {label!r} cannot be written (empty, padded or containing "
                             f"{LABEL_SEPARATOR!r})")
    return LABEL_SEPARATOR.join(clip.labels)


def _seconds(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _shown(path: Path, base: Path, anywhere: bool) -> Path:
    """``path`` relative to ``base``: also through ``..`` when ``anywhere``; else absolute
    outside ``base`` (and on another drive)."""
    if path.is_relative_to(base):
        return path.relative_to(base)
    try:
        return Path(os.path.relpath(path, base)) if anywhere else path
    except ValueError:  # another drive
        return path


def write_manifest(manifest: Manifest, path: str | Path, root: str | Path | None = None) -> None:
    """Write ``manifest`` as CSV, atomically, so that :func:`read_manifest` reads it back.

    Without ``root``, every path is written relative to the CSV's folder (``../audio/x.wav``
    where needed), so :func:`read_manifest` reads it back from anywhere. With ``root``,
    paths inside it are written relative to it, others absolute; read the file back with the
    same ``root``. Extra columns follow the standard ones. Times are written exactly
    (``repr`` of the float).
    """
    path = Path(path)
    base = Path(os.path.abspath(path.parent if root is None else root))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*MANIFEST_COLUMNS, *manifest.extra])
    for index, clip in enumerate(manifest.clips):
        shown = _shown(Path(os.path.abspath(clip.path)), base, anywhere=root is None)
        writer.writerow([
            shown.as_posix(), _label_cell(clip), clip.split or "", clip.group or "",
            _seconds(clip.start), _seconds(clip.end), *(values[index] for values in manifest.extra.values()),
        ])
    write_text(path, buffer.getvalue())

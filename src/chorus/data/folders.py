"""Manifests from folder layouts: folder-per-class trees and Hugging Face audiofolder.

Folder-per-class: ``root/<label>/**/<clip>`` or, when every top-level folder is a split
name (``train``, ``valid``/``validation``/``val``/``dev``, ``test``),
``root/<split>/<label>/**/<clip>``. Audio files are recognised by extension; hidden
files and folders (``.name``) are skipped.

Hugging Face audiofolder: ``metadata.csv`` files (in the root and/or in split folders)
with a ``file_name`` column relative to the metadata file and a label column; the split
is the top-level split folder a file lies in. Without any ``metadata.csv`` the labels
come from the folder names, as above.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from ..audio import SUPPORTED_EXTENSIONS
from .clips import Manifest, canonical_split
from .errors import ManifestError, TableError
from .table import read_table
from .validation import ManifestProblem, RawRow, build_manifest, table_rows

METADATA_FILE = "metadata.csv"


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _audio_files(folder: Path) -> list[Path]:
    """Audio files anywhere below ``folder``, sorted, skipping hidden files and folders."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath) / name for name in filenames
                  if not name.startswith(".") and Path(name).suffix.lower() in SUPPORTED_EXTENSIONS]
    return sorted(found)


def _split_layout(root: Path) -> tuple[bool, list[ManifestProblem]]:
    """Whether the top-level folders are splits; a problem when they mix splits and classes."""
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and _visible(p))
    splits = [name for name in folders if canonical_split(name)]
    if splits and len(splits) != len(folders):
        others = [name for name in folders if not canonical_split(name)]
        return False, [ManifestProblem(
            "layout", f"top-level folders mix split names ({', '.join(splits)}) and other folders "
                      f"({', '.join(others)}); use root/<split>/<label>/ or root/<label>/")]
    return bool(splits), []


def _class_rows(folder: Path, split: str | None, allow_unlabelled: bool) -> tuple[list[RawRow], list[ManifestProblem]]:
    """Rows for ``folder/<label>/**``; audio directly in ``folder`` is unlabelled."""
    rows, problems = [], []
    for path in _audio_files(folder):
        relative = path.relative_to(folder)
        if len(relative.parts) == 1:
            if not allow_unlabelled:
                problems.append(ManifestProblem("layout", f"{path}: audio file outside any class folder"))
                continue
            label = ""
        else:
            label = relative.parts[0]
        rows.append(RawRow(path=str(path), label=label, split=split))
    return rows, problems


def from_folder(root: str | Path, *, allow_unlabelled: bool = False) -> Manifest:
    """A manifest of a folder-per-class tree (see the module notes for the layouts).

    Audio files outside any class folder are errors unless ``allow_unlabelled``.
    Clips are in sorted path order.
    """
    root = Path(os.path.abspath(root))
    if not root.is_dir():
        raise ManifestError(root, [ManifestProblem("missing_file", "not a folder")])
    by_split, problems = _split_layout(root)
    rows: list[RawRow] = []
    if by_split:
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and _visible(p)):
            found, found_problems = _class_rows(folder, canonical_split(folder.name), allow_unlabelled)
            rows += found
            problems += found_problems
    elif not problems:
        rows, problems = _class_rows(root, None, allow_unlabelled)
    if not rows and not problems:
        problems.append(ManifestProblem("no_clips", f"no audio files ({', '.join(sorted(SUPPORTED_EXTENSIONS))})"))
    return build_manifest(rows, root, source=root, allow_unlabelled=allow_unlabelled, problems=problems)


def _metadata_files(root: Path) -> list[Path]:
    candidates = [root / METADATA_FILE] + [p / METADATA_FILE for p in sorted(root.iterdir()) if p.is_dir() and _visible(p)]
    return [path for path in candidates if path.is_file()]


def _split_of(path: str, root: Path) -> str | None:
    """The split named by the top-level folder that ``path`` lies in, if any."""
    normalized = Path(os.path.normpath(path))
    parts = normalized.relative_to(root).parts if normalized.is_relative_to(root) else ()
    return canonical_split(parts[0]) if len(parts) > 1 else None


def from_audiofolder(root: str | Path, *, label_column: str = "label", allow_unlabelled: bool = False) -> Manifest:
    """A manifest of a Hugging Face audiofolder dataset.

    Reads every ``metadata.csv`` in ``root`` and in its top-level folders: ``file_name``
    (relative to the metadata file) and ``label_column``; other columns go to
    :attr:`Manifest.extra`. Without metadata, falls back to :func:`from_folder`.
    """
    root = Path(os.path.abspath(root))
    if not root.is_dir():
        raise ManifestError(root, [ManifestProblem("missing_file", "not a folder")])
    metadata = _metadata_files(root)
    if not metadata:
        return from_folder(root, allow_unlabelled=allow_unlabelled)
    rows: list[RawRow] = []
    problems: list[ManifestProblem] = []
    for path in metadata:
        try:
            table = read_table(path)
        except TableError as exc:
            problems.append(ManifestProblem("unreadable", exc.reason, source=path))
            continue
        found, found_problems = table_rows(table, {"path": "file_name", "label": label_column}, base=path.parent,
                                           label_required=not allow_unlabelled)
        rows += [replace(row, split=_split_of(row.path, root)) for row in found]
        problems += found_problems
    return build_manifest(rows, root, source=root, allow_unlabelled=allow_unlabelled, problems=problems)

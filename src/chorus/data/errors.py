"""Errors of :mod:`chorus.data` (all are :class:`~chorus.errors.ChorusError`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..errors import ChorusError, FileProblem


class AnnotationError(FileProblem):
    """A selection table or label track that cannot be read; the message lists every bad line."""


class TableError(FileProblem):
    """The file cannot be read as a delimited text table."""


@dataclass(frozen=True)
class ManifestProblem:
    """One problem: ``line`` is the 1-based line in ``source`` (None for file-level ones)."""

    kind: str
    message: str
    line: int | None = None
    source: Path | None = None

    def describe(self, manifest_path: Path | None = None) -> str:
        """``"line 4: ..."``, prefixed with the file name when it is not the manifest itself."""
        where = [] if self.source is None or self.source == manifest_path else [str(self.source)]
        if self.line is not None:
            where.append(f"line {self.line}")
        return f"{' '.join(where)}: {self.message}" if where else self.message


class ManifestError(FileProblem):
    """A manifest with problems; ``problems`` holds every one of them, in line order."""

    def __init__(self, path: str | Path, problems: Iterable[ManifestProblem]):
        self.problems = sorted(problems, key=lambda p: (str(p.source or ""), p.line or 0))
        count = len(self.problems)
        lines = "\n".join(f"  {problem.describe(Path(path))}" for problem in self.problems)
        super().__init__(path, f"{count} problem{'s' if count != 1 else ''}:\n{lines}")


class SynthError(ChorusError):
    """Invalid synthetic-data request or output folder."""


class UnknownLabelError(ChorusError, KeyError):
    """Labels that are not in the label map; ``labels`` lists every one of them."""

    def __init__(self, labels: Iterable[str], known: int):
        self.labels = sorted(set(labels))
        super().__init__(f"{len(self.labels)} label(s) not in the label map of {known}: {', '.join(self.labels)}")

    def __str__(self) -> str:
        return str(self.args[0])

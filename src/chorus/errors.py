"""The root of chorus's exception tree.

Every module defines its own typed errors as subclasses of :class:`ChorusError`, so a
caller can catch one family (``except AudioError``) or everything chorus raises.
"""

from __future__ import annotations

from pathlib import Path


class ChorusError(Exception):
    """Base class of every error chorus raises on purpose."""


class FileProblem(ChorusError):
    """An error about one file: the message always starts with the file's path."""

    def __init__(self, path: str | Path, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class WriteError(FileProblem):
    """A file could not be written (no space left on the device, no permission, a folder
    where a file should go...); nothing half-written is left behind."""


class FolderBusy(FileProblem):
    """Another process is writing into an output folder (one writer at a time)."""


class InvalidInput(ChorusError, ValueError):
    """A value the user gave (an option, a setting, a cell of a table) is out of range or
    unknown; also a ``ValueError``, for callers that catch that."""

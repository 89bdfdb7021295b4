"""Typed errors of task vectors."""

from __future__ import annotations

from ..errors import ChorusError, FileProblem
from ..hub import HubError  # noqa: F401  (raised by chorus.taskvec.hub; one class for models and vectors)


class TaskVectorError(ChorusError):
    """Something is wrong with a task vector or with how it is used."""


class TaskVectorFileError(FileProblem, TaskVectorError):
    """A task-vector file is missing, malformed or disagrees with its manifest."""


class BaseMismatchError(TaskVectorError):
    """A task vector meets weights (or another vector) of a different base encoder."""

    def __init__(self, expected: str, actual: str, what: str = "the base encoder"):
        self.expected = expected
        self.actual = actual
        super().__init__(f"task vector was made from base fingerprint {expected}, but {what} has "
                         f"fingerprint {actual}")


class IncompatibleVectorsError(TaskVectorError):
    """Vectors (or a vector and a network) disagree on tensor names, shapes or settings."""


class MissingGroupError(TaskVectorError):
    """A workflow needs to know which group a task vector was trained for, and it names none."""


class SparseStorageWarning(UserWarning):
    """Sparse storage of a task vector makes its file no smaller than dense storage would."""

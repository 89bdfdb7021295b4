"""Errors of :mod:`chorus.train` (all are :class:`~chorus.errors.ChorusError`)."""

from __future__ import annotations

from ..errors import FileProblem


class CheckpointError(FileProblem):
    """A checkpoint is malformed, incomplete or from another format."""

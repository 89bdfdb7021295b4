"""Errors of :mod:`chorus.train` (all are :class:`~chorus.errors.ChorusError`)."""

from __future__ import annotations

from ..errors import ChorusError, FileProblem


class FinetuneError(ChorusError):
    """The data or settings cannot produce a fine-tuning run."""


class CheckpointError(FileProblem):
    """A checkpoint is malformed, incomplete or from another format."""

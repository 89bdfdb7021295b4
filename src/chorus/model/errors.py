"""Errors of :mod:`chorus.model` (all are :class:`~chorus.errors.ChorusError`)."""

from __future__ import annotations

from ..errors import FileProblem


class ModelFileError(FileProblem):
    """A chorus model directory (or one of its files) is missing or invalid."""


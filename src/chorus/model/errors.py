"""Errors of :mod:`chorus.model` (all are :class:`~chorus.errors.ChorusError`)."""

from __future__ import annotations

from ..errors import ChorusError, FileProblem


class ModelFileError(FileProblem):
    """A chorus model directory (or one of its files) is missing or invalid."""



class BirdNETHeadError(ChorusError):
    """BirdNET's original species head was asked of an encoder that does not have it."""

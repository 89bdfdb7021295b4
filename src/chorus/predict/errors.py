"""Errors of :mod:`chorus.predict` (all are :class:`~chorus.errors.ChorusError`)."""

from __future__ import annotations

from ..errors import ChorusError, FileProblem


class OutputCollision(ChorusError):
    """Two recordings would write the same output file."""


class ThresholdFileError(FileProblem):
    """A per-class threshold file is unreadable or names unknown classes."""


class BirdNETSettingsError(ChorusError):
    """An option of the BirdNET analysis is out of range."""


class NoAudioFound(ChorusError):
    """The paths given hold no audio file to work on."""


class OutputMismatch(FileProblem):
    """The output folder holds the predictions of another model or other settings."""

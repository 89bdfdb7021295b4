"""Typed errors of the separation package."""

from __future__ import annotations

from ..errors import ChorusError, FileProblem


class SeparationError(ChorusError):
    """Separation could not run with the given inputs or settings."""


class ModelLoadError(FileProblem, SeparationError):
    """A diffusion pipeline or prior could not be loaded from a hub id or folder."""

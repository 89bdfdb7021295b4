"""Errors of :mod:`chorus.distill` (all are :class:`~chorus.errors.ChorusError`)."""

from __future__ import annotations

from ..errors import ChorusError


class DistillError(ChorusError):
    """A distillation cannot run as asked (unknown layer, bad setting, no usable clip)."""


class NotesError(ChorusError):
    """The notes dataset cannot be rendered (FluidSynth or its sound font missing, bad setting)."""


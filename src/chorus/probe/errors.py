"""Errors of :mod:`chorus.probe` (all are :class:`~chorus.errors.ChorusError`)."""

from __future__ import annotations

from ..errors import ChorusError


class ProbeTaskError(ChorusError):
    """The data cannot be probed as asked (missing splits, unlabelled clips...)."""


class ProbeConfigError(ChorusError):
    """Probe settings that fail validation."""

"""Errors of :mod:`chorus.encoders` (all are :class:`~chorus.errors.ChorusError`)."""

from __future__ import annotations

from ..errors import ChorusError


class EncoderNotFound(ChorusError):
    """No encoder or family is registered under this name."""


class EncoderLoadError(ChorusError):
    """Weights or configuration for an encoder could not be loaded."""


class UnsupportedArchitecture(EncoderLoadError):
    """The checkpoint's configuration uses a feature chorus does not implement."""


class BEATsConfigError(UnsupportedArchitecture):
    """A BEATs configuration this implementation cannot build."""

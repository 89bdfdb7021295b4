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


class TFLiteReadError(EncoderLoadError):
    """A ``.tflite`` file could not be parsed."""


class NotBirdNETError(EncoderLoadError):
    """A ``.tflite`` that is not the BirdNET V2.4 network this module implements."""


class LocationError(ChorusError):
    """Latitude, longitude or week out of range."""


"""Errors of :mod:`chorus.demos` (all are :class:`~chorus.errors.ChorusError`)."""

from __future__ import annotations

from ..errors import ChorusError


class DemoError(ChorusError):
    """The demo cannot run with these settings or in this folder."""


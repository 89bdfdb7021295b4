"""Errors of the task-vector analysis."""

from __future__ import annotations

from ..errors import ChorusError


class AnalysisError(ChorusError):
    """The task vectors or the data cannot be analysed as asked (the message says why)."""

"""Errors of :mod:`chorus.taskvec.merge` (all are :class:`~chorus.errors.ChorusError`)."""

from __future__ import annotations

from ...errors import ChorusError


class MergeError(ChorusError):
    """A merge cannot run as asked (unknown method, bad parameters, incompatible inputs)."""


class RecipeError(MergeError):
    """A recipe file is unreadable or invalid."""


class HeadCompatibilityError(MergeError):
    """Heads (or the vectors carrying them) cannot be combined into one classifier."""



class StatisticsError(HeadCompatibilityError):
    """Class statistics are missing, or were computed on another encoder than the one built."""

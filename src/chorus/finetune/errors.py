"""Errors of :mod:`chorus.finetune` (all are :class:`~chorus.errors.ChorusError`)."""

from __future__ import annotations

from ..errors import ChorusError


class FinetuneError(ChorusError):
    """The data or settings cannot produce a fine-tuning run."""

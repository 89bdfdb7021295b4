"""Errors of :mod:`chorus.finetune` (all are :class:`~chorus.errors.ChorusError`)."""

from __future__ import annotations

from ..errors import ChorusError


class FinetuneError(ChorusError):
    """The data or settings cannot produce a fine-tuning run."""


class FinetuneWarning(UserWarning):
    """A fine-tuning run finished, but its result deserves a look (e.g. it ended below its
    frozen-probe baseline, or kept that baseline)."""

"""Errors of :mod:`chorus.pretrain` (all are :class:`~chorus.errors.ChorusError`)."""

from __future__ import annotations

from ..errors import ChorusError


class PretrainError(ChorusError):
    """Continual pre-training cannot run as asked (data, encoder or settings)."""


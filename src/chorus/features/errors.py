"""Errors of :mod:`chorus.features` (all are :class:`~chorus.errors.ChorusError`)."""

from __future__ import annotations

from ..errors import ChorusError, FileProblem, FolderBusy


class FeatureStoreError(FileProblem):
    """A feature store on disk is unusable (bad header, index or shard)."""


class FeatureStoreMismatch(FeatureStoreError):
    """The directory holds features computed with another encoder, transform or format."""


class FeatureStoreBusy(FeatureStoreError, FolderBusy):
    """Another process has the store open."""


class MissingFeatures(ChorusError):
    """Features were requested for clips the store does not hold."""



class FeatureError(ChorusError):
    """A feature-extraction setting is invalid (e.g. an unknown pooling)."""

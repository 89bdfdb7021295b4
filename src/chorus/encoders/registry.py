"""Name registry of encoders and of architecture families.

Two tables:

- *encoders*: user-facing names (``sfx-cnn``, ``wavlm-base-plus``, ``wavlm-tiny``) with
  static facts for ``chorus encoders`` and a loader;
- *families*: builders that rebuild a network with random weights from
  :meth:`Encoder.architecture` — how a saved model or task vector finds its network
  again without any hub access.

Family modules register themselves on import (every module of :mod:`chorus.encoders` is
imported on first use of the registry) and import heavy packages lazily.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from .base import Encoder
from .errors import EncoderNotFound


Loader = Callable[[str | None, bool], Encoder]
"""``loader(source, pretrained) -> Encoder``. ``source`` overrides where weights and
config come from (a hub id or a local directory/file); ``pretrained=False`` builds the same
architecture with random weights."""


@dataclass(frozen=True)
class EncoderSpec:
    """Static facts about a registered encoder (nothing is loaded to list them)."""

    name: str
    family: str
    description: str
    sample_rate: int
    num_layers: int
    num_parameters: int | None
    weights: str
    loader: Loader
    default_source: str | None = None
    for_tests: bool = False
    """A tiny random configuration for tests: loadable by name, listed only on request."""

    @property
    def license(self) -> str | None:
        """The Hub licence id of the weights, read from the parentheses of ``weights``
        (``"... (CC BY-NC-SA 4.0; not bundled)"`` -> ``cc-by-nc-sa-4.0``); None for random
        weights or a licence chorus does not know."""
        for note in re.findall(r"\(([^)]*)\)", self.weights):
            for name, hub_id in LICENSES.items():
                if name in note:
                    return hub_id
        return None


LICENSES = {"CC BY-NC-SA 4.0": "cc-by-nc-sa-4.0", "CC BY-NC 4.0": "cc-by-nc-4.0", "CC BY 4.0": "cc-by-4.0",
            "Apache-2.0": "apache-2.0", "BSD-3-Clause": "bsd-3-clause", "MIT": "mit"}
"""Licences named in :attr:`EncoderSpec.weights` -> Hugging Face licence ids (most specific first)."""


_ENCODERS: dict[str, EncoderSpec] = {}
_FAMILIES: dict[str, Callable[[dict[str, Any]], Encoder]] = {}


def register_encoder(spec: EncoderSpec) -> EncoderSpec:
    if spec.name in _ENCODERS:
        raise ValueError(f"encoder {spec.name!r} registered twice")
    _ENCODERS[spec.name] = spec
    return spec


def register_family(family: str, builder: Callable[[dict[str, Any]], Encoder]) -> None:
    if family in _FAMILIES:
        raise ValueError(f"family {family!r} registered twice")
    _FAMILIES[family] = builder


def encoder_specs(include_test_configs: bool = False) -> list[EncoderSpec]:
    """Registered encoders, in registration order: the real backbones, plus the tiny random
    test configurations when ``include_test_configs``."""
    _import_families()
    return [spec for spec in _ENCODERS.values() if include_test_configs or not spec.for_tests]


def get_spec(name: str) -> EncoderSpec:
    _import_families()
    try:
        return _ENCODERS[name]
    except KeyError:
        raise EncoderNotFound(f"unknown encoder {name!r}; known: {', '.join(_ENCODERS)}") from None


def load_encoder(name: str, *, source: str | Path | None = None, pretrained: bool = True,
                 seed: int = 0) -> Encoder:
    """Load a registered encoder in eval mode.

    ``source``: hub id or local path overriding the spec's default. ``pretrained=False``
    gives the same architecture with random weights drawn from ``seed``.
    """
    spec = get_spec(name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = spec.loader(None if source is None else str(source), pretrained)
    encoder.name = name
    return encoder.eval()


def build_encoder(architecture: dict[str, Any], *, seed: int = 0) -> Encoder:
    """Rebuild a network from :meth:`Encoder.architecture` with random weights."""
    _import_families()
    family = architecture.get("family")
    if family not in _FAMILIES:
        raise EncoderNotFound(f"unknown encoder family {family!r}; known: {', '.join(_FAMILIES)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _FAMILIES[family](architecture).eval()


def _import_families() -> None:
    """Import every module of this package once: each family module registers its specs
    and builder on import, so adding a family is adding one file."""
    from ..registration import import_submodules

    import_submodules(__package__)

"""Shared plumbing for encoders backed by Hugging Face ``transformers`` models.

- loading from a hub id or a local directory with typed errors, float32 weights, silenced
  transformers logging and a check that every weight the encoder needs was found;
- configurations as plain JSON dicts, so :meth:`Encoder.architecture` can rebuild the
  network with no hub access;
- :class:`HFEncoder`, the base class holding the wrapped model.

``transformers`` is imported inside functions only.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from torch import Tensor

from .base import Encoder
from .errors import EncoderLoadError
from .registry import EncoderSpec, register_encoder


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' logging and progress bars for the duration (the library never prints)."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def transformers_class(name: str) -> type:
    """A class exported by ``transformers`` by name (lazy import)."""
    import transformers

    return getattr(transformers, name)


def load_config_dict(source: str, what: str) -> dict[str, Any]:
    """``config.json`` of a hub id or local directory as a dict, without instantiating a class
    (works for model types transformers does not know, such as MERT's ``mert_model``)."""
    from transformers import PretrainedConfig

    try:
        with quiet_transformers():
            config, _ = PretrainedConfig.get_config_dict(source)
    except (OSError, ValueError) as exc:
        raise EncoderLoadError(f"{what}: no readable config.json at {source!r}: {exc}") from exc
    return config


def feature_extractor_dict(source: str) -> dict[str, Any]:
    """``preprocessor_config.json`` of a hub id or local directory, or ``{}`` when it has none."""
    from transformers.feature_extraction_utils import FeatureExtractionMixin

    try:
        with quiet_transformers():
            values, _ = FeatureExtractionMixin.get_feature_extractor_dict(source)
    except OSError:
        return {}
    return values


def load_pretrained(model_class: str, source: str, what: str, *, config: Any = None,
                    allowed_missing: Iterable[str] = ()) -> Any:
    """``transformers.<model_class>.from_pretrained(source)`` in float32, with typed errors.

    Weights the checkpoint lacks are an error unless their names start with one of
    ``allowed_missing`` (heads the encoder never uses, training-only parameters).
    Unused checkpoint weights (a text tower, a decoder, a CTC head) are ignored.
    """
    import torch

    cls = transformers_class(model_class)
    kwargs: dict[str, Any] = {"dtype": torch.float32, "output_loading_info": True}
    if config is not None:
        kwargs["config"] = config
    try:
        with quiet_transformers():
            model, info = cls.from_pretrained(source, **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise EncoderLoadError(f"{what}: could not load weights from {source!r}: {exc}") from exc
    allowed = tuple(allowed_missing)
    missing = sorted(k for k in info["missing_keys"] if not k.startswith(allowed))
    if missing or info["mismatched_keys"]:
        problems = missing or sorted(str(k) for k in info["mismatched_keys"])
        shown = ", ".join(problems[:5]) + (" ..." if len(problems) > 5 else "")
        raise EncoderLoadError(f"{what}: checkpoint at {source!r} does not fit {model_class} "
                               f"({len(problems)} missing or mismatched weights: {shown})")
    return model


def check_model_type(config: dict[str, Any], expected: Iterable[str], what: str, source: str) -> None:
    """Refuse a config of another model family (it would load as random weights)."""
    accepted = tuple(expected)
    model_type = config.get("model_type")
    if model_type not in accepted:
        raise EncoderLoadError(f"{what}: {source!r} holds a {model_type!r} model, expected "
                               f"{' or '.join(repr(t) for t in accepted)}")


def config_to_json(config: Any) -> dict[str, Any]:
    """A transformers config as a JSON-serialisable dict (every field, not only non-defaults)."""
    return json.loads(config.to_json_string(use_diff=False))


def config_from_json(config_class: str, values: dict[str, Any]) -> Any:
    """Inverse of :func:`config_to_json`."""
    return transformers_class(config_class).from_dict(dict(values))


class HFEncoder(Encoder):
    """An encoder wrapping one transformers model as ``self.model``.

    Subclasses set the :class:`Encoder` attributes and implement ``forward`` and
    ``front_end_state`` (the JSON-serialisable front-end settings, e.g. the feature
    extractor's dict). :meth:`architecture` then holds everything needed to rebuild the
    network: ``{"family", "config", "front_end"}``.
    """

    family: str

    def __init__(self, model: Any):
        super().__init__()
        self.model = model

    def front_end_state(self) -> dict[str, Any]:
        return {}

    def architecture(self) -> dict[str, Any]:
        return {"family": self.family, "config": config_to_json(self.model.config),
                "front_end": self.front_end_state()}


def conv_output_lengths(lengths: Tensor, kernels: Iterable[int], strides: Iterable[int]) -> Tensor:
    """Valid output frames after a stack of unpadded 1-D convolutions:
    ``floor((n - kernel) / stride) + 1`` per layer (frames whose receptive field lies
    entirely inside the clip), never below zero."""
    for kernel, stride in zip(kernels, strides):
        lengths = (lengths - kernel).div(stride, rounding_mode="floor") + 1
        lengths = lengths.clamp_min(0)
    return lengths


def receptive_field(kernels: Iterable[int], strides: Iterable[int]) -> int:
    """Samples needed for one output frame of a stack of unpadded 1-D convolutions."""
    field, jump = 1, 1
    for kernel, stride in zip(kernels, strides):
        field += (kernel - 1) * jump
        jump *= stride
    return field


@dataclass(frozen=True)
class Entry:
    """A user-facing name of a family: ``default_source`` is a hub id, or ``None`` for the
    family's tiny random test configuration built in code."""

    name: str
    default_source: str | None
    description: str
    num_layers: int
    num_parameters: int | None
    weights: str


FamilyLoader = Callable[[str | None, bool, str], Encoder]
"""``load(source, pretrained, what)``: ``source=None`` builds the tiny random config;
``what`` names the encoder in error messages."""


def register_names(family: str, sample_rate: int, load: FamilyLoader, entries: Iterable[Entry]) -> None:
    """Register every entry of one family with a loader falling back to its default source."""
    for entry in entries:
        def loader(source: str | None, pretrained: bool, _entry: Entry = entry) -> Encoder:
            return load(source if source is not None else _entry.default_source, pretrained, _entry.name)

        register_encoder(EncoderSpec(
            name=entry.name, family=family, description=entry.description, sample_rate=sample_rate,
            num_layers=entry.num_layers, num_parameters=entry.num_parameters, weights=entry.weights,
            loader=loader, default_source=entry.default_source, for_tests=entry.default_source is None,
        ))


def load_feature_extractor(class_name: str, source: str, what: str) -> Any:
    """``transformers.<class_name>.from_pretrained(source)`` with a typed error."""
    try:
        with quiet_transformers():
            return transformers_class(class_name).from_pretrained(source)
    except OSError as exc:
        raise EncoderLoadError(f"{what}: no readable preprocessor_config.json at {source!r}: {exc}") from exc


def feature_extractor_from_dict(class_name: str, values: dict[str, Any]) -> Any:
    """A feature extractor rebuilt from its ``to_dict()`` (no hub)."""
    with quiet_transformers():
        return transformers_class(class_name).from_dict(dict(values))

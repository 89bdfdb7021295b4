"""The wav2vec 2.0 architecture family (wav2vec 2.0, HuBERT, WavLM, MERT) behind one encoder.

A strided 1-D convolution stack turns the waveform into frames (320 samples per frame for
the released models: 50 Hz at 16 kHz, 75 Hz at 24 kHz), then a transformer with a
convolutional position embedding. Every hidden state is exposed: the transformer's input
(``layer0``) and the output of each layer (``layer1`` ...); the last entry is the model's
final output (after the final layer norm for pre-LN models). Layer drop is switched off so
that every layer is returned in training too.

Padding. Frame counts follow the convolution arithmetic (s3prl style): a frame is valid
when its whole receptive field lies inside the clip. Models whose first convolution uses
``feat_extract_norm="layer"`` normalise each frame on its own, so given the attention mask
a clip's features do not depend on the batch (``pads_exactly=True``). Models with
``feat_extract_norm="group"`` (wav2vec2-base, hubert-base, wavlm-base-plus, MERT) normalise
each channel over the whole sequence, padding included, and were trained without an
attention mask: they get ``pads_exactly=False`` and are fed equal-length batches by
:func:`chorus.encoders.batching.iter_batches`.

Front end: the per-clip zero-mean unit-variance normalisation of
``Wav2Vec2FeatureExtractor`` (when the checkpoint's ``preprocessor_config.json`` asks for
it), computed in torch over each clip's valid samples.

Papers: Baevski et al., wav2vec 2.0 (NeurIPS 2020); Hsu et al., HuBERT (TASLP 2021);
Chen et al., WavLM (JSTSP 2022); Li et al., MERT (ICLR 2024).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .base import LayerOutputs, lengths_to_mask
from .hf_common import Entry, FamilyLoader, HFEncoder, check_model_type, config_from_json, conv_output_lengths, feature_extractor_dict, load_config_dict, load_pretrained, receptive_field, register_names, transformers_class
from .errors import UnsupportedArchitecture
from .registry import register_family

NORMALISE_EPS = 1e-7  # Wav2Vec2FeatureExtractor's variance floor


@dataclass(frozen=True)
class SpeechFamily:
    """How one family maps onto transformers: class names and accepted ``model_type``s."""

    family: str
    model_class: str
    config_class: str
    model_types: tuple[str, ...]


class ConvTransformerEncoder(HFEncoder):
    """All hidden states of a wav2vec2-style transformers model: ``[batch, frames, hidden]``.

    ``normalize``: per-clip zero-mean unit-variance input (the feature extractor's
    ``do_normalize``); ``sample_rate``: Hz the model was trained at.
    """

    def __init__(self, family: str, model: Any, *, normalize: bool, sample_rate: int):
        super().__init__(model)
        config = model.config
        if getattr(config, "add_adapter", False):
            raise UnsupportedArchitecture(f"{family}: configs with an output adapter are not supported")
        config.layerdrop = 0.0  # skipped layers would leave holes in the hidden states
        self.family = family
        self.name = family
        self.normalize = bool(normalize)
        self.sample_rate = int(sample_rate)
        self.kernels = tuple(int(k) for k in config.conv_kernel)
        self.strides = tuple(int(s) for s in config.conv_stride)
        self.min_samples = receptive_field(self.kernels, self.strides)
        layers = int(config.num_hidden_layers) + 1
        hop = 1
        for stride in self.strides:
            hop *= stride
        self.layer_names = tuple(f"layer{i}" for i in range(layers))
        self.layer_dims = (int(config.hidden_size),) * layers
        self.frame_rates = (self.sample_rate / hop,) * layers
        self.pads_exactly = config.feat_extract_norm == "layer"

    def front_end_state(self) -> dict[str, Any]:
        return {"normalize": self.normalize, "sample_rate": self.sample_rate}

    def forward(self, waveforms: Tensor, lengths: Tensor) -> LayerOutputs:
        """``waveforms [batch, samples]`` at ``sample_rate`` -> every layer ``[batch, frames, hidden]``.

        Clips shorter than the receptive field (400 samples for the released models) are
        zero-padded to it and give one frame.
        """
        lengths = lengths.to(waveforms.device).clamp_min(self.min_samples)
        if waveforms.shape[1] < self.min_samples:
            waveforms = torch.nn.functional.pad(waveforms, (0, self.min_samples - waveforms.shape[1]))
        sample_mask = lengths_to_mask(lengths, waveforms.shape[1])
        inputs = _normalise(waveforms, sample_mask) if self.normalize else waveforms * sample_mask
        attention_mask = sample_mask.long() if self.pads_exactly else None
        with warnings.catch_warnings():
            # WavLM's attention hands torch a bool padding mask next to a float bias.
            warnings.filterwarnings("ignore", message="Support for mismatched key_padding_mask")
            out = self.model(inputs, attention_mask=attention_mask, output_hidden_states=True)
        hidden = list(out.hidden_states)
        hidden[-1] = out.last_hidden_state
        frames = conv_output_lengths(lengths, self.kernels, self.strides)
        mask = lengths_to_mask(frames, hidden[0].shape[1])
        return LayerOutputs(hidden, [mask] * len(hidden))


def _normalise(waveforms: Tensor, mask: Tensor) -> Tensor:
    """Zero mean, unit variance over each clip's valid samples; padding stays zero."""
    weights = mask.to(waveforms.dtype)
    count = weights.sum(dim=1, keepdim=True)
    mean = (waveforms * weights).sum(dim=1, keepdim=True) / count
    centred = (waveforms - mean) * weights
    variance = centred.pow(2).sum(dim=1, keepdim=True) / count
    return centred / torch.sqrt(variance + NORMALISE_EPS)


def front_end_from_source(source: str, config: Any) -> tuple[bool, int]:
    """``(do_normalize, sample_rate)`` from the checkpoint's ``preprocessor_config.json``;
    without one, Wav2Vec2FeatureExtractor's defaults (normalise) and the config's
    ``sample_rate`` (MERT) or 16 kHz."""
    values = feature_extractor_dict(source)
    rate = values.get("sampling_rate", getattr(config, "sample_rate", 16_000))
    return bool(values.get("do_normalize", True)), int(rate)


def tiny_config_values(**overrides: Any) -> dict[str, Any]:
    """The tiny test architecture shared by the family's ``-tiny`` encoders (hidden 32,
    2 layers, 3 convolutions, 80 samples per frame)."""
    values: dict[str, Any] = dict(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
        conv_dim=(32, 32, 32), conv_stride=(5, 4, 4), conv_kernel=(10, 8, 4),
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
    )
    values.update(overrides)
    return values


def register_speech_family(spec: SpeechFamily) -> None:
    """Register the builder that rebuilds ``spec.family`` from :meth:`Encoder.architecture`."""

    def build(architecture: dict[str, Any]) -> ConvTransformerEncoder:
        config = config_from_json(spec.config_class, architecture["config"])
        front = architecture["front_end"]
        return ConvTransformerEncoder(spec.family, transformers_class(spec.model_class)(config),
                                      normalize=front["normalize"], sample_rate=front["sample_rate"])

    register_family(spec.family, build)


def random_speech_encoder(spec: SpeechFamily, config_values: dict[str, Any],
                          sample_rate: int = 16_000) -> ConvTransformerEncoder:
    """A random-weight encoder of ``spec``'s family from config values (no hub)."""
    config = transformers_class(spec.config_class)(**config_values)
    return ConvTransformerEncoder(spec.family, transformers_class(spec.model_class)(config),
                                  normalize=True, sample_rate=sample_rate)


def load_speech_encoder(spec: SpeechFamily, source: str, pretrained: bool, what: str,
                        config: Any = None) -> ConvTransformerEncoder:
    """Load from a hub id or local directory; ``config`` overrides the checkpoint's own
    (MERT passes a translated one)."""
    if config is None:
        values = load_config_dict(source, what)
        check_model_type(values, spec.model_types, what, source)
        config = transformers_class(spec.config_class).from_dict(values)
    if pretrained:
        model = load_pretrained(spec.model_class, source, what, config=config,
                                allowed_missing=("masked_spec_embed",))
    else:
        model = transformers_class(spec.model_class)(config)
    normalize, rate = front_end_from_source(source, config)
    return ConvTransformerEncoder(spec.family, model, normalize=normalize, sample_rate=rate)


def speech_family_loader(spec: SpeechFamily, tiny_values: dict[str, Any]) -> FamilyLoader:
    """``load(source, pretrained, what)`` for :func:`register_names`: ``source=None`` builds
    the tiny random configuration."""

    def load(source: str | None, pretrained: bool, what: str) -> ConvTransformerEncoder:
        if source is None:
            return random_speech_encoder(spec, tiny_values)
        return load_speech_encoder(spec, source, pretrained, what)

    return load


def register_speech_names(spec: SpeechFamily, tiny_values: dict[str, Any], entries: list[Entry]) -> None:
    """Register ``spec``'s builder and its 16 kHz encoder names (``tiny_values``: the
    architecture of the entry without a source)."""
    register_speech_family(spec)
    register_names(spec.family, 16_000, speech_family_loader(spec, tiny_values), entries)

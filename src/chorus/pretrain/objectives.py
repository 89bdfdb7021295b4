"""Which objective an encoder gets (``auto``) and how each is built from the settings."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..encoders import Encoder, get_spec
from ..encoders.sfx_cnn import SfxCNN
from ..encoders.speech_ssl import ConvTransformerEncoder
from ..seeding import derived_seed
from .config import PretrainConfig
from .contrastive import Contrastive
from .masked_prediction import MaskedPrediction, fit_teacher
from .masked_spectrogram import MaskedSpectrogram
from .objective import Objective
from .errors import PretrainError

OBJECTIVES = ("contrastive", "masked-prediction", "masked-spectrogram")


def resolve_objective(name: str, encoder: Encoder) -> str:
    """``name``, or for ``auto``: ``contrastive`` (wav2vec2), ``masked-prediction`` (other
    wav2vec2-style transformers), ``masked-spectrogram`` (sfx-cnn family)."""
    if name != "auto":
        if name not in OBJECTIVES:
            raise PretrainError(f"unknown objective {name!r}; choose auto or {', '.join(OBJECTIVES)}")
        return name
    if isinstance(encoder, SfxCNN):
        return "masked-spectrogram"
    if isinstance(encoder, ConvTransformerEncoder):
        return "contrastive" if encoder.family == "wav2vec2" else "masked-prediction"
    family = encoder.architecture().get("family")
    raise PretrainError(f"{encoder.name}: no self-supervised objective for the {family!r} family; "
                        f"supported: wav2vec2-style transformers and sfx-cnn")


def layer_index(encoder: Encoder, layer: str | None) -> int:
    """Index of ``layer`` (a name or an index; None: the middle layer)."""
    if layer is None:
        return encoder.num_layers // 2
    if layer in encoder.layer_names:
        return encoder.layer_names.index(layer)
    if layer.lstrip("-").isdigit() and -encoder.num_layers <= int(layer) < encoder.num_layers:
        return int(layer) % encoder.num_layers
    raise PretrainError(f"{encoder.name} has no layer {layer!r}; layers: {', '.join(encoder.layer_names)}")


def build_objective(name: str, encoder: Encoder, teacher: Encoder, waveforms: Sequence[np.ndarray],
                    config: PretrainConfig, device: torch.device) -> Objective:
    """The objective ``name`` around ``encoder`` (moved to ``device``). ``teacher``: the frozen
    starting encoder (masked prediction labels its frames; k-means is fitted on
    ``waveforms`` here)."""
    if name == "masked-spectrogram":
        return MaskedSpectrogram(encoder, config.patch_ratio, config.reconstruction).to(device)
    if name == "contrastive":
        return Contrastive(encoder, config.mask_prob, config.mask_span, source=_weights_source(config)).to(device)
    clip_samples = int(round(config.clip_seconds * encoder.sample_rate))
    targets = fit_teacher(teacher.to(device), layer_index(teacher, config.teacher_layer), waveforms, clip_samples,
                          config.clusters, config.kmeans_frames, config.batch_size,
                          derived_seed(config.seed, "kmeans"), device)
    return MaskedPrediction(encoder, targets, config.mask_prob, config.mask_span).to(device)


def _weights_source(config: PretrainConfig) -> str | None:
    """The checkpoint the starting encoder came from (None: random weights)."""
    if not config.pretrained:
        return None
    return config.source if config.source is not None else get_spec(config.encoder).default_source

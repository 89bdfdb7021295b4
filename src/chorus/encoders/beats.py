"""BEATs behind the chorus encoder interface, from the official checkpoints.

BEATs is not on the Hugging Face hub. Download a checkpoint from the official release,
https://github.com/microsoft/unilm/tree/master/beats (e.g. ``BEATs_iter3_plus_AS2M.pt``,
pre-trained on AudioSet-2M; the ``..._finetuned_on_AS2M_cpt*.pt`` files add an AudioSet
classifier), and pass its path: ``load_encoder("beats", source="BEATs_iter3_plus_AS2M.pt")``
or ``--source`` on the command line. A checkpoint is a pickle holding
``{"cfg": {...}, "model": state_dict}``; it is read with ``torch.load(weights_only=True)``
(plain containers and tensors only, never arbitrary objects) and nothing else.

Front end (torch, batched): waveform x 2^15, 128-bin Kaldi fbank with a Povey window at
16 kHz (:mod:`chorus.encoders.kaldi_fbank`), then ``(fbank - 15.41663) / (2 x 6.55582)``.

Frames: 16x16 patches make ``frames / 16`` time patches x 8 frequency patches; every
hidden state is averaged over the 8 frequency patches, giving one frame per 160 ms
(6.25 Hz). A time patch is valid when its 16 fbank frames all come from the clip; padded
tokens are zeroed before the position convolution and masked as attention keys, so a
clip's features do not depend on its batch. Layers: the transformer's input (``layer0``)
and each layer's output; fine-tuned checkpoints add ``predictor``, the AudioSet logits per
frame (their mean over valid frames is the official clip-level logit).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from . import kaldi_fbank
from .base import Encoder, LayerOutputs, lengths_to_mask
from .beats_network import (
    FBANK_MEAN,
    FBANK_STD,
    BEATsConfig,
    BEATsNetwork,
    official_state_dict_to_chorus,
)
from .errors import BEATsConfigError, EncoderLoadError, UnsupportedArchitecture
from .registry import EncoderSpec, register_encoder, register_family

SAMPLE_RATE = 16_000
NUM_MEL_BINS = 128
TINY_CFG = dict(input_patch_size=16, embed_dim=16, encoder_layers=2, encoder_embed_dim=32, encoder_ffn_embed_dim=37,
                encoder_attention_heads=2, conv_pos=16, conv_pos_groups=2, relative_position_embedding=True,
                num_buckets=32, max_distance=64, gru_rel_pos=True, deep_norm=True)


class BEATsEncoder(Encoder):
    """Every hidden state of BEATs as ``[batch, time patches, dim]`` at 6.25 Hz."""

    def __init__(self, config: BEATsConfig):
        super().__init__()
        self.name = "beats"
        self.network = BEATsNetwork(config)
        self.sample_rate = SAMPLE_RATE
        patch = config.input_patch_size
        if NUM_MEL_BINS % patch:
            raise UnsupportedArchitecture(f"beats: patch size {patch} does not divide {NUM_MEL_BINS} mel bins")
        self.patch = patch
        self.shift = SAMPLE_RATE // 100
        self.min_samples = SAMPLE_RATE * 25 // 1000 + (patch - 1) * self.shift
        layers = config.encoder_layers + 1
        head = config.finetuned_model
        self.layer_names = tuple(f"layer{i}" for i in range(layers)) + (("predictor",) if head else ())
        self.layer_dims = (config.encoder_embed_dim,) * layers + ((config.predictor_class,) if head else ())
        self.frame_rates = (100.0 / patch,) * len(self.layer_dims)

    def architecture(self) -> dict[str, Any]:
        return {"family": "beats", "cfg": self.network.config.to_dict()}

    def forward(self, waveforms: Tensor, lengths: Tensor) -> LayerOutputs:
        """``waveforms [batch, samples]`` at 16 kHz -> every layer ``[batch, time patches, dim]``.

        Clips shorter than one patch (2800 samples) are zero-padded to one patch.
        """
        lengths = lengths.to(waveforms.device).clamp_min(self.min_samples)
        if waveforms.shape[1] < self.min_samples:
            waveforms = torch.nn.functional.pad(waveforms, (0, self.min_samples - waveforms.shape[1]))
        with torch.no_grad():
            bank = kaldi_fbank.fbank(waveforms * 2**15, SAMPLE_RATE, NUM_MEL_BINS, window_type="povey")
            bank = (bank - FBANK_MEAN) / (2.0 * FBANK_STD)
        valid = kaldi_fbank.frame_count(lengths, SAMPLE_RATE) // self.patch
        time_mask = lengths_to_mask(valid, bank.shape[1] // self.patch)
        states = [s.mean(dim=2) for s in self.network(bank, ~time_mask)]
        if self.network.predictor is not None:
            states.append(self.network.predictor(states[-1]))
        return LayerOutputs(states, [time_mask] * len(states))


def load_checkpoint(path: str | Path) -> tuple[BEATsConfig, dict[str, Tensor]]:
    """``(config, state dict)`` of an official BEATs checkpoint, read with
    ``torch.load(weights_only=True)`` (never unpickling arbitrary objects)."""
    path = Path(path)
    if not path.is_file():
        raise EncoderLoadError(f"beats: {path}: no such checkpoint file (download one from "
                               "https://github.com/microsoft/unilm/tree/master/beats)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError ... for bad files
        raise EncoderLoadError(f"beats: {path}: not a loadable BEATs checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("cfg"), dict) \
            or not isinstance(checkpoint.get("model"), dict):
        raise EncoderLoadError(f"beats: {path}: expected a dict with 'cfg' and 'model' entries")
    try:
        config = BEATsConfig.from_cfg(checkpoint["cfg"])
    except (BEATsConfigError, TypeError) as exc:
        raise UnsupportedArchitecture(f"beats: {path}: {exc}") from exc
    return config, checkpoint["model"]


def load_beats(path: str | Path, pretrained: bool = True) -> BEATsEncoder:
    """A BEATs encoder from an official checkpoint; ``pretrained=False`` keeps its
    architecture with random weights."""
    config, state = load_checkpoint(path)
    encoder = BEATsEncoder(config)
    if pretrained:
        try:
            mapped = official_state_dict_to_chorus(state, config)
            encoder.network.load_state_dict(mapped, strict=True)
        except (BEATsConfigError, RuntimeError) as exc:
            raise EncoderLoadError(f"beats: {path}: weights do not fit the configuration: {exc}") from exc
    return encoder


def _load(source: str | None, pretrained: bool) -> BEATsEncoder:
    if source is None:
        raise EncoderLoadError("beats: BEATs is not on the Hugging Face hub; download an official checkpoint "
                               "(e.g. BEATs_iter3_plus_AS2M.pt from https://github.com/microsoft/unilm/tree/master/beats)"
                               " and pass its path as source (--source)")
    return load_beats(source, pretrained)


def _load_tiny(source: str | None, pretrained: bool) -> BEATsEncoder:
    return load_beats(source, pretrained) if source is not None else BEATsEncoder(BEATsConfig.from_cfg(TINY_CFG))


def _build(architecture: dict[str, Any]) -> BEATsEncoder:
    return BEATsEncoder(BEATsConfig.from_cfg(architecture["cfg"]))


register_family("beats", _build)
register_encoder(EncoderSpec(
    name="beats", family="beats",
    description="BEATs audio SSL (AudioSet); official .pt checkpoint given as source",
    sample_rate=SAMPLE_RATE, num_layers=13, num_parameters=90_311_792,
    weights="official checkpoint from microsoft/unilm (MIT); pass --source",
    loader=_load,
))
register_encoder(EncoderSpec(
    name="beats-tiny", family="beats", description="tiny random BEATs for tests",
    sample_rate=SAMPLE_RATE, num_layers=3, num_parameters=26_894, weights="random (tiny test config)",
    loader=_load_tiny, for_tests=True,
))

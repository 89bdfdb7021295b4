"""The Whisper encoder (Radford et al., *Robust Speech Recognition via Large-Scale Weak
Supervision*, ICML 2023); the decoder is never loaded.

Front end: ``WhisperFeatureExtractor`` (log-mel, clamped to 8 below each window's peak),
called per window. The encoder takes exactly ``2 x max_source_positions`` mel frames
(30 s for the released models); each clip is cut into consecutive 30 s windows
(:mod:`chorus.encoders.windows`), each zero-padded on its own as Whisper expects, and the
encoder frames (50 Hz) are concatenated. A frame is valid when it starts inside the clip.

Layers: the input to the first transformer layer (``layer0``: convolutions + sinusoidal
positions) and each layer's output; the last one is after the final layer norm.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from .base import LayerOutputs
from .hf_common import Entry, HFEncoder, check_model_type, config_from_json, feature_extractor_from_dict, load_config_dict, load_feature_extractor, load_pretrained, register_names, transformers_class
from .errors import UnsupportedArchitecture
from .registry import register_family
from .windows import assemble, cut_segments, plan_windows, window_counts

TINY = dict(vocab_size=60, d_model=32, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=37,
            decoder_layers=1, decoder_attention_heads=2, decoder_ffn_dim=37, num_mel_bins=16,
            max_source_positions=50, max_target_positions=40, pad_token_id=0, bos_token_id=1,
            eos_token_id=2, decoder_start_token_id=1)
TINY_FRONT_END = dict(feature_size=16, chunk_length=1)


class WhisperEncoderLayers(HFEncoder):
    """Every layer of a Whisper encoder as ``[batch, frames, d_model]`` at 50 Hz."""

    family = "whisper"

    def __init__(self, encoder: Any, feature_extractor: Any):
        super().__init__(encoder)
        config = encoder.config
        config.encoder_layerdrop = encoder.layerdrop = 0.0  # every layer, in training too
        self.name = "whisper"
        self.feature_extractor = feature_extractor
        self.sample_rate = int(feature_extractor.sampling_rate)
        self.window = int(feature_extractor.n_samples)
        self.frames = int(config.max_source_positions)
        if feature_extractor.nb_max_frames != 2 * self.frames or feature_extractor.feature_size != config.num_mel_bins:
            raise UnsupportedArchitecture(
                f"whisper: feature extractor gives {feature_extractor.feature_size} x {feature_extractor.nb_max_frames}"
                f" mel frames, the encoder wants {config.num_mel_bins} x {2 * self.frames}")
        self.samples_per_frame = 2 * int(feature_extractor.hop_length)
        layers = int(config.encoder_layers) + 1
        self.layer_names = tuple(f"layer{i}" for i in range(layers))
        self.layer_dims = (int(config.d_model),) * layers
        self.frame_rates = (self.sample_rate / self.samples_per_frame,) * layers

    def front_end_state(self) -> dict[str, Any]:
        return self.feature_extractor.to_dict()

    def forward(self, waveforms: Tensor, lengths: Tensor) -> LayerOutputs:
        """``waveforms [batch, samples]`` at 16 kHz -> every layer ``[batch, frames, d_model]``."""
        plan = plan_windows(lengths, window_counts(lengths, self.window), self.window, self.window)
        features = self.feature_extractor(cut_segments(waveforms, plan), sampling_rate=self.sample_rate,
                                          return_tensors="pt")["input_features"]
        out = self.model(features.to(waveforms), output_hidden_states=True)
        states = list(out.hidden_states)
        states[-1] = out.last_hidden_state
        valid = ((plan.lengths + self.samples_per_frame - 1) // self.samples_per_frame).clamp(1, self.frames)
        hidden, masks = [], []
        for state in states:
            layer, mask = assemble(state, valid, plan)
            hidden.append(layer)
            masks.append(mask)
        return LayerOutputs(hidden, masks)


def _encoder(config: Any) -> Any:
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    return WhisperEncoder(config)


def _build(architecture: dict[str, Any]) -> WhisperEncoderLayers:
    config = config_from_json("WhisperConfig", architecture["config"])
    extractor = feature_extractor_from_dict("WhisperFeatureExtractor", architecture["front_end"])
    return WhisperEncoderLayers(_encoder(config), extractor)


def _load(source: str | None, pretrained: bool, what: str) -> WhisperEncoderLayers:
    if source is None:
        return WhisperEncoderLayers(_encoder(transformers_class("WhisperConfig")(**TINY)),
                                    feature_extractor_from_dict("WhisperFeatureExtractor", TINY_FRONT_END))
    values = load_config_dict(source, what)
    check_model_type(values, ("whisper",), what, source)
    config = transformers_class("WhisperConfig").from_dict(values)
    if pretrained:
        # WhisperForAudioClassification holds the encoder alone and maps full-model
        # checkpoints onto it; its classification head is never used.
        encoder = load_pretrained("WhisperForAudioClassification", source, what, config=config,
                                  allowed_missing=("projector.", "classifier.")).encoder
    else:
        encoder = _encoder(config)
    extractor = load_feature_extractor("WhisperFeatureExtractor", source, what)
    return WhisperEncoderLayers(encoder, extractor)


register_family("whisper", _build)
register_names("whisper", 16_000, _load, [
    Entry("whisper-base", "openai/whisper-base", "Whisper base encoder (680k h weakly supervised speech)", 7,
          20_590_592, "openai/whisper-base (Apache-2.0)"),
    Entry("whisper-tiny-random", None, "tiny random Whisper encoder (1 s window) for tests", 3, 19_850,
          "random (tiny test config)"),
])

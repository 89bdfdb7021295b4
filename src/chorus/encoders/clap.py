"""The CLAP audio encoder (Wu et al., *Large-Scale Contrastive Language-Audio Pretraining
with Feature Fusion and Keyword-to-Caption Augmentation*, ICASSP 2023): HTS-AT, a Swin
transformer over the log-mel spectrogram, plus CLAP's audio projection.

Front end: ``ClapFeatureExtractor`` per window, with ``truncation="rand_trunc"`` and
``padding="repeatpad"`` (the unfused checkpoints' settings). Windows are 10 s
(:mod:`chorus.encoders.windows`): a clip is cut into consecutive 10 s windows and no
window is ever longer than the extractor's maximum, so the random crop of ``rand_trunc``
never happens and features are deterministic. A window shorter than 10 s is repeated to
fill it (``repeatpad``), as CLAP was trained; only frames of the first copy are valid.
Checkpoints with feature fusion (``enable_fusion=True``) are refused.

Frames. HTS-AT folds the spectrogram's time axis into ``freq_ratio`` (4) chunks stacked
along frequency, so each Swin stage's hidden state is an image
``[channels, freq_ratio x freq, time / freq_ratio]``. We unfold it back: average over
frequency within each chunk and concatenate the chunks in time order, giving
``[frames, channels]`` with ``frames = freq_ratio x image width``. Layers: the patch
embeddings, each Swin stage before its patch merging (widths double per stage), and
``projection``, CLAP's projected audio embedding (one frame per window; its pooled value
on a clip of at most 10 s is CLAP's audio embedding before L2 normalisation). In train
mode the input batch norm uses batch statistics, as in CLAP training.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .base import LayerOutputs
from .hf_common import Entry, HFEncoder, check_model_type, config_from_json, feature_extractor_from_dict, load_config_dict, load_feature_extractor, load_pretrained, quiet_transformers, register_names, transformers_class
from .errors import UnsupportedArchitecture
from .registry import register_family
from .windows import assemble, cut_segments, plan_windows, window_counts

TRUNCATION, PADDING = "rand_trunc", "repeatpad"
TINY = dict(spec_size=64, num_mel_bins=16, window_size=4, patch_size=4, patch_stride=(4, 4), depths=(1, 1),
            num_attention_heads=(2, 2), patch_embeds_hidden_size=8, hidden_size=16, projection_dim=16,
            num_hidden_layers=2)
TINY_FRONT_END = dict(feature_size=16, sampling_rate=48_000, hop_length=480, max_length_s=1, fft_window_size=1024,
                      frequency_min=50, frequency_max=14_000, truncation=TRUNCATION, padding=PADDING)


class ClapAudioLayers(HFEncoder):
    """Swin stages and projection of ``ClapAudioModelWithProjection`` as ``[batch, frames, width]``."""

    family = "clap"

    def __init__(self, model: Any, feature_extractor: Any):
        super().__init__(model)
        config = model.config
        if config.enable_fusion:
            raise UnsupportedArchitecture("clap: checkpoints with feature fusion (enable_fusion=True) are not supported")
        if feature_extractor.feature_size != config.num_mel_bins:
            raise UnsupportedArchitecture(f"clap: feature extractor gives {feature_extractor.feature_size} mel bins, "
                                          f"the model wants {config.num_mel_bins}")
        self.name = "clap"
        self.feature_extractor = feature_extractor
        self.sample_rate = int(feature_extractor.sampling_rate)
        self.window = int(feature_extractor.nb_max_samples)
        encoder = model.audio_model.audio_encoder
        self.freq_ratio = int(encoder.freq_ratio)
        stages = len(config.depths)
        widths = [int(config.patch_embeds_hidden_size) * 2**i for i in range(stages)]
        self.stage_frames = [self.freq_ratio * encoder.input_resolutions[0][1]]
        self.stage_frames += [self.freq_ratio * encoder.input_resolutions[i][1] for i in range(stages)]
        window_seconds = self.window / self.sample_rate
        self.layer_names = ("patch_embed", *(f"stage{i + 1}" for i in range(stages)), "projection")
        self.layer_dims = (widths[0], *widths, int(config.projection_dim))
        self.frame_rates = (*(f / window_seconds for f in self.stage_frames), 1.0 / window_seconds)

    def front_end_state(self) -> dict[str, Any]:
        return self.feature_extractor.to_dict()

    def forward(self, waveforms: Tensor, lengths: Tensor) -> LayerOutputs:
        """``waveforms [batch, samples]`` at the extractor's rate (48 kHz for the released
        models) -> patch embeddings, Swin stages and projection as ``[batch, frames, width]``."""
        plan = plan_windows(lengths, window_counts(lengths, self.window), self.window, self.window)
        features = self.feature_extractor(cut_segments(waveforms, plan), sampling_rate=self.sample_rate,
                                          truncation=TRUNCATION, padding=PADDING,
                                          return_tensors="pt")["input_features"]
        out = self.model(input_features=features.to(waveforms), output_hidden_states=True,
                         output_hidden_states_before_downsampling=True)
        hidden, masks = [], []
        fraction = plan.lengths.to(torch.float64) / self.window
        for image, frames in zip(out.hidden_states, self.stage_frames):
            valid = torch.ceil(fraction * frames).long().clamp(1, frames)
            layer, mask = assemble(self.unfold_time(image), valid, plan)
            hidden.append(layer)
            masks.append(mask)
        layer, mask = assemble(out.audio_embeds.unsqueeze(1), torch.ones_like(plan.lengths), plan)
        return LayerOutputs(hidden + [layer], masks + [mask])

    def unfold_time(self, image: Tensor) -> Tensor:
        """``[n, channels, freq_ratio * freq, width]`` -> ``[n, freq_ratio * width, channels]``:
        frequency averaged within each time chunk, chunks in time order."""
        n, channels, height, width = image.shape
        chunks = image.view(n, channels, self.freq_ratio, height // self.freq_ratio, width).mean(dim=3)
        return chunks.reshape(n, channels, self.freq_ratio * width).transpose(1, 2)


def _build(architecture: dict[str, Any]) -> ClapAudioLayers:
    config = config_from_json("ClapAudioConfig", architecture["config"])
    return ClapAudioLayers(transformers_class("ClapAudioModelWithProjection")(config),
                           feature_extractor_from_dict("ClapFeatureExtractor", architecture["front_end"]))


def _load(source: str | None, pretrained: bool, what: str) -> ClapAudioLayers:
    if source is None:
        config = transformers_class("ClapAudioConfig")(**TINY)
        return ClapAudioLayers(transformers_class("ClapAudioModelWithProjection")(config),
                               feature_extractor_from_dict("ClapFeatureExtractor", TINY_FRONT_END))
    values = load_config_dict(source, what)
    check_model_type(values, ("clap", "clap_audio_model"), what, source)
    audio = values.get("audio_config", values)
    if audio.get("enable_fusion"):
        raise UnsupportedArchitecture(f"{what}: checkpoints with feature fusion (enable_fusion=True) are not supported")
    if pretrained:
        model = load_pretrained("ClapAudioModelWithProjection", source, what)
    else:
        with quiet_transformers():
            config = transformers_class("ClapAudioConfig").from_pretrained(source)
        model = transformers_class("ClapAudioModelWithProjection")(config)
    extractor = load_feature_extractor("ClapFeatureExtractor", source, what)
    return ClapAudioLayers(model, extractor)


register_family("clap", _build)
register_names("clap", 48_000, _load, [
    Entry("clap-htsat", "laion/clap-htsat-unfused",
          "LAION CLAP audio encoder (HTS-AT, unfused): Swin stages + projection", 6, 28_190_872,
          "laion/clap-htsat-unfused (Apache-2.0)"),
    Entry("clap-tiny", None, "tiny random CLAP audio encoder (1 s window) for tests", 4, 5_684,
          "random (tiny test config)"),
])

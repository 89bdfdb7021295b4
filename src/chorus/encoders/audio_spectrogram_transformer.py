"""AST, the Audio Spectrogram Transformer (Gong et al., *AST: Audio Spectrogram
Transformer*, Interspeech 2021).

Front end (torch, per clip): 128-bin Kaldi fbank with a Hanning window at 16 kHz
(:mod:`chorus.encoders.kaldi_fbank`, what AST was trained on through torchaudio),
frames beyond the clip set to zero as ``ASTFeatureExtractor`` pads them, then
``(fbank - mean) / (2 * std)`` with the checkpoint's statistics.

AST takes exactly ``max_length`` frames (1024 = 10.24 s). Longer clips are cut into
consecutive windows of ``max_length`` frames (:mod:`chorus.encoders.windows`), so every
fbank frame is seen once and no clip is truncated.

Layers: the patch embeddings (``layer0``) and each transformer layer's output; the last
one is after the final layer norm. Frames: AST's patches form a grid of
``frequency x time`` positions; the [CLS] and distillation tokens are dropped and each
layer's patches are averaged over the frequency axis, leaving one frame per time patch:
``100 / time_stride`` Hz (10 Hz for the released model) within a window; windows start
every ``max_length`` fbank frames (10.24 s), so the frames of consecutive windows are
0.14 s further apart at the seam. A time patch is valid when its centre lies inside the clip.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from . import kaldi_fbank
from .base import LayerOutputs
from .hf_common import (
    Entry,
    HFEncoder,
    check_model_type,
    config_from_json,
    feature_extractor_dict,
    load_config_dict,
    load_pretrained,
    register_names,
    transformers_class,
)
from .registry import register_family
from .windows import assemble, pad_segments, plan_windows

PREFIX_TOKENS = 2  # [CLS] and distillation token
FRONT_END_DEFAULTS = {"sampling_rate": 16_000, "mean": -4.2677393, "std": 4.5689974, "do_normalize": True}
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
            patch_size=16, frequency_stride=8, time_stride=8, max_length=64, num_mel_bins=24)


class ASTEncoder(HFEncoder):
    """Every layer of an ``ASTModel`` as ``[batch, time patches, hidden]``."""

    family = "ast"

    def __init__(self, model: Any, front_end: dict[str, Any]):
        super().__init__(model)
        config = model.config
        self.name = "ast"
        self.front_end = {key: front_end.get(key, value) for key, value in FRONT_END_DEFAULTS.items()}
        self.sample_rate = int(self.front_end["sampling_rate"])
        self.num_mel_bins = int(config.num_mel_bins)
        self.max_length = int(config.max_length)
        self.patch = int(config.patch_size)
        self.time_stride = int(config.time_stride)
        self.freq_patches = (self.num_mel_bins - self.patch) // int(config.frequency_stride) + 1
        self.time_patches = (self.max_length - self.patch) // self.time_stride + 1
        self.shift = self.sample_rate // 100
        window = self.sample_rate * 25 // 1000
        self.window_samples = (self.max_length - 1) * self.shift + window
        layers = int(config.num_hidden_layers) + 1
        self.layer_names = tuple(f"layer{i}" for i in range(layers))
        self.layer_dims = (int(config.hidden_size),) * layers
        self.frame_rates = (100.0 / self.time_stride,) * layers

    def front_end_state(self) -> dict[str, Any]:
        return dict(self.front_end)

    def features(self, segments: Tensor, frames: Tensor) -> Tensor:
        """``segments [n, window_samples]`` with ``frames [n]`` valid fbank frames ->
        normalised fbank ``[n, max_length, num_mel_bins]``, zero beyond the valid frames
        (before normalisation), as ASTFeatureExtractor pads."""
        bank = kaldi_fbank.fbank(segments, self.sample_rate, self.num_mel_bins, window_type="hanning")
        valid = torch.arange(self.max_length, device=bank.device)[None, :] < frames[:, None].to(bank.device)
        bank = bank * valid.unsqueeze(-1).to(bank.dtype)
        if self.front_end["do_normalize"]:
            bank = (bank - self.front_end["mean"]) / (2.0 * self.front_end["std"])
        return bank

    def forward(self, waveforms: Tensor, lengths: Tensor) -> LayerOutputs:
        """``waveforms [batch, samples]`` at 16 kHz -> every layer ``[batch, time patches, hidden]``."""
        clip_frames = kaldi_fbank.frame_count(lengths.cpu(), self.sample_rate)
        counts = (clip_frames + self.max_length - 1) // self.max_length
        plan = plan_windows(lengths, counts, self.max_length * self.shift, self.window_samples)
        frames = kaldi_fbank.frame_count(plan.lengths, self.sample_rate)
        inputs = self.features(pad_segments(waveforms, plan, self.window_samples), frames)
        out = self.model(inputs, output_hidden_states=True)
        states = list(out.hidden_states)
        states[-1] = out.last_hidden_state
        centre = self.patch // 2
        valid = ((frames - centre + self.time_stride - 1) // self.time_stride).clamp(1, self.time_patches)
        hidden, masks = [], []
        for state in states:
            patches = state[:, PREFIX_TOKENS:, :].unflatten(1, (self.freq_patches, self.time_patches))
            layer, mask = assemble(patches.mean(dim=1), valid, plan)
            hidden.append(layer)
            masks.append(mask)
        return LayerOutputs(hidden, masks)


def _build(architecture: dict[str, Any]) -> ASTEncoder:
    config = config_from_json("ASTConfig", architecture["config"])
    return ASTEncoder(transformers_class("ASTModel")(config), architecture["front_end"])


def _load(source: str | None, pretrained: bool, what: str) -> ASTEncoder:
    if source is None:
        return ASTEncoder(transformers_class("ASTModel")(transformers_class("ASTConfig")(**TINY)), {})
    values = load_config_dict(source, what)
    check_model_type(values, ("audio-spectrogram-transformer",), what, source)
    config = transformers_class("ASTConfig").from_dict(values)
    model = (load_pretrained("ASTModel", source, what, config=config) if pretrained
             else transformers_class("ASTModel")(config))
    return ASTEncoder(model, feature_extractor_dict(source))


register_family("ast", _build)
register_names("ast", 16_000, _load, [
    Entry("ast", "MIT/ast-finetuned-audioset-10-10-0.4593",
          "Audio Spectrogram Transformer fine-tuned on AudioSet (mAP 0.459)", 13, 86_187_264,
          "MIT/ast-finetuned-audioset-10-10-0.4593 (BSD-3-Clause)"),
    Entry("ast-tiny", None, "tiny random AST for tests", 3, 22_442, "random (tiny test config)"),
])

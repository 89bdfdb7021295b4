"""``student-cnn``: a small log-mel CNN meant to be distilled into (``chorus distill``).

16 kHz input; a log-mel front-end (512-sample Hann frames every 320 samples = 20 ms, the
first centred on sample 0, so ``1 + samples // 320`` frames; 48 HTK-mel bands from 0 to
8 kHz; ``log10(1 + 1000 · mel power) / 4``) over the peak-normalised waveform; then four
conv blocks, each 2 x (3x3 conv without bias -> BatchNorm -> ReLU), with 2x2 max-pooling
after the first three. Channels 16 -> 32 -> 64 -> 160 (about 0.4 M parameters, most of
them in the last block, which runs at the lowest resolution).

Layers ``block1``..``block4``: each block's output averaged over the mel axis,
``[batch, frames, channels]`` at 25, 12.5, 6.25 and 6.25 Hz. Padded frames are zeroed after
every convolution, so a clip's features do not depend on its batch in eval mode.

No published weights: ``load_encoder("student-cnn", seed=s)`` gives the same random bytes
for the same ``s`` (the shared θ0 every distilled student starts from); ``source=`` a
``.safetensors`` state dict (``chorus distill``'s ``student.safetensors``) loads a trained
student, so ``chorus probe --encoder student-cnn --source ...`` probes it.
``student-cnn-tiny`` (4/4/8/8 channels, 24 mels) is for tests.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .base import Encoder, LayerOutputs, lengths_to_mask
from .registry import EncoderLoadError, EncoderSpec, register_encoder, register_family
from .sfx_cnn import ConvBlock
from .sfx_frontend import mel_filterbank

SAMPLE_RATE = 16_000
N_FFT = 512
HOP = 320
FULL_CHANNELS = (16, 32, 64, 160)
TINY_CHANNELS = (4, 4, 8, 8)
POOLS = (True, True, True, False)


class LogMel(nn.Module):
    """``(waveforms [batch, samples] at 16 kHz, lengths [batch])`` ->
    ``(log-mel [batch, frames, n_mels], frames [batch])``; padding never changes a clip."""

    def __init__(self, n_mels: int):
        super().__init__()
        self.n_mels = int(n_mels)
        self.register_buffer("window", torch.hann_window(N_FFT, periodic=True), persistent=False)
        bank = mel_filterbank(SAMPLE_RATE, N_FFT, self.n_mels).T.astype(np.float32)
        self.register_buffer("mel", torch.from_numpy(bank), persistent=False)

    def forward(self, waveforms: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        x = waveforms * lengths_to_mask(lengths, waveforms.shape[-1]).to(waveforms.dtype)
        peak = x.abs().amax(dim=-1, keepdim=True)
        x = x / torch.where(peak > 0, peak, torch.ones_like(peak))
        frames = 1 + torch.div(lengths, HOP, rounding_mode="floor")
        total = 1 + waveforms.shape[-1] // HOP
        right = (total - 1) * HOP + N_FFT - N_FFT // 2 - x.shape[-1]
        x = nn.functional.pad(x, (N_FFT // 2, max(right, 0)))
        chunks = x.unfold(-1, N_FFT, HOP)[:, :total]
        power = torch.fft.rfft(chunks * self.window, dim=-1).abs().pow(2)
        spec = torch.log10(1.0 + 1000.0 * (power @ self.mel)) / 4.0
        return spec * lengths_to_mask(frames, total).unsqueeze(-1).to(spec.dtype), frames


class StudentCNN(Encoder):
    """The student CNN over waveforms at 16 kHz (random weights)."""

    def __init__(self, channels: Sequence[int] = FULL_CHANNELS, n_mels: int = 48):
        super().__init__()
        if len(channels) != len(POOLS):
            raise ValueError(f"student-cnn has {len(POOLS)} blocks, got channels {list(channels)}")
        self.name = "student-cnn"
        self.sample_rate = SAMPLE_RATE
        self.channels = tuple(int(c) for c in channels)
        self.layer_names = tuple(f"block{i + 1}" for i in range(len(self.channels)))
        self.layer_dims = self.channels
        rate, rates = SAMPLE_RATE / HOP, []
        for pool in POOLS:
            rate = rate / 2 if pool else rate
            rates.append(rate)
        self.frame_rates = tuple(rates)
        self.frontend = LogMel(n_mels)
        self.blocks = nn.ModuleList(ConvBlock(c_in, c_out)
                                    for c_in, c_out in zip((1, *self.channels[:-1]), self.channels))

    def forward(self, waveforms: Tensor, lengths: Tensor) -> LayerOutputs:
        spec, frames = self.frontend(waveforms, lengths)
        x = spec.unsqueeze(1)
        hidden, masks = [], []
        for block, pool in zip(self.blocks, POOLS):
            mask = lengths_to_mask(frames, x.shape[2])
            x = block(x, mask[:, None, :, None].to(x.dtype))
            if pool:
                if x.shape[2] < 2:  # too short to pool: keep one (masked) frame
                    x = nn.functional.pad(x, (0, 0, 0, 2 - x.shape[2]))
                x = nn.functional.max_pool2d(x, 2)
                frames = torch.div(frames, 2, rounding_mode="floor")
                mask = lengths_to_mask(frames, x.shape[2])
                x = x * mask[:, None, :, None].to(x.dtype)
            hidden.append(x.mean(dim=3).transpose(1, 2))
            masks.append(mask)
        return LayerOutputs(hidden, masks)

    def architecture(self) -> dict[str, Any]:
        return {"family": "student-cnn", "channels": list(self.channels), "n_mels": self.frontend.n_mels}


def _loader(channels: Sequence[int], n_mels: int):
    def load(source: str | None, pretrained: bool) -> StudentCNN:
        model = StudentCNN(channels, n_mels)
        if source is not None and pretrained:
            from ..tensorfile import load_tensors

            try:
                model.load_state_dict(load_tensors(source), strict=True)
            except RuntimeError as exc:  # names or shapes differ
                raise EncoderLoadError(f"{source}: tensors do not match this student-cnn: {exc}") from None
        return model

    return load


def _build(architecture: dict[str, Any]) -> StudentCNN:
    return StudentCNN(architecture.get("channels", FULL_CHANNELS), architecture.get("n_mels", 48))


register_family("student-cnn", _build)
register_encoder(EncoderSpec(
    name="student-cnn", family="student-cnn",
    description="small log-mel CNN to distill into, 16 kHz, 4 conv blocks (16-160 channels)",
    sample_rate=SAMPLE_RATE, num_layers=4, num_parameters=395_216, weights="random (seeded student init)",
    loader=_loader(FULL_CHANNELS, 48),
))
register_encoder(EncoderSpec(
    name="student-cnn-tiny", family="student-cnn", description="student-cnn with 4/4/8/8 channels, random (tests)",
    sample_rate=SAMPLE_RATE, num_layers=4, num_parameters=2_580, weights="random (tiny test config)",
    loader=_loader(TINY_CHANNELS, 24),
))

"""``student-cnn``: a small log-frequency CNN meant to be distilled into (``chorus distill``).

16 kHz input; a log-frequency front-end: 2048-sample Hann frames every 320 samples
(20 ms), the first centred on sample 0 (``1 + samples // 320`` frames), power spectrum,
then ``bins_per_octave`` triangular bands per octave from 55 Hz (A1) over 7 octaves
(12 per octave: one band per semitone, 84 bands up to 7 kHz; each band triangular in
log-frequency, unit sum, and at least its nearest FFT bin), ``log10(1 + 1000 · power) / 4``,
over the peak-normalised waveform. Semitone bands let the convolutions see harmonic
patterns that shift with pitch, which a mel scale blurs at low frequencies. Then four
conv blocks, each 2 x (3x3 conv without bias -> BatchNorm -> ReLU), with 2x2 max-pooling
after the first three. Channels 16 -> 32 -> 64 -> 160 (about 0.4 M parameters, most of
them in the last block, which runs at the lowest resolution).

Layers ``block1``..``block4``: each block's output averaged over the frequency axis,
``[batch, frames, channels]`` at 25, 12.5, 6.25 and 6.25 Hz. Padded frames are zeroed
after every convolution, so a clip's features do not depend on its batch in eval mode.

No published weights: ``load_encoder("student-cnn", seed=s)`` gives the same random bytes
for the same ``s`` (the shared θ0 every distilled student starts from); ``source=`` a
``.safetensors`` state dict (``chorus distill``'s ``student.safetensors``) loads a trained
student, so ``chorus probe --encoder student-cnn --source ...`` probes it.
``student-cnn-tiny`` (4/4/8/8 channels, 3 bands per octave) is for tests.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .base import Encoder, LayerOutputs, lengths_to_mask
from .errors import EncoderLoadError
from .registry import EncoderSpec, register_encoder, register_family
from .sfx_cnn import conv_blocks, run_blocks

SAMPLE_RATE = 16_000
N_FFT = 2048
HOP = 320
F_MIN = 55.0
OCTAVES = 7
FULL_CHANNELS = (16, 32, 64, 160)
TINY_CHANNELS = (4, 4, 8, 8)
POOLS = (True, True, True, False)


def log_filterbank(bins_per_octave: int, sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT,
                   f_min: float = F_MIN, octaves: int = OCTAVES) -> np.ndarray:
    """``[bands, n_fft // 2 + 1]``: band ``k`` centred on ``f_min · 2^(k / bins_per_octave)``,
    triangular in log-frequency (zero one band away), at least its nearest FFT bin, unit sum."""
    bands = bins_per_octave * octaves
    centres = f_min * 2.0 ** (np.arange(bands) / bins_per_octave)
    freqs = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    with np.errstate(divide="ignore"):
        distance = np.abs(np.log2(freqs[None, :]) - np.log2(centres[:, None])) * bins_per_octave
    weights = np.maximum(0.0, 1.0 - distance)
    weights[np.arange(bands), np.rint(centres * n_fft / sample_rate).astype(int)] += 1e-3
    return weights / weights.sum(axis=1, keepdims=True)


class LogFrequency(nn.Module):
    """``(waveforms [batch, samples] at 16 kHz, lengths [batch])`` ->
    ``(log power [batch, frames, bands], frames [batch])``; padding never changes a clip."""

    def __init__(self, bins_per_octave: int):
        super().__init__()
        self.bins_per_octave = int(bins_per_octave)
        self.register_buffer("window", torch.hann_window(N_FFT, periodic=True), persistent=False)
        bank = log_filterbank(self.bins_per_octave).T.astype(np.float32)
        self.register_buffer("bank", torch.from_numpy(bank), persistent=False)

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
        spec = torch.log10(1.0 + 1000.0 * (power @ self.bank)) / 4.0
        return spec * lengths_to_mask(frames, total).unsqueeze(-1).to(spec.dtype), frames


class StudentCNN(Encoder):
    """The student CNN over waveforms at 16 kHz (random weights)."""

    def __init__(self, channels: Sequence[int] = FULL_CHANNELS, bins_per_octave: int = 12):
        super().__init__()
        self.name = "student-cnn"
        self.sample_rate = SAMPLE_RATE
        self.channels = tuple(int(c) for c in channels)
        self.layer_names = tuple(f"block{i + 1}" for i in range(len(self.channels)))
        self.layer_dims = self.channels
        self.frontend = LogFrequency(bins_per_octave)
        self.blocks, self.frame_rates = conv_blocks(self.channels, POOLS, SAMPLE_RATE / HOP)
        self.layer_modules = tuple(f"blocks.{i}" for i in range(len(self.blocks)))

    def forward(self, waveforms: Tensor, lengths: Tensor) -> LayerOutputs:
        spec, frames = self.frontend(waveforms, lengths)
        return run_blocks(self.blocks, POOLS, spec, frames)

    def architecture(self) -> dict[str, Any]:
        return {"family": "student", "channels": list(self.channels),
                "bins_per_octave": self.frontend.bins_per_octave}


def _loader(channels: Sequence[int], bins_per_octave: int):
    def load(source: str | None, pretrained: bool) -> StudentCNN:
        model = StudentCNN(channels, bins_per_octave)
        if source is not None and pretrained:
            from ..tensorfile import load_tensors

            try:
                model.load_state_dict(load_tensors(source), strict=True)
            except RuntimeError as exc:  # names or shapes differ
                raise EncoderLoadError(f"{source}: tensors do not match this student-cnn: {exc}") from None
        return model

    return load


def _build(architecture: dict[str, Any]) -> StudentCNN:
    return StudentCNN(architecture.get("channels", FULL_CHANNELS), architecture.get("bins_per_octave", 12))


register_family("student", _build)
register_encoder(EncoderSpec(
    name="student-cnn", family="student",
    description="small log-frequency CNN to distill into, 16 kHz, 4 conv blocks (16-160 channels)",
    sample_rate=SAMPLE_RATE, num_layers=4, num_parameters=395_216, weights="random (seeded student init)",
    loader=_loader(FULL_CHANNELS, 12),
))
register_encoder(EncoderSpec(
    name="student-cnn-tiny", family="student", description="student-cnn with 4/4/8/8 channels, random (tests)",
    sample_rate=SAMPLE_RATE, num_layers=4, num_parameters=2_580, weights="random (tiny test config)",
    loader=_loader(TINY_CHANNELS, 3), for_tests=True,
))

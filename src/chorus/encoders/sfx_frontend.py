"""The log-mel front-end of the sound-effects CNN (Ma & Lerch, ISMIR 2022), in torch.

It reproduces the Essentia recipe the published weights were trained on (aisfx's
``spectrogram_essentia.py``, its reference path): 44.1 kHz; frames of 2048 samples every
1024, the first centred on sample 0 (half a frame of zeros before it) and one more each
hop until a frame starts past the end, i.e. ``ceil(samples / 1024) + 1`` frames; a
symmetric Hann window; power spectrum; 96 HTK-mel bands from 0 to 22050 Hz whose
triangles are linear in mel ("warping" weights) and sum to one ("unit_sum" -- what
librosa 0.9.2 calls ``norm=1``: each filter scaled to unit L1 norm, not Slaney's area
normalisation); ``log10(1 + 10000 * mel)``; divided by 9.4578, the maximum of the
training spectrograms (aisfx's "original" min/max normalisation with min 0).

On top, by default, each waveform is peak-normalised over its valid samples (as aisfx's
librosa path does), which makes features independent of recording level.

Batched and differentiable: ``waveforms [batch, samples]`` and ``lengths [batch]`` give
``[batch, frames, 96]`` and valid frame counts; padding never changes a clip's frames.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from .base import lengths_to_mask

SAMPLE_RATE = 44_100
N_FFT = 2048
HOP = 1024
N_MELS = 96
SPEC_MAX = 9.457798957824707
"""aisfx's normalisation constant: the largest log-mel value over its training data."""
FRAME_RATE = SAMPLE_RATE / HOP
"""Front-end frames per second (about 43.07 Hz)."""


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale: ``2595 log10(1 + f / 700)``."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_filterbank(sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS,
                   f_min: float = 0.0, f_max: float | None = None) -> np.ndarray:
    """``[n_mels, n_fft // 2 + 1]`` triangles, linear in mel between HTK-mel-spaced edges,
    each summing to one (Essentia ``MelBands`` with ``weighting='warping'``,
    ``normalize='unit_sum'``)."""
    f_max = sample_rate / 2 if f_max is None else f_max
    edges = np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2)
    bins = hz_to_mel(np.arange(n_fft // 2 + 1) * sample_rate / n_fft)
    rising = (bins[None, :] - edges[:-2, None]) / (edges[1:-1, None] - edges[:-2, None])
    falling = (edges[2:, None] - bins[None, :]) / (edges[2:, None] - edges[1:-1, None])
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)


def frame_counts(lengths: Tensor) -> Tensor:
    """Frames per clip: ``ceil(samples / HOP) + 1`` (Essentia's FrameCutter, centred start)."""
    return torch.div(lengths + HOP - 1, HOP, rounding_mode="floor") + 1


class SfxFrontEnd(nn.Module):
    """``(waveforms [batch, samples] at 44.1 kHz, lengths [batch])`` ->
    ``(log-mel [batch, frames, 96] scaled to about [0, 1], frames [batch])``."""

    def __init__(self, peak_normalise: bool = True):
        super().__init__()
        self.peak_normalise = peak_normalise
        self.register_buffer("window", torch.hann_window(N_FFT, periodic=False, dtype=torch.float64).float(),
                             persistent=False)
        self.register_buffer("mel", torch.from_numpy(mel_filterbank().T.astype(np.float32)), persistent=False)

    def forward(self, waveforms: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        valid = lengths_to_mask(lengths, waveforms.shape[-1])
        x = waveforms * valid.to(waveforms.dtype)
        if self.peak_normalise:
            peak = x.abs().amax(dim=-1, keepdim=True)
            x = x / torch.where(peak > 0, peak, torch.ones_like(peak))
        frames = frame_counts(lengths)
        total = int(frames.max()) if frames.numel() else 1
        right = (total - 1) * HOP + N_FFT - N_FFT // 2 - x.shape[-1]
        x = nn.functional.pad(x, (N_FFT // 2, max(right, 0)))
        chunks = x.unfold(-1, N_FFT, HOP)[:, :total]
        spectrum = torch.view_as_real(torch.fft.rfft(chunks * self.window, dim=-1))
        power = spectrum.pow(2).sum(dim=-1)
        spec = torch.log10(1.0 + 10_000.0 * (power @ self.mel)) / SPEC_MAX
        mask = lengths_to_mask(frames, total).unsqueeze(-1).to(spec.dtype)
        return spec * mask, frames



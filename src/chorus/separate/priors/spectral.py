"""The prior's signal representation: amplitude-compressed complex STFT.

``c = scale · |X|^α · e^{i∠X}`` with ``X`` the STFT (Hann window, ``n_fft`` samples, hop
``hop``, Nyquist bin dropped so the bin count is ``n_fft / 2``). Compression with α = 0.5
evens out the dynamic range a diffusion model has to learn, as in score-based speech
enhancement on complex spectrograms (Welker, Richter & Gerkmann, Interspeech 2022);
``scale`` is set from training data so that the representation has RMS
:data:`~chorus.separate.priors.edm.SIGMA_DATA`. The inverse is differentiable everywhere,
which reconstruction guidance needs (gradients flow from waveforms back to spectrograms).

Axes: waveforms ``[B, samples]``; spectrograms ``[B, 2, n_fft / 2, frames]`` (real,
imaginary), ``frames = samples // hop + 1``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class SpectralConfig:
    """STFT size and compression. Sizes in samples."""

    n_fft: int = 256
    hop: int = 64
    alpha: float = 0.5
    scale: float = 1.0

    @property
    def bins(self) -> int:
        return self.n_fft // 2

    def to_dict(self) -> dict:
        return asdict(self)


def stft(waveforms: torch.Tensor, config: SpectralConfig) -> torch.Tensor:
    """``[B, samples]`` -> complex ``[B, n_fft / 2 + 1, frames]``."""
    window = torch.hann_window(config.n_fft, dtype=waveforms.dtype, device=waveforms.device)
    return torch.stft(waveforms, config.n_fft, config.hop, window=window, center=True, return_complex=True)


def analysis(waveforms: torch.Tensor, config: SpectralConfig) -> torch.Tensor:
    """``[B, samples]`` -> compressed ``[B, 2, n_fft / 2, frames]``."""
    spec = stft(waveforms, config)[:, : config.bins]
    magnitude = spec.abs().clamp_min(1e-12)
    compressed = spec * (config.scale * magnitude ** (config.alpha - 1.0))
    return torch.stack([compressed.real, compressed.imag], dim=1)


def synthesis(spectrograms: torch.Tensor, config: SpectralConfig, samples: int) -> torch.Tensor:
    """Compressed ``[B, 2, n_fft / 2, frames]`` -> ``[B, samples]`` (differentiable)."""
    unscaled = torch.complex(spectrograms[:, 0], spectrograms[:, 1]) / config.scale
    exponent = 1.0 / config.alpha - 1.0
    magnitude = torch.sqrt(unscaled.real ** 2 + unscaled.imag ** 2 + 1e-20)
    spec = unscaled * magnitude ** exponent
    spec = torch.nn.functional.pad(spec, (0, 0, 0, 1))
    window = torch.hann_window(config.n_fft, dtype=spectrograms.dtype, device=spectrograms.device)
    return torch.istft(spec, config.n_fft, config.hop, window=window, center=True, length=samples)

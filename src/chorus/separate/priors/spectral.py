"""The prior's signal representation: an amplitude-compressed STFT.

``X`` is the STFT (Hann window, ``n_fft`` samples, hop ``hop``, Nyquist bin dropped so the
bin count is ``n_fft / 2``). Two representations:

- ``"magnitude"`` (default): ``scale · |X|^α``, one channel. Waveforms are rendered with
  a given phase — at separation time the mixture's, as ratio-mask separators do. A
  magnitude prior learns where a class sits in frequency from first-order statistics,
  which a small network picks up in minutes on a CPU.
- ``"complex"``: ``scale · |X|^α · e^{i∠X}`` as real and imaginary channels, as in
  score-based speech enhancement on complex spectrograms (Welker, Richter & Gerkmann,
  Interspeech 2022); it models phase too but needs far more training.

Compression with α = 0.5 evens out the dynamic range; ``scale`` is set from training data
so that the representation has RMS :data:`~chorus.separate.priors.edm.SIGMA_DATA`. The
inverse is differentiable, which reconstruction guidance needs (gradients flow from
waveforms back to spectrograms).

Axes: waveforms ``[B, samples]``; spectrograms ``[B, C, n_fft / 2, frames]`` with C = 1
(magnitude) or 2 (real, imaginary); ``frames = samples // hop + 1``; phases are complex
unit tensors ``[B, n_fft / 2, frames]``.
"""

from __future__ import annotations

import torch
from pydantic import model_validator

from ...schema import FrozenModel

REPRESENTATIONS = ("magnitude", "complex")


def check_representation(representation: str, error: type[Exception] = ValueError) -> None:
    """Raise ``error`` unless ``representation`` is one of :data:`REPRESENTATIONS`."""
    if representation not in REPRESENTATIONS:
        raise error(f"representation must be one of {REPRESENTATIONS}, got {representation!r}")


class SpectralConfig(FrozenModel):
    """STFT size and compression. Sizes in samples."""

    n_fft: int = 256
    hop: int = 64
    alpha: float = 0.5
    scale: float = 1.0
    representation: str = "magnitude"

    @model_validator(mode="after")
    def _known_representation(self) -> "SpectralConfig":
        check_representation(self.representation)
        return self

    @property
    def bins(self) -> int:
        return self.n_fft // 2

    @property
    def channels(self) -> int:
        return 1 if self.representation == "magnitude" else 2


def stft(waveforms: torch.Tensor, config: SpectralConfig) -> torch.Tensor:
    """``[B, samples]`` -> complex ``[B, n_fft / 2 + 1, frames]``."""
    window = torch.hann_window(config.n_fft, dtype=waveforms.dtype, device=waveforms.device)
    return torch.stft(waveforms, config.n_fft, config.hop, window=window, center=True, return_complex=True)


def analysis(waveforms: torch.Tensor, config: SpectralConfig) -> torch.Tensor:
    """``[B, samples]`` -> compressed ``[B, C, n_fft / 2, frames]``."""
    spec = stft(waveforms, config)[:, : config.bins]
    magnitude = spec.abs()
    if config.representation == "magnitude":
        return (config.scale * magnitude ** config.alpha)[:, None]
    compressed = spec * (config.scale * magnitude.clamp_min(1e-12) ** (config.alpha - 1.0))
    return torch.stack([compressed.real, compressed.imag], dim=1)


def phase(waveforms: torch.Tensor, config: SpectralConfig) -> torch.Tensor:
    """Unit-modulus phase ``[B, n_fft / 2, frames]`` of the STFT (1 where the bin is silent)."""
    spec = stft(waveforms, config)[:, : config.bins]
    magnitude = spec.abs()
    return torch.where(magnitude > 1e-12, spec / magnitude.clamp_min(1e-12), torch.ones_like(spec))


def synthesis(spectrograms: torch.Tensor, config: SpectralConfig, samples: int,
              phases: torch.Tensor | None = None) -> torch.Tensor:
    """Compressed ``[B, C, n_fft / 2, frames]`` -> ``[B, samples]`` (differentiable).

    A magnitude representation needs ``phases`` (e.g. :func:`phase` of the mixture);
    negative magnitudes count as zero.
    """
    exponent = 1.0 / config.alpha
    if config.representation == "magnitude":
        if phases is None:
            raise ValueError("a magnitude representation needs phases to render a waveform")
        spec = (spectrograms[:, 0] / config.scale).clamp_min(0.0) ** exponent * phases
    else:
        unscaled = torch.complex(spectrograms[:, 0], spectrograms[:, 1]) / config.scale
        magnitude = torch.sqrt(unscaled.real ** 2 + unscaled.imag ** 2 + 1e-20)
        spec = unscaled * magnitude ** (exponent - 1.0)
    spec = torch.nn.functional.pad(spec, (0, 0, 0, 1))
    window = torch.hann_window(config.n_fft, dtype=spectrograms.dtype, device=spectrograms.device)
    return torch.istft(spec, config.n_fft, config.hop, window=window, center=True, length=samples)

"""Log-mel spectrograms as AudioLDM's VAE and HiFi-GAN vocoder expect them.

AudioLDM and AudioLDM2 were trained on HiFi-GAN-style features (Kong et al., 2020; Liu et
al., 2023): magnitude STFT (not power), Slaney-normalised mel filters, ``log(max(mel,
1e-5))``, frames centred by reflect-padding ``(n_fft − hop) / 2`` on each side so that a
waveform of ``n · hop`` samples gives exactly ``n`` frames. The hop is the vocoder's total
upsampling factor, so vocoder(log_mel(x)) has the length of x.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

_KNOWN_FFT = {(16000, 160): (1024, 8000.0), (48000, 480): (2048, 24000.0)}
"""(rate, hop) -> (n_fft, f_max) of the published AudioLDM/AudioLDM2 checkpoints."""


@dataclass(frozen=True)
class MelSettings:
    """STFT and mel parameters. Rates in Hz, sizes in samples."""

    sample_rate: int
    n_fft: int
    hop: int
    n_mels: int
    f_min: float = 0.0
    f_max: float | None = None

    @classmethod
    def for_vocoder(cls, sample_rate: int, hop: int, n_mels: int) -> "MelSettings":
        """The settings that match a vocoder's rate, upsampling factor and input bins.

        The published checkpoints' values are used where known; otherwise the window is
        the smallest power of two at least four hops long and the mel range reaches Nyquist.
        """
        n_fft, f_max = _KNOWN_FFT.get((int(sample_rate), int(hop)), (None, None))
        if n_fft is None:
            n_fft = 1 << max(int(np.ceil(np.log2(4 * hop))), 1)
            f_max = sample_rate / 2
        return cls(int(sample_rate), int(n_fft), int(hop), int(n_mels), 0.0, f_max)

    def filters(self) -> torch.Tensor:
        """``[n_fft // 2 + 1, n_mels]`` Slaney mel filter bank."""
        from transformers.audio_utils import mel_filter_bank

        bank = mel_filter_bank(
            num_frequency_bins=self.n_fft // 2 + 1, num_mel_filters=self.n_mels,
            min_frequency=self.f_min, max_frequency=self.f_max or self.sample_rate / 2,
            sampling_rate=self.sample_rate, norm="slaney", mel_scale="slaney",
        )
        return torch.from_numpy(np.asarray(bank, dtype=np.float32))


def log_mel(waveforms: torch.Tensor, settings: MelSettings, floor: float = 1e-5) -> torch.Tensor:
    """``[B, samples]`` -> ``[B, samples // hop, n_mels]`` natural-log mel magnitudes."""
    pad = (settings.n_fft - settings.hop) // 2
    padded = torch.nn.functional.pad(waveforms[:, None, :], (pad, pad), mode="reflect")[:, 0]
    window = torch.hann_window(settings.n_fft, dtype=waveforms.dtype, device=waveforms.device)
    spec = torch.stft(padded, settings.n_fft, settings.hop, settings.n_fft, window,
                      center=False, return_complex=True)
    magnitude = torch.sqrt(spec.real ** 2 + spec.imag ** 2 + 1e-9)
    mel = torch.einsum("bft,fm->btm", magnitude, settings.filters().to(magnitude))
    return torch.log(torch.clamp(mel, min=floor))

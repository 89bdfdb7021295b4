"""Audio transforms applied before encoding, for ablations.

- Frequency scaling (``pitch_factor``): every frequency is multiplied by the factor and
  the duration divided by it, like playing a tape at another speed. The clip is decoded
  at ``sample_rate / factor`` and the samples are then treated as ``sample_rate``: a
  factor 0.5 plays a 6 kHz call at 3 kHz (an octave lower), twice as long.
- Additive noise at a signal-to-noise ratio (dB), seeded per clip, white or pink (1/f
  power), the signal power measured over the whole clip.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..data.manifest import Clip
from ..seeding import derived_seed
from ..errors import InvalidInput

NOISE_KINDS = ("white", "pink")


@dataclass(frozen=True)
class ClipTransform:
    """What happens to a clip's audio before the encoder sees it. The default is nothing."""

    pitch_factor: float = 1.0
    noise_snr: float | None = None
    noise_kind: str = "pink"
    noise_seed: int = 0

    def __post_init__(self) -> None:
        if not 0.05 <= self.pitch_factor <= 20:
            raise InvalidInput(f"pitch factor must lie in [0.05, 20], not {self.pitch_factor}")
        if self.noise_kind not in NOISE_KINDS:
            raise InvalidInput(f"noise kind must be one of {NOISE_KINDS}, not {self.noise_kind!r}")

    def describe(self) -> dict:
        """JSON description (part of the feature store's identity)."""
        return asdict(self)

    def load_rate(self, sample_rate: int) -> int:
        """Rate to decode at so that the samples, read at ``sample_rate``, are scaled."""
        return int(round(sample_rate / self.pitch_factor))

    def apply(self, waveform: np.ndarray, clip: Clip) -> np.ndarray:
        """Add the clip's seeded noise (decoding already did the frequency scaling)."""
        if self.noise_snr is None:
            return waveform
        seed = derived_seed(self.noise_seed, str(clip.path), repr(clip.start), repr(clip.end), repr(self.noise_snr))
        return add_noise(waveform, self.noise_snr, np.random.default_rng(seed), self.noise_kind)


def coloured_noise(samples: int, rng: np.random.Generator, kind: str = "pink") -> np.ndarray:
    """``[samples]`` unit-power Gaussian noise, white or pink (power ∝ 1/f)."""
    white = rng.standard_normal(samples)
    if kind == "pink" and samples > 1:
        spectrum = np.fft.rfft(white)
        scale = np.ones(spectrum.shape[0])
        scale[1:] = 1.0 / np.sqrt(np.arange(1, spectrum.shape[0]))
        white = np.fft.irfft(spectrum * scale, n=samples)
    power = float(np.mean(white**2))
    return (white / np.sqrt(power) if power > 0 else white).astype(np.float32)


def add_noise(waveform: np.ndarray, snr_db: float, rng: np.random.Generator, kind: str = "pink") -> np.ndarray:
    """``waveform`` plus noise scaled so that 10·log10(P_signal / P_noise) = ``snr_db``."""
    signal_power = float(np.mean(np.asarray(waveform, np.float64) ** 2))
    noise = coloured_noise(waveform.shape[0], rng, kind)
    return (waveform + noise * np.sqrt(signal_power / 10 ** (snr_db / 10))).astype(np.float32)

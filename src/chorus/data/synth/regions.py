"""Recording regions: the background noise and the recording channel of a site.

A region changes what surrounds the calls (wind, rain, running water) and the channel they
pass through (band-limiting of the recorder, reverberation of the habitat); the species
stay the same. Both :class:`Background` and :class:`Channel` are streaming: successive
calls continue one signal without seams, so hours of audio can be produced block by block.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
from scipy import signal

from ...seeding import derived_seed


@dataclass(frozen=True)
class Region:
    """Background and channel of a recording site.

    ``noise_bands``: ``(low Hz, high Hz, level dB)`` bands of filtered noise summed into the
    background. ``gust_depth``/``gust_hz``: slow random amplitude modulation (wind gusts,
    babbling water). ``drops_per_s``: rate of short rain-drop clicks. ``highpass_hz`` /
    ``lowpass_hz``: recorder band limits (None: none). ``reverb_s``: RT60 of the habitat's
    reverberation (0: dry); ``reverb_mix``: reverberant to direct energy ratio.
    ``snr_offset_db``: added to the requested SNR (a noisier site has a negative offset).
    """

    name: str
    description: str
    noise_bands: tuple[tuple[float, float, float], ...] = ()
    gust_depth: float = 0.0
    gust_hz: float = 0.2
    drops_per_s: float = 0.0
    highpass_hz: float | None = None
    lowpass_hz: float | None = None
    reverb_s: float = 0.0
    reverb_mix: float = 0.0
    snr_offset_db: float = 0.0

    @property
    def silent(self) -> bool:
        return not self.noise_bands and self.drops_per_s == 0

    def as_dict(self) -> dict:
        return asdict(self)


REGIONS: dict[str, Region] = {r.name: r for r in (
    Region("temperate", "temperate woodland: soft pinkish noise, light breeze, short reverb",
           noise_bands=((60, 1500, 0.0), (1500, 6000, -8.0), (6000, 14000, -16.0)),
           gust_depth=0.3, gust_hz=0.3, highpass_hz=60, lowpass_hz=14000, reverb_s=0.3, reverb_mix=0.2),
    Region("rainforest", "tropical forest in rain: broadband hiss, drop clicks, long reverb",
           noise_bands=((200, 14000, 0.0), (60, 400, -6.0)), gust_depth=0.1, gust_hz=0.1,
           drops_per_s=60.0, highpass_hz=100, lowpass_hz=12000, reverb_s=0.8, reverb_mix=0.45,
           snr_offset_db=-2.0),
    Region("wetland", "wetland by a stream: low rumble and babbling water, moderate reverb",
           noise_bands=((40, 700, 0.0), (700, 3000, -5.0), (3000, 9000, -15.0)),
           gust_depth=0.5, gust_hz=2.5, highpass_hz=40, lowpass_hz=11000, reverb_s=0.4, reverb_mix=0.25),
    Region("savanna", "open savanna in wind: gusty low-frequency noise, a cheap band-limited recorder, dry",
           noise_bands=((20, 500, 0.0), (500, 3000, -12.0)), gust_depth=0.7, gust_hz=0.15,
           highpass_hz=250, lowpass_hz=9000, reverb_s=0.05, reverb_mix=0.05),
    Region("clean", "no background and a transparent channel (for source separation tests)"),
)}
"""Named regions, by name."""


def _usable(cutoff: float | None, sample_rate: int) -> bool:
    return cutoff is not None and 0 < cutoff < 0.49 * sample_rate


@dataclass(frozen=True)
class _NoiseDesign:
    """Filters of a region's background at one sample rate (designed once, then shared)."""

    bands: tuple[tuple[np.ndarray, float], ...]
    gust_sos: np.ndarray
    gust_scale: float
    drop_sos: np.ndarray


@lru_cache(maxsize=64)
def _noise_design(region: Region, sample_rate: int) -> _NoiseDesign:
    nyquist = 0.5 * sample_rate
    bands = []
    for low, high, level_db in region.noise_bands:
        high = min(high, 0.45 * sample_rate)
        if high > low:
            sos = signal.butter(2, [low / nyquist, high / nyquist], btype="bandpass", output="sos")
            # Band-passed unit-variance noise has power ~ bandwidth / nyquist: undo it.
            bands.append((sos, 10.0 ** (level_db / 20.0) / math.sqrt((high - low) / nyquist)))
    gust = max(region.gust_hz, 0.01)
    return _NoiseDesign(
        bands=tuple(bands),
        gust_sos=signal.butter(2, gust / nyquist, output="sos"),
        gust_scale=0.5 * math.sqrt(nyquist / gust),
        drop_sos=signal.butter(2, [2000 / nyquist, min(9000, 0.45 * sample_rate) / nyquist], btype="bandpass",
                               output="sos"),
    )


@lru_cache(maxsize=64)
def _calibration(region: Region, sample_rate: int) -> float:
    """1 / RMS of 4 s of the region's unscaled background drawn from a fixed seed."""
    rng = np.random.default_rng(derived_seed(0, "background-calibration", region.name))
    twin = Background(region, sample_rate, rng, normalise=False)
    twin.render(sample_rate // 2)
    preview = twin.render(4 * sample_rate)
    return 1.0 / (float(np.sqrt(np.mean(preview**2))) + 1e-12)


class Background:
    """Streaming background noise of ``region`` at about unit RMS.

    ``render(n)`` returns the next ``n`` samples; consecutive calls continue the same
    noise (filter states carry over, and each component draws from its own generator), so
    the output does not depend on how it is cut into blocks.
    """

    def __init__(self, region: Region, sample_rate: int, rng: np.random.Generator, *, normalise: bool = True):
        self.region = region
        self.sample_rate = sample_rate
        self._design = _noise_design(region, sample_rate)
        seeds = rng.integers(0, 2**63 - 1, size=len(region.noise_bands) + 3)
        self._rngs = [np.random.default_rng(int(s)) for s in seeds]
        self._band_zi = [np.zeros((sos.shape[0], 2)) for sos, _ in self._design.bands]
        self._gust_zi = np.zeros((self._design.gust_sos.shape[0], 2))
        self._drop_zi = np.zeros((self._design.drop_sos.shape[0], 2))
        self._norm = _calibration(region, sample_rate) if normalise and not region.silent else 1.0

    def render(self, n: int) -> np.ndarray:
        """The next ``n`` samples (float64)."""
        out = np.zeros(n)
        if self.region.silent or n == 0:
            return out
        design = self._design
        for index, (sos, gain) in enumerate(design.bands):
            band, self._band_zi[index] = signal.sosfilt(sos, self._rngs[index].standard_normal(n),
                                                        zi=self._band_zi[index])
            out += gain * band
        if self.region.gust_depth > 0:
            slow, self._gust_zi = signal.sosfilt(design.gust_sos, self._rngs[-3].standard_normal(n),
                                                 zi=self._gust_zi)
            out *= np.clip(1.0 + self.region.gust_depth * design.gust_scale * slow, 0.05, None)
        if self.region.drops_per_s > 0:
            hits = self._rngs[-2].random(n) < self.region.drops_per_s / self.sample_rate
            impulses = hits * self._rngs[-1].uniform(2.0, 12.0, size=n)
            drops, self._drop_zi = signal.sosfilt(design.drop_sos, impulses, zi=self._drop_zi)
            out += drops * math.sqrt(self.sample_rate / 1000.0)
        return out * self._norm


@lru_cache(maxsize=64)
def _channel_design(region: Region, sample_rate: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """``(room impulse response, recorder filter sections or None)`` of a region."""
    nyquist = 0.5 * sample_rate
    response = np.ones(1)
    if region.reverb_s > 0 and region.reverb_mix > 0:
        rng = np.random.default_rng(derived_seed(seed, "room", region.name))
        length = max(2, int(region.reverb_s * sample_rate))
        t = np.arange(length) / sample_rate
        response = rng.standard_normal(length) * 10.0 ** (-3.0 * t / region.reverb_s)
        response[0] = 0.0
        response *= math.sqrt(region.reverb_mix / (np.sum(response**2) + 1e-12))
        response[0] = 1.0
    sections = []
    if _usable(region.highpass_hz, sample_rate):
        sections.append(signal.butter(4, region.highpass_hz / nyquist, btype="highpass", output="sos"))
    if _usable(region.lowpass_hz, sample_rate):
        sections.append(signal.butter(6, region.lowpass_hz / nyquist, btype="lowpass", output="sos"))
    return response, (np.concatenate(sections) if sections else None)


class Channel:
    """Streaming recording channel of ``region``: reverberation, then band-limiting.

    ``reverb(block)`` convolves with a synthetic room response (exponentially decaying
    noise with the region's RT60, direct path first) and carries the tail into the next
    block; ``bandlimit(block)`` applies the recorder's high-pass and low-pass filters
    with carried state. The room response depends on ``seed`` and the region only.
    """

    def __init__(self, region: Region, sample_rate: int, seed: int):
        self.region = region
        self._ir, self._sos = _channel_design(region, sample_rate, seed)
        self._tail = np.zeros(len(self._ir) - 1)
        self._zi = None if self._sos is None else np.zeros((self._sos.shape[0], 2))

    def reverb(self, block: np.ndarray) -> np.ndarray:
        """The next block of reverberant signal (same length as ``block``)."""
        if len(self._ir) == 1:
            return np.asarray(block, dtype=np.float64)
        wet = signal.oaconvolve(block, self._ir)
        head = len(self._tail)
        wet[:head] += self._tail
        self._tail = wet[len(block):]
        return wet[: len(block)]

    def bandlimit(self, block: np.ndarray) -> np.ndarray:
        """The next block band-limited by the recorder's filters."""
        if self._sos is None:
            return np.asarray(block, dtype=np.float64)
        out, self._zi = signal.sosfilt(self._sos, block, zi=self._zi)
        return out

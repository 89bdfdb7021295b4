"""Synthetic taxon groups: species parameter sets and call rendering.

Each group occupies its own acoustic niche and has its own call model:

- ``birds``: frequency-modulated chirps, single or repeated as trills, 2-8 kHz;
- ``anurans``: pulse trains on a low harmonic carrier, 0.3-2 kHz;
- ``insects``: broadband stridulation (noise pulses grouped in echemes), 4-12 kHz;
- ``mammals``: harmonic stacks with gliding f0 (100-800 Hz), tilt and a formant.

A species is one point of the group's parameter box. The points follow the additive
low-discrepancy R_d sequence (Roberts, "The unreasonable effectiveness of quasirandom
sequences", 2018) shifted by an offset drawn from ``(seed, group)``: species number ``k``
(1-based) depends only on ``(seed, group, k)``, and the first N species of any N are spread
evenly, so no two are near-duplicates by chance while neighbours still overlap once
per-call jitter is added.
Waveforms are float64 ``[samples]`` at the caller's sample rate, peak about 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
from scipy import signal

from ...seeding import derived_seed

MAX_PARTIAL = 0.45
"""Partials and noise bands stop at this fraction of the sample rate (no aliasing)."""


@dataclass(frozen=True)
class Param:
    """One species parameter: its range, scale and per-call jitter.

    ``log``: spread on a log scale (frequencies, rates, durations); then ``jitter`` is the
    standard deviation of the natural-log factor applied per call. Otherwise ``jitter`` is
    the standard deviation as a fraction of the range. ``integer`` rounds after jitter.
    """

    low: float
    high: float
    log: bool = False
    integer: bool = False
    jitter: float = 0.0

    def at(self, u: float) -> float:
        """The value at position ``u`` in [0, 1] of the range."""
        if self.log:
            return float(math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low))))
        return float(self.low + u * (self.high - self.low))

    def jittered(self, value: float, rng: np.random.Generator, scale: float) -> float:
        """``value`` varied for one call; ``scale`` multiplies the jitter (0 = none)."""
        if self.log:
            out = value * math.exp(rng.normal(0.0, self.jitter * scale))
            out = min(max(out, self.low / 1.5), self.high * 1.5)
        else:
            span = self.high - self.low
            out = value + rng.normal(0.0, self.jitter * scale * span)
            out = min(max(out, self.low - 0.25 * span), self.high + 0.25 * span)
        return float(max(1, round(out))) if self.integer else out


@dataclass(frozen=True)
class Call:
    """One rendered call: ``waveform [samples]`` and the band it occupies (Hz)."""

    waveform: np.ndarray
    low_hz: float
    high_hz: float


Renderer = Callable[[Mapping[str, float], np.random.Generator, int], Call]


@dataclass(frozen=True)
class GroupModel:
    """A taxon group: its parameter box and its call renderer."""

    name: str
    description: str
    params: Mapping[str, Param]
    render: Renderer


def _r_sequence_alpha(dims: int) -> np.ndarray:
    """Increments of the R_d sequence: powers of 1/phi_d, phi_d the root of x^(d+1) = x + 1."""
    phi = 2.0
    for _ in range(64):
        phi = (1.0 + phi) ** (1.0 / (dims + 1))
    return (1.0 / phi) ** np.arange(1, dims + 1)


def species_parameters(model: GroupModel, seed: int, number: int) -> dict[str, float]:
    """The parameter set of species ``number`` (1-based) of ``model`` for ``seed``."""
    names = list(model.params)
    shift = np.random.default_rng(derived_seed(seed, "species", model.name)).random(len(names))
    position = (shift + number * _r_sequence_alpha(len(names))) % 1.0
    values = {}
    for name, u in zip(names, position):
        param = model.params[name]
        value = param.at(float(u))
        values[name] = float(round(value)) if param.integer else value
    return values


def call_parameters(model: GroupModel, species: Mapping[str, float], rng: np.random.Generator,
                    jitter: float) -> dict[str, float]:
    """One call's parameters: the species' set with per-call jitter."""
    return {name: model.params[name].jittered(species[name], rng, jitter) for name in model.params}


# -- shared building blocks --------------------------------------------------------------

def _phase(freq: np.ndarray, sample_rate: int) -> np.ndarray:
    """Instantaneous phase (radians) of a frequency track ``freq [samples]`` in Hz."""
    return 2.0 * np.pi * np.cumsum(freq) / sample_rate


def _envelope(n: int, attack: float) -> np.ndarray:
    """A smooth 0 -> 1 -> 0 envelope of ``n`` samples peaking at fraction ``attack``."""
    if n <= 1:
        return np.ones(max(n, 0))
    t = np.linspace(0.0, 1.0, n)
    attack = min(max(attack, 0.05), 0.95)
    rise = np.sin(0.5 * np.pi * np.clip(t / attack, 0.0, 1.0)) ** 2
    fall = np.cos(0.5 * np.pi * np.clip((t - attack) / (1.0 - attack), 0.0, 1.0)) ** 2
    return np.where(t <= attack, rise, fall)


def _harmonics(f0: np.ndarray, amplitudes: np.ndarray, sample_rate: int) -> np.ndarray:
    """Sum of partials ``h * f0(t)`` with ``amplitudes [partials, samples]`` (or
    ``[partials]``); partials above :data:`MAX_PARTIAL` of the rate are silenced."""
    phase = _phase(f0, sample_rate)
    orders = np.arange(1, amplitudes.shape[0] + 1)[:, None]
    audible = orders * f0[None, :] < MAX_PARTIAL * sample_rate
    amps = amplitudes if amplitudes.ndim == 2 else amplitudes[:, None]
    return (amps * audible * np.sin(orders * phase[None, :])).sum(axis=0)


def _band_noise(n: int, low: float, high: float, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """White noise band-passed to ``[low, high]`` Hz, unit RMS."""
    nyquist = 0.5 * sample_rate
    high = min(high, MAX_PARTIAL * sample_rate)
    low = min(max(low, 20.0), 0.9 * high)
    sos = signal.butter(4, [low / nyquist, high / nyquist], btype="bandpass", output="sos")
    noise = signal.sosfilt(sos, rng.standard_normal(n + 256))[256:]
    return noise / (np.sqrt(np.mean(noise**2)) + 1e-12)


def _normalise(x: np.ndarray) -> np.ndarray:
    peak = np.max(np.abs(x)) if x.size else 0.0
    return x / peak if peak > 0 else x


def _call(waveform: np.ndarray, low_hz: float, high_hz: float, sample_rate: int) -> Call:
    """A peak-normalised call whose band (Hz) is clipped to what ``sample_rate`` renders:
    at low rates a nominal low edge can lie above the highest rendered partial."""
    high = min(float(high_hz), MAX_PARTIAL * sample_rate)
    return Call(_normalise(waveform), min(float(low_hz), high), high)


def _samples(seconds: float, sample_rate: int) -> int:
    return max(1, int(round(seconds * sample_rate)))


# -- birds: FM chirps and trills, 2-8 kHz -------------------------------------------------

def _bird(p: Mapping[str, float], rng: np.random.Generator, sample_rate: int) -> Call:
    n_syl = _samples(p["syllable_s"], sample_rate)
    n_gap = _samples(p["gap_s"], sample_rate)
    u = np.linspace(-0.5, 0.5, n_syl)
    octaves = p["sweep_oct"] * u + p["bend_oct"] * (0.25 - u**2)
    freq = p["freq_hz"] * 2.0 ** octaves
    t = np.arange(n_syl) / sample_rate
    am = 1.0 - p["am_depth"] * 0.5 * (1.0 + np.cos(2 * np.pi * p["am_hz"] * t))
    amps = np.array([1.0, p["harmonic2"]])
    syllable = _harmonics(freq, amps, sample_rate) * am * _envelope(n_syl, p["attack"])
    count = int(p["syllables"])
    out = np.zeros(count * n_syl + (count - 1) * n_gap)
    for k in range(count):
        start = k * (n_syl + n_gap)
        out[start:start + n_syl] = syllable * (1.0 - p["decay"] * k / max(count, 1))
    return _call(out, freq.min(), freq.max() * (2 if p["harmonic2"] > 0.1 else 1), sample_rate)


BIRDS = GroupModel(
    "birds", "frequency-modulated chirps and trills, 2-8 kHz",
    {
        "freq_hz": Param(2800.0, 5600.0, log=True, jitter=0.20),
        "sweep_oct": Param(-0.9, 0.9, jitter=0.20),
        "bend_oct": Param(-0.8, 0.8, jitter=0.20),
        "syllable_s": Param(0.03, 0.14, log=True, jitter=0.30),
        "gap_s": Param(0.01, 0.08, log=True, jitter=0.40),
        "syllables": Param(1.0, 9.0, integer=True, jitter=0.24),
        "harmonic2": Param(0.0, 0.5, jitter=0.20),
        "am_hz": Param(20.0, 140.0, log=True, jitter=0.20),
        "am_depth": Param(0.0, 0.8, jitter=0.20),
        "attack": Param(0.15, 0.85, jitter=0.20),
        "decay": Param(0.0, 0.6, jitter=0.20),
    },
    _bird,
)


# -- anurans: pulse trains, 0.3-2 kHz -----------------------------------------------------

def _anuran(p: Mapping[str, float], rng: np.random.Generator, sample_rate: int) -> Call:
    period = _samples(1.0 / p["pulse_hz"], sample_rate)
    n_pulse = max(2, int(round(period * p["duty"])))
    count = int(p["pulses"])
    total = count * period
    u = np.linspace(0.0, 1.0, total)
    carrier = p["carrier_hz"] * 2.0 ** (p["call_fm_oct"] * (u - 0.5))
    within = np.tile(np.concatenate([np.linspace(0.0, 1.0, n_pulse), np.zeros(period - n_pulse)]), count)
    freq = carrier * 2.0 ** (p["pulse_fm_oct"] * within)
    amps = p["brightness"] ** np.arange(5)
    tone = _harmonics(freq, amps, sample_rate)
    pulse_env = np.concatenate([_envelope(n_pulse, p["attack"]), np.zeros(period - n_pulse)])
    call_env = _envelope(total, p["call_attack"]) ** 0.5
    out = tone * np.tile(pulse_env, count) * call_env
    top = freq.max() * (1 + 4 * (p["brightness"] > 0.3))
    return _call(out, freq.min(), top, sample_rate)


ANURANS = GroupModel(
    "anurans", "pulse trains on a harmonic carrier, 0.3-2 kHz",
    {
        "carrier_hz": Param(450.0, 1400.0, log=True, jitter=0.20),
        "pulse_hz": Param(8.0, 60.0, log=True, jitter=0.20),
        "duty": Param(0.2, 0.75, jitter=0.16),
        "pulses": Param(4.0, 24.0, integer=True, jitter=0.30),
        "attack": Param(0.1, 0.9, jitter=0.20),
        "brightness": Param(0.05, 0.7, jitter=0.16),
        "pulse_fm_oct": Param(-0.35, 0.15, jitter=0.16),
        "call_fm_oct": Param(-0.3, 0.3, jitter=0.20),
        "call_attack": Param(0.1, 0.9, jitter=0.20),
    },
    _anuran,
)


# -- insects: broadband stridulation, 4-12 kHz --------------------------------------------

def _insect(p: Mapping[str, float], rng: np.random.Generator, sample_rate: int) -> Call:
    period = _samples(1.0 / p["pulse_hz"], sample_rate)
    n_pulse = max(2, int(round(period * p["duty"])))
    n_echeme = max(period, _samples(p["echeme_s"], sample_rate))
    pulses = n_echeme // period
    n_echeme = pulses * period
    n_gap = _samples(p["echeme_gap_s"], sample_rate)
    count = int(p["echemes"])
    total = count * n_echeme + (count - 1) * n_gap
    half_band = 0.5 * p["bandwidth"] * p["center_hz"]
    low, high = p["center_hz"] - half_band, p["center_hz"] + half_band
    noise = _band_noise(total, low, high, rng, sample_rate)
    tone = np.sin(_phase(np.full(total, p["center_hz"]), sample_rate)) * math.sqrt(2.0)
    source = (1.0 - p["tonality"]) * noise + p["tonality"] * tone
    pulse_env = np.concatenate([_envelope(n_pulse, p["attack"]), np.zeros(period - n_pulse)])
    echeme_env = np.tile(pulse_env, pulses) * _envelope(n_echeme, p["echeme_attack"]) ** 0.3
    envelope = np.zeros(total)
    for k in range(count):
        start = k * (n_echeme + n_gap)
        envelope[start:start + n_echeme] = echeme_env
    return _call(source * envelope, max(low, 20.0), high, sample_rate)


INSECTS = GroupModel(
    "insects", "broadband stridulation in pulse groups (echemes), 4-12 kHz",
    {
        "center_hz": Param(5500.0, 9000.0, log=True, jitter=0.16),
        "bandwidth": Param(0.15, 0.7, jitter=0.20),
        "tonality": Param(0.0, 0.8, jitter=0.20),
        "pulse_hz": Param(25.0, 220.0, log=True, jitter=0.20),
        "duty": Param(0.2, 0.8, jitter=0.16),
        "attack": Param(0.1, 0.9, jitter=0.20),
        "echeme_s": Param(0.05, 0.35, log=True, jitter=0.30),
        "echeme_gap_s": Param(0.02, 0.2, log=True, jitter=0.40),
        "echemes": Param(1.0, 6.0, integer=True, jitter=0.30),
        "echeme_attack": Param(0.1, 0.9, jitter=0.20),
    },
    _insect,
)


# -- mammals: harmonic stacks, f0 100-800 Hz ----------------------------------------------

def _mammal(p: Mapping[str, float], rng: np.random.Generator, sample_rate: int) -> Call:
    n = _samples(p["duration_s"], sample_rate)
    u = np.linspace(-0.5, 0.5, n)
    t = np.arange(n) / sample_rate
    octaves = p["glide_oct"] * u + p["arch_oct"] * (0.25 - u**2)
    vibrato = p["vibrato_depth"] * np.sin(2 * np.pi * p["vibrato_hz"] * t)
    f0 = p["f0_hz"] * 2.0 ** octaves * (1.0 + vibrato)
    partials = min(40, max(1, int(MAX_PARTIAL * sample_rate / f0.min())))
    orders = np.arange(1, partials + 1)[:, None]
    freqs = orders * f0[None, :]
    tilt = 10.0 ** (p["tilt_db_oct"] * np.log2(orders) / 20.0)
    width = 0.35 * p["formant_hz"]
    formant = 1.0 + p["formant_gain"] / (1.0 + ((freqs - p["formant_hz"]) / width) ** 2)
    voiced = _harmonics(f0, tilt * formant, sample_rate)
    voiced /= np.sqrt(np.mean(voiced**2)) + 1e-12
    breath = _band_noise(n, 0.5 * p["formant_hz"], 2.0 * p["formant_hz"], rng, sample_rate)
    out = ((1.0 - p["breath"]) * voiced + p["breath"] * breath) * _envelope(n, p["attack"]) ** 0.5
    return _call(out, f0.min(), max(2 * p["formant_hz"], 4 * f0.max()), sample_rate)


MAMMALS = GroupModel(
    "mammals", "harmonic stacks with gliding f0 100-800 Hz, spectral tilt and a formant",
    {
        "f0_hz": Param(140.0, 560.0, log=True, jitter=0.20),
        "glide_oct": Param(-0.8, 0.8, jitter=0.20),
        "arch_oct": Param(-0.7, 0.7, jitter=0.20),
        "duration_s": Param(0.2, 0.9, log=True, jitter=0.30),
        "tilt_db_oct": Param(-14.0, -3.0, jitter=0.20),
        "formant_hz": Param(700.0, 2800.0, log=True, jitter=0.16),
        "formant_gain": Param(0.0, 6.0, jitter=0.20),
        "vibrato_hz": Param(2.0, 12.0, log=True, jitter=0.20),
        "vibrato_depth": Param(0.0, 0.05, jitter=0.20),
        "breath": Param(0.0, 0.4, jitter=0.16),
        "attack": Param(0.1, 0.9, jitter=0.20),
    },
    _mammal,
)


GROUPS: dict[str, GroupModel] = {model.name: model for model in (BIRDS, ANURANS, INSECTS, MAMMALS)}
"""The taxon groups the generator knows, by name."""


def render_call(model: GroupModel, species: Mapping[str, float], rng: np.random.Generator,
                sample_rate: int, jitter: float) -> Call:
    """One call of a species, with per-call jitter scaled by ``jitter`` (1 = nominal)."""
    return model.render(call_parameters(model, species, rng, jitter), rng, sample_rate)

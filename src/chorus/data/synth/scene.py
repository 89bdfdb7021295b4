"""Rendering one clip: calls of a species at random onsets, through a region's channel,
over its background at a chosen SNR.

Every random draw of a clip comes from generators seeded by ``(seed, group, species,
clip)``, so a clip does not depend on what else is generated, and changing the region
changes the background and channel but not the calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ...seeding import derived_seed
from .config import SynthConfig, species_label
from .regions import REGIONS, Background, Channel
from .species import GROUPS, render_call, species_parameters

DISTRACTOR_DB = (-12.0, -3.0)
"""Level range of an overlapping call of another species, relative to the clip's calls."""

CALL_LEVEL_DB = 3.0
"""Calls of one clip vary in level by +-this many dB."""

FADE_SECONDS = 0.005
"""Fade-out of a call cut by ``call_seconds``."""


@dataclass(frozen=True)
class CallEvent:
    """Where a call sits in a recording: seconds, band in Hz, species label and group."""

    start_s: float
    end_s: float
    low_hz: float
    high_hz: float
    label: str
    group: str


@dataclass(frozen=True)
class Calls:
    """Dry calls laid out on a timeline: ``waveform [samples]`` and what lies where."""

    waveform: np.ndarray
    events: tuple[CallEvent, ...]
    power: float
    """Mean power of the calls over the samples they occupy (their own level)."""


@lru_cache(maxsize=4096)
def _species(seed: int, group: str, number: int) -> dict[str, float]:
    return species_parameters(GROUPS[group], seed, number)


def species_of(config: SynthConfig, group: str, number: int) -> dict[str, float]:
    """Parameters of species ``number`` of ``group`` (they depend on the seed only)."""
    return dict(_species(config.seed, group, number))


def lay_out_calls(config: SynthConfig, group: str, number: int, n_samples: int,
                  rng: np.random.Generator, distractor: bool) -> Calls:
    """1..max_calls calls of one species at random onsets in ``n_samples``; with
    ``distractor`` also one quieter call of another species."""
    model = GROUPS[group]
    params = species_of(config, group, number)
    sr = config.sample_rate
    out = np.zeros(n_samples)
    events: list[CallEvent] = []
    energy, occupied = 0.0, 0
    for _ in range(int(rng.integers(1, config.max_calls + 1))):
        call = render_call(model, params, rng, sr, config.jitter)
        gain = 10.0 ** (rng.uniform(-CALL_LEVEL_DB, CALL_LEVEL_DB) / 20.0)
        start, piece = _place(_cut(call.waveform, config.call_seconds, sr) * gain, n_samples, rng)
        out[start:start + len(piece)] += piece
        energy += float(np.sum(piece**2))
        occupied += len(piece)
        events.append(CallEvent(start / sr, (start + len(piece)) / sr, call.low_hz, call.high_hz,
                                species_label(group, number), group))
    power = energy / max(occupied, 1)
    if distractor:
        others = [(g, n) for g, n in config.species_numbers() if (g, n) != (group, number)]
        if others:
            other_group, other = others[int(rng.integers(len(others)))]
            call = render_call(GROUPS[other_group], species_of(config, other_group, other), rng, sr, config.jitter)
            level = 10.0 ** (rng.uniform(*DISTRACTOR_DB) / 20.0)
            piece_gain = level * np.sqrt(power / (np.mean(call.waveform**2) + 1e-12))
            start, piece = _place(call.waveform * piece_gain, n_samples, rng)
            out[start:start + len(piece)] += piece
            events.append(CallEvent(start / sr, (start + len(piece)) / sr, call.low_hz, call.high_hz,
                                    species_label(other_group, other), other_group))
    return Calls(out, tuple(events), power)


def _cut(call: np.ndarray, seconds: float | None, sample_rate: int) -> np.ndarray:
    """``call`` cut to at most ``seconds`` (None: unchanged), ending in a linear fade-out."""
    if seconds is None:
        return call
    keep = max(1, int(round(seconds * sample_rate)))
    if len(call) <= keep:
        return call
    fade = min(keep, max(1, int(round(FADE_SECONDS * sample_rate))))
    cut = call[:keep].copy()
    cut[-fade:] *= np.linspace(1.0, 0.0, fade)
    return cut


def _place(call: np.ndarray, n_samples: int, rng: np.random.Generator) -> tuple[int, np.ndarray]:
    """A random onset for ``call`` inside ``n_samples`` and the part of it that fits."""
    start = int(rng.integers(0, max(n_samples - len(call), 0) + 1))
    return start, call[: n_samples - start]


def noise_gain(config: SynthConfig, signal_power: float) -> float:
    """Scale of the unit-RMS background giving the configured SNR against ``signal_power``."""
    if config.snr_db is None:
        return 0.0
    snr = config.snr_db + REGIONS[config.region].snr_offset_db
    return float(np.sqrt(signal_power / 10.0 ** (snr / 10.0)))


def clip_seed(config: SynthConfig, kind: str, group: str, number: int, clip: int) -> int:
    return derived_seed(config.seed, kind, group, str(number), str(clip))


def render_clip(config: SynthConfig, group: str, number: int, clip: int) -> tuple[np.ndarray, tuple[CallEvent, ...]]:
    """Clip ``clip`` of species ``number`` of ``group``: ``(waveform [samples] float32, events)``.

    The waveform's peak is set to a random level between -20 and -3 dBFS.
    """
    n = max(1, int(round(config.seconds * config.sample_rate)))
    rng = np.random.default_rng(clip_seed(config, "clip", group, number, clip))
    calls = lay_out_calls(config, group, number, n, rng, distractor=rng.random() < config.overlap)
    region = REGIONS[config.region]
    channel = Channel(region, config.sample_rate, config.seed)
    background_rng = np.random.default_rng(clip_seed(config, "background", group, number, clip))
    noise = Background(region, config.sample_rate, background_rng).render(n)
    mixed = channel.bandlimit(channel.reverb(calls.waveform) + noise_gain(config, calls.power) * noise)
    peak = np.max(np.abs(mixed))
    level = 10.0 ** (rng.uniform(-20.0, -3.0) / 20.0)
    waveform = mixed * (level / peak) if peak > 0 else mixed
    return waveform.astype(np.float32), calls.events

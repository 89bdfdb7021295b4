"""Long soundscapes: calls of every configured species at random times over a region's
background, written block by block so hours of audio never sit in memory.

Call times are a Poisson process; each call is rendered when the writer reaches it and
kept only while it still overlaps the block being written. The returned events (seconds
and band of every call, species and group) are what a Raven selection table holds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from ...fileio import atomic_path
from ...progress import ProgressFactory, resolve
from ...seeding import derived_seed
from .config import SynthConfig, species_label
from ..errors import SynthError
from .regions import REGIONS, Background, Channel
from .scene import CallEvent, noise_gain, species_of
from .species import GROUPS, render_call

CALL_PEAK_DBFS = (-24.0, -6.0)
"""Peak level range of soundscape calls."""

REFERENCE_CALL_POWER = 10.0 ** (-15.0 / 10.0)
"""The SNR of a soundscape is the ratio of this call power (-15 dBFS) to the background's."""


def _arrivals(config: SynthConfig, seconds: float, calls_per_minute: float) -> tuple[np.ndarray, list[tuple[str, int]]]:
    """Sorted call onsets (s) and the species of each."""
    rng = np.random.default_rng(derived_seed(config.seed, "soundscape-plan"))
    count = int(rng.poisson(calls_per_minute * seconds / 60.0))
    onsets = np.sort(rng.uniform(0.0, seconds, size=count))
    catalogue = config.species_numbers()
    picks = rng.integers(0, len(catalogue), size=count)
    return onsets, [catalogue[int(i)] for i in picks]


def render_soundscape(path: str | Path, config: SynthConfig, seconds: float, *,
                      calls_per_minute: float = 20.0, block_seconds: float = 10.0,
                      progress: ProgressFactory | None = None) -> list[CallEvent]:
    """Write a ``seconds``-long soundscape (16-bit wav at ``config.sample_rate``) to ``path``.

    Calls of all configured species arrive at ``calls_per_minute`` on average with peaks
    between -24 and -6 dBFS; the background sits ``config.snr_db`` below a -15 dBFS call.
    Returns every call as a :class:`CallEvent`, sorted by start time. The file appears
    atomically when complete.
    """
    if seconds <= 0 or block_seconds <= 0 or calls_per_minute < 0:
        raise SynthError(f"invalid soundscape request: seconds={seconds}, block_seconds={block_seconds}, "
                         f"calls_per_minute={calls_per_minute}")
    sr = config.sample_rate
    total = int(round(seconds * sr))
    block = max(1, int(round(block_seconds * sr)))
    region = REGIONS[config.region]
    channel = Channel(region, sr, config.seed)
    background = Background(region, sr, np.random.default_rng(derived_seed(config.seed, "soundscape-background")))
    gain = noise_gain(config, REFERENCE_CALL_POWER)
    onsets, species = _arrivals(config, seconds, calls_per_minute)
    events: list[CallEvent] = []
    active: list[tuple[int, np.ndarray]] = []
    upcoming = 0
    bar = resolve(progress)(total, "rendering soundscape")
    try:
        with atomic_path(path) as tmp, sf.SoundFile(str(tmp), "w", sr, 1, subtype="PCM_16", format="WAV") as out:
            for start in range(0, total, block):
                n = min(block, total - start)
                while upcoming < len(onsets) and int(onsets[upcoming] * sr) < start + n:
                    active.append(_call(config, species[upcoming], upcoming, int(onsets[upcoming] * sr), total, events))
                    upcoming += 1
                dry = np.zeros(n)
                for onset, wave in active:
                    lo, hi = max(onset, start), min(onset + len(wave), start + n)
                    if hi > lo:
                        dry[lo - start:hi - start] += wave[lo - onset:hi - onset]
                active = [(onset, wave) for onset, wave in active if onset + len(wave) > start + n]
                mixed = channel.bandlimit(channel.reverb(dry) + gain * background.render(n))
                out.write(np.clip(mixed, -1.0, 1.0).astype(np.float32))
                bar.update(n)
    finally:
        bar.close()
    return events


def _call(config: SynthConfig, which: tuple[str, int], index: int, onset: int, total: int,
          events: list[CallEvent]) -> tuple[int, np.ndarray]:
    """Render call ``index`` (species ``which``) starting at sample ``onset`` of a
    ``total``-sample recording; record its event."""
    group, number = which
    rng = np.random.default_rng(derived_seed(config.seed, "soundscape-call", str(index)))
    call = render_call(GROUPS[group], species_of(config, group, number), rng, config.sample_rate, config.jitter)
    wave = call.waveform * 10.0 ** (rng.uniform(*CALL_PEAK_DBFS) / 20.0)
    sr = config.sample_rate
    events.append(CallEvent(onset / sr, min(onset + len(wave), total) / sr, call.low_hz, call.high_hz,
                            species_label(group, number), group))
    return onset, wave

"""Mixtures with their ground-truth sources, for source-separation work.

:func:`mix_sources` renders one clip per requested group, each passed through the region's
channel on its own, plus the region's background; the mixture is exactly their sum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ...seeding import derived_seed
from .config import SynthConfig, species_label
from ..errors import SynthError
from .regions import REGIONS, Background, Channel
from .scene import lay_out_calls, noise_gain

SOURCE_LEVEL_DB = 3.0
"""Sources of a mixture differ in power by up to +-this many dB."""


@dataclass(frozen=True)
class Mixture:
    """A mixture and what it is made of, all float32 at ``sample_rate``.

    ``sources [n_sources, samples]``: one reverberant, band-limited source per group, in
    the order asked. ``noise [samples]``: the background. ``mixture [samples]`` equals
    ``sources.sum(0) + noise`` up to float32 rounding. ``labels``/``groups``: per source.
    """

    mixture: np.ndarray
    sources: np.ndarray
    noise: np.ndarray
    labels: tuple[str, ...]
    groups: tuple[str, ...]
    sample_rate: int


def mix_sources(config: SynthConfig, groups: Sequence[str], index: int,
                species: Sequence[int] | None = None, peak: float = 0.5) -> Mixture:
    """Mixture number ``index`` of one call sequence per group in ``groups``.

    ``species``: the species number (1-based) per group; by default drawn at random from
    each group's species. Sources get equal power up to +-3 dB; the background follows
    ``config.snr_db`` against their mean power. Everything is scaled so that the
    mixture's peak is ``peak``.
    """
    groups = tuple(groups)
    if not groups:
        raise SynthError("mix_sources needs at least one group")
    missing = [g for g in groups if g not in config.groups]
    if missing:
        raise SynthError(f"group(s) {missing} are not in the configuration's groups {list(config.groups)}")
    if species is not None and len(species) != len(groups):
        raise SynthError(f"{len(species)} species numbers for {len(groups)} groups")
    n = max(1, int(round(config.seconds * config.sample_rate)))
    rng = np.random.default_rng(derived_seed(config.seed, "mixture", *groups, str(index)))
    region = REGIONS[config.region]
    numbers, sources, powers = [], [], []
    for position, group in enumerate(groups):
        count = config.species_count(group)
        number = int(species[position]) if species is not None else int(rng.integers(1, count + 1))
        if not 1 <= number <= count:
            raise SynthError(f"{group} has species 1..{count}, not {number}")
        calls = lay_out_calls(config, group, number, n, rng, distractor=False)
        gain = 10.0 ** (rng.uniform(-SOURCE_LEVEL_DB, SOURCE_LEVEL_DB) / 20.0) / np.sqrt(calls.power + 1e-12)
        channel = Channel(region, config.sample_rate, config.seed)
        sources.append(channel.bandlimit(channel.reverb(calls.waveform * gain)))
        powers.append(calls.power * gain**2)
        numbers.append(number)
    background = Background(region, config.sample_rate, rng).render(n)
    noise = Channel(region, config.sample_rate, config.seed).bandlimit(
        background * noise_gain(config, float(np.mean(powers))))
    stacked = np.stack(sources)
    mixture = stacked.sum(axis=0) + noise
    scale = peak / max(float(np.max(np.abs(mixture))), 1e-12)
    return Mixture(
        mixture=(mixture * scale).astype(np.float32),
        sources=(stacked * scale).astype(np.float32),
        noise=(noise * scale).astype(np.float32),
        labels=tuple(species_label(g, k) for g, k in zip(groups, numbers)),
        groups=groups,
        sample_rate=config.sample_rate,
    )

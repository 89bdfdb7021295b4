"""Configuration of the synthetic data generator (validated, recorded in ``synth.json``)."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field, ValidationError, model_validator

from ...schema import FrozenModel
from ...seeding import derived_seed
from .regions import REGIONS
from .species import GROUPS
from ..errors import SynthError


class SynthConfig(FrozenModel):
    """What to generate.

    ``groups``: taxon groups (see :data:`chorus.data.synth.GROUPS`). ``species``: species per
    group, overridden per group by ``species_per_group``. ``seconds``/``sample_rate``: clip
    length (s) and rate (Hz). ``snr_db``: ratio in dB of the calls' power over their own
    duration to the broadband background's (None: no background); narrowband calls stand
    well above the noise in their own band even at the default 0 dB. ``region``: background and channel preset (:data:`REGIONS`). ``overlap``:
    probability that a clip also holds a quieter call of another species. ``max_calls``:
    each clip holds 1..max_calls calls of its species at random onsets. ``jitter``: scale of
    the per-call variation (1 = nominal). ``splits``: train/valid/test fractions, assigned
    per species.

    Field-like difficulty (defaults off; see :data:`HARD_SETTINGS`): ``call_seconds`` cuts
    every call to at most that many seconds (with a 5 ms fade-out), so a long clip holds a
    short event; ``imbalance`` gives the species geometrically spread clip counts from
    ``clips_per_species`` down to ``clips_per_species / imbalance`` (at least 3; which
    species are rare is a seeded shuffle); ``label_noise`` is the probability that a train
    or valid clip is labelled as another species in the manifest (its audio is unchanged,
    test labels stay true; ``synth.json`` lists every changed label).
    """

    groups: tuple[str, ...] = ("birds", "anurans", "insects", "mammals")
    species: int = Field(6, ge=1, le=999)
    species_per_group: dict[str, int] = Field(default_factory=dict)
    clips_per_species: int = Field(20, ge=1)
    seconds: float = Field(3.0, gt=0.0, le=3600.0)
    sample_rate: int = Field(32_000, ge=8_000, le=384_000)
    snr_db: float | None = 0.0
    region: str = "temperate"
    overlap: float = Field(0.0, ge=0.0, le=1.0)
    max_calls: int = Field(3, ge=1, le=50)
    jitter: float = Field(1.0, ge=0.0, le=10.0)
    splits: tuple[float, float, float] = (0.6, 0.2, 0.2)
    seed: int = 0
    call_seconds: float | None = Field(None, gt=0.0)
    imbalance: float = Field(1.0, ge=1.0, le=1000.0)
    label_noise: float = Field(0.0, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _check(self) -> "SynthConfig":
        unknown = [g for g in self.groups if g not in GROUPS]
        if unknown or not self.groups:
            raise ValueError(f"unknown group(s) {unknown or '(none given)'}; known: {', '.join(GROUPS)}")
        if len(set(self.groups)) != len(self.groups):
            raise ValueError(f"groups repeat: {list(self.groups)}")
        stray = [g for g in self.species_per_group if g not in self.groups]
        if stray:
            raise ValueError(f"species_per_group names group(s) not generated: {stray}")
        if any(n < 1 for n in self.species_per_group.values()):
            raise ValueError("every group needs at least one species")
        if self.region not in REGIONS:
            raise ValueError(f"unknown region {self.region!r}; known: {', '.join(REGIONS)}")
        if any(f < 0 for f in self.splits) or abs(sum(self.splits) - 1.0) > 1e-6:
            raise ValueError(f"splits must be three non-negative fractions summing to 1, got {self.splits}")
        return self

    def species_count(self, group: str) -> int:
        """Number of species of ``group``."""
        return self.species_per_group.get(group, self.species)

    def species_numbers(self) -> list[tuple[str, int]]:
        """Every ``(group, species number)`` in generation order (numbers are 1-based)."""
        return [(g, n) for g in self.groups for n in range(1, self.species_count(g) + 1)]

    def clip_counts(self) -> dict[tuple[str, int], int]:
        """Clips of every species: ``clips_per_species``, or with ``imbalance`` a geometric
        spread down to ``clips_per_species / imbalance`` (at least 3) over a seeded ranking."""
        species = self.species_numbers()
        if self.imbalance == 1.0 or len(species) == 1:
            return {key: self.clips_per_species for key in species}
        ranks = np.random.default_rng(derived_seed(self.seed, "imbalance")).permutation(len(species))
        return {key: max(3, int(round(self.clips_per_species * self.imbalance ** (-rank / (len(species) - 1)))))
                for key, rank in zip(species, ranks.tolist())}

    def record(self) -> dict[str, Any]:
        """The configuration as JSON, the field-like settings left out while off (so data
        made before they existed keeps its record)."""
        record = self.model_dump(mode="json")
        for name, off in _FIELD_SETTINGS_OFF.items():
            if record[name] == off:
                del record[name]
        return record


_FIELD_SETTINGS_OFF = {"call_seconds": None, "imbalance": 1.0, "label_noise": 0.0}

HARD_SETTINGS: dict[str, dict[str, Any]] = {
    "few-clips": {"clips_per_species": 16, "seconds": 3.0},
    "short-call": {"seconds": 5.0, "max_calls": 1, "call_seconds": 0.3, "clips_per_species": 24},
    "unbalanced": {"clips_per_species": 80, "imbalance": 20.0, "seconds": 2.0},
    "many-species": {"species": 13, "clips_per_species": 20, "seconds": 2.0},
    "overlapping": {"overlap": 1.0, "clips_per_species": 30, "seconds": 2.0},
    "noisy-labels": {"label_noise": 0.2, "clips_per_species": 40, "seconds": 2.0},
}
"""Named field-like data sets (fields over the defaults): few clips per class (16, so 10
train), one 0.3 s call in 5 s of background, 20:1 unbalanced classes, 52 species
(13 per group), a call of another species in every clip, 20 % wrong train/valid labels."""


def make_config(preset: str | None = None, **fields: Any) -> SynthConfig:
    """Build a :class:`SynthConfig` (from :data:`HARD_SETTINGS` ``preset``, then ``fields``),
    turning validation failures into a :class:`SynthError`."""
    if preset is not None:
        if preset not in HARD_SETTINGS:
            raise SynthError(f"unknown synthetic preset {preset!r}; known: {', '.join(HARD_SETTINGS)}")
        fields = {**HARD_SETTINGS[preset], **fields}
    try:
        return SynthConfig(**fields)
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors())
        raise SynthError(f"invalid synthetic data configuration: {reasons}") from None


def species_label(group: str, number: int) -> str:
    """The label of species ``number`` of ``group``, e.g. ``birds/sp03``."""
    return f"{group}/sp{number:02d}"

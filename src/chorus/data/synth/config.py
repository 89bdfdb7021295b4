"""Configuration of the synthetic data generator (validated, recorded in ``synth.json``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .regions import REGIONS
from .species import GROUPS
from ..errors import SynthError


class SynthConfig(BaseModel):
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
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

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


def make_config(**fields: Any) -> SynthConfig:
    """Build a :class:`SynthConfig`, turning validation failures into a :class:`SynthError`."""
    try:
        return SynthConfig(**fields)
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors())
        raise SynthError(f"invalid synthetic data configuration: {reasons}") from None


def species_label(group: str, number: int) -> str:
    """The label of species ``number`` of ``group``, e.g. ``birds/sp03``."""
    return f"{group}/sp{number:02d}"

"""Deterministic stratified train/valid/test splits.

The same seed gives the same split whatever the row order and on any machine: clips are
keyed by their path relative to the dataset root, and each stratum is ordered by a hash
of (seed, key) before it is cut, so adding a file moves few others.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Mapping

from ..seeding import derived_seed
from .clips import SPLITS, Clip, Manifest, canonical_split
from ..errors import InvalidInput

DEFAULT_FRACTIONS = {"train": 0.7, "valid": 0.15, "test": 0.15}


def _check_fractions(fractions: Mapping[str, float]) -> dict[str, float]:
    """Canonical split names -> positive fractions, in :data:`SPLITS` order; they must sum to 1."""
    cleaned: dict[str, float] = {}
    for name, value in fractions.items():
        split = canonical_split(name)
        if split is None:
            raise InvalidInput(f"unknown split {name!r} in fractions (known: {', '.join(SPLITS)})")
        if not math.isfinite(value) or value < 0:
            raise InvalidInput(f"fraction of {name!r} must be a finite number >= 0, got {value}")
        cleaned[split] = cleaned.get(split, 0.0) + float(value)
    if abs(sum(cleaned.values()) - 1.0) > 1e-6:
        raise InvalidInput(f"fractions must sum to 1, got {sum(cleaned.values()):g} ({fractions})")
    return {name: cleaned[name] for name in SPLITS if cleaned.get(name, 0.0) > 0}


def allocate(count: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Split ``count`` items by ``fractions`` (already checked, in split order).

    When ``count`` is at least the number of splits, every split gets one item or more;
    the rest follows the largest remainders (ties: earlier split first).
    """
    ideal = {name: count * share for name, share in fractions.items()}
    floor = 1 if count >= len(fractions) else 0
    counts = {name: max(floor, math.floor(value)) for name, value in ideal.items()}
    order = list(fractions)
    while sum(counts.values()) > count:
        name = max((n for n in order if counts[n] > floor), key=lambda n: (counts[n] - ideal[n], -order.index(n)))
        counts[name] -= 1
    while sum(counts.values()) < count:
        name = max(order, key=lambda n: (ideal[n] - counts[n], -order.index(n)))
        counts[name] += 1
    return counts


def _key(clip: Clip, manifest: Manifest) -> str:
    """The clip's file relative to the dataset root, so that keys do not depend on the machine."""
    path = Path(os.path.abspath(clip.path))
    return path.relative_to(manifest.root).as_posix() if path.is_relative_to(manifest.root) else path.as_posix()


def _stratum(clip: Clip, by: str) -> str:
    if by == "label":
        return clip.labels[0] if clip.labels else ""
    return clip.group or ""


def stratified_split(
    manifest: Manifest,
    fractions: Mapping[str, float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    by: str = "label",
    *,
    overwrite: bool = False,
    by_recording: bool = True,
) -> Manifest:
    """Assign ``train``/``valid``/``test`` to the clips that have no split yet.

    ``by="label"`` stratifies per label (the first label of a multi-label clip, as
    written); ``by="group"`` per group. Within each stratum every split with a
    non-zero fraction gets at least one unit when the stratum has as many units as
    splits; counts follow the fractions (largest remainders). With ``by_recording``
    (default) all clips cut from one audio file form one unit and land in one split, so
    no recording leaks across splits; the unit's stratum is that of its first clip in
    time order. Clips that already have a split keep it unless ``overwrite``; the
    fractions then apply to the others. Returns a new manifest in the same row order.
    """
    if by not in ("label", "group"):
        raise InvalidInput(f"by must be 'label' or 'group', got {by!r}")
    shares = _check_fractions(fractions)
    units: dict[str, list[int]] = defaultdict(list)
    for index, clip in enumerate(manifest.clips):
        if overwrite or clip.split is None:
            unit = _key(clip, manifest) if by_recording else f"{_key(clip, manifest)}#{clip.start}#{clip.end}"
            units[unit].append(index)
    strata: dict[str, list[str]] = defaultdict(list)
    for unit, members in units.items():
        first = min(members, key=lambda i: (manifest.clips[i].start or 0.0, manifest.clips[i].end or math.inf))
        strata[_stratum(manifest.clips[first], by)].append(unit)
    assigned: dict[int, str] = {}
    for stratum in sorted(strata):
        ordered = sorted(strata[stratum], key=lambda unit: (derived_seed(seed, "split", stratum, unit), unit))
        position = 0
        for name, count in allocate(len(ordered), shares).items():
            for unit in ordered[position:position + count]:
                assigned.update(dict.fromkeys(units[unit], name))
            position += count
    clips = [replace(clip, split=assigned.get(i, clip.split)) for i, clip in enumerate(manifest.clips)]
    return replace(manifest, clips=clips, extra={name: list(values) for name, values in manifest.extra.items()})

"""Writing a synthetic dataset: wav files, ``manifest.csv`` and ``synth.json``.

Layout: ``<out>/<group>/spNN/<group>-spNN-<clip>.wav`` (folder per class), a manifest with
columns path,label,split,group, and ``synth.json`` recording every parameter plus each
species' parameter set. The same configuration gives the same bytes in every file. A run
that stopped half-way resumes: files already written for the same configuration are kept.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...audio import write_audio
from ...fileio import write_json
from ...progress import ProgressFactory, resolve
from ...seeding import derived_seed
from ..manifest import Clip, Manifest, write_manifest
from .config import SynthConfig, species_label
from ..errors import SynthError
from .regions import REGIONS
from .scene import render_clip, species_of
from .species import GROUPS

FORMAT_VERSION = 1


def split_of_clips(config: SynthConfig, group: str, number: int, count: int | None = None) -> list[str]:
    """The split of each of ``count`` clips (default ``clips_per_species``) of one species:
    a seeded shuffle cut by ``config.splits`` (at least one train clip; valid/test counts
    rounded from their fractions)."""
    count = config.clips_per_species if count is None else count
    n_valid = int(round(config.splits[1] * count))
    n_test = int(round(config.splits[2] * count))
    while n_valid + n_test >= count and n_valid + n_test > 0:
        if n_valid >= n_test:
            n_valid -= 1
        else:
            n_test -= 1
    names = ["train"] * (count - n_valid - n_test) + ["valid"] * n_valid + ["test"] * n_test
    order = np.random.default_rng(derived_seed(config.seed, "split", group, str(number))).permutation(count)
    splits = [""] * count
    for name, clip in zip(names, order):
        splits[int(clip)] = name
    return splits


def noisy_label(config: SynthConfig, group: str, number: int, clip: int, split: str) -> str:
    """The manifest label of a clip: its species, or with probability ``label_noise`` (train
    and valid clips only) another species drawn uniformly, seeded per clip."""
    label = species_label(group, number)
    if not config.label_noise or split == "test":
        return label
    rng = np.random.default_rng(derived_seed(config.seed, "label-noise", group, str(number), str(clip)))
    if rng.random() >= config.label_noise:
        return label
    others = [species_label(g, n) for g, n in config.species_numbers() if (g, n) != (group, number)]
    return others[int(rng.integers(len(others)))] if others else label


def clip_path(out_dir: Path, group: str, number: int, clip: int) -> Path:
    return out_dir / group / f"sp{number:02d}" / f"{group}-sp{number:02d}-{clip:04d}.wav"


def describe(config: SynthConfig) -> dict:
    """The content of ``synth.json``: configuration, region and every species' parameters."""
    return {
        "generator": "chorus.data.synth",
        "format_version": FORMAT_VERSION,
        "config": config.record(),
        "region": REGIONS[config.region].as_dict(),
        "groups": {
            group: {
                "description": GROUPS[group].description,
                "species": {species_label(group, n): species_of(config, group, n)
                            for n in range(1, config.species_count(group) + 1)},
            }
            for group in config.groups
        },
    }


def _check_folder(out_dir: Path, config: SynthConfig, overwrite: bool) -> None:
    record = out_dir / "synth.json"
    if not record.exists() or overwrite:
        return
    try:
        previous = json.loads(record.read_text(encoding="utf-8")).get("config")
    except (OSError, ValueError, AttributeError) as exc:
        raise SynthError(f"{record}: unreadable ({exc}); remove it or pass overwrite") from None
    if previous != config.record():
        raise SynthError(f"{out_dir}: already holds synthetic data made with other parameters; "
                         "use another folder or overwrite")


def generate_dataset(out_dir: str | Path, config: SynthConfig, *, overwrite: bool = False,
                     progress: ProgressFactory | None = None) -> Manifest:
    """Generate the dataset described by ``config`` into ``out_dir``; return its manifest.

    Clips already present from an interrupted run with the same configuration are kept
    (they are deterministic); ``overwrite`` regenerates everything.
    """
    out_dir = Path(out_dir)
    _check_folder(out_dir, config, overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "synth.json", describe(config))
    counts = config.clip_counts()
    bar = resolve(progress)(sum(counts.values()), "synthesising clips")
    clips: list[Clip] = []
    changed: list[dict[str, str]] = []
    try:
        for group, number in config.species_numbers():
            for clip, split in enumerate(split_of_clips(config, group, number, counts[group, number])):
                path = clip_path(out_dir, group, number, clip)
                if overwrite or not path.exists():
                    waveform, _ = render_clip(config, group, number, clip)
                    write_audio(path, waveform, config.sample_rate)
                label = noisy_label(config, group, number, clip, split)
                if label != species_label(group, number):
                    changed.append({"path": path.relative_to(out_dir).as_posix(), "true": species_label(group, number),
                                    "given": label})
                clips.append(Clip(path.resolve(), (label,), split, group))
                bar.update(1)
    finally:
        bar.close()
    if config.label_noise:
        write_json(out_dir / "synth.json", {**describe(config), "label_noise": changed})
    manifest = Manifest(clips, out_dir.resolve(), out_dir.resolve() / "manifest.csv")
    write_manifest(manifest, out_dir / "manifest.csv")
    return manifest

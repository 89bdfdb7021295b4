"""``chorus predict birdnet``: BirdNET V2.4's species head over recordings, one
BirdNET-Analyzer-style table per recording (:mod:`chorus.predict.birdnet_tables`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..audio import AudioError
from ..encoders import load_encoder
from ..encoders.birdnet import LABELS_FILE, LOCATION_FILE, birdnet_file
from ..encoders.birdnet_labels import read_labels
from ..encoders.birdnet_location import load_location_model
from ..fileio import write_text
from .birdnet_analyzer import BirdNETSettings, analyze_recording, location_mask, read_species_list
from .birdnet_tables import TABLE_SUFFIXES, format_table
from .recordings import FailedRecording, find_recordings
from .errors import OutputCollision


@dataclass
class BirdNETReport:
    """``outputs[i]``: the table of ``recordings[i]`` (None if it failed); ``problems``:
    species-list lines that matched no label; ``species``: classes considered."""

    recordings: list[Path]
    outputs: list[Path | None]
    detections: int = 0
    species: int = 0
    problems: list[str] = field(default_factory=list)
    failures: list[FailedRecording] = field(default_factory=list)


def allowed_species(labels: Sequence[str], settings: BirdNETSettings, species_list: str | Path | None
                    ) -> tuple[np.ndarray, list[str]]:
    """Mask of the classes to report: all, narrowed by the species list and the location model."""
    allowed, problems = np.ones(len(labels), dtype=bool), []
    if species_list is not None:
        listed, problems = read_species_list(species_list, labels)
        allowed &= listed
    if settings.lat is not None:
        allowed &= location_mask(load_location_model(birdnet_file(LOCATION_FILE), len(labels)), settings)
    return allowed, problems


def predict_birdnet(paths: Sequence[str | Path], out_dir: str | Path, settings: BirdNETSettings, fmt: str = "raven",
                    species_list: str | Path | None = None, source: str | Path | None = None) -> BirdNETReport:
    """Analyse every recording of ``paths`` (folders expand to their audio files) and write
    ``<out_dir>/<stem><suffix>`` per recording; unreadable recordings are reported, not fatal."""
    if fmt not in TABLE_SUFFIXES:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(TABLE_SUFFIXES)}")
    encoder = load_encoder("birdnet", source=source)
    labels = read_labels(birdnet_file(LABELS_FILE), expected=encoder.config.classes)
    allowed, problems = allowed_species(labels, settings, species_list)
    recordings = find_recordings(paths)
    outputs = [Path(out_dir) / (r.stem + TABLE_SUFFIXES[fmt]) for r in recordings]
    if len(set(outputs)) != len(outputs):
        twice = next(o for o in outputs if outputs.count(o) > 1)
        raise OutputCollision(f"two recordings would both write {twice}; analyse them into separate folders")
    report = BirdNETReport(recordings, [], species=int(allowed.sum()), problems=problems)
    for recording, output in zip(recordings, outputs):
        try:
            found = analyze_recording(recording, encoder, labels, allowed, settings)
        except AudioError as exc:
            report.failures.append(FailedRecording(recording, str(exc)))
            report.outputs.append(None)
            continue
        write_text(output, format_table(fmt, found, recording, settings))
        report.outputs.append(output)
        report.detections += len(found)
    return report

"""BirdNET V2.4's own species head over recordings, with BirdNET-Analyzer's options.

Semantics (BirdNET-Analyzer 1.x, re-implemented): 3 s segments at 48 kHz every
``3 - overlap`` s, the last one zero-padded (dropped when under 1 s, unless it is the
only one); confidence ``sigmoid(s * clip(logit, -15, 15))`` with ``s = 2 - sensitivity``
clamped to 0.5..1.5 (higher sensitivity, flatter curve, more detections); a species is
reported in a segment when its confidence reaches ``min_conf``. The species considered
are the labels, narrowed by a species-list file and/or by the location model at
``lat/lon/week`` (scores at least ``location_threshold``). One row per segment and species.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from ..encoders.errors import LocationError
from ..encoders.birdnet_location import check_location
from ..encoders.birdnet_network import SAMPLE_RATE, WINDOW
from .stream import WindowSpec, stream_windows
from .errors import BirdNETSettingsError

SEGMENT_SECONDS = WINDOW / SAMPLE_RATE
MIN_SEGMENT_SECONDS = 1.0


@dataclass(frozen=True)
class BirdNETSettings:
    """``min_conf`` 0.01..0.99; ``sensitivity`` 0.5..1.5; ``overlap`` seconds 0..<3;
    ``lat``/``lon`` degrees (both or neither) with ``week`` 1..48 or -1 (whole year);
    ``location_threshold``: the location model's score a species needs; ``batch_size``:
    segments per forward pass."""

    min_conf: float = 0.25
    sensitivity: float = 1.0
    overlap: float = 0.0
    lat: float | None = None
    lon: float | None = None
    week: int = -1
    location_threshold: float = 0.03
    batch_size: int = 8

    def __post_init__(self) -> None:
        if not 0.01 <= self.min_conf <= 0.99:
            raise BirdNETSettingsError(f"min_conf {self.min_conf} is outside 0.01..0.99")
        if not 0.5 <= self.sensitivity <= 1.5:
            raise BirdNETSettingsError(f"sensitivity {self.sensitivity} is outside 0.5..1.5")
        if not 0.0 <= self.overlap < SEGMENT_SECONDS:
            raise BirdNETSettingsError(f"overlap {self.overlap} s is outside 0..{SEGMENT_SECONDS:g} s (exclusive)")
        if (self.lat is None) != (self.lon is None):
            raise BirdNETSettingsError("give both --lat and --lon, or neither")
        if self.lat is not None:
            try:
                check_location(self.lat, self.lon, self.week)
            except LocationError as exc:
                raise BirdNETSettingsError(str(exc)) from None
        if not 0.0 <= self.location_threshold <= 1.0:
            raise BirdNETSettingsError(f"location_threshold {self.location_threshold} is outside 0..1")
        if self.batch_size < 1:
            raise BirdNETSettingsError(f"batch_size must be at least 1, got {self.batch_size}")


@dataclass(frozen=True)
class BirdNETDetection:
    """One species in one segment: ``start``/``end`` seconds, ``label`` ``Scientific_Common``."""

    start: float
    end: float
    label: str
    confidence: float


def confidences(logits: np.ndarray, sensitivity: float) -> np.ndarray:
    """BirdNET-Analyzer's sigmoid with its sensitivity mapping: ``[..., classes]`` in (0, 1)."""
    slope = min(max(2.0 - sensitivity, 0.5), 1.5)
    return 1.0 / (1.0 + np.exp(-slope * np.clip(logits, -15.0, 15.0)))


def read_species_list(path: str | Path, labels: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Classes named in ``path``, one per line, as a full label (``Scientific_Common``), a
    scientific name or a common name: ``(mask [classes] bool, problems)`` where each
    problem names a line that matches no label (the rest are used)."""
    by_name: dict[str, list[int]] = {}
    for index, label in enumerate(labels):
        scientific, _, common = label.partition("_")
        for key in {label, scientific, common}:
            by_name.setdefault(key.casefold(), []).append(index)
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BirdNETSettingsError(f"{path}: cannot read the species list: {exc}") from None
    mask, problems = np.zeros(len(labels), dtype=bool), []
    for number, line in enumerate(lines, start=1):
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        found = by_name.get(name.casefold())
        if found is None:
            problems.append(f"{path}:{number}: {name!r} matches no BirdNET label")
        else:
            mask[found] = True
    return mask, problems


def location_mask(model: torch.nn.Module, settings: BirdNETSettings) -> np.ndarray:
    """Species whose location-model score at ``settings.lat/lon/week`` reaches the threshold."""
    coords = torch.tensor([[settings.lat, settings.lon, settings.week]], dtype=torch.float32)
    with torch.inference_mode():
        return model(coords)[0].numpy() >= settings.location_threshold


def segments(path: str | Path, settings: BirdNETSettings) -> Iterator[tuple[float, float, np.ndarray]]:
    """``(start s, end s, samples [144000])`` per segment, streamed from ``path``."""
    spec = WindowSpec(SEGMENT_SECONDS, SEGMENT_SECONDS - settings.overlap, SAMPLE_RATE)
    for number, window in enumerate(stream_windows(path, spec)):
        if number and window.valid < MIN_SEGMENT_SECONDS * SAMPLE_RATE:
            break
        start = window.start / SAMPLE_RATE
        yield start, start + window.valid / SAMPLE_RATE, window.samples


def analyze_recording(path: str | Path, encoder, labels: Sequence[str], allowed: np.ndarray,
                      settings: BirdNETSettings) -> list[BirdNETDetection]:
    """Detections of ``encoder`` (a loaded ``birdnet``) in ``path``, segment by segment in
    time order and by confidence within a segment; ``allowed [classes]`` bool masks species."""
    out: list[BirdNETDetection] = []
    batch: list[tuple[float, float, np.ndarray]] = []

    def flush() -> None:
        windows = torch.from_numpy(np.stack([samples for _, _, samples in batch]))
        with torch.inference_mode():
            scores = confidences(encoder.classify(windows)[1].double().numpy(), settings.sensitivity)
        scores[:, ~allowed] = 0.0
        for (start, end, _), row in zip(batch, scores):
            hits = np.flatnonzero(row >= settings.min_conf)
            for index in hits[np.argsort(-row[hits], kind="stable")]:
                out.append(BirdNETDetection(start, end, labels[index], float(row[index])))
        batch.clear()

    for segment in segments(path, settings):
        batch.append(segment)
        if len(batch) == settings.batch_size:
            flush()
    if batch:
        flush()
    return out

"""The ``chorus predict birdnet ...`` branch: BirdNET V2.4's own head, BirdNET-Analyzer's options."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import typer


def run_birdnet(paths: Sequence[Path], out: Path, fmt: str, batch_size: int, min_conf: float, sensitivity: float,
                overlap: float, species_list: Path | None, lat: float | None, lon: float | None, week: int,
                location_threshold: float, source: Path | None) -> None:
    """Analyse ``paths`` with BirdNET and print what was written (problems in yellow)."""
    from ._console import Console

    from ..predict.birdnet_analyzer import BirdNETSettings
    from ..predict.errors import BirdNETSettingsError
    from ..predict.birdnet_run import predict_birdnet

    try:
        settings = BirdNETSettings(min_conf=min_conf, sensitivity=sensitivity, overlap=overlap, lat=lat, lon=lon,
                                   week=week, location_threshold=location_threshold, batch_size=batch_size)
        report = predict_birdnet(paths, out, settings, fmt, species_list=species_list, source=source)
    except (BirdNETSettingsError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from None
    console = Console()
    for problem in report.problems:
        console.print(f"[yellow]species list[/] {problem}", highlight=False, soft_wrap=True)
    for failure in report.failures:
        console.print(f"[yellow]skipped[/] {failure.error}", highlight=False, soft_wrap=True)
    done = sum(output is not None for output in report.outputs)
    console.print(f"BirdNET V2.4 over {report.species} species: {done} recordings, {report.detections} detections "
                  f"-> {out}", highlight=False, soft_wrap=True)

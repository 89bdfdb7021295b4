"""``chorus predict``: a chorus model over long recordings -> Raven / Audacity / CSV / Parquet."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from . import _options as opt
from ._options import ADDRESS, DEVICE, ENGINE, WORKERS, check_engine
from ._outcome import finish


def register(app: typer.Typer) -> None:
    @app.command("predict", epilog="Example: chorus predict runs/birds/model recordings/ -o detections/ --format csv "
                                            "--max-gap 0.5 --max-length 10")
    def predict_command(
        model: Path = typer.Argument(..., help="chorus model directory (model.json + safetensors), or `birdnet` "
                                                "for BirdNET V2.4's own species head"),
        paths: List[Path] = typer.Argument(..., help="recordings or folders of recordings"),
        out: Path = opt.out(help="output folder (a rerun resumes it)"),
        window: Optional[float] = typer.Option(None, "--window", help="window seconds (default: the model's clip length, else 3)"),
        hop: Optional[float] = typer.Option(None, "--hop", help="hop seconds (default: the window)"),
        merge: bool = typer.Option(True, "--merge/--no-merge",
                                   help="join detections of a class across nearby windows (--no-merge: one row per "
                                        "window above the threshold)"),
        max_gap: float = typer.Option(0.0, "--max-gap", min=0.0,
                                      help="seconds between two detections of a class that still join (0: touching "
                                           "or overlapping windows only)"),
        max_length: Optional[float] = typer.Option(None, "--max-length", min=0.0,
                                                   help="longest merged detection, seconds (default: no cap)"),
        fmt: str = typer.Option("raven", "--format", help="raven, audacity, csv or parquet (every window's scores); "
                                                          "birdnet: raven, audacity, csv or kaleidoscope"),
        threshold: float = typer.Option(0.5, "--threshold", min=0.0, max=1.0, help="score needed for a detection"),
        class_thresholds: Optional[Path] = typer.Option(
            None, "--class-thresholds", help='JSON {"label": threshold} overriding --threshold per class'),
        batch_size: int = opt.batch_size(16, "windows per forward pass"),
        open_files: int = typer.Option(4, "--open-files", min=1, help="recordings streamed side by side per worker"),
        engine: str = ENGINE,
        workers: Optional[int] = WORKERS,
        address: Optional[str] = ADDRESS,
        device: str = DEVICE,
        min_conf: float = typer.Option(0.25, "--min-conf", help="birdnet: confidence a detection needs (0.01-0.99)"),
        sensitivity: float = typer.Option(1.0, "--sensitivity", help="birdnet: 0.5-1.5, higher gives more detections"),
        overlap: float = typer.Option(0.0, "--overlap", help="birdnet: seconds shared by consecutive 3 s segments"),
        species_list: Optional[Path] = typer.Option(None, "--species-list", help="birdnet: file of species to report"),
        lat: Optional[float] = typer.Option(None, "--lat", help="birdnet: latitude for the location model"),
        lon: Optional[float] = typer.Option(None, "--lon", help="birdnet: longitude for the location model"),
        week: int = typer.Option(-1, "--week", help="birdnet: week 1-48 of the year, -1 for all year"),
        location_threshold: float = typer.Option(0.03, "--location-threshold",
                                                 help="birdnet: location-model score a species needs"),
        source: Optional[Path] = typer.Option(None, "--source", help="birdnet: a BirdNET V2.4 .tflite to use"),
    ) -> None:
        """Stream each recording in windows (bounded memory at any length), batch windows
        across files, threshold per class, merge consecutive detections and write one file
        per recording plus a combined table; a rerun skips finished recordings."""
        from ._console import Console

        from ..model.classifier import MODEL_JSON, read_model_json
        from ..predict import PredictSettings, predict, read_thresholds
        from ..predict.settings import model_labels
        from ..progress import tqdm_progress
        from ._predict_birdnet import run_birdnet

        if str(model) == "birdnet" and not (model / MODEL_JSON).exists():
            return run_birdnet(paths, out, fmt, batch_size, min_conf, sensitivity, overlap, species_list, lat, lon,
                               week, location_threshold, source)
        check_engine(engine)
        overrides = {}
        if class_thresholds is not None:
            labels = model_labels(read_model_json(model / MODEL_JSON))
            values = read_thresholds(class_thresholds, labels, threshold)
            overrides = {label: float(v) for label, v in zip(labels, values)}
        try:
            settings = PredictSettings(window=window, hop=hop, format=fmt, threshold=threshold,
                                       class_thresholds=overrides, batch_size=batch_size, open_files=open_files,
                                       merge=merge, max_gap=max_gap, max_length=max_length)
            report = predict(model, paths, out, settings, engine=engine, workers=workers, address=address,
                             progress=tqdm_progress, device=device)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        console = Console()
        for failure in report.failures:
            console.print(f"[yellow]skipped[/] {failure.error}", highlight=False, soft_wrap=True)
        for warning in report.warnings:
            console.print(f"[yellow]warning[/] {warning}", highlight=False, soft_wrap=True)
        combined = f" -> {report.combined}" if report.combined else f" -> {out}"
        console.print(f"{len(report.recordings)} recordings: {report.computed} predicted, {report.reused} already "
                      f"done, {len(report.failures)} failed{combined}", highlight=False, soft_wrap=True)
        finish(len(report.failures))

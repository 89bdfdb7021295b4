"""``chorus demo``: synthesize, fine-tune per group and jointly, merge, compare, report."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from . import _options as opt


def register(app: typer.Typer) -> None:
    @app.command("demo", epilog="Example: chorus demo -o demo-output/ --epochs 3")
    def demo_command(
        out: Path = opt.out(Path("demo-output"), "Output folder (kept; a rerun resumes)."),
        encoder: Optional[str] = opt.encoder(None, "Encoder to fine-tune (default: sfx-cnn)."),
        epochs: Optional[int] = typer.Option(None, help="Fine-tuning epochs per run."),
        seed: int = opt.seed(help="Seed of the data, training and merges."),
    ) -> None:
        """The main job: compose per-group task vectors into one classifier and compare."""
        from ._console import Console

        from ..demos.composition import CompositionDemoSettings, run_demo
        from ..demos.composition_report import analysis_line, headline
        from ..progress import tqdm_progress
        from .compare import comparison_table

        console = Console()
        overrides = {k: v for k, v in {"encoder": encoder, "epochs": epochs}.items() if v is not None}
        settings = CompositionDemoSettings(seed=seed, **overrides)
        record = run_demo(out, settings, tqdm_progress, log=lambda message: console.print(f"[bold]{message}[/]"))
        console.print(comparison_table(record["comparison"], "test accuracy (normalized: ÷ individual models)"))
        console.print(headline(record))
        console.print(analysis_line(record))
        timings = ", ".join(f"{k} {v:.0f} s" for k, v in record["timings_s"].items())
        console.print(f"time: {timings}")
        console.print(f"report: {out / 'report.html'}")

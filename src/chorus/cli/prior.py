"""``chorus prior train``: diffusion priors of single sources for ``chorus separate --priors``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from . import _options as opt
from ._console import Console


def register(app: typer.Typer) -> None:
    prior_app = typer.Typer(help="Train source priors for prior-guided separation.", no_args_is_help=True,
                            epilog="Example: chorus prior train -d frogs.csv -o priors/frog")
    app.add_typer(prior_app, name="prior")

    @prior_app.command("train", epilog="Example: chorus prior train -d frogs.csv -o priors/frog --steps 500")
    def train_command(
        data: Path = opt.data(help="Manifest (CSV) of single-source clips."),
        out: Path = opt.out(help="Folder for the prior (re-running resumes training there)."),
        group: Optional[list[str]] = typer.Option(None, "--group", help="Train on these groups only (repeat)."),
        label: Optional[list[str]] = typer.Option(None, "--label", help="Train on clips with these labels only (repeat)."),
        split: Optional[str] = opt.split("train", "Manifest split to train on"),
        class_conditional: bool = typer.Option(False, "--class-conditional",
                                               help="One prior for several classes, chosen at separation time."),
        class_key: str = typer.Option("label", help="Classes of a class-conditional prior: label | group."),
        name: Optional[str] = typer.Option(None, help="Prior name [default: its labels joined by '+']."),
        sample_rate: int = typer.Option(16000, help="Rate the prior works at, Hz."),
        segment_seconds: float = typer.Option(1.0, help="Training crop length, s."),
        representation: str = typer.Option("magnitude", help="magnitude (rendered with the mixture's phase) | complex."),
        n_fft: int = typer.Option(256, help="STFT size, samples."),
        hop: int = typer.Option(64, help="STFT hop, samples."),
        channels: int = typer.Option(48, help="Network width."),
        depth: int = typer.Option(4, help="Axial attention blocks."),
        steps: int = typer.Option(2000, help="Optimiser steps."),
        batch_size: int = opt.batch_size(16, "Crops per step."),
        learning_rate: float = opt.lr(1e-3, "Peak AdamW learning rate."),
        old_learning_rate: Optional[float] = typer.Option(None, "--learning-rate", hidden=True),
        checkpoint_every: int = typer.Option(100, help="Steps between resumable checkpoints."),
        max_minutes: Optional[float] = typer.Option(None, help="Stop (with a checkpoint) after this much wall time."),
        seed: int = opt.seed(),
    ) -> None:
        """Train a denoising diffusion prior on single-source clips."""
        from ..data.manifest import read_manifest
        from ..progress import tqdm_progress
        from ..schema import validated
        from ..separate.errors import SeparationError
        from ..separate.priors.train import PriorTrainConfig, train_prior

        manifest = read_manifest(data)
        if split:
            manifest = manifest.select(split=split)
        if group:
            manifest = manifest.select(group=group)
        clips = [c for c in manifest.clips if not label or set(c.labels) & set(label)]
        if not clips:
            raise SeparationError(f"{data}: no clips left after selecting split={split!r}, groups={group}, labels={label}")
        config = validated(
            PriorTrainConfig, SeparationError,
            sample_rate=sample_rate, segment_seconds=segment_seconds, n_fft=n_fft, hop=hop, channels=channels,
            depth=depth, batch_size=batch_size, steps=steps,
            learning_rate=learning_rate if old_learning_rate is None else old_learning_rate,
            checkpoint_every=checkpoint_every, seed=seed, class_conditional=class_conditional, class_key=class_key,
            representation=representation)
        summary = train_prior(clips, out, config, name=name,
                              max_seconds=None if max_minutes is None else 60.0 * max_minutes, progress=tqdm_progress)
        console = Console()
        for failure in summary.failures:
            console.print(f"[yellow]skipped:[/] {failure.error}", highlight=False)
        resumed = f" (resumed at step {summary.resumed_from})" if summary.resumed_from else ""
        console.print(f"prior {', '.join(summary.labels)} -> {summary.out_dir}: {summary.steps} steps{resumed}, "
                      f"{summary.clips} clips, final loss {summary.final_loss:.4f}, {summary.seconds:.0f} s")

"""``chorus synth``: generate the synthetic bioacoustic dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from . import _options as opt


def _group_counts(text: str | None) -> dict[str, int]:
    """Parse ``birds=12,insects=3`` into a dict."""
    from ..data.synth import SynthError

    counts: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        name, _, value = item.partition("=")
        try:
            counts[name.strip()] = int(value)
        except ValueError:
            raise SynthError(f"--group-species expects group=N items, got {item!r}") from None
    return counts


def register(app: typer.Typer) -> None:
    @app.command("synth", epilog="Example: chorus synth -o data/ --species 4 --clips-per-species 10")
    def synth_command(
        out: Path = opt.out(help="Output folder (wav files, manifest.csv, synth.json)."),
        groups: str = typer.Option("birds,anurans,insects,mammals", help="Comma-separated taxon groups."),
        species: int = typer.Option(6, help="Species per group."),
        group_species: Optional[str] = typer.Option(None, help="Per-group species counts, e.g. birds=12,insects=3."),
        clips_per_species: int = typer.Option(20, help="Clips per species."),
        seconds: float = typer.Option(3.0, help="Clip length in seconds."),
        sample_rate: int = typer.Option(32000, help="Sample rate in Hz."),
        snr: Optional[float] = typer.Option(0.0, help="Call-to-background SNR in dB (broadband, over the calls)."),
        no_noise: bool = typer.Option(False, "--no-noise", help="No background at all."),
        region: str = typer.Option("temperate", help="Background and channel preset."),
        overlap: float = typer.Option(0.0, help="Probability of an overlapping call of another species."),
        seed: int = opt.seed(),
        preset: Optional[str] = typer.Option(
            None, help="Field-like data set whose settings replace the options above: few-clips, short-call, "
                       "unbalanced, many-species, overlapping, noisy-labels."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Regenerate a folder made with other parameters."),
    ) -> None:
        """Generate synthetic calls of taxon groups in distinct acoustic niches."""
        from ._console import Console
        from rich.table import Table

        from ..data.synth import HARD_SETTINGS, generate_dataset, make_config
        from ..progress import tqdm_progress

        fields = dict(
            groups=tuple(g.strip() for g in groups.split(",") if g.strip()), species=species,
            species_per_group=_group_counts(group_species), clips_per_species=clips_per_species,
            seconds=seconds, sample_rate=sample_rate, snr_db=None if no_noise else snr, region=region,
            overlap=overlap, seed=seed,
        )
        preset_fields = HARD_SETTINGS.get(preset or "", {})
        config = make_config(preset=preset, **{k: v for k, v in fields.items() if k not in preset_fields})
        manifest = generate_dataset(out, config, overwrite=overwrite, progress=tqdm_progress)
        table = Table(title=f"synthetic data in {out}")
        for column in ("group", "species", "train", "valid", "test"):
            table.add_column(column, justify="right" if column != "group" else "left")
        for group in manifest.groups:
            part = manifest.select(group=group)
            counts = [len(part.select(split=s)) for s in ("train", "valid", "test")]
            table.add_row(group, str(len(part.labels)), *map(str, counts))
        Console().print(table)
        Console().print(f"manifest: {out / 'manifest.csv'}")

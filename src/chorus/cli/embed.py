"""``chorus embed``: pooled features of every layer for every clip, as sharded Parquet."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from ._options import BATCH_SIZE, DEVICE, ENCODER, SOURCE, check_dtype


def register(app: typer.Typer) -> None:
    @app.command("embed")
    def embed_command(
        encoder: str = ENCODER,
        data: Path = typer.Option(..., "--data", "-d", help="manifest CSV/TSV of the clips"),
        out: Path = typer.Option(..., "--out", "-o", help="output folder (resumed when it exists)"),
        source: str = SOURCE,
        batch_size: int = BATCH_SIZE,
        dtype: str = typer.Option("float32", "--dtype", help="stored feature type: float32 or float16"),
        random_init: bool = typer.Option(False, "--random-init", help="same architecture, random weights"),
        seed: int = typer.Option(0, "--seed", help="seed of --random-init weights"),
        device: str = DEVICE,
    ) -> None:
        """Mean-over-valid-frames features of ALL layers (one forward pass per batch),
        written as Parquet shards under OUT/shards; a rerun skips finished clips."""
        from ..data.manifest import read_manifest
        from ..encoders import load_encoder
        from ..features import embed_manifest
        from ..progress import tqdm_progress

        check_dtype(dtype)
        manifest = read_manifest(data, allow_unlabelled=True)
        model = load_encoder(encoder, source=source, pretrained=not random_init, seed=seed).to(device)
        report = embed_manifest(model, manifest, out, batch_size=batch_size, dtype=dtype, device=device,
                                progress=tqdm_progress)
        console = Console()
        for failure in report.failures:
            console.print(f"[yellow]skipped[/] {failure.error}", highlight=False, soft_wrap=True)
        console.print(f"{encoder}: {report.computed} clips embedded, {report.reused} already done, "
                      f"{len(report.failures)} failed; {len(model.layer_names)} layers -> {out / 'shards'}",
                      highlight=False)

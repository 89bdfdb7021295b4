"""``chorus embed``: pooled features of every layer for every clip or window, as sharded Parquet."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import List, Optional

import typer

from . import _options as opt
from ._console import Console
from ._options import ADDRESS, BATCH_SIZE, DEVICE, ENCODER, ENGINE, SOURCE, WORKERS, check_dtype, check_engine
from ._outcome import finish


def register(app: typer.Typer) -> None:
    @app.command("embed", epilog="Example: chorus embed recordings/ -o features/ --window 3 --hop 1.5")
    def embed_command(
        paths: Optional[List[Path]] = typer.Argument(None, help="recordings or folders to embed in sliding windows"),
        encoder: str = ENCODER,
        data: Optional[Path] = opt.data(None, "manifest CSV/TSV of the clips"),
        out: Path = opt.out(help="output folder (resumed when it exists)"),
        window: float = typer.Option(5.0, "--window", help="window seconds (recordings given as PATHS)"),
        hop: Optional[float] = typer.Option(None, "--hop", help="hop seconds (default: the window)"),
        source: str = SOURCE,
        batch_size: int = BATCH_SIZE,
        dtype: str = typer.Option("float32", "--dtype", help="stored feature type: float32 or float16"),
        pooling: str = typer.Option("mean", "--pooling",
                                    help="over valid frames: mean, max, mean+max (both, concatenated) or native "
                                         "(the encoder's own, e.g. max over time for sfx-cnn)"),
        random_init: bool = typer.Option(False, "--random-init", help="same architecture, random weights"),
        seed: int = opt.seed(help="seed of --random-init weights"),
        device: str = DEVICE,
        engine: str = ENGINE,
        workers: Optional[int] = WORKERS,
        address: Optional[str] = ADDRESS,
    ) -> None:
        """Pooled features (--pooling over valid frames) of ALL layers (one forward pass per batch),
        written as Parquet shards under OUT/shards, one row per clip of --data or per
        window of the recordings in PATHS (path, start = offset, end); a rerun skips
        finished rows."""
        from ..data.manifest import read_manifest
        from ..features import embed_manifest
        from ..audio import AudioWarning
        from ..features.embed import window_clips
        from ..features.engines import EncoderRecipe
        from ..parallel import machine_workers
        from ..predict import find_recordings
        from ..progress import tqdm_progress

        check_dtype(dtype)
        check_engine(engine)
        if (data is None) == (not paths):
            raise typer.BadParameter("give either --data MANIFEST or recordings as PATHS", param_hint="PATHS")
        console = Console()
        if data is not None:
            clips, bad = read_manifest(data, allow_unlabelled=True).clips, []
        else:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", AudioWarning)
                clips, bad = window_clips(find_recordings(paths), window, hop or window)
            for warning in caught:
                console.print(f"[yellow]warning[/] {warning.message}", highlight=False, soft_wrap=True)
        for error in bad:
            console.print(f"[yellow]skipped[/] {error}", highlight=False, soft_wrap=True)
        recipe = EncoderRecipe(encoder, source, not random_init, seed)
        model = recipe.load().to(device)
        report = embed_manifest(model, clips, out, batch_size=batch_size, dtype=dtype, device=device, engine=engine,
                                workers=workers or machine_workers(), address=address, recipe=recipe,
                                pooling=pooling, progress=tqdm_progress)
        for failure in report.failures:
            console.print(f"[yellow]skipped[/] {failure.error}", highlight=False, soft_wrap=True)
        console.print(f"{encoder}: {report.computed} clips embedded, {report.reused} already done, "
                      f"{len(report.failures) + len(bad)} failed; {len(model.layer_names)} layers -> {out / 'shards'}",
                      highlight=False)
        finish(len(report.failures) + len(bad))

"""``chorus birdnet-model``: BirdNET with its own 6,522-species head as a chorus model folder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from . import _options as opt


def register(app: typer.Typer) -> None:
    @app.command("birdnet-model", epilog="Example: chorus birdnet-model -o models/birdnet")
    def birdnet_model_command(
        out: Path = opt.out(help="Output model directory."),
        encoder: str = opt.encoder("birdnet", "birdnet (or birdnet-tiny, random, for tests)."),
        source: Optional[Path] = typer.Option(None, help="Another copy of BirdNET V2.4's .tflite."),
    ) -> None:
        """Write BirdNET (encoder + original species head, multi-label) as a chorus model:
        its logits equal BirdNET's. The folder holds BirdNET's weights (CC BY-NC-SA 4.0)."""
        from ._console import Console

        from ..model.birdnet_head import write_original_classifier

        write_original_classifier(out, encoder, str(source) if source else None)
        Console().print(f"model: {out}  ({encoder}'s own species head; licence CC BY-NC-SA 4.0, do not redistribute)")

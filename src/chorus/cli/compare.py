"""``chorus compare``: probe, individual, joint and merged models in one table."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from . import _options as opt
from ._options import DEVICE


def comparison_table(comparison: dict, title: str):
    """The summary as a rich table; the best merge (normalized accuracy) in bold."""
    from rich.table import Table

    from ..evaluate.compare import best_merge
    from ..evaluate.compare_report import table_rows

    headers, rows = table_rows(comparison)
    best = best_merge(comparison)
    table = Table(title=title)
    for index, header in enumerate(headers):
        table.add_column(header, justify="left" if index < 2 else "right")
    for cells in rows:
        text = [c if isinstance(c, str) else "-" if c is None else f"{c:.3f}" for c in cells]
        table.add_row(*text, style="bold" if best and cells[0] == best["name"] and cells[1] == "merged" else None)
    return table


def _entries(probe, individual, joint, merged, device):
    """Models named by kind; merged ones by their directory, individual ones by their group."""
    from ..evaluate.compare import Entry
    from ..model import ClassifierModel

    entries = []
    for kind, paths in (("probe", probe), ("individual", individual), ("joint", joint), ("merged", merged)):
        for number, path in enumerate(paths, start=1):
            model = ClassifierModel.from_pretrained(path).to(device)
            name = kind if len(paths) == 1 else f"{kind} {number}"
            if kind == "merged":
                name = path.name
            elif kind == "individual":
                name = next((h.group for h in model.head_entries if h.group), path.name)
            entries.append(Entry(name, kind, model))
    return entries


def register(app: typer.Typer) -> None:
    @app.command("compare", epilog="Example: chorus compare -d data/manifest.csv -o compare/ "
                                            "--individual runs/birds/model --merged merged/")
    def compare_command(
        data: Path = opt.data(help="Manifest of the test clips (with a group column)."),
        out: Path = opt.out(help="Output folder (compare.json, compare.html)."),
        split: Optional[str] = opt.split("test", "Split of --data"),
        probe: List[Path] = typer.Option([], help="Frozen-base probe model directory."),
        individual: List[Path] = typer.Option([], help="Individually fine-tuned model directory (repeat)."),
        joint: List[Path] = typer.Option([], help="Jointly trained model directory."),
        merged: List[Path] = typer.Option([], help="Merged model directory (repeat; named by the directory)."),
        transfer: Optional[Path] = typer.Option(None, help="Manifest of a test set from another region."),
        transfer_split: Optional[str] = typer.Option("test", callback=opt.split_value,
                                                     help="Split of --transfer ('all': every clip)."),
        device: str = DEVICE,
    ) -> None:
        """Compare models on the same test clips: per group, normalized, gap to joint, transfer."""
        from ._console import Console

        from ..data.manifest import read_manifest
        from ..data.clipset import load_eval_audio
        from ..evaluate.compare import compare_models
        from ..evaluate.compare_report import write_comparison
        from ..progress import tqdm_progress

        entries = _entries(probe, individual, joint, merged, device)
        if not entries:
            raise typer.BadParameter("give at least one model (--probe, --individual, --joint or --merged)")
        rate = entries[0].model.encoder.sample_rate
        manifest = read_manifest(data)
        test = load_eval_audio(manifest.select(split=split).clips if split else manifest.clips, rate, tqdm_progress)
        moved = None
        if transfer is not None:
            other = read_manifest(transfer)
            moved = load_eval_audio(other.select(split=transfer_split).clips if transfer_split else other.clips, rate,
                                    tqdm_progress, "loading transfer clips")
        sizes = {g: len(manifest.select(split="train", group=g)) for g in manifest.groups}
        comparison = compare_models(entries, test, moved, sizes, tqdm_progress)
        page = write_comparison(comparison, out)
        Console().print(comparison_table(comparison, f"models on {data.name}"))
        Console().print(f"written: {page}")

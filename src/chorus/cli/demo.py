"""``chorus demo``: synthetic data, then per-layer probes of the default encoder,
pretrained versus random weights."""

from __future__ import annotations

from pathlib import Path

import typer


def _pct(value: float) -> str:
    return "-" if value != value else f"{100 * value:.1f}"


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo_command(
        out: Path = typer.Option(Path("demo-output"), "--out", help="Folder for the data and results."),
        encoder: str = typer.Option("sfx-cnn", help="Encoder to probe."),
    ) -> None:
        """Generate synthetic bioacoustic data and show how much the pretrained weights help."""
        from rich.console import Console
        from rich.table import Table

        from ..demo import run_demo
        from ..progress import tqdm_progress

        console = Console()
        result = run_demo(out, encoder=encoder, progress=tqdm_progress)
        table = Table(title=f"{encoder}: species-probe accuracy per layer (%), {len(result.groups)} taxon groups")
        for column in ("layer", "dim", "pretrained valid", "pretrained test", "random valid", "random test"):
            table.add_column(column, justify="left" if column == "layer" else "right")
        for s in result.layers:
            marks = ("*" if s.layer == result.best_pretrained else "") + ("+" if s.layer == result.best_random else "")
            table.add_row(f"{s.layer}{marks}", str(s.dim), _pct(s.pretrained_valid), _pct(s.pretrained_test),
                          _pct(s.random_valid), _pct(s.random_test))
        console.print(table)
        groups = Table(title="best layer per model (chosen on valid): test accuracy per group (%)")
        for column in ("group", "pretrained", "random"):
            groups.add_column(column, justify="left" if column == "group" else "right")
        for group, (pre, rand) in result.groups.items():
            groups.add_row(group, _pct(pre), _pct(rand))
        console.print(groups)
        console.print(f"* best pretrained layer, + best random layer; clips {result.clips}; "
                      f"pretrained minus random: {100 * result.margin:+.1f} points")
        for problem in result.failed:
            console.print(f"[yellow]skipped[/] {problem}", highlight=False)
        console.print(f"results: {out / 'demo-results.json'}")

"""``chorus encoders``: the table of registered backbones."""

from __future__ import annotations

import typer
from rich.table import Table

from ._console import Console


def _human(count: int | None) -> str:
    if count is None:
        return "?"
    return f"{count / 1e6:.1f} M" if count >= 1e5 else f"{count / 1e3:.1f} k"


def register(app: typer.Typer) -> None:
    @app.command("encoders", epilog="Example: chorus encoders --all")
    def encoders_command(
        show_all: bool = typer.Option(False, "--all", help="also list the tiny random test configurations"),
    ) -> None:
        """List registered encoders: sample rate, layers, parameters, weights."""
        from ..encoders import encoder_specs

        table = Table(title="chorus encoders")
        for column in ("name", "family", "sample rate", "layers", "parameters", "weights"):
            table.add_column(column)
        for spec in encoder_specs(include_test_configs=show_all):
            table.add_row(spec.name, spec.family, f"{spec.sample_rate} Hz", str(spec.num_layers),
                          _human(spec.num_parameters), spec.weights)
        Console().print(table)

"""Entry point of the ``chorus`` console script."""

from __future__ import annotations

import typer
from rich.console import Console
from typer.core import TyperGroup

from ..errors import ChorusError
from ..registration import import_submodules

err_console = Console(stderr=True)


class _ChorusGroup(TyperGroup):
    """Turns a :class:`ChorusError` into a one-line message and exit status 2."""

    def invoke(self, ctx):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except ChorusError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from exc


def build_app() -> typer.Typer:
    """The Typer app with every command module of :mod:`chorus.cli` registered."""
    app = typer.Typer(
        name="chorus",
        cls=_ChorusGroup,
        help="Probe, fine-tune, share and compose audio foundation models; separate sources.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def _root() -> None:
        """chorus: audio foundation models as shareable, composable task vectors."""

    for module in import_submodules("chorus.cli"):
        if not module.__name__.endswith(".main"):  # this module (also run as __main__)
            module.register(app)
    return app


def main() -> None:
    build_app()()


if __name__ == "__main__":
    main()

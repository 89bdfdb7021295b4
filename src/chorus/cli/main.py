"""Entry point of the ``chorus`` console script, and its exit codes:

0 everything succeeded; 2 user error (bad input or settings, named in one line; nothing
done); 3 partial: some inputs failed and were reported, the rest finished; 1 internal
error (a bug: the traceback is shown). ``--debug`` or ``CHORUS_DEBUG=1`` shows the
traceback of user errors too.
"""

from __future__ import annotations

import typer
from rich.console import Console
from typer.core import TyperGroup

from ..errors import ChorusError
from ..registration import import_submodules
from ._console import NORMAL, QUIET, VERBOSE, set_verbosity

err_console = Console(stderr=True)


EXIT_CODES = """Exit codes: 0 success; 2 user error (one line names the file and the problem, nothing
done); 3 partial (some inputs failed and were reported, the rest finished); 1 internal
error (traceback). --debug or CHORUS_DEBUG=1 also shows the traceback of user errors."""


class _ChorusGroup(TyperGroup):
    """Turns a :class:`ChorusError` into a one-line message and exit status 2 (with its
    traceback under ``--debug``)."""

    def invoke(self, ctx):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except ChorusError as exc:
            _user_error(ctx, str(exc))
            raise typer.Exit(2) from exc
        except OSError as exc:  # a path the user gave cannot be used (a file where a folder goes, no permission...)
            if exc.filename is None:
                raise
            _user_error(ctx, f"{exc.filename}: {(exc.strerror or str(exc)).lower()}")
            raise typer.Exit(2) from exc


CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}
"""Every command and group inherits ``-h`` from the root context."""


def _print_version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"chorus {__version__}")
        raise typer.Exit()


def _user_error(ctx, message: str) -> None:
    """One line on stderr; the traceback first under ``--debug``."""
    if ctx.params.get("debug"):
        err_console.print_exception()
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)


def build_app() -> typer.Typer:
    """The Typer app with every command module of :mod:`chorus.cli` registered."""
    app = typer.Typer(
        name="chorus",
        cls=_ChorusGroup,
        help="Probe, fine-tune, share and compose audio foundation models; separate sources.",
        epilog="Example: chorus probe -e sfx-cnn -d data/manifest.csv -o report/  (chorus COMMAND -h: its "
               "options and an example)\n\n" + EXIT_CODES,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings=CONTEXT_SETTINGS,
        rich_markup_mode=None,  # click's plain help: no `<bool>` on flags, one option per line
    )

    @app.callback()
    def _root(debug: bool = typer.Option(False, "--debug", envvar="CHORUS_DEBUG",
                                         help="show the traceback of user errors too"),
              quiet: bool = typer.Option(False, "--quiet", "-q",
                                         help="print nothing on stdout (no progress, tables or summaries); "
                                              "errors still go to stderr"),
              verbose: bool = typer.Option(False, "--verbose",
                                           help="keep progress bars and show every warning and log message"),
              version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                           help="print the chorus version and exit")) -> None:
        """chorus: audio foundation models as shareable, composable task vectors."""
        if quiet and verbose:
            raise typer.BadParameter("give --quiet or --verbose, not both", param_hint="--quiet")
        set_verbosity(QUIET if quiet else VERBOSE if verbose else NORMAL)

    for module in import_submodules("chorus.cli"):
        if not module.__name__.endswith(".main"):  # this module (also run as __main__)
            module.register(app)
    return app


def main() -> None:
    build_app()()


if __name__ == "__main__":
    main()

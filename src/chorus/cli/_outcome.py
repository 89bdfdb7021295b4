"""How a command that works through many inputs ends: exit status 3 when some of them
failed (they were reported, the rest finished), 0 otherwise."""

from __future__ import annotations

import typer

PARTIAL = 3


def finish(failed: int) -> None:
    """Exit with :data:`PARTIAL` when ``failed`` inputs were skipped."""
    if failed:
        raise typer.Exit(PARTIAL)

"""How the CLI prints to stdout: the rich console every command uses.

- On a terminal, tables are drawn by rich. When stdout is not a terminal (a pipe, a
  file), a table is written as plain TSV (a ``# title`` line, the header, then one line
  per row, tab-separated, markup removed) and text lines are never wrapped: nothing is cut.
- ``chorus --quiet`` prints nothing on stdout (no tables, no summaries, no progress
  bars); errors still go to stderr and the exit status tells the outcome.
- ``chorus --verbose`` keeps progress bars on screen and shows every library warning
  and log message.
"""

from __future__ import annotations

from typing import Any

import rich.console
from rich.table import Table
from rich.text import Text

QUIET, NORMAL, VERBOSE = -1, 0, 1
_level = {"value": NORMAL}


def set_verbosity(level: int) -> None:
    """Called once per invocation by the root command (``--quiet`` / ``--verbose``)."""
    import logging
    import warnings

    from ..progress import configure_bars

    _level["value"] = level
    configure_bars(show=level > QUIET, leave=level >= VERBOSE)
    if level >= VERBOSE:
        warnings.simplefilter("always")
        logging.basicConfig(level=logging.INFO)


def verbosity() -> int:
    return _level["value"]


def _plain(cell: Any) -> str:
    if isinstance(cell, Text):
        return cell.plain
    return Text.from_markup(cell).plain if isinstance(cell, str) else str(cell)


def table_tsv(table: Table) -> str:
    """``table`` as TSV: its title as a ``# title`` comment line (pandas: ``comment="#"``),
    the header line (when the table shows one), then its rows."""
    columns = [[_plain(cell) for cell in column.cells] for column in table.columns]
    lines = [f"# {_plain(table.title)}"] if table.title else []
    lines += ["\t".join(_plain(column.header) for column in table.columns)] if table.show_header else []
    lines += ["\t".join(cells) for cells in zip(*columns)]
    return "\n".join(line.replace("\n", " ") for line in lines)


class Console(rich.console.Console):
    """rich's console, quiet under ``--quiet``, with tables as TSV and no wrapping off a terminal."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_terminal:
            self.soft_wrap = True

    def print(self, *objects: Any, **kwargs: Any) -> None:  # type: ignore[override]
        if verbosity() <= QUIET:
            return
        if not self.is_terminal and any(isinstance(item, Table) for item in objects):
            for item in objects:
                text = table_tsv(item) if isinstance(item, Table) else _plain(item)
                self.file.write(text + "\n")
            self.file.flush()
            return
        super().print(*objects, **kwargs)

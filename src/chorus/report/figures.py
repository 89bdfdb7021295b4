"""Matplotlib conventions shared by every report's figures: the headless backend, legends
kept off the data, and cell values written in a colour that reads on the cell."""

from __future__ import annotations

import math


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def outside_legend(axis) -> None:
    """The legend to the right of ``axis``, off the data."""
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False)


def annotate_cells(axis, shown, grid, labels=None, digits: int = 2, fontsize: float = 8) -> None:
    """Write each finite value of ``grid`` (rows of numbers, as drawn by ``shown``, the
    ``imshow`` image) in its cell with ``digits`` decimals, or ``labels[i][j]`` when given
    (None: nothing written): white on dark colours, black on light ones."""
    for i, row in enumerate(grid):
        for j, value in enumerate(row):
            text = f"{value:.{digits}f}" if labels is None else labels[i][j]
            if text is not None and value is not None and not math.isnan(value):
                red, green, blue, _ = shown.cmap(shown.norm(value))
                dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
                axis.text(j, i, text, ha="center", va="center", fontsize=fontsize, color="white" if dark else "black")

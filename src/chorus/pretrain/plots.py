"""``lr.png`` and ``loss.png``: learning rate and loss per optimizer step, stage starts marked."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..fileio import atomic_path


def plot_curve(path: str | Path, steps: Sequence[int], values: Sequence[float], starts: Sequence[int], ylabel: str,
               title: str, log: bool = False) -> Path:
    """One curve over optimizer steps with a dashed line at each stage start after the first
    (the re-warm), written atomically as PNG."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 3.6))
    axes = figure.add_subplot()
    axes.plot(steps, values, marker=".", linewidth=1.2)
    for number, start in enumerate(starts[1:], start=2):
        axes.axvline(start - 0.5, color="tab:red", linestyle="--", linewidth=1)
        axes.annotate(f"stage {number}", (start - 0.5, 1.0), xycoords=("data", "axes fraction"),
                      xytext=(3, -12), textcoords="offset points", color="tab:red", fontsize=8)
    if log:
        axes.set_yscale("log")
    axes.set_xlabel("optimizer step")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    with atomic_path(path) as target:
        figure.savefig(target, format="png", dpi=110)
    return Path(path)

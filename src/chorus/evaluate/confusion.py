"""The confusion matrix as JSON and as a PNG heat map."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..fileio import atomic_path, write_json


def write_confusion(out_dir: str | Path, axis: Sequence[str], counts: np.ndarray | list, title: str) -> None:
    """``confusion.json`` (``labels`` and ``counts[true][predicted]``) and ``confusion.png``."""
    out_dir = Path(out_dir)
    counts = np.asarray(counts, dtype=np.int64)
    write_json(out_dir / "confusion.json", {"labels": list(axis), "counts": counts.tolist(),
                                            "rows": "true label", "columns": "predicted label"})
    with atomic_path(out_dir / "confusion.png") as tmp:
        confusion_figure(axis, counts, title).savefig(tmp, format="png", dpi=110, bbox_inches="tight",
                                                      metadata={"Software": None})


def confusion_figure(axis: Sequence[str], counts: np.ndarray, title: str):
    """A row-normalised heat map (each true label's clips sum to 1), counts in the cells
    when the matrix is small enough to read them."""
    from ..report import annotate_cells, pyplot

    plt = pyplot()

    size = len(axis)
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros(counts.shape, dtype=float), where=rows > 0)
    inches = min(14.0, 2.5 + 0.28 * size)
    figure, ax = plt.subplots(figsize=(inches, inches))
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(size), axis, rotation=90, fontsize=7 if size > 20 else 9)
    ax.set_yticks(range(size), axis, fontsize=7 if size > 20 else 9)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.set_title(title)
    if size <= 16:
        annotate_cells(ax, image, share.tolist(), [[str(c) if c else None for c in row] for row in counts.tolist()])
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true label's clips")
    plt.close(figure)
    return figure
